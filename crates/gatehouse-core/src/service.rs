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
use crate::state::{AuthView, Notice, Phase};
use crate::tokens::keychain::{Keychain, KeychainError, KEYCHAIN_TIMEOUT};
use crate::tokens::lock;
use crate::tokens::{
    expiry_from, granted_scopes, unix_now, Account, Binding, StoredSession, EXPIRY_SKEW, FORMAT_VERSION,
    OLDEST_FORMAT_VERSION,
};

/// What the service needs from the desktop.
pub trait Shell: Send + Sync + 'static {
    /// Opens `url` in the user's default browser (RFC 8252 §8.12: never an embedded view).
    ///
    /// # Errors
    /// A description of why the browser could not be started.
    fn open_browser(&self, url: &Url) -> std::result::Result<(), String>;

    /// Shows `view` in the window.
    fn publish(&self, view: &AuthView);

    /// Brings the window to the front (the browser had it; a loopback redirect doesn't start the app again).
    fn focus(&self) {}
}

/// The sign-in service.
pub struct Gatehouse {
    config: std::result::Result<Config, ConfigError>,
    http: reqwest::Client,
    keychain: Keychain,
    shell: Box<dyn Shell>,
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
}

type SessionGuard<'a> = MutexGuard<'a, Option<StoredSession>>;

impl Gatehouse {
    /// A service for `config` (or the error that stops it), keeping sessions under `keychain`.
    ///
    /// # Errors
    /// [`Error::Internal`] if the HTTP client cannot be built.
    pub fn new(
        config: std::result::Result<Config, ConfigError>,
        keychain: Keychain,
        shell: impl Shell,
    ) -> Result<Arc<Gatehouse>> {
        let provider = config.as_ref().ok().map(|c| c.display_name.clone());
        let profile = config.as_ref().map_or("", |c| c.profile.as_str());
        let mut view = AuthView::initial(profile, provider);
        if let Err(e) = &config {
            view.phase = Phase::ConfigError;
            view.notice = Some(Notice::error(&Error::Config(e.clone())));
        }
        let http = crate::http::client(config.as_ref().map_or(DEFAULT_HTTP_TIMEOUT, |c| c.http_timeout))?;
        Ok(Arc::new(Gatehouse {
            config,
            http,
            keychain,
            shell: Box::new(shell),
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
        }))
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
            Ok(Some(stored)) => match (stored.v == OLDEST_FORMAT_VERSION, self.adopt(config, stored)) {
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
            let stored = self.adopt(config, stored).inspect_err(|_| {
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
        if !current.due_within(unix_now(), min_ttl) {
            return current.access_token.clone().ok_or(Error::NotSignedIn);
        }
        // The provider's tokens don't live that long: no renewal can help, so none is spent.
        if current.outlives_tokens(min_ttl) {
            return Err(too_short(current, min_ttl));
        }
        if !current.renewable() {
            // Nothing can be renewed, but the token may still be good for a shorter need: the session stays
            // (it ends only once the token itself has expired, below in `fail`).
            let now = unix_now();
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
            Some(token) if !current.due_within(unix_now(), min_ttl) => Ok(token),
            _ => Err(too_short(current, min_ttl)),
        }
    }

    /// Takes a stored session for this profile if it is bound to what the profile names now. A version 1 entry
    /// has no binding: the profile that finds it adopts it, as the only owner it can have had. Nothing is
    /// written here (a read-only command writes nothing): the entry takes the current format at its next write,
    /// or under the lock in [`Gatehouse::restore`].
    ///
    /// # Errors
    /// [`Error::OtherProvider`] when the session belongs to another provider, client or resource.
    fn adopt(&self, config: &Config, mut stored: StoredSession) -> Result<StoredSession> {
        let expected = Binding::of(config);
        match &stored.binding {
            Some(binding) if binding.same_as(&expected) => Ok(stored),
            Some(binding) => Err(other_provider(binding, &expected)),
            None => {
                stored.binding = Some(expected);
                stored.v = FORMAT_VERSION;
                Ok(stored)
            }
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

    /// Starts a sign-in: opens the system browser at the authorization endpoint and waits for the callback.
    /// A second call replaces the attempt in progress.
    ///
    /// # Errors
    /// The error is also shown as the notice.
    pub async fn sign_in(self: &Arc<Self>) -> Result<()> {
        self.sign_in_with(false).await
    }

    /// Starts a sign-in like [`Gatehouse::sign_in`]; with `another_account`, the provider is asked to let the
    /// person choose or sign in as someone else than the browser's current user (OIDC Core §3.1.2.1
    /// `prompt`): `select_account` where its metadata lists it, else `login`. For a second account at a
    /// provider another profile is signed in to.
    ///
    /// # Errors
    /// The error is also shown as the notice.
    pub async fn sign_in_with(self: &Arc<Self>, another_account: bool) -> Result<()> {
        let result = self.begin_sign_in(another_account).await;
        if let Err(e) = &result {
            tracing::warn!(kind = e.kind(), "sign-in not started: {e}");
            self.report(e);
        }
        result
    }

    async fn begin_sign_in(self: &Arc<Self>, another_account: bool) -> Result<()> {
        let config = self.config()?;
        // If the keychain was locked or away at launch, the session may be there now: use it rather than
        // sign in again over it.
        if self.restore_failed.load(Ordering::Relaxed) {
            self.restore().await;
            if self.session.lock().await.is_some() {
                // The session is back: a sign-in still waiting for the browser would only replace it.
                self.pending.cancel(None)?;
                self.settle(&*self.session.lock().await);
                return Ok(());
            }
        }
        if self.session.lock().await.is_some() {
            return Err(Error::AlreadySignedIn);
        }
        let endpoints = self.endpoints(config).await?;
        // The browser goes only where something answers: a provider that is down is said here, not as a dead
        // page in the browser.
        crate::http::reachable(&endpoints.authorization).await?;
        // RFC 8252 §7.3: a loopback redirect gets a fresh port for each attempt, open only while it is pending.
        let listener = match config.loopback() {
            Some(ip) => Some(loopback::bind(&config.redirect_uri, ip).await?),
            None => None,
        };
        let redirect_uri = listener.as_ref().map_or_else(|| config.redirect_uri.clone(), |l| l.redirect_uri.clone());
        let with_secret = self.with_secret(config).await?;
        let config = &*with_secret;
        let client = flow::client(config, &endpoints, &redirect_uri)?;
        let secrets = AttemptSecrets::generate(&config.scopes);
        let prompt =
            another_account.then_some(if endpoints.select_account_supported { "select_account" } else { "login" });
        let mut url = flow::authorization_url(&client, config, &secrets, prompt);
        // RFC 9449 §10: the session's key is made now, and the code bound to it (`dpop_jkt`), so that only this
        // key can exchange it.
        let dpop = uses_dpop(config, &endpoints).then(DpopKey::generate).transpose()?;
        if let Some(key) = &dpop {
            url.query_pairs_mut().append_pair("dpop_jkt", &key.thumbprint()?);
        }
        // RFC 9126: where the provider takes pushed requests, the request goes to it directly, and the browser
        // gets only a reference to it.
        if let Some(endpoint) = &endpoints.pushed_authorization {
            url = flow::push_authorization_request(config, &endpoints, endpoint, &self.http, &url).await?;
        }
        let id = self.next_attempt.fetch_add(1, Ordering::Relaxed);
        let listener = listener.map(|bound| {
            let this = Arc::clone(self);
            let expected = redirect_uri.clone();
            let on_callback: loopback::OnCallback = Arc::new(move |link: String| {
                let (this, expected) = (Arc::clone(&this), expected.clone());
                Box::pin(async move { this.handle_loopback_callback(&link, &expected).await })
            });
            bound.serve(on_callback)
        });
        let shown_redirect = redirect_uri.to_string();
        // Replacing an earlier attempt drops it, and so closes its listener.
        self.pending.replace(PendingAttempt {
            id,
            state: secrets.state,
            verifier: secrets.verifier,
            nonce: secrets.nonce,
            expires_at: expiry(Instant::now(), config.sign_in_timeout),
            redirect_uri,
            listener,
            dpop,
        })?;
        self.stop_device_sign_in();
        self.update(|view| {
            view.phase = Phase::WaitingForBrowser;
            view.sign_in_expires_at = Some(unix_now() + config.sign_in_timeout.as_secs());
            view.sign_in_link = Some(url.to_string());
            view.sign_in_redirect = Some(shown_redirect);
            view.device_flow = endpoints.device_authorization.is_some();
            view.device_code = None;
            view.notice = None;
        });
        tracing::info!(attempt = id, "opening the system browser for sign-in");
        if let Err(reason) = self.shell.open_browser(&url) {
            self.pending.cancel(Some(id))?;
            self.update(|view| view.phase = Phase::SignedOut);
            // The opener's message may quote the URL, and with it the attempt's state and PKCE challenge.
            return Err(Error::BrowserOpen(crate::error::without_url(&reason, &url)));
        }

        // Give up when the attempt expires, so the window does not wait forever.
        let this = Arc::clone(self);
        let ttl = config.sign_in_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if this.pending.cancel(Some(id)).unwrap_or(false) {
                tracing::info!(attempt = id, "sign-in timed out");
                this.report(&Error::SignInTimedOut);
            }
        });
        Ok(())
    }

    /// Opens the browser again at the waiting sign-in's own link, and says what it did. The attempt (its `state`, PKCE verifier and
    /// expiry) stays as it is, so a link already copied to another browser keeps working. A pushed request's
    /// link is used once only (RFC 9126 §4: the client uses a `request_uri` once), so for it a new sign-in
    /// starts over instead. With no sign-in waiting for the browser, nothing happens.
    ///
    /// # Errors
    /// [`Error::BrowserOpen`] when no browser can be started (the sign-in waits on; its link is still shown);
    /// a new sign-in's errors.
    pub async fn open_browser_again(self: &Arc<Self>) -> Result<Reopened> {
        let view = self.view();
        let link = match (&view.phase, &view.sign_in_link, view.device_code.is_some()) {
            (Phase::WaitingForBrowser, Some(link), false) if self.pending.is_pending()? => link.clone(),
            _ => {
                self.settle(&*self.session.lock().await);
                return Ok(Reopened::Nothing);
            }
        };
        let url = url::Url::parse(&link).map_err(|e| Error::Internal(e.to_string()))?;
        if url.query_pairs().any(|(name, _)| name == "request_uri") {
            self.sign_in().await?;
            return Ok(Reopened::StartedOver);
        }
        tracing::info!("opening the system browser again for the waiting sign-in");
        self.shell.open_browser(&url).map_err(|reason| {
            let e = Error::BrowserOpen(crate::error::without_url(&reason, &url));
            self.report(&e);
            e
        })?;
        Ok(Reopened::SameLink)
    }

    /// Cancels the sign-in in progress. Its callback, if it still comes, is rejected.
    ///
    /// # Errors
    /// Only on an internal failure.
    pub async fn cancel_sign_in(&self) -> Result<()> {
        let stopped_device = self.stop_device_sign_in();
        if self.pending.cancel(None)? || stopped_device {
            tracing::info!("sign-in cancelled");
            self.update(|view| view.notice = Some(Notice::info("sign_in_cancelled", "Sign-in cancelled.")));
        }
        self.settle(&*self.session.lock().await);
        Ok(())
    }

    /// Whether `link` answers this profile's pending sign-in: it is addressed to the profile's redirect URI and
    /// its `state` is the attempt's (compared in constant time). Nothing changes.
    pub fn claims(&self, link: &str) -> bool {
        let Ok(config) = self.config() else { return false };
        callback::parse(link, &config.redirect_uri).is_ok_and(|response| self.pending.state_matches(&response.state))
    }

    /// Why this profile would reject `link`, for a link no profile claims: a malformed link or one addressed
    /// elsewhere says so; a well-formed one is [`CallbackError::StateMismatch`] while a sign-in is pending, and
    /// [`CallbackError::NoSignInInProgress`] otherwise.
    pub fn rejection(&self, link: &str) -> Error {
        let Ok(config) = self.config() else { return CallbackError::WrongTarget.into() };
        match callback::parse(link, &config.redirect_uri) {
            Err(e) => e.into(),
            Ok(_) if self.pending.is_pending().unwrap_or(false) => CallbackError::StateMismatch.into(),
            Ok(_) => CallbackError::NoSignInInProgress.into(),
        }
    }

    /// Whether the keychain couldn't be read when the session was last restored.
    pub fn restore_failed(&self) -> bool {
        self.restore_failed.load(Ordering::Relaxed)
    }

    /// Whether a sign-in is waiting for the browser.
    pub fn is_pending(&self) -> bool {
        self.pending.is_pending().unwrap_or(false)
    }

    /// Handles a deep link. Whatever happens is shown in the window; a rejected link changes nothing else.
    pub async fn handle_callback(&self, link: &str) {
        let Ok(config) = self.config() else { return };
        let _ = self.handle_callback_for(link, &config.redirect_uri).await;
    }

    /// Handles the address the browser ended on, pasted by the person (a browser on another machine, over SSH or
    /// in a VM, can't hand it over). It is checked exactly as a link from the OS or the loopback listener is:
    /// against the pending attempt's redirect URI (a loopback one with its port), its `state` and `iss`.
    ///
    /// # Errors
    /// Why the sign-in did not complete; it is also shown in the window.
    pub async fn handle_pasted(&self, link: &str) -> Result<()> {
        let config = self.config()?;
        let expected = self.pending.redirect_uri().unwrap_or_else(|| config.redirect_uri.clone());
        let result = self.complete_sign_in(link.trim(), &expected).await;
        match &result {
            // What was pasted isn't an answer to this sign-in, which waits on: the form beside it says why, and
            // nothing else on screen changes.
            Err(e @ Error::Callback(_)) if self.pending.is_pending().unwrap_or(false) => {
                tracing::info!(kind = e.kind(), "pasted address not accepted: {e}");
            }
            // The attempt is over (it expired, or a session came meanwhile): the account says so, and shows
            // what it is now.
            Err(e) => {
                tracing::warn!(kind = e.kind(), "sign-in callback not accepted: {e}");
                self.report(e);
            }
            Ok(()) => {}
        }
        result
    }

    /// Handles a request that reached the loopback listener of the attempt that redirects to `expected`, and
    /// says how it went, for the browser's page.
    ///
    /// # Errors
    /// Why the sign-in did not complete; it is also shown in the window.
    pub async fn handle_loopback_callback(&self, link: &str, expected: &Url) -> Result<()> {
        let result = self.handle_callback_for(link, expected).await;
        // Only an answer to this sign-in brings the window forward: a stray or forged request must not take the
        // focus from the browser, where the person's next keypress could land on Cancel.
        if !matches!(result, Err(Error::Callback(_))) {
            self.shell.focus();
        }
        result
    }

    async fn handle_callback_for(&self, link: &str, expected: &Url) -> Result<()> {
        let result = self.complete_sign_in(link, expected).await;
        if let Err(e) = &result {
            // Never log the link itself: it may carry a valid code.
            tracing::warn!(kind = e.kind(), "sign-in callback not accepted: {e}");
            self.report(e);
        }
        result
    }

    async fn complete_sign_in(&self, link: &str, expected: &Url) -> Result<()> {
        let config = self.config()?;
        let response = callback::parse(link, expected).map_err(|e| {
            // The pending sign-in's own answer that fails a check is never left to time out as a stray link: it
            // is said at once, with what was expected and what came. (The attempt stays pending: a forged link
            // with a state read from the browser's command line must not be able to end it.)
            let ours = callback::state_of(link).is_some_and(|state| self.pending.state_matches(&state));
            if ours {
                callback::explain(e, link, expected)
            } else {
                e
            }
        })?;
        let endpoints = self.endpoints(config).await?;
        // RFC 9207 §2.4: a response from another issuer is a mix-up attack (RFC 9700 §4.4). Checked before the
        // attempt is consumed, so such a response changes nothing and the real one can still complete.
        callback::check_issuer(
            response.issuer.as_deref(),
            endpoints.issuer_id.as_deref(),
            endpoints.iss_parameter_supported,
        )?;

        let mut session = self.session.lock().await;
        // One-time, constant-time `state` check (RFC 6749 §10.12; RFC 9700 §4.7). A mismatch leaves the real
        // attempt pending; a match consumes it, so a replay finds nothing. Taken under the session lock: a Cancel
        // or Sign out that comes first wins, and none can come between this and the exchange.
        let attempt = self.pending.take_matching(&response.state, Instant::now())?;
        self.update(|view| {
            view.sign_in_expires_at = None;
            view.sign_in_link = None;
            view.sign_in_redirect = None;
        });
        if session.is_some() {
            // Never replace an active session with another grant: the old one would stay alive at the provider,
            // unrevoked and forgotten. The code is not exchanged.
            return Err(CallbackError::AlreadySignedIn.into());
        }
        let code = match response.outcome {
            Outcome::Code(code) => code,
            Outcome::Error { code, .. } if code == "access_denied" => return Err(Error::AccessDenied),
            Outcome::Error { code, description } => return Err(Error::Authorization { code, description }),
        };
        self.update(|view| view.phase = Phase::Exchanging);
        let with_secret = self.with_secret(config).await?;
        let config = &*with_secret;
        let client = flow::client(config, &endpoints, &attempt.redirect_uri)?;
        let provider = flow::Provider { config, endpoints: &endpoints, http: &self.http };
        let tokens = flow::exchange_code(&client, provider, code, attempt.verifier, attempt.dpop.as_ref()).await?;
        let nonce = attempt.nonce.as_ref().map(|n| n.secret().as_str());
        self.keep_new_grant(config, &endpoints, &tokens, nonce, attempt.dpop.as_ref(), &mut session).await?;
        self.settle(&session);
        Ok(())
    }

    /// Keeps a grant just issued: checks its ID token (with `nonce`, when one was sent), saves it in the
    /// keychain before use, and shows the account and resource. A grant that can't be kept is revoked. `dpop`
    /// is the key the token request was proven with; it is kept with the session when the provider bound the
    /// tokens to it.
    async fn keep_new_grant(
        &self,
        config: &Config,
        endpoints: &ProviderEndpoints,
        tokens: &TokenResponse,
        nonce: Option<&str>,
        dpop: Option<&DpopKey>,
        session: &mut SessionGuard<'_>,
    ) -> Result<()> {
        // RFC 9449 §5: what the session keeps of the key it proved (see `TokenResponse::key_binding`).
        let (keep_key, bearer_access) = tokens.key_binding(dpop.is_some());
        let dpop = dpop.filter(|_| keep_key);
        let access_key = dpop.filter(|_| !bearer_access);
        let account = match self.account_from(config, endpoints, tokens, nonce, access_key).await {
            Ok(account) => account,
            Err(e) => {
                // The grant is refused, not kept: end it at the provider too.
                let revoked =
                    self.revoke_grant(config, tokens.refresh_token(), Some(tokens.access_token()), dpop).await;
                if let Err(revoke_error) = revoked {
                    tracing::warn!(kind = revoke_error.kind(), "couldn't revoke the refused grant");
                }
                return Err(e);
            }
        };
        let stored = StoredSession {
            v: FORMAT_VERSION,
            binding: Some(Binding::recorded(config, endpoints)),
            access_token: Some(tokens.access_token().clone()),
            refresh_token: tokens.refresh_token().cloned(),
            expires_at: expiry_from(unix_now(), tokens.expires_in()),
            scopes: granted_scopes(
                tokens.scopes().map(|s| s.iter().map(|s| s.to_string()).collect()),
                &config.scopes,
                tokens.refresh_token().is_some(),
            ),
            account,
            dpop_key: dpop.map(DpopKey::to_stored),
            bearer_access,
            lifetime: tokens.expires_in().map(|d| d.as_secs()),
            grant: Some(crate::dpop::random_id()),
        };
        // The entry is the truth: under the profile's lock, look at it again before writing. Another process
        // (the window, or `gatehouse sign-in`) may have signed in meanwhile; its session is kept, and this new
        // grant undone, so that neither grant is left alive with nobody holding it, and no process ever takes on
        // another account without saying so.
        let lock = match self.renewal_lock(config).await {
            Ok(lock) => lock,
            Err(e) => {
                if let Err(revoke_error) = self.revoke(config, &stored).await {
                    tracing::warn!(kind = revoke_error.kind(), "couldn't revoke the unkept grant");
                }
                return Err(e);
            }
        };
        let found = match self.keychain.load(&config.profile).await {
            Ok(found) => found,
            // Unreadable: nothing there can be another process's usable session; the new one replaces it.
            Err(KeychainError::Corrupt(_)) => None,
            // What the entry holds can't be told: it may be another process's new session. Never overwrite on a
            // guess; undo this grant instead, and say why.
            Err(e) => {
                tracing::warn!(kind = e.kind(), "couldn't re-read the keychain before keeping the new session");
                if let Err(revoke_error) = self.revoke(config, &stored).await {
                    tracing::warn!(kind = revoke_error.kind(), "couldn't revoke the unkept grant");
                }
                return Err(e.into());
            }
        };
        if let Some(existing) = found {
            if belongs_to(&existing, config) {
                tracing::info!("another Gatehouse process signed in meanwhile; keeping its session");
                if let Err(revoke_error) = self.revoke(config, &stored).await {
                    tracing::warn!(kind = revoke_error.kind(), "couldn't revoke the undone grant");
                }
                drop(lock);
                let existing = self.adopt(config, existing)?;
                let account = existing.account.name.clone().or(existing.account.subject.clone());
                let e = Error::SignedInElsewhere {
                    account: crate::error::clean_for_display(account.as_deref().unwrap_or("another account"), 80),
                };
                self.update(|view| view.show_session(&existing, &config.scopes));
                **session = Some(existing);
                self.load_resource(config, session).await;
                self.update(|view| view.notice = Some(Notice::error(&e)));
                return Err(e);
            }
        }
        let saved = self.keychain.save(&config.profile, &stored).await;
        // Held until a write of unknown outcome has landed or failed, so that no other process reads the entry
        // before.
        self.keychain.settle(&config.profile, &saved).await;
        let unconfirmed = match saved {
            Ok(()) => false,
            // The write may have landed, or may still land (the keychain keeps its calls in order): claiming
            // failure and revoking now could leave a dead session in the keychain. Go on, and say so.
            Err(e) if !e.nothing_written() => {
                tracing::warn!(kind = e.kind(), "the keychain didn't confirm the new session");
                true
            }
            Err(e) => {
                // Nothing was written, so the tokens can't be kept: don't leave a live grant behind at the
                // provider. Whatever the keychain held before (another provider's session) is left as it was.
                if let Err(revoke_error) = self.revoke(config, &stored).await {
                    tracing::warn!(kind = revoke_error.kind(), "couldn't revoke the unkept grant");
                }
                return Err(e.into());
            }
        };
        drop(lock);
        tracing::info!(unconfirmed, "signed in; session stored in the keychain");
        self.other_session.store(false, Ordering::Relaxed);
        self.update(|view| {
            view.show_session(&stored, &config.scopes);
            view.notice = None;
        });
        **session = Some(stored);
        if self.load_resource(config, session).await {
            if unconfirmed {
                self.update(|view| view.notice = Some(Notice::error(&Error::SaveUnconfirmed)));
            } else if self.keychain.kept_until_logout(&config.profile) {
                self.update(|view| view.notice = Some(Notice::info("keychain_session_only", UNTIL_LOGOUT)));
            }
        }
        Ok(())
    }

    /// Signs in with the device authorization grant (RFC 8628), for a machine without a browser: `show` gets
    /// the user code and where to enter it, on any device; this then waits until the user has approved it
    /// there, declined, or let the code expire.
    ///
    /// # Errors
    /// [`Error::NoDeviceFlow`] when the provider offers none; [`Error::AlreadySignedIn`];
    /// [`Error::AccessDenied`]; [`Error::SignInTimedOut`]; a token endpoint or keychain error.
    pub async fn sign_in_with_device(&self, show: impl FnOnce(&flow::DeviceAuthorization)) -> Result<()> {
        let config = self.config()?;
        if self.load().await? {
            return Err(Error::AlreadySignedIn);
        }
        let endpoints = self.endpoints(config).await?;
        let url = endpoints.device_authorization.clone().ok_or(Error::NoDeviceFlow)?;
        let with_secret = self.with_secret(config).await?;
        let config = &*with_secret;
        let client = flow::client(config, &endpoints, &config.redirect_uri)?;
        // A key of its own, as a browser sign-in has (RFC 9449): the tokens are bound to it just the same.
        let dpop = uses_dpop(config, &endpoints).then(DpopKey::generate).transpose()?;
        // From here until the provider answers, Cancel (or a sign-in in the browser) stops this sign-in: while
        // the code is asked for, and while it is polled.
        let cancelled = self.device_cancel.notified();
        tokio::pin!(cancelled);
        let polling = Polling::start(&self.device_polling);
        let details = tokio::select! {
            details = flow::device_authorization(&client, &url, config, &self.http) => Some(details?),
            () = &mut cancelled => None,
        };
        let polled = match details {
            Some(details) => {
                show(&details);
                self.update(|view| view.phase = Phase::WaitingForBrowser);
                let provider = flow::Provider { config, endpoints: &endpoints, http: &self.http };
                tokio::select! {
                    polled = flow::device_token(&client, provider, &details, dpop.as_ref()) => Some(polled),
                    () = &mut cancelled => None,
                }
            }
            None => None,
        };
        drop(polling);
        self.update(|view| view.device_code = None);
        let tokens = match polled {
            Some(Ok(tokens)) => tokens,
            Some(Err(e)) => {
                self.report(&e);
                return Err(e);
            }
            None => {
                self.settle(&*self.session.lock().await);
                return Ok(());
            }
        };
        let mut session = self.session.lock().await;
        if session.is_some() {
            // Signed in some other way meanwhile: keep that session, and don't leave this grant alive.
            let _ = self.revoke_grant(config, tokens.refresh_token(), Some(tokens.access_token()), dpop.as_ref()).await;
            return Err(Error::AlreadySignedIn);
        }
        self.update(|view| view.phase = Phase::Exchanging);
        // No nonce: the device grant has no authorization request to carry one.
        let kept = self.keep_new_grant(config, &endpoints, &tokens, None, dpop.as_ref(), &mut session).await;
        if let Err(e) = &kept {
            self.update(|view| view.notice = Some(Notice::error(e)));
        }
        self.settle(&session);
        kept
    }

    /// Signs in with a code from the window (RFC 8628): the browser attempt, if one waits, gives way, and the
    /// window shows the code, the link and a QR code of it until the person has approved it on any device.
    ///
    /// # Errors
    /// As [`Gatehouse::sign_in_with_device`]; the error is also shown as the notice.
    pub async fn sign_in_with_code(&self) -> Result<()> {
        let result = self
            .sign_in_with_device(|details| {
                // The browser attempt gives way only once there is a code to show instead.
                let _ = self.pending.cancel(None);
                let code = device_code_view(details);
                self.update(|view| {
                    view.device_code = Some(code);
                    view.sign_in_link = None;
                    view.sign_in_redirect = None;
                    view.sign_in_expires_at = None;
                    view.notice = None;
                });
            })
            .await;
        if let Err(e) = &result {
            self.report(e);
        }
        result
    }

    /// Stops a sign-in with a code that is polling; says whether one was.
    fn stop_device_sign_in(&self) -> bool {
        let polling = self.device_polling.load(Ordering::SeqCst);
        if polling {
            self.device_cancel.notify_waiters();
        }
        polling
    }

    /// Refreshes the access token and reloads the resource.
    ///
    /// # Errors
    /// The error is also shown as the notice. A network failure keeps the session; `invalid_grant` ends it.
    pub async fn refresh(&self) -> Result<()> {
        let config = self.config()?;
        let mut session = self.session.lock().await;
        if session.is_none() {
            drop(session);
            self.report(&Error::NotSignedIn);
            return Err(Error::NotSignedIn);
        }
        self.update(|view| view.phase = Phase::Refreshing);
        // Without a refresh token there is nothing to renew: Refresh reloads the data with the access token
        // while it lasts (the window labels the button so), and an expired one asks for a new sign-in.
        let renewable = session.as_ref().is_some_and(StoredSession::renewable);
        let result =
            match if renewable { self.refresh_locked(config, &mut session, EXPIRY_SKEW).await } else { Ok(None) } {
                Ok(unsaved) => self.finish_resource(config, &mut session, unsaved).await,
                Err(e) => {
                    self.fail(config, &mut session, e.clone()).await;
                    Err(e)
                }
            };
        self.settle(&session);
        result
    }

    /// Signs out: revokes at the provider (RFC 7009) when it can, deletes the keychain entry, and forgets the
    /// session. Succeeds locally even when the provider cannot be told, and says so.
    ///
    /// # Errors
    /// A keychain failure, also shown as the notice.
    pub async fn sign_out(&self) -> Result<()> {
        let config = self.config()?;
        self.pending.cancel(None)?;
        let mut session = self.session.lock().await;
        self.update(|view| view.phase = Phase::SigningOut);
        // The entry is the truth: another process may have renewed, signed out or signed in since this one last
        // looked. Under the profile's lock, so that no renewal elsewhere can save after the delete, read it,
        // revoke what it holds (and what this process holds, where that differs), delete it, then let go.
        let lock = match self.renewal_lock(config).await {
            Ok(lock) => lock,
            Err(e) => {
                drop(session);
                self.report(&e);
                return Err(e);
            }
        };
        // A session that belongs to another provider was never in use here: it is neither revoked (its provider
        // is not this profile's) nor deleted, so that it is replaced only by a sign-in that succeeds.
        let (theirs, other_provider) = match self.keychain.load(&config.profile).await {
            Ok(Some(stored)) if belongs_to(&stored, config) => (vec![stored], false),
            Ok(Some(_)) => (Vec::new(), true),
            Ok(None) => (Vec::new(), false),
            // Several items for the profile (another program wrote one): each grant among them that can be read
            // and is this profile's is revoked, then all of them are removed, so that none is orphaned alive.
            Err(KeychainError::Duplicates) => match self.keychain.load_each(&config.profile).await {
                Ok(each) => (each.into_iter().filter(|stored| belongs_to(stored, config)).collect(), false),
                Err(e) => return self.refuse_sign_out(e, lock, &session),
            },
            // An entry that can't be read holds nothing that could be revoked or used: it is removed (with what
            // this process holds revoked), as the message for it says.
            Err(KeychainError::Corrupt(_)) => (Vec::new(), false),
            // What is stored can't be told (a locked keychain, a provider that didn't answer): deleting it blind
            // could drop another process's new session unrevoked. Nothing is signed out; the session is kept, and
            // the keychain's error says what to do.
            Err(e) => return self.refuse_sign_out(e, lock, &session),
        };
        let mut grants: Vec<StoredSession> = theirs;
        if let Some(held) = session.as_ref() {
            if !grants.iter().any(|stored| same_tokens(stored, held)) {
                grants.push(held.clone());
            }
        }
        let had_session = !grants.is_empty();
        // Where revocation goes, to name it when it can't be reached.
        let revocation_host =
            grants.iter().filter_map(|g| g.binding.as_ref()?.revocation_endpoint.as_deref()).find_map(|endpoint| {
                let url = url::Url::parse(endpoint).ok()?;
                let host = url.host_str()?;
                Some(url.port().map_or_else(|| host.to_owned(), |port| format!("{host}:{port}")))
            });
        let mut revoked = Ok(false);
        for grant in &grants {
            revoked = match (revoked, self.revoke(config, grant).await) {
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                (Ok(before), Ok(now)) => Ok(before || now),
            };
        }
        let deleted = if other_provider { Ok(()) } else { self.keychain.delete(&config.profile).await };
        // The delete may still land: the lock is kept until the keychain has finished with it.
        self.keychain.settle(&config.profile, &deleted).await;
        drop(lock);
        *session = None;
        self.restore_failed.store(false, Ordering::Relaxed);
        self.update(|view| {
            view.clear_session();
            view.notice = match (&deleted, &revoked) {
                (Err(e), _) => Some(Notice::error(&Error::Keychain(e.clone()))),
                (Ok(()), Err(e @ Error::RevocationRefused(_))) => Some(Notice::info(
                    "revocation_refused",
                    format!("Signed out on this computer, but {e}, so the session stays valid there until it expires. To end it now, sign out on the provider's website."),
                )),
                (Ok(()), Err(e)) => {
                    tracing::warn!(kind = e.kind(), "the provider couldn't be told of the sign-out: {e}");
                    Some(Notice::info("revocation_failed", not_told(e, revocation_host.as_deref())))
                }
                (Ok(()), Ok(false)) if had_session => Some(Notice::info(
                    "not_revoked",
                    "Signed out on this computer. The provider offers no way to end the session, so it stays valid there until it expires.",
                )),
                (Ok(()), Ok(true)) => Some(Notice::info(
                    "signed_out",
                    "The session has ended, here and at the provider. Sign in to start a new one.",
                )),
                (Ok(()), Ok(false)) => Some(Notice::info("signed_out", "No session is kept here. Sign in to start one.")),
            };
        });
        tracing::info!(revoked = matches!(revoked, Ok(true)), "signed out");
        self.settle(&session);
        deleted.map_err(Error::Keychain)
    }

    /// Another program says a resource refused `token` (git's `erase`, gitcredentials(7)). Where the session
    /// still holds that very access token, it is marked spent in the keychain, under the renewal lock, so that no
    /// process hands it out again and the next request for a token renews the session, once. Returns whether it
    /// was this session's token. A token it doesn't hold changes nothing (it was renewed already, or it is
    /// another's).
    ///
    /// # Errors
    /// A keychain error (nothing changed), or the lock's.
    pub async fn refused(&self, token: &str) -> Result<bool> {
        use subtle::ConstantTimeEq;
        let config = self.config()?;
        let mut session = self.session.lock().await;
        let _renewal = self.renewal_lock(config).await?;
        let Some(mut stored) = self.keychain.load(&config.profile).await? else { return Ok(false) };
        let held =
            stored.access_token.as_ref().is_some_and(|t| bool::from(t.secret().as_bytes().ct_eq(token.as_bytes())));
        // A session that can't be renewed keeps its token: marked spent, it would end at the next request (one
        // refused request, say by a repository behind SSO, would sign the person out).
        if !held || !belongs_to(&stored, config) || !stored.renewable() {
            return Ok(false);
        }
        // Due now: what every reader takes for "renew before use".
        stored.expires_at = Some(0);
        let saved = self.keychain.save(&config.profile, &stored).await;
        self.keychain.settle(&config.profile, &saved).await;
        saved?;
        *session = Some(stored);
        Ok(true)
    }

    /// A sign-out that can't tell what is stored: nothing is revoked or deleted on a guess (another process's new
    /// session could be deleted unrevoked), the session is kept, and the keychain's error is said.
    fn refuse_sign_out(
        &self,
        e: KeychainError,
        lock: lock::RenewalLock,
        session: &Option<StoredSession>,
    ) -> Result<()> {
        tracing::warn!(kind = e.kind(), "couldn't read the keychain before signing out; nothing changed");
        drop(lock);
        let e = Error::Keychain(e);
        self.settle(session);
        self.update(|view| view.notice = Some(Notice::error(&e)));
        Err(e)
    }

    /// Removes the profile's keychain entry without telling any provider: for an entry this profile can't use,
    /// saved for another provider or client, or unreadable. (Its tokens are never sent to this profile's
    /// provider, RFC 9700 §4.9, and can't be sent to their own, which the profile no longer names.)
    ///
    /// Under the profile's renewal lock, the entry is read again and removed only if it is still one this profile
    /// can't use: another process may have signed in meanwhile, and its session is left alone (`Ok(false)`).
    ///
    /// # Errors
    /// A keychain failure.
    pub async fn forget_stored(&self) -> Result<bool> {
        let config = self.config()?;
        let session = self.session.lock().await;
        let lock = self.renewal_lock(config).await?;
        let unusable = match self.keychain.load(&config.profile).await {
            Ok(Some(stored)) => !belongs_to(&stored, config),
            // Gone already: nothing is left to remove, as asked.
            Ok(None) => {
                drop(lock);
                self.settle(&session);
                return Ok(true);
            }
            Err(KeychainError::Corrupt(_)) => true,
            Err(e) => return Err(e.into()),
        };
        if unusable {
            let deleted = self.keychain.delete(&config.profile).await;
            self.keychain.settle(&config.profile, &deleted).await;
            deleted?;
            self.other_session.store(false, Ordering::Relaxed);
            self.restore_failed.store(false, Ordering::Relaxed);
        }
        drop(lock);
        self.settle(&session);
        Ok(unusable)
    }

    async fn revoke(&self, config: &Config, stored: &StoredSession) -> Result<bool> {
        let dpop = stored.dpop_key()?;
        self.revoke_grant(config, stored.refresh_token.as_ref(), stored.access_token.as_ref(), dpop.as_ref()).await
    }

    /// Ends the grant these tokens belong to: revoking the refresh token ends the whole grant (RFC 7009 §2.1);
    /// without one, the access token is revoked. `Ok(false)` when there is nothing to revoke, or nowhere to.
    async fn revoke_grant(
        &self,
        config: &Config,
        refresh_token: Option<&RefreshToken>,
        access_token: Option<&AccessToken>,
        dpop: Option<&DpopKey>,
    ) -> Result<bool> {
        let token = match (refresh_token, access_token) {
            (Some(rt), _) => StandardRevocableToken::RefreshToken(rt.clone()),
            (None, Some(at)) => StandardRevocableToken::AccessToken(at.clone()),
            (None, None) => return Ok(false),
        };
        let endpoints = self.endpoints(config).await?;
        let with_secret = self.with_secret(config).await?;
        let config = &*with_secret;
        flow::revoke(config, &endpoints, &self.http, token, dpop).await
    }

    /// Refreshes the tokens in `session` and saves them before they are used. Returns why the keychain could
    /// not keep them, if it could not: the new tokens are used from memory anyway, since the old refresh
    /// token is now spent.
    ///
    /// # Errors
    /// [`Error::SignInNeeded`] without a refresh token; see [`flow::refresh`].
    async fn refresh_locked(
        &self,
        config: &Config,
        session: &mut SessionGuard<'_>,
        fresh_for: Duration,
    ) -> Result<Option<KeychainError>> {
        session.as_ref().ok_or(Error::NotSignedIn)?;
        // One renewal at a time across processes (RFC 9700 §4.14.2: a replayed refresh token can end the whole
        // grant). Held until the rotated tokens are saved.
        let _renewal = self.renewal_lock(config).await?;
        // Another process may have renewed while this one waited: use its tokens rather than spend the refresh
        // token again.
        if let Some(renewed) = self.renewed_elsewhere(config, session, fresh_for).await? {
            tracing::info!("using the tokens another Gatehouse process renewed");
            self.update(|view| view.show_session(&renewed, &config.scopes));
            **session = Some(renewed);
            return Ok(None);
        }
        let current = session.as_ref().ok_or(Error::NotSignedIn)?;
        let refresh_token = current.refresh_token.clone().ok_or(Error::SignInNeeded)?;
        let endpoints = self.endpoints(config).await?;
        let with_secret = self.with_secret(config).await?;
        let config = &*with_secret;
        let client = flow::client(config, &endpoints, &config.redirect_uri)?;
        let dpop = current.dpop_key()?;
        let provider = flow::Provider { config, endpoints: &endpoints, http: &self.http };
        let tokens = flow::refresh(&client, provider, &refresh_token, dpop.as_ref()).await?;
        let mut next = current.clone();
        // An entry saved before endpoints were recorded records them now, with the ones this renewal used.
        if next.binding.as_ref().is_some_and(|binding| !binding.recorded) {
            let recorded = Binding::recorded(config, &endpoints);
            if next.binding.as_ref().is_some_and(|binding| binding.same_as(&recorded)) {
                next.binding = Some(recorded);
            }
        }
        next.access_token = Some(tokens.access_token().clone());
        next.expires_at = expiry_from(unix_now(), tokens.expires_in());
        next.lifetime = tokens.expires_in().map(|d| d.as_secs());
        // RFC 9449 §5: the access token goes with the scheme its `token_type` names.
        // The key stays with the refresh token it proved (a refresh answer may not rotate it).
        next.bearer_access = dpop.is_some() && !tokens.is_dpop_bound(true);
        // RFC 6749 §6: a new refresh token replaces the old; none means the old one stays valid.
        if let Some(rotated) = tokens.refresh_token() {
            next.refresh_token = Some(rotated.clone());
        }
        if let Some(scopes) = tokens.scopes() {
            next.scopes = scopes.iter().map(|s| s.to_string()).collect();
        }
        // RFC 9700 §4.14.2: the old refresh token is now dead at the provider, so the new one must be saved
        // before anything else. If the keychain fails, keep the new tokens in memory so this run still works.
        let mut saved = self.keychain.save(&config.profile, &next).await;
        // A write that may still land: until it has, another process could read the old entry and replay the
        // refresh token just spent (RFC 9700 §4.14.2), so the lock is kept until the keychain has finished.
        self.keychain.settle(&config.profile, &saved).await;
        if saved.as_ref().is_err_and(KeychainError::nothing_written) {
            // The rotated refresh token exists only here now: ask once more, still under the lock.
            tracing::warn!("the keychain didn't save the renewed session; trying once more");
            saved = self.keychain.save(&config.profile, &next).await;
            self.keychain.settle(&config.profile, &saved).await;
        }
        self.update(|view| view.show_session(&next, &config.scopes));
        **session = Some(next);
        tracing::info!(saved = saved.is_ok(), "access token refreshed");
        Ok(saved.err())
    }

    /// `config` with its client secret, read from the keychain where the profile keeps it there
    /// ([`Config::client_secret_in_keychain`]): for the requests that send it (token, PAR, revocation).
    ///
    /// # Errors
    /// The keychain's error; [`Error::Setup`] when the secret is missing from it (nothing is sent without it).
    async fn with_secret<'c>(&self, config: &'c Config) -> Result<std::borrow::Cow<'c, Config>> {
        if config.client_secret.is_some() || !config.client_secret_in_keychain {
            return Ok(std::borrow::Cow::Borrowed(config));
        }
        let secrets = Keychain::new(client_secrets_service(self.keychain.service()));
        match secrets.load_text(&config.profile).await? {
            Some(secret) => {
                let mut resolved = config.clone();
                resolved.client_secret = Some(oauth2::ClientSecret::new(secret));
                Ok(std::borrow::Cow::Owned(resolved))
            }
            None => Err(Error::Setup(
                "the client secret the provider issued when Gatehouse registered itself is missing from the \
                 keychain; set the provider up again"
                    .into(),
            )),
        }
    }

    /// Takes the profile's renewal lock, shared with every other Gatehouse process of this user.
    async fn renewal_lock(&self, config: &Config) -> Result<lock::RenewalLock> {
        // Long enough for another process's whole renewal: a token request, discovery, and a keychain save.
        let patience = config.http_timeout * 2 + KEYCHAIN_TIMEOUT * 2;
        renewal_lock(self.keychain.service(), &config.profile, patience).await
    }

    /// The session another process stored since this one last read or wrote the keychain, if it did and it is
    /// still fresh. Read under the renewal lock, so no renewal is under way elsewhere. A newer session that is
    /// already due is renewed here, with its own (newer) refresh token. A keychain as this process left it
    /// means nobody else renewed, even when this process holds newer tokens it couldn't save.
    ///
    /// # Errors
    /// [`Error::SignedOutElsewhere`] when the entry was deleted since this process last looked (signed out
    /// elsewhere: never renewed back into being), or now holds another account's or provider's session (never
    /// adopted silently).
    async fn renewed_elsewhere(
        &self,
        config: &Config,
        session: &mut SessionGuard<'_>,
        fresh_for: Duration,
    ) -> Result<Option<StoredSession>> {
        let Some(current) = session.as_ref() else { return Ok(None) };
        let stored = match self.keychain.load_if_changed(&config.profile).await {
            Ok(Some(Some(stored))) => stored,
            Ok(Some(None)) => return Err(Error::SignedOutElsewhere),
            // As this process left it: nobody else renewed.
            Ok(None) => return Ok(None),
            // An answer that can't be read is not "unchanged": another process may have rotated the refresh token
            // this one holds (spending it again would end the grant, RFC 9700 §4.14.2), or signed out. Refuse:
            // no renewal, no save, the session kept as it is, and the keychain's error said.
            Err(e) => {
                tracing::warn!(kind = e.kind(), "couldn't re-read the keychain before renewing; not renewing");
                return Err(e.into());
            }
        };
        let same_binding = match (&stored.binding, &current.binding) {
            (Some(stored), Some(current)) => stored.same_as(current),
            (stored, current) => stored == current,
        };
        if !same_binding || !same_account(&stored, current) {
            return Err(Error::SignedOutElsewhere);
        }
        let now = unix_now();
        // Due as well: renew it, with its refresh token, which is the live one. Unless it is still valid and no
        // renewal could do better (the provider's tokens don't live `fresh_for`): then another process's
        // renewal is as good as this one's would be, and no grant is spent on it.
        let still_valid = !stored.due_within(now, Duration::ZERO);
        if stored.due_within(now, fresh_for) && !(still_valid && stored.outlives_tokens(fresh_for)) {
            **session = Some(stored);
            return Ok(None);
        }
        Ok(Some(stored))
    }

    /// Shows the resource for `session`, then the notice its outcome calls for. Returns whether it succeeded.
    async fn load_resource(&self, config: &Config, session: &mut SessionGuard<'_>) -> bool {
        self.finish_resource(config, session, None).await.is_ok()
    }

    /// Shows the resource after a refresh whose keychain save failed with `unsaved` (if it did), and the
    /// notice for the outcome: a failure goes through [`Self::fail`]; an unsaved session is said.
    async fn finish_resource(
        &self,
        config: &Config,
        session: &mut SessionGuard<'_>,
        unsaved: Option<KeychainError>,
    ) -> Result<()> {
        match self.show_resource(config, session).await {
            Ok(later) => {
                let notice = unsaved.or(later).map(|k| Notice::error(&Error::NotSaved(k)));
                self.update(|view| view.notice = notice);
                Ok(())
            }
            Err(e) => {
                self.fail(config, session, e.clone()).await;
                Err(e)
            }
        }
    }

    /// Fetches the resource, refreshing first when the token is due, and once more on a 401 (RFC 6750 §3.1).
    /// Returns why a refresh on the way could not be saved, if it could not.
    async fn show_resource(&self, config: &Config, session: &mut SessionGuard<'_>) -> Result<Option<KeychainError>> {
        let mut unsaved = None;
        if session.as_ref().is_some_and(|s| s.needs_refresh(unix_now())) {
            unsaved = self.refresh_locked(config, session, EXPIRY_SKEW).await?;
        }
        let mut refreshed = false;
        loop {
            let current = session.as_ref().ok_or(Error::NotSignedIn)?;
            let token = current.access_token.clone().ok_or(Error::NotSignedIn)?;
            let dpop = current.access_key()?;
            match api::get_json(&self.http, &config.resource_url, &token, dpop.as_ref()).await? {
                Fetched::Json(data) => {
                    self.update(|view| view.resource = Some(data));
                    return Ok(unsaved);
                }
                Fetched::Unauthorized if !refreshed => {
                    tracing::info!("resource answered 401; refreshing once");
                    unsaved = self.refresh_locked(config, session, EXPIRY_SKEW).await?;
                    refreshed = true;
                }
                Fetched::Unauthorized => {
                    return Err(Error::BadResponse("the resource refused a freshly refreshed token (HTTP 401)".into()))
                }
            }
        }
    }

    /// Who signed in: from the ID token when there is one, else from userinfo, else unknown.
    async fn account_from(
        &self,
        config: &Config,
        endpoints: &ProviderEndpoints,
        tokens: &TokenResponse,
        nonce: Option<&str>,
        dpop: Option<&DpopKey>,
    ) -> Result<Account> {
        if let Some(id_token) = tokens.id_token() {
            let expected = id_token::Expected {
                issuer: endpoints.issuer_id.as_deref(),
                issuer_template: endpoints.issuer_template.as_deref(),
                issuer_aliases: &config.issuer_aliases,
                client_id: config.client_id.as_str(),
                nonce,
                now: unix_now(),
            };
            let keys = self.signing_keys(endpoints, id_token).await?;
            return id_token::verify(id_token, keys.as_deref(), &expected);
        }
        if nonce.is_some() {
            // OIDC Core §3.1.3.3: an openid request must be answered with an ID token.
            return Err(Error::BadResponse("it sent no ID token for an OpenID Connect sign-in".into()));
        }
        let Some(userinfo) = &endpoints.userinfo else { return Ok(Account::default()) };
        match api::get_json(&self.http, userinfo, tokens.access_token(), dpop).await {
            Ok(Fetched::Json(claims)) => Ok(Account {
                subject: claims["sub"].as_str().map(str::to_owned),
                name: ["name", "preferred_username", "email"]
                    .iter()
                    .find_map(|k| claims[*k].as_str().map(str::to_owned)),
                // OIDC Core §5.1's `preferred_username`; GitHub's user API calls it `login`.
                login: ["preferred_username", "login"].iter().find_map(|k| claims[*k].as_str().map(str::to_owned)),
            }),
            // The account name is a nicety; the sign-in itself succeeded.
            _ => Ok(Account::default()),
        }
    }

    /// The keys that sign the provider's ID tokens: fetched on first use, and once more when `id_token` names a
    /// key the cached set lacks (OIDC Core §10.1.1: providers rotate keys). `None` when the provider publishes
    /// none, where TLS to the token endpoint stands in (OIDC Core §3.1.3.7 step 6).
    async fn signing_keys(&self, endpoints: &ProviderEndpoints, id_token: &str) -> Result<Option<Arc<JwkSet>>> {
        let Some(url) = &endpoints.jwks else {
            tracing::debug!("the provider publishes no signing keys; relying on TLS for the ID token");
            return Ok(None);
        };
        let mut cached = self.signing_keys.lock().await;
        if let Some(keys) = cached.as_ref().filter(|keys| id_token::knows_key(keys, id_token)) {
            return Ok(Some(Arc::clone(keys)));
        }
        let keys = Arc::new(crate::auth::discovery::signing_keys(&self.http, url).await?);
        *cached = Some(Arc::clone(&keys));
        Ok(Some(keys))
    }

    /// The provider's endpoints, discovered once.
    async fn endpoints(&self, config: &Config) -> Result<Arc<ProviderEndpoints>> {
        let mut cached = self.endpoints.lock().await;
        if let Some(endpoints) = cached.as_ref() {
            return Ok(Arc::clone(endpoints));
        }
        let endpoints = Arc::new(match &config.endpoints {
            Endpoints::Explicit(endpoints) => (**endpoints).clone(),
            Endpoints::Discover { issuer } => {
                crate::auth::discovery::discover(&self.http, issuer, config.tenant_issuer).await?
            }
        });
        *cached = Some(Arc::clone(&endpoints));
        Ok(endpoints)
    }

    /// Records a failure during a session operation. The provider ending the session signs out, and so does
    /// another process having signed out; anything else keeps the session.
    async fn fail(&self, config: &Config, session: &mut SessionGuard<'_>, e: Error) {
        match e {
            Error::SessionEnded | Error::SignInNeeded => {
                tracing::info!(kind = e.kind(), "the session can't go on; removing it");
                self.end_session(config, session, matches!(e, Error::SignInNeeded)).await;
            }
            Error::SignedOutElsewhere => {
                // The entry is gone or replaced: forget this process's copy, and leave the entry alone.
                tracing::info!("signed out by another Gatehouse process");
                **session = None;
                self.update(|view| view.clear_session());
            }
            _ => tracing::warn!(kind = e.kind(), "session operation failed; session kept: {e}"),
        }
        self.update(|view| view.notice = Some(Notice::error(&e)));
    }

    /// Ends the session in `session`, which can't go on, revoking what can still be revoked first when `revoke`
    /// (RFC 7009 §2.1). Under the profile's lock, the entry is deleted only if it still holds these tokens: a
    /// session another process renewed or signed in meanwhile is left for it.
    async fn end_session(&self, config: &Config, session: &mut SessionGuard<'_>, revoke: bool) {
        let Some(ended) = session.take() else { return };
        self.update(|view| view.clear_session());
        if revoke {
            if let Err(revoke_error) = self.revoke(config, &ended).await {
                tracing::warn!(kind = revoke_error.kind(), "couldn't revoke the ended session's access token");
            }
        }
        let lock = match self.renewal_lock(config).await {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(kind = e.kind(), "couldn't take the renewal lock; leaving the entry");
                return;
            }
        };
        match self.keychain.load(&config.profile).await {
            Ok(Some(stored)) if same_tokens(&stored, &ended) => {
                let deleted = self.keychain.delete(&config.profile).await;
                if let Err(k) = &deleted {
                    tracing::warn!(kind = k.kind(), "couldn't remove the ended session from the keychain");
                }
                self.keychain.settle(&config.profile, &deleted).await;
            }
            Ok(Some(_)) => tracing::info!("another Gatehouse process has a newer session; leaving it"),
            Ok(None) => {}
            Err(k) => tracing::warn!(kind = k.kind(), "couldn't read the keychain; leaving the entry"),
        }
        drop(lock);
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
        self.shell.publish(&snapshot);
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

/// A sign-out's notice when the provider couldn't be told to end the session: where it couldn't be reached (or
/// what it said), and what stays true.
fn not_told(error: &Error, host: Option<&str>) -> String {
    let why = match (error, host) {
        (Error::Network(_), Some(host)) => format!("Gatehouse couldn't reach {host} to end the session there"),
        (Error::Network(_), None) => "Gatehouse couldn't reach the provider to end the session there".to_owned(),
        // What it answered instead is in the log; here it matters only that it didn't say yes.
        (_, Some(host)) => format!("{host} didn't confirm that it ended the session"),
        (_, None) => "The provider didn't confirm that it ended the session".to_owned(),
    };
    format!(
        "Signed out here. {why}, so it stays valid there until it expires, or until you sign out on the provider's \
         website."
    )
}

/// The notice for a stored session bound to something else than the profile: it names what differs.
fn other_provider(stored: &Binding, configured: &Binding) -> Error {
    let describe = |b: &Binding| {
        let text = if stored.provider.trim_end_matches('/') != configured.provider.trim_end_matches('/') {
            b.provider.clone()
        } else if stored.client_id != configured.client_id {
            format!("client {} at {}", b.client_id, b.provider)
        } else if stored.resource_origin != configured.resource_origin {
            format!("the resource at {}", b.resource_origin)
        } else {
            format!("the token endpoint {}", b.token_endpoint.as_deref().unwrap_or(&b.provider))
        };
        crate::error::clean_for_display(&text, 120)
    };
    Error::OtherProvider { stored: describe(stored), configured: describe(configured) }
}

/// Takes `profile`'s renewal lock among `service`'s, shared with every other Gatehouse process of this user,
/// waiting at most `patience`.
///
/// # Errors
/// [`Error::RenewalBusy`] after `patience`; [`Error::Internal`] when the lock can't be made.
pub(crate) async fn renewal_lock(service: &str, profile: &str, patience: Duration) -> Result<lock::RenewalLock> {
    let dir = lock::lock_dir(service)
        .ok_or_else(|| Error::Internal("no runtime or cache directory for the renewal lock".into()))?;
    lock::acquire(&dir, profile, patience).await.map_err(|e| match e {
        lock::LockError::Busy => Error::RenewalBusy,
        lock::LockError::Unavailable(why) => Error::Internal(why),
    })
}

/// The keychain service that keeps the client secrets providers issued when Gatehouse registered itself (RFC
/// 7591), one entry per profile, beside the sessions' service.
pub fn client_secrets_service(service: &str) -> String {
    format!("{service}.client-secret")
}

/// Whether `stored` is a session of `config`'s provider, client and resource (or a version 1 entry, which the
/// profile adopts).
fn belongs_to(stored: &StoredSession, config: &Config) -> bool {
    stored.binding.as_ref().is_none_or(|binding| binding.same_as(&Binding::of(config)))
}

/// Whether `stored` is the account `held` is, as far as can be shown: the same subject where both name one, else
/// the same grant (one sign-in, renewed by any process). Two sessions that name neither are not taken for the
/// same account: that would be a guess.
fn same_account(stored: &StoredSession, held: &StoredSession) -> bool {
    match (&stored.account.subject, &held.account.subject) {
        (Some(stored), Some(held)) => stored == held,
        (None, None) => stored.grant.is_some() && stored.grant == held.grant,
        _ => false,
    }
}

/// Whether two sessions hold the same tokens: the same session, as one process wrote it.
fn same_tokens(a: &StoredSession, b: &StoredSession) -> bool {
    let secret = |token: Option<&oauth2::AccessToken>| token.map(|t| t.secret().clone());
    a.refresh_token.as_ref().map(|t| t.secret()) == b.refresh_token.as_ref().map(|t| t.secret())
        && secret(a.access_token.as_ref()) == secret(b.access_token.as_ref())
}

/// Why `session` can't give a token that lasts `min_ttl`: the provider's tokens don't live that long.
fn too_short(session: &StoredSession, min_ttl: Duration) -> Error {
    let lifetime =
        session.lifetime.or_else(|| session.expires_at.map(|at| at.saturating_sub(unix_now()))).unwrap_or_default();
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
fn device_code_view(details: &flow::DeviceAuthorization) -> crate::state::DeviceCode {
    let complete = details.verification_uri_complete().map(|c| c.secret().to_owned());
    let link = complete.clone().unwrap_or_else(|| details.verification_uri().to_string());
    crate::state::DeviceCode {
        user_code: details.user_code().secret().to_owned(),
        verification_uri: details.verification_uri().to_string(),
        verification_uri_complete: complete,
        qr: qr_svg(&link),
        expires_at: unix_now() + details.expires_in().as_secs(),
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
mod tests {
    use super::*;
    use crate::tokens::Account;

    fn session(subject: Option<&str>, grant: Option<&str>) -> StoredSession {
        StoredSession {
            v: crate::tokens::FORMAT_VERSION,
            binding: None,
            access_token: None,
            refresh_token: None,
            expires_at: None,
            scopes: Vec::new(),
            account: Account { subject: subject.map(str::to_owned), name: None, login: None },
            dpop_key: None,
            bearer_access: false,
            lifetime: None,
            grant: grant.map(str::to_owned),
        }
    }

    /// Whose session another process stored is never guessed (review L12): the subject decides where both have
    /// one; with none, only the same grant (one sign-in, renewed by any process) is the same account, and two
    /// sessions that name nobody are not.
    #[test]
    fn two_sessions_that_name_nobody_are_not_the_same_account() {
        let same = |a: &StoredSession, b: &StoredSession| same_account(a, b);
        assert!(same(&session(Some("alice"), None), &session(Some("alice"), Some("g1"))));
        assert!(!same(&session(Some("alice"), Some("g1")), &session(Some("bob"), Some("g1"))));
        assert!(same(&session(None, Some("g1")), &session(None, Some("g1"))), "a renewal elsewhere");
        assert!(!same(&session(None, Some("g2")), &session(None, Some("g1"))), "another sign-in");
        assert!(!same(&session(None, None), &session(None, None)), "None == None is no answer");
        assert!(!same(&session(None, None), &session(None, Some("g1"))));
        assert!(!same(&session(Some("alice"), Some("g1")), &session(None, Some("g1"))));
    }

    /// A sign-out the provider couldn't be told of says where, and what stays true, in one plain sentence.
    #[test]
    fn a_sign_out_the_provider_did_not_hear_says_where_and_what_stays_true() {
        let down = not_told(&Error::Network("refused".into()), Some("127.0.0.1:8000"));
        assert_eq!(
            down,
            "Signed out here. Gatehouse couldn't reach 127.0.0.1:8000 to end the session there, so it stays valid \
             there until it expires, or until you sign out on the provider's website."
        );
        let garbled = not_told(&Error::BadResponse("not JSON".into()), None);
        assert!(garbled.starts_with("Signed out here. The provider didn't confirm that it ended the session, so"));
        for text in [down, garbled] {
            for word in ["config", "(", "Try again", ".)"] {
                assert!(!text.contains(word), "{word:?} in {text:?}");
            }
        }
    }
}
