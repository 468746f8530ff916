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

    fn from_raw(mut raw: RawConfig, err: &dyn Fn(&str, String) -> ConfigError) -> Result<Config, ConfigError> {
        let (preset, expansion) = match raw.preset.as_deref() {
            Some(name) => {
                let known = Preset::ALL.map(Preset::name).join(", ");
                let preset = Preset::named(name)
                    .ok_or_else(|| err("preset", format!("{name:?} is not a preset; use one of {known}")))?;
                (Some(preset), Some(apply_preset(preset, &mut raw).map_err(|(field, problem)| err(field, problem))?))
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

        let url = |field: &str, value: &str| -> Result<Url, ConfigError> {
            let url = Url::parse(value).map_err(|e| err(field, format!("not a URL ({e})")))?;
            require_tls_or_loopback(&url).map_err(|problem| err(field, problem))?;
            Ok(url)
        };
        let optional_url = |field: &str, value: &Option<String>| value.as_deref().map(|v| url(field, v)).transpose();

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
                        "give it and token_endpoint when other endpoints are listed, or list none to use discovery"
                            .into(),
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

        if raw.client_id.trim().is_empty() {
            return Err(err("client_id", "must not be empty".into()));
        }
        for scope in &raw.scopes {
            if !is_scope_token(scope) {
                return Err(err("scopes", format!("{scope:?} is not a valid scope (RFC 6749 §3.3)")));
            }
        }
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
        if expansion.as_ref().is_some_and(|e| e.loopback_only) && redirect_uri.scheme() != "http" {
            let preset = raw.preset.as_deref().unwrap_or_default();
            return Err(err(
                "redirect_uri",
                format!(
                    "the {preset} preset's provider accepts only a loopback redirect, such as {}",
                    presets::LOOPBACK
                ),
            ));
        }
        let resource_text = raw.resource_url.as_deref().ok_or_else(|| err("resource_url", "missing".into()))?;
        let resource_url = url("resource_url", resource_text)?;

        let profile = raw.profile.unwrap_or_else(|| "default".to_owned());
        if !valid_profile_name(&profile) {
            return Err(err("profile", "use 1 to 64 letters, digits, '-' or '_'".into()));
        }
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

        if raw.client_secret.is_some() && raw.client_secret_in_keychain {
            return Err(err(
                "client_secret_in_keychain",
                "is true, but the profile gives a client_secret too: remove one of them".into(),
            ));
        }
        let has_secret = raw.client_secret.is_some() || raw.client_secret_in_keychain;
        let token_endpoint_auth_method = match raw.token_endpoint_auth_method.as_deref() {
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
        // OIDC Core §11: "When offline_access is requested, a prompt parameter value of consent MUST be used
        // unless other conditions for processing the request permitting offline access to the requested resources
        // are in place." A profile whose provider has such conditions says `prompt = ""` (or another value).
        let prompt = match raw.prompt {
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
                let needs_consent = expansion.as_ref().is_none_or(|e| e.offline_access_needs_consent);
                (needs_consent && raw.scopes.iter().any(|s| s == "offline_access")).then(|| "consent".to_owned())
            }
        };
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

/// Endpoints must use TLS (RFC 6749 §3.1, §3.2; RFC 9700 §2.6), except on the loopback interface, where the
/// traffic never leaves the machine (the bundled demo provider runs there).
///
/// Only an IP literal counts as loopback here (RFC 8252 §8.3): `localhost`, and `*.localhost`, are names a
/// resolver, a hosts file or a proxy setting may send elsewhere. A URL with user information is refused: a
/// password in it would travel with every request, and `https://good.example@evil.example/` names `evil.example`.
fn require_tls_or_loopback(url: &Url) -> Result<(), String> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password (user@host): give credentials in their own fields".into());
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::http::is_loopback(url) => Ok(()),
        "http" if crate::http::names_localhost(url) => Err(
            "must use https: only the loopback addresses 127.0.0.1 and [::1] may use http, not the name localhost, which a resolver may send elsewhere (RFC 8252 §8.3)".into(),
        ),
        "http" => Err("must use https (only loopback addresses may use http)".into()),
        other => Err(format!("must be an https URL, not {other}:")),
    }
}

/// The two redirects a native app may use here:
/// - RFC 8252 §7.3: `http://127.0.0.1/path` or `http://[::1]/path`, an IP literal, with no port (each sign-in
///   listens on a fresh one) or, for providers that match it exactly, a fixed one; never `localhost` (§8.3),
///   which a resolver or firewall could send elsewhere;
/// - RFC 8252 §7.1: a private-use URI scheme in reverse-DNS form, which contains a period, so that it is tied to
///   a domain the app's publisher controls.
fn check_redirect(uri: &Url) -> Result<(), String> {
    if uri.scheme() == "http" {
        let loopback_literal = match uri.host() {
            Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
            Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
            _ => false,
        };
        if !loopback_literal {
            return Err(
                "an http redirect must be the loopback address http://127.0.0.1/callback or http://[::1]/callback \
                 (RFC 8252 §7.3, §8.3: not localhost, not another host)"
                    .into(),
            );
        }
        // RFC 8252 §7.3 wants any port accepted, and by default Gatehouse listens on a fresh one for each
        // sign-in. Some providers match the port exactly, and a browser on the far end of an SSH tunnel needs a
        // known one: a port written here is used as it is.
        if uri.port() == Some(0) {
            return Err("port 0 is not a port: leave the port out, and Gatehouse listens on a fresh one for each sign-in (RFC 8252 §7.3)".into());
        }
    } else if !uri.scheme().contains('.') {
        return Err(
            "use a private-use scheme in reverse-DNS form, such as com.example.app:/callback (RFC 8252 §7.1)".into()
        );
    }
    if uri.query().is_some() || uri.fragment().is_some() {
        return Err("must not have a query or fragment (RFC 6749 §3.1.2)".into());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const GOOD: &str = r#"
        profile = "work"
        issuer = "https://id.example.com"
        client_id = "abc"
        scopes = ["openid", "offline_access"]
        redirect_uri = "com.example.gatehouse:/callback"
        resource_url = "https://api.example.com/me"
    "#;

    fn field_of(text: &str) -> String {
        Config::parse(text, "test").unwrap_err().field
    }

    #[test]
    fn several_profiles_sit_side_by_side_in_profile_tables() {
        let text = r#"
            [[profile]]
            profile = "work"
            issuer = "https://id.example.com"
            client_id = "abc"
            redirect_uri = "com.example.gatehouse:/callback"
            resource_url = "https://api.example.com/me"

            [[profile]]
            profile = "home"
            preset = "github"
            client_id = "Iv1.home"
            client_secret = "not-secret-in-a-desktop-app"
        "#;
        let profiles = Config::parse_all(text, "test").unwrap();
        let names: Vec<&str> = profiles.iter().map(|c| c.profile.as_str()).collect();
        assert_eq!(names, ["work", "home"]);
        assert_eq!(profiles[1].preset, Some(Preset::named("github").unwrap()));
        // The one-profile file is still what it was.
        let single = Config::parse_all(GOOD, "test").unwrap();
        assert_eq!((single.len(), single[0].profile.as_str()), (1, "work"));
    }

    #[test]
    fn several_profiles_each_need_a_name_of_their_own() {
        let table = |name: &str| {
            format!(
                "[[profile]]\n{name}issuer = \"https://id.example.com\"\nclient_id = \"abc\"\n\
                 redirect_uri = \"com.example.gatehouse:/callback\"\nresource_url = \"https://api.example.com/me\"\n"
            )
        };
        let unnamed = format!("{}{}", table("profile = \"a\"\n"), table(""));
        let e = Config::parse_all(&unnamed, "test").unwrap_err();
        assert_eq!(e.field, "[[profile]] number 2, profile", "{e}");
        let twice = format!("{}{}", table("profile = \"a\"\n"), table("profile = \"a\"\n"));
        let e = Config::parse_all(&twice, "test").unwrap_err();
        assert_eq!(e.field, "[[profile]] number 2, profile", "{e}");
        assert!(e.problem.contains("earlier profile"), "{e}");
        let broken = format!("{}{}", table("profile = \"a\"\n"), table("profile = \"b\"\nscopes = [\"bad scope\"]\n"));
        let e = Config::parse_all(&broken, "test").unwrap_err();
        assert_eq!(e.field, "[[profile]] number 2, scopes", "{e}");
        // Top-level keys beside the tables are a mistake, not silently ignored.
        let e = Config::parse_all(&format!("client_id = \"x\"\n{}", table("profile = \"a\"\n")), "test").unwrap_err();
        assert!(e.problem.contains("client_id"), "{e}");
    }

    #[test]
    fn demo_profile_is_valid() {
        let demo = Config::parse(include_str!("../../../tests/idp/demo.toml"), "demo").unwrap();
        assert_eq!(demo.profile, "demo");
        assert_eq!(demo.redirect_scheme(), Some("com.example.gatehouse"));
        assert!(matches!(demo.endpoints, Endpoints::Discover { .. }));
    }

    #[test]
    fn good_profile_parses() {
        let config = Config::parse(GOOD, "test").unwrap();
        assert_eq!(config.profile, "work");
        assert_eq!(config.display_name, "id.example.com");
        assert_eq!(config.scopes, ["openid", "offline_access"]);
        assert_eq!(config.sign_in_timeout, DEFAULT_SIGN_IN_TIMEOUT);
        assert!(config.client_secret.is_none());
    }

    #[test]
    fn explicit_endpoints_parse() {
        let text = r#"
            authorization_endpoint = "https://id.example.com/authorize"
            token_endpoint = "https://id.example.com/token"
            revocation_endpoint = "https://id.example.com/revoke"
            client_id = "abc"
            client_secret = "not-so-secret"
            redirect_uri = "com.example.gatehouse:/callback"
            resource_url = "https://api.example.com/me"
        "#;
        let config = Config::parse(text, "test").unwrap();
        let Endpoints::Explicit(e) = config.endpoints else { panic!("expected explicit endpoints") };
        assert_eq!(e.revocation.unwrap().path(), "/revoke");
        assert!(e.issuer.is_none());
        assert_eq!(config.client_secret.unwrap().secret(), "not-so-secret");
    }

    #[test]
    fn bad_inputs_name_the_field() {
        assert_eq!(field_of(&GOOD.replace("https://id.example.com", "http://id.example.com")), "issuer");
        assert_eq!(field_of(&GOOD.replace("https://id.example.com", "ftp://id.example.com")), "issuer");
        assert_eq!(field_of(&GOOD.replace("https://id.example.com", "not a url")), "issuer");
        assert_eq!(field_of(&GOOD.replace("https://id.example.com", "https://id.example.com/?x=1")), "issuer");
        assert_eq!(field_of(&GOOD.replace("com.example.gatehouse:/callback", "gatehouse:/callback")), "redirect_uri");
        assert_eq!(
            field_of(&GOOD.replace("com.example.gatehouse:/callback", "com.example.gatehouse:/cb?x=1")),
            "redirect_uri"
        );
        assert_eq!(field_of(&GOOD.replace("com.example.gatehouse:/callback", "")), "redirect_uri");
        assert_eq!(field_of(&GOOD.replace("\"offline_access\"", "\"bad scope\"")), "scopes");
        assert_eq!(field_of(&GOOD.replace("\"abc\"", "\"  \"")), "client_id");
        assert_eq!(field_of(&GOOD.replace("\"work\"", "\"../etc\"")), "profile");
        assert_eq!(field_of(&GOOD.replace("https://api.example.com/me", "http://api.example.com/me")), "resource_url");
        assert_eq!(field_of(&format!("{GOOD}\nsign_in_timeout_secs = 5")), "sign_in_timeout_secs");
        assert_eq!(field_of(&format!("{GOOD}\nhttp_timeout_secs = 0")), "http_timeout_secs");
        assert_eq!(field_of(&GOOD.replace("issuer = \"https://id.example.com\"", "")), "issuer");
        assert_eq!(field_of(&GOOD.replace("issuer", "authorization_endpoint")), "token_endpoint");
    }

    #[test]
    fn syntax_and_unknown_fields_are_reported_with_a_line() {
        let unknown = Config::parse(&format!("{GOOD}\nclient_secert = \"x\"\n"), "test").unwrap_err();
        assert_eq!(unknown.field, "line 9 (client_secert)", "{unknown:?}");
        assert!(unknown.problem.contains("client_secert"), "{unknown:?}");
        let broken = Config::parse("issuer = ", "test").unwrap_err();
        assert_eq!(broken.field, "line 1 (issuer)");
        let missing = Config::parse("issuer = \"https://a.example\"", "test").unwrap_err();
        assert!(missing.problem.contains("client_id"), "{missing:?}");
        let wrong_type =
            Config::parse(&GOOD.replace("[\"openid\", \"offline_access\"]", "\"openid\""), "test").unwrap_err();
        assert_eq!(wrong_type.field, "line 5 (scopes)");
        assert!(wrong_type.problem.contains("expected a sequence"), "{wrong_type:?}");
    }

    #[test]
    fn presets_fill_in_the_provider() {
        let parse = |text: &str| Config::parse(text, "test").unwrap();
        let google =
            parse("preset = \"google\"\nclient_id = \"1-x.apps.googleusercontent.com\"\nclient_secret = \"s\"\n");
        assert_eq!(google.preset, Some(Preset::Google));
        assert_eq!(google.display_name, "Google");
        assert!(
            matches!(&google.endpoints, Endpoints::Discover { issuer } if issuer.url.as_str() == "https://accounts.google.com/")
        );
        assert_eq!(google.redirect_uri.as_str(), "http://127.0.0.1/callback");
        assert_eq!(google.loopback(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(google.resource_url.as_str(), "https://openidconnect.googleapis.com/v1/userinfo");
        assert_eq!(google.scopes, ["openid", "email", "profile"]);
        assert!(!google.tenant_issuer);

        let github = parse("preset = \"github\"\nclient_id = \"Iv1.x\"\nclient_secret = \"s\"\n");
        let Endpoints::Explicit(e) = &github.endpoints else { panic!("GitHub has no discovery") };
        assert_eq!(e.issuer.as_ref().map(Url::as_str), Some("https://github.com/login/oauth"));
        assert_eq!(e.token.as_str(), "https://github.com/login/oauth/access_token");
        assert!(e.revocation.is_none(), "GitHub has no RFC 7009 endpoint");

        let microsoft = parse("preset = \"microsoft\"\nclient_id = \"00000000-0000-0000-0000-000000000000\"\n");
        assert!(microsoft.tenant_issuer);
        assert_eq!(microsoft.redirect_uri.as_str(), "http://127.0.0.1/callback");

        // The profile may choose its own scopes and resource.
        let own = parse(
            "preset = \"gitlab\"\nclient_id = \"x\"\nscopes = [\"openid\", \"read_user\"]\nresource_url = \"https://gitlab.com/api/v4/user\"\n",
        );
        assert_eq!(own.scopes, ["openid", "read_user"]);
        assert_eq!(own.resource_url.as_str(), "https://gitlab.com/api/v4/user");
        assert_eq!(own.redirect_uri.as_str(), "com.example.gatehouse:/callback");
    }

    #[test]
    fn presets_refuse_what_they_cannot_take() {
        let field = |text: &str| Config::parse(text, "test").unwrap_err().field;
        assert_eq!(field("preset = \"facebook\"\nclient_id = \"x\"\n"), "preset");
        assert_eq!(field("preset = \"google\"\nclient_id = \"x\"\n"), "client_secret");
        let scheme = "preset = \"google\"\nclient_id = \"x\"\nclient_secret = \"s\"\nredirect_uri = \"com.example.gatehouse:/callback\"\n";
        assert_eq!(field(scheme), "redirect_uri");
        assert_eq!(field("preset = \"okta\"\nclient_id = \"x\"\n"), "domain");
        assert_eq!(
            field("preset = \"okta\"\ndomain = \"a.okta.com\"\nissuer = \"https://a.okta.com\"\nclient_id = \"x\"\n"),
            "issuer"
        );
        assert_eq!(field(&format!("{GOOD}\ndomain = \"a.example\"\n")), "domain");
        assert_eq!(field(&GOOD.replace("redirect_uri = \"com.example.gatehouse:/callback\"", "")), "redirect_uri");
    }

    #[test]
    fn loopback_redirects() {
        let with = |redirect: &str| Config::parse(&GOOD.replace("com.example.gatehouse:/callback", redirect), "test");
        let v4 = with("http://127.0.0.1/callback").unwrap();
        assert_eq!(v4.loopback(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(v4.redirect_scheme(), None);
        assert_eq!(with("http://[::1]/cb").unwrap().loopback(), Some("::1".parse().unwrap()));
        for bad in [
            "http://localhost/callback",
            "http://127.0.0.1:0/callback",
            "http://127.0.0.2/callback",
            "http://0.0.0.0/callback",
            "http://example.com/callback",
            "http://127.0.0.1/callback?x=1",
            "https://127.0.0.1/callback",
        ] {
            let error = with(bad).unwrap_err();
            assert_eq!(error.field, "redirect_uri", "{bad}");
            assert!(error.problem.contains("RFC"), "{bad}: {}", error.problem);
        }
        let scheme = Config::parse(GOOD, "test").unwrap();
        assert_eq!((scheme.loopback(), scheme.redirect_scheme()), (None, Some("com.example.gatehouse")));
    }

    /// Some providers match a loopback redirect's port exactly, and an SSH tunnel needs a known one: a port
    /// written in the profile is kept (the port-less form stays the default).
    #[test]
    fn a_loopback_redirect_may_name_a_fixed_port() {
        let with = |redirect: &str| Config::parse(&GOOD.replace("com.example.gatehouse:/callback", redirect), "test");
        let fixed = with("http://127.0.0.1:8765/callback").unwrap();
        assert_eq!(fixed.loopback(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(fixed.redirect_uri.port(), Some(8765));
        assert_eq!(with("http://[::1]:8765/callback").unwrap().redirect_uri.port(), Some(8765));
        assert_eq!(with("http://127.0.0.1/callback").unwrap().redirect_uri.port(), None);
    }

    /// What is written is what the provider receives: a redirect URI that `Url` would send in another form is
    /// refused, with the form to write (and register) instead.
    #[test]
    fn a_redirect_uri_is_sent_exactly_as_written_or_refused_with_the_fix() {
        let with = |redirect: &str| Config::parse(&GOOD.replace("com.example.gatehouse:/callback", redirect), "test");
        for (written, sent) in [
            ("com.Example.Gatehouse:/callback", "com.example.gatehouse:/callback"),
            ("COM.EXAMPLE.GATEHOUSE:/callback", "com.example.gatehouse:/callback"),
            ("http://127.0.0.1:80/callback", "http://127.0.0.1/callback"),
            ("http://127.0.0.1", "http://127.0.0.1/"),
            ("http://127.0.0.1/a/../callback", "http://127.0.0.1/callback"),
            ("com.example.gatehouse:/call back", "com.example.gatehouse:/call%20back"),
        ] {
            let error = with(written).unwrap_err();
            assert_eq!(error.field, "redirect_uri", "{written}");
            assert!(error.problem.contains(&format!("redirect_uri = {sent:?}")), "{written}: {}", error.problem);
        }
        for exact in ["com.example.gatehouse:/callback", "com.example.gatehouse://callback/x", "http://127.0.0.1/cb"] {
            assert_eq!(with(exact).unwrap().redirect_uri.as_str(), exact);
        }
    }

    /// A secret kept in the keychain is a secret for the rules of the file, and never one written in it too.
    #[test]
    fn a_secret_in_the_keychain_stands_for_one_in_the_file() {
        let text =
            format!("{GOOD}\nclient_secret_in_keychain = true\ntoken_endpoint_auth_method = \"client_secret_basic\"\n");
        let config = Config::parse(&text, "test").unwrap();
        assert!(config.client_secret_in_keychain && config.client_secret.is_none());
        let both = format!("{GOOD}\nclient_secret = \"s\"\nclient_secret_in_keychain = true\n");
        assert_eq!(field_of(&both), "client_secret_in_keychain");
        let google = "preset = \"google\"\nclient_id = \"x\"\nclient_secret_in_keychain = true\n";
        assert!(Config::parse(google, "test").is_ok(), "a preset that needs a secret takes one in the keychain");
    }

    #[test]
    fn client_authentication_is_one_the_provider_lists() {
        let listed = |methods: &[&str]| methods.iter().map(|m| m.to_string()).collect::<Vec<_>>();
        let choose = |configured, secret, supported: Option<Vec<String>>| {
            ClientAuth::choose(configured, secret, supported.as_deref())
        };
        // RFC 8414 §2: Basic when the metadata lists nothing; Post when it lists only Post.
        assert_eq!(choose(None, true, None), ClientAuth::Basic);
        assert_eq!(choose(None, true, Some(listed(&["client_secret_post"]))), ClientAuth::Post);
        assert_eq!(choose(None, true, Some(listed(&["client_secret_post", "client_secret_basic"]))), ClientAuth::Basic);
        assert_eq!(choose(None, false, Some(listed(&["client_secret_post"]))), ClientAuth::None);
        // A provider that lists only methods Gatehouse lacks is said to want one of them: nothing is sent.
        let unsupported =
            |configured, supported: &[&str]| ClientAuth::unsupported(configured, Some(&listed(supported)));
        assert_eq!(unsupported(None, &["private_key_jwt"]).as_deref(), Some("private_key_jwt"));
        assert_eq!(
            unsupported(None, &["private_key_jwt", "tls_client_auth"]).as_deref(),
            Some("private_key_jwt, tls_client_auth")
        );
        assert_eq!(unsupported(None, &["private_key_jwt", "client_secret_post"]), None);
        assert_eq!(unsupported(None, &["none", "client_secret_jwt"]), None);
        assert_eq!(unsupported(Some(ClientAuth::Basic), &["private_key_jwt"]), None, "the profile decides");
        assert_eq!(ClientAuth::unsupported(None, None), None, "nothing listed: the RFC 8414 default");
        assert_eq!(ClientAuth::unsupported(None, Some(&[])), None);
        // The profile decides when it says.
        assert_eq!(choose(Some(ClientAuth::Post), true, None), ClientAuth::Post);
        let text = format!("{GOOD}\nclient_secret = \"s\"\ntoken_endpoint_auth_method = \"client_secret_post\"\n");
        assert_eq!(Config::parse(&text, "test").unwrap().token_endpoint_auth_method, Some(ClientAuth::Post));
        for (extra, field) in [
            ("token_endpoint_auth_method = \"client_secret_jwt\"", "token_endpoint_auth_method"),
            ("token_endpoint_auth_method = \"client_secret_basic\"", "token_endpoint_auth_method"),
        ] {
            assert_eq!(field_of(&format!("{GOOD}\n{extra}\n")), field, "{extra}");
        }
    }

    /// OIDC Core §11: offline_access goes with prompt=consent unless the profile says otherwise.
    #[test]
    fn offline_access_asks_for_consent_unless_the_profile_says_otherwise() {
        assert_eq!(Config::parse(GOOD, "test").unwrap().prompt.as_deref(), Some("consent"));
        let without = GOOD.replace(", \"offline_access\"", "");
        assert_eq!(Config::parse(&without, "test").unwrap().prompt, None);
        assert_eq!(Config::parse(&format!("{GOOD}\nprompt = \"\"\n"), "test").unwrap().prompt, None);
        assert_eq!(
            Config::parse(&format!("{GOOD}\nprompt = \"login  consent\"\n"), "test").unwrap().prompt.as_deref(),
            Some("login consent")
        );
        assert_eq!(field_of(&format!("{GOOD}\nprompt = \"always\"\n")), "prompt");
    }

    /// GitHub says a refresh token is dead with `bad_refresh_token`; its preset records that, and any profile can
    /// list its provider's own codes.
    #[test]
    fn a_preset_or_profile_names_its_providers_dead_refresh_token_errors() {
        let github = "preset = \"github\"\nclient_id = \"x\"\nclient_secret = \"y\"\n";
        assert_eq!(Config::parse(github, "test").unwrap().session_ended_errors, ["bad_refresh_token"]);
        let own = format!("{GOOD}\nsession_ended_errors = [\"token_revoked\"]\n");
        assert_eq!(Config::parse(&own, "test").unwrap().session_ended_errors, ["token_revoked"]);
        assert!(Config::parse(GOOD, "test").unwrap().session_ended_errors.is_empty());
        let google = "preset = \"google\"\nclient_id = \"x\"\nclient_secret = \"y\"\n";
        assert_eq!(Config::parse(google, "test").unwrap().issuer_aliases, ["accounts.google.com"]);
    }

    /// RFC 8252 §8.3: plain http only for loopback IP literals, never for names that a resolver could send
    /// elsewhere; and no user information in any URL.
    #[test]
    fn only_loopback_ip_literals_may_use_plain_http_and_no_url_carries_a_user() {
        for (url, allowed) in [
            ("http://127.0.0.1:4470", true),
            ("http://[::1]:4470", true),
            ("http://127.5.6.7", true),
            ("http://localhost:4470", false),
            ("http://LOCALHOST.", false),
            ("http://id.localhost", false),
            ("https://localhost", true),
            ("https://user@id.example.com", false),
            ("https://id.example.com:pw@evil.example", false),
            ("http://user:pw@127.0.0.1", false),
        ] {
            let text = GOOD.replace("https://id.example.com", url);
            assert_eq!(Config::parse(&text, "test").is_ok(), allowed, "{url}");
            if !allowed {
                assert_eq!(field_of(&text), "issuer", "{url}");
            }
        }
        let resource = GOOD.replace("https://api.example.com/me", "http://localhost:8080/me");
        assert!(field_of(&resource).contains("resource_url"));
    }

    #[test]
    fn loopback_http_is_allowed() {
        let text = GOOD
            .replace("https://id.example.com", "http://127.0.0.1:4470")
            .replace("https://api.example.com", "http://[::1]:9");
        assert!(Config::parse(&text, "test").is_ok());
    }

    #[test]
    fn load_picks_the_right_source() {
        let dir = std::env::temp_dir().join(format!("gatehouse-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.toml");
        std::fs::write(&file, GOOD).unwrap();
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

        assert_eq!(Config::load(&args(&["gh"]), None, Some(dir.clone())).unwrap()[0].profile, "work");
        // No file is nothing set up yet (the window's setup view), never a built-in profile.
        assert!(Config::load(&args(&["gh"]), None, Some(dir.join("none"))).unwrap().is_empty());
        let flag = format!("--config={}", file.display());
        assert_eq!(Config::load(&args(&["gh", &flag]), None, None).unwrap()[0].profile, "work");
        let missing = Config::load(&args(&["gh", "--config", "/nonexistent/x.toml"]), Some(file.clone()), None);
        assert!(missing.unwrap().is_empty());
        assert_eq!(
            Config::file_path(&args(&["gh"]), Some(PathBuf::new()), Some(dir.clone())),
            Some(dir.join("config.toml")),
            "an empty GATEHOUSE_CONFIG is no choice"
        );
        assert_eq!(Config::load(&args(&["gh"]), Some(file.clone()), None).unwrap()[0].profile, "work");
        std::fs::write(&file, "# every provider was removed\n").unwrap();
        assert!(Config::load(&args(&["gh"]), Some(file), None).unwrap().is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The endpoint fields a config file (and a metadata document) may give, for the property tests.
    pub(crate) const ENDPOINT_FIELDS: [&str; 7] = [
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "device_authorization_endpoint",
        "pushed_authorization_request_endpoint",
    ];

    /// Generated profiles (`proptest`; 10,000 cases each in CI, more with `tests/bin/fuzz`).
    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// URLs of every kind a person might type: https, http to loopback and elsewhere, `localhost`, private
        /// schemes with and without a period, ports, queries and fragments, and junk.
        fn url_text() -> impl Strategy<Value = String> {
            let scheme = proptest::sample::select(vec!["https", "http", "com.example.app", "myapp", "ftp", ""]);
            let host =
                proptest::sample::select(vec!["id.example.com", "127.0.0.1", "[::1]", "localhost", "10.0.0.1", ""]);
            let port = proptest::option::of(1u16..);
            let path = "(/[a-z{}]{0,6}){0,2}";
            let tail = proptest::sample::select(vec!["", "?x=1", "#f", "?"]);
            prop_oneof![
                4 => (scheme, host, port, path, tail).prop_map(|(scheme, host, port, path, tail)| {
                    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                    if scheme.contains('.') || scheme == "myapp" {
                        format!("{scheme}:{path}{tail}")
                    } else {
                        format!("{scheme}://{host}{port}{path}{tail}")
                    }
                }),
                1 => any::<String>(),
            ]
        }

        fn toml_string(text: &str) -> String {
            toml::Value::String(text.to_owned()).to_string()
        }

        /// A profile: any subset of the fields, each with a plausible or an odd value.
        fn profile() -> impl Strategy<Value = String> {
            let mut urls = vec!["issuer", "redirect_uri", "resource_url"];
            urls.extend(ENDPOINT_FIELDS);
            let words = ["profile", "preset", "tenant", "domain", "realm", "name", "client_id", "client_secret"];
            let word_fields = proptest::option::weighted(
                0.3,
                (
                    proptest::sample::select(words.to_vec()),
                    prop_oneof![
                        Just("google".to_owned()),
                        Just("microsoft".to_owned()),
                        Just("github".to_owned()),
                        Just("keycloak".to_owned()),
                        "[a-z0-9.-]{0,12}",
                        any::<String>()
                    ],
                ),
            )
            .prop_map(|field| field.into_iter().collect::<Vec<_>>());
            let numbers = proptest::option::weighted(
                0.3,
                (
                    proptest::sample::select(vec!["sign_in_timeout_secs", "http_timeout_secs"]),
                    prop_oneof![3 => 10i64..300, 1 => any::<i64>()],
                ),
            );
            // Mostly a working skeleton, so that many profiles pass and the rules below are tested on them; each
            // part is sometimes replaced by anything.
            let skeleton = (
                prop_oneof![3 => Just("https://id.example.com".to_owned()), 1 => url_text()],
                prop_oneof![
                    4 => Just("com.example.app:/callback".to_owned()),
                    2 => Just("http://127.0.0.1/callback".to_owned()),
                    1 => Just("http://[::1]/callback".to_owned()),
                    // The near misses RFC 8252 §7.3 and §8.3 rule out.
                    1 => proptest::sample::select(vec![
                        "http://localhost/callback", "http://10.0.0.1/callback", "http://127.0.0.1:8080/callback",
                        "http://[::2]/callback", "https://127.0.0.1/callback", "myapp:/callback",
                        "com.example.app:/callback?x=1",
                    ]).prop_map(str::to_owned),
                    2 => url_text()
                ],
                prop_oneof![3 => Just("https://api.example.com/me".to_owned()), 1 => url_text()],
                prop_oneof![4 => "[a-z0-9-]{1,12}", 1 => any::<String>()],
                proptest::bool::weighted(0.85),
            )
                .prop_map(|(issuer, redirect, resource, client, with_issuer)| {
                    let mut fields =
                        vec![("redirect_uri", redirect), ("resource_url", resource), ("client_id", client)];
                    if with_issuer {
                        fields.push(("issuer", issuer));
                    }
                    fields
                });
            let url_fields = proptest::option::weighted(0.4, (proptest::sample::select(urls.to_vec()), url_text()))
                .prop_map(|field| field.into_iter().collect::<Vec<_>>());
            (skeleton, url_fields, word_fields, numbers).prop_map(|(skeleton, urls, words, number)| {
                let mut seen = std::collections::HashSet::new();
                let mut text = String::new();
                for (key, value) in skeleton.iter().chain(urls.iter()).chain(words.iter()) {
                    if seen.insert(*key) {
                        text.push_str(&format!("{key} = {}\n", toml_string(value)));
                    }
                }
                if let Some((key, value)) = number {
                    text.push_str(&format!("{key} = {value}\n"));
                }
                text
            })
        }

        /// The property below means something only if many generated profiles are accepted.
        #[test]
        fn the_generator_reaches_accepted_profiles() {
            use proptest::strategy::ValueTree;
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            let strategy = profile();
            let accepted = (0..2000)
                .filter(|_| {
                    let text = strategy.new_tree(&mut runner).unwrap().current();
                    Config::parse(&text, "fuzz.toml").is_ok()
                })
                .count();
            // About a fifth are (426 of 2000 with this seed); the rest exercise the errors.
            assert!(accepted >= 300, "only {accepted} of 2000 generated profiles were accepted");
        }

        proptest! {
            #![proptest_config(crate::proptest_config())]

            #[test]
            fn never_panics_on_any_text(text in any::<String>()) {
                let _ = Config::parse(&text, "fuzz.toml");
            }

            /// Whatever it accepts keeps the rules of RFC 8252 and RFC 9700; whatever it refuses names the file.
            #[test]
            fn accepted_profiles_keep_the_rules(text in profile()) {
                match Config::parse(&text, "fuzz.toml") {
                    Ok(config) => {
                        // RFC 8252 §7.1 or §7.3: a reverse-DNS private scheme, or an http loopback IP literal.
                        match config.loopback() {
                            Some(ip) => {
                                prop_assert!(ip.is_loopback());
                                // No port (a fresh one each time), or a fixed one; never port 0.
                                prop_assert_ne!(config.redirect_uri.port(), Some(0));
                            }
                            None => prop_assert!(config.redirect_uri.scheme().contains('.'), "{}", config.redirect_uri),
                        }
                        prop_assert!(config.redirect_uri.query().is_none() && config.redirect_uri.fragment().is_none());
                        // RFC 6749 §3.1.2.3: what is sent is exactly what was written.
                        let written = format!("redirect_uri = {:?}", config.redirect_uri.as_str());
                        prop_assert!(text.contains(&written), "{} is not in {}", written, text);
                        // RFC 9700 §2.6: TLS, or the loopback interface by its address (RFC 8252 §8.3), checked
                        // here by a rule of the test's own, not the code's, for every URL, the resource's too.
                        let mut urls: Vec<&Url> = match &config.endpoints {
                            Endpoints::Discover { issuer } => vec![&issuer.url],
                            Endpoints::Explicit(e) => [Some(&e.authorization), Some(&e.token), e.revocation.as_ref(),
                                e.userinfo.as_ref(), e.jwks.as_ref(), e.device_authorization.as_ref(),
                                e.pushed_authorization.as_ref(), e.issuer.as_ref()]
                                .into_iter().flatten().collect(),
                        };
                        urls.push(&config.resource_url);
                        for url in urls {
                            // An IPv4 literal in 127/8 (all four parts numbers: `127.evil.example` is a name), or
                            // the IPv6 one.
                            let host = url.host_str().unwrap_or_default();
                            let parts: Vec<&str> = host.split('.').collect();
                            let v4_loopback = parts.len() == 4
                                && parts[0] == "127"
                                && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
                            let literal_loopback = v4_loopback || host == "[::1]";
                            prop_assert!(url.scheme() == "https" || (url.scheme() == "http" && literal_loopback), "{url}");
                            prop_assert!(url.username().is_empty() && url.password().is_none(), "{url}");
                        }
                        // The profile names a keychain entry and a lock file: nothing that could be a path.
                        prop_assert!(config.profile.len() <= 64 && config.profile.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                    }
                    // The message names the file, and a field (one of the profile's keys, or a line of it),
                    // never the whole refusal as one unlocated sentence.
                    Err(e) => {
                        prop_assert!(!e.field.is_empty() && !e.problem.is_empty(), "{e:?}");
                        let located = format!("The config file fuzz.toml is invalid: {}: ", e.field);
                        prop_assert!(e.to_string().starts_with(&located), "{e}");
                    }
                }
            }
        }
    }
}
