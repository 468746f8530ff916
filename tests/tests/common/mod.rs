//! What the service-level test binaries share: a stand-in for the desktop that records the URLs Gatehouse asks
//! it to open, so that the test can play the browser, with the scripted user agent on the provider's real pages.

#![allow(dead_code)] // each test binary uses the part it needs

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gatehouse_core::accounts::{self, Accounts, Profiles};
use gatehouse_core::config::Config;
use gatehouse_core::service::{ProfileService, Shell};
use gatehouse_core::state::Phase;
use gatehouse_core::tokens::keychain::Keychain;
use harness::keyring;
use harness::user_agent::{self, Decision};
use url::Url;

/// The system browser, as far as Gatehouse can tell.
#[derive(Default)]
pub struct Browser {
    opened: Mutex<Vec<Url>>,
    /// When set, opening fails the way an opener does: with a message that quotes the URL.
    pub missing: AtomicBool,
    /// How many times Gatehouse brought its window to the front.
    pub focused: AtomicUsize,
}

impl Browser {
    /// The last URL Gatehouse opened.
    pub fn last_opened(&self) -> Url {
        self.opened.lock().unwrap().last().cloned().expect("the browser was never opened")
    }

    /// How many times Gatehouse opened the browser.
    pub fn times_opened(&self) -> usize {
        self.opened.lock().unwrap().len()
    }

    /// Signs in as `login` on the page opened last, answers consent with `decision`, and returns the redirect
    /// to the app's scheme.
    pub async fn answer(&self, login: &str, decision: Decision) -> String {
        user_agent::authorize(self.last_opened().as_str(), login, decision).await.unwrap()
    }
}

struct DesktopShell(Arc<Browser>);

impl Shell for DesktopShell {
    fn open_browser(&self, url: &Url) -> Result<(), String> {
        self.0.opened.lock().map_err(|e| e.to_string())?.push(url.clone());
        if self.0.missing.load(Ordering::Relaxed) {
            return Err(format!("Failed to open URL {url}: xdg-open: no method available for opening it"));
        }
        Ok(())
    }

    fn focus(&self) {
        self.0.focused.fetch_add(1, Ordering::Relaxed);
    }
}

/// A service for `profile_toml` with the real keychain (not started yet), and the browser it opens.
pub fn service(profile_toml: &str) -> (Arc<ProfileService>, Arc<Browser>) {
    let browser = Arc::new(Browser::default());
    let config = Config::parse(profile_toml, "test profile");
    let views = Box::new(|_: &_| {});
    let service = ProfileService::new(config, Keychain::new(keyring::SERVICE), DesktopShell(browser.clone()), views);
    (service, browser)
}

/// The accounts of `profiles` (a profile's TOML each) with the real keychain, whose view goes to `sink`, and the
/// browser each opens, in the same order.
pub fn accounts(profiles: &[String], sink: accounts::Sink) -> (Arc<Accounts>, Vec<Arc<Browser>>) {
    let browsers: Arc<Mutex<Vec<Arc<Browser>>>> = Arc::default();
    let made = Arc::clone(&browsers);
    let factory: accounts::Factory = Box::new(move |config, views| {
        let browser = Arc::new(Browser::default());
        made.lock().unwrap().push(Arc::clone(&browser));
        ProfileService::new(config, Keychain::new(keyring::SERVICE), DesktopShell(browser), views)
    });
    let configs = profiles.iter().map(|toml| Config::parse(toml, "test profile")).collect();
    let profiles = Profiles { profiles: configs, added: Vec::new(), added_unreadable: false };
    let accounts = Accounts::new(profiles, factory, Keychain::new(keyring::SERVICE), sink, None);
    let browsers = browsers.lock().unwrap().clone();
    (accounts, browsers)
}

/// Presses Sign in, signs in as `login` in the browser and hands its redirect to the service, as the OS would.
/// Returns the redirect.
pub async fn sign_in(service: &Arc<ProfileService>, browser: &Browser, login: &str) -> String {
    service.sign_in().await.unwrap();
    assert_eq!(service.view().phase, Phase::WaitingForBrowser);
    let redirect = browser.answer(login, Decision::Approve).await;
    service.handle_callback(&redirect).await;
    redirect
}

/// Makes `profile`'s stored access token look expired to every Gatehouse process (the provider still takes it).
pub async fn expire_access_token(profile: &str) {
    let keychain = Keychain::new(keyring::SERVICE);
    let mut session = keychain.load(profile).await.unwrap().unwrap();
    session.expires_at = Some(gatehouse_core::tokens::unix_now() - 5);
    keychain.save(profile, &session).await.unwrap();
}

/// The kind of the notice `service` shows, if any.
pub fn notice_kind(service: &ProfileService) -> Option<String> {
    service.view().notice.map(|n| n.kind)
}
