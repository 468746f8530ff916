//! The errors Gatehouse can meet, one enum per layer, and the one shape they take in the UI.
//!
//! Every error that reaches the webview serialises as `{ "kind": "...", "message": "..." }`. `kind` is a stable
//! snake_case code the UI branches on; `message` says what happened and what to do next. No variant carries a
//! token, code, verifier or client secret, so an error can be logged or shown as it is.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

/// A `Result` whose error is the app-wide [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in a sign-in, refresh, sign-out or resource fetch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The config file is unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A deep link was not a valid answer to the sign-in in progress.
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// The user declined access at the provider (`error=access_denied`, RFC 6749 §4.1.2.1).
    #[error("You declined access at the provider, so you're not signed in.")]
    AccessDenied,
    /// The provider answered the authorization request with another OAuth error.
    #[error("The provider refused the sign-in ({code}{}). Sign in to try again; if it keeps failing, check the client settings in the config file.", describe(.description))]
    Authorization {
        /// The `error` code, as the provider sent it.
        code: String,
        /// The provider's `error_description`, cleaned for display.
        description: Option<String>,
    },
    /// The token endpoint answered with an OAuth error other than `invalid_grant`.
    #[error("The provider rejected the request ({code}{}). Try again; if it keeps failing, check the client settings in the config file.", describe(.description))]
    TokenEndpoint {
        /// The `error` code, as the provider sent it.
        code: String,
        /// The provider's `error_description`, cleaned for display.
        description: Option<String>,
    },
    /// The provider no longer accepts the session's grant (`invalid_grant` on refresh).
    #[error("Your session has ended at the provider. Sign in again to continue.")]
    SessionEnded,
    /// The access token expired or was refused, and there is no refresh token to renew it with.
    #[error("Your access has expired, and the provider gave Gatehouse no way to renew it (no refresh token). Sign in again to continue.")]
    SignInNeeded,
    /// The stored session was made with another provider, client or resource than the profile now names.
    #[error("The saved session is for {stored}, but this profile now uses {configured}, so Gatehouse sent its tokens nowhere. Sign in to use {configured} (the saved session is replaced only once that succeeds), or sign out to remove the saved session.")]
    OtherProvider {
        /// What the stored session belongs to.
        stored: String,
        /// What the profile names now.
        configured: String,
    },
    /// The revocation endpoint refused this client (HTTP 401 or `invalid_client`): some servers insist on client
    /// authentication, although RFC 7009 §5 lets a public client revoke with its `client_id`.
    #[error("the provider refuses to let Gatehouse end sessions ({0})")]
    RevocationRefused(String),
    /// The session works, but the keychain could not keep its renewed tokens.
    #[error("The session was renewed, but it couldn't be saved. {0} Until it is saved, it lasts only until Gatehouse quits.")]
    NotSaved(KeychainError),
    /// A command renewed the session, and the keychain couldn't save the renewed tokens even when asked again. The
    /// provider has retired the old refresh token (RFC 9700 §4.14.2), and the command's process is about to end
    /// with the only copy of the new one.
    #[error("The session was renewed, but the system keychain couldn't save it ({0}), and the provider no longer accepts the old one. Sign in again once the keychain works.")]
    RenewalNotSaved(KeychainError),
    /// The provider lists only client authentication methods Gatehouse doesn't do (RFC 8414 §2
    /// `token_endpoint_auth_methods_supported`), so nothing was sent.
    #[error("The provider accepts only {0} to authenticate apps at its token endpoint, which Gatehouse doesn't do, so nothing was sent to it. A client registered as a public client (none), or with client_secret_basic or client_secret_post, works.")]
    UnsupportedClientAuth(String),
    /// The keychain did not confirm that it saved a new session; it may still do so.
    #[error("You're signed in, but the system keychain didn't confirm that it saved the session. If it is asking for a password, answer it; otherwise you may have to sign in again after restarting Gatehouse.")]
    SaveUnconfirmed,
    /// The provider could not be reached, or did not answer in time.
    #[error("Couldn't reach the provider: {0}. Check your connection, then try again.")]
    Network(String),
    /// The provider answered with something that is not a valid response.
    #[error("The provider sent an answer Gatehouse can't use ({0}). Try again later, or check the provider settings in the config file.")]
    BadResponse(String),
    /// The OS keychain refused or failed.
    #[error(transparent)]
    Keychain(#[from] KeychainError),
    /// The system browser could not be started.
    #[error("Couldn't open your web browser ({0}). Make sure a default browser is set, then sign in again.")]
    BrowserOpen(String),
    /// The operation needs a session and there is none.
    #[error("You're not signed in.")]
    NotSignedIn,
    /// The operation needs no session and there is one.
    #[error("You're already signed in. Sign out first to switch accounts.")]
    AlreadySignedIn,
    /// The sign-in waited longer than the provider's code could live.
    #[error("The sign-in took too long and was stopped. Sign in to start again.")]
    SignInTimedOut,
    /// Another process (the window or `gatehouse token`) held the session's renewal lock for too long.
    #[error("Another Gatehouse (the window or a command such as git's credential helper) is renewing this session and hasn't finished. Try again in a moment.")]
    RenewalBusy,
    /// The command line named a profile the config doesn't have.
    #[error("There is no profile named {name:?}. The config has: {}.", known.join(", "))]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The profiles there are.
        known: Vec<String>,
    },
    /// A profile whose redirect is the app's private-use scheme signs in through the window, and there is no
    /// graphical session to show it in.
    #[error("This profile's sign-in comes back through the app's own link, which only Gatehouse's window receives, and there is no graphical session here to show it in.")]
    NeedsWindow,
    /// The provider offers no device authorization grant (RFC 8628).
    #[error("The provider doesn't offer sign-in with a code on another device (it advertises no device_authorization_endpoint). Sign in with the browser instead.")]
    NoDeviceFlow,
    /// The session's tokens are bound to its DPoP key (RFC 9449), so a token alone is of no use to another tool.
    #[error("This session's tokens are bound to a key that never leaves the keychain (DPoP, RFC 9449), so another tool couldn't use them. For tokens other tools can use, add dpop = false to the profile and sign in again.")]
    DpopBound,
    /// The running Gatehouse refused this program the profile's tokens: the person denied it, or couldn't be asked.
    /// The message (the agent's) names the program and the command that allows it.
    #[error("{message}")]
    ProgramRefused {
        /// `program_denied` or `program_not_allowed`.
        kind: ProgramRefusal,
        /// What the agent said.
        message: String,
    },
    /// A token couldn't be narrowed to what was asked (RFC 8707, RFC 6749 §6, RFC 8693), and the session's own
    /// broader token is never given instead.
    #[error(transparent)]
    NotNarrowed(#[from] NarrowError),
    /// Another Gatehouse process (the window, or a `gatehouse` command) signed out, or signed in another
    /// account or provider, since this one last looked at the keychain entry.
    #[error("Another Gatehouse (the window or a gatehouse command) signed this account out, or signed in someone else, meanwhile. Sign in to continue.")]
    SignedOutElsewhere,
    /// Another Gatehouse process signed in while this sign-in was under way; its session was kept and this
    /// one's grant revoked.
    #[error("Another Gatehouse (the window or a gatehouse command) signed in as {account} while this sign-in was under way, so Gatehouse kept that session and undid this one (revoking it at the provider). To use another account, sign out first.")]
    SignedInElsewhere {
        /// Who the kept session belongs to, for display.
        account: String,
    },
    /// The fixed loopback port the profile's `redirect_uri` names is taken by another program.
    #[error("Port {0} on this computer is in use by another program, so Gatehouse can't receive the sign-in there. Close that program (or the SSH tunnel using it), or choose another port in redirect_uri and register it at the provider; leave the port out to let Gatehouse pick a free one each time.")]
    PortInUse(u16),
    /// The provider's access tokens live less than `gatehouse token --min-ttl` asks for: renewing can't help.
    #[error("The provider's access tokens last {lifetime} seconds, less than the {wanted} seconds asked for, so no renewal can satisfy it. Ask for less than {lifetime} seconds.")]
    LifetimeTooShort {
        /// How long the provider's access tokens last, in seconds.
        lifetime: u64,
        /// How long the caller wanted, in seconds.
        wanted: u64,
    },
    /// A sign-in the command line waited for ended without a session; the message says why.
    #[error("{0}")]
    SignInStopped(String),
    /// Setting a provider up, editing or removing it, couldn't be done; the message says why and what to do.
    #[error("Couldn't change the provider settings: {0}.")]
    Setup(String),
    /// No provider is set up: no config file, or one with no profile.
    #[error("No provider is set up yet: there is no profile in {0}. Choose your provider in Gatehouse's window, or write the config file (see the README).")]
    NoProvider(String),
    /// A setting of Gatehouse's own (start at login) could not be changed.
    #[error("Couldn't change the setting ({0}). Check that your home folder is writable, then try again.")]
    Setting(String),
    /// A bug or an OS failure that the user cannot fix.
    #[error("Something went wrong inside Gatehouse ({0}). Restart it; if this keeps happening, please report it.")]
    Internal(String),
}

fn describe(description: &Option<String>) -> String {
    description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
}

impl Error {
    /// The stable code the UI branches on.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config_invalid",
            Error::Callback(_) => "callback_rejected",
            Error::AccessDenied => "access_denied",
            Error::Authorization { .. } => "authorization_failed",
            Error::TokenEndpoint { .. } => "token_request_failed",
            Error::SessionEnded => "session_ended",
            Error::SignInNeeded => "sign_in_needed",
            Error::OtherProvider { .. } => "session_for_other_provider",
            Error::RevocationRefused(_) => "revocation_refused",
            Error::NotSaved(_) => "session_not_saved",
            Error::RenewalNotSaved(_) => "renewal_not_saved",
            Error::UnsupportedClientAuth(_) => "client_auth_unsupported",
            Error::SaveUnconfirmed => "session_save_unconfirmed",
            Error::Network(_) => "network",
            Error::BadResponse(_) => "bad_response",
            Error::Keychain(e) => e.kind(),
            Error::BrowserOpen(_) => "browser_unavailable",
            Error::NotSignedIn => "not_signed_in",
            Error::AlreadySignedIn => "already_signed_in",
            Error::SignInTimedOut => "sign_in_timed_out",
            Error::RenewalBusy => "renewal_busy",
            Error::UnknownProfile { .. } => "unknown_profile",
            Error::NeedsWindow => "needs_window",
            Error::NoDeviceFlow => "no_device_flow",
            Error::SignInStopped(_) => "sign_in_stopped",
            Error::PortInUse(_) => "loopback_port_in_use",
            Error::SignedOutElsewhere => "signed_out_elsewhere",
            Error::SignedInElsewhere { .. } => "signed_in_elsewhere",
            Error::LifetimeTooShort { .. } => "token_lifetime_too_short",
            Error::DpopBound => "dpop_bound",
            Error::NotNarrowed(e) => e.kind(),
            Error::ProgramRefused { kind: ProgramRefusal::Denied, .. } => "program_denied",
            Error::ProgramRefused { kind: ProgramRefusal::NotAllowed, .. } => "program_not_allowed",
            Error::Setting(_) => "setting_failed",
            Error::Setup(_) => "setup_failed",
            Error::NoProvider(_) => "no_provider",
            Error::Internal(_) => "internal",
        }
    }

    /// Whether the failure may go away by itself, so that a stored session must be kept.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Network(_) | Error::BadResponse(_) | Error::Keychain(_) | Error::RenewalBusy)
    }
}

/// Why the running Gatehouse refused a program a profile's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramRefusal {
    /// The person denied it.
    Denied,
    /// Nobody allowed it: no one could be asked, or no one answered.
    NotAllowed,
}

/// Why a token wasn't narrowed to a resource or to fewer scopes. What was asked is said; a token never is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NarrowError {
    /// The resource isn't in the profile's `resources`, so nothing was asked of the provider.
    #[error("{resource} isn't one of the resources profile {profile} may hand out tokens for. Add it to resources in the profile, then sign in again so that the provider is asked for it.")]
    NotListed {
        /// The resource asked for.
        resource: String,
        /// The profile.
        profile: String,
    },
    /// A scope isn't one the profile signs in with: a narrower token can only have fewer (RFC 6749 §6).
    #[error("The scope {scope} isn't one profile {profile} signs in with, and a narrower token can only have fewer scopes than the session. Add it to scopes in the profile and sign in again.")]
    ScopeNotAsked {
        /// The scope asked for.
        scope: String,
        /// The profile.
        profile: String,
    },
    /// The provider refused the narrowing refresh, and lists no token exchange to try instead.
    #[error("The provider wouldn't narrow the token ({code}), and it offers no token exchange (RFC 8693) to try instead. Ask its administrator to allow this resource or these scopes for the client.")]
    Refused {
        /// The provider's `error`.
        code: String,
    },
    /// The provider lists token exchange, but refused it.
    #[error("The provider lists token exchange (RFC 8693) but refused it ({code}). Ask its administrator to allow it for the client.")]
    ExchangeRefused {
        /// The provider's `error`.
        code: String,
    },
    /// The answer grants more scopes than asked: such a token is not handed out.
    #[error("The provider answered with the scopes \"{got}\", more than the \"{asked}\" asked for, so the token wasn't handed out.")]
    TooBroad {
        /// The scopes asked for.
        asked: String,
        /// The scopes the answer states.
        got: String,
    },
    /// The token is for another audience than the resource asked for.
    #[error("The provider's token is for {got}, not {resource}, so it wasn't handed out. The provider may not support resource indicators (RFC 8707).")]
    WrongAudience {
        /// The resource asked for.
        resource: String,
        /// The audience the token names.
        got: String,
    },
    /// The token doesn't say what it is for, so it can't be told from the session's own.
    #[error("The provider's token doesn't say which resource it is for, so Gatehouse can't tell it is limited to {resource}, and didn't hand it out.")]
    AudienceUnknown {
        /// The resource asked for.
        resource: String,
    },
    /// A token exchange issued something other than an access token.
    #[error("The provider's token exchange issued a {got} rather than an access token, so nothing was handed out.")]
    NotAnAccessToken {
        /// The `issued_token_type`, cleaned for display.
        got: String,
    },
}

impl NarrowError {
    /// A stable snake_case code for the UI and the command line.
    pub fn kind(&self) -> &'static str {
        match self {
            NarrowError::NotListed { .. } => "resource_not_listed",
            NarrowError::ScopeNotAsked { .. } => "scope_not_granted",
            NarrowError::Refused { .. } => "narrowing_refused",
            NarrowError::ExchangeRefused { .. } => "exchange_refused",
            NarrowError::TooBroad { .. } => "narrowed_too_broad",
            NarrowError::WrongAudience { .. } => "narrowed_wrong_audience",
            NarrowError::AudienceUnknown { .. } => "narrowed_audience_unknown",
            NarrowError::NotAnAccessToken { .. } => "exchange_not_access_token",
        }
    }
}

impl Serialize for Error {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Error", 2)?;
        s.serialize_field("kind", self.kind())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

/// Keeps text from a provider or a URL fit to show: printable, one line, and short.
pub(crate) fn clean_for_display(text: &str, max_chars: usize) -> String {
    let cleaned: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(max_chars).collect();
    if text.chars().count() > max_chars {
        format!("{}…", cleaned.trim_end())
    } else {
        cleaned.trim().to_owned()
    }
}

/// Keeps an OS or library message fit to show when it may quote `url`, a URL that carries request secrets (an
/// authorization request's `state`, `nonce` and PKCE challenge): the URL, and any other word that looks like a
/// link, is replaced, and the rest is cleaned as [`clean_for_display`] does.
pub(crate) fn without_url(text: &str, url: &url::Url) -> String {
    let text = text.replace(url.as_str(), "the sign-in page");
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|word| if word.contains("://") || word.contains('?') || word.contains('=') { "(a link)" } else { word })
        .collect();
    clean_for_display(&words.join(" "), 160)
}

/// Why a deep link was not accepted as the answer to the sign-in in progress.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The link is longer than any real authorization response.
    #[error("A sign-in link was ignored because it is far too long. If you were signing in, sign in again.")]
    TooLong,
    /// The link is not a URL.
    #[error("A sign-in link was ignored because it is malformed. If you were signing in, sign in again.")]
    Malformed,
    /// The link's scheme or path is not the configured redirect URI.
    #[error("A link that is not a sign-in response was ignored.")]
    WrongTarget,
    /// A parameter appears more than once (RFC 6749 §3.1).
    #[error("A sign-in link was ignored because it repeats the parameter \"{0}\".")]
    DuplicateParameter(String),
    /// A required parameter is missing.
    #[error("A sign-in link was ignored because it has no \"{0}\".")]
    MissingParameter(&'static str),
    /// There is no sign-in in progress: never started, cancelled, or already completed (a replay).
    #[error("A sign-in link arrived when no sign-in was in progress (it may be old or replayed), so it was ignored.")]
    NoSignInInProgress,
    /// The `state` does not match the sign-in in progress (RFC 6749 §10.12, RFC 9700 §4.7).
    #[error("A sign-in address from an earlier or another sign-in was ignored. To finish this one, use the link of the sign-in in progress, or start again.")]
    StateMismatch,
    /// A response for the sign-in in progress arrived while a session is active; its code is not used.
    #[error("A sign-in response arrived while you're already signed in, so it was ignored. Sign out first to switch accounts.")]
    AlreadySignedIn,
    /// The sign-in in progress has expired.
    #[error("The sign-in expired before the browser answered. Sign in to start again.")]
    Expired,
    /// `iss` is not the provider Gatehouse is signing in with (RFC 9207 §2.4).
    #[error("A sign-in response came from a different provider than expected and was rejected: it names the issuer {received}, but this sign-in is with {expected}. If the provider's address changed, the profile's issuer must be written exactly as the provider names it.")]
    IssuerMismatch {
        /// The issuer the sign-in is with, as the metadata or profile spells it.
        expected: String,
        /// The `iss` that came, cleaned for display.
        received: String,
    },
    /// A link with the pending sign-in's `state` came to another address than its redirect URI (RFC 6749
    /// §3.1.2): the provider's registered redirect URI and the profile's differ.
    #[error("The provider sent the sign-in back to {received}, but this sign-in expects {expected}, so it was not used. The redirect URI registered at the provider must be exactly {expected}.")]
    RedirectMismatch {
        /// The pending attempt's redirect URI, without a query.
        expected: String,
        /// Where the answer came, without its query.
        received: String,
    },
    /// The provider promises `iss` but the response has none (RFC 9207 §2.4).
    #[error("A sign-in response without the provider's identity was rejected. Sign in to try again.")]
    IssuerMissing,
}

/// A config file that cannot be used, with the field at fault.
#[derive(Debug, Clone, thiserror::Error)]
#[error("The config file {source_name} is invalid: {field}: {problem}. Fix it and restart Gatehouse.")]
pub struct ConfigError {
    /// Where the profile came from, for the message.
    pub source_name: String,
    /// The field at fault (`-` when the file as a whole is at fault).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Why the keychain could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeychainError {
    /// There is no keychain service to talk to.
    #[error("The system keychain isn't available ({0}), so Gatehouse can't keep you signed in. Start or install your keyring (on Linux, GNOME Keyring or KeePassXC's Secret Service), then try again.")]
    Unavailable(String),
    /// The keychain is locked, or access was refused.
    #[error("The system keychain is locked or refused access. Unlock it (log in to your desktop again, or in GNOME open Passwords and Keys and unlock the Login keyring), then try again.")]
    Locked,
    /// The keychain has no collection to create the entry in: no `default` alias (WSL, KeePassXC with no
    /// database exposed, a deleted login keyring) and no unlocked collection either.
    #[error("Your keyring has no collection to keep sessions in: it has no default collection, and none is unlocked. Create a keyring and make it the default (GNOME: Passwords and Keys, then + and Password keyring, then right-click it and Set as default; KeePassXC: Settings, Secret Service Integration, expose a database), then try again.")]
    NoCollection,
    /// The keychain holds several entries for one profile (another program wrote one beside Gatehouse's).
    #[error("The system keychain holds more than one saved session for this profile (another program may have written one). Signing out removes them all (revoking each that can be read); then sign in again.")]
    Duplicates,
    /// The keychain did not answer in time. The call may still complete later.
    #[error("The system keychain didn't answer in time. If it is asking for a password, answer it, then try again.")]
    TimedOut,
    /// An earlier call is still waiting for the keychain, so this one was not started.
    #[error("The system keychain is still busy with an earlier request. If it is asking for a password, answer it, then try again.")]
    Busy,
    /// The stored entry cannot be read.
    #[error("The saved session in the keychain can't be read ({0}). Sign in again to replace it.")]
    Corrupt(String),
    /// The session does not fit in the keychain.
    #[error("The provider's tokens are too large for this system's keychain. Ask the provider for smaller tokens.")]
    TooLarge,
    /// Another keychain failure.
    #[error("The system keychain failed ({0}). Try again.")]
    Failed(String),
}

impl KeychainError {
    /// The stable code the UI branches on.
    pub fn kind(&self) -> &'static str {
        match self {
            KeychainError::Unavailable(_) => "keychain_unavailable",
            KeychainError::Locked => "keychain_locked",
            KeychainError::NoCollection => "keychain_no_collection",
            KeychainError::Duplicates => "keychain_duplicates",
            KeychainError::TimedOut | KeychainError::Busy => "keychain_timeout",
            KeychainError::Corrupt(_) => "keychain_corrupt",
            KeychainError::TooLarge => "keychain_too_large",
            KeychainError::Failed(_) => "keychain_failed",
        }
    }

    /// Whether a write that failed this way certainly wrote nothing. A timeout or an unexplained failure may
    /// still have written, or may yet write.
    pub fn nothing_written(&self) -> bool {
        matches!(
            self,
            KeychainError::Unavailable(_)
                | KeychainError::Locked
                | KeychainError::NoCollection
                | KeychainError::Busy
                | KeychainError::TooLarge
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The core says what happened, in words every shell can show: never a button to press (the command line
    /// has none) and never a flag or a command (the window has none). Each shell adds what to do its own way.
    #[test]
    fn messages_name_no_button_and_no_flag() {
        let keychain = || {
            vec![
                KeychainError::Unavailable("x".into()),
                KeychainError::Locked,
                KeychainError::NoCollection,
                KeychainError::Duplicates,
                KeychainError::TimedOut,
                KeychainError::Busy,
                KeychainError::Corrupt("x".into()),
                KeychainError::TooLarge,
                KeychainError::Failed("x".into()),
            ]
        };
        let callback = vec![
            CallbackError::TooLong,
            CallbackError::Malformed,
            CallbackError::WrongTarget,
            CallbackError::DuplicateParameter("state".into()),
            CallbackError::MissingParameter("code"),
            CallbackError::NoSignInInProgress,
            CallbackError::StateMismatch,
            CallbackError::AlreadySignedIn,
            CallbackError::Expired,
            CallbackError::IssuerMismatch {
                expected: "https://a.example".into(),
                received: "https://b.example".into(),
            },
            CallbackError::RedirectMismatch { expected: "x:/a".into(), received: "x:/b".into() },
            CallbackError::IssuerMissing,
        ];
        let mut errors = vec![
            Error::AccessDenied,
            Error::Authorization { code: "invalid_scope".into(), description: None },
            Error::TokenEndpoint { code: "invalid_client".into(), description: None },
            Error::SessionEnded,
            Error::SignInNeeded,
            Error::OtherProvider { stored: "a".into(), configured: "b".into() },
            Error::RevocationRefused("x".into()),
            Error::UnsupportedClientAuth("private_key_jwt".into()),
            Error::SaveUnconfirmed,
            Error::Network("x".into()),
            Error::BadResponse("x".into()),
            Error::BrowserOpen("x".into()),
            Error::NotSignedIn,
            Error::AlreadySignedIn,
            Error::SignInTimedOut,
            Error::RenewalBusy,
            Error::NeedsWindow,
            Error::NoDeviceFlow,
            Error::DpopBound,
            Error::ProgramRefused { kind: ProgramRefusal::Denied, message: "x".into() },
            Error::NotNarrowed(NarrowError::NotListed { resource: "https://a".into(), profile: "p".into() }),
            Error::NotNarrowed(NarrowError::ScopeNotAsked { scope: "a".into(), profile: "p".into() }),
            Error::NotNarrowed(NarrowError::Refused { code: "invalid_target".into() }),
            Error::NotNarrowed(NarrowError::ExchangeRefused { code: "invalid_request".into() }),
            Error::NotNarrowed(NarrowError::TooBroad { asked: "a".into(), got: "a b".into() }),
            Error::NotNarrowed(NarrowError::WrongAudience { resource: "https://a".into(), got: "https://b".into() }),
            Error::NotNarrowed(NarrowError::AudienceUnknown { resource: "https://a".into() }),
            Error::NotNarrowed(NarrowError::NotAnAccessToken { got: "refresh token".into() }),
            Error::SignedOutElsewhere,
            Error::SignedInElsewhere { account: "Bob".into() },
            Error::PortInUse(8080),
            Error::LifetimeTooShort { lifetime: 300, wanted: 600 },
            Error::NoProvider("config.toml".into()),
            Error::Setting("x".into()),
            Error::Internal("x".into()),
        ];
        errors.extend(keychain().into_iter().map(Error::Keychain));
        errors.extend(keychain().into_iter().map(Error::NotSaved));
        errors.extend(keychain().into_iter().map(Error::RenewalNotSaved));
        errors.extend(callback.into_iter().map(Error::Callback));
        for error in errors {
            let message = error.to_string();
            for shell_word in ["Press", "press ", "button", "--", "gatehouse sign", "gatehouse token", "run gatehouse"]
            {
                assert!(!message.contains(shell_word), "{}: {message:?} names {shell_word:?}", error.kind());
            }
        }
    }

    #[test]
    fn serialises_as_kind_and_message() {
        let json = serde_json::to_value(Error::SessionEnded).unwrap();
        assert_eq!(json["kind"], "session_ended");
        assert!(json["message"].as_str().unwrap().contains("Sign in again"));
    }

    #[test]
    fn browser_errors_lose_the_url() {
        let url = url::Url::parse("https://id.example.com/auth?state=SECRETSTATE&nonce=N&code_challenge=C").unwrap();
        let message = without_url(&format!("Failed to open {url}: xdg-open exited with 4"), &url);
        assert_eq!(message, "Failed to open the sign-in page: xdg-open exited with 4");
        let mangled = "failed: 'https://id.example.com/auth?state%3DSECRETSTATE' not found";
        let message = without_url(mangled, &url);
        assert!(!message.contains("SECRETSTATE") && message.contains("not found"), "{message}");
    }

    #[test]
    fn provider_descriptions_are_cleaned() {
        assert_eq!(clean_for_display("bad\nthing\u{7}", 50), "bad thing");
        assert_eq!(clean_for_display("abcdef", 3), "abc…");
    }
}
