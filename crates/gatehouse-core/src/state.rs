//! What the window shows, as one serialisable value.
//!
//! [`AuthView`] is the only thing about the session that leaves the backend. It holds who is signed in, when the
//! access token expires, the granted scopes and the resource data, and never a token.

use serde::Serialize;

use crate::error::Error;
use crate::tokens::{Account, StoredSession};

/// Where the app is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// The config file is broken; nothing can be done until it is fixed.
    ConfigError,
    /// Reading the keychain at launch.
    Restoring,
    /// No session.
    SignedOut,
    /// The browser is open at the provider.
    WaitingForBrowser,
    /// Exchanging the code for tokens.
    Exchanging,
    /// A session is active.
    SignedIn,
    /// Refreshing the access token.
    Refreshing,
    /// Revoking and forgetting the session.
    SigningOut,
}

impl Phase {
    /// Whether nothing is under way: no restore, sign-in, renewal or sign-out is reading or writing the keychain.
    pub fn is_settled(self) -> bool {
        matches!(self, Phase::SignedIn | Phase::SignedOut | Phase::ConfigError)
    }
}

/// How loud a notice is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// Something failed.
    Error,
    /// Worth knowing; nothing failed.
    Info,
}

/// A message for the user, with the stable `kind` the UI may branch on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// Stable snake_case code.
    pub kind: String,
    /// What happened and what to do next.
    pub message: String,
    /// How loud it is.
    pub severity: Severity,
}

impl Notice {
    /// A notice for an error.
    pub fn error(e: &Error) -> Notice {
        Notice { kind: e.kind().to_owned(), message: e.to_string(), severity: Severity::Error }
    }

    /// A notice that reports no failure.
    pub fn info(kind: &str, message: impl Into<String>) -> Notice {
        Notice { kind: kind.to_owned(), message: message.into(), severity: Severity::Info }
    }
}

/// Everything the window shows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthView {
    /// Grows with every change, so the window can drop a view older than one it already shows (a
    /// `get_state` answer can arrive after a newer change event).
    pub revision: u64,
    /// The profile this account belongs to: its name in the config, and its keychain entry's.
    pub profile: String,
    /// Where the app is.
    pub phase: Phase,
    /// The provider's name.
    pub provider: Option<String>,
    /// Who is signed in.
    pub account: Option<Account>,
    /// When the access token expires (Unix seconds), if known.
    pub expires_at: Option<u64>,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The scopes asked for that the provider did not grant.
    pub not_granted: Vec<String>,
    /// Whether the session can be renewed without the browser (it has a refresh token). Without one, Refresh
    /// only reloads the data, and an expired session needs a new sign-in.
    pub renewable: bool,
    /// Whether the tokens are bound to this computer's key (DPoP, RFC 9449) rather than Bearer tokens.
    pub key_bound: bool,
    /// The protected resource's data.
    pub resource: Option<serde_json::Value>,
    /// When the pending sign-in gives up (Unix seconds).
    pub sign_in_expires_at: Option<u64>,
    /// The link the pending sign-in opened in the browser, for Copy link: to open it in another browser, or on
    /// another machine. (With pushed requests, RFC 9126, it holds only a reference to the request.)
    pub sign_in_link: Option<String>,
    /// Where the pending sign-in's answer goes (its redirect URI), so the waiting view can say what the address
    /// a browser ends on starts with.
    pub sign_in_redirect: Option<String>,
    /// Whether the provider offers sign-in with a code on another device (RFC 8628), so the waiting view can
    /// offer "Use a code instead".
    pub device_flow: bool,
    /// The code to enter at the provider, while a sign-in with a code waits.
    pub device_code: Option<DeviceCode>,
    /// The latest notice.
    pub notice: Option<Notice>,
}

/// A sign-in with a code (RFC 8628 §3.3): what the person enters, and where.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceCode {
    /// The code to enter.
    pub user_code: String,
    /// Where to enter it.
    pub verification_uri: String,
    /// The same with the code filled in (RFC 8628 §3.3.1), when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// A QR code of the most complete link, as an SVG data URI, for a phone's camera.
    pub qr: Option<String>,
    /// When the code expires (Unix seconds).
    pub expires_at: u64,
}

impl AuthView {
    /// The view at launch, before the keychain is read.
    pub fn initial(profile: &str, provider: Option<String>) -> AuthView {
        AuthView {
            revision: 0,
            profile: profile.to_owned(),
            phase: Phase::Restoring,
            provider,
            account: None,
            expires_at: None,
            scopes: Vec::new(),
            not_granted: Vec::new(),
            renewable: false,
            key_bound: false,
            resource: None,
            sign_in_expires_at: None,
            sign_in_link: None,
            sign_in_redirect: None,
            device_flow: false,
            device_code: None,
            notice: None,
        }
    }

    /// Shows `session`'s non-secret facts, and which of the `requested` scopes it lacks.
    pub fn show_session(&mut self, session: &StoredSession, requested: &[String]) {
        self.account = Some(session.account.clone());
        self.expires_at = session.expires_at;
        self.scopes = session.scopes.clone();
        self.not_granted = requested.iter().filter(|s| !session.scopes.contains(s)).cloned().collect();
        self.renewable = session.renewable();
        self.key_bound = session.dpop_key.is_some() && !session.bearer_access;
    }

    /// Forgets everything about a session.
    pub fn clear_session(&mut self) {
        self.account = None;
        self.expires_at = None;
        self.scopes.clear();
        self.not_granted.clear();
        self.renewable = false;
        self.key_bound = false;
        self.resource = None;
    }
}

/// Everything the window shows: every account, in the config's order, and what concerns none of them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowView {
    /// Grows with every change, so the window can drop a view older than one it already shows.
    pub revision: u64,
    /// One view per profile.
    pub accounts: Vec<AuthView>,
    /// Profiles that are no longer in the config but still have a session in the keychain. Left there until
    /// the user says to forget them.
    pub removed: Vec<String>,
    /// The accounts added from the window (by profile name), which the window may also remove.
    pub added: Vec<String>,
    /// Where "Add account" can add one: the configured profiles' providers. Empty when it can't.
    pub providers: Vec<ProviderChoice>,
    /// A notice that belongs to no account: a sign-in link that matched none of them.
    pub notice: Option<Notice>,
    /// What the window may set up; `None` when it can't (no config file to write, or a broken one).
    pub setup: Option<SetupView>,
}

/// Setting providers up in the window.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupView {
    /// The config file providers are saved in.
    pub config_file: String,
    /// The configured profiles the window may edit and remove (not the added accounts).
    pub editable: Vec<String>,
}

/// A provider an account can be added at: a configured profile's.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderChoice {
    /// The configured profile whose settings the new account copies.
    pub profile: String,
    /// Its provider's name.
    pub provider: String,
}
