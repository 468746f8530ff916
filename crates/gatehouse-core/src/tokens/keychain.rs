//! The session's home: one entry in the OS keychain per provider profile.
//!
//! - Service: the app identifier; account: the profile name. The entry holds [`StoredSession`] as JSON.
//! - Every call runs on a blocking thread with a deadline, because the Secret Service is a D-Bus round trip
//!   that can hang (a locked collection may wait on a prompt nobody answers).
//! - Calls for one profile run one at a time, in the order they were made, *including* a call whose caller
//!   stopped waiting: the next one starts only when it has really finished. So a late write can never land
//!   after a newer one (an older, rotated-away refresh token must never be the one that stays).
//! - There is no fallback: with no keychain, sessions are not kept, and the user is told.
//! - "No entry" is not an error: it means signed out (keyring-core's `NoEntry`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keyring_core::{CredentialStore, Entry};

use super::{StoredSession, FORMAT_VERSION, OLDEST_FORMAT_VERSION};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux::Placement;

/// Where a new entry went (see the Linux implementation); elsewhere always into the store's own place.
#[cfg(not(target_os = "linux"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Kept,
    #[allow(dead_code)]
    UntilLogout,
}

/// How long one keychain call may take.
pub const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Windows' Credential Manager holds at most 2560 bytes of secret (CRED_MAX_CREDENTIAL_BLOB_SIZE). The Secret
/// Service and the macOS keychain set no limit of their own that a session comes near (17 KB and more checked
/// over D-Bus), so there Gatehouse sets none either: large group claims make large tokens.
const MAX_SECRET_LEN: Option<usize> = if cfg!(windows) { Some(2560) } else { None };

pub use crate::error::KeychainError;

impl From<keyring_core::Error> for KeychainError {
    /// What really happened, in words that say what to do; never a library's `Debug` text (an `Ambiguous`
    /// error's lists D-Bus object paths). The library's own text goes to the log only.
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
                    || text.contains("no secret service provider")
                {
                    KeychainError::Unavailable("no Secret Service on the session bus".into())
                } else {
                    tracing::warn!("keychain failure: {}", crate::error::clean_for_display(&text, 300));
                    KeychainError::Failed(describe_failure(&text))
                }
            }
            K::Ambiguous(_) => KeychainError::Duplicates,
            K::TooLong(..) => KeychainError::TooLarge,
            K::BadEncoding(_) | K::BadDataFormat(..) => KeychainError::Corrupt("not text".into()),
            K::Invalid(..) | K::NotSupportedByStore(_) => KeychainError::Failed("it refused the request".into()),
            K::NoEntry => KeychainError::Failed("the entry vanished while in use".into()),
            _ => KeychainError::Failed("an unknown error".into()),
        }
    }
}

/// A keychain library's failure text, fit for the user: its words without D-Bus object paths, bus names, or
/// Rust type syntax, and short.
fn describe_failure(text: &str) -> String {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|word| !word.contains('/') && !word.contains("::") && !word.contains(['{', '}', '[', ']', '"']))
        .collect();
    let described = crate::error::clean_for_display(&words.join(" "), 100);
    if described.is_empty() {
        "an unknown error".into()
    } else {
        described
    }
}

type StoreResult<T> = std::result::Result<T, KeychainError>;

/// The app's keychain entries.
pub struct Keychain {
    service: String,
    /// The connection to the store, shared by the keychains made with [`Keychain::for_service`].
    store: Arc<Shared>,
    /// One queue per profile: a call holds its profile's lock until its blocking work is done.
    queues: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    timeout: Duration,
    connect: fn() -> StoreResult<Arc<CredentialStore>>,
    /// What this process last read from or wrote to each profile's entry, as a keyed hash of its text (`None`:
    /// no entry). It tells a change another process made from this process's own, without keeping a second
    /// copy of the secret.
    seen: Mutex<HashMap<String, Option<u64>>>,
    hasher: std::collections::hash_map::RandomState,
    /// The profiles whose entry was last saved in the keyring's session collection.
    until_logout: Mutex<std::collections::HashSet<String>>,
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
        Keychain {
            service: service.into(),
            store: Arc::default(),
            queues: Mutex::new(HashMap::new()),
            timeout: KEYCHAIN_TIMEOUT,
            connect: platform_store,
            seen: Mutex::new(HashMap::new()),
            hasher: std::collections::hash_map::RandomState::new(),
            until_logout: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Entries under `service` over this keychain's connection to its store: one connection for all of an
    /// installation's profiles (on Linux each is a D-Bus connection with a thread of its own, and ten profiles
    /// need one, not ten). A failure in any of them makes them all connect again.
    pub fn for_service(&self, service: impl Into<String>) -> Keychain {
        Keychain {
            store: Arc::clone(&self.store),
            timeout: self.timeout,
            connect: self.connect,
            ..Keychain::new(service)
        }
    }

    /// Entries under `service` in the store `connect` opens, instead of the platform's: any store of keyring-core's
    /// [`CredentialStore`] trait, such as its in-memory `mock` store for tests. Connects on first use, and again
    /// after a failure.
    pub fn with_store(
        service: impl Into<String>,
        connect: fn() -> std::result::Result<Arc<CredentialStore>, KeychainError>,
    ) -> Keychain {
        Keychain { connect, ..Keychain::new(service) }
    }

    fn fingerprint(&self, text: Option<&str>) -> Option<u64> {
        use std::hash::BuildHasher;
        text.map(|text| self.hasher.hash_one(text))
    }

    fn record(&self, profile: &str, fingerprint: Option<u64>) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(profile.to_owned(), fingerprint);
        }
    }

    fn last_seen(&self, profile: &str) -> Option<Option<u64>> {
        self.seen.lock().ok().and_then(|seen| seen.get(profile).copied())
    }

    /// Reads `profile`'s entry again, and returns it if it changed since this process last read or wrote it:
    /// another process wrote or deleted it meanwhile. `Ok(None)` when it is as this process left it. (An entry
    /// this process never saw counts as changed.)
    ///
    /// # Errors
    /// As [`Keychain::load`].
    pub async fn load_if_changed(&self, profile: &str) -> StoreResult<Option<Option<StoredSession>>> {
        let before = self.last_seen(profile);
        let now = self.load(profile).await;
        if before.is_some() && self.last_seen(profile) == before {
            return now.map(|_| None);
        }
        now.map(Some)
    }

    /// The service (app identifier) the entries are kept under.
    pub fn service(&self) -> &str {
        &self.service
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
        self.record(profile, self.fingerprint(text.as_deref()));
        text.map(|text| decode(&text)).transpose()
    }

    /// Every session stored for `profile`, when there are several items for it ([`KeychainError::Duplicates`]:
    /// another program wrote one): what signing out has to revoke before it removes them all. An item whose text
    /// isn't a session (another program's) is left out; one that can't be read at all is an error, since it may
    /// hold a session.
    ///
    /// # Errors
    /// A [`KeychainError`] other than duplicates, or any item's.
    pub async fn load_each(&self, profile: &str) -> StoreResult<Vec<StoredSession>> {
        let texts = self
            .run(profile, |entry| match entry.get_password() {
                Ok(text) => Ok(vec![text]),
                Err(keyring_core::Error::NoEntry) => Ok(Vec::new()),
                Err(keyring_core::Error::Ambiguous(entries)) => entries
                    .iter()
                    .filter_map(|duplicate| match duplicate.get_password() {
                        Ok(text) => Some(Ok(text)),
                        Err(keyring_core::Error::NoEntry) => None,
                        Err(e) => Some(Err(e.into())),
                    })
                    .collect(),
                Err(e) => Err(e.into()),
            })
            .await?;
        Ok(texts.iter().filter_map(|text| decode(text).ok()).collect())
    }

    /// Stores `session` for `profile`, replacing what was there.
    ///
    /// # Errors
    /// A [`KeychainError`].
    pub async fn save(&self, profile: &str, session: &StoredSession) -> StoreResult<()> {
        let text = encode(session)?;
        let fingerprint = self.fingerprint(Some(&text));
        let (service, owner) = (self.service.clone(), profile.to_owned());
        let placement = self.run(profile, move |entry| write(entry, &service, &owner, &text)).await?;
        self.record(profile, fingerprint);
        if let Ok(mut until_logout) = self.until_logout.lock() {
            if placement == Placement::UntilLogout {
                until_logout.insert(profile.to_owned());
            } else {
                until_logout.remove(profile);
            }
        }
        Ok(())
    }

    /// Waits until every call for `profile` has finished, including one whose caller stopped waiting for it
    /// ([`KeychainError::TimedOut`]): after this, a write of unknown outcome has landed or failed. Holders of
    /// the renewal lock call it before letting go, so that no other process reads the entry while a write to it
    /// may still land.
    async fn settled(&self, profile: &str) {
        let queue = match self.queues.lock() {
            Ok(queues) => queues.get(profile).cloned(),
            Err(poisoned) => poisoned.into_inner().get(profile).cloned(),
        };
        if let Some(queue) = queue {
            drop(queue.lock().await);
        }
    }

    /// After a write to `profile`'s entry that ended in `outcome`: when that is a failure that may still land
    /// (not [`KeychainError::nothing_written`]), waits until it has landed or failed ([`Keychain::settled`]).
    pub async fn settle(&self, profile: &str, outcome: &StoreResult<()>) {
        if outcome.as_ref().is_err_and(|e| !e.nothing_written()) {
            self.settled(profile).await;
        }
    }

    /// Whether `profile`'s entry was last saved where the keyring forgets it at log-out (its session
    /// collection, for want of a default one).
    pub fn kept_until_logout(&self, profile: &str) -> bool {
        self.until_logout.lock().is_ok_and(|until_logout| until_logout.contains(profile))
    }

    /// Removes the entry for `profile`. Removing a missing entry succeeds.
    ///
    /// # Errors
    /// A [`KeychainError`].
    pub async fn delete(&self, profile: &str) -> StoreResult<()> {
        self.run(profile, |entry| match entry.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            // Several entries for one profile (another program wrote one): signing out removes them all, so
            // that the user has a way out.
            Err(keyring_core::Error::Ambiguous(entries)) => {
                for duplicate in entries {
                    match duplicate.delete_credential() {
                        Ok(()) | Err(keyring_core::Error::NoEntry) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(())
            }
            Err(e) => Err(e.into()),
        })
        .await?;
        self.record(profile, None);
        Ok(())
    }

    /// The text kept for `name` with [`Keychain::save_text`], or `None`. For secrets that are not sessions
    /// (a client registration's access token), under a service of their own.
    ///
    /// # Errors
    /// A [`KeychainError`].
    pub async fn load_text(&self, name: &str) -> StoreResult<Option<String>> {
        self.run(name, |entry| match entry.get_password() {
            Ok(text) => Ok(Some(text)),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(e.into()),
        })
        .await
    }

    /// Keeps `text` for `name`, replacing what was there.
    ///
    /// # Errors
    /// A [`KeychainError`].
    pub async fn save_text(&self, name: &str, text: String) -> StoreResult<()> {
        let (service, owner) = (self.service.clone(), name.to_owned());
        self.run(name, move |entry| write(entry, &service, &owner, &text)).await.map(|_| ())
    }

    /// The profiles that have an entry under this service, found by the keychain's search (the Secret Service's
    /// `service` attribute). Used to find sessions whose profile is no longer configured; stores that can't
    /// search answer with none.
    ///
    /// # Errors
    /// A [`KeychainError`].
    pub async fn stored_profiles(&self) -> StoreResult<Vec<String>> {
        let (shared, service, connect) = (Arc::clone(&self.store), self.service.clone(), self.connect);
        let task = tokio::task::spawn_blocking(move || -> StoreResult<Vec<String>> {
            let store = shared.connected(connect)?;
            let spec = HashMap::from([("service", service.as_str())]);
            let found = match Entry::search_in_store(&store, &spec) {
                Ok(found) => found,
                // This store has no search, or not by service: nothing can be listed.
                Err(keyring_core::Error::NotSupportedByStore(_) | keyring_core::Error::Invalid(..)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            let mut profiles: Vec<String> = found
                .iter()
                .filter_map(|entry| {
                    let attributes = entry.get_attributes().ok()?;
                    (attributes.get("service") == Some(&service)).then(|| attributes.get("username").cloned())?
                })
                .collect();
            profiles.sort();
            profiles.dedup();
            Ok(profiles)
        });
        match tokio::time::timeout(self.timeout, task).await {
            Err(_) => Err(KeychainError::TimedOut),
            Ok(Err(e)) => Err(KeychainError::Failed(format!("keychain task: {e}"))),
            Ok(Ok(result)) => result,
        }
    }

    /// Runs `op` on `profile`'s entry after every earlier call for that profile has finished, waiting at most
    /// [`KEYCHAIN_TIMEOUT`] in all.
    ///
    /// - [`KeychainError::Busy`]: an earlier call is still running; `op` was not started and never will be.
    /// - [`KeychainError::TimedOut`]: `op` started and did not finish in time. It keeps its place in the queue,
    ///   so it completes (or fails) before any later call for the profile starts.
    async fn run<T, F>(&self, profile: &str, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Entry) -> StoreResult<T> + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let queue = {
            let mut queues = self.queues.lock().map_err(|_| KeychainError::Failed("lock poisoned".into()))?;
            Arc::clone(queues.entry(profile.to_owned()).or_default())
        };
        // tokio's Mutex is fair: calls get their turn in the order they asked for it.
        let Ok(turn) = tokio::time::timeout_at(deadline, queue.lock_owned()).await else {
            return Err(KeychainError::Busy);
        };
        let (shared, service, connect) = (Arc::clone(&self.store), self.service.clone(), self.connect);
        let profile = profile.to_owned();
        let task = tokio::task::spawn_blocking(move || -> (Option<Arc<CredentialStore>>, StoreResult<T>) {
            // Held until the work is done, even if nobody waits for it any more.
            let _turn = turn;
            let store = match shared.connected(connect) {
                Ok(store) => store,
                Err(e) => return (None, Err(e)),
            };
            let result = Entry::new_in_store(&store, &service, &profile)
                .map_err(KeychainError::from)
                .and_then(|entry| op(&entry));
            (Some(store), result)
        });
        let (used, outcome) = match tokio::time::timeout_at(deadline, task).await {
            Err(_) => (None, Err(KeychainError::TimedOut)),
            Ok(Err(e)) => (None, Err(KeychainError::Failed(format!("keychain task: {e}")))),
            Ok(Ok(result)) => result,
        };
        match &outcome {
            // About this entry alone: the connection is fine.
            Err(KeychainError::Duplicates | KeychainError::Corrupt(_) | KeychainError::TooLarge) | Ok(_) => {}
            // Reconnect next time: the bus or the keyring daemon may have restarted, been unlocked, or be stuck
            // behind a prompt on the old connection. A call that timed out can't say which connection it used.
            Err(KeychainError::TimedOut) => self.store.forget(None),
            Err(_) => self.store.forget(used.as_ref()),
        }
        outcome
    }
}

/// The connection to the store that the keychains of one installation share.
#[derive(Default)]
struct Shared {
    /// The connection, once made; locked only for a moment, never while connecting.
    slot: Mutex<Option<Arc<CredentialStore>>>,
    /// Held while a connection is made (on a blocking thread), so that keychains starting at once make one.
    connecting: Mutex<()>,
}

impl Shared {
    fn current(&self) -> Option<Arc<CredentialStore>> {
        self.slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// The connection, made with `connect` by the first keychain that needs it. Blocks while another keychain
    /// makes it: call it on a blocking thread.
    fn connected(&self, connect: fn() -> StoreResult<Arc<CredentialStore>>) -> StoreResult<Arc<CredentialStore>> {
        if let Some(store) = self.current() {
            return Ok(store);
        }
        let _connecting = self.connecting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(store) = self.current() {
            return Ok(store);
        }
        let store = connect()?;
        *self.slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(&store));
        Ok(store)
    }

    /// Drops the connection `failed` (any, when `None`), so that the next call connects again; a newer one that
    /// another keychain made meanwhile is kept.
    fn forget(&self, failed: Option<&Arc<CredentialStore>>) {
        let mut slot = self.slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failed.is_none_or(|failed| slot.as_ref().is_some_and(|current| Arc::ptr_eq(current, failed))) {
            *slot = None;
        }
    }
}

/// Writes `text` into `entry` (the entry for `profile` under `service`). On Linux, a keyring with no default
/// collection gets the entry in another unlocked one ([`linux::create_without_default`]).
#[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
fn write(entry: &Entry, service: &str, profile: &str, text: &str) -> StoreResult<Placement> {
    match entry.set_password(text) {
        Ok(()) => Ok(Placement::Kept),
        #[cfg(target_os = "linux")]
        Err(e) if linux::no_default_collection(&e) => {
            tracing::info!("the keyring has no default collection; looking for another");
            linux::create_without_default(service, profile, text)
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads an entry's text. An entry of a layout this version does not know is [`KeychainError::Corrupt`].
fn decode(text: &str) -> StoreResult<StoredSession> {
    let session: StoredSession = serde_json::from_str(text)
        .map_err(|e| KeychainError::Corrupt(format!("line {}, column {}", e.line(), e.column())))?;
    // A version 2 entry must say what it belongs to; only a version 1 entry may lack it.
    let bound = session.binding.is_some() || session.v == OLDEST_FORMAT_VERSION;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&session.v) || !bound {
        return Err(KeychainError::Corrupt(format!(
            "it was saved by another version of Gatehouse (format {})",
            session.v
        )));
    }
    Ok(session)
}

/// Serialises `session`, dropping the access token if that is what it takes to fit this platform's keychain.
fn encode(session: &StoredSession) -> StoreResult<String> {
    encode_within(session, MAX_SECRET_LEN)
}

/// Serialises `session` for a store that holds at most `limit` bytes (`None`: no limit), dropping the access
/// token if that is what it takes to fit: it can be had again with the refresh token; the refresh token can't.
fn encode_within(session: &StoredSession, limit: Option<usize>) -> StoreResult<String> {
    let text = serde_json::to_string(session).map_err(|e| KeychainError::Failed(e.to_string()))?;
    let Some(limit) = limit.filter(|limit| text.len() > *limit) else { return Ok(text) };
    let mut smaller = session.clone();
    smaller.access_token = None;
    let text = serde_json::to_string(&smaller).map_err(|e| KeychainError::Failed(e.to_string()))?;
    if text.len() <= limit && smaller.refresh_token.is_some() {
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
            binding: None,
            access_token: Some(AccessToken::new("a".repeat(access_len))),
            refresh_token: Some(RefreshToken::new("r".repeat(40))),
            expires_at: Some(1),
            scopes: vec!["openid".into()],
            account: Account { subject: Some("alice".into()), name: None, login: None },
            dpop_key: None,
            bearer_access: false,
            lifetime: None,
            grant: None,
            narrowed: Vec::new(),
        }
    }

    /// One in-memory store for all unit tests (each test uses its own profile names), found again after a
    /// failure drops the connection.
    fn mock_store() -> StoreResult<Arc<CredentialStore>> {
        static STORE: std::sync::OnceLock<Arc<CredentialStore>> = std::sync::OnceLock::new();
        Ok(Arc::clone(STORE.get_or_init(|| keyring_core::mock::Store::new().unwrap())))
    }

    fn mock_keychain(timeout: Duration) -> Keychain {
        let keychain = Keychain { timeout, connect: mock_store, ..Keychain::new("gatehouse-unit-test") };
        *keychain.store.slot.lock().unwrap() = Some(mock_store().unwrap());
        keychain
    }

    async fn password(keychain: &Keychain, profile: &str) -> Option<String> {
        let read = keychain.run(profile, |entry| match entry.get_password() {
            Err(keyring_core::Error::NoEntry) => Ok(None),
            other => other.map(Some).map_err(Into::into),
        });
        read.await.unwrap()
    }

    /// A write whose caller gave up still finishes before the next write for the profile starts, so the newer
    /// value is the one that stays.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_late_write_is_never_overtaken() {
        let keychain = Arc::new(mock_keychain(Duration::from_millis(1500)));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let stuck = keychain
            .run("late", move |entry| {
                let _ = held.recv();
                entry.set_password("older").map_err(Into::into)
            })
            .await;
        assert!(matches!(stuck, Err(KeychainError::TimedOut)), "{stuck:?}");

        let newer = tokio::spawn({
            let keychain = Arc::clone(&keychain);
            async move { keychain.run("late", |entry| entry.set_password("newer").map_err(Into::into)).await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!newer.is_finished(), "the newer write must wait for the older one");
        release.send(()).unwrap();
        newer.await.unwrap().unwrap();
        assert_eq!(password(&keychain, "late").await.as_deref(), Some("newer"));
    }

    /// A call that can't get its turn in time is never started, so it can't land later.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_that_never_got_its_turn_never_runs() {
        let keychain = Arc::new(mock_keychain(Duration::from_millis(300)));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let stuck =
            keychain.run("queued", move |_| held.recv().map_err(|e| KeychainError::Failed(e.to_string()))).await;
        assert!(matches!(stuck, Err(KeychainError::TimedOut)), "{stuck:?}");
        // Other profiles are not held up by one that is stuck.
        assert!(keychain.run("queued-other", |_| Ok(())).await.is_ok());
        let queued = keychain.run("queued", |entry| entry.set_password("queued").map_err(Into::into)).await;
        assert!(matches!(queued, Err(KeychainError::Busy)), "{queued:?}");
        release.send(()).unwrap();
        assert_eq!(password(&keychain, "queued").await, None);
    }

    #[test]
    fn encodes_small_sessions_whole() {
        let text = encode(&session(40)).unwrap();
        let back: StoredSession = serde_json::from_str(&text).unwrap();
        assert_eq!(back.access_token.unwrap().secret().len(), 40);
        assert_eq!(back.account.subject.as_deref(), Some("alice"));
    }

    /// Windows' 2560 bytes: the access token goes, the refresh token stays.
    #[test]
    fn drops_the_access_token_to_fit_a_small_store() {
        let text = encode_within(&session(2560), Some(2560)).unwrap();
        let back: StoredSession = serde_json::from_str(&text).unwrap();
        assert!(back.access_token.is_none());
        assert!(back.refresh_token.is_some());
    }

    #[test]
    fn refuses_what_cannot_fit_a_small_store() {
        let mut s = session(2560);
        s.refresh_token = None;
        assert!(matches!(encode_within(&s, Some(2560)), Err(KeychainError::TooLarge)));
    }

    /// Large group claims make large tokens: where the store sets no limit (the Secret Service, macOS), Gatehouse
    /// sets none either, so a 20 KB access token is kept, not dropped and refreshed on every use, and a 17 KB
    /// refresh token is kept, not refused (and its grant revoked).
    #[cfg(not(windows))]
    #[test]
    fn keeps_large_tokens_whole_where_the_store_has_no_limit() {
        let mut s = session(20 * 1024);
        s.refresh_token = Some(RefreshToken::new("r".repeat(17 * 1024)));
        let back: StoredSession = serde_json::from_str(&encode(&s).unwrap()).unwrap();
        assert_eq!(back.access_token.unwrap().secret().len(), 20 * 1024);
        assert_eq!(back.refresh_token.unwrap().secret().len(), 17 * 1024);
    }

    #[test]
    fn maps_keyring_errors_to_what_the_user_can_do() {
        use keyring_core::Error as K;
        let mapped = |e: K| KeychainError::from(e).kind();
        assert_eq!(mapped(K::NoDefaultStore), "keychain_unavailable");
        assert_eq!(mapped(K::NoStorageAccess(Box::new(std::io::Error::other("locked")))), "keychain_locked");
        let bus = |text: &str| K::PlatformFailure(Box::new(std::io::Error::other(text.to_owned())));
        assert_eq!(
            mapped(bus("org.freedesktop.DBus.Error.ServiceUnknown: The name org.freedesktop.secrets was not provided")),
            "keychain_unavailable"
        );
        assert_eq!(mapped(bus("the collection said no")), "keychain_failed");
        assert_eq!(mapped(K::TooLong("secret".into(), 2560)), "keychain_too_large");
        assert_eq!(mapped(K::BadEncoding(vec![0xff])), "keychain_corrupt");
    }

    /// Every format this version reads, as earlier versions wrote them: 1 (no binding, adopted), 2 (bound, no
    /// key: a Bearer session), 3 (with the DPoP key); and one from a later version, refused.
    #[test]
    fn reads_every_format_it_knows_and_refuses_a_newer_one() {
        let binding = r#""binding":{"provider":"https://id.example.com","client_id":"c","resource_origin":"https://api.example.com"}"#;
        let v1 = decode(r#"{"v":1,"access_token":"at","refresh_token":"rt","scopes":[],"account":{}}"#).unwrap();
        assert!(v1.binding.is_none() && v1.refresh_token.is_some());
        let v2 = decode(&format!(r#"{{"v":2,{binding},"access_token":"at","refresh_token":"rt","scopes":["openid"],"account":{{"subject":"alice"}}}}"#)).unwrap();
        assert_eq!(v2.binding.unwrap().client_id, "c");
        assert!(v2.dpop_key.is_none() && v2.access_token.is_some(), "a format 2 entry is a Bearer session");
        let key = crate::dpop::DpopKey::generate().unwrap().to_stored();
        let v3 = StoredSession { v: 3, dpop_key: Some(key), ..session(10) };
        let mut v3 = serde_json::to_value(&v3).unwrap();
        let bound: serde_json::Value = serde_json::from_str(&format!("{{{binding}}}")).unwrap();
        v3["binding"] = bound["binding"].clone();
        assert!(decode(&v3.to_string()).unwrap().dpop_key().unwrap().is_some());
        let v4 = format!(r#"{{"v":4,{binding},"scopes":[],"account":{{}}}}"#);
        assert!(matches!(decode(&v4), Err(KeychainError::Corrupt(why)) if why.contains("format 4")));
        let unbound_v2 = r#"{"v":2,"access_token":"at","scopes":[],"account":{}}"#;
        assert!(decode(unbound_v2).is_err(), "from format 2 on, an entry must say what it belongs to");
    }

    #[test]
    fn only_a_refusal_is_known_to_have_written_nothing() {
        assert!(KeychainError::Locked.nothing_written());
        assert!(KeychainError::Busy.nothing_written());
        assert!(KeychainError::Unavailable("no bus".into()).nothing_written());
        assert!(KeychainError::TooLarge.nothing_written());
        assert!(!KeychainError::TimedOut.nothing_written());
        assert!(!KeychainError::Failed("?".into()).nothing_written());
    }

    /// Generated records (`proptest`; 10,000 cases each in CI, more with `tests/bin/fuzz`).
    mod properties {
        use proptest::prelude::*;

        use super::*;
        use crate::tokens::Binding;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![3 => "[ -~]{0,60}", 1 => any::<String>()]
        }

        fn stored_session() -> impl Strategy<Value = StoredSession> {
            let binding =
                proptest::option::of((text(), text(), text()).prop_map(|(provider, client_id, origin)| Binding {
                    provider,
                    client_id,
                    resource_origin: origin,
                    token_endpoint: None,
                    revocation_endpoint: None,
                    recorded: false,
                }));
            (
                binding,
                proptest::option::of(text()),
                proptest::option::of(text()),
                proptest::option::of(any::<u64>()),
                proptest::collection::vec(text(), 0..4),
                (proptest::option::of(text()), proptest::option::of(text()), any::<bool>()),
            )
                .prop_map(|(binding, access, refresh, expires_at, scopes, (subject, name, bound))| {
                    // A DPoP key only in a bound (current-format) entry, as Gatehouse writes them.
                    let dpop_key =
                        (bound && binding.is_some()).then(|| crate::dpop::DpopKey::generate().unwrap().to_stored());
                    StoredSession {
                        v: if binding.is_some() { FORMAT_VERSION } else { OLDEST_FORMAT_VERSION },
                        binding,
                        access_token: access.map(AccessToken::new),
                        refresh_token: refresh.map(RefreshToken::new),
                        expires_at,
                        scopes,
                        account: Account { subject, name, login: None },
                        bearer_access: dpop_key.is_some() && expires_at.is_some_and(|at| at % 2 == 0),
                        dpop_key,
                        lifetime: expires_at.map(|at| at % 100_000),
                        grant: expires_at.map(|at| format!("{at:x}")),
                        narrowed: Vec::new(),
                    }
                })
        }

        fn as_json(session: &StoredSession) -> serde_json::Value {
            serde_json::to_value(session).unwrap()
        }

        proptest! {
            #![proptest_config(crate::proptest_config())]

            #[test]
            fn never_panics_on_any_text(text in any::<String>()) {
                let _ = decode(&text);
            }

            #[test]
            fn takes_only_the_versions_it_knows(
                v in prop_oneof![3 => 0u32..=FORMAT_VERSION + 1, 1 => any::<u32>()],
                bound in any::<bool>(),
                extra in "x_[a-z]{1,8}",
            ) {
                let mut record = serde_json::json!({ "v": v, "scopes": [], "account": {}, extra: 1 });
                if bound {
                    record["binding"] = serde_json::json!({ "provider": "p", "client_id": "c", "resource_origin": "o" });
                }
                let decoded = decode(&record.to_string());
                let known = (OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&v) && (bound || v == OLDEST_FORMAT_VERSION);
                prop_assert_eq!(decoded.is_ok(), known, "{:?}", decoded.err());
            }

            #[test]
            fn reads_back_what_it_writes(session in stored_session()) {
                // A small limit, so that both branches run on every platform.
                let limit = 600;
                match encode_within(&session, Some(limit)) {
                    Ok(text) => {
                        prop_assert!(text.len() <= limit);
                        let back = decode(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
                        let mut expected = session.clone();
                        if text.len() < serde_json::to_string(&session).unwrap().len() {
                            // Only the access token may be dropped to fit, never the refresh token.
                            expected.access_token = None;
                        }
                        prop_assert_eq!(as_json(&back), as_json(&expected));
                    }
                    Err(e) => {
                        prop_assert!(matches!(e, KeychainError::TooLarge), "{e}");
                        prop_assert!(serde_json::to_string(&session).unwrap().len() > limit);
                    }
                }
            }
        }
    }
}
