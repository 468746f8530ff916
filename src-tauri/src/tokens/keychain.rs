//! The session's home: one entry in the OS keychain per provider profile.
//!
//! - Service: the app identifier; account: the profile name. The entry holds [`StoredSession`] as JSON.
//! - Every call runs on a blocking thread with a deadline, because the Secret Service is a D-Bus round trip
//!   that can hang (a locked collection may wait on a prompt nobody answers).
//! - There is no fallback: with no keychain, sessions are not kept, and the user is told.
//! - "No entry" is not an error: it means signed out (keyring-core's `NoEntry`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};

use super::{StoredSession, FORMAT_VERSION};

/// How long one keychain call may take.
pub const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Windows' Credential Manager holds at most 2560 bytes of secret (CRED_MAX_CREDENTIAL_BLOB_SIZE). Elsewhere
/// the limit is generous; keep entries small anyway.
const MAX_SECRET_LEN: usize = if cfg!(windows) { 2560 } else { 16 * 1024 };

/// Why the keychain could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeychainError {
    /// There is no keychain service to talk to.
    #[error("The system keychain isn't available ({0}), so Gatehouse can't keep you signed in. Start or install your keyring (on Linux, GNOME Keyring or KeePassXC's Secret Service), then try again.")]
    Unavailable(String),
    /// The keychain is locked, or access was refused.
    #[error("The system keychain is locked or refused access. Unlock it, then try again.")]
    Locked,
    /// The keychain did not answer in time.
    #[error("The system keychain didn't answer in time. If it is asking for a password, answer it, then try again.")]
    TimedOut,
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
            KeychainError::TimedOut => "keychain_timeout",
            KeychainError::Corrupt(_) => "keychain_corrupt",
            KeychainError::TooLarge => "keychain_too_large",
            KeychainError::Failed(_) => "keychain_failed",
        }
    }
}

impl From<keyring_core::Error> for KeychainError {
    fn from(e: keyring_core::Error) -> Self {
        use keyring_core::Error as K;
        match e {
            K::NoStorageAccess(_) => KeychainError::Locked,
            K::NoDefaultStore => KeychainError::Unavailable("no keychain store".into()),
            K::PlatformFailure(inner) => {
                let text = inner.to_string();
                // Secret Service quirks (see PLATFORM-NOTES): no session bus, or a bus with nobody
                // serving org.freedesktop.secrets, both mean "no keychain here".
                if text.contains("ServiceUnknown")
                    || text.contains("org.freedesktop.secrets")
                    || text.contains("Connection")
                    || text.contains("DBUS_SESSION_BUS_ADDRESS")
                {
                    KeychainError::Unavailable("no Secret Service on the session bus".into())
                } else {
                    KeychainError::Failed(text)
                }
            }
            K::TooLong(..) => KeychainError::TooLarge,
            K::BadEncoding(_) | K::BadDataFormat(..) => KeychainError::Corrupt("not text".into()),
            other => KeychainError::Failed(other.to_string()),
        }
    }
}

type StoreResult<T> = std::result::Result<T, KeychainError>;

/// The app's keychain entries.
pub struct Keychain {
    service: String,
    store: Mutex<Option<Arc<CredentialStore>>>,
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keychain").field("service", &self.service).finish_non_exhaustive()
    }
}

impl Keychain {
    /// Entries under `service` (the app identifier). Connects on first use, and again after a failure, so a
    /// keyring started or unlocked later is picked up.
    pub fn new(service: impl Into<String>) -> Keychain {
        Keychain { service: service.into(), store: Mutex::new(None) }
    }

    /// The session stored for `profile`, or `None` when there is none.
    ///
    /// # Errors
    /// A [`KeychainError`]; an entry of a layout this version does not know is [`KeychainError::Corrupt`].
    pub async fn load(&self, profile: &str) -> StoreResult<Option<StoredSession>> {
        let text = self
            .run(profile, |entry| match entry.get_password() {
                Ok(text) => Ok(Some(text)),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(e.into()),
            })
            .await?;
        let Some(text) = text else { return Ok(None) };
        let session: StoredSession = serde_json::from_str(&text)
            .map_err(|e| KeychainError::Corrupt(format!("line {}, column {}", e.line(), e.column())))?;
        if session.v != FORMAT_VERSION {
            return Err(KeychainError::Corrupt(format!(
                "it was saved by another version of Gatehouse (format {})",
                session.v
            )));
        }
        Ok(Some(session))
    }

    /// Stores `session` for `profile`, replacing what was there.
    ///
    /// # Errors
    /// A [`KeychainError`].
    pub async fn save(&self, profile: &str, session: &StoredSession) -> StoreResult<()> {
        let text = encode(session)?;
        self.run(profile, move |entry| entry.set_password(&text).map_err(Into::into)).await
    }

    /// Removes the entry for `profile`. Removing a missing entry succeeds.
    ///
    /// # Errors
    /// A [`KeychainError`].
    pub async fn delete(&self, profile: &str) -> StoreResult<()> {
        self.run(profile, |entry| match entry.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn run<T, F>(&self, profile: &str, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Entry) -> StoreResult<T> + Send + 'static,
    {
        let store_slot = self.store.lock().map_err(|_| KeychainError::Failed("lock poisoned".into()))?.clone();
        let service = self.service.clone();
        let profile = profile.to_owned();
        let task = tokio::task::spawn_blocking(move || -> StoreResult<(Arc<CredentialStore>, T)> {
            let store = match store_slot {
                Some(store) => store,
                None => platform_store()?,
            };
            let entry = Entry::new_in_store(&store, &service, &profile)?;
            Ok((store, op(&entry)?))
        });
        let outcome = match tokio::time::timeout(KEYCHAIN_TIMEOUT, task).await {
            Err(_) => Err(KeychainError::TimedOut),
            Ok(Err(e)) => Err(KeychainError::Failed(format!("keychain task: {e}"))),
            Ok(Ok(result)) => result,
        };
        let mut slot = self.store.lock().map_err(|_| KeychainError::Failed("lock poisoned".into()))?;
        match outcome {
            Ok((store, value)) => {
                *slot = Some(store);
                Ok(value)
            }
            Err(e) => {
                // Reconnect next time: the bus or the keyring daemon may have restarted, been unlocked, or
                // be stuck behind a prompt on the old connection.
                *slot = None;
                Err(e)
            }
        }
    }
}

/// Serialises `session`, dropping the access token if that is what it takes to fit the keychain.
fn encode(session: &StoredSession) -> StoreResult<String> {
    let text = serde_json::to_string(session).map_err(|e| KeychainError::Failed(e.to_string()))?;
    if text.len() <= MAX_SECRET_LEN {
        return Ok(text);
    }
    // The access token is replaceable by a refresh; the refresh token is not.
    let mut smaller = session.clone();
    smaller.access_token = None;
    let text = serde_json::to_string(&smaller).map_err(|e| KeychainError::Failed(e.to_string()))?;
    if text.len() <= MAX_SECRET_LEN && smaller.refresh_token.is_some() {
        Ok(text)
    } else {
        Err(KeychainError::TooLarge)
    }
}

#[cfg(target_os = "linux")]
fn platform_store() -> StoreResult<Arc<CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
fn platform_store() -> StoreResult<Arc<CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(windows)]
fn platform_store() -> StoreResult<Arc<CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn platform_store() -> StoreResult<Arc<CredentialStore>> {
    Err(KeychainError::Unavailable("this platform has no supported keychain".into()))
}

#[cfg(test)]
mod tests {
    use oauth2::{AccessToken, RefreshToken};

    use super::*;
    use crate::tokens::Account;

    fn session(access_len: usize) -> StoredSession {
        StoredSession {
            v: FORMAT_VERSION,
            access_token: Some(AccessToken::new("a".repeat(access_len))),
            refresh_token: Some(RefreshToken::new("r".repeat(40))),
            expires_at: Some(1),
            scopes: vec!["openid".into()],
            account: Account { subject: Some("alice".into()), name: None },
        }
    }

    #[test]
    fn encodes_small_sessions_whole() {
        let text = encode(&session(40)).unwrap();
        let back: StoredSession = serde_json::from_str(&text).unwrap();
        assert_eq!(back.access_token.unwrap().secret().len(), 40);
        assert_eq!(back.account.subject.as_deref(), Some("alice"));
    }

    #[test]
    fn drops_the_access_token_to_fit() {
        let text = encode(&session(MAX_SECRET_LEN)).unwrap();
        let back: StoredSession = serde_json::from_str(&text).unwrap();
        assert!(back.access_token.is_none());
        assert!(back.refresh_token.is_some());
    }

    #[test]
    fn refuses_what_cannot_fit() {
        let mut s = session(MAX_SECRET_LEN);
        s.refresh_token = None;
        assert!(matches!(encode(&s), Err(KeychainError::TooLarge)));
    }

    #[test]
    fn maps_keyring_errors_to_what_the_user_can_do() {
        assert!(matches!(KeychainError::from(keyring_core::Error::NoDefaultStore), KeychainError::Unavailable(_)));
        assert_eq!(KeychainError::Locked.kind(), "keychain_locked");
    }
}
