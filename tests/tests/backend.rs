//! The backend against the real demo provider and the real Secret Service, with no window: the service is
//! driven through the same methods the window and tray call, and the scripted user agent plays the browser.
//!
//! Run by the README's test command, which provides an unlocked gnome-keyring under a private D-Bus session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

use std::sync::{Arc, Mutex};

use gatehouse_lib::config::Config;
use gatehouse_lib::service::{Gatehouse, Shell};
use gatehouse_lib::state::{AuthView, Phase};
use gatehouse_lib::tokens::keychain::Keychain;
use harness::idp::Idp;
use harness::user_agent::{self, Decision};
use harness::{artifacts_dir, keyring, sha256_hex};
use url::Url;

/// Records the URLs Gatehouse asks the desktop to open; the test then plays the browser.
#[derive(Default)]
struct RecordingShell {
    opened: Mutex<Vec<Url>>,
}

struct SharedShell(Arc<RecordingShell>);

impl Shell for SharedShell {
    fn open_browser(&self, url: &Url) -> Result<(), String> {
        self.0.opened.lock().map_err(|e| e.to_string())?.push(url.clone());
        Ok(())
    }

    fn publish(&self, _view: &AuthView) {}
}

impl RecordingShell {
    fn last_opened(&self) -> Url {
        self.opened.lock().unwrap().last().cloned().expect("the browser was never opened")
    }
}

fn start_service(idp: &Idp, profile: &str) -> (Arc<Gatehouse>, Arc<RecordingShell>) {
    let shell = Arc::new(RecordingShell::default());
    let config = Config::parse(&idp.profile_toml(profile), "test profile");
    let service = Gatehouse::new(config, Keychain::new(keyring::SERVICE), SharedShell(shell.clone())).unwrap();
    (service, shell)
}

fn stored_token(profile: &str, field: &str) -> String {
    let session = keyring::session(profile).unwrap_or_else(|| panic!("no keychain entry for {profile}"));
    session[field].as_str().unwrap_or_else(|| panic!("keychain entry has no {field}")).to_owned()
}

async fn sign_in(service: &Arc<Gatehouse>, shell: &RecordingShell, login: &str) -> String {
    service.sign_in().await.unwrap();
    assert_eq!(service.view().phase, Phase::WaitingForBrowser);
    let redirect = user_agent::authorize(shell.last_opened().as_str(), login, Decision::Approve).await.unwrap();
    service.handle_callback(&redirect).await;
    redirect
}

#[tokio::test]
async fn sign_in_refresh_restart_and_sign_out_against_the_real_provider_and_keychain() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp.log"));
    let profile = "backend-full";
    let (service, shell) = start_service(&idp, profile);
    service.start(Vec::new()).await;
    assert_eq!(service.view().phase, Phase::SignedOut);
    assert!(keyring::lookup(profile).is_none());

    // The authorization request is the code flow with PKCE S256, state and nonce.
    service.sign_in().await.unwrap();
    let authorize = shell.last_opened();
    let params: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["redirect_uri"], "com.example.gatehouse:/callback");
    assert!(params["state"].len() >= 43 && params["nonce"].len() >= 43);

    // Sign in: tokens land in the keychain, the resource is fetched with them.
    let redirect = user_agent::authorize(authorize.as_str(), "alice", Decision::Approve).await.unwrap();
    assert!(redirect.contains("iss="), "RFC 9207 iss expected in {redirect}");
    service.handle_callback(&redirect).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert_eq!(view.account.as_ref().and_then(|a| a.name.as_deref()), Some("Alice"));
    assert_eq!(view.resource.as_ref().unwrap()["greeting"], "Hello, Alice!");
    assert!(
        view.scopes.contains(&"openid".to_string()) && view.scopes.contains(&"profile".to_string()),
        "{:?}",
        view.scopes
    );
    let access_1 = stored_token(profile, "access_token");
    let refresh_1 = stored_token(profile, "refresh_token");
    assert_eq!(keyring::count_entries(profile), 1);
    let served = idp.events_named("resource.served", None).await;
    assert_eq!(served.last().unwrap()["tokenSha256"], sha256_hex(&access_1));

    // The view never carries a token.
    let view_json = serde_json::to_string(&service.view()).unwrap();
    assert!(!view_json.contains(&access_1) && !view_json.contains(&refresh_1));

    // Replaying the same redirect is rejected and changes nothing.
    service.handle_callback(&redirect).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn);
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("callback_rejected"));
    assert_eq!(stored_token(profile, "refresh_token"), refresh_1);

    // Refresh rotates the refresh token; the new one is stored, the old one is dead at the server.
    service.refresh().await.unwrap();
    let access_2 = stored_token(profile, "access_token");
    let refresh_2 = stored_token(profile, "refresh_token");
    assert_ne!(refresh_2, refresh_1);
    assert_ne!(access_2, access_1);
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1);
    let served = idp.events_named("resource.served", None).await;
    assert_eq!(served.last().unwrap()["tokenSha256"], sha256_hex(&access_2));
    assert_eq!(idp.introspect(&refresh_1).await["active"], false);
    assert_eq!(idp.introspect(&refresh_2).await["active"], true);

    // Restart: a new instance restores the session from the keychain, no browser involved.
    let (restarted, restarted_shell) = start_service(&idp, profile);
    restarted.start(Vec::new()).await;
    let view = restarted.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert_eq!(view.account.as_ref().and_then(|a| a.name.as_deref()), Some("Alice"));
    assert_eq!(view.resource.as_ref().unwrap()["greeting"], "Hello, Alice!");
    assert!(restarted_shell.opened.lock().unwrap().is_empty());
    drop(restarted);

    // Sign out revokes at the provider and empties the keychain.
    service.sign_out().await.unwrap();
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    assert!(view.account.is_none());
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("signed_out"), "{:?}", view.notice);
    assert!(keyring::lookup(profile).is_none());
    assert_eq!(idp.introspect(&refresh_2).await["active"], false);
    let (status, body) = idp.try_refresh(&refresh_2).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn provider_down_keeps_the_session_and_refresh_recovers() {
    keyring::require_secret_service();
    let mut idp = Idp::start(&artifacts_dir("backend").join("idp-down.log"));
    let profile = "backend-outage";
    let (service, shell) = start_service(&idp, profile);
    service.start(Vec::new()).await;
    sign_in(&service, &shell, "bob").await;
    assert_eq!(service.view().phase, Phase::SignedIn);
    let refresh_token = stored_token(profile, "refresh_token");

    idp.stop();
    let error = service.refresh().await.unwrap_err();
    assert_eq!(error.kind(), "network");
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn);
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("network"));
    assert_eq!(stored_token(profile, "refresh_token"), refresh_token, "a network failure must keep the session");

    idp.restart();
    service.refresh().await.unwrap();
    assert_eq!(service.view().phase, Phase::SignedIn);
    assert!(service.view().notice.is_none());
    assert_ne!(stored_token(profile, "refresh_token"), refresh_token);
}

#[tokio::test]
async fn a_session_ended_at_the_provider_signs_out_with_a_message() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp-ended.log"));
    let profile = "backend-ended";
    let (service, shell) = start_service(&idp, profile);
    service.start(Vec::new()).await;
    sign_in(&service, &shell, "dave").await;
    // Someone else uses the refresh token first: it rotates at the provider, so Gatehouse's copy is stale
    // and using it is a replay, which ends the grant (RFC 9700 §4.14.2).
    let (status, _) = idp.try_refresh(&stored_token(profile, "refresh_token")).await;
    assert_eq!(status, 200);
    let error = service.refresh().await.unwrap_err();
    assert_eq!(error.kind(), "session_ended");
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("session_ended"));
    assert!(keyring::lookup(profile).is_none());
}

#[tokio::test]
async fn denied_consent_and_forged_links_are_reported_and_change_nothing() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp-denied.log"));
    let profile = "backend-denied";
    let (service, shell) = start_service(&idp, profile);
    service.start(Vec::new()).await;

    service.sign_in().await.unwrap();
    let denied = user_agent::authorize(shell.last_opened().as_str(), "carol", Decision::Deny).await.unwrap();
    assert!(denied.contains("error=access_denied"), "{denied}");
    service.handle_callback(&denied).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("access_denied"));
    assert!(keyring::lookup(profile).is_none());

    // A forged link while a real sign-in waits is rejected, and the real sign-in still completes.
    service.sign_in().await.unwrap();
    let real = user_agent::authorize(shell.last_opened().as_str(), "carol", Decision::Approve).await.unwrap();
    let forged = format!("com.example.gatehouse:/callback?code=forged&state=forged&iss={}", idp.issuer());
    service.handle_callback(&forged).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::WaitingForBrowser);
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("callback_rejected"));
    service.handle_callback(&real).await;
    assert_eq!(service.view().phase, Phase::SignedIn);
    assert_eq!(service.view().account.and_then(|a| a.name).as_deref(), Some("Carol"));

    // A callback for a cancelled sign-in is rejected.
    service.sign_out().await.unwrap();
    service.sign_in().await.unwrap();
    let late = user_agent::authorize(shell.last_opened().as_str(), "carol", Decision::Approve).await.unwrap();
    service.cancel_sign_in().await.unwrap();
    assert_eq!(service.view().phase, Phase::SignedOut);
    service.handle_callback(&late).await;
    assert_eq!(service.view().phase, Phase::SignedOut);
    assert!(keyring::lookup(profile).is_none());
    // The code was never exchanged.
    let exchanges = idp.events_named("grant.success", Some("authorization_code")).await.len();
    assert_eq!(exchanges, 1);
}
