//! Tokens narrowed to a resource or to fewer scopes, for other programs: asked for under the profile's renewal
//! lock, kept in the session's keychain entry, and never replaced by the session's own broader token.

use super::*;
use crate::auth::narrow;
use crate::error::NarrowError;
use crate::tokens::NarrowedToken;

/// A token handed to another program, and what a record of it says.
#[derive(Debug, Clone)]
pub struct Handout {
    /// The access token.
    pub token: AccessToken,
    /// When it expires (seconds since the Unix epoch), if the provider said.
    pub expires_at: Option<u64>,
    /// Whether the provider was asked for it just now, rather than it being one kept from before.
    pub renewed: bool,
}

impl ProfileService {
    /// A token for another program, narrowed `to` a resource or fewer scopes when asked (see
    /// [`Self::narrowed_token`]), else the session's own ([`Self::access_token`]), valid for `min_ttl`.
    ///
    /// # Errors
    /// As those two.
    pub async fn hand_out(&self, to: &Narrowing, min_ttl: Duration) -> Result<Handout> {
        if to.is_none() {
            self.own_token(min_ttl).await
        } else {
            self.narrowed_token(to, min_ttl).await
        }
    }

    /// The session's own token, as a [`Handout`].
    async fn own_token(&self, min_ttl: Duration) -> Result<Handout> {
        let grants = self.grants.load(Ordering::SeqCst);
        let token = self.access_token(min_ttl).await?;
        let expires_at = self.session.lock().await.as_ref().and_then(|s| s.expires_at);
        let renewed = self.grants.load(Ordering::SeqCst) > grants;
        Ok(Handout { token, expires_at, renewed })
    }

    /// An access token narrowed `to` a resource or to fewer scopes that stays valid for at least `min_ttl`: the
    /// one kept from an earlier request while it lasts, else a new one, from a refresh grant with `resource` and
    /// `scope` (RFC 8707 §2.2, RFC 6749 §6), or from token exchange (RFC 8693) where the provider lists it and the
    /// refresh grant was refused. With nothing to narrow, the session's own token ([`Self::access_token`]).
    ///
    /// What the profile doesn't allow is refused before any request. A refresh token the provider rotated on the
    /// way is kept, even when the token that came with it is refused.
    ///
    /// # Errors
    /// [`Error::NotNarrowed`] with why; [`Error::NotSignedIn`]; [`Error::DpopBound`] for a DPoP session, whose
    /// narrowed tokens would be bound to its key too; a renewal's error (an ended session is removed, a
    /// transient failure keeps it).
    pub async fn narrowed_token(&self, to: &Narrowing, min_ttl: Duration) -> Result<Handout> {
        let config = self.config()?;
        narrow::allowed(config, to)?;
        if to.is_none() {
            return self.own_token(min_ttl).await;
        }
        if !self.load().await? {
            return Err(Error::NotSignedIn);
        }
        let mut session = self.session.lock().await;
        let current = session.as_ref().ok_or(Error::NotSignedIn)?;
        if current.dpop_key.is_some() {
            return Err(Error::DpopBound);
        }
        if let Some(handout) = kept(current, to, self.now(), min_ttl) {
            return Ok(handout);
        }
        // The provider's tokens don't live that long: no grant can help, so none is spent.
        if current.outlives_tokens(min_ttl) {
            return Err(too_short(current, min_ttl, self.now()));
        }
        let _renewal = self.renewal_lock(config).await?;
        // Another process may have narrowed the same way, or rotated the refresh token, while this one waited.
        let read = self.keychain.load_if_changed(&config.profile).await;
        match decide::elsewhere(read, current, self.now(), Duration::ZERO) {
            Ok(Elsewhere::Nobody) => {}
            Ok(Elsewhere::Renewed(latest) | Elsewhere::RenewTheirs(latest)) => *session = Some(latest),
            Err(e) => {
                self.fail(config, &mut session, e.clone()).await;
                return Err(e);
            }
        }
        let current = session.as_ref().ok_or(Error::NotSignedIn)?;
        if let Some(handout) = kept(current, to, self.now(), min_ttl) {
            return Ok(handout);
        }
        let mut next = current.clone();
        let asked = self.ask_narrowed(config, &mut next, to).await;
        // What the provider rotated is kept whatever became of the narrowed token (RFC 9700 §4.14.2).
        let rotated =
            next.refresh_token.as_ref().map(|t| t.secret()) != current.refresh_token.as_ref().map(|t| t.secret());
        let tokens = match asked {
            Ok(tokens) => tokens,
            Err(e) => {
                if rotated {
                    self.keep_renewed(config, &mut session, next).await;
                }
                return Err(e);
            }
        };
        let token = tokens.access_token().clone();
        let expires_at = expiry_from(self.now(), tokens.expires_in());
        let now = self.now();
        // Expired ones go; they would only be asked for again.
        next.narrowed.retain(|kept| &kept.to != to && !kept.due_within(now, Duration::ZERO));
        next.narrowed.push(NarrowedToken { to: to.clone(), access_token: token.clone(), expires_at });
        let unsaved = self.keep_renewed(config, &mut session, next).await;
        match unsaved {
            // The rotated refresh token lives only here now, and this process may end soon: say so.
            Some(e) if rotated => Err(Error::RenewalNotSaved(e)),
            _ => Ok(Handout { token, expires_at, renewed: true }),
        }
    }

    /// Asks the provider for a token narrowed `to`: with `next`'s refresh token first, then by exchanging its
    /// access token where the provider lists token exchange. `next` takes the refresh token the provider
    /// rotated. The answer is checked to be no broader than asked, and one that is too broad is revoked.
    async fn ask_narrowed(&self, config: &Config, next: &mut StoredSession, to: &Narrowing) -> Result<TokenResponse> {
        let endpoints = self.endpoints(config).await?;
        let with_secret = self.with_secret(config).await?;
        let config = &*with_secret;
        let provider = flow::Provider { config, endpoints: &endpoints, http: &self.http };
        let refused = match next.refresh_token.clone() {
            Some(refresh_token) => {
                let client = flow::client(config, &endpoints, &config.redirect_uri)?;
                match flow::refresh(&client, provider, &refresh_token, None, to).await {
                    Ok(tokens) => {
                        // RFC 6749 §6: a new refresh token replaces the old one.
                        if let Some(rotated) = tokens.refresh_token() {
                            next.refresh_token = Some(rotated.clone());
                        }
                        return self.checked(provider, tokens, to, next).await;
                    }
                    Err(Error::TokenEndpoint { code, .. }) => code,
                    // Said of a narrowing, `invalid_grant` may be about the resource rather than the grant (RFC 8707
                    // §2: some servers answer so): the session is left for its own renewal to find out.
                    Err(Error::SessionEnded) => "invalid_grant".to_owned(),
                    Err(e) => return Err(e),
                }
            }
            None => "no refresh token".to_owned(),
        };
        if !narrow::exchange_listed(&endpoints) {
            return Err(NarrowError::Refused { code: refused }.into());
        }
        let subject = next.access_token.clone().filter(|_| !next.due_within(self.now(), EXPIRY_SKEW));
        let subject = subject.ok_or(Error::SignInNeeded)?;
        let tokens = narrow::exchange(provider, &subject, to).await?;
        self.checked(provider, tokens, to, next).await
    }

    /// `tokens` if they are no broader than `to` asked ([`narrow::check`]); otherwise revoked (RFC 7009), and why.
    async fn checked(
        &self,
        provider: flow::Provider<'_>,
        tokens: TokenResponse,
        to: &Narrowing,
        session: &StoredSession,
    ) -> Result<TokenResponse> {
        match narrow::check(&tokens, to, session.access_token.as_ref(), &provider.config.resources) {
            Ok(()) => Ok(tokens),
            Err(e) => {
                tracing::warn!(kind = e.kind(), "the provider's narrowed token is not what was asked; revoking it");
                let token = StandardRevocableToken::AccessToken(tokens.access_token().clone());
                if let Err(revoke_error) =
                    flow::revoke(provider.config, provider.endpoints, provider.http, token, None).await
                {
                    tracing::warn!(kind = revoke_error.kind(), "couldn't revoke the refused token");
                }
                Err(e.into())
            }
        }
    }
}

/// The token `session` keeps narrowed `to`, if it stays valid for `min_ttl` from `now`.
fn kept(session: &StoredSession, to: &Narrowing, now: u64, min_ttl: Duration) -> Option<Handout> {
    let kept = session.narrowed.iter().find(|kept| &kept.to == to && !kept.due_within(now, min_ttl))?;
    Some(Handout { token: kept.access_token.clone(), expires_at: kept.expires_at, renewed: false })
}
