//! The sign-in service: every user action (sign in, cancel, callback, refresh, sign out, restore) as one method.
//!
//! Commands, the tray and deep links all call these methods, never a copy of them. The service knows nothing of
//! Tauri: it reaches the desktop through [`Shell`], so tests drive it with the real provider and keychain but
//! without a window.
//!
//! Invariants:
//! - token-changing work (exchange, refresh, sign out, resource fetch) is serialised by the `session` lock;
//! - the keychain is written before a new token is used (RFC 9700 §4.14.2 for rotated refresh tokens);
//! - a transient failure (network, provider, keychain) never deletes a stored session; only the provider saying
//!   `invalid_grant`, an expired session that cannot be renewed (after revoking what it can), or the user
//!   signing out, does;
//! - a session's tokens go only to the provider, client and resource it is bound to ([`Binding`]);
//! - a callback that is rejected changes nothing but the notice; a callback never replaces an active session;
//! - the `state` check that consumes the attempt happens under the `session` lock, so Cancel or Sign out can
//!   never come between consuming the attempt and deciding whether to exchange its code.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use oauth2::{AccessToken, RefreshToken, StandardRevocableToken, TokenResponse as _};
use tokio::sync::MutexGuard;
use url::Url;

use crate::api::{self, Fetched};
use crate::auth::callback::{self, CallbackError, Outcome};
use crate::auth::flow::{self, TokenResponse};
use crate::auth::id_token;
use crate::auth::loopback;
use crate::auth::pending::{expiry, PendingAttempt, PendingSlot};
use crate::auth::pkce::AttemptSecrets;
use crate::config::{Config, ConfigError, Endpoints, ProviderEndpoints, DEFAULT_HTTP_TIMEOUT};
use crate::dpop::DpopKey;
use crate::error::{Error, Result};
use crate::http::Http;
use crate::os::{Clock, SystemClock};
use crate::state::{AuthView, Notice, Phase};
use crate::tokens::keychain::{Keychain, KeychainError, KEYCHAIN_TIMEOUT};
use crate::tokens::lock::{self, FileLocks, Locks};
use crate::tokens::{
    expiry_from, granted_scopes, Account, Binding, Narrowing, StoredSession, EXPIRY_SKEW, FORMAT_VERSION,
    OLDEST_FORMAT_VERSION,
};

mod decide;
mod narrow;
mod session;
mod sign_in;

pub use narrow::Handout;

use decide::{belongs_to, same_tokens, Elsewhere};

/// What the service needs from the desktop.
pub trait Shell: Send + Sync + 'static {
    /// Opens `url` in the user's default browser (RFC 8252 §8.12: never an embedded view).
    ///
    /// # Errors
    /// A description of why the browser could not be started.
    fn open_browser(&self, url: &Url) -> std::result::Result<(), String>;

    /// Brings the window to the front (the browser had it; a loopback redirect doesn't start the app again).
    fn focus(&self) {}
}

/// Where a service's view goes each time it changes: given by whoever holds the service (the
/// [`Accounts`](crate::accounts::Accounts) of the window and the light tray, a command's own channel).
pub type Views = Box<dyn Fn(&AuthView) + Send + Sync>;

/// What a service does to the world besides the keychain and the desktop: its HTTP requests, the renewal lock
/// it shares with the user's other processes, and the clock that says whether a token is due. [`Effects::system`]
/// is the real world; a test gives its own, and runs the service without a network, a lock file or waiting.
#[derive(Clone)]
pub struct Effects {
    /// Every request to the provider and the resource.
    pub http: Http,
    /// One renewal at a time per profile.
    pub locks: Arc<dyn Locks>,
    /// The time expiry is judged by.
    pub clock: Arc<dyn Clock>,
}

impl Effects {
    /// The network (each request bounded by `http_timeout`), the file locks every Gatehouse process of the user
    /// shares for `keychain`'s sessions, and the computer's clock.
    pub fn system(keychain: &Keychain, http_timeout: Duration) -> Effects {
        Effects {
            http: Http::system(http_timeout),
            locks: Arc::new(FileLocks::of_service(keychain.service())),
            clock: Arc::new(SystemClock),
        }
    }
}

/// One profile's sign-in: its session (restored, renewed, signed out), its sign-in attempt, and the view of both.
pub struct ProfileService {
    config: std::result::Result<Config, ConfigError>,
    http: Http,
    locks: Arc<dyn Locks>,
    clock: Arc<dyn Clock>,
    keychain: Keychain,
    shell: Box<dyn Shell>,
    views: Views,
    pending: PendingSlot,
    next_attempt: AtomicU64,
    /// The keychain could not be read at launch, so a stored session may still be waiting there.
    restore_failed: AtomicBool,
    endpoints: tokio::sync::Mutex<Option<Arc<ProviderEndpoints>>>,
    signing_keys: tokio::sync::Mutex<Option<Arc<JwkSet>>>,
    session: tokio::sync::Mutex<Option<StoredSession>>,
    /// The keychain holds a session bound to something else than this profile; it is left alone until a new
    /// sign-in replaces it.
    other_session: AtomicBool,
    view: Mutex<AuthView>,
    /// A sign-in with a code is polling the provider (RFC 8628 §3.4).
    device_polling: AtomicBool,
    /// Wakes a sign-in with a code that is polling, to stop it (Cancel, or a sign-in in the browser).
    device_cancel: tokio::sync::Notify,
    /// How many renewals this service has had the provider make: a handout tells one it caused from a token
    /// kept from before, or renewed by another process.
    grants: AtomicU64,
}

type SessionGuard<'a> = MutexGuard<'a, Option<StoredSession>>;

impl ProfileService {
    /// A service for `config` (or the error that stops it), keeping sessions under `keychain`, with `shell` for
    /// the desktop and `views` for its views, in the real world ([`Effects::system`]).
    pub fn new(
        config: std::result::Result<Config, ConfigError>,
        keychain: Keychain,
        shell: impl Shell,
        views: Views,
    ) -> Arc<ProfileService> {
        let effects = Effects::system(&keychain, config.as_ref().map_or(DEFAULT_HTTP_TIMEOUT, |c| c.http_timeout));
        ProfileService::with_effects(config, keychain, shell, views, effects)
    }

    /// As [`ProfileService::new`], with `effects` for the network, the lock and the clock.
    pub fn with_effects(
        config: std::result::Result<Config, ConfigError>,
        keychain: Keychain,
        shell: impl Shell,
        views: Views,
        effects: Effects,
    ) -> Arc<ProfileService> {
        let provider = config.as_ref().ok().map(|c| c.display_name.clone());
        let profile = config.as_ref().map_or("", |c| c.profile.as_str());
        let mut view = AuthView::initial(profile, provider);
        if let Err(e) = &config {
            view.phase = Phase::ConfigError;
            view.notice = Some(Notice::error(&Error::Config(e.clone())));
        }
        let Effects { http, locks, clock } = effects;
        Arc::new(ProfileService {
            config,
            http,
            locks,
            clock,
            keychain,
            shell: Box::new(shell),
            views,
            pending: PendingSlot::default(),
            next_attempt: AtomicU64::new(1),
            restore_failed: AtomicBool::new(false),
            endpoints: tokio::sync::Mutex::new(None),
            signing_keys: tokio::sync::Mutex::new(None),
            session: tokio::sync::Mutex::new(None),
            other_session: AtomicBool::new(false),
            view: Mutex::new(view),
            device_polling: AtomicBool::new(false),
            device_cancel: tokio::sync::Notify::new(),
            grants: AtomicU64::new(0),
        })
    }

    /// Seconds since the Unix epoch, by the service's clock.
    fn now(&self) -> u64 {
        self.clock.now()
    }

    /// What the window should show now.
    pub fn view(&self) -> AuthView {
        match self.view.lock() {
            Ok(view) => view.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Clears the notice.
    pub fn dismiss_notice(&self) {
        self.update(|view| view.notice = None);
    }

    /// Launch: restores a stored session, then handles links that arrived before the app was ready.
    pub async fn start(self: &Arc<Self>, early_links: Vec<String>) {
        self.restore().await;
        for link in early_links {
            self.handle_callback(&link).await;
        }
    }

    /// Restores the session kept in the keychain, refreshing it if needed, and shows the resource. No browser.
    pub async fn restore(&self) {
        let Ok(config) = self.config() else { return };
        let mut session = self.session.lock().await;
        self.update(|view| view.phase = Phase::Restoring);
        let loaded = self.keychain.load(&config.profile).await;
        self.restore_failed.store(loaded.is_err(), Ordering::Relaxed);
        match loaded {
            Ok(None) => tracing::info!("no stored session"),
            Ok(Some(stored)) => match (stored.v == OLDEST_FORMAT_VERSION, decide::adopt(config, stored)) {
                (old_format, Ok(mut stored)) => {
                    tracing::info!("restoring the stored session");
                    // An entry of an older layout, or one saved before grants were named, is written again under
                    // the lock: other processes then tell this grant's renewals from a new sign-in.
                    if old_format || stored.grant.is_none() {
                        stored = self.migrate(config, stored).await;
                    }
                    self.other_session.store(false, Ordering::Relaxed);
                    self.update(|view| view.show_session(&stored, &config.scopes));
                    *session = Some(stored);
                    self.load_resource(config, &mut session).await;
                }
                (_, Err(e)) => {
                    // RFC 9700 §4.9 and §4.10: a token goes only where it was meant to be used, so a session made
                    // with another provider, client or resource is not sent anywhere.
                    tracing::warn!("the stored session belongs to another provider or client; not using it");
                    self.other_session.store(true, Ordering::Relaxed);
                    self.update(|view| view.notice = Some(Notice::error(&e)));
                }
            },
            Err(e) => {
                tracing::warn!(kind = e.kind(), "couldn't read the keychain");
                self.update(|view| view.notice = Some(Notice::error(&e.into())));
            }
        }
        self.settle(&session);
    }

    /// Reads the stored session into memory, without the network: for the command line, which starts with
    /// nothing. Returns whether there is one.
    ///
    /// # Errors
    /// A keychain error, or [`Error::OtherProvider`] for a session bound elsewhere (it is left alone).
    pub async fn load(&self) -> Result<bool> {
        let config = self.config()?;
        let mut session = self.session.lock().await;
        if session.is_none() {
            let Some(stored) = self.keychain.load(&config.profile).await? else { return Ok(false) };
            let stored = decide::adopt(config, stored).inspect_err(|_| {
                self.other_session.store(true, Ordering::Relaxed);
            })?;
            self.update(|view| view.show_session(&stored, &config.scopes));
            *session = Some(stored);
        }
        self.settle(&session);
        Ok(true)
    }

    /// An access token for another tool (`gatehouse token`) that stays valid for at least `min_ttl`, renewed
    /// first when it would not. It goes to the caller only; nothing else sees it.
    ///
    /// # Errors
    /// [`Error::NotSignedIn`]; [`Error::SignInNeeded`] when it is due and can't be renewed; a renewal's error
    /// (an ended session is removed, a transient failure keeps it).
    pub async fn access_token(&self, min_ttl: Duration) -> Result<AccessToken> {
        let config = self.config()?;
        if !self.load().await? {
            return Err(Error::NotSignedIn);
        }
        let mut session = self.session.lock().await;
        // RFC 9449: a bound token is useless without the key, which stays here.
        if session.as_ref().is_some_and(|s| s.dpop_key.is_some() && !s.bearer_access) {
            return Err(Error::DpopBound);
        }
        let current = session.as_ref().ok_or(Error::NotSignedIn)?;
        if !current.due_within(self.now(), min_ttl) {
            return current.access_token.clone().ok_or(Error::NotSignedIn);
        }
        // The provider's tokens don't live that long: no renewal can help, so none is spent.
        if current.outlives_tokens(min_ttl) {
            return Err(too_short(current, min_ttl, self.now()));
        }
        if !current.renewable() {
            // Nothing can be renewed, but the token may still be good for a shorter need: the session stays
            // (it ends only once the token itself has expired, below in `fail`).
            let now = self.now();
            if current.due_within(now, Duration::ZERO) {
                let e = Error::SignInNeeded;
                self.fail(config, &mut session, e.clone()).await;
                return Err(e);
            }
            let left = current.expires_at.map_or(0, |at| at.saturating_sub(now));
            return Err(Error::LifetimeTooShort { lifetime: left, wanted: min_ttl.as_secs() });
        }
        // One renewal at most per call: a renewal another process made meanwhile counts as this call's.
        match self.refresh_locked(config, &mut session, min_ttl).await {
            Ok(None) => {}
            // This process ends soon, and the renewed refresh token lives only here (the keychain was asked twice,
            // under the lock): say that the session is lost rather than hand out a token as if all were well.
            Ok(Some(unsaved)) => return Err(Error::RenewalNotSaved(unsaved)),
            Err(e) => {
                self.fail(config, &mut session, e.clone()).await;
                return Err(e);
            }
        }
        let current = session.as_ref().ok_or(Error::NotSignedIn)?;
        match current.access_token.clone() {
            Some(token) if !current.due_within(self.now(), min_ttl) => Ok(token),
            _ => Err(too_short(current, min_ttl, self.now())),
        }
    }

    /// Saves an entry of an older layout (version 1, or one with no grant name) again in the current format,
    /// named, under the profile's lock, if it is still the one `read` was made from. Returns the session as it is
    /// kept now: `read` as it was when nothing could be written.
    async fn migrate(&self, config: &Config, read: StoredSession) -> StoredSession {
        let Ok(_lock) = self.renewal_lock(config).await else { return read };
        match self.keychain.load(&config.profile).await {
            Ok(Some(stored))
                if (stored.v == OLDEST_FORMAT_VERSION || stored.grant.is_none()) && same_tokens(&stored, &read) =>
            {
                let named = StoredSession { v: FORMAT_VERSION, grant: Some(crate::dpop::random_id()), ..read.clone() };
                let saved = self.keychain.save(&config.profile, &named).await;
                self.keychain.settle(&config.profile, &saved).await;
                match saved {
                    Ok(()) => named,
                    Err(e) => {
                        // It is read again (and adopted again) next time; nothing is lost.
                        tracing::warn!(kind = e.kind(), "couldn't save the session in the current format");
                        read
                    }
                }
            }
            // Named meanwhile by another process: take its name.
            Ok(Some(stored)) if same_tokens(&stored, &read) && stored.grant.is_some() => stored,
            _ => read,
        }
    }

    /// Shows `e` and puts the phase back where the facts say it is. The tray uses it for a setting that
    /// couldn't change.
    pub fn report(&self, e: &Error) {
        self.update(|view| view.notice = Some(Notice::error(e)));
        if let Ok(session) = self.session.try_lock() {
            self.settle(&session);
        }
    }

    /// Sets the resting phase from the facts: a session, a pending attempt, or neither.
    fn settle(&self, session: &Option<StoredSession>) {
        let pending = self.pending.is_pending().unwrap_or(false);
        let polling = self.device_polling.load(Ordering::SeqCst);
        self.update(|view| {
            view.phase = if self.config.is_err() {
                Phase::ConfigError
            } else if session.is_some() {
                Phase::SignedIn
            } else if pending || polling {
                Phase::WaitingForBrowser
            } else {
                Phase::SignedOut
            };
            if !pending {
                view.sign_in_expires_at = None;
                view.sign_in_link = None;
                view.sign_in_redirect = None;
            }
            if !polling {
                view.device_code = None;
            }
            if session.is_none() {
                view.clear_session();
            }
        });
    }

    fn update(&self, change: impl FnOnce(&mut AuthView)) {
        let snapshot = {
            let mut view = match self.view.lock() {
                Ok(view) => view,
                Err(poisoned) => poisoned.into_inner(),
            };
            change(&mut view);
            view.revision += 1;
            view.clone()
        };
        (self.views)(&snapshot);
    }

    fn config(&self) -> Result<&Config> {
        self.config.as_ref().map_err(|e| Error::Config(e.clone()))
    }

    /// The profile in use, if the config is valid.
    pub fn profile(&self) -> Option<&Config> {
        self.config.as_ref().ok()
    }
}

/// Said when the keyring had no default collection and the session went to its session collection.
const UNTIL_LOGOUT: &str = "You're signed in. Your keyring has no default collection, so Gatehouse kept the session in its session collection, which your keyring forgets when you log out. To stay signed in after logging out, create a keyring and make it the default (GNOME: Passwords and Keys), then sign in again.";

/// What "open the browser again" did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Reopened {
    /// Opened the waiting sign-in's own link again.
    SameLink,
    /// Started a new sign-in: the link was a pushed request's, used once only (RFC 9126 §4).
    StartedOver,
    /// Nothing: no sign-in was waiting for the browser.
    Nothing,
}

/// Takes `profile`'s renewal lock among `locks` (for [`FileLocks`], shared with every other Gatehouse process of
/// this user), waiting at most `patience`.
///
/// # Errors
/// [`Error::RenewalBusy`] after `patience`; [`Error::Internal`] when the lock can't be made.
pub(crate) async fn renewal_lock(locks: &dyn Locks, profile: &str, patience: Duration) -> Result<lock::RenewalLock> {
    locks.acquire(profile, patience).await.map_err(|e| match e {
        lock::LockError::Busy => Error::RenewalBusy,
        lock::LockError::Unavailable(why) => Error::Internal(why),
    })
}

/// The keychain service that keeps the client secrets providers issued when Gatehouse registered itself (RFC
/// 7591), one entry per profile, beside the sessions' service.
pub fn client_secrets_service(service: &str) -> String {
    format!("{service}.client-secret")
}

/// Why `session` can't give a token that lasts `min_ttl`: the provider's tokens don't live that long.
fn too_short(session: &StoredSession, min_ttl: Duration, now: u64) -> Error {
    let lifetime = session.lifetime.or_else(|| session.expires_at.map(|at| at.saturating_sub(now))).unwrap_or_default();
    Error::LifetimeTooShort { lifetime, wanted: min_ttl.as_secs() }
}

/// Marks a sign-in with a code as under way for as long as it lives, whichever way it ends.
struct Polling<'a>(&'a AtomicBool);

impl<'a> Polling<'a> {
    fn start(flag: &'a AtomicBool) -> Polling<'a> {
        flag.store(true, Ordering::SeqCst);
        Polling(flag)
    }
}

impl Drop for Polling<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What the window shows of a sign-in with a code: the code, the links, and a QR code of the most complete link.
fn device_code_view(details: &flow::DeviceAuthorization, now: u64) -> crate::state::DeviceCode {
    let complete = details.verification_uri_complete().map(|c| c.secret().to_owned());
    let link = complete.clone().unwrap_or_else(|| details.verification_uri().to_string());
    crate::state::DeviceCode {
        user_code: details.user_code().secret().to_owned(),
        verification_uri: details.verification_uri().to_string(),
        verification_uri_complete: complete,
        qr: qr_svg(&link),
        expires_at: now + details.expires_in().as_secs(),
    }
}

/// `text` as a QR code, an SVG data URI; `None` for text too long for one.
fn qr_svg(text: &str) -> Option<String> {
    use base64::Engine as _;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(180, 180).quiet_zone(true).build();
    Some(format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg)))
}

/// Whether `config`'s sessions are bound to a DPoP key (RFC 9449): where the provider takes ES256 proofs, unless
/// the profile says `dpop = false`; or wherever the profile says `dpop = true`.
fn uses_dpop(config: &Config, endpoints: &ProviderEndpoints) -> bool {
    config.dpop.unwrap_or(endpoints.dpop_supported)
}

#[cfg(test)]
mod tests;
