//! Faults a real provider will not produce on demand (garbage, server errors, requests that never finish),
//! injected by a proxy in front of the real demo provider. Each must end in a typed error in the view, and none
//! may cost the stored session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

use std::sync::{Arc, Mutex};

use gatehouse_lib::config::Config;
use gatehouse_lib::service::{Gatehouse, Shell};
use gatehouse_lib::state::{AuthView, Phase};
use gatehouse_lib::tokens::keychain::Keychain;
use harness::faults::{Fault, FaultProxy};
use harness::idp::Idp;
use harness::user_agent::{self, Decision};
use harness::{artifacts_dir, keyring};
use url::Url;

struct Browser(Arc<Mutex<Vec<Url>>>);

impl Shell for Browser {
    fn open_browser(&self, url: &Url) -> Result<(), String> {
        self.0.lock().unwrap().push(url.clone());
        Ok(())
    }

    fn publish(&self, _view: &AuthView) {}
}

/// The demo profile with its token, revocation and resource calls going through `proxy`; the browser talks
/// to the provider directly.
fn profile(idp: &Idp, proxy: &FaultProxy, profile: &str) -> String {
    let (issuer, proxy) = (idp.issuer(), proxy.url());
    let through_proxy =
        idp.profile_toml(profile).replace(&format!("{issuer}/api/resource"), &format!("{proxy}/api/resource"));
    format!(
        "{through_proxy}authorization_endpoint = \"{issuer}/auth\"\ntoken_endpoint = \"{proxy}/token\"\n\
         revocation_endpoint = \"{proxy}/token/revocation\"\nhttp_timeout_secs = 2\n"
    )
}

async fn setup(name: &str) -> (Idp, FaultProxy, Arc<Gatehouse>, Arc<Mutex<Vec<Url>>>) {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("faults").join(format!("{name}.log")));
    let proxy = FaultProxy::start(idp.issuer()).await;
    let (service, opened) = launch(&idp, &proxy, name).await;
    (idp, proxy, service, opened)
}

/// Starts a service for the profile, as a launch of the app does.
async fn launch(idp: &Idp, proxy: &FaultProxy, name: &str) -> (Arc<Gatehouse>, Arc<Mutex<Vec<Url>>>) {
    let opened = Arc::new(Mutex::new(Vec::new()));
    let config = Config::parse(&profile(idp, proxy, name), "fault profile");
    let service = Gatehouse::new(config, Keychain::new(keyring::SERVICE), Browser(opened.clone())).unwrap();
    service.start(Vec::new()).await;
    (service, opened)
}

async fn browse(service: &Gatehouse, opened: &Mutex<Vec<Url>>) {
    let url = opened.lock().unwrap().last().cloned().unwrap();
    let redirect = user_agent::authorize(url.as_str(), "erin", Decision::Approve).await.unwrap();
    service.handle_callback(&redirect).await;
}

fn notice_kind(service: &Gatehouse) -> Option<String> {
    service.view().notice.map(|n| n.kind)
}

#[tokio::test]
async fn token_endpoint_faults_during_refresh_keep_the_session() {
    let (_idp, proxy, service, opened) = setup("faults-refresh").await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    let stored = keyring::lookup("faults-refresh").unwrap();

    for (fault, kind) in
        [(Fault::Garbage, "bad_response"), (Fault::ServerError, "bad_response"), (Fault::Hang, "network")]
    {
        proxy.inject(fault, &["/token"]);
        let error = service.refresh().await.unwrap_err();
        assert_eq!(error.kind(), kind, "{fault:?}: {error}");
        let view = service.view();
        assert_eq!(view.phase, Phase::SignedIn, "{fault:?}");
        assert_eq!(notice_kind(&service).as_deref(), Some(kind), "{fault:?}");
        assert!(view.account.is_some(), "{fault:?}: the account must stay on screen");
        assert_eq!(keyring::lookup("faults-refresh").unwrap(), stored, "{fault:?}: the stored session must be kept");
    }

    // Garbage from the resource is reported too, and the session stays.
    proxy.inject(Fault::Garbage, &["/api/resource"]);
    assert_eq!(service.refresh().await.unwrap_err().kind(), "bad_response");
    assert_eq!(service.view().phase, Phase::SignedIn);

    // When the provider is itself again, Refresh works with the same session.
    proxy.inject(Fault::PassThrough, &[]);
    service.refresh().await.unwrap();
    assert!(service.view().notice.is_none());
    assert_ne!(keyring::lookup("faults-refresh").unwrap(), stored, "the refresh must rotate and store");
    service.sign_out().await.unwrap();
}

#[tokio::test]
async fn a_failed_code_exchange_is_reported_and_never_retried() {
    let (idp, proxy, service, opened) = setup("faults-exchange").await;
    proxy.inject(Fault::ServerError, &["/token"]);
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    assert_eq!(notice_kind(&service).as_deref(), Some("bad_response"));
    assert!(keyring::lookup("faults-exchange").is_none());
    // RFC 9700 §4.2.4: one attempt at the code, no blind retry.
    assert_eq!(proxy.requests("/token"), 1);
    assert!(idp.events_named("grant.success", Some("authorization_code")).await.is_empty());

    // A timeout is a network error, with the same rules.
    proxy.inject(Fault::Hang, &["/token"]);
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(notice_kind(&service).as_deref(), Some("network"));
    assert_eq!(proxy.requests("/token"), 2);
    assert_eq!(service.view().phase, Phase::SignedOut);
}

#[tokio::test]
async fn a_401_from_the_resource_refreshes_once_and_retries_once() {
    let (idp, proxy, service, opened) = setup("faults-401").await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn);
    drop(service);

    // One 401 at launch: Gatehouse refreshes once, retries once, and shows the resource.
    let calls = proxy.requests("/api/resource");
    proxy.inject_times(Fault::Unauthorized, &["/api/resource"], Some(1));
    let (restarted, _) = launch(&idp, &proxy, "faults-401").await;
    let view = restarted.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert!(view.notice.is_none(), "{:?}", view.notice);
    assert_eq!(view.resource.unwrap()["greeting"], "Hello, Erin!");
    assert_eq!(proxy.requests("/api/resource"), calls + 2);
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 1);
    drop(restarted);

    // A resource that refuses even a fresh token: one refresh, one retry, then a clear error. No loop, and
    // the session is kept.
    proxy.inject(Fault::Unauthorized, &["/api/resource"]);
    let (again, _) = launch(&idp, &proxy, "faults-401").await;
    assert_eq!(again.view().phase, Phase::SignedIn);
    assert_eq!(notice_kind(&again).as_deref(), Some("bad_response"));
    assert_eq!(proxy.requests("/api/resource"), calls + 4);
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 2);
    assert!(keyring::lookup("faults-401").is_some());
    proxy.inject(Fault::PassThrough, &[]);
    again.sign_out().await.unwrap();
}
