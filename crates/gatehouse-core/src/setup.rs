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

pub mod advice;
mod registration;

use advice::field;
pub use registration::{register, unregister};

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
    /// The name the provider goes by in the window; empty for the default (the preset's brand, or the issuer's
    /// host and port).
    pub name: String,
    /// Advanced, for a provider found by issuer: `app` for the app's private-use scheme (RFC 8252 §7.1),
    /// `loopback` for a loopback redirect (§7.3); empty for the app's scheme, or, when editing, what is saved.
    pub redirect: String,
    /// Advanced: the scopes to ask for, space-separated; empty for those the provider lists of `openid profile
    /// email offline_access` (or, when editing, what is saved).
    pub scopes: String,
    /// Advanced: the protected resource shown once signed in; empty for the provider's userinfo endpoint (or,
    /// when editing, what is saved).
    pub resource: String,
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
            .field("name", &self.name)
            .field("redirect", &self.redirect)
            .field("scopes", &self.scopes)
            .field("resource", &self.resource)
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
    /// What was found, each a sentence: the problems first.
    pub items: Vec<Finding>,
}

impl Findings {
    /// Findings that are only `problems`.
    fn problems(problems: Vec<Finding>) -> Findings {
        Findings {
            provider: String::new(),
            redirect_uri: String::new(),
            usable: false,
            registers: false,
            items: problems,
        }
    }
}

/// What Save did: saved the profile, or found what Check finds and saved nothing.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum SaveOutcome {
    /// Saved, as this profile.
    #[serde(rename_all = "camelCase")]
    Saved {
        /// The profile's name.
        profile: String,
    },
    /// Nothing saved: these are the problems, as Check says them.
    #[serde(rename_all = "camelCase")]
    Problems {
        /// What Check found.
        findings: Findings,
    },
}

/// One thing Check found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// `ok`, `note` (works, but worth knowing) or `problem` (will not work; the text says the fix).
    pub level: &'static str,
    /// What was found, and for a problem what to do, in plain words.
    pub text: String,
    /// The standard behind it, for those who want it (shown behind a "details" toggle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<&'static str>,
    /// The form field it is about (the names in [`advice::field`]), shown beside that field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// A value for that field that fixes the problem, offered as one click; only where the fix is unambiguous.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn with_level(level: &'static str, text: impl Into<String>) -> Finding {
        Finding { level, text: text.into(), detail: None, field: None, fix: None }
    }
    fn ok(text: impl Into<String>) -> Finding {
        Finding::with_level("ok", text)
    }
    fn note(text: impl Into<String>) -> Finding {
        Finding::with_level("note", text)
    }
    fn problem(text: impl Into<String>) -> Finding {
        Finding::with_level("problem", text)
    }
    /// This finding, about the form field `field`.
    fn at(self, field: &'static str) -> Finding {
        Finding { field: Some(field), ..self }
    }
    /// This finding, fixed by giving its field `fix`.
    fn fixed_by(self, fix: Option<String>) -> Finding {
        Finding { fix, ..self }
    }
    /// This finding, with the standard behind it.
    fn citing(self, detail: &'static str) -> Finding {
        Finding { detail: Some(detail), ..self }
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

    /// The profile's keys, with `client_id`, and for a provider found by issuer its `scopes`, resource, redirect
    /// and name. Only the keys the chosen provider takes are listed (a field typed for another choice and then
    /// hidden is not saved); one left empty is `None`, which removes it when editing.
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
            // RFC 8252 §7.1: the app's private-use scheme, which the system routes to it; or §7.3, a loopback
            // redirect, for providers that take only those.
            let redirect = if self.redirect == "loopback" { presets::LOOPBACK } else { presets::SCHEME };
            fields.push(("redirect_uri", Some(redirect.into())));
            return fields;
        }
        fields.push(("preset", Some(self.preset.as_str().into())));
        fields.push(("name", text(&self.name)));
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

    /// The scopes the person gave under Advanced, if any.
    fn scopes_given(&self) -> Option<Vec<String>> {
        let scopes: Vec<String> = self.scopes.split_whitespace().map(str::to_owned).collect();
        (!scopes.is_empty()).then_some(scopes)
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
pub async fn survey(draft: &Draft, name: &str, http: &crate::http::Http) -> Result<Surveyed> {
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
    // `openid` (a provider may refuse a scope it doesn't know). Scopes given under Advanced are asked as given.
    let listed: Vec<String> = match &endpoints.advertised.scopes {
        Some(listed) => ["openid", "profile", "email", "offline_access"]
            .into_iter()
            .filter(|s| listed.iter().any(|l| l == s))
            .map(str::to_owned)
            .collect(),
        None => vec!["openid".to_owned()],
    };
    let given = draft.scopes_given();
    let mut scopes = given.clone().unwrap_or(listed);
    let resource = match draft.resource.trim() {
        "" => endpoints.userinfo.as_ref().map(Url::as_str).ok_or_else(|| Error::Setup(NO_USERINFO.into()))?,
        given => given,
    };
    // The userinfo endpoint is OpenID Connect's (OIDC Core §5.3), and answers only an `openid` grant: a
    // provider that leaves `openid` out of its list gets it asked for all the same.
    let userinfo = endpoints.userinfo.as_ref().is_some_and(|u| u.as_str() == resource);
    if userinfo && !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_owned());
    }
    let display = match draft.name.trim() {
        "" => default_name(endpoints.issuer.as_ref()),
        given => Some(given.to_owned()),
    };
    let fields = draft.fields(client_id, &scopes, Some(resource), display.as_deref());
    let config = Config::parse(&profile_text(name, &fields), "the new provider")?;
    Ok(Surveyed { fields, endpoints, config })
}

/// Said when a provider found by issuer has no userinfo endpoint and no resource was given.
pub(crate) const NO_USERINFO: &str = "the provider publishes no userinfo endpoint, so there is nothing to show once \
                                      you're signed in: under Advanced, enter the address of a resource to show";

/// The name a provider found by issuer goes by when the person gives none: its host, with the port when the
/// address has one (two providers on one host are told apart).
pub fn default_name(issuer: Option<&Url>) -> Option<String> {
    let issuer = issuer?;
    let host = issuer.host_str()?;
    Some(match issuer.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// A provider already set up, as Check compares a draft with it.
pub struct Existing {
    /// Its profile name.
    pub profile: String,
    /// The name it goes by.
    pub name: String,
    /// Its issuer (or authorization endpoint, without metadata), without a trailing slash.
    pub issuer: String,
    /// Its client ID.
    pub client_id: String,
}

impl Existing {
    /// `config` as Check compares it.
    pub fn of(config: &Config) -> Existing {
        Existing {
            profile: config.profile.clone(),
            name: config.display_name.clone(),
            issuer: issuer_key(config),
            client_id: config.client_id.as_str().to_owned(),
        }
    }
}

/// Where `config` signs in, for telling two providers apart: the issuer (RFC 3986 §6.2.3: a trailing slash
/// on an empty path is no difference), else its authorization endpoint.
fn issuer_key(config: &Config) -> String {
    let url = match &config.endpoints {
        Endpoints::Discover { issuer } => Some(&issuer.url),
        Endpoints::Explicit(endpoints) => endpoints.issuer.as_ref().or(Some(&endpoints.authorization)),
    };
    url.map(|u| u.as_str().trim_end_matches('/').to_owned()).unwrap_or_default()
}

/// Check: what the provider the draft names offers, and anything that will not work, with the fix. `others`
/// are the providers already set up (not the one being edited).
pub async fn check(draft: &Draft, name: &str, http: &crate::http::Http, others: &[Existing]) -> Findings {
    examine(draft, name, http, others).await.0
}

/// What Check finds, and when nothing stands in the way, the profile Save writes. Save and Check run this same
/// examination, so they always say the same.
pub async fn examine(
    draft: &Draft,
    name: &str,
    http: &crate::http::Http,
    others: &[Existing],
) -> (Findings, Option<Surveyed>) {
    if let Some(problems) = form_problems(draft) {
        return (Findings::problems(problems), None);
    }
    let wants_registration = draft.client_id.trim().is_empty();
    let surveyed = match survey(draft, name, http).await {
        Ok(surveyed) => surveyed,
        Err(e) => return (Findings::problems(vec![advice::diagnose(&e, draft).await]), None),
    };
    let (endpoints, config) = (&surveyed.endpoints, &surveyed.config);
    let advertised = &endpoints.advertised;
    let at = if draft.preset == "other" { field::ISSUER } else { field::PRESET };
    let mut items = Vec::new();
    // The same provider twice makes two cards no one can tell apart; another account there is Add account's.
    let key = issuer_key(config);
    if let Some(same) =
        others.iter().find(|o| o.issuer == key && (wants_registration || o.client_id == config.client_id.as_str()))
    {
        items.push(
            Finding::problem(format!(
                "You already have this provider, as “{}”. To sign in with another account there, use Add account \
                 instead; to change it, use its Edit provider.",
                same.name
            ))
            .at(at),
        );
    }
    let discovered = matches!(config.endpoints, Endpoints::Discover { .. });
    items.push(Finding::ok(format!(
        "Signs in at {} and issues tokens at {}{}.",
        endpoints.authorization,
        endpoints.token,
        if discovered { "" } else { " (its documented addresses; it publishes no metadata)" }
    )));
    // RFC 8414 §2: a provider that lists only client authentication Gatehouse doesn't do won't take its requests.
    if let Some(wanted) =
        crate::config::ClientAuth::unsupported(config.token_endpoint_auth_method, endpoints.auth_methods.as_deref())
    {
        items.push(Finding::problem(format!(
            "It accepts only apps that prove who they are by {wanted}, which Gatehouse doesn't do. Ask its \
             administrator for a public client, or one with a client secret."
        )));
    }
    items.extend(offers(endpoints, config, discovered));
    let registers = wants_registration && advertised.registration.is_some();
    if wants_registration {
        items.push(match &advertised.registration {
            Some(_) => {
                Finding::ok("No client ID needed: Gatehouse will register itself with the provider as a desktop app.")
                    .citing("Dynamic client registration: RFC 7591")
            }
            None => Finding::problem(
                "This provider doesn't let apps register themselves. Create a client in its console (a native or \
                 desktop app, with the redirect URI shown here), and enter its client ID.",
            )
            .at(field::CLIENT_ID),
        });
    }
    // The problems first: they are what the person has to act on.
    items.sort_by_key(|item| match item.level {
        "problem" => 0,
        "note" => 1,
        _ => 2,
    });
    let usable = !items.iter().any(|i| i.level == "problem");
    let findings = Findings {
        provider: config.display_name.clone(),
        redirect_uri: config.redirect_uri.to_string(),
        usable,
        registers,
        items,
    };
    (findings, usable.then_some(surveyed))
}

/// What the provider `endpoints` describe offers a profile `config` (found by discovery when `discovered`), in
/// the form's words, each with the standard behind it.
fn offers(endpoints: &ProviderEndpoints, config: &Config, discovered: bool) -> Vec<Finding> {
    let advertised = &endpoints.advertised;
    let mut items = Vec::new();
    // RFC 9700 §2.1.1: PKCE with S256 (a provider listing methods without S256 was refused by discovery).
    match &advertised.pkce_methods {
        Some(_) => items.push(
            Finding::ok("Protects the sign-in against a stolen code, as the provider supports.")
                .citing("PKCE, S256: RFC 7636"),
        ),
        None if discovered => items.push(
            Finding::note("It doesn't say whether it protects sign-ins against a stolen code; Gatehouse asks it to.")
                .citing("PKCE methods not listed; S256 is sent anyway (RFC 7636)"),
        ),
        None => {}
    }
    if endpoints.pushed_authorization.is_some() {
        items.push(
            Finding::ok("Keeps the sign-in's details out of the browser's address bar.")
                .citing("Pushed authorization requests: RFC 9126"),
        );
    }
    items.push(match (endpoints.dpop_supported, config.dpop) {
        (_, Some(false)) => {
            Finding::note("Tokens are not tied to this computer: key binding is off for this provider.")
                .citing("DPoP off: Bearer tokens (RFC 6750)")
        }
        (true, _) => Finding::ok("Tokens are tied to a key only Gatehouse holds: a copied token is useless elsewhere.")
            .citing("DPoP: RFC 9449"),
        (false, _) => {
            Finding::note("Tokens are not tied to this computer: whoever holds one can use it until it expires.")
                .citing("No DPoP: Bearer tokens (RFC 6750)")
        }
    });
    items.push(match endpoints.revocation {
        Some(_) => Finding::ok("Sign out ends the session at the provider too.").citing("Token revocation: RFC 7009"),
        None => Finding::note("Sign out forgets the session here, but the provider keeps it until it expires.")
            .citing("No revocation endpoint (RFC 7009)"),
    });
    items.push(match endpoints.device_authorization {
        Some(_) => Finding::ok("You can also sign in with a code on another device, such as your phone.")
            .citing("Device authorization grant: RFC 8628"),
        None => Finding::note("Sign in with a browser on this computer (this provider has no sign-in with a code)."),
    });
    let refresh = advertised.grant_types.as_ref().is_some_and(|g| g.iter().any(|g| g == "refresh_token"))
        || config.scopes.iter().any(|s| s == "offline_access");
    items.push(if refresh {
        Finding::ok("Gatehouse can most likely keep you signed in: the provider offers renewal.")
            .citing("refresh_token grant advertised (RFC 6749 §6)")
    } else {
        Finding::note("Whether Gatehouse can keep you signed in is known once you sign in: the provider doesn't say.")
            .citing("refresh_token grant not advertised (RFC 8414 §2)")
    });
    items
}

/// A registration the provider refused, as a problem on the client ID field.
pub fn refused_registration(error: &Error) -> Findings {
    let text = match error {
        Error::Setup(why) => advice::sentence(why),
        Error::Network(_) => "Couldn't reach the provider to register Gatehouse. Check your connection and press \
                              Save again, or enter a client ID from the provider's console."
            .to_owned(),
        other => format!(
            "The provider's answer to the registration can't be used ({other}). Create a client in its console, \
             and enter its client ID."
        ),
    };
    Findings::problems(vec![Finding::problem(text).at(field::CLIENT_ID)])
}

/// The fields the form of `preset` needs filled in: each field's key, its element, and what to enter there.
fn required_fields(preset: &str) -> &'static [(&'static str, &'static str, &'static str)] {
    match preset {
        "keycloak" => &[
            ("domain", field::DOMAIN, "Enter your Keycloak's host name, such as id.example.com."),
            ("realm", field::REALM, "Enter the realm's name, as the admin console's realm menu shows it."),
            ("client_id", field::CLIENT_ID, "Enter the client ID from the admin console."),
        ],
        "okta" => &[
            ("domain", field::DOMAIN, "Enter your Okta domain, such as example.okta.com."),
            ("client_id", field::CLIENT_ID, "Enter the client ID from the admin console."),
        ],
        "auth0" => &[
            ("domain", field::DOMAIN, "Enter your Auth0 domain, such as example.eu.auth0.com."),
            ("client_id", field::CLIENT_ID, "Enter the client ID from the dashboard."),
        ],
        "google" => &[
            ("client_id", field::CLIENT_ID, "Enter the client ID from the Google Cloud console."),
            (
                "client_secret",
                field::CLIENT_SECRET,
                "Google requires the client secret shown beside the client ID: enter it.",
            ),
        ],
        "github" => &[
            ("client_id", field::CLIENT_ID, "Enter the client ID of your GitHub OAuth app."),
            (
                "client_secret",
                field::CLIENT_SECRET,
                "GitHub requires a client secret: generate one on the app's page and enter it.",
            ),
        ],
        "microsoft" | "gitlab" => &[("client_id", field::CLIENT_ID, "Enter the client ID of your app registration.")],
        _ => &[],
    }
}

/// What the form shows wrong before the provider is asked anything: an empty or malformed issuer, and an empty
/// field the choice requires.
fn form_problems(draft: &Draft) -> Option<Vec<Finding>> {
    let mut problems = Vec::new();
    match draft.preset.as_str() {
        "" => problems.push(Finding::problem("Choose your provider.").at(field::PRESET)),
        "other" => problems.extend(advice::issuer_problems(&draft.issuer)),
        preset if Preset::named(preset).is_none() => {
            problems.push(Finding::problem(format!("{preset:?} is not a provider Gatehouse knows.")).at(field::PRESET));
        }
        _ => {}
    }
    let required = required_fields(&draft.preset);
    for (key, at, text) in required {
        let value = match *key {
            "domain" => &draft.domain,
            "realm" => &draft.realm,
            "client_id" => &draft.client_id,
            _ => &draft.client_secret,
        };
        if value.trim().is_empty() {
            problems.push(Finding::problem(*text).at(at));
        }
    }
    if draft.preset == "other" && !draft.resource.trim().is_empty() {
        let resource = draft.resource.trim();
        let usable = Url::parse(resource)
            .is_ok_and(|u| u.scheme() == "https" || (u.scheme() == "http" && crate::http::is_loopback(&u)));
        if !usable {
            problems.push(
                Finding::problem(
                    "Enter the resource's full address, such as https://api.example.com/me (https, or http on \
                     127.0.0.1).",
                )
                .at(field::RESOURCE),
            );
        }
    }
    if let Some(scopes) = draft.scopes_given() {
        // RFC 6749 §3.3: scope tokens, separated by spaces (the same check the config file gets).
        if let Some(bad) = scopes.iter().find(|s| !crate::config::is_scope_token(s)) {
            problems.push(
                Finding::problem(format!(
                    "{bad:?} can't be a scope: scopes are words separated by spaces, without quotes or backslashes."
                ))
                .at(field::SCOPES),
            );
        }
    }
    (!problems.is_empty()).then_some(problems)
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
    /// The name it goes by, as written (empty for the default).
    pub name: String,
    /// `app`, `loopback`, or the redirect URI written by hand.
    pub redirect: String,
    /// The scopes written, space-separated.
    pub scopes: String,
    /// The resource URL written.
    pub resource: String,
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
            name: text("name"),
            redirect: match text("redirect_uri").as_str() {
                "" | presets::SCHEME => "app".to_owned(),
                presets::LOOPBACK => "loopback".to_owned(),
                other => other.to_owned(),
            },
            scopes: table
                .get("scopes")
                .and_then(toml_edit::Item::as_array)
                .map(|a| a.iter().filter_map(toml_edit::Value::as_str).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
            resource: text("resource_url"),
        }
    }
}

#[cfg(test)]
mod tests;
