//! The service in a world of its tests' making: keyring-core's in-memory store instead of the platform's
//! keychain, a provider scripted answer by answer instead of the network, locks held in this process, and a
//! clock that stands still. What it does with what the keychain holds and what the provider answers, case by
//! case.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use keyring_core::CredentialStore;

use super::*;
use crate::error::NarrowError;
use crate::http::scripted::{Scripted, Seen};
use crate::tokens::lock::MemoryLocks;
use crate::tokens::Account;

mod narrow;

/// The time the tests' clock shows, far from today's: nothing here depends on the computer's clock.
const NOW: u64 = 2_000_000_000;

/// A clock that shows what it is set to.
struct Stopped(AtomicU64);

impl Clock for Stopped {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

const PROFILE: &str = "issuer = \"https://id.example.com\"\nclient_id = \"abc\"\n\
    redirect_uri = \"com.example.gatehouse:/callback\"\nresource_url = \"https://api.example.com/me\"\n";

/// One in-memory store for the tests here, each with profiles of its own.
fn store() -> std::result::Result<Arc<CredentialStore>, KeychainError> {
    static STORE: std::sync::OnceLock<Arc<CredentialStore>> = std::sync::OnceLock::new();
    let store = STORE.get_or_init(|| keyring_core::mock::Store::new().unwrap_or_else(|e| panic!("mock store: {e}")));
    Ok(Arc::clone(store))
}

fn keychain() -> Keychain {
    Keychain::with_store("gatehouse-service-test", store)
}

/// A desktop with no browser: these tests never sign in.
struct NoDesktop;

impl Shell for NoDesktop {
    fn open_browser(&self, _url: &Url) -> std::result::Result<(), String> {
        Err("no browser in unit tests".into())
    }
}

/// A profile whose provider's endpoints are given, so that nothing is discovered.
const EXPLICIT: &str = "client_id = \"abc\"\nauthorization_endpoint = \"https://id.example.com/authorize\"\n\
    token_endpoint = \"https://id.example.com/token\"\nrevocation_endpoint = \"https://id.example.com/revoke\"\n\
    redirect_uri = \"com.example.gatehouse:/callback\"\nresource_url = \"https://api.example.com/me\"\n\
    scopes = [\"profile\"]\n";

/// The service of profile `name`, and the views it published. It asks `provider` and holds `locks`.
fn service_with(
    name: &str,
    profile: &str,
    provider: Http,
    locks: &MemoryLocks,
) -> (Arc<ProfileService>, Arc<Mutex<Vec<AuthView>>>) {
    let config = Config::parse(&format!("profile = \"{name}\"\n{profile}"), "test");
    let seen: Arc<Mutex<Vec<AuthView>>> = Arc::default();
    let views = Arc::clone(&seen);
    let publish = Box::new(move |view: &AuthView| views.lock().unwrap_or_else(|p| p.into_inner()).push(view.clone()));
    let effects =
        Effects { http: provider, locks: Arc::new(locks.clone()), clock: Arc::new(Stopped(AtomicU64::new(NOW))) };
    (ProfileService::with_effects(config, keychain(), NoDesktop, publish, effects), seen)
}

/// The service of profile `name` (of [`PROFILE`]), and the views it published; its provider answers nothing.
fn service(name: &str) -> (Arc<ProfileService>, Arc<Mutex<Vec<AuthView>>>) {
    service_with(name, PROFILE, Scripted::new().start().0, &MemoryLocks::default())
}

/// A session of `toml`'s provider whose access token `a1` expires `in_secs` from [`NOW`], renewable with `r1`.
fn session_for(profile: &str, toml: &str, in_secs: u64) -> StoredSession {
    let config = Config::parse(&format!("profile = \"{profile}\"\n{toml}"), "test").unwrap();
    StoredSession {
        v: crate::tokens::FORMAT_VERSION,
        binding: Some(Binding::of(&config)),
        access_token: Some(AccessToken::new("a1".into())),
        refresh_token: Some(RefreshToken::new("r1".into())),
        expires_at: Some(NOW + in_secs),
        scopes: vec!["profile".into()],
        account: Account { subject: Some("alice".into()), name: None, login: None },
        dpop_key: None,
        bearer_access: false,
        lifetime: Some(3600),
        grant: Some("g1".into()),
        narrowed: Vec::new(),
    }
}

/// A session of [`EXPLICIT`]'s provider (see [`session_for`]) stored under `profile`.
async fn stored_session(profile: &str, in_secs: u64) -> StoredSession {
    let session = session_for(profile, EXPLICIT, in_secs);
    keychain().save(profile, &session).await.unwrap();
    session
}

fn refresh_request() -> Seen {
    Seen {
        method: "POST".into(),
        path: "/token".into(),
        body: "grant_type=refresh_token&refresh_token=r1&client_id=abc".into(),
    }
}

/// A session another provider issued, stored under `profile`.
async fn foreign_session(profile: &str) -> StoredSession {
    let other = Config::parse(&PROFILE.replace("id.example.com", "other.example.com"), "other").unwrap();
    let session = StoredSession {
        binding: Some(Binding::of(&other)),
        access_token: Some(AccessToken::new("theirs".into())),
        refresh_token: Some(RefreshToken::new("their-refresh".into())),
        scopes: vec!["openid".into()],
        account: Account { subject: Some("mallory".into()), name: None, login: None },
        grant: Some("g".into()),
        ..session_for(profile, PROFILE, 3600)
    };
    keychain().save(profile, &session).await.unwrap();
    session
}

/// RFC 9700 §4.9, §4.10: a session another provider issued is never used, never handed out, and left in the
/// keychain; the window says whose it is.
#[tokio::test]
async fn a_session_of_another_provider_is_never_used_and_left_in_the_keychain() {
    let foreign = foreign_session("svc-foreign").await;
    let (service, seen) = service("svc-foreign");
    service.restore().await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("session_for_other_provider"), "{:?}", view.notice);
    assert!(view.account.is_none(), "another provider's account is never shown as this profile's");
    assert!(!seen.lock().unwrap().is_empty(), "the views were published");
    let token = service.access_token(Duration::from_secs(60)).await;
    assert!(matches!(token, Err(Error::OtherProvider { .. })), "{token:?}");
    let kept = keychain().load("svc-foreign").await.unwrap().unwrap();
    assert!(decide::same_tokens(&kept, &foreign), "the entry is left as it was");
}

/// A sign-out neither revokes at nor deletes another provider's session (only a sign-in that succeeds replaces
/// it), and says no session is kept here.
#[tokio::test]
async fn a_sign_out_leaves_another_providers_session_for_a_sign_in_to_replace() {
    let foreign = foreign_session("svc-foreign-out").await;
    let (service, _) = service("svc-foreign-out");
    service.restore().await;
    service.sign_out().await.unwrap();
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("signed_out"), "{:?}", view.notice);
    let kept = keychain().load("svc-foreign-out").await.unwrap().unwrap();
    assert!(decide::same_tokens(&kept, &foreign), "the entry is left as it was");
}

/// A token that lasts long enough is handed out as it is: no request reaches the provider.
#[tokio::test]
async fn a_fresh_token_is_handed_out_without_asking_the_provider() {
    stored_session("svc-fresh", 3600).await;
    let (http, provider) = Scripted::new().start();
    let (service, _) = service_with("svc-fresh", EXPLICIT, http, &MemoryLocks::default());
    let handout = service.hand_out(&Narrowing::default(), Duration::from_secs(60)).await.unwrap();
    assert_eq!((handout.token.secret().as_str(), handout.renewed), ("a1", false));
    assert_eq!(provider.requests(), []);
}

/// A token that would not last is renewed once (RFC 6749 §6), and the rotated refresh token is in the keychain
/// before the new access token is handed out (RFC 9700 §4.14.2).
#[tokio::test]
async fn a_due_token_is_renewed_and_the_rotated_refresh_token_kept() {
    stored_session("svc-due", 30).await;
    let (http, provider) = Scripted::new()
        .on(
            "POST /token",
            200,
            serde_json::json!({"access_token": "a2", "token_type": "Bearer", "expires_in": 3600, "refresh_token": "r2"}),
        )
        .start();
    let (service, _) = service_with("svc-due", EXPLICIT, http, &MemoryLocks::default());
    let handout = service.hand_out(&Narrowing::default(), Duration::from_secs(60)).await.unwrap();
    assert_eq!((handout.token.secret().as_str(), handout.renewed), ("a2", true));
    assert_eq!(handout.expires_at, Some(NOW + 3600));
    assert_eq!(provider.requests(), [refresh_request()]);
    let kept = keychain().load("svc-due").await.unwrap().unwrap();
    assert_eq!(kept.refresh_token.as_ref().map(|t| t.secret().as_str()), Some("r2"));
    assert_eq!(kept.access_token.as_ref().map(|t| t.secret().as_str()), Some("a2"));
    assert_eq!(kept.expires_at, Some(NOW + 3600), "judged by the service's clock");
}

/// The provider saying the grant is over (`invalid_grant`, RFC 6749 §5.2) ends the session: the entry is
/// removed and the window shows no one signed in.
#[tokio::test]
async fn the_provider_ending_the_grant_ends_the_session() {
    stored_session("svc-ended", 30).await;
    let (http, provider) = Scripted::new()
        .on("POST /token", 400, serde_json::json!({"error": "invalid_grant"}))
        .on("POST /revoke", 200, serde_json::json!({}))
        .start();
    let (service, _) = service_with("svc-ended", EXPLICIT, http, &MemoryLocks::default());
    let token = service.access_token(Duration::from_secs(60)).await;
    assert!(matches!(token, Err(Error::SessionEnded)), "{token:?}");
    let asked: Vec<String> = provider.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(asked, ["/token"], "a grant the provider ended has nothing left to revoke");
    assert!(keychain().load("svc-ended").await.unwrap().is_none(), "the ended session is removed");
    assert_eq!(service.view().phase, Phase::SignedOut);
}

/// A provider that fails in a way that says nothing about the grant (a 503 page) changes nothing: the session
/// stays in the keychain as it was, and the window still shows it.
#[tokio::test]
async fn a_provider_that_fails_leaves_the_session_as_it_was() {
    let stored = stored_session("svc-down", 30).await;
    let (http, provider) = Scripted::new().on("POST /token", 503, serde_json::json!("down for maintenance")).start();
    let (service, _) = service_with("svc-down", EXPLICIT, http, &MemoryLocks::default());
    let token = service.access_token(Duration::from_secs(60)).await;
    assert!(token.is_err(), "{token:?}");
    assert_eq!(provider.requests(), [refresh_request()], "asked once, never again on its own");
    let kept = keychain().load("svc-down").await.unwrap().unwrap();
    assert!(decide::same_tokens(&kept, &stored), "the entry is left as it was");
    assert_eq!(service.view().phase, Phase::SignedIn);
}

/// While another holder has the profile's renewal lock, no refresh request goes out; once it lets go, exactly
/// one does.
#[tokio::test]
async fn a_renewal_waits_for_the_lock() {
    stored_session("svc-locked", 30).await;
    let locks = MemoryLocks::default();
    let held = locks.try_lock("svc-locked").unwrap();
    let (http, provider) = Scripted::new()
        .on("POST /token", 200, serde_json::json!({"access_token": "a2", "token_type": "Bearer", "expires_in": 3600}))
        .start();
    let (service, _) = service_with("svc-locked", EXPLICIT, http, &locks);
    let waiting = tokio::spawn({
        let service = Arc::clone(&service);
        async move { service.access_token(Duration::from_secs(60)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(provider.requests(), [], "nothing is sent while another renewal may be under way");
    drop(held);
    let token = waiting.await.unwrap().unwrap();
    assert_eq!(token.secret(), "a2");
    assert_eq!(provider.requests(), [refresh_request()]);
}
