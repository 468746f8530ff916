//! A session once signed in: renewed (one process at a time), shown, signed out, revoked, and ended when it
//! can't go on.

use super::decide::{AfterFailure, Elsewhere, EndedEntry, SignOutEntry};
use super::*;

impl ProfileService {
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
        let (theirs, other_provider) = match decide::sign_out_entry(self.keychain.load(&config.profile).await, config) {
            SignOutEntry::Grants(theirs) => (theirs, false),
            SignOutEntry::OtherProvider => (Vec::new(), true),
            SignOutEntry::Several => match self.keychain.load_each(&config.profile).await {
                Ok(each) => (each.into_iter().filter(|stored| belongs_to(stored, config)).collect(), false),
                Err(e) => return self.refuse_sign_out(e, lock, &session),
            },
            SignOutEntry::Refuse(e) => return self.refuse_sign_out(e, lock, &session),
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
        if let Err(e) = &revoked {
            tracing::warn!(kind = e.kind(), "the provider wasn't told of the sign-out: {e}");
        }
        let notice = decide::signed_out(&deleted, &revoked, had_session, revocation_host.as_deref());
        self.update(|view| {
            view.clear_session();
            view.notice = Some(notice);
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
        self.refused_by_hash(&crate::tokens::token_hash(token)).await
    }

    /// [`ProfileService::refused`], for the token whose [`crate::tokens::token_hash`] is `hash`: what a program
    /// tells the agent of another process, so that the token itself is never sent back.
    ///
    /// # Errors
    /// As [`ProfileService::refused`].
    pub async fn refused_by_hash(&self, hash: &str) -> Result<bool> {
        use subtle::ConstantTimeEq;
        let config = self.config()?;
        let mut session = self.session.lock().await;
        let _renewal = self.renewal_lock(config).await?;
        let Some(mut stored) = self.keychain.load(&config.profile).await? else { return Ok(false) };
        let held = stored
            .access_token
            .as_ref()
            .is_some_and(|t| bool::from(crate::tokens::token_hash(t.secret()).as_bytes().ct_eq(hash.as_bytes())));
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
    pub(super) fn refuse_sign_out(
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

    /// Revokes `stored`'s narrowed tokens, then its grant (RFC 7009 §2.1). A narrowed token that can't be revoked
    /// is left to expire: the grant's revocation decides the outcome.
    pub(super) async fn revoke(&self, config: &Config, stored: &StoredSession) -> Result<bool> {
        let dpop = stored.dpop_key()?;
        for narrowed in &stored.narrowed {
            let revoked = self.revoke_grant(config, None, Some(&narrowed.access_token), dpop.as_ref()).await;
            if let Err(e) = revoked {
                tracing::warn!(kind = e.kind(), "couldn't revoke a narrowed token");
            }
        }
        self.revoke_grant(config, stored.refresh_token.as_ref(), stored.access_token.as_ref(), dpop.as_ref()).await
    }

    /// Ends the grant these tokens belong to: revoking the refresh token ends the whole grant (RFC 7009 §2.1);
    /// without one, the access token is revoked. `Ok(false)` when there is nothing to revoke, or nowhere to.
    pub(super) async fn revoke_grant(
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
    pub(super) async fn refresh_locked(
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
        let held = session.as_ref().ok_or(Error::NotSignedIn)?;
        let read = self.keychain.load_if_changed(&config.profile).await;
        match decide::elsewhere(read, held, self.now(), fresh_for) {
            Ok(Elsewhere::Nobody) => {}
            Ok(Elsewhere::Renewed(renewed)) => {
                tracing::info!("using the tokens another Gatehouse process renewed");
                self.update(|view| view.show_session(&renewed, &config.scopes));
                **session = Some(renewed);
                return Ok(None);
            }
            // Its refresh token is the live one now.
            Ok(Elsewhere::RenewTheirs(renewed)) => **session = Some(renewed),
            Err(e) => {
                if let Error::Keychain(k) = &e {
                    tracing::warn!(kind = k.kind(), "couldn't re-read the keychain before renewing; not renewing");
                }
                return Err(e);
            }
        }
        let current = session.as_ref().ok_or(Error::NotSignedIn)?;
        let refresh_token = current.refresh_token.clone().ok_or(Error::SignInNeeded)?;
        let endpoints = self.endpoints(config).await?;
        let with_secret = self.with_secret(config).await?;
        let config = &*with_secret;
        let client = flow::client(config, &endpoints, &config.redirect_uri)?;
        let dpop = current.dpop_key()?;
        let provider = flow::Provider { config, endpoints: &endpoints, http: &self.http };
        let tokens = flow::refresh(&client, provider, &refresh_token, dpop.as_ref(), &Narrowing::default()).await?;
        self.grants.fetch_add(1, Ordering::SeqCst);
        let mut next = current.clone();
        // An entry saved before endpoints were recorded records them now, with the ones this renewal used.
        if next.binding.as_ref().is_some_and(|binding| !binding.recorded) {
            let recorded = Binding::recorded(config, &endpoints);
            if next.binding.as_ref().is_some_and(|binding| binding.same_as(&recorded)) {
                next.binding = Some(recorded);
            }
        }
        next.access_token = Some(tokens.access_token().clone());
        next.expires_at = expiry_from(self.now(), tokens.expires_in());
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
        let unsaved = self.keep_renewed(config, session, next).await;
        tracing::info!(saved = unsaved.is_none(), "access token refreshed");
        Ok(unsaved)
    }

    /// Saves `next`, a session the provider just renewed, and makes it the one in use. Called under the renewal
    /// lock. Returns why the keychain could not keep it, if it could not: it is used from memory anyway, since the
    /// refresh token it replaces may be spent.
    pub(super) async fn keep_renewed(
        &self,
        config: &Config,
        session: &mut SessionGuard<'_>,
        next: StoredSession,
    ) -> Option<KeychainError> {
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
        saved.err()
    }

    /// `config` with its client secret, read from the keychain where the profile keeps it there
    /// ([`Config::client_secret_in_keychain`]): for the requests that send it (token, PAR, revocation).
    ///
    /// # Errors
    /// The keychain's error; [`Error::Setup`] when the secret is missing from it (nothing is sent without it).
    pub(super) async fn with_secret<'c>(&self, config: &'c Config) -> Result<std::borrow::Cow<'c, Config>> {
        if config.client_secret.is_some() || !config.client_secret_in_keychain {
            return Ok(std::borrow::Cow::Borrowed(config));
        }
        let secrets = self.keychain.for_service(client_secrets_service(self.keychain.service()));
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
    pub(super) async fn renewal_lock(&self, config: &Config) -> Result<lock::RenewalLock> {
        // Long enough for another process's whole renewal: a token request, discovery, and a keychain save.
        let patience = config.http_timeout * 2 + KEYCHAIN_TIMEOUT * 2;
        renewal_lock(self.locks.as_ref(), &config.profile, patience).await
    }

    /// Shows the resource for `session`, then the notice its outcome calls for. Returns whether it succeeded.
    pub(super) async fn load_resource(&self, config: &Config, session: &mut SessionGuard<'_>) -> bool {
        self.finish_resource(config, session, None).await.is_ok()
    }

    /// Shows the resource after a refresh whose keychain save failed with `unsaved` (if it did), and the
    /// notice for the outcome: a failure goes through [`Self::fail`]; an unsaved session is said.
    pub(super) async fn finish_resource(
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
    pub(super) async fn show_resource(
        &self,
        config: &Config,
        session: &mut SessionGuard<'_>,
    ) -> Result<Option<KeychainError>> {
        let mut unsaved = None;
        if session.as_ref().is_some_and(|s| s.needs_refresh(self.now())) {
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
    pub(super) async fn account_from(
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
                now: self.now(),
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
    pub(super) async fn signing_keys(
        &self,
        endpoints: &ProviderEndpoints,
        id_token: &str,
    ) -> Result<Option<Arc<JwkSet>>> {
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
    pub(super) async fn endpoints(&self, config: &Config) -> Result<Arc<ProviderEndpoints>> {
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
    pub(super) async fn fail(&self, config: &Config, session: &mut SessionGuard<'_>, e: Error) {
        match decide::after_failure(&e) {
            AfterFailure::End { revoke } => {
                tracing::info!(kind = e.kind(), "the session can't go on; removing it");
                self.end_session(config, session, revoke).await;
            }
            AfterFailure::Forget => {
                tracing::info!("signed out by another Gatehouse process");
                **session = None;
                self.update(|view| view.clear_session());
            }
            AfterFailure::Keep => tracing::warn!(kind = e.kind(), "session operation failed; session kept: {e}"),
        }
        self.update(|view| view.notice = Some(Notice::error(&e)));
        // The phase follows: a window showing this service (the token was asked for by another program) must not
        // go on saying "signed in" over an ended session.
        self.settle(session);
    }

    /// Ends the session in `session`, which can't go on, revoking what can still be revoked first when `revoke`
    /// (RFC 7009 §2.1). Under the profile's lock, the entry is deleted only if it still holds these tokens: a
    /// session another process renewed or signed in meanwhile is left for it.
    pub(super) async fn end_session(&self, config: &Config, session: &mut SessionGuard<'_>, revoke: bool) {
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
        match decide::ended_entry(self.keychain.load(&config.profile).await, &ended) {
            EndedEntry::Delete => {
                let deleted = self.keychain.delete(&config.profile).await;
                if let Err(k) = &deleted {
                    tracing::warn!(kind = k.kind(), "couldn't remove the ended session from the keychain");
                }
                self.keychain.settle(&config.profile, &deleted).await;
            }
            EndedEntry::Newer => tracing::info!("another Gatehouse process has a newer session; leaving it"),
            EndedEntry::Gone => {}
            EndedEntry::Unreadable(k) => {
                tracing::warn!(kind = k.kind(), "couldn't read the keychain; leaving the entry")
            }
        }
        drop(lock);
    }
}
