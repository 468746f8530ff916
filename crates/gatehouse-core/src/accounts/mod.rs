//! Several accounts side by side: one [`ProfileService`] service per profile in the config, and what concerns them
//! all.
//!
//! - A sign-in link goes to the profile whose pending `state` it carries. Every profile is asked, in constant
//!   time and without an early exit, so the time taken says nothing about which one (or whether one) matched.
//!   A link that matches none changes no account: it is only reported, in the window's own notice.
//! - The window gets one [`WindowView`] with every account in it, in the config's order.
//! - A session whose profile has been removed from the config is left in the keychain, and the window says so
//!   and offers to forget it.
//! - "Add account" adds a second account at a configured profile's provider: a copy of that profile under a
//!   new name, with its own keychain entry, signed in with `prompt` so that the browser's current user isn't
//!   silently signed in again. Added accounts are listed, by name only, in `added-accounts.json`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};

use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigError};
use crate::error::{Error, Result};
use crate::service::{ProfileService, Views};
use crate::setup::{self, Draft, Editing, Existing, Findings, SaveOutcome};
use crate::state::{Notice, Phase, ProviderChoice, SetupView, WindowView};
use crate::tokens::keychain::{Keychain, KeychainError};
use crate::tokens::Binding;

mod providers;

/// Where the window's view goes: the window's channel and the tray.
pub type Sink = Box<dyn Fn(&WindowView) + Send + Sync>;

/// Makes the service of a profile (or of the config's error), which publishes its views into the [`Views`] given.
pub type Factory = Box<dyn Fn(std::result::Result<Config, ConfigError>, Views) -> Arc<ProfileService> + Send + Sync>;

/// The file, in the app's data directory, that lists the added accounts.
pub const ADDED_FILE: &str = "added-accounts.json";

/// An account added from the window: a copy of profile `from` named `profile`. Nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedAccount {
    /// The new profile's name, which names its keychain entry.
    pub profile: String,
    /// The configured profile whose provider settings it uses.
    pub from: String,
}

/// The added accounts listed in `file`: none when there is no list, and `None` when there is one that can't be
/// read, neither the file nor the last good copy [`write_added`] keeps beside it. Entries whose names the config
/// would refuse are left out. With `None`, nobody can tell which stored sessions belong to added accounts, so
/// none may be taken for a removed profile's (whose Forget would delete it unrevoked).
pub fn read_added(file: &Path) -> Option<Vec<AddedAccount>> {
    let read = |path: &Path| -> std::result::Result<Option<Vec<AddedAccount>>, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| e.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    };
    let listed = match read(file) {
        Ok(listed) => listed,
        Err(e) => {
            tracing::warn!("can't read {}: {e}; using the last good list", file.display());
            match read(&last_good(file)) {
                Ok(Some(listed)) => Some(listed),
                _ => return None,
            }
        }
    };
    let mut accounts = listed.unwrap_or_default();
    accounts.retain(|a| {
        let valid = crate::config::valid_profile_name(&a.profile) && crate::config::valid_profile_name(&a.from);
        if !valid {
            tracing::warn!("ignoring an added account with a name a profile can't have");
        }
        valid
    });
    Some(accounts)
}

/// Where a service of `accounts` publishes: a change of one account sends the view of them all.
fn views_of(accounts: &Weak<Accounts>) -> Views {
    let accounts = accounts.clone();
    Box::new(move |_| {
        if let Some(accounts) = accounts.upgrade() {
            accounts.publish();
        }
    })
}

/// Where [`write_added`] keeps the last list it wrote whole.
fn last_good(file: &Path) -> PathBuf {
    file.with_extension("json.last-good")
}

/// `configs` followed by the profiles of the added accounts whose `from` is among them.
pub fn with_added(configs: Vec<Config>, added: &[AddedAccount]) -> Vec<Config> {
    let mut all = configs.clone();
    for account in added {
        let taken = all.iter().any(|c| c.profile == account.profile);
        if let (Some(base), false) = (configs.iter().find(|c| c.profile == account.from), taken) {
            let mut copy = base.clone();
            copy.profile.clone_from(&account.profile);
            all.push(copy);
        }
    }
    all
}

/// What a long-running Gatehouse (the window, the light tray) runs: every profile of the config, then the accounts
/// added in the window.
pub struct Profiles {
    /// One service's config each: the config's profiles and the added accounts', or the config's error, which one
    /// service then shows.
    pub profiles: Vec<std::result::Result<Config, ConfigError>>,
    /// The added accounts, as listed.
    pub added: Vec<AddedAccount>,
    /// The list of added accounts couldn't be read (see [`Accounts::added_list_unreadable`]).
    pub added_unreadable: bool,
}

/// The profiles of `config` and of the accounts listed in `added_file` (none when there is no such file).
pub fn profiles(config: std::result::Result<Vec<Config>, ConfigError>, added_file: Option<&Path>) -> Profiles {
    let listed = added_file.map(read_added).unwrap_or(Some(Vec::new()));
    let added_unreadable = listed.is_none();
    let added = listed.unwrap_or_default();
    let profiles = match config {
        Ok(configs) => with_added(configs, &added).into_iter().map(Ok).collect(),
        Err(e) => vec![Err(e)],
    };
    Profiles { profiles, added, added_unreadable }
}

/// Adding accounts and setting providers up from the window: where they are kept.
pub struct Additions {
    /// The list's file.
    pub file: PathBuf,
    /// The config file the window sets providers up in (it need not exist yet); `None` when it can't.
    pub config_file: Option<PathBuf>,
}

/// Every profile's service.
pub struct Accounts {
    /// These accounts, for the views of the services made later (added accounts, providers set up).
    me: Weak<Accounts>,
    factory: Factory,
    services: RwLock<Vec<Arc<ProfileService>>>,
    keychain: Keychain,
    sink: Sink,
    additions: Option<Additions>,
    /// What concerns no single account; its lock also keeps views in order on their way out.
    shared: Mutex<Shared>,
}

#[derive(Default)]
struct Shared {
    revision: u64,
    removed: Vec<String>,
    /// The list of added accounts couldn't be read.
    added_unknown: bool,
    added: Vec<AddedAccount>,
    /// Added accounts whose first sign-in hasn't finished: one that ends without signing in is not kept.
    unconfirmed: Vec<String>,
    notice: Option<Notice>,
}

impl Accounts {
    /// The accounts of `profiles` (at least one; for a broken config, the one that shows the error), each service
    /// made by `factory`, with `keychain` to find and forget sessions of removed profiles, and `sink` to show the
    /// window's view. Every service publishes into these accounts, which send the whole view to `sink`.
    /// `additions`, when given, lets the window add accounts and set providers up.
    pub fn new(
        profiles: Profiles,
        factory: Factory,
        keychain: Keychain,
        sink: Sink,
        additions: Option<Additions>,
    ) -> Arc<Accounts> {
        let Profiles { profiles, added, added_unreadable } = profiles;
        let accounts = Arc::new_cyclic(|me: &Weak<Accounts>| {
            let services: Vec<Arc<ProfileService>> =
                profiles.into_iter().map(|profile| factory(profile, views_of(me))).collect();
            let added = added
                .into_iter()
                .filter(|a| services.iter().any(|s| s.profile().is_some_and(|c| c.profile == a.profile)))
                .collect();
            let shared = Mutex::new(Shared { added, ..Shared::default() });
            Accounts { me: me.clone(), factory, services: RwLock::new(services), keychain, sink, additions, shared }
        });
        if added_unreadable {
            accounts.added_list_unreadable();
        }
        accounts
    }

    /// The service of `config`, made as the others were, publishing into these accounts.
    fn make(&self, config: Config) -> Arc<ProfileService> {
        (self.factory)(Ok(config), views_of(&self.me))
    }

    /// Every profile's service, in the config's order, then the added accounts.
    pub fn services(&self) -> Vec<Arc<ProfileService>> {
        self.services.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// The service of `profile`, or of the first profile when none is named.
    ///
    /// # Errors
    /// [`Error::UnknownProfile`] for a name the config doesn't have.
    pub fn get(&self, profile: Option<&str>) -> Result<Arc<ProfileService>> {
        let services = self.services();
        let found = match profile {
            None => services.first(),
            Some(name) => services.iter().find(|s| s.profile().is_some_and(|c| c.profile == name)),
        };
        found.cloned().ok_or_else(|| Error::UnknownProfile {
            name: profile.unwrap_or_default().to_owned(),
            known: services.iter().filter_map(|s| s.profile().map(|c| c.profile.clone())).collect(),
        })
    }

    /// What the window shows now.
    pub fn view(&self) -> WindowView {
        let shared = self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.assemble(&shared)
    }

    fn assemble(&self, shared: &Shared) -> WindowView {
        let services = self.services();
        let is_added = |profile: &str| shared.added.iter().any(|a| a.profile == profile);
        WindowView {
            revision: shared.revision,
            accounts: services.iter().map(|s| s.view()).collect(),
            removed: shared.removed.clone(),
            added: shared.added.iter().map(|a| a.profile.clone()).collect(),
            // Accounts are added at the configured profiles' providers.
            providers: match self.additions {
                Some(_) => services
                    .iter()
                    .filter_map(|s| s.profile())
                    .filter(|c| !is_added(&c.profile))
                    .map(|c| ProviderChoice { profile: c.profile.clone(), provider: c.display_name.clone() })
                    .collect(),
                None => Vec::new(),
            },
            notice: shared.notice.clone(),
            setup: self.setup_view(&services, shared),
        }
    }

    /// What the window may set up: the config file, and the profiles in it (not the added accounts) that it may
    /// edit and remove. `None` when there is no config file to write, or it is broken (the window shows its error).
    fn setup_view(&self, services: &[Arc<ProfileService>], shared: &Shared) -> Option<SetupView> {
        let file = self.additions.as_ref()?.config_file.as_ref()?;
        if services.iter().any(|s| s.profile().is_none()) {
            return None;
        }
        let is_added = |profile: &str| shared.added.iter().any(|a| a.profile == profile);
        Some(SetupView {
            config_file: file.display().to_string(),
            editable: services
                .iter()
                .filter_map(|s| s.profile().map(|c| c.profile.clone()))
                .filter(|p| !is_added(p))
                .collect(),
        })
    }

    /// Sends the window's view out, after any change to an account or to what they share. Views leave one at
    /// a time, each with a newer revision, so the window never shows an older one over a newer.
    pub fn publish(&self) {
        self.change(|_| {});
    }

    fn change(&self, change: impl FnOnce(&mut Shared)) {
        let mut shared = self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut shared);
        self.drop_unfinished(&mut shared);
        shared.revision += 1;
        let view = self.assemble(&shared);
        (self.sink)(&view);
    }

    /// Keeps an added account once its first sign-in succeeds, and drops it when that sign-in ends any other way
    /// (cancelled, declined, timed out, failed): an account nobody signed in to is not kept. The window's notice
    /// says why.
    fn drop_unfinished(&self, shared: &mut Shared) {
        if shared.unconfirmed.is_empty() {
            return;
        }
        let services = self.services();
        for name in shared.unconfirmed.clone() {
            let Some(service) = services.iter().find(|s| s.profile().is_some_and(|c| c.profile == name)) else {
                shared.unconfirmed.retain(|n| *n != name);
                continue;
            };
            let view = service.view();
            let ended = matches!(view.phase, Phase::SignedOut | Phase::ConfigError) && !service.is_pending();
            if view.phase == Phase::SignedIn {
                shared.unconfirmed.retain(|n| *n != name);
            } else if ended {
                shared.unconfirmed.retain(|n| *n != name);
                let added: Vec<AddedAccount> = shared.added.iter().filter(|a| a.profile != name).cloned().collect();
                if let Some(additions) = &self.additions {
                    if let Err(e) = write_added(&additions.file, &added) {
                        tracing::warn!(kind = e.kind(), "couldn't update the list of added accounts");
                    }
                }
                shared.added = added;
                self.services.write().unwrap_or_else(|p| p.into_inner()).retain(|s| !Arc::ptr_eq(s, service));
                let why = view.notice.map(|n| n.message).unwrap_or_else(|| "the sign-in ended.".into());
                shared.notice = Some(Notice::info("account_not_added", format!("The new account wasn't added: {why}")));
                tracing::info!("an added account's first sign-in didn't finish; not keeping it");
            }
        }
    }

    /// Launch: restores every profile's session (side by side), looks for sessions of removed profiles, then
    /// handles the links that started the app.
    pub async fn start(self: &Arc<Self>, early_links: Vec<String>) {
        let mut restoring = tokio::task::JoinSet::new();
        for service in self.services() {
            restoring.spawn(async move { service.restore().await });
        }
        while restoring.join_next().await.is_some() {}
        self.find_removed().await;
        for link in early_links {
            self.handle_link(&link).await;
        }
    }

    /// Says that a sign-in link came to a Gatehouse that had no sign-in waiting (one that started with the link,
    /// or the light tray), as a link answering no sign-in is said: the link itself never reaches this process
    /// (it would stay in its command line for as long as it runs), and none could have been its answer.
    pub fn stale_link(&self) {
        let e: Error = crate::auth::callback::CallbackError::NoSignInInProgress.into();
        tracing::warn!(kind = e.kind(), "a sign-in link came while no sign-in was waiting; ignored");
        match self.services().as_slice() {
            [only] => only.report(&e),
            _ => self.change(|shared| shared.notice = Some(Notice::error(&e))),
        }
    }

    /// Says that the list of added accounts couldn't be read: which stored sessions are theirs is unknown, so none
    /// is listed as a removed profile's.
    pub fn added_list_unreadable(&self) {
        self.change(|shared| shared.added_unknown = true);
    }

    /// Notes the sessions in the keychain whose profile is no longer in the config. Skipped when the config is
    /// broken (no profile is known, so every session would look removed), the list of added accounts can't be
    /// read (an added account's session would look removed), or the keychain couldn't be read.
    async fn find_removed(&self) {
        if self.shared.lock().unwrap_or_else(|p| p.into_inner()).added_unknown {
            tracing::warn!("the list of added accounts can't be read; not listing sessions of removed profiles");
            return;
        }
        let services = self.services();
        let configured: Vec<&str> = services.iter().filter_map(|s| s.profile().map(|c| c.profile.as_str())).collect();
        if configured.len() < services.len() || services.iter().any(|s| s.restore_failed()) {
            return;
        }
        match self.keychain.stored_profiles().await {
            Ok(stored) => {
                let removed: Vec<String> = stored.into_iter().filter(|p| !configured.contains(&p.as_str())).collect();
                // Read each once, so that Forget can tell the entry listed from one written since.
                for profile in &removed {
                    let _ = self.keychain.load(profile).await;
                }
                if !removed.is_empty() {
                    tracing::info!(
                        count = removed.len(),
                        "sessions of profiles no longer in the config are in the keychain"
                    );
                }
                self.change(|shared| shared.removed = removed);
            }
            Err(e) => tracing::warn!(kind = e.kind(), "couldn't list the keychain's sessions"),
        }
    }

    /// Handles a sign-in link from the OS. It goes to the one profile whose pending sign-in it answers. With one
    /// profile, that profile handles (and reports) any link, as it always has; with several, a link that
    /// answers none is reported in the window's own notice and changes no account.
    pub async fn handle_link(&self, link: &str) {
        // RFC 6749 §10.12, RFC 9700 §4.7: every profile's state is compared, in constant time, and all of them
        // are, so which one matched can't be timed.
        let services = self.services();
        let mut claimed = None;
        for (index, service) in services.iter().enumerate() {
            let claims = service.claims(link);
            if claims && claimed.is_none() {
                claimed = Some(index);
            }
        }
        let target = match (claimed, services.as_slice()) {
            (Some(index), _) => &services[index],
            (None, [only]) => only,
            (None, _) => {
                let e = self.rejection(link);
                // Never log the link itself: it may carry a valid code.
                tracing::warn!(kind = e.kind(), "a sign-in link matched no account's sign-in; ignored");
                self.change(|shared| shared.notice = Some(Notice::error(&e)));
                return;
            }
        };
        self.change(|shared| shared.notice = None);
        target.handle_callback(link).await;
    }

    /// Why a link that no profile claims is rejected: as the first profile it is addressed to would say.
    fn rejection(&self, link: &str) -> Error {
        let reasons: Vec<Error> = self.services().iter().map(|s| s.rejection(link)).collect();
        let addressed = |e: &&Error| !matches!(e, Error::Callback(crate::auth::callback::CallbackError::WrongTarget));
        let pending =
            reasons.iter().any(|e| matches!(e, Error::Callback(crate::auth::callback::CallbackError::StateMismatch)));
        match reasons.iter().find(addressed) {
            // One profile pending is enough for "doesn't belong to the sign-in in progress".
            Some(Error::Callback(crate::auth::callback::CallbackError::NoSignInInProgress)) if pending => {
                crate::auth::callback::CallbackError::StateMismatch.into()
            }
            Some(e) => e.clone(),
            None => crate::auth::callback::CallbackError::WrongTarget.into(),
        }
    }

    /// Clears the window's own notice.
    pub fn dismiss_notice(&self) {
        self.change(|shared| shared.notice = None);
    }

    /// Removes the session a profile no longer in the config left in the keychain. Its provider's settings are
    /// gone with the profile, so it can't be revoked there: the notice says so.
    ///
    /// # Errors
    /// [`Error::UnknownProfile`] for a profile that is not a removed one (a configured profile signs out
    /// instead); a keychain error.
    pub async fn forget(&self, profile: &str) -> Result<()> {
        let known = self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).removed.clone();
        if !known.iter().any(|p| p == profile) {
            return Err(Error::UnknownProfile { name: profile.to_owned(), known });
        }
        // The entry listed, and only that: under the profile's renewal lock, read again. Another process (a command
        // with another config) may have signed in under this name since, and its session must not be deleted
        // unrevoked. An entry that still can't be read is the one listed; one that can't be looked at is left.
        let patience = crate::tokens::keychain::KEYCHAIN_TIMEOUT * 2;
        let locks = crate::tokens::lock::FileLocks::of_service(self.keychain.service());
        let lock = crate::service::renewal_lock(&locks, profile, patience).await;
        let still_listed = match &lock {
            Err(e) => Err(e.clone()),
            Ok(_) => match self.keychain.load_if_changed(profile).await {
                Ok(None | Some(None)) | Err(KeychainError::Corrupt(_) | KeychainError::Duplicates) => Ok(true),
                Ok(Some(_)) => Ok(false),
                Err(e) => Err(Error::Keychain(e)),
            },
        };
        let deleted = match still_listed {
            Ok(true) => {
                let deleted = self.keychain.delete(profile).await;
                // Held until a delete of unknown outcome has landed, as every writer does.
                self.keychain.settle(profile, &deleted).await;
                deleted.map_err(Error::Keychain)
            }
            Ok(false) => Err(Error::Setup(format!(
                "{profile}'s saved session changed since it was listed (another Gatehouse signed in with that name), \
                 so it was left as it is"
            ))),
            Err(e) => Err(e),
        };
        drop(lock);
        if let Err(e) = deleted {
            self.change(|shared| shared.notice = Some(Notice::error(&e)));
            return Err(e);
        }
        tracing::info!("forgot a removed profile's session");
        self.change(|shared| {
            shared.removed.retain(|p| p != profile);
            shared.notice = Some(Notice::info(
                "forgotten",
                format!(
                    "Removed {profile}'s session from this computer. Its provider wasn't told, since the profile's \
                     settings are gone; to end the session there too, sign out on the provider's website."
                ),
            ));
        });
        Ok(())
    }

    /// Signs `profile` in. When another account at the same provider and client is signed in or signing in,
    /// or this one was added as a second account, the provider is asked to let the person choose the account
    /// (`prompt`), since the browser is likely still signed in as the other one.
    ///
    /// # Errors
    /// As [`ProfileService::sign_in`]; [`Error::UnknownProfile`].
    pub async fn sign_in(&self, profile: Option<&str>) -> Result<()> {
        let service = self.get(profile)?;
        let another = self.needs_another_account(&service);
        service.sign_in_with(another).await
    }

    fn needs_another_account(&self, service: &Arc<ProfileService>) -> bool {
        let Some(config) = service.profile() else { return false };
        let added = self.is_added(&config.profile);
        let binding = Binding::of(config);
        added
            || self.services().iter().any(|other| {
                !Arc::ptr_eq(other, service)
                    && other.profile().is_some_and(|c| Binding::of(c) == binding)
                    && (other.view().account.is_some() || other.is_pending())
            })
    }

    fn is_added(&self, profile: &str) -> bool {
        self.shared.lock().unwrap_or_else(|p| p.into_inner()).added.iter().any(|a| a.profile == profile)
    }

    /// Adds an account at the provider of the configured profile `from` (the first one when `None`), and
    /// starts its sign-in. Returns the new profile's name: `from` with the first free number, `work-2`.
    ///
    /// # Errors
    /// [`Error::Setting`] when accounts can't be added here or the list can't be saved; [`Error::UnknownProfile`]
    /// for a `from` that is not a configured profile; the sign-in's error.
    pub async fn add_account(&self, from: Option<&str>) -> Result<String> {
        let additions = self.additions.as_ref().ok_or_else(|| Error::Setting("accounts can't be added here".into()))?;
        let base = self.get(from)?;
        let mut config = base.profile().ok_or_else(|| Error::Setting("fix the config file first".into()))?.clone();
        if self.is_added(&config.profile) {
            // An added account's copy is added from the profile it copies.
            return Err(Error::UnknownProfile { name: config.profile, known: Vec::new() });
        }
        let service = {
            let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            let services = self.services();
            let taken = |name: &str| {
                services.iter().any(|s| s.profile().is_some_and(|c| c.profile == name))
                    || shared.removed.iter().any(|r| r == name)
            };
            // Profile names are at most 64 characters (config.rs); the number keeps it so.
            let stem: String = config.profile.chars().take(56).collect();
            let name = (2..).map(|n| format!("{stem}-{n}")).find(|name| !taken(name)).unwrap_or_default();
            let mut added = shared.added.clone();
            added.push(AddedAccount { profile: name.clone(), from: config.profile.clone() });
            write_added(&additions.file, &added)?;
            config.profile = name;
            let service = self.make(config);
            self.services.write().unwrap_or_else(|p| p.into_inner()).push(Arc::clone(&service));
            shared.added = added;
            service
        };
        self.publish();
        tracing::info!("added an account");
        service.restore().await;
        let name = service.profile().map(|c| c.profile.clone()).unwrap_or_default();
        let started = service.sign_in_with(true).await;
        // Kept only once its first sign-in succeeds (see `drop_unfinished`); one that couldn't start goes now.
        self.change(|shared| shared.unconfirmed.push(name.clone()));
        started.map(|()| name)
    }

    /// Removes an added account that is signed out. (A configured profile is removed from the config file.)
    ///
    /// # Errors
    /// [`Error::UnknownProfile`] for a profile that was not added; [`Error::AlreadySignedIn`] while it has a
    /// session or a sign-in (sign out first); [`Error::Setting`] when the list can't be saved.
    pub async fn remove_account(&self, profile: &str) -> Result<()> {
        let additions =
            self.additions.as_ref().ok_or_else(|| Error::Setting("accounts can't be removed here".into()))?;
        let service = self.get(Some(profile))?;
        {
            let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            if !shared.added.iter().any(|a| a.profile == profile) {
                let known = shared.added.iter().map(|a| a.profile.clone()).collect();
                return Err(Error::UnknownProfile { name: profile.to_owned(), known });
            }
            if service.view().phase != Phase::SignedOut || service.is_pending() {
                return Err(Error::AlreadySignedIn);
            }
            let added: Vec<AddedAccount> = shared.added.iter().filter(|a| a.profile != profile).cloned().collect();
            write_added(&additions.file, &added)?;
            shared.added = added;
            self.services.write().unwrap_or_else(|p| p.into_inner()).retain(|s| !Arc::ptr_eq(s, &service));
        }
        tracing::info!("removed an added account");
        self.publish();
        Ok(())
    }
}

/// Writes the list of added accounts: to a temporary file, then renamed over the old one, so a crash never
/// leaves half a list.
fn write_added(file: &Path, added: &[AddedAccount]) -> Result<()> {
    let failed =
        |e: std::io::Error| Error::Setting(format!("couldn't save the list of accounts in {}: {e}", file.display()));
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let text = serde_json::to_vec_pretty(added).map_err(|e| Error::Internal(e.to_string()))?;
    // Each copy is written whole and on disk (fsync) before it replaces the old one, and the directory is
    // synced after the renames, so a power cut leaves the old list or the new one, never neither.
    for target in [file.to_owned(), last_good(file)] {
        let temporary = target.with_extension("new");
        let mut out = std::fs::File::create(&temporary).map_err(failed)?;
        std::io::Write::write_all(&mut out, &text).map_err(failed)?;
        out.sync_all().map_err(failed)?;
        std::fs::rename(&temporary, &target).map_err(failed)?;
    }
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gatehouse-added-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(ADDED_FILE)
    }

    fn account(profile: &str, from: &str) -> AddedAccount {
        AddedAccount { profile: profile.into(), from: from.into() }
    }

    /// A list that can't be read falls back to the last one written whole; with neither, the list is unknown
    /// (`None`), never "no added accounts", whose sessions would then look like removed profiles'.
    #[test]
    fn an_unreadable_list_falls_back_to_the_last_good_one_or_is_unknown() {
        let file = scratch("fallback");
        assert_eq!(read_added(&file), Some(vec![]), "no list: no added accounts");
        let list = vec![account("demo-2", "demo")];
        write_added(&file, &list).unwrap();
        assert_eq!(read_added(&file), Some(list.clone()));
        std::fs::write(&file, b"{ truncated").unwrap();
        assert_eq!(read_added(&file), Some(list), "the last good list");
        std::fs::write(last_good(&file), b"").unwrap();
        assert_eq!(read_added(&file), None, "unknown");
        let _ = std::fs::remove_dir_all(file.parent().unwrap());
    }

    /// The list is read with the config's rule for names, so it can't name a keychain entry or lock file a
    /// profile couldn't.
    #[test]
    fn names_a_profile_could_not_have_are_left_out() {
        let file = scratch("names");
        let text = r#"[{"profile":"demo-2","from":"demo"},{"profile":"../../etc","from":"demo"},
                       {"profile":"","from":"demo"},{"profile":"ok","from":"a b"}]"#;
        std::fs::write(&file, text).unwrap();
        assert_eq!(read_added(&file), Some(vec![account("demo-2", "demo")]));
        let _ = std::fs::remove_dir_all(file.parent().unwrap());
    }
}
