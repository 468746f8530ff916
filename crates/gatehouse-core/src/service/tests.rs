//! The service through keyring-core's in-memory store instead of the platform's keychain: what it does with what
//! the keychain holds, where nothing reaches a provider, so no network is needed either.

use std::sync::Arc;

use keyring_core::CredentialStore;

use super::*;
use crate::tokens::Account;

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

/// The service of profile `name`, and the views it published.
fn service(name: &str) -> (Arc<ProfileService>, Arc<Mutex<Vec<AuthView>>>) {
    let config = Config::parse(&format!("profile = \"{name}\"\n{PROFILE}"), "test");
    let seen: Arc<Mutex<Vec<AuthView>>> = Arc::default();
    let views = Arc::clone(&seen);
    let publish = Box::new(move |view: &AuthView| views.lock().unwrap_or_else(|p| p.into_inner()).push(view.clone()));
    let service = ProfileService::new(config, keychain(), NoDesktop, publish).unwrap_or_else(|e| panic!("{e}"));
    (service, seen)
}

/// A session another provider issued, stored under `profile`.
async fn foreign_session(profile: &str) -> StoredSession {
    let other = Config::parse(&PROFILE.replace("id.example.com", "other.example.com"), "other").unwrap();
    let session = StoredSession {
        v: crate::tokens::FORMAT_VERSION,
        binding: Some(Binding::of(&other)),
        access_token: Some(AccessToken::new("theirs".into())),
        refresh_token: Some(RefreshToken::new("their-refresh".into())),
        expires_at: Some(unix_now() + 3600),
        scopes: vec!["openid".into()],
        account: Account { subject: Some("mallory".into()), name: None, login: None },
        dpop_key: None,
        bearer_access: false,
        lifetime: Some(3600),
        grant: Some("g".into()),
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
