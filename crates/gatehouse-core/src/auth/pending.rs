//! The one sign-in attempt that may be in progress.
//!
//! Invariants: at most one attempt exists; a new one replaces the old; an attempt is taken out exactly once,
//! by the callback whose `state` matches it in constant time and before it expires. A callback that does not
//! match leaves the attempt in place, so a forged link cannot cancel a real sign-in.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use oauth2::{CsrfToken, PkceCodeVerifier};
use subtle::ConstantTimeEq;
use url::Url;

use super::callback::CallbackError;
use super::loopback;
use crate::error::{Error, Result};

/// A sign-in that is waiting for the browser.
#[derive(Debug)]
pub struct PendingAttempt {
    /// Tells attempts apart without exposing `state`.
    pub id: u64,
    /// The `state` sent in the authorization request.
    pub state: CsrfToken,
    /// The PKCE verifier for the token request.
    pub verifier: PkceCodeVerifier,
    /// The `nonce` sent, if any.
    pub nonce: Option<CsrfToken>,
    /// When it expires.
    pub expires_at: Instant,
    /// The redirect URI sent, which the token request repeats.
    pub redirect_uri: Url,
    /// For a loopback redirect, the listener's life: dropping the attempt closes its port.
    pub listener: Option<loopback::Guard>,
    /// The key the session will be bound to (RFC 9449), when the provider takes DPoP.
    pub dpop: Option<crate::dpop::DpopKey>,
}

/// Holds the pending attempt.
#[derive(Debug, Default)]
pub struct PendingSlot {
    inner: Mutex<Option<PendingAttempt>>,
}

impl PendingSlot {
    /// Stores `attempt`, dropping any earlier one.
    ///
    /// # Errors
    /// Only on a poisoned lock.
    pub fn replace(&self, attempt: PendingAttempt) -> Result<()> {
        *self.lock()? = Some(attempt);
        Ok(())
    }

    /// Drops the pending attempt, if it is `id` (or any, with `None`). Returns whether one was dropped.
    ///
    /// # Errors
    /// Only on a poisoned lock.
    pub fn cancel(&self, id: Option<u64>) -> Result<bool> {
        let mut slot = self.lock()?;
        let matches = slot.as_ref().is_some_and(|a| id.is_none_or(|id| a.id == id));
        if matches {
            *slot = None;
        }
        Ok(matches)
    }

    /// Whether an attempt is pending.
    ///
    /// # Errors
    /// Only on a poisoned lock.
    pub fn is_pending(&self) -> Result<bool> {
        Ok(self.lock()?.is_some())
    }

    /// The redirect URI the pending attempt sent (a loopback one with its port), if one is pending.
    pub fn redirect_uri(&self) -> Option<Url> {
        self.lock().ok()?.as_ref().map(|attempt| attempt.redirect_uri.clone())
    }

    /// Whether `state` is the pending attempt's, compared in constant time. Nothing is taken: with several
    /// profiles, this picks the one a callback goes to, which then takes its attempt with
    /// [`PendingSlot::take_matching`].
    pub fn state_matches(&self, state: &str) -> bool {
        let Ok(slot) = self.lock() else { return false };
        slot.as_ref().is_some_and(|attempt| attempt.state.secret().as_bytes().ct_eq(state.as_bytes()).into())
    }

    /// Takes the attempt that `state` belongs to.
    ///
    /// # Errors
    /// - [`CallbackError::NoSignInInProgress`]: nothing pending, which is also what a replay finds;
    /// - [`CallbackError::StateMismatch`]: the attempt stays pending;
    /// - [`CallbackError::Expired`]: the attempt is dropped.
    pub fn take_matching(&self, state: &str, now: Instant) -> Result<PendingAttempt> {
        let mut slot = self.lock()?;
        let Some(attempt) = slot.as_ref() else {
            return Err(CallbackError::NoSignInInProgress.into());
        };
        // RFC 6749 §10.12 / RFC 9700 §4.7.1: `state` binds the response to this user agent's request. Compare in
        // constant time so that the comparison leaks nothing about the expected value.
        let matches: bool = attempt.state.secret().as_bytes().ct_eq(state.as_bytes()).into();
        if !matches {
            return Err(CallbackError::StateMismatch.into());
        }
        let attempt = slot.take().ok_or(CallbackError::NoSignInInProgress)?;
        if now >= attempt.expires_at {
            return Err(CallbackError::Expired.into());
        }
        Ok(attempt)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Option<PendingAttempt>>> {
        self.inner.lock().map_err(|_| Error::Internal("sign-in state lock poisoned".into()))
    }
}

/// When an attempt started at `start` with lifetime `ttl` expires.
pub fn expiry(start: Instant, ttl: Duration) -> Instant {
    start + ttl
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(id: u64, state: &str, expires_at: Instant) -> PendingAttempt {
        PendingAttempt {
            id,
            state: CsrfToken::new(state.into()),
            verifier: PkceCodeVerifier::new("v".repeat(43)),
            nonce: None,
            expires_at,
            redirect_uri: Url::parse("com.example.gatehouse:/callback").unwrap(),
            listener: None,
            dpop: None,
        }
    }

    fn callback_error(result: Result<PendingAttempt>) -> CallbackError {
        match result {
            Err(Error::Callback(e)) => e,
            other => panic!("expected a callback error, got {other:?}"),
        }
    }

    #[test]
    fn takes_the_matching_attempt_once() {
        let slot = PendingSlot::default();
        let now = Instant::now();
        slot.replace(attempt(1, "good-state", now + Duration::from_secs(60))).unwrap();
        assert_eq!(slot.take_matching("good-state", now).unwrap().id, 1);
        // A replay of the same response finds nothing.
        assert_eq!(callback_error(slot.take_matching("good-state", now)), CallbackError::NoSignInInProgress);
    }

    #[test]
    fn wrong_state_leaves_the_attempt_pending() {
        let slot = PendingSlot::default();
        let now = Instant::now();
        slot.replace(attempt(1, "good-state", now + Duration::from_secs(60))).unwrap();
        for forged in ["bad-state", "good-stat", "good-statee", ""] {
            assert_eq!(callback_error(slot.take_matching(forged, now)), CallbackError::StateMismatch);
        }
        assert!(slot.is_pending().unwrap());
        assert!(slot.take_matching("good-state", now).is_ok());
    }

    #[test]
    fn missing_attempt_is_reported() {
        let slot = PendingSlot::default();
        assert_eq!(callback_error(slot.take_matching("x", Instant::now())), CallbackError::NoSignInInProgress);
    }

    #[test]
    fn expired_attempt_is_rejected_and_dropped() {
        let slot = PendingSlot::default();
        let start = Instant::now();
        slot.replace(attempt(1, "s", expiry(start, Duration::from_secs(600)))).unwrap();
        let later = start + Duration::from_secs(600);
        assert_eq!(callback_error(slot.take_matching("s", later)), CallbackError::Expired);
        assert!(!slot.is_pending().unwrap());
    }

    #[test]
    fn a_new_attempt_replaces_the_old() {
        let slot = PendingSlot::default();
        let now = Instant::now();
        slot.replace(attempt(1, "first", now + Duration::from_secs(60))).unwrap();
        slot.replace(attempt(2, "second", now + Duration::from_secs(60))).unwrap();
        assert_eq!(callback_error(slot.take_matching("first", now)), CallbackError::StateMismatch);
        assert_eq!(slot.take_matching("second", now).unwrap().id, 2);
    }

    #[test]
    fn cancel_only_drops_the_named_attempt() {
        let slot = PendingSlot::default();
        let now = Instant::now();
        slot.replace(attempt(2, "s", now + Duration::from_secs(60))).unwrap();
        assert!(!slot.cancel(Some(1)).unwrap());
        assert!(slot.is_pending().unwrap());
        assert!(slot.cancel(Some(2)).unwrap());
        assert!(!slot.cancel(None).unwrap());
        assert_eq!(callback_error(slot.take_matching("s", now)), CallbackError::NoSignInInProgress);
    }
}
