//! Faults a real provider will not produce on demand (garbage, server errors, requests that never finish),
//! injected by a proxy in front of the real demo provider. Each must end in a typed error in the view, and none
//! may cost the stored session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

mod common;

use std::sync::Arc;

use common::{notice_kind, Browser};
use gatehouse_core::service::ProfileService;
use gatehouse_core::state::Phase;
use harness::faults::{Fault, FaultProxy};
use harness::idp::Idp;
use harness::user_agent::Decision;
use harness::{artifacts_dir, keyring, sha256_hex};

/// The demo profile, signing in as `client_id`, with its token, revocation and resource calls going through
/// `proxy`; the browser talks to the provider directly.
fn profile_for(idp: &Idp, proxy: &FaultProxy, profile: &str, client_id: &str) -> String {
    let (issuer, proxy) = (idp.issuer(), proxy.url());
    let through_proxy = idp
        .profile_toml_for(profile, client_id)
        .replace(&format!("{issuer}/api/resource"), &format!("{proxy}/api/resource"));
    format!(
        "{through_proxy}authorization_endpoint = \"{issuer}/auth\"\ntoken_endpoint = \"{proxy}/token\"\n\
         revocation_endpoint = \"{proxy}/token/revocation\"\njwks_uri = \"{proxy}/jwks\"\nhttp_timeout_secs = 2\n"
    )
}

async fn setup(name: &str) -> (Idp, FaultProxy, Arc<ProfileService>, Arc<Browser>) {
    setup_for(name, harness::idp::CLIENT_ID).await
}

async fn setup_for(name: &str, client_id: &str) -> (Idp, FaultProxy, Arc<ProfileService>, Arc<Browser>) {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("faults").join(format!("{name}.log")));
    let proxy = FaultProxy::start(idp.issuer()).await;
    let (service, opened) = launch_as(&idp, &proxy, name, client_id).await;
    (idp, proxy, service, opened)
}

/// Starts a service for the profile, as a launch of the app does.
async fn launch(idp: &Idp, proxy: &FaultProxy, name: &str) -> (Arc<ProfileService>, Arc<Browser>) {
    launch_as(idp, proxy, name, harness::idp::CLIENT_ID).await
}

async fn launch_as(idp: &Idp, proxy: &FaultProxy, name: &str, client_id: &str) -> (Arc<ProfileService>, Arc<Browser>) {
    let (service, browser) = common::service(&profile_for(idp, proxy, name, client_id));
    service.start(Vec::new()).await;
    (service, browser)
}

async fn browse(service: &ProfileService, browser: &Browser) {
    service.handle_callback(&browser.answer("erin", Decision::Approve).await).await;
}

#[tokio::test]
async fn token_endpoint_faults_during_refresh_keep_the_session() {
    let (idp, proxy, service, opened) = setup("faults-refresh").await;
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

    // Garbage from the resource is reported too, and the session stays. (The token endpoint was fine, so the
    // refresh before it did rotate and store.)
    proxy.inject(Fault::Garbage, &["/api/resource"]);
    assert_eq!(service.refresh().await.unwrap_err().kind(), "bad_response");
    assert_eq!(service.view().phase, Phase::SignedIn);
    assert_eq!(
        sha256_hex(&keyring::stored("faults-refresh", "refresh_token")),
        last_issued_refresh_token_hash(&idp).await
    );

    // When the provider is itself again, Refresh works with the same session, and stores what it was given.
    proxy.inject(Fault::PassThrough, &[]);
    let before = keyring::lookup("faults-refresh").unwrap();
    let refreshes = idp.events_named("grant.success", Some("refresh_token")).await.len();
    service.refresh().await.unwrap();
    assert!(service.view().notice.is_none());
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), refreshes + 1);
    assert_ne!(keyring::lookup("faults-refresh").unwrap(), before, "the refresh must rotate and store");
    assert_eq!(
        sha256_hex(&keyring::stored("faults-refresh", "refresh_token")),
        last_issued_refresh_token_hash(&idp).await
    );
    service.sign_out().await.unwrap();
}

async fn last_issued_refresh_token_hash(idp: &Idp) -> String {
    let issued = idp.events_named("grant.success", None).await;
    issued.iter().rev().find_map(|e| e["refresh_token_sha256"].as_str().map(str::to_owned)).unwrap()
}

#[tokio::test]
async fn a_failed_code_exchange_is_reported_and_never_retried() {
    let (idp, proxy, service, opened) = setup("faults-exchange").await;
    // The provider exchanges the code, but its answer is lost on the way: a 500 arrives instead.
    proxy.inject(Fault::ForwardThenFail, &["/token"]);
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    assert_eq!(notice_kind(&service).as_deref(), Some("bad_response"));
    assert!(keyring::lookup("faults-exchange").is_none());
    // RFC 9700 §4.2.4: one attempt at the code, no blind retry. The provider saw the code exactly once: a
    // second try would show as a second request here and as a replayed code (grant.error) there.
    assert_eq!(proxy.requests("/token"), 1);
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1);
    assert!(idp.refused_grants().await.is_empty());

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

/// RFC 9700 §4.14.2: a rotated refresh token is in the keychain before the new access token is first used.
/// The proxy reads the keychain at the moment the resource is asked for.
#[tokio::test]
async fn the_rotated_refresh_token_is_stored_before_the_new_access_token_is_used() {
    let (idp, proxy, service, opened) = setup("faults-persist-first").await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);

    proxy.snapshot_keychain_on("/api/resource", "faults-persist-first");
    service.refresh().await.unwrap();
    let refreshed = idp.events_named("grant.success", Some("refresh_token")).await;
    assert_eq!(refreshed.len(), 1);
    let new_refresh = refreshed[0]["refresh_token_sha256"].as_str().unwrap();
    let new_access = refreshed[0]["access_token_sha256"].as_str().unwrap();
    let served = idp.events_named("resource.served", None).await;
    assert_eq!(served.last().unwrap()["tokenSha256"], new_access, "the resource must get the new access token");

    let snapshots = proxy.keychain_snapshots();
    assert_eq!(snapshots.len(), 1);
    let at_first_use: serde_json::Value = serde_json::from_str(snapshots[0].as_deref().unwrap()).unwrap();
    assert_eq!(sha256_hex(at_first_use["refresh_token"].as_str().unwrap()), new_refresh);
    assert_eq!(sha256_hex(at_first_use["access_token"].as_str().unwrap()), new_access);
    service.sign_out().await.unwrap();
}

/// No token response is read past 1 MiB, however valid: the same cap as every other answer.
#[tokio::test]
async fn an_oversized_token_response_is_refused_and_the_session_kept() {
    let (_idp, proxy, service, opened) = setup("faults-oversized").await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    let stored = keyring::lookup("faults-oversized").unwrap();

    proxy.inject(Fault::Oversized, &["/token"]);
    let error = service.refresh().await.unwrap_err();
    assert_eq!(error.kind(), "bad_response", "{error}");
    assert!(error.to_string().contains("too large"), "{error}");
    assert_eq!(service.view().phase, Phase::SignedIn);
    assert_eq!(keyring::lookup("faults-oversized").unwrap(), stored);
}

/// OIDC Core §3.1.3.7: an ID token whose signature doesn't verify is refused, nothing is kept, and the tokens
/// that came with it are revoked. So is one that verifies, with a key the provider publishes, but whose nonce
/// or issuer is not this sign-in's.
#[tokio::test]
async fn id_tokens_with_a_bad_signature_or_forged_claims_are_refused() {
    let (idp, proxy, service, opened) = setup("faults-id-token").await;
    for (fault, says) in [
        (Fault::ForgeIdTokenClaim("sub", "mallory"), "signature"),
        (Fault::ResignIdTokenClaim("nonce", "forged-nonce"), "nonce"),
        (Fault::ResignIdTokenClaim("iss", "https://evil.example"), "another issuer"),
    ] {
        proxy.inject(fault, &["/token"]);
        service.sign_in().await.unwrap();
        browse(&service, &opened).await;
        let view = service.view();
        assert_eq!(view.phase, Phase::SignedOut, "{fault:?}");
        let notice = view.notice.unwrap();
        assert_eq!(notice.kind, "bad_response", "{fault:?}");
        assert!(notice.message.contains(says), "{fault:?}: {}", notice.message);
        assert!(keyring::lookup("faults-id-token").is_none(), "{fault:?}");
    }
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 3);
    let revoked = idp.events_named("grant.revoked", None).await.len();
    assert_eq!(revoked, 3, "the grants that came with a refused ID token must be revoked");

    // The same proxy re-signing a true token is accepted: the test's key is trusted, only the lies are not.
    proxy.inject(Fault::ResignIdTokenClaim("name", "Erin (re-signed)"), &["/token"]);
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    assert_eq!(service.view().account.and_then(|a| a.name).as_deref(), Some("Erin (re-signed)"));
    service.sign_out().await.unwrap();
}

/// OIDC Core §10.1.1: providers rotate keys. A token signed with a key the cached JWK Set lacks makes
/// Gatehouse fetch the set once more, and no more; a key nobody published is refused.
#[tokio::test]
async fn an_unknown_kid_refetches_the_keys_once_then_is_refused() {
    let (_idp, proxy, service, opened) = setup("faults-unknown-kid").await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    assert_eq!(proxy.requests("/jwks"), 1);
    service.sign_out().await.unwrap();

    proxy.inject(Fault::UnknownKid, &["/token"]);
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    let notice = service.view().notice.unwrap();
    assert!(notice.message.contains("doesn't publish"), "{}", notice.message);
    assert_eq!(service.view().phase, Phase::SignedOut);
    assert_eq!(proxy.requests("/jwks"), 2, "one refetch for the unknown key, no more");

    // Known keys are not fetched again.
    proxy.inject(Fault::PassThrough, &[]);
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    assert_eq!(proxy.requests("/jwks"), 2);
    service.sign_out().await.unwrap();
}

/// Without a refresh token, Refresh reloads the data with the access token while it works, and keeps the
/// session. When the resource refuses the token, the session ends with a request to sign in again, after
/// the token is revoked.
#[tokio::test]
async fn without_a_refresh_token_a_session_lasts_as_long_as_its_access_token() {
    let (idp, proxy, service, opened) = setup_for("faults-no-refresh", harness::idp::NO_REFRESH_CLIENT_ID).await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert!(!view.renewable, "the window must know Refresh can only reload");
    let stored = keyring::session("faults-no-refresh").unwrap();
    assert!(stored.get("refresh_token").is_none(), "{stored}");
    let access = stored["access_token"].as_str().unwrap().to_owned();

    let served = idp.events_named("resource.served", None).await.len();
    service.refresh().await.unwrap();
    assert_eq!(service.view().phase, Phase::SignedIn);
    assert!(service.view().notice.is_none(), "{:?}", service.view().notice);
    assert_eq!(idp.events_named("resource.served", None).await.len(), served + 1, "Refresh must reload the data");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty());
    assert_eq!(keyring::session("faults-no-refresh").unwrap(), stored, "the session must be kept as it is");

    // The resource refuses the token: nothing can renew it.
    proxy.inject(Fault::Unauthorized, &["/api/resource"]);
    let error = service.refresh().await.unwrap_err();
    assert_eq!(error.kind(), "sign_in_needed");
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    assert_eq!(notice_kind(&service).as_deref(), Some("sign_in_needed"));
    assert!(keyring::lookup("faults-no-refresh").is_none());
    assert_eq!(idp.introspect(&access).await["active"], false, "the access token must be revoked first");
    assert_eq!(proxy.requests("/token/revocation"), 1);
}

/// GitHub answers token errors with HTTP 200 and an `error` field. They are still typed errors: a refused code
/// says what the provider said, and `invalid_grant` on refresh ends the session.
#[tokio::test]
async fn token_errors_sent_with_http_200_are_typed_errors() {
    let (_idp, proxy, service, opened) = setup("faults-error-200").await;
    proxy.inject(Fault::ErrorAs200("bad_verification_code"), &["/token"]);
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    let notice = service.view().notice.unwrap();
    assert_eq!(notice.kind, "token_request_failed");
    assert!(notice.message.contains("bad_verification_code"), "{}", notice.message);
    assert!(keyring::lookup("faults-error-200").is_none());

    proxy.inject(Fault::PassThrough, &[]);
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    proxy.inject(Fault::ErrorAs200("invalid_grant"), &["/token"]);
    assert_eq!(service.refresh().await.unwrap_err().kind(), "session_ended");
    assert_eq!(service.view().phase, Phase::SignedOut);
    assert!(keyring::lookup("faults-error-200").is_none());
}

/// Some servers refuse revocation from a public client (HTTP 401), although RFC 7009 §5 allows it. Sign out
/// still signs out here, and names the refusal plainly instead of suggesting a retry.
#[tokio::test]
async fn a_refused_revocation_is_named_plainly() {
    let (_idp, proxy, service, opened) = setup("faults-revocation-refused").await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    proxy.inject(Fault::Unauthorized, &["/token/revocation"]);
    service.sign_out().await.unwrap();
    let notice = service.view().notice.unwrap();
    assert_eq!(notice.kind, "revocation_refused");
    assert!(notice.message.contains("refuses") && notice.message.contains("provider's website"), "{}", notice.message);
    assert!(!notice.message.contains("try again"), "{}", notice.message);
    assert_eq!(service.view().phase, Phase::SignedOut);
    assert!(keyring::lookup("faults-revocation-refused").is_none());
}

/// Pushed authorization requests (RFC 9126) that fail: a server error, an answer without a `request_uri`, and
/// the provider's own refusal. Each is a typed error, no browser opens, and nothing is left waiting; once the
/// endpoint works again, the browser gets only `client_id` and `request_uri`, and the sign-in completes.
#[tokio::test]
async fn a_failed_pushed_authorization_request_opens_no_browser_and_leaves_nothing_waiting() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("faults").join("par.log"));
    let proxy = FaultProxy::start(idp.issuer()).await;
    let profile = "faults-par";
    let toml = format!(
        "{}pushed_authorization_request_endpoint = \"{}/request\"\n",
        profile_for(&idp, &proxy, profile, harness::idp::CLIENT_ID),
        proxy.url()
    );
    let (service, browser) = common::service(&toml);
    service.start(Vec::new()).await;
    for (fault, kind) in [
        (Fault::ServerError, "bad_response"),
        (Fault::Garbage, "bad_response"),
        (Fault::ErrorAs200("invalid_request"), "bad_response"),
    ] {
        proxy.inject(fault, &["/request"]);
        let error = service.sign_in().await.unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        assert_eq!(notice_kind(&service).as_deref(), Some(kind));
        assert_eq!(browser.times_opened(), 0, "no browser without a pushed request");
        assert_eq!(service.view().phase, Phase::SignedOut);
    }
    // The provider's own refusal (RFC 9126 §2.3), here of a request it can't take: named with its error code.
    proxy.inject(Fault::PassThrough, &["/request"]);
    let refused = format!(
        "{}pushed_authorization_request_endpoint = \"{}/request\"\n",
        profile_for(&idp, &proxy, "faults-par-refused", "no-such-client"),
        proxy.url()
    );
    let (stranger, strangers_browser) = common::service(&refused);
    stranger.start(Vec::new()).await;
    let error = stranger.sign_in().await.unwrap_err();
    assert_eq!(error.kind(), "authorization_failed", "{error}");
    assert!(error.to_string().contains("invalid_client"), "{error}");
    assert_eq!(strangers_browser.times_opened(), 0);

    service.sign_in().await.unwrap();
    let opened = browser.last_opened();
    let names: Vec<String> = opened.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(names, ["client_id", "response_type", "scope", "request_uri"], "{opened}");
    assert_eq!(proxy.requests("/request"), 5);
    browse(&service, &browser).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    service.sign_out().await.unwrap();
}

/// Twitch's `scope` array, Rancher's missing `token_type` and GoToSocial's `expires_in: 0`, all at once, on the
/// code exchange and on every refresh: the sign-in completes, nothing is revoked, the token is used until the
/// resource refuses it, and each rotated refresh token is the one stored (the next refresh works with it).
#[tokio::test]
async fn quirky_token_responses_sign_in_and_keep_each_rotated_refresh_token() {
    fn quirky(body: &mut serde_json::Value) {
        if let Some(scope) = body["scope"].as_str() {
            body["scope"] = scope.split(' ').collect::<Vec<_>>().into();
        }
        if let Some(fields) = body.as_object_mut() {
            fields.remove("token_type");
        }
        body["expires_in"] = 0.into();
    }
    let (idp, proxy, service, opened) = setup("faults-quirky").await;
    proxy.inject(Fault::Rewrite(quirky), &["/token"]);
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert!(view.notice.is_none(), "{:?}", view.notice);
    assert_eq!(view.scopes, ["openid", "profile", "offline_access"]);
    assert!(view.not_granted.is_empty());
    assert_eq!(view.expires_at, None, "expires_in 0 is no stated lifetime");
    assert!(view.resource.is_some(), "the resource takes the token");
    let stored = keyring::session("faults-quirky").unwrap();
    assert!(stored.get("expires_at").is_none(), "{stored}");
    assert!(idp.events_named("grant.revoked", None).await.is_empty(), "nothing may be revoked");

    for round in 1..=2 {
        service.refresh().await.unwrap_or_else(|e| panic!("refresh {round}: {e}"));
        assert_eq!(
            sha256_hex(&keyring::stored("faults-quirky", "refresh_token")),
            last_issued_refresh_token_hash(&idp).await
        );
    }
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 2);
    assert!(idp.refused_grants().await.is_empty(), "{:?}", idp.refused_grants().await);
    service.sign_out().await.unwrap();
}

/// A token response is read by what it is, not by its labels: tokens answered with 201 and `text/plain` are
/// tokens, and an error answered with 200 or 500 is that error. An answer that issued tokens Gatehouse can't use
/// (a `mac` token, RFC 6749 §7.1) is refused naming the field, and what it issued is revoked.
#[tokio::test]
async fn token_responses_are_read_by_what_they_are_and_unusable_grants_revoked() {
    let (idp, proxy, service, opened) = setup("faults-labels").await;
    proxy.inject(Fault::Relabel(201, "text/plain; charset=utf-8"), &["/token"]);
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    service.refresh().await.unwrap();
    assert_eq!(
        sha256_hex(&keyring::stored("faults-labels", "refresh_token")),
        last_issued_refresh_token_hash(&idp).await
    );

    for status in [200, 201, 500] {
        proxy.inject(Fault::ErrorWithStatus(status, "temporarily_unavailable"), &["/token"]);
        let error = service.refresh().await.unwrap_err();
        assert_eq!(error.kind(), "token_request_failed", "{status}: {error}");
        assert!(error.to_string().contains("temporarily_unavailable"), "{error}");
        assert_eq!(service.view().phase, Phase::SignedIn);
    }
    proxy.inject(Fault::PassThrough, &[]);
    service.sign_out().await.unwrap();

    fn mac(body: &mut serde_json::Value) {
        body["token_type"] = "mac".into();
    }
    proxy.inject(Fault::Rewrite(mac), &["/token"]);
    let revoked = idp.events_named("grant.revoked", None).await.len();
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    let notice = view.notice.unwrap();
    assert_eq!(notice.kind, "bad_response");
    assert!(notice.message.contains("token_type") && notice.message.contains("mac"), "{}", notice.message);
    assert!(keyring::lookup("faults-labels").is_none());
    assert_eq!(idp.events_named("grant.revoked", None).await.len(), revoked + 1, "the unusable grant is revoked");
}

/// GitHub Apps answer a dead refresh token with `200 {"error":"bad_refresh_token"}`. With the code listed
/// (the github preset lists it), the session ends and its entry goes, as with `invalid_grant`; without it, the
/// error is a provider error and the session stays.
#[tokio::test]
async fn a_providers_own_word_for_a_dead_refresh_token_ends_the_session() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("faults").join("faults-dead-refresh.log"));
    let proxy = FaultProxy::start(idp.issuer()).await;
    let listed = format!(
        "{}session_ended_errors = [\"bad_refresh_token\"]\n",
        profile_for(&idp, &proxy, "faults-dead-refresh", harness::idp::CLIENT_ID)
    );
    let (service, opened) = common::service(&listed);
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    proxy.inject(Fault::ErrorAs200("bad_refresh_token"), &["/token"]);
    let error = service.refresh().await.unwrap_err();
    assert_eq!(error.kind(), "session_ended", "{error}");
    assert_eq!(gatehouse_cli::exit_code(&error), 3);
    assert_eq!(service.view().phase, Phase::SignedOut);
    assert!(keyring::lookup("faults-dead-refresh").is_none(), "the dead session is removed");

    // Not listed: a provider error like any other, and the session is kept.
    proxy.inject(Fault::PassThrough, &[]);
    let (service, opened) = launch(&idp, &proxy, "faults-dead-refresh-unlisted").await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    proxy.inject(Fault::ErrorAs200("bad_refresh_token"), &["/token"]);
    assert_eq!(service.refresh().await.unwrap_err().kind(), "token_request_failed");
    assert!(keyring::lookup("faults-dead-refresh-unlisted").is_some());
    proxy.inject(Fault::PassThrough, &[]);
    service.sign_out().await.unwrap();
}

/// RFC 9449 §9: a resource that asks for a new DPoP nonce on every request never gets its 401 read as a refused
/// token: no refresh grant is spent on it, and the window says what is wrong.
#[tokio::test]
async fn a_resource_that_keeps_asking_for_a_nonce_costs_no_refresh_grant() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("faults").join("faults-rotating-nonce.log"));
    let proxy = FaultProxy::start(idp.issuer()).await;
    // The provider found by discovery (DPoP on), with only the resource behind the proxy, which answers it.
    let issuer = idp.issuer();
    let toml = idp
        .profile_toml("faults-rotating-nonce")
        .replace(&format!("{issuer}/api/resource"), &format!("{}/api/resource", proxy.url()));
    proxy.inject(Fault::RotatingNonce, &["/api/resource"]);
    let (service, opened) = common::service(&toml);
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn);
    assert!(view.key_bound);
    let notice = view.notice.unwrap();
    assert_eq!(notice.kind, "bad_response");
    assert!(notice.message.contains("nonce"), "{}", notice.message);
    assert_eq!(proxy.requests("/api/resource"), 2, "the load, then one retry with the nonce it gave");
    assert!(idp.events_named("grant.success", Some("refresh_token")).await.is_empty(), "no grant spent on it");
    service.sign_out().await.unwrap();
}

/// RFC 9449 §5: a token response that says Bearer to a request that carried a DPoP proof leaves a public
/// client's refresh token bound to the key all the same. The session keeps the key for its refreshes and sends
/// the access token with the scheme its `token_type` names. (The demo provider binds every proven token, so the
/// proxy in front of its token endpoint relabels its answers Bearer, and the resource takes any token.)
#[tokio::test]
async fn a_bearer_answer_to_a_proven_request_keeps_the_key_for_the_refresh_token() {
    fn bearer(body: &mut serde_json::Value) {
        if body.get("access_token").is_some() {
            body["token_type"] = "Bearer".into();
        }
    }
    keyring::require_secret_service();
    let profile = "faults-bearer-answer";
    let idp = Idp::start(&artifacts_dir("faults").join(format!("{profile}.log")));
    let (token, resource) = (FaultProxy::start_in_front(idp.issuer()).await, FaultProxy::start(idp.issuer()).await);
    let issuer = idp.issuer();
    let toml = format!(
        "{}authorization_endpoint = \"{issuer}/auth\"\ntoken_endpoint = \"{}/token\"\njwks_uri = \"{issuer}/jwks\"\n\
         dpop = true\n",
        idp.profile_toml(profile)
            .replace(&format!("{issuer}/api/resource"), &format!("{}/api/resource", resource.url())),
        token.url(),
    );
    token.inject(Fault::Rewrite(bearer), &["/token"]);
    resource.inject(Fault::Answer(200, r#"{"message":"Hello"}"#), &["/api/resource"]);
    let (service, opened) = common::service(&toml);
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    browse(&service, &opened).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert!(!view.key_bound, "the access token is a Bearer token");
    assert!(keyring::session(profile).unwrap().get("dpop_key").is_some(), "the key is kept for the refresh token");

    for round in 1..=2 {
        service.refresh().await.unwrap_or_else(|e| panic!("refresh {round}: {e}"));
        assert_eq!(service.view().phase, Phase::SignedIn);
    }
    assert_eq!(idp.events_named("grant.success", Some("refresh_token")).await.len(), 2);
    assert!(idp.refused_grants().await.is_empty(), "{:?}", idp.refused_grants().await);
    assert!(resource.requests("/api/resource") >= 1, "the resource was loaded");
    service.sign_out().await.unwrap();
    assert!(keyring::lookup(profile).is_none());
}

/// RFC 7591 §3.2.2: a provider that refuses the metadata of Gatehouse's registration (a grant type, a scope, the
/// application type) with a 400, or with Keycloak's 403, is asked once more with the least a native sign-in needs, and registers it; a
/// refusal of another kind is said plainly, with the way on (a client made in the provider's console); and the
/// registration is deleted again (RFC 7592 §2.3).
#[tokio::test]
async fn a_registration_refused_for_its_metadata_is_asked_again_with_the_least() {
    use gatehouse_core::{auth::discovery, config::Config, setup};
    let idp = Idp::start(&artifacts_dir("faults").join("faults-registration.log"));
    let proxy = FaultProxy::start(idp.issuer()).await;
    let config = Config::parse(&idp.profile_toml("faults-registration"), "test").unwrap();
    let http = gatehouse_core::http::Http::system(std::time::Duration::from_secs(10));
    let issuer = gatehouse_core::config::Issuer::new(&idp.issuer()).unwrap();
    let endpoints = discovery::discover(&http, &issuer, false).await.unwrap();
    assert_eq!(endpoints.advertised.registration.as_ref().map(url::Url::path), Some("/reg"));
    let endpoint = url::Url::parse(&format!("{}/reg", proxy.url())).unwrap();

    proxy.inject_times(Fault::ErrorWithStatus(400, "invalid_client_metadata"), &["/reg"], Some(1));
    let registered = setup::register(&http, &endpoint, &config, &endpoints).await.unwrap();
    assert_eq!(proxy.requests("/reg"), 2, "refused once, then asked with the least");
    let created = idp.events_named("registration_create.success", None).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["clientId"].as_str(), Some(registered.client_id.as_str()));
    assert_eq!(created[0]["authMethod"], "none", "a public client");
    assert_eq!((registered.client_secret.as_deref(), registered.auth_method.as_deref()), (None, Some("none")));

    // Keycloak's client registration policies refuse metadata with 403 (RFC 7591 §3.2.2 says 400): the same one
    // retry with the least.
    const KEYCLOAK_POLICY: &str = r#"{"error":"insufficient_scope","error_description":"Policy 'Allowed Client Scopes' rejected request to client-registration service. Details: Not permitted to use specified clientScope"}"#;
    proxy.inject_times(Fault::Answer(403, KEYCLOAK_POLICY), &["/reg"], Some(1));
    let second = setup::register(&http, &endpoint, &config, &endpoints).await.unwrap();
    assert_eq!(proxy.requests("/reg"), 4, "refused with 403 for its metadata, then asked with the least");
    assert_eq!(idp.events_named("registration_create.success", None).await.len(), 2);

    proxy.inject(Fault::ServerError, &["/reg"]);
    let refused = setup::register(&http, &endpoint, &config, &endpoints).await.unwrap_err();
    assert_eq!(refused.kind(), "setup_failed", "{refused}");
    assert!(refused.to_string().contains("create a client in its console"), "{refused}");
    assert_eq!(proxy.requests("/reg"), 5, "a refusal that isn't about the metadata is not asked again");

    for registered in [&registered, &second] {
        setup::unregister(&http, registered.management.as_ref().unwrap()).await.unwrap();
    }
    assert_eq!(idp.events_named("registration_delete.success", None).await.len(), 2);
}
