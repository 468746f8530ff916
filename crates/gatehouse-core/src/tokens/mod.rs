//! The session as it is kept: tokens, their expiry and who they belong to.
//!
//! Tokens stay in `oauth2`'s secret types, whose `Debug` is redacted, from the token response to the keychain.
//! Nothing in this module is ever sent to the webview; `AuthView` is what the UI may see.
//!
//! A session is bound to the provider, client and resource it was issued for ([`Binding`]): its tokens are
//! only ever sent back to those, whatever the config says later.

pub mod keychain;
pub mod lock;

use std::time::Duration;

use oauth2::{AccessToken, RefreshToken};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{Config, Endpoints};

/// The layout version of the keychain entry. Version 1 had no [`Binding`]; it is read and bound to the profile
/// that finds it (see [`StoredSession::binding`]). Version 3 adds the DPoP key ([`StoredSession::dpop_key`]);
/// a version 2 entry, which has none, is a Bearer session and is read as it is.
pub const FORMAT_VERSION: u32 = 3;

/// The oldest layout this version reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// What a session belongs to: the provider that issued its tokens, the client they were issued to, and the
/// resource they are sent to. A session is used only while the profile still names all three.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The issuer identifier, or the token endpoint for a profile that names no issuer.
    pub provider: String,
    /// The client identifier.
    pub client_id: String,
    /// The resource's origin (RFC 6454): scheme, host and port.
    pub resource_origin: String,
    /// The token endpoint the session's tokens came from, named in the profile or discovered: the refresh token
    /// goes there, so another file with the same issuer but another token endpoint is another binding. (`None`
    /// in entries saved before Gatehouse recorded it; and in what a discovery profile expects, before its
    /// metadata is read, where the issuer decides.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// The revocation endpoint the session was signed in with, where sign-out sends its refresh token: another
    /// file naming another one is another binding. (`None` where there was none, and in older entries.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// Whether the endpoints are the ones the session was signed in with ([`Binding::recorded`]), so that a `None`
    /// among them means "there was none", not "not known": an entry saved before they were recorded, and what a
    /// profile expects, leave it false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recorded: bool,
}

impl Binding {
    /// Whether `other` names the same provider, client and resource. Issuers that differ only by a trailing
    /// slash name the same provider: `Url` adds one to a bare host, and people write both. (Discovery still
    /// checks the metadata's `issuer` exactly, RFC 8414 §3.3.)
    pub fn same_as(&self, other: &Binding) -> bool {
        // Where both name an endpoint, they must agree. A recorded `None` is "there was none", so a profile that
        // names one is another binding. An unrecorded `None` (an entry saved before endpoints were recorded, or
        // a discovery profile, whose endpoints its issuer's metadata decides, RFC 8414 §3.3) agrees with any.
        let agree = |mine: &Option<String>, theirs: &Option<String>| match (mine, theirs) {
            (Some(mine), Some(theirs)) => mine == theirs,
            (None, Some(_)) => !self.recorded,
            (Some(_), None) => !other.recorded,
            (None, None) => true,
        };
        self.provider.trim_end_matches('/') == other.provider.trim_end_matches('/')
            && self.client_id == other.client_id
            && self.resource_origin == other.resource_origin
            && agree(&self.token_endpoint, &other.token_endpoint)
            && agree(&self.revocation_endpoint, &other.revocation_endpoint)
    }

    /// The binding a session signed in with `config` at `endpoints` gets: [`Binding::of`] with the token and
    /// revocation endpoints actually used recorded, discovered ones included, so that a profile naming other
    /// endpoints for the same issuer never receives this session's tokens.
    pub fn recorded(config: &Config, endpoints: &crate::config::ProviderEndpoints) -> Binding {
        let mut binding = Binding::of(config);
        if binding.provider != endpoints.token.as_str() {
            binding.token_endpoint = Some(endpoints.token.as_str().to_owned());
        }
        binding.revocation_endpoint = endpoints.revocation.as_ref().map(|url| url.as_str().to_owned());
        binding.recorded = true;
        binding
    }

    /// The binding a session made with `config` gets.
    pub fn of(config: &Config) -> Binding {
        let (provider, token_endpoint, revocation_endpoint) = match &config.endpoints {
            // The URL's spelling, as entries have always recorded it.
            Endpoints::Discover { issuer } => (issuer.url.as_str(), None, None),
            Endpoints::Explicit(e) => {
                let revocation = e.revocation.as_ref().map(|url| url.as_str().to_owned());
                match &e.issuer {
                    Some(issuer) => (issuer.as_str(), Some(e.token.as_str().to_owned()), revocation),
                    None => (e.token.as_str(), None, revocation),
                }
            }
        };
        Binding {
            provider: provider.to_owned(),
            client_id: config.client_id.as_str().to_owned(),
            resource_origin: config.resource_url.origin().ascii_serialization(),
            token_endpoint,
            revocation_endpoint,
            recorded: false,
        }
    }
}

/// Refresh this long before the access token expires, so that a request never races the expiry.
pub const EXPIRY_SKEW: Duration = Duration::from_secs(60);

/// Who is signed in, as far as the provider told us.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The stable subject identifier (`sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// A name to show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The account's login, as the provider names it (`preferred_username`; GitHub's `login`): what git's
    /// `username` may say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

/// The hash of an access token as RFC 9449 §4.2 writes it (`ath`): base64url, unpadded, of its SHA-256. What a
/// program may say of a token without sending it.
pub fn token_hash(token: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token.as_bytes()))
}

impl Account {
    /// Whether `user` names this account: its login (GitHub's `login`, OIDC's `preferred_username`), its display
    /// name or its subject, as a git remote's URL or a registry's user name may say.
    pub fn is_named(&self, user: &str) -> bool {
        [&self.login, &self.name, &self.subject].iter().any(|n| n.as_deref() == Some(user))
    }
}

/// A session as stored in the keychain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSession {
    /// The layout version; see [`FORMAT_VERSION`].
    pub v: u32,
    /// What the session belongs to. Always set from version 2 on; `None` only in a version 1 entry, which the
    /// profile that reads it adopts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding: Option<Binding>,
    /// The access token. It may be dropped to fit a small keychain (Windows), and is then refreshed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessToken>,
    /// The refresh token, if the provider issued one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires, in seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// The scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Who is signed in.
    #[serde(default)]
    pub account: Account,
    /// The private key the tokens are bound to (RFC 9449), for a DPoP session; `None` for Bearer tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<crate::dpop::StoredKey>,
    /// The access token is a Bearer token although the session has a DPoP key: the provider answered a proven
    /// request with `token_type` Bearer and a refresh token, which RFC 9449 §5 still binds to the key for a public
    /// client. The key then proves refreshes and revocation; the access token is sent as Bearer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bearer_access: bool,
    /// How long the provider's last access token was issued for (`expires_in`, seconds), when it said: no
    /// renewal gives a token that lasts longer, so a caller that needs more is told without spending a grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<u64>,
    /// A random name given to the grant at sign-in and kept by every renewal of it, in any process: it tells
    /// another process's renewal of this grant from a new sign-in (perhaps of another account) where the provider
    /// names no subject (an OAuth-only profile). `None` in entries saved before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<String>,
    /// Access tokens narrowed to a resource or to fewer scopes, issued to this grant: kept here, renewed under the
    /// profile's lock like the session's own, and gone with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub narrowed: Vec<NarrowedToken>,
}

/// What a token is narrowed to: a resource (RFC 8707 §2) and scopes, each a subset of the session's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Narrowing {
    /// The resource, as the profile lists it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Url>,
    /// The scopes, sorted, each once; none for the scopes the provider gives for the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

impl Narrowing {
    /// A narrowing to `resource` and the space-separated `scopes` (RFC 6749 §3.3).
    pub fn new(resource: Option<Url>, scopes: Option<&str>) -> Narrowing {
        let mut scopes: Vec<String> = scopes.unwrap_or_default().split_whitespace().map(str::to_owned).collect();
        scopes.sort();
        scopes.dedup();
        Narrowing { resource, scopes }
    }

    /// Whether nothing is narrowed: the session's own token.
    pub fn is_none(&self) -> bool {
        self.resource.is_none() && self.scopes.is_empty()
    }
}

/// An access token narrowed to [`Narrowing`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NarrowedToken {
    /// What it is narrowed to.
    pub to: Narrowing,
    /// The token.
    pub access_token: AccessToken,
    /// When it expires, in seconds since the Unix epoch; `None` when the provider didn't say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

impl NarrowedToken {
    /// Whether it expires within `ttl` of `now`.
    pub fn due_within(&self, now: u64, ttl: Duration) -> bool {
        self.expires_at.is_some_and(|at| now.saturating_add(ttl.as_secs()) >= at)
    }
}

impl StoredSession {
    /// The key the session's tokens are bound to, if they are.
    ///
    /// # Errors
    /// [`crate::error::Error::Internal`] when the stored key can't be read.
    pub fn dpop_key(&self) -> crate::error::Result<Option<crate::dpop::DpopKey>> {
        self.dpop_key.as_ref().map(crate::dpop::DpopKey::from_stored).transpose()
    }

    /// The key the access token must be presented with (RFC 9449 §7.1), if it is bound; `None` for a Bearer
    /// access token, even in a session whose refresh token is bound.
    ///
    /// # Errors
    /// As [`StoredSession::dpop_key`].
    pub fn access_key(&self) -> crate::error::Result<Option<crate::dpop::DpopKey>> {
        if self.bearer_access {
            return Ok(None);
        }
        self.dpop_key()
    }

    /// Whether the session can be renewed without the browser.
    pub fn renewable(&self) -> bool {
        self.refresh_token.is_some()
    }

    /// Whether the access token should be refreshed before use at `now` (Unix seconds).
    pub fn needs_refresh(&self, now: u64) -> bool {
        self.due_within(now, EXPIRY_SKEW)
    }

    /// Whether the access token is missing, or expires within `ttl` of `now` (Unix seconds). A token whose
    /// lifetime the provider didn't state is taken to be valid.
    pub fn due_within(&self, now: u64, ttl: Duration) -> bool {
        self.access_token.is_none() || self.expires_at.is_some_and(|at| now.saturating_add(ttl.as_secs()) >= at)
    }

    /// Whether no renewal can give a token that stays valid for `ttl`: the provider's tokens, as last issued,
    /// don't live that long.
    pub fn outlives_tokens(&self, ttl: Duration) -> bool {
        self.lifetime.is_some_and(|lifetime| lifetime <= ttl.as_secs())
    }
}

/// Reads a count of seconds from provider JSON: `expires_in` (RFC 6749 §5.1) or a NumericDate such as `exp`
/// (RFC 7519 §2), which "can represent non-integer values". Fractions are dropped, a negative value is 0, a
/// value past `u64` is `u64::MAX`, and a numeric string is read as its number. `null` means absent.
///
/// # Errors
/// When the value is neither a number nor a numeric string, or is not finite.
pub fn deserialize_seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Whole(u64),
        Number(f64),
        Text(String),
    }
    let number = match Option::<Seconds>::deserialize(deserializer)? {
        None => return Ok(None),
        Some(Seconds::Whole(n)) => return Ok(Some(n)),
        Some(Seconds::Number(n)) => n,
        Some(Seconds::Text(text)) => {
            text.trim().parse::<f64>().map_err(|_| serde::de::Error::custom("a number of seconds was expected"))?
        }
    };
    if !number.is_finite() {
        return Err(serde::de::Error::custom("a finite number of seconds was expected"));
    }
    // `as` saturates: negative to 0, too large to u64::MAX, fractions truncated.
    Ok(Some(number.max(0.0) as u64))
}

pub use crate::os::unix_now;

/// When a token with lifetime `expires_in` (RFC 6749 §5.1), received at `now`, expires. `None` when the provider
/// did not say, which RFC 6749 allows.
pub fn expiry_from(now: u64, expires_in: Option<Duration>) -> Option<u64> {
    expires_in.map(|d| now.saturating_add(d.as_secs()))
}

/// Scopes granted, per RFC 6749 §5.1: the response's `scope` when present, else the ones requested. Either
/// way `offline_access` counts as granted only when a refresh token came with it (OIDC Core §11: it asks for
/// one), so that the window never claims renewal the session doesn't have.
pub fn granted_scopes(returned: Option<Vec<String>>, requested: &[String], refresh_token: bool) -> Vec<String> {
    let mut granted = returned.unwrap_or_else(|| requested.to_vec());
    if !refresh_token {
        granted.retain(|scope| scope != "offline_access");
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: Option<u64>) -> StoredSession {
        StoredSession {
            v: FORMAT_VERSION,
            binding: None,
            access_token: Some(AccessToken::new("at".into())),
            refresh_token: Some(RefreshToken::new("rt".into())),
            expires_at,
            scopes: vec![],
            account: Account::default(),
            dpop_key: None,
            bearer_access: false,
            lifetime: None,
            grant: None,
            narrowed: Vec::new(),
        }
    }

    #[test]
    fn expiry_arithmetic() {
        assert_eq!(expiry_from(1_000, Some(Duration::from_secs(3600))), Some(4_600));
        assert_eq!(expiry_from(1_000, None), None);
        assert_eq!(expiry_from(u64::MAX - 1, Some(Duration::from_secs(3600))), Some(u64::MAX));
    }

    #[test]
    fn refresh_is_due_a_minute_early() {
        let s = session(Some(1_000));
        assert!(!s.needs_refresh(900));
        assert!(!s.needs_refresh(939));
        assert!(s.needs_refresh(940));
        assert!(s.needs_refresh(1_000));
        assert!(s.needs_refresh(5_000));
    }

    #[test]
    fn no_expiry_means_no_refresh_until_rejected() {
        assert!(!session(None).needs_refresh(u64::MAX - 100));
    }

    #[test]
    fn a_missing_access_token_needs_refresh() {
        let mut s = session(Some(u64::MAX));
        s.access_token = None;
        assert!(s.needs_refresh(0));
    }

    #[test]
    fn omitted_scope_means_requested() {
        let requested = vec!["openid".to_string()];
        assert_eq!(granted_scopes(None, &requested, false), requested);
        assert_eq!(granted_scopes(Some(vec![]), &requested, false), Vec::<String>::new());
    }

    /// OIDC Core §11: offline_access is for a refresh token; without one it wasn't granted, whatever the
    /// response's `scope` says or doesn't.
    #[test]
    fn offline_access_is_granted_only_with_a_refresh_token() {
        let requested = vec!["openid".to_string(), "offline_access".to_string()];
        assert_eq!(granted_scopes(None, &requested, true), requested);
        assert_eq!(granted_scopes(None, &requested, false), ["openid"]);
        assert_eq!(granted_scopes(Some(requested.clone()), &requested, false), ["openid"]);
    }

    #[test]
    fn binding_names_provider_client_and_resource_origin() {
        let discover = Config::parse(
            r#"issuer = "https://id.example.com/tenant"
               client_id = "abc"
               redirect_uri = "com.example.gatehouse:/callback"
               resource_url = "https://api.example.com:8443/v1/me?x=1""#,
            "test",
        )
        .unwrap();
        let binding = Binding::of(&discover);
        assert_eq!(binding.provider, "https://id.example.com/tenant");
        assert_eq!(binding.client_id, "abc");
        assert_eq!(binding.resource_origin, "https://api.example.com:8443");
        let explicit = Config::parse(
            r#"authorization_endpoint = "https://login.example.org/authorize"
               token_endpoint = "https://login.example.org/token"
               client_id = "abc"
               redirect_uri = "com.example.gatehouse:/callback"
               resource_url = "https://api.example.com/me""#,
            "test",
        )
        .unwrap();
        assert_eq!(Binding::of(&explicit).provider, "https://login.example.org/token");
    }

    /// Two files with the same issuer, client and resource but another token endpoint are two bindings: the
    /// refresh token goes only to the token endpoint it was issued by.
    #[test]
    fn explicit_endpoints_with_an_issuer_bind_the_token_endpoint_too() {
        let with = |token: &str| Binding::of(&explicit_config(token, "https://id.example.com/revoke"));
        let ours = with("https://id.example.com/token");
        assert!(ours.same_as(&with("https://id.example.com/token")));
        assert!(!ours.same_as(&with("https://attacker.example/token")));
        // An entry saved before the token endpoint was recorded is still this profile's.
        let older = Binding { token_endpoint: None, ..ours.clone() };
        assert!(older.same_as(&ours) && ours.same_as(&older));
    }

    /// A profile at id.example.com that names its token and revocation endpoints.
    fn explicit_config(token: &str, revocation: &str) -> Config {
        let text = format!(
            r#"issuer = "https://id.example.com"
               authorization_endpoint = "https://id.example.com/authorize"
               token_endpoint = "{token}"
               revocation_endpoint = "{revocation}"
               client_id = "abc"
               redirect_uri = "com.example.gatehouse:/callback"
               resource_url = "https://api.example.com/me""#
        );
        Config::parse(&text, "test").unwrap()
    }

    /// A session made with discovered endpoints records them: a profile with the same issuer that names another
    /// token or revocation endpoint is another binding, and never gets its refresh token. The
    /// discovery profile itself, whose endpoints the metadata decides, still is its own.
    #[test]
    fn a_discovered_session_records_its_endpoints() {
        let discovery = Config::parse(
            r#"issuer = "https://id.example.com"
               client_id = "abc"
               redirect_uri = "com.example.gatehouse:/callback"
               resource_url = "https://api.example.com/me""#,
            "test",
        )
        .unwrap();
        let explicit = |token: &str, revocation: &str| Binding::of(&explicit_config(token, revocation));
        // What discovery found: the endpoints an explicit profile naming the real ones would have.
        let real = explicit_config("https://id.example.com/token", "https://id.example.com/revoke");
        let Endpoints::Explicit(found) = real.endpoints else { panic!("explicit endpoints") };
        let stored = Binding::recorded(&discovery, &found);
        assert_eq!(stored.token_endpoint.as_deref(), Some("https://id.example.com/token"));
        assert!(stored.same_as(&Binding::of(&discovery)), "the discovery profile's own session");
        assert!(stored.same_as(&explicit("https://id.example.com/token", "https://id.example.com/revoke")));
        assert!(!stored.same_as(&explicit("https://attacker.example/token", "https://id.example.com/revoke")));
        assert!(!stored.same_as(&explicit("https://id.example.com/token", "https://attacker.example/revoke")));
        // A provider with no revocation endpoint: a file naming one is another binding, not a match for "none".
        let none = Binding { revocation_endpoint: None, ..stored.clone() };
        assert!(!none.same_as(&explicit("https://id.example.com/token", "https://attacker.example/revoke")));
        // An entry saved before endpoints were recorded still matches as it did.
        let older = Binding { token_endpoint: None, revocation_endpoint: None, recorded: false, ..stored };
        assert!(older.same_as(&explicit("https://id.example.com/token", "https://id.example.com/revoke")));
    }

    #[test]
    fn version_1_entries_still_read() {
        let v1 = r#"{"v":1,"access_token":"at","refresh_token":"rt","expires_at":5,"scopes":["openid"],"account":{"subject":"alice"}}"#;
        let session: StoredSession = serde_json::from_str(v1).unwrap();
        assert_eq!(session.v, 1);
        assert!(session.binding.is_none());
        assert_eq!(session.refresh_token.unwrap().secret(), "rt");
    }

    #[test]
    fn debug_never_shows_tokens() {
        let debug = format!("{:?}", session(Some(1)));
        assert!(!debug.contains("\"at\"") && !debug.contains("\"rt\""), "{debug}");
    }
}
