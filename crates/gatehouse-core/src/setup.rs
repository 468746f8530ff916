//! Setting a provider up in the window: what the person chose ([`Draft`]), what Gatehouse found out about the
//! provider before saving ([`Findings`]), the profile it writes, and registering itself as a client where the
//! provider allows that (RFC 7591), and unregistering when the provider is removed (RFC 7592).
//!
//! The profile written is checked exactly as a hand-written one is ([`Config::parse`]), so the window can't save
//! what the config file would refuse.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{Config, Endpoints, ProviderEndpoints};
use crate::config_file::Fields;
use crate::error::{Error, Result};
use crate::presets::{self, Preset};

/// What the person chose in the setup view. Its `Debug` leaves the secret out.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Draft {
    /// A preset's name (`google`, …), or `other` for a provider found by its issuer URL.
    pub preset: String,
    /// The issuer URL, for `other`.
    pub issuer: String,
    /// The client ID; empty to have Gatehouse register itself where the provider allows it.
    pub client_id: String,
    /// The client secret, where the provider requires one; empty when editing keeps the one saved.
    pub client_secret: String,
    /// Microsoft's tenant.
    pub tenant: String,
    /// The host of GitLab, Keycloak, Okta or Auth0.
    pub domain: String,
    /// Keycloak's realm.
    pub realm: String,
}

impl std::fmt::Debug for Draft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Draft")
            .field("preset", &self.preset)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("has_secret", &!self.client_secret.is_empty())
            .field("tenant", &self.tenant)
            .field("domain", &self.domain)
            .field("realm", &self.realm)
            .finish()
    }
}

/// What Check found, in plain words.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Findings {
    /// The provider's name, as its card will show it.
    pub provider: String,
    /// The redirect URI to register at the provider.
    pub redirect_uri: String,
    /// Whether Save can go ahead: nothing found that will not work.
    pub usable: bool,
    /// Whether Save will register Gatehouse at the provider (no client ID given, and the provider allows it).
    pub registers: bool,
    /// What was found, each a sentence.
    pub items: Vec<Finding>,
}

/// One thing Check found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `ok`, `note` (works, but worth knowing) or `problem` (will not work; the text says the fix).
    pub level: &'static str,
    /// What was found, and for a problem what to do.
    pub text: String,
}

impl Finding {
    fn ok(text: impl Into<String>) -> Finding {
        Finding { level: "ok", text: text.into() }
    }
    fn note(text: impl Into<String>) -> Finding {
        Finding { level: "note", text: text.into() }
    }
    fn problem(text: impl Into<String>) -> Finding {
        Finding { level: "problem", text: text.into() }
    }
}

/// What a provider was found to be: the profile's keys and the endpoints its metadata gave.
pub struct Surveyed {
    /// The profile's keys.
    pub fields: Fields,
    /// The endpoints (from metadata, or the preset's documented ones).
    pub endpoints: ProviderEndpoints,
    /// The profile as Gatehouse reads it.
    pub config: Config,
}

/// Where a client registration can be managed (RFC 7591 §3.2.1, RFC 7592), kept in the keychain.
#[derive(Serialize, Deserialize)]
pub struct Registration {
    /// `registration_client_uri`.
    pub client_uri: Url,
    /// `registration_access_token`: a secret.
    pub access_token: String,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The access token is a secret: never in a log or a panic message.
        f.debug_struct("Registration").field("client_uri", &self.client_uri).finish_non_exhaustive()
    }
}

/// What a registration gave. Its `Debug` leaves the secret out.
pub struct Registered {
    /// The client ID the provider issued.
    pub client_id: String,
    /// A secret the provider issued all the same (RFC 7591 §3.2.1), which it will then expect. In a desktop app
    /// it is not confidential (RFC 8252 §8.5); it goes into the profile like a secret from a console.
    pub client_secret: Option<String>,
    /// How the server says the client must authenticate at its token endpoint (`none`, `client_secret_basic`
    /// or `client_secret_post`), when it says.
    pub auth_method: Option<String>,
    /// Where it can be deleted again, if the provider said.
    pub management: Option<Registration>,
}

impl std::fmt::Debug for Registered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registered")
            .field("client_id", &self.client_id)
            .field("has_secret", &self.client_secret.is_some())
            .field("auth_method", &self.auth_method)
            .field("management", &self.management)
            .finish()
    }
}

const CLIENT_ID_PLACEHOLDER: &str = "to-be-registered";

impl Draft {
    fn preset(&self) -> Result<Option<Preset>> {
        match self.preset.as_str() {
            "other" => Ok(None),
            name => Preset::named(name)
                .map(Some)
                .ok_or_else(|| Error::Setup(format!("{name:?} is not a provider Gatehouse knows"))),
        }
    }

    /// The profile's keys, with `client_id`, and for a provider found by issuer its `scopes` and resource. Only
    /// the keys the chosen provider takes are listed (a field typed for another choice and then hidden is not
    /// saved); one left empty is `None`, which removes it when editing.
    fn fields(&self, client_id: &str, scopes: &[String], resource: Option<&str>, name: Option<&str>) -> Fields {
        let text = |value: &str| (!value.trim().is_empty()).then(|| toml_edit::Value::from(value.trim()));
        let mut fields: Fields = Vec::new();
        if self.preset == "other" {
            fields.push(("name", name.map(toml_edit::Value::from)));
            fields.push(("issuer", text(&self.issuer)));
            fields.push(("client_id", Some(client_id.into())));
            fields.push(("client_secret", text(&self.client_secret)));
            fields.push(("scopes", Some(toml_edit::Value::Array(scopes.iter().map(String::as_str).collect()))));
            fields.push(("resource_url", resource.map(toml_edit::Value::from)));
            // RFC 8252 §7.1: the app's private-use scheme, which the system routes to it.
            fields.push(("redirect_uri", Some(presets::SCHEME.into())));
            return fields;
        }
        fields.push(("preset", Some(self.preset.as_str().into())));
        fields.push(("client_id", Some(client_id.into())));
        let takes = |key: &str| match key {
            "client_secret" => matches!(self.preset.as_str(), "google" | "github"),
            "tenant" => self.preset == "microsoft",
            "domain" => matches!(self.preset.as_str(), "gitlab" | "keycloak" | "okta" | "auth0"),
            "realm" => self.preset == "keycloak",
            _ => false,
        };
        for (key, value) in [
            ("client_secret", &self.client_secret),
            ("tenant", &self.tenant),
            ("domain", &self.domain),
            ("realm", &self.realm),
        ] {
            if takes(key) {
                fields.push((key, text(value)));
            }
        }
        fields
    }
}

/// The profile text for `fields`.
fn profile_text(name: &str, fields: &Fields) -> String {
    let mut table = toml_edit::DocumentMut::new();
    table.insert("profile", toml_edit::value(name));
    for (key, value) in fields {
        if let Some(value) = value {
            table.insert(key, toml_edit::Item::Value(value.clone()));
        }
    }
    table.to_string()
}

/// A profile name for the draft, not among `taken`: the preset's name, or the issuer's host's first label.
pub fn profile_name(draft: &Draft, taken: &[String]) -> String {
    let base: String = match draft.preset.as_str() {
        "other" => Url::parse(draft.issuer.trim())
            .ok()
            .and_then(|url| url.host_str().map(|h| h.split('.').next().unwrap_or(h).to_owned()))
            .map(|label| label.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(40).collect())
            .filter(|label: &String| !label.is_empty() && label.parse::<std::net::Ipv4Addr>().is_err())
            .unwrap_or_else(|| "provider".to_owned()),
        preset => preset.chars().filter(char::is_ascii_alphanumeric).collect(),
    };
    let base = if crate::config::valid_profile_name(&base) && !base.chars().all(|c| c.is_ascii_digit()) {
        base
    } else {
        "provider".to_owned()
    };
    (1..)
        .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
        .find(|name| !taken.contains(name))
        .unwrap_or(base)
}

/// Finds out what the provider the draft names is: reads its metadata, and works out the profile's keys.
///
/// # Errors
/// [`Error::Config`] for a draft the config would refuse (naming the field), or the discovery errors
/// ([`Error::Network`], [`Error::BadResponse`]).
pub async fn survey(draft: &Draft, name: &str, http: &reqwest::Client) -> Result<Surveyed> {
    let other = draft.preset()?.is_none();
    let client_id = if draft.client_id.trim().is_empty() { CLIENT_ID_PLACEHOLDER } else { draft.client_id.trim() };
    // A provider found by issuer needs scopes and a resource before the profile parses; the metadata gives the
    // real ones below.
    let provisional = draft.fields(client_id, &["openid".to_owned()], Some(draft.issuer.trim()), None);
    let config = Config::parse(&profile_text(name, &provisional), "the new provider")?;
    let endpoints = match &config.endpoints {
        Endpoints::Discover { issuer } => crate::auth::discovery::discover(http, issuer, config.tenant_issuer).await?,
        Endpoints::Explicit(endpoints) => (**endpoints).clone(),
    };
    if !other {
        return Ok(Surveyed { fields: provisional, endpoints, config });
    }
    // OIDC Discovery §3 `scopes_supported`: ask for what the provider lists of these; with no list, only
    // `openid` (a provider may refuse a scope it doesn't know).
    let scopes: Vec<String> = match &endpoints.advertised.scopes {
        Some(listed) => ["openid", "profile", "email", "offline_access"]
            .into_iter()
            .filter(|s| listed.iter().any(|l| l == s))
            .map(str::to_owned)
            .collect(),
        None => vec!["openid".to_owned()],
    };
    let display = endpoints.issuer.as_ref().and_then(|i| i.host_str().map(str::to_owned));
    let resource = endpoints.userinfo.as_ref().map(Url::as_str).ok_or_else(|| {
        Error::Setup(
            "the provider publishes no userinfo endpoint, so Gatehouse would have nothing to show once you're \
             signed in; write this profile by hand with a resource_url (see the README)"
                .into(),
        )
    })?;
    // The userinfo endpoint is OpenID Connect's (OIDC Core §5.3), and answers only an `openid` grant: a
    // provider that leaves `openid` out of its list gets it asked for all the same.
    let mut scopes = scopes;
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_owned());
    }
    let fields = draft.fields(client_id, &scopes, Some(resource), display.as_deref());
    let config = Config::parse(&profile_text(name, &fields), "the new provider")?;
    Ok(Surveyed { fields, endpoints, config })
}

/// Check: what the provider the draft names offers, and anything that will not work, with the fix.
pub async fn check(draft: &Draft, name: &str, http: &reqwest::Client) -> Findings {
    let wants_registration = draft.client_id.trim().is_empty();
    let surveyed = match survey(draft, name, http).await {
        Ok(surveyed) => surveyed,
        Err(e) => {
            return Findings {
                provider: String::new(),
                redirect_uri: String::new(),
                usable: false,
                registers: false,
                items: vec![Finding::problem(explain(&e, draft))],
            }
        }
    };
    let (endpoints, config) = (&surveyed.endpoints, &surveyed.config);
    let advertised = &endpoints.advertised;
    let mut items = Vec::new();
    let discovered = matches!(config.endpoints, Endpoints::Discover { .. });
    items.push(Finding::ok(format!(
        "Signs in at {} and issues tokens at {}{}.",
        endpoints.authorization,
        endpoints.token,
        if discovered { "" } else { " (its documented endpoints; it publishes no metadata)" }
    )));
    // RFC 8414 §2: a provider that lists only client authentication Gatehouse doesn't do won't take its requests.
    if let Some(wanted) =
        crate::config::ClientAuth::unsupported(config.token_endpoint_auth_method, endpoints.auth_methods.as_deref())
    {
        items.push(Finding::problem(format!(
            "It authenticates apps only by {wanted}, which Gatehouse doesn't do. Ask its administrator for a \
             client that may use none (a public client), client_secret_basic or client_secret_post."
        )));
    }
    // RFC 9700 §2.1.1: PKCE with S256 (a provider listing methods without S256 was refused by discovery).
    match &advertised.pkce_methods {
        Some(_) => items.push(Finding::ok("PKCE with S256: supported.")),
        None if discovered => items.push(Finding::note(
            "It doesn't list its PKCE methods; Gatehouse uses S256 anyway (RFC 7636), as most providers accept.",
        )),
        None => {}
    }
    if endpoints.pushed_authorization.is_some() {
        items.push(Finding::ok(
            "Pushed authorization requests (RFC 9126): supported, so the browser's address bar holds only a reference.",
        ));
    }
    items.push(match (endpoints.dpop_supported, config.dpop) {
        (_, Some(false)) => Finding::note("DPoP: off for this profile; tokens are Bearer tokens."),
        (true, _) => {
            Finding::ok("DPoP (RFC 9449): supported; your tokens will be bound to a key only Gatehouse holds.")
        }
        (false, _) => Finding::note("No DPoP: tokens are Bearer tokens, usable by whoever holds them."),
    });
    items.push(match endpoints.revocation {
        Some(_) => Finding::ok("Sign out revokes the session at the provider (RFC 7009)."),
        None => Finding::note(
            "No revocation endpoint: Sign out forgets the session here, but the provider keeps it until it expires.",
        ),
    });
    items.push(match endpoints.device_authorization {
        Some(_) => Finding::ok("Sign-in with a code on another device (RFC 8628): available."),
        None => Finding::note("No sign-in with a code: sign in with a browser on this computer."),
    });
    let refresh = advertised.grant_types.as_ref().is_some_and(|g| g.iter().any(|g| g == "refresh_token"))
        || config.scopes.iter().any(|s| s == "offline_access");
    items.push(if refresh {
        Finding::ok("Refresh tokens: likely, so Gatehouse can keep you signed in.")
    } else {
        Finding::note("Refresh tokens: not advertised; you may have to sign in again when access expires.")
    });
    let registers = wants_registration && advertised.registration.is_some();
    if wants_registration {
        items.push(match &advertised.registration {
            Some(_) => Finding::ok(
                "No client ID needed: Gatehouse will register itself with the provider as a desktop app (RFC 7591).",
            ),
            None => Finding::problem(
                "This provider doesn't let apps register themselves. Create a client (a native or desktop app, with \
                 the redirect URI below) in its console, and enter its client ID.",
            ),
        });
    }
    let usable = !items.iter().any(|i| i.level == "problem");
    Findings {
        provider: config.display_name.clone(),
        redirect_uri: config.redirect_uri.to_string(),
        usable,
        registers,
        items,
    }
}

/// A survey's error, said as what to do.
fn explain(error: &Error, draft: &Draft) -> String {
    match error {
        Error::Config(e) if e.field == "issuer" && draft.preset == "other" => format!(
            "The issuer URL {}. Enter the provider's issuer, such as https://id.example.com (https, or http only on \
             this computer's loopback address).",
            e.problem
        ),
        Error::Config(e) => format!("{}: {}.", field_label(&e.field), e.problem),
        Error::Network(why) => {
            format!("Couldn't reach the provider ({why}). Check the address and your connection, then Check again.")
        }
        Error::BadResponse(why) => format!(
            "The provider's metadata won't work with Gatehouse: {why}. Check the address (it must be the issuer \
             exactly as the provider names it), or ask the provider's administrator."
        ),
        Error::Setup(why) => {
            let mut chars = why.chars();
            chars.next().map(|first| format!("{}{}.", first.to_uppercase(), chars.as_str())).unwrap_or_default()
        }
        e => e.to_string(),
    }
}

fn field_label(field: &str) -> &str {
    match field {
        "client_id" => "Client ID",
        "client_secret" => "Client secret",
        "tenant" => "Tenant",
        "domain" => "Domain",
        "realm" => "Realm",
        other => other,
    }
}

/// Registers Gatehouse at `endpoint` as a native public client (RFC 7591 §2, §3.1): no secret
/// (`token_endpoint_auth_method` none, RFC 8252 §8.4), its redirect URI, and the grants it uses.
///
/// # Errors
/// [`Error::Setup`] when the provider refuses (with its `error` and description, §3.2.2), or answers without a
/// client ID; [`Error::Network`] when unreachable.
pub async fn register(
    http: &reqwest::Client,
    endpoint: &Url,
    config: &Config,
    endpoints: &ProviderEndpoints,
) -> Result<Registered> {
    // RFC 8414 §2 `grant_types_supported`: only grants the provider lists (all three, when it lists none).
    let listed = |grant: &str| endpoints.advertised.grant_types.as_ref().is_none_or(|g| g.iter().any(|l| l == grant));
    let mut grant_types: Vec<&str> = vec!["authorization_code"];
    if listed("refresh_token") {
        grant_types.push("refresh_token");
    }
    if endpoints.device_authorization.is_some() && listed("urn:ietf:params:oauth:grant-type:device_code") {
        grant_types.push("urn:ietf:params:oauth:grant-type:device_code");
    }
    let full = serde_json::json!({
        "client_name": "Gatehouse",
        "application_type": "native",
        "redirect_uris": [config.redirect_uri.as_str()],
        "token_endpoint_auth_method": "none",
        "grant_types": grant_types,
        "response_types": ["code"],
        "scope": config.scopes.join(" "),
    });
    let trusted: Vec<&Url> = std::iter::once(endpoint).chain(endpoints.issuer.as_ref()).collect();
    match register_with(http, endpoint, &trusted, &full).await {
        // RFC 7591 §3.2.2: a server may refuse metadata it won't take (a grant type, a scope, a name); the least
        // a native sign-in needs (a native app, RFC 8252 §8.4, its redirect URI and no secret) is asked for once
        // more, and the server's defaults (RFC 7591 §2: the authorization code grant) fill in the rest. §3.2.2
        // says 400; Keycloak's client registration policies answer 403, so any 4xx whose answer is about the
        // request's metadata gets the same one retry.
        Err(Refused { status: Some(status), metadata: true, .. }) if (400..500).contains(&status) => {
            let least = serde_json::json!({
                "application_type": "native",
                "redirect_uris": [config.redirect_uri.as_str()],
                "token_endpoint_auth_method": "none",
            });
            register_with(http, endpoint, &trusted, &least).await.map_err(Error::from)
        }
        result => result.map_err(Error::from),
    }
}

/// Why a registration failed: the HTTP status of a refusal, whether its answer is about the metadata sent, and
/// the error to show.
struct Refused {
    status: Option<u16>,
    metadata: bool,
    error: Error,
}

/// Whether a refusal with `status`, error `code` and `description` is about the metadata the request sent, so
/// that one with less might pass: a 400 always (RFC 7591 §3.2.2's status for `invalid_client_metadata` and
/// `invalid_redirect_uri`), and another status when its error or description names metadata (Keycloak's
/// policies: 403 `insufficient_scope`, "Policy 'Allowed Client Scopes' rejected request").
fn about_metadata(status: u16, code: Option<&str>, description: Option<&str>) -> bool {
    const METADATA: [&str; 8] =
        ["metadata", "scope", "grant", "redirect", "client_name", "application_type", "response_type", "auth_method"];
    let said = |text: Option<&str>| text.is_some_and(|t| METADATA.iter().any(|m| t.to_ascii_lowercase().contains(m)));
    // `insufficient_scope` is about the registration's own access token, not the metadata: its description says
    // which (Keycloak uses it for every policy).
    status == 400
        || matches!(code, Some("invalid_client_metadata" | "invalid_redirect_uri" | "invalid_software_statement"))
        || said(description)
}

impl From<Refused> for Error {
    fn from(refused: Refused) -> Error {
        refused.error
    }
}

impl From<Error> for Refused {
    fn from(error: Error) -> Refused {
        Refused { status: None, metadata: false, error }
    }
}

async fn register_with(
    http: &reqwest::Client,
    endpoint: &Url,
    trusted: &[&Url],
    body: &serde_json::Value,
) -> std::result::Result<Registered, Refused> {
    let response = http
        .post(endpoint.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| Error::Network(crate::http::describe_transport_error(&e)))?;
    let status = response.status();
    let body = crate::http::read_body(response).await?;
    // A refusal may come as an error object (RFC 7591 §3.2.2) or as anything else (a 401 page where an initial
    // access token is required): either way, the way on is a client made in the provider's console.
    let answer: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let text =
        |name: &str| answer.as_ref().and_then(|a| a[name].as_str()).map(|s| crate::error::clean_for_display(s, 200));
    if !status.is_success() || answer.as_ref().is_some_and(|a| a.get("error").is_some()) {
        let metadata = about_metadata(status.as_u16(), text("error").as_deref(), text("error_description").as_deref());
        let code = text("error").unwrap_or_else(|| status.to_string());
        let description = text("error_description").map(|d| format!(": {d}")).unwrap_or_default();
        let error = Error::Setup(format!(
            "the provider refused to register Gatehouse ({code}{description}); create a client in its console \
             (a native or desktop app with the redirect URI shown) and enter its client ID instead"
        ));
        return Err(Refused { status: Some(status.as_u16()), metadata, error });
    }
    let answer =
        answer.ok_or_else(|| Error::Setup(format!("the provider's registration answer ({status}) is not JSON")))?;
    let client_id = answer["client_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::Setup("the provider registered Gatehouse but sent no client_id".into()))?
        .to_owned();
    // RFC 7592 §3: the management URI is where the registration access token will be sent (as a bearer token,
    // with a DELETE). Only a URI of the registration endpoint's own origin, over https or a loopback IP literal,
    // is trusted with it; any other is not kept, and the registration is then left to expire at the provider.
    let management = match (answer["registration_client_uri"].as_str(), answer["registration_access_token"].as_str()) {
        (Some(uri), Some(token)) => Url::parse(uri)
            .ok()
            .filter(|u| trusted_management_uri(u, trusted))
            .map(|client_uri| Registration { client_uri, access_token: token.to_owned() }),
        _ => None,
    };
    // RFC 7591 §3.2.1: the server says how the client it registered must authenticate; a secret it issued all
    // the same is used only with a method that sends one.
    let auth_method = answer["token_endpoint_auth_method"]
        .as_str()
        .filter(|m| matches!(*m, "none" | "client_secret_basic" | "client_secret_post"))
        .map(str::to_owned);
    let client_secret = answer["client_secret"]
        .as_str()
        .filter(|s| !s.is_empty() && auth_method.as_deref() != Some("none"))
        .map(str::to_owned);
    let auth_method = auth_method.filter(|m| m == "none" || client_secret.is_some());
    Ok(Registered { client_id, client_secret, auth_method, management })
}

/// Whether a registration's management URI may be sent its access token: the origin (scheme, host and port) of
/// the registration endpoint or of the issuer, over https, or http to a loopback IP literal.
fn trusted_management_uri(uri: &Url, trusted: &[&Url]) -> bool {
    let secure = uri.scheme() == "https" || (uri.scheme() == "http" && crate::http::is_loopback(uri));
    secure
        && uri.username().is_empty()
        && uri.password().is_none()
        && trusted.iter().any(|origin| uri.origin() == origin.origin())
}

/// Deletes a registration (RFC 7592 §2.3). A provider that has already forgotten it is fine.
///
/// # Errors
/// [`Error::Network`] when unreachable; [`Error::BadResponse`] when the provider refuses.
pub async fn unregister(http: &reqwest::Client, registration: &Registration) -> Result<()> {
    let response = http
        .delete(registration.client_uri.clone())
        .bearer_auth(&registration.access_token)
        .send()
        .await
        .map_err(|e| Error::Network(crate::http::describe_transport_error(&e)))?;
    match response.status().as_u16() {
        200..=299 | 401 | 404 => Ok(()),
        status => Err(Error::BadResponse(format!("deleting the client registration was refused ({status})"))),
    }
}

/// A profile's keys as the setup view shows them for editing (the secret never leaves: only whether there is
/// one).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Editing {
    /// The profile's name.
    pub profile: String,
    /// The preset, or `other`.
    pub preset: String,
    /// The issuer, for `other`.
    pub issuer: String,
    /// The client ID.
    pub client_id: String,
    /// Whether a client secret is saved.
    pub has_secret: bool,
    /// Microsoft's tenant.
    pub tenant: String,
    /// The host, for the presets that take one.
    pub domain: String,
    /// Keycloak's realm.
    pub realm: String,
}

impl Editing {
    /// What the setup view shows for the profile table `table` called `profile`.
    pub fn of(profile: &str, table: &toml_edit::Table) -> Editing {
        let text = |key: &str| table.get(key).and_then(toml_edit::Item::as_str).unwrap_or_default().to_owned();
        let preset = table.get("preset").and_then(toml_edit::Item::as_str).unwrap_or("other").to_owned();
        Editing {
            profile: profile.to_owned(),
            preset,
            issuer: text("issuer"),
            client_id: text("client_id"),
            has_secret: table.get("client_secret").is_some(),
            tenant: text("tenant"),
            domain: text("domain"),
            realm: text("realm"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(preset: &str) -> Draft {
        Draft { preset: preset.into(), ..Draft::default() }
    }

    /// A refusal about the metadata sent is retried once with less, whatever its 4xx status; one that refuses
    /// any registration is not.
    #[test]
    fn a_refusal_of_the_metadata_is_told_from_a_refusal_of_registration() {
        assert!(about_metadata(400, None, None));
        assert!(about_metadata(
            403,
            Some("insufficient_scope"),
            Some("Policy 'Allowed Client Scopes' rejected request to client-registration service.")
        ));
        assert!(about_metadata(403, Some("invalid_client_metadata"), None));
        assert!(about_metadata(422, None, Some("grant_types not allowed")));
        assert!(!about_metadata(401, Some("invalid_token"), Some("An initial access token is required")));
        assert!(!about_metadata(
            403,
            Some("insufficient_scope"),
            Some("Policy 'Trusted Hosts' rejected request to client-registration service. Details: Host not trusted.")
        ));
    }

    /// Secrets never show in `Debug` output (a log line or a panic message).
    #[test]
    fn debug_output_leaves_secrets_out() {
        let typed = Draft { client_secret: "typed-s3cret".into(), ..draft("github") };
        let registered = Registered {
            client_id: "app".into(),
            client_secret: Some("issued-s3cret".into()),
            auth_method: Some("client_secret_basic".into()),
            management: Some(Registration {
                client_uri: Url::parse("https://id.example/reg/app").unwrap(),
                access_token: "rat-s3cret".into(),
            }),
        };
        let printed = format!("{typed:?} {registered:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("has_secret: true"), "{printed}");
    }

    /// The registration access token goes only to the registration endpoint's own origin, securely (RFC 7592).
    #[test]
    fn a_management_uri_elsewhere_is_not_trusted() {
        let endpoint = Url::parse("https://id.example/register").unwrap();
        let trusted = |uri: &str| trusted_management_uri(&Url::parse(uri).unwrap(), &[&endpoint]);
        assert!(trusted("https://id.example/register/app-1"));
        assert!(!trusted("https://other.example/register/app-1"), "another host");
        assert!(!trusted("https://id.example:8443/register/app-1"), "another port");
        assert!(!trusted("http://id.example/register/app-1"), "cleartext");
        assert!(!trusted("https://u:p@id.example/register/app-1"), "credentials in the URI");
        let local = Url::parse("http://127.0.0.1:4470/reg").unwrap();
        assert!(trusted_management_uri(&Url::parse("http://127.0.0.1:4470/reg/x").unwrap(), &[&local]));
        assert!(!trusted_management_uri(&Url::parse("http://reg.localhost:4470/x").unwrap(), &[&local]));
        // The issuer's origin is the provider's too.
        let issuer = Url::parse("https://login.example/").unwrap();
        assert!(trusted_management_uri(&Url::parse("https://login.example/reg/1").unwrap(), &[&endpoint, &issuer]));
    }

    #[test]
    fn profile_names_come_from_the_preset_or_the_issuers_host_and_never_clash() {
        assert_eq!(profile_name(&draft("google"), &[]), "google");
        assert_eq!(profile_name(&draft("google"), &["google".into()]), "google-2");
        let other = Draft { issuer: "https://login.example.com/realms/x".into(), ..draft("other") };
        assert_eq!(profile_name(&other, &[]), "login");
        let ip = Draft { issuer: "http://127.0.0.1:4470".into(), ..draft("other") };
        assert_eq!(profile_name(&ip, &["provider".into()]), "provider-2");
        assert_eq!(profile_name(&Draft { issuer: "not a url".into(), ..draft("other") }, &[]), "provider");
    }

    #[test]
    fn a_preset_draft_is_the_preset_and_what_the_person_gave() {
        let keycloak = Draft {
            client_id: " desktop ".into(),
            domain: "id.example.com".into(),
            realm: "staff".into(),
            ..draft("keycloak")
        };
        let text = profile_text("keycloak", &keycloak.fields("desktop", &[], None, None));
        let config = Config::parse(&text, "t").unwrap();
        assert_eq!(config.client_id.as_str(), "desktop");
        assert!(
            matches!(config.endpoints, Endpoints::Discover { ref issuer } if issuer.url.as_str() == "https://id.example.com/realms/staff")
        );
        assert!(!text.contains("tenant"), "{text}");
    }

    #[tokio::test]
    async fn a_draft_the_config_would_refuse_is_a_problem_naming_the_field() {
        let http = reqwest::Client::new();
        let findings = check(&draft("keycloak"), "keycloak", &http).await;
        assert!(!findings.usable);
        assert!(findings.items[0].text.starts_with("Domain:"), "{:?}", findings.items);
        let plain = Draft { issuer: "http://id.example.com".into(), ..draft("other") };
        let findings = check(&plain, "id", &http).await;
        assert!(!findings.usable);
        assert!(findings.items[0].text.contains("loopback"), "{:?}", findings.items);
        let unknown = check(&draft("facebook"), "x", &http).await;
        assert!(unknown.items[0].text.contains("not a provider Gatehouse knows"), "{:?}", unknown.items);
    }
}
