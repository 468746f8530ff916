//! The provider profile: where it comes from, what it may say, and the checks that keep it safe.
//!
//! A profile is read from TOML (`--config PATH`, else `GATEHOUSE_CONFIG`, else `config.toml` in the platform
//! config directory; with none, nothing is set up yet and the window opens on its setup view). It is validated once, up front: every error names the
//! field, and a broken file never panics the app.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oauth2::{ClientId, ClientSecret};
use serde::Deserialize;
use url::Url;

use crate::presets::{self, Location, Preset};

mod checks;
use checks::{check_redirect, check_resource, require_tls_or_loopback};

/// The environment variable that names a config file.
pub const CONFIG_ENV: &str = "GATEHOUSE_CONFIG";

/// The longest a sign-in may wait for the browser unless the profile says otherwise.
pub const DEFAULT_SIGN_IN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long one request to the provider may take unless the profile says otherwise.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(20);

pub use crate::error::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    profile: Option<String>,
    preset: Option<String>,
    tenant: Option<String>,
    domain: Option<String>,
    realm: Option<String>,
    name: Option<String>,
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    jwks_uri: Option<String>,
    device_authorization_endpoint: Option<String>,
    pushed_authorization_request_endpoint: Option<String>,
    client_id: String,
    client_secret: Option<String>,
    /// The client secret is in the keychain: one a provider issued when Gatehouse registered itself (RFC 7591).
    #[serde(default)]
    client_secret_in_keychain: bool,
    #[serde(default)]
    scopes: Vec<String>,
    redirect_uri: Option<String>,
    resource_url: Option<String>,
    #[serde(default)]
    resources: Vec<String>,
    trust_gatehouse_commands: Option<bool>,
    sign_in_timeout_secs: Option<u64>,
    http_timeout_secs: Option<u64>,
    dpop: Option<bool>,
    token_endpoint_auth_method: Option<String>,
    prompt: Option<String>,
    #[serde(default)]
    session_ended_errors: Vec<String>,
}

/// A file of several profiles: `[[profile]]` tables, each a one-profile file's keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfiles {
    profile: Vec<RawConfig>,
}

/// Where the provider's endpoints come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoints {
    /// Discovered from the issuer's metadata (RFC 8414, OpenID Connect Discovery).
    Discover {
        /// The issuer identifier.
        issuer: Issuer,
    },
    /// Given in the profile.
    Explicit(Box<ProviderEndpoints>),
}

/// An issuer identifier as the profile writes it, and as a URL. The two differ where a URL library re-spells it
/// (`https://id.example:443` becomes `https://id.example/`): the metadata's `issuer` is compared with what was
/// written (RFC 8414 §3.3, OIDC Discovery §4.3), and the URL is where its documents are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// Where the metadata is: the issuer as a URL.
    pub url: Url,
    /// The issuer exactly as written.
    pub written: String,
}

impl Issuer {
    /// The issuer `written`.
    ///
    /// # Errors
    /// When it is not a URL.
    pub fn new(written: &str) -> Result<Issuer, url::ParseError> {
        Ok(Issuer { url: Url::parse(written)?, written: written.to_owned() })
    }
}

/// The endpoints Gatehouse calls, known or discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEndpoints {
    /// The issuer identifier, when known; checked against `iss` (RFC 9207).
    pub issuer: Option<Url>,
    /// The authorization endpoint.
    pub authorization: Url,
    /// The token endpoint.
    pub token: Url,
    /// The revocation endpoint (RFC 7009), if the provider has one.
    pub revocation: Option<Url>,
    /// The userinfo endpoint, if the provider has one.
    pub userinfo: Option<Url>,
    /// The JWK Set that signs its ID tokens (OIDC Discovery `jwks_uri`), if known.
    pub jwks: Option<Url>,
    /// The device authorization endpoint (RFC 8628 §4), if the provider has one.
    pub device_authorization: Option<Url>,
    /// The pushed authorization request endpoint (RFC 9126 §5), if the provider has one.
    pub pushed_authorization: Option<Url>,
    /// Whether the provider promises `iss` in every authorization response (RFC 9207 §3).
    pub iss_parameter_supported: bool,
    /// Whether the provider lists `select_account` among its `prompt_values_supported`, so that a second
    /// account can be picked at its sign-in page (else Gatehouse asks for `prompt=login`).
    pub select_account_supported: bool,
    /// Whether the provider takes DPoP proofs signed with ES256 (RFC 9449 §5.1
    /// `dpop_signing_alg_values_supported`).
    pub dpop_supported: bool,
    /// Microsoft's multi-tenant issuer, `https://login.microsoftonline.com/{tenantid}/v2.0`, when the tenant is
    /// only known from each ID token's `tid` (then `issuer` is `None`).
    pub issuer_template: Option<String>,
    /// The issuer identifier exactly as the metadata (or, without metadata, the profile) spells it: what `iss`
    /// is compared with, as a string (RFC 9207 §2.4, OIDC Core §3.1.3.7 step 2).
    pub issuer_id: Option<String>,
    /// The client authentication methods its token endpoint takes (RFC 8414 §2
    /// `token_endpoint_auth_methods_supported`), when its metadata lists them.
    pub auth_methods: Option<Vec<String>>,
    /// What else the metadata says, which only setting a provider up reads.
    pub advertised: Advertised,
}

/// What a provider's metadata says beyond the endpoints a sign-in calls: what setting it up in the window
/// reports, and where it registers a client. Each is `None` (or empty) when the metadata doesn't say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Advertised {
    /// The client registration endpoint (RFC 7591 §3, RFC 8414 §2 `registration_endpoint`).
    pub registration: Option<Url>,
    /// `grant_types_supported` (RFC 8414 §2).
    pub grant_types: Option<Vec<String>>,
    /// `scopes_supported` (RFC 8414 §2, OIDC Discovery §3).
    pub scopes: Option<Vec<String>>,
    /// `code_challenge_methods_supported` (RFC 8414 §2).
    pub pkce_methods: Option<Vec<String>>,
}

/// A validated provider profile.
#[derive(Debug, Clone)]
pub struct Config {
    /// Names the keychain entry; one entry per profile.
    pub profile: String,
    /// The provider's name, for the UI.
    pub display_name: String,
    /// Where the endpoints come from.
    pub endpoints: Endpoints,
    /// The client identifier.
    pub client_id: ClientId,
    /// A client secret. In a native app this is not confidential (RFC 8252 §8.5); it is sent only because some
    /// providers insist on one.
    pub client_secret: Option<ClientSecret>,
    /// The client secret is kept in the keychain rather than in the file (`client_secret_in_keychain = true`):
    /// one a provider issued to this installation when Gatehouse registered itself (RFC 7591), which RFC 8252 §8.5
    /// counts as confidential, and which a config file kept in a dotfiles repository must never hold. The service
    /// reads it before any request that needs it.
    pub client_secret_in_keychain: bool,
    /// The scopes to request.
    pub scopes: Vec<String>,
    /// The redirect URI: a private-use URI scheme (RFC 8252 §7.1), or a loopback address with no port
    /// (§7.3), which gets a fresh port for each sign-in.
    pub redirect_uri: Url,
    /// The protected resource to show.
    pub resource_url: Url,
    /// The resources (RFC 8707 §2) the session's tokens may be narrowed to, asked for at sign-in; a token for any
    /// other resource is refused before a request is made.
    pub resources: Vec<Url>,
    /// Gatehouse's own commands (`gatehouse token`, `gatehouse credential`) may have this profile's tokens from
    /// the token agent without the person being asked (the default); `false` asks about them too.
    pub trust_gatehouse_commands: bool,
    /// How long a sign-in may wait for the browser.
    pub sign_in_timeout: Duration,
    /// How long one request to the provider or the resource may take.
    pub http_timeout: Duration,
    /// The preset the profile uses, if any.
    pub preset: Option<Preset>,
    /// DPoP (RFC 9449): `None` to use it where the provider advertises ES256; `Some(false)` never (for tokens
    /// that other tools must use as Bearer tokens); `Some(true)` always (for a provider without metadata).
    pub dpop: Option<bool>,
    /// Microsoft's quirk: the metadata names the tenant differently from the profile (a `{tenantid}` template,
    /// or the tenant's GUID); see [`presets::tenant_issuer`].
    pub tenant_issuer: bool,
    /// Other spellings of the issuer the preset's provider is documented to put in an ID token's `iss`.
    pub issuer_aliases: Vec<String>,
    /// How the client authenticates at the token, revocation and PAR endpoints; `None` to choose from what the
    /// provider lists ([`ClientAuth::choose`]).
    pub token_endpoint_auth_method: Option<ClientAuth>,
    /// The `prompt` sent with the authorization request (OIDC Core §3.1.2.1), if any: `consent` when the
    /// profile asks for `offline_access` (§11) unless it says otherwise with `prompt`.
    pub prompt: Option<String>,
    /// Error codes with which the provider's token endpoint says a refresh token is dead, beside
    /// `invalid_grant` (RFC 6749 §5.2): the session then ends, as with `invalid_grant`.
    pub session_ended_errors: Vec<String>,
}

/// How a client authenticates to the authorization server (RFC 6749 §2.3; the names are RFC 7591 §2's
/// `token_endpoint_auth_method` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: the secret in an HTTP Basic header (RFC 6749 §2.3.1).
    Basic,
    /// `client_secret_post`: the secret in the form body (RFC 6749 §2.3.1).
    Post,
    /// `none`: a public client, named by `client_id` alone (RFC 8252 §8.5).
    None,
}

impl ClientAuth {
    /// The method's registered name.
    pub fn name(self) -> &'static str {
        match self {
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::Post => "client_secret_post",
            ClientAuth::None => "none",
        }
    }

    fn named(name: &str) -> Option<ClientAuth> {
        [ClientAuth::Basic, ClientAuth::Post, ClientAuth::None].into_iter().find(|m| m.name() == name)
    }

    /// The method the provider wants instead, when `supported` (its `token_endpoint_auth_methods_supported`,
    /// RFC 8414 §2) lists only methods Gatehouse doesn't do (`private_key_jwt`, `client_secret_jwt`,
    /// `tls_client_auth`, …) and the profile names none. Gatehouse then sends nothing rather than a secret by a
    /// method the provider didn't offer.
    pub fn unsupported(configured: Option<ClientAuth>, supported: Option<&[String]>) -> Option<String> {
        let listed = supported.filter(|list| !list.is_empty())?;
        let ours = listed.iter().any(|m| ClientAuth::named(m).is_some());
        (configured.is_none() && !ours).then(|| crate::error::clean_for_display(&listed.join(", "), 120))
    }

    /// The method to use: the profile's if it names one; else, for a client with a secret, one the provider
    /// lists in `token_endpoint_auth_methods_supported` (RFC 8414 §2), preferring Basic, which is also the
    /// default when it lists none (RFC 8414 §2: "If omitted, the default is client_secret_basic"); and for a
    /// client without a secret, `none`.
    pub fn choose(configured: Option<ClientAuth>, has_secret: bool, supported: Option<&[String]>) -> ClientAuth {
        if let Some(method) = configured {
            return method;
        }
        if !has_secret {
            return ClientAuth::None;
        }
        let listed = |m: ClientAuth| supported.is_some_and(|list| list.iter().any(|s| s == m.name()));
        match supported {
            Some(_) if !listed(ClientAuth::Basic) && listed(ClientAuth::Post) => ClientAuth::Post,
            _ => ClientAuth::Basic,
        }
    }
}

impl Config {
    /// Parses and validates a profile.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field at fault.
    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let err = |field: &str, problem: String| ConfigError {
            source_name: source_name.to_owned(),
            field: field.to_owned(),
            problem,
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(text, &e, &err))?;
        Config::from_raw(raw, &err)
    }

    /// Parses and validates a config file: one profile at the top level, or several in `[[profile]]` tables,
    /// each with the keys of a one-profile file and its own `profile` name.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field at fault, and for several profiles which one.
    pub fn parse_all(text: &str, source_name: &str) -> Result<Vec<Config>, ConfigError> {
        // Comments alone (a file whose last provider was removed in the window) are no profile.
        if toml::from_str::<toml::Table>(text).is_ok_and(|table| table.is_empty()) {
            return Ok(Vec::new());
        }
        let several = toml::from_str::<toml::Table>(text)
            .is_ok_and(|table| table.get("profile").is_some_and(toml::Value::is_array));
        if !several {
            return Config::parse(text, source_name).map(|config| vec![config]);
        }
        let err = |field: &str, problem: String| ConfigError {
            source_name: source_name.to_owned(),
            field: field.to_owned(),
            problem,
        };
        let file: RawProfiles = toml::from_str(text).map_err(|e| toml_error(text, &e, &err))?;
        if file.profile.is_empty() {
            return Err(err("profile", "list at least one [[profile]]".into()));
        }
        let mut configs: Vec<Config> = Vec::with_capacity(file.profile.len());
        for (index, raw) in file.profile.into_iter().enumerate() {
            let which = format!("[[profile]] number {}", index + 1);
            let named = |field: &str, problem: String| err(&format!("{which}, {field}"), problem);
            if raw.profile.is_none() {
                return Err(named("profile", "missing: with several profiles, each needs its own name".into()));
            }
            let config = Config::from_raw(raw, &named)?;
            // Each profile has its own keychain entry, lock and view, all named by it.
            if configs.iter().any(|c| c.profile == config.profile) {
                return Err(named(
                    "profile",
                    format!("{:?} is used by an earlier profile; names must differ", config.profile),
                ));
            }
            configs.push(config);
        }
        Ok(configs)
    }

    fn from_raw(mut raw: RawConfig, err: FieldError<'_>) -> Result<Config, ConfigError> {
        let (preset, expansion) = preset_of(&mut raw, err)?;
        let endpoints = endpoints_of(&raw, err)?;
        if raw.client_id.trim().is_empty() {
            return Err(err("client_id", "must not be empty".into()));
        }
        for scope in &raw.scopes {
            if !is_scope_token(scope) {
                return Err(err("scopes", format!("{scope:?} is not a valid scope (RFC 6749 §3.3)")));
            }
        }
        let redirect_uri = redirect_of(&raw, expansion.as_ref(), err)?;
        let resource_text = raw.resource_url.as_deref().ok_or_else(|| err("resource_url", "missing".into()))?;
        let resource_url = checked_url("resource_url", resource_text, err)?;
        let resources = raw
            .resources
            .iter()
            .map(|r| check_resource(r).map_err(|p| err("resources", p)))
            .collect::<Result<_, _>>()?;
        let profile = raw.profile.take().unwrap_or_else(|| "default".to_owned());
        if !valid_profile_name(&profile) {
            return Err(err("profile", "use 1 to 64 letters, digits, '-' or '_'".into()));
        }
        let (sign_in_timeout, http_timeout) = timeouts(&raw, err)?;
        let token_endpoint_auth_method = auth_method(&raw, err)?;
        let prompt = prompt_of(raw.prompt.take(), &raw.scopes, expansion.as_ref(), err)?;
        let mut session_ended_errors = raw.session_ended_errors;
        if let Some(e) = &expansion {
            session_ended_errors.extend(e.session_ended_errors.iter().map(|c| c.to_string()));
        }

        Ok(Config {
            token_endpoint_auth_method,
            prompt,
            session_ended_errors,
            issuer_aliases: expansion
                .as_ref()
                .map(|e| e.issuer_aliases.iter().map(|a| a.to_string()).collect())
                .unwrap_or_default(),
            display_name: raw.name.or(expansion.as_ref().map(|e| e.name.to_owned())).unwrap_or_else(
                || match &endpoints {
                    Endpoints::Discover { issuer } => issuer.url.host_str().unwrap_or("provider").to_owned(),
                    Endpoints::Explicit(e) => e.authorization.host_str().unwrap_or("provider").to_owned(),
                },
            ),
            profile,
            endpoints,
            client_id: ClientId::new(raw.client_id),
            client_secret: raw.client_secret.map(ClientSecret::new),
            client_secret_in_keychain: raw.client_secret_in_keychain,
            scopes: raw.scopes,
            redirect_uri,
            resource_url,
            resources,
            trust_gatehouse_commands: raw.trust_gatehouse_commands.unwrap_or(true),
            sign_in_timeout,
            http_timeout,
            tenant_issuer: expansion.as_ref().is_some_and(|e| e.tenant_issuer),
            dpop: raw.dpop,
            preset,
        })
    }

    /// The config file the user chose: `--config PATH`, else `GATEHOUSE_CONFIG` (when not empty), else
    /// `config.toml` in `config_dir`. It need not exist yet: setting a provider up in the window creates it.
    pub fn file_path(args: &[String], env_path: Option<PathBuf>, config_dir: Option<PathBuf>) -> Option<PathBuf> {
        let env_path = env_path.filter(|p| !p.as_os_str().is_empty());
        config_arg(args).or(env_path).or_else(|| config_dir.map(|dir| dir.join("config.toml")))
    }

    /// Reads the profiles of the config file the user chose ([`Config::file_path`]). No file, or a file with no
    /// profile in it, is no profile: nothing is set up yet.
    ///
    /// # Errors
    /// A [`ConfigError`] when the file is unreadable or invalid.
    pub fn load(
        args: &[String],
        env_path: Option<PathBuf>,
        config_dir: Option<PathBuf>,
    ) -> Result<Vec<Config>, ConfigError> {
        match Config::file_path(args, env_path, config_dir) {
            Some(path) if path.exists() => Config::read(&path),
            _ => Ok(Vec::new()),
        }
    }

    fn read(path: &Path) -> Result<Vec<Config>, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            field: "-".into(),
            problem: format!("can't read it ({e})"),
        })?;
        Config::parse_all(&text, &name)
    }

    /// The redirect URI's private-use scheme, which the OS must route to Gatehouse; `None` for a loopback
    /// redirect.
    pub fn redirect_scheme(&self) -> Option<&str> {
        self.loopback().is_none().then(|| self.redirect_uri.scheme())
    }

    /// The loopback address to listen on, for a loopback redirect (RFC 8252 §7.3).
    pub fn loopback(&self) -> Option<std::net::IpAddr> {
        match (self.redirect_uri.scheme(), self.redirect_uri.host()) {
            ("http", Some(url::Host::Ipv4(ip))) => Some(ip.into()),
            ("http", Some(url::Host::Ipv6(ip))) => Some(ip.into()),
            _ => None,
        }
    }
}

/// How a check names the field it refuses: the profile's field and what is wrong with it.
type FieldError<'a> = &'a dyn Fn(&str, String) -> ConfigError;

/// The preset `raw` names, if any, with what it expands to (its fields filled in `raw`).
fn preset_of(
    raw: &mut RawConfig,
    err: FieldError<'_>,
) -> Result<(Option<Preset>, Option<presets::Expansion>), ConfigError> {
    let found = match raw.preset.as_deref() {
        Some(name) => {
            let known = Preset::ALL.map(Preset::name).join(", ");
            let preset = Preset::named(name)
                .ok_or_else(|| err("preset", format!("{name:?} is not a preset; use one of {known}")))?;
            (Some(preset), Some(apply_preset(preset, raw).map_err(|(field, problem)| err(field, problem))?))
        }
        None => {
            for (field, given) in
                [("tenant", raw.tenant.is_some()), ("domain", raw.domain.is_some()), ("realm", raw.realm.is_some())]
            {
                if given {
                    return Err(err(field, "is only used with a preset".into()));
                }
            }
            (None, None)
        }
    };
    Ok(found)
}

/// `value`, the URL of `field`, which must use TLS off loopback.
fn checked_url(field: &str, value: &str, err: FieldError<'_>) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| err(field, format!("not a URL ({e})")))?;
    require_tls_or_loopback(&url).map_err(|problem| err(field, problem))?;
    Ok(url)
}

/// The provider's endpoints as `raw` gives them: its issuer, for discovery, or the endpoints themselves.
fn endpoints_of(raw: &RawConfig, err: FieldError<'_>) -> Result<Endpoints, ConfigError> {
    let optional_url =
        |field: &str, value: &Option<String>| value.as_deref().map(|v| checked_url(field, v, err)).transpose();

    let issuer = optional_url("issuer", &raw.issuer)?;
    let authorization = optional_url("authorization_endpoint", &raw.authorization_endpoint)?;
    let token = optional_url("token_endpoint", &raw.token_endpoint)?;
    let revocation = optional_url("revocation_endpoint", &raw.revocation_endpoint)?;
    let userinfo = optional_url("userinfo_endpoint", &raw.userinfo_endpoint)?;
    let jwks = optional_url("jwks_uri", &raw.jwks_uri)?;
    let device_authorization = optional_url("device_authorization_endpoint", &raw.device_authorization_endpoint)?;
    let pushed_authorization =
        optional_url("pushed_authorization_request_endpoint", &raw.pushed_authorization_request_endpoint)?;
    if let Some(issuer) = &issuer {
        // RFC 8414 §2: the issuer has no query or fragment.
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(err("issuer", "must not have a query or fragment (RFC 8414 §2)".into()));
        }
    }
    let endpoints = match (authorization, token) {
        (Some(authorization), Some(token)) => Endpoints::Explicit(Box::new(ProviderEndpoints {
            issuer,
            authorization,
            token,
            revocation,
            userinfo,
            jwks,
            device_authorization,
            pushed_authorization,
            iss_parameter_supported: false,
            select_account_supported: false,
            dpop_supported: false,
            issuer_template: None,
            issuer_id: raw.issuer.clone(),
            auth_methods: None,
            advertised: Advertised::default(),
        })),
        (None, None) => match issuer {
            Some(issuer)
                if revocation.is_none()
                    && userinfo.is_none()
                    && jwks.is_none()
                    && device_authorization.is_none()
                    && pushed_authorization.is_none() =>
            {
                let written = raw.issuer.clone().unwrap_or_else(|| issuer.to_string());
                Endpoints::Discover { issuer: Issuer { url: issuer, written } }
            }
            Some(_) => {
                return Err(err(
                    "authorization_endpoint",
                    "give it and token_endpoint when other endpoints are listed, or list none to use discovery".into(),
                ))
            }
            None => {
                return Err(err(
                    "issuer",
                    "missing: give the issuer, or both authorization_endpoint and token_endpoint".into(),
                ))
            }
        },
        (Some(_), None) => {
            return Err(err("token_endpoint", "missing: it is needed with authorization_endpoint".into()))
        }
        (None, Some(_)) => {
            return Err(err("authorization_endpoint", "missing: it is needed with token_endpoint".into()))
        }
    };
    Ok(endpoints)
}

/// The redirect URI `raw` gives, checked for what a native app may use (RFC 8252 §7) and for the preset's
/// provider.
fn redirect_of(
    raw: &RawConfig,
    expansion: Option<&presets::Expansion>,
    err: FieldError<'_>,
) -> Result<Url, ConfigError> {
    let redirect_text = raw.redirect_uri.as_deref().ok_or_else(|| err("redirect_uri", "missing".into()))?;
    let redirect_uri = Url::parse(redirect_text).map_err(|e| err("redirect_uri", format!("not a URI ({e})")))?;
    check_redirect(&redirect_uri).map_err(|problem| err("redirect_uri", problem))?;
    // RFC 6749 §3.1.2.3 and RFC 8252 §8.4: the provider compares the redirect URI with the registered one as
    // a string. Gatehouse sends the URI in its normal form (RFC 3986 §6.2.2: scheme and host in lower case,
    // a root path, no default port), so what was written must already be that form, or the provider refuses
    // the sign-in with no hint why.
    if redirect_uri.as_str() != redirect_text {
        return Err(err(
            "redirect_uri",
            format!(
                "Gatehouse would send it as {:?}, and a provider compares it exactly with the one you registered: write redirect_uri = {:?} here and register that form at the provider",
                redirect_uri.as_str(),
                redirect_uri.as_str()
            ),
        ));
    }
    if expansion.is_some_and(|e| e.loopback_only) && redirect_uri.scheme() != "http" {
        let preset = raw.preset.as_deref().unwrap_or_default();
        return Err(err(
            "redirect_uri",
            format!("the {preset} preset's provider accepts only a loopback redirect, such as {}", presets::LOOPBACK),
        ));
    }
    Ok(redirect_uri)
}

/// How long a sign-in waits for the browser, and one request for the provider.
fn timeouts(raw: &RawConfig, err: FieldError<'_>) -> Result<(Duration, Duration), ConfigError> {
    let sign_in_timeout = match raw.sign_in_timeout_secs {
        None => DEFAULT_SIGN_IN_TIMEOUT,
        Some(secs @ 10..=3600) => Duration::from_secs(secs),
        Some(_) => return Err(err("sign_in_timeout_secs", "must be between 10 and 3600".into())),
    };
    let http_timeout = match raw.http_timeout_secs {
        None => DEFAULT_HTTP_TIMEOUT,
        Some(secs @ 1..=300) => Duration::from_secs(secs),
        Some(_) => return Err(err("http_timeout_secs", "must be between 1 and 300".into())),
    };
    Ok((sign_in_timeout, http_timeout))
}

/// How the client authenticates at the token endpoint, checked against whether it has a secret.
fn auth_method(raw: &RawConfig, err: FieldError<'_>) -> Result<Option<ClientAuth>, ConfigError> {
    if raw.client_secret.is_some() && raw.client_secret_in_keychain {
        return Err(err(
            "client_secret_in_keychain",
            "is true, but the profile gives a client_secret too: remove one of them".into(),
        ));
    }
    let has_secret = raw.client_secret.is_some() || raw.client_secret_in_keychain;
    let method = match raw.token_endpoint_auth_method.as_deref() {
        None => None,
        Some(name) => match ClientAuth::named(name) {
            Some(ClientAuth::None) if has_secret => {
                return Err(err(
                    "token_endpoint_auth_method",
                    "is none, but the profile gives a client_secret: remove one of them".into(),
                ))
            }
            Some(ClientAuth::Basic | ClientAuth::Post) if !has_secret => {
                return Err(err("token_endpoint_auth_method", format!("{name} needs a client_secret")))
            }
            Some(method) => Some(method),
            None => {
                return Err(err(
                    "token_endpoint_auth_method",
                    format!("{name:?} is not supported; use client_secret_basic, client_secret_post or none"),
                ))
            }
        },
    };
    Ok(method)
}

/// The `prompt` the profile sends.
fn prompt_of(
    prompt: Option<String>,
    scopes: &[String],
    expansion: Option<&presets::Expansion>,
    err: FieldError<'_>,
) -> Result<Option<String>, ConfigError> {
    // OIDC Core §11: "When offline_access is requested, a prompt parameter value of consent MUST be used
    // unless other conditions for processing the request permitting offline access to the requested resources
    // are in place." A profile whose provider has such conditions says `prompt = ""` (or another value).
    let prompt = match prompt {
        Some(prompt) => {
            let values: Vec<&str> = prompt.split_whitespace().collect();
            if let Some(bad) =
                values.iter().find(|v| !matches!(**v, "none" | "login" | "consent" | "select_account" | "create"))
            {
                return Err(err("prompt", format!("{bad:?} is not a prompt value; use login, consent, select_account or none, or \"\" for no prompt (OIDC Core §3.1.2.1)")));
            }
            (!values.is_empty()).then(|| values.join(" "))
        }
        None => {
            let needs_consent = expansion.is_none_or(|e| e.offline_access_needs_consent);
            (needs_consent && scopes.iter().any(|s| s == "offline_access")).then(|| "consent".to_owned())
        }
    };
    Ok(prompt)
}

/// Fills in what `preset` gives; the profile may still choose its own scopes, redirect and resource.
fn apply_preset(preset: Preset, raw: &mut RawConfig) -> Result<presets::Expansion, (&'static str, String)> {
    for (field, given) in [
        ("issuer", raw.issuer.is_some()),
        ("authorization_endpoint", raw.authorization_endpoint.is_some()),
        ("token_endpoint", raw.token_endpoint.is_some()),
        ("revocation_endpoint", raw.revocation_endpoint.is_some()),
        ("userinfo_endpoint", raw.userinfo_endpoint.is_some()),
        ("jwks_uri", raw.jwks_uri.is_some()),
        ("device_authorization_endpoint", raw.device_authorization_endpoint.is_some()),
        ("pushed_authorization_request_endpoint", raw.pushed_authorization_request_endpoint.is_some()),
    ] {
        if given {
            return Err((field, format!("the {preset} preset gives the provider's endpoints; remove this line")));
        }
    }
    let input = presets::Input {
        tenant: raw.tenant.as_deref(),
        domain: raw.domain.as_deref(),
        realm: raw.realm.as_deref(),
        has_secret: raw.client_secret.is_some() || raw.client_secret_in_keychain,
    };
    let expansion = presets::expand(preset, input)?;
    match &expansion.location {
        Location::Issuer(issuer) => raw.issuer = Some(issuer.clone()),
        Location::Endpoints { issuer, authorization, token } => {
            raw.issuer = Some(issuer.clone());
            raw.authorization_endpoint = Some(authorization.clone());
            raw.token_endpoint = Some(token.clone());
        }
    }
    if raw.scopes.is_empty() {
        raw.scopes = expansion.scopes.iter().map(|s| s.to_string()).collect();
    }
    raw.redirect_uri.get_or_insert_with(|| expansion.redirect_uri.to_owned());
    raw.resource_url.get_or_insert_with(|| expansion.resource_url.clone());
    Ok(expansion)
}

/// A TOML error as a [`ConfigError`], naming the line and key it is on.
fn toml_error(text: &str, e: &toml::de::Error, err: &dyn Fn(&str, String) -> ConfigError) -> ConfigError {
    let field = e.span().map(|span| line_and_key(text, span.start)).unwrap_or_else(|| "-".to_owned());
    err(&field, e.message().to_owned())
}

/// "line N", and the key written on that line when there is one: "line 5 (scopes)".
fn line_and_key(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let number = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    match line.split_once('=').map(|(key, _)| key.trim()) {
        Some(key) if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') => {
            format!("line {number} ({key})")
        }
        _ => format!("line {number}"),
    }
}

/// `--config PATH` or `--config=PATH` among the process arguments.
fn config_arg(args: &[String]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        if arg == "--config" {
            return iter.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

/// Whether `name` may name a profile, and so a keychain entry and a lock file: 1 to 64 ASCII letters, digits,
/// `-` and `_`.
/// Whether `scope` is one scope: RFC 6749 §3.3, `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty() && scope.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

pub fn valid_profile_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
pub(crate) mod tests;
