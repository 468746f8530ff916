//! Signing in: in the browser (a private-use scheme or loopback redirect, a pasted address), with a code on
//! another device (RFC 8628), and keeping the grant that comes back.

use super::decide::{NewGrant, Written};
use super::*;

impl ProfileService {
    /// Starts a sign-in: opens the system browser at the authorization endpoint and waits for the callback.
    /// A second call replaces the attempt in progress.
    ///
    /// # Errors
    /// The error is also shown as the notice.
    pub async fn sign_in(self: &Arc<Self>) -> Result<()> {
        self.sign_in_with(false).await
    }

    /// Starts a sign-in like [`ProfileService::sign_in`]; with `another_account`, the provider is asked to let the
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

    pub(super) async fn begin_sign_in(self: &Arc<Self>, another_account: bool) -> Result<()> {
        let config = self.config()?;
        if self.session_back().await? {
            return Ok(());
        }
        let endpoints = self.endpoints(config).await?;
        // The browser goes only where something answers: a provider that is down is said here, not as a dead
        // page in the browser.
        self.http.reachable(&endpoints.authorization).await?;
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
        let listener = listener.map(|bound| self.serve_loopback(bound, &redirect_uri));
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
            view.sign_in_expires_at = Some(self.now() + config.sign_in_timeout.as_secs());
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

        self.give_up_after(id, config.sign_in_timeout);
        Ok(())
    }

    /// Whether a session is back that a sign-in would only replace: when the keychain was locked or away at
    /// launch, the session may be there now, and is used rather than signed in again over.
    ///
    /// # Errors
    /// [`Error::AlreadySignedIn`] when this process holds a session already.
    async fn session_back(&self) -> Result<bool> {
        if self.restore_failed.load(Ordering::Relaxed) {
            self.restore().await;
            if self.session.lock().await.is_some() {
                // A sign-in still waiting for the browser would only replace it.
                self.pending.cancel(None)?;
                self.settle(&*self.session.lock().await);
                return Ok(true);
            }
        }
        if self.session.lock().await.is_some() {
            return Err(Error::AlreadySignedIn);
        }
        Ok(false)
    }

    /// Serves the loopback redirect on `bound` (RFC 8252 §7.3): its one good request completes the sign-in.
    fn serve_loopback(self: &Arc<Self>, bound: loopback::Bound, redirect_uri: &Url) -> loopback::Guard {
        let this = Arc::clone(self);
        let expected = redirect_uri.clone();
        let on_callback: loopback::OnCallback = Arc::new(move |link: String| {
            let (this, expected) = (Arc::clone(&this), expected.clone());
            Box::pin(async move { this.handle_loopback_callback(&link, &expected).await })
        });
        bound.serve(on_callback)
    }

    /// Gives the attempt `id` up once `ttl` has passed, so the window does not wait forever.
    fn give_up_after(self: &Arc<Self>, id: u64, ttl: Duration) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if this.pending.cancel(Some(id)).unwrap_or(false) {
                tracing::info!(attempt = id, "sign-in timed out");
                this.report(&Error::SignInTimedOut);
            }
        });
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

    pub(super) async fn handle_callback_for(&self, link: &str, expected: &Url) -> Result<()> {
        let result = self.complete_sign_in(link, expected).await;
        if let Err(e) = &result {
            // Never log the link itself: it may carry a valid code.
            tracing::warn!(kind = e.kind(), "sign-in callback not accepted: {e}");
            self.report(e);
        }
        result
    }

    pub(super) async fn complete_sign_in(&self, link: &str, expected: &Url) -> Result<()> {
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
    pub(super) async fn keep_new_grant(
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
        let stored = new_session(config, endpoints, tokens, account, dpop, bearer_access, self.now());
        // The entry is the truth: under the profile's lock, look at it again before writing. Another process
        // (the window, or `gatehouse sign-in`) may have signed in meanwhile; its session is kept, and this new
        // grant undone, so that neither grant is left alive with nobody holding it, and no process ever takes on
        // another account without saying so.
        let lock = match self.renewal_lock(config).await {
            Ok(lock) => lock,
            Err(e) => {
                self.revoke_unkept(config, &stored).await;
                return Err(e);
            }
        };
        match decide::new_grant(self.keychain.load(&config.profile).await, config) {
            NewGrant::Keep => {}
            NewGrant::Undo(e) => {
                tracing::warn!(kind = e.kind(), "couldn't re-read the keychain before keeping the new session");
                self.revoke_unkept(config, &stored).await;
                return Err(e);
            }
            NewGrant::Yield(existing) => {
                tracing::info!("another Gatehouse process signed in meanwhile; keeping its session");
                self.revoke_unkept(config, &stored).await;
                drop(lock);
                return self.yield_to(config, *existing, session).await;
            }
        }
        let saved = self.keychain.save(&config.profile, &stored).await;
        // Held until a write of unknown outcome has landed or failed, so that no other process reads the entry
        // before.
        self.keychain.settle(&config.profile, &saved).await;
        let unconfirmed = match decide::written(saved) {
            Written::Saved => false,
            Written::Unconfirmed => {
                tracing::warn!("the keychain didn't confirm the new session");
                true
            }
            // Whatever the keychain held before (another provider's session) is left as it was.
            Written::NotSaved(e) => {
                self.revoke_unkept(config, &stored).await;
                return Err(e);
            }
        };
        drop(lock);
        tracing::info!(unconfirmed, "signed in; session stored in the keychain");
        self.hold_new(config, stored, unconfirmed, session).await;
        Ok(())
    }

    /// Holds `stored`, the session just kept (`unconfirmed` when the keychain didn't confirm the write), shows it
    /// with its resource, and says what the person should know about where it is kept.
    async fn hold_new(
        &self,
        config: &Config,
        stored: StoredSession,
        unconfirmed: bool,
        session: &mut SessionGuard<'_>,
    ) {
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
    }

    /// Ends a grant that won't be kept (`stored`, not saved) at the provider, so that it isn't left alive with
    /// nobody holding it.
    async fn revoke_unkept(&self, config: &Config, stored: &StoredSession) {
        if let Err(revoke_error) = self.revoke(config, stored).await {
            tracing::warn!(kind = revoke_error.kind(), "couldn't revoke the unkept grant");
        }
    }

    /// Takes on `existing`, the session another Gatehouse process signed in to meanwhile, and says so.
    async fn yield_to(&self, config: &Config, existing: StoredSession, session: &mut SessionGuard<'_>) -> Result<()> {
        let existing = decide::adopt(config, existing)?;
        let account = existing.account.name.clone().or(existing.account.subject.clone());
        let e = Error::SignedInElsewhere {
            account: crate::error::clean_for_display(account.as_deref().unwrap_or("another account"), 80),
        };
        self.update(|view| view.show_session(&existing, &config.scopes));
        **session = Some(existing);
        self.load_resource(config, session).await;
        self.update(|view| view.notice = Some(Notice::error(&e)));
        Err(e)
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
    /// As [`ProfileService::sign_in_with_device`]; the error is also shown as the notice.
    pub async fn sign_in_with_code(&self) -> Result<()> {
        let result = self
            .sign_in_with_device(|details| {
                // The browser attempt gives way only once there is a code to show instead.
                let _ = self.pending.cancel(None);
                let code = device_code_view(details, self.now());
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
    pub(super) fn stop_device_sign_in(&self) -> bool {
        let polling = self.device_polling.load(Ordering::SeqCst);
        if polling {
            self.device_cancel.notify_waiters();
        }
        polling
    }
}

/// The session a grant just issued makes: `tokens` from `config`'s provider at `endpoints`, signed in as
/// `account`, proven with `dpop` where the provider bound them to it.
fn new_session(
    config: &Config,
    endpoints: &ProviderEndpoints,
    tokens: &TokenResponse,
    account: Account,
    dpop: Option<&DpopKey>,
    bearer_access: bool,
    now: u64,
) -> StoredSession {
    StoredSession {
        v: FORMAT_VERSION,
        binding: Some(Binding::recorded(config, endpoints)),
        access_token: Some(tokens.access_token().clone()),
        refresh_token: tokens.refresh_token().cloned(),
        expires_at: expiry_from(now, tokens.expires_in()),
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
        narrowed: Vec::new(),
    }
}
