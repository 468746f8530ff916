//! The Secret Service beyond what keyring-core's store does: creating an entry when the keyring has no
//! `default` collection.
//!
//! keyring-core's store creates new items in the collection the `default` alias names. Some Secret Service
//! providers have no such alias: WSL set-ups, KeePassXC exposing a database that isn't marked default, a login
//! keyring that was deleted. The store then reports "no storage access", which reads as "locked" although
//! nothing is. Where the keyring has an unlocked collection all the same, the entry is created there, as the
//! store would have done in the default one; reads, updates and deletes need nothing more, since the store
//! finds an item in any collection by its attributes.

use std::collections::HashMap;

use secret_service::blocking::SecretService;
use secret_service::EncryptionType;

use super::{KeychainError, StoreResult};

/// Where a new entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Where the keyring keeps things: its default collection, or another persistent one.
    Kept,
    /// The keyring's session collection, which it forgets at log-out: the only unlocked one it had.
    UntilLogout,
}

/// Whether `e`, from writing a new entry, means the keyring has no `default` collection (the store's
/// `ReadAlias("default")` answered `/`), rather than that it is locked.
pub fn no_default_collection(e: &keyring_core::Error) -> bool {
    match e {
        keyring_core::Error::NoStorageAccess(inner) => {
            matches!(inner.downcast_ref::<secret_service::Error>(), Some(secret_service::Error::NoResult))
        }
        _ => false,
    }
}

/// Creates the entry for `profile` under `service`, holding `secret`, in an unlocked collection of a keyring
/// that has no default one: a persistent collection if there is one, else the session collection (with a
/// `Placement` that says so).
///
/// # Errors
/// [`KeychainError::NoCollection`] when no collection is unlocked; [`KeychainError::Locked`] when the
/// keyring has a default collection after all (it was locked); another [`KeychainError`] when the Secret
/// Service fails.
pub fn create_without_default(service: &str, profile: &str, secret: &str) -> StoreResult<Placement> {
    let failed = |e: secret_service::Error| KeychainError::from(keyring_core::Error::PlatformFailure(Box::new(e)));
    let ss = SecretService::connect(EncryptionType::Dh).map_err(failed)?;
    if ss.get_default_collection().is_ok() {
        return Err(KeychainError::Locked);
    }
    let mut persistent = None;
    let mut session = None;
    for collection in ss.get_all_collections().map_err(failed)? {
        if collection.is_locked().unwrap_or(true) {
            continue;
        }
        // gnome-keyring's in-memory collection; other providers have none.
        if collection.collection_path.as_str().ends_with("/session") {
            session.get_or_insert(collection);
        } else {
            persistent.get_or_insert(collection);
        }
    }
    let (collection, placement) = match (persistent, session) {
        (Some(collection), _) => (collection, Placement::Kept),
        (None, Some(collection)) => (collection, Placement::UntilLogout),
        (None, None) => return Err(KeychainError::NoCollection),
    };
    // The attributes and label keyring-core's store gives an item, so that it finds this one as its own.
    let attributes = HashMap::from([("service", service), ("username", profile)]);
    let label = format!("keyring:{profile}@{service}");
    collection.create_item(&label, attributes, secret.as_bytes(), true, "text/plain").map_err(failed)?;
    Ok(placement)
}
