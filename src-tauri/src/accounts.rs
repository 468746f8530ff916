//! Several accounts side by side: one [`Gatehouse`] service per profile in the config, and what concerns them
//! all.
//!
//! - A sign-in link goes to the profile whose pending `state` it carries. Every profile is asked, in constant
//!   time and without an early exit, so the time taken says nothing about which one (or whether one) matched.
//!   A link that matches none changes no account: it is only reported, in the window's own notice.
//! - The window gets one [`WindowView`] with every account in it, in the config's order.
//! - A session whose profile has been removed from the config is left in the keychain, and the window says so
//!   and offers to forget it.

use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::service::Gatehouse;
use crate::state::{Notice, WindowView};
use crate::tokens::keychain::Keychain;

/// Where the window's view goes: the window's channel and the tray.
pub type Sink = Box<dyn Fn(&WindowView) + Send + Sync>;

/// Every profile's service.
pub struct Accounts {
    services: Vec<Arc<Gatehouse>>,
    keychain: Keychain,
    sink: Sink,
    /// What concerns no single account; its lock also keeps views in order on their way out.
    shared: Mutex<Shared>,
}

#[derive(Default)]
struct Shared {
    revision: u64,
    removed: Vec<String>,
    notice: Option<Notice>,
}

impl Accounts {
    /// The accounts of `services` (at least one; for a broken config, the one that shows the error), with
    /// `keychain` to find and forget sessions of removed profiles, and `sink` to show the window's view.
    pub fn new(services: Vec<Arc<Gatehouse>>, keychain: Keychain, sink: Sink) -> Arc<Accounts> {
        Arc::new(Accounts { services, keychain, sink, shared: Mutex::new(Shared::default()) })
    }

    /// Every profile's service, in the config's order.
    pub fn services(&self) -> &[Arc<Gatehouse>] {
        &self.services
    }

    /// The service of `profile`, or of the first profile when none is named.
    ///
    /// # Errors
    /// [`Error::UnknownProfile`] for a name the config doesn't have.
    pub fn get(&self, profile: Option<&str>) -> Result<Arc<Gatehouse>> {
        let found = match profile {
            None => self.services.first(),
            Some(name) => self.services.iter().find(|s| s.profile().is_some_and(|c| c.profile == name)),
        };
        found.cloned().ok_or_else(|| Error::UnknownProfile {
            name: profile.unwrap_or_default().to_owned(),
            known: self.services.iter().filter_map(|s| s.profile().map(|c| c.profile.clone())).collect(),
        })
    }

    /// What the window shows now.
    pub fn view(&self) -> WindowView {
        let shared = self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.assemble(&shared)
    }

    fn assemble(&self, shared: &Shared) -> WindowView {
        WindowView {
            revision: shared.revision,
            accounts: self.services.iter().map(|s| s.view()).collect(),
            removed: shared.removed.clone(),
            notice: shared.notice.clone(),
        }
    }

    /// Sends the window's view out, after any change to an account or to what they share. Views leave one at
    /// a time, each with a newer revision, so the window never shows an older one over a newer.
    pub fn publish(&self) {
        self.change(|_| {});
    }

    fn change(&self, change: impl FnOnce(&mut Shared)) {
        let mut shared = self.shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        change(&mut shared);
        shared.revision += 1;
        let view = self.assemble(&shared);
        (self.sink)(&view);
    }

    /// Launch: restores every profile's session (side by side), looks for sessions of removed profiles, then
    /// handles the links that started the app.
    pub async fn start(self: &Arc<Self>, early_links: Vec<String>) {
        let mut restoring = tokio::task::JoinSet::new();
        for service in &self.services {
            let service = Arc::clone(service);
            restoring.spawn(async move { service.restore().await });
        }
        while restoring.join_next().await.is_some() {}
        self.find_removed().await;
        for link in early_links {
            self.handle_link(&link).await;
        }
    }

    /// Notes the sessions in the keychain whose profile is no longer in the config. Skipped when the config is
    /// broken (no profile is known, so every session would look removed) or the keychain couldn't be read.
    async fn find_removed(&self) {
        let configured: Vec<&str> =
            self.services.iter().filter_map(|s| s.profile().map(|c| c.profile.as_str())).collect();
        if configured.len() < self.services.len() || self.services.iter().any(|s| s.restore_failed()) {
            return;
        }
        match self.keychain.stored_profiles().await {
            Ok(stored) => {
                let removed: Vec<String> = stored.into_iter().filter(|p| !configured.contains(&p.as_str())).collect();
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
        let mut claimed = None;
        for (index, service) in self.services.iter().enumerate() {
            let claims = service.claims(link);
            if claims && claimed.is_none() {
                claimed = Some(index);
            }
        }
        let target = match (claimed, self.services.as_slice()) {
            (Some(index), _) => &self.services[index],
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
        let reasons: Vec<Error> = self.services.iter().map(|s| s.rejection(link)).collect();
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
        if let Err(e) = self.keychain.delete(profile).await {
            let e = Error::Keychain(e);
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
}
