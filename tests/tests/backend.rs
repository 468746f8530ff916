//! The backend against the real demo provider and the real Secret Service, with no window: the service is
//! driven through the same methods the window and tray call, and the scripted user agent plays the browser.
//!
//! Run by the README's test command, which provides an unlocked gnome-keyring under a private D-Bus session.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

mod common;

use std::sync::Arc;

use common::{sign_in, Browser};
use gatehouse_core::service::ProfileService;
use gatehouse_core::state::Phase;
use gatehouse_core::tokens::keychain::Keychain;
use harness::idp::Idp;
use harness::user_agent::{self, Decision};
use harness::{artifacts_dir, keyring, sha256_hex, with_param};

fn start_service(idp: &Idp, profile: &str) -> (Arc<ProfileService>, Arc<Browser>) {
    common::service(&idp.profile_toml(profile))
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

    // The authorization request is the code flow with PKCE S256, state and nonce, pushed to the provider
    // (RFC 9126): the browser gets only a reference to it, and what OIDC Core §6.2 wants beside one for an
    // OpenID request (`response_type`, and `openid` alone as the scope), nothing private.
    service.sign_in().await.unwrap();
    let authorize = shell.last_opened();
    let params: std::collections::BTreeMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(
        params.keys().collect::<Vec<_>>(),
        ["client_id", "request_uri", "response_type", "scope"],
        "{authorize}"
    );
    assert_eq!((params["response_type"].as_str(), params["scope"].as_str()), ("code", "openid"), "{authorize}");
    assert!(params["request_uri"].starts_with("urn:ietf:params:oauth:request_uri:"));
    let pushed = idp.events_named("par.success", None).await;
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0]["responseType"], "code");
    assert_eq!(pushed[0]["codeChallengeMethod"], "S256");
    assert_eq!(pushed[0]["redirectUri"], "com.example.gatehouse:/callback");
    assert!(pushed[0]["stateLength"].as_u64().unwrap() >= 43 && pushed[0]["nonceLength"].as_u64().unwrap() >= 43);

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
    let access_1 = keyring::stored(profile, "access_token");
    let refresh_1 = keyring::stored(profile, "refresh_token");
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
    assert_eq!(keyring::stored(profile, "refresh_token"), refresh_1);

    // Refresh rotates the refresh token; the new one is stored, the old one is dead at the server.
    service.refresh().await.unwrap();
    let access_2 = keyring::stored(profile, "access_token");
    let refresh_2 = keyring::stored(profile, "refresh_token");
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
    assert_eq!(restarted_shell.times_opened(), 0);
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
    let refresh_token = keyring::stored(profile, "refresh_token");

    idp.stop();
    let error = service.refresh().await.unwrap_err();
    assert_eq!(error.kind(), "network");
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn);
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("network"));
    assert_eq!(keyring::stored(profile, "refresh_token"), refresh_token, "a network failure must keep the session");

    idp.restart();
    service.refresh().await.unwrap();
    assert_eq!(service.view().phase, Phase::SignedIn);
    assert!(service.view().notice.is_none());
    assert_ne!(keyring::stored(profile, "refresh_token"), refresh_token);
}

#[tokio::test]
async fn a_session_ended_at_the_provider_signs_out_with_a_message() {
    keyring::require_secret_service();
    // Bearer tokens: a DPoP-bound refresh token can't be used by "someone else" at all.
    let idp = Idp::start_with(&artifacts_dir("backend").join("idp-ended.log"), &[("IDP_DPOP", "off")]);
    let profile = "backend-ended";
    let (service, shell) = start_service(&idp, profile);
    service.start(Vec::new()).await;
    sign_in(&service, &shell, "dave").await;
    // Someone else uses the refresh token first: it rotates at the provider, so Gatehouse's copy is stale
    // and using it is a replay, which ends the grant (RFC 9700 §4.14.2).
    let (status, _) = idp.try_refresh(&keyring::stored(profile, "refresh_token")).await;
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
    let denied = shell.answer("carol", Decision::Deny).await;
    assert!(denied.contains("error=access_denied"), "{denied}");
    service.handle_callback(&denied).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("access_denied"));
    assert!(keyring::lookup(profile).is_none());

    // A forged link while a real sign-in waits is rejected, and the real sign-in still completes.
    service.sign_in().await.unwrap();
    let real = shell.answer("carol", Decision::Approve).await;
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
    let late = shell.answer("carol", Decision::Approve).await;
    service.cancel_sign_in().await.unwrap();
    assert_eq!(service.view().phase, Phase::SignedOut);
    service.handle_callback(&late).await;
    assert_eq!(service.view().phase, Phase::SignedOut);
    assert!(keyring::lookup(profile).is_none());
    // The code was never exchanged.
    let exchanges = idp.events_named("grant.success", Some("authorization_code")).await.len();
    assert_eq!(exchanges, 1);
}

fn notice(service: &ProfileService) -> (String, String) {
    let notice = service.view().notice.expect("a notice was expected");
    (notice.kind, notice.message)
}

/// While a real sign-in waits, links with the wrong state, a wrong `iss`, or an earlier sign-in's code are
/// rejected without exchanging anything or using up the attempt; the real answer then completes it.
#[tokio::test]
async fn a_pending_sign_in_survives_forged_mixed_up_and_replayed_links() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp-pending-forged.log"));
    let profile = "backend-pending-forged";
    let (service, shell) = start_service(&idp, profile);
    service.start(Vec::new()).await;
    let earlier = sign_in(&service, &shell, "frank").await;
    service.sign_out().await.unwrap();

    service.sign_in().await.unwrap();
    let real = shell.answer("frank", Decision::Approve).await;
    let exchanges = idp.events_named("grant.success", Some("authorization_code")).await.len();
    assert_eq!(exchanges, 1);
    for (what, link, says) in [
        ("the wrong state", with_param(&real, "state", "forged-state"), "from an earlier or another sign-in"),
        // RFC 9207: the right state and code, but the answer names another issuer (a mix-up).
        ("a wrong iss", with_param(&real, "iss", "https://evil.example"), "different provider"),
        ("an earlier sign-in's answer", earlier.clone(), "from an earlier or another sign-in"),
    ] {
        service.handle_callback(&link).await;
        let view = service.view();
        assert_eq!(view.phase, Phase::WaitingForBrowser, "{what}: the real sign-in must still wait");
        let (kind, message) = notice(&service);
        assert_eq!(kind, "callback_rejected", "{what}");
        assert!(message.contains(says), "{what}: {message}");
        assert!(keyring::lookup(profile).is_none(), "{what}");
    }
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), exchanges);
    assert!(idp.refused_grants().await.is_empty(), "no code may reach the provider");

    service.handle_callback(&real).await;
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert_eq!(view.account.and_then(|a| a.name).as_deref(), Some("Frank"));
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), exchanges + 1);
    service.sign_out().await.unwrap();
}

/// A session is used only with the provider, client and resource it was made for. When the profile's config
/// points elsewhere, nothing is sent to either, the window says so, and Sign in replaces the entry only once
/// it succeeds.
#[tokio::test]
async fn a_session_is_never_sent_to_another_provider() {
    keyring::require_secret_service();
    let first = Idp::start(&artifacts_dir("backend").join("idp-bound-first.log"));
    let second = Idp::start(&artifacts_dir("backend").join("idp-bound-second.log"));
    let profile = "backend-bound";
    let (service, shell) = start_service(&first, profile);
    service.start(Vec::new()).await;
    sign_in(&service, &shell, "grace").await;
    assert_eq!(service.view().phase, Phase::SignedIn);
    let entry = keyring::lookup(profile).unwrap();
    let session = keyring::session(profile).unwrap();
    assert_eq!(session["v"], 3);
    assert_eq!(session["binding"]["provider"], format!("{}/", first.issuer()));
    assert_eq!(session["binding"]["client_id"], harness::idp::CLIENT_ID);
    drop(service);
    let first_requests = first.events().await.len();

    // The same profile name, now configured for another provider.
    let (moved, moved_shell) = start_service(&second, profile);
    moved.start(Vec::new()).await;
    let view = moved.view();
    assert_eq!(view.phase, Phase::SignedOut);
    let (kind, message) = notice(&moved);
    assert_eq!(kind, "session_for_other_provider");
    assert!(message.contains(&first.issuer()) && message.contains(&second.issuer()), "{message}");
    assert!(second.events().await.is_empty(), "nothing may reach the new provider: {:?}", second.events().await);
    assert_eq!(first.events().await.len(), first_requests, "nor the old one");
    assert_eq!(keyring::lookup(profile).unwrap(), entry);

    // Sign out has nothing here to end, and leaves the other provider's session alone.
    moved.sign_out().await.unwrap();
    assert_eq!(keyring::lookup(profile).unwrap(), entry);
    assert!(second.events().await.is_empty());

    // Signing in with the new provider replaces the entry.
    sign_in(&moved, &moved_shell, "heidi").await;
    let view = moved.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert_eq!(view.account.and_then(|a| a.name).as_deref(), Some("Heidi"));
    assert_eq!(keyring::session(profile).unwrap()["binding"]["provider"], format!("{}/", second.issuer()));
    moved.sign_out().await.unwrap();
    assert!(keyring::lookup(profile).is_none());
}

/// An entry saved by Gatehouse before sessions were bound (format 1) is adopted by the profile that finds it,
/// and saved again in the current format.
#[tokio::test]
async fn a_format_1_entry_is_adopted_and_saved_again() {
    keyring::require_secret_service();
    // Format 1 had no DPoP key: its sessions were Bearer sessions.
    let idp = Idp::start_with(&artifacts_dir("backend").join("idp-format-1.log"), &[("IDP_DPOP", "off")]);
    let profile = "backend-format-1";
    let (service, shell) = start_service(&idp, profile);
    service.start(Vec::new()).await;
    sign_in(&service, &shell, "ivan").await;
    drop(service);
    let mut old = keyring::session(profile).unwrap();
    old["v"] = 1.into();
    old.as_object_mut().unwrap().remove("binding");
    let old: gatehouse_core::tokens::StoredSession = serde_json::from_value(old).unwrap();
    Keychain::new(keyring::SERVICE).save(profile, &old).await.unwrap();
    assert!(keyring::session(profile).unwrap().get("binding").is_none());

    let (restarted, _) = start_service(&idp, profile);
    restarted.start(Vec::new()).await;
    let view = restarted.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert_eq!(view.resource.unwrap()["greeting"], "Hello, Ivan!");
    let session = keyring::session(profile).unwrap();
    assert_eq!(session["v"], 3);
    assert!(session.get("dpop_key").is_none());
    assert_eq!(session["binding"]["provider"], format!("{}/", idp.issuer()));
    restarted.sign_out().await.unwrap();
}

/// RFC 6749 §2.3.1: a client secret with `+`, `/`, `=`, `%`, `:` and a space is form-encoded before HTTP Basic
/// authentication, at the token endpoint and at revocation alike.
#[tokio::test]
async fn a_client_secret_that_needs_encoding_works_for_revocation_too() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp-secret.log"));
    let profile = "backend-secret";
    let (client_id, secret) = harness::idp::SECRET_CLIENT;
    let toml = format!("{}client_secret = {secret:?}\n", idp.profile_toml_for(profile, client_id));
    let (service, shell) = common::service(&toml);
    service.start(Vec::new()).await;
    sign_in(&service, &shell, "judy").await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    let refresh = keyring::stored(profile, "refresh_token");

    service.sign_out().await.unwrap();
    assert_eq!(notice(&service).0, "signed_out", "{:?}", service.view().notice);
    assert!(idp.events_named("revocation.error", None).await.is_empty());
    assert_eq!(idp.introspect(&refresh).await["active"], false, "the provider must have revoked the grant");
}

/// A client secret a provider issued to Gatehouse's own registration (RFC 7591) is kept in the keychain, not the
/// file (`client_secret_in_keychain = true`): it is read from there for the token, pushed request and revocation
/// endpoints, and without it nothing is sent and the profile says to set the provider up again.
#[tokio::test]
async fn a_client_secret_kept_in_the_keychain_is_sent_from_there() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp-secret-in-keychain.log"));
    let profile = "backend-secret-in-keychain";
    let (client_id, secret) = harness::idp::SECRET_CLIENT;
    let toml = format!(
        "{}client_secret_in_keychain = true\ntoken_endpoint_auth_method = \"client_secret_basic\"\n",
        idp.profile_toml_for(profile, client_id)
    );
    // Nothing in the keychain yet: nothing goes to the provider, and the reason is said.
    let (service, shell) = common::service(&toml);
    service.start(Vec::new()).await;
    let missing = service.sign_in().await.unwrap_err();
    assert_eq!(missing.kind(), "setup_failed", "{missing}");
    assert!(missing.to_string().contains("missing from the keychain"), "{missing}");
    assert_eq!(shell.times_opened(), 0);
    assert!(idp.events_named("par.success", None).await.is_empty());

    keyring::store_in(keyring::CLIENT_SECRET_SERVICE, profile, secret);
    sign_in(&service, &shell, "judy").await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    service.refresh().await.unwrap();
    let refresh = keyring::stored(profile, "refresh_token");
    service.sign_out().await.unwrap();
    assert_eq!(idp.introspect(&refresh).await["active"], false, "revoked, with the secret from the keychain");
    assert!(idp.refused_grants().await.is_empty(), "{:?}", idp.refused_grants().await);
}

/// A provider that takes the client secret only in the form body (`client_secret_post`): the profile says so,
/// and the secret goes there at the pushed authorization request, the token endpoint (code and refresh) and
/// revocation alike; HTTP Basic would be answered `invalid_client`.
#[tokio::test]
async fn a_client_secret_goes_in_the_form_where_the_provider_wants_it() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp-secret-post.log"));
    let profile = "backend-secret-post";
    let (client_id, secret) = harness::idp::POST_SECRET_CLIENT;
    let toml = format!(
        "{}client_secret = {secret:?}\ntoken_endpoint_auth_method = \"client_secret_post\"\n",
        idp.profile_toml_for(profile, client_id)
    );
    let (service, shell) = common::service(&toml);
    service.start(Vec::new()).await;
    sign_in(&service, &shell, "judy").await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    assert_eq!(idp.events_named("par.success", None).await.len(), 1, "the pushed request authenticated");
    service.refresh().await.unwrap();
    let refresh = keyring::stored(profile, "refresh_token");
    service.sign_out().await.unwrap();
    assert_eq!(notice(&service).0, "signed_out", "{:?}", service.view().notice);
    assert_eq!(idp.introspect(&refresh).await["active"], false, "the provider must have revoked the grant");
    assert!(idp.refused_grants().await.is_empty(), "{:?}", idp.refused_grants().await);
}

/// Without pushed authorization requests, the browser gets the whole request: the code flow with PKCE S256, a
/// one-time `state` and a `nonce` (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1).
#[tokio::test]
async fn without_par_the_browser_carries_the_code_flow_request_with_pkce_state_and_nonce() {
    keyring::require_secret_service();
    let idp = Idp::start_with(&artifacts_dir("backend").join("idp-no-par.log"), &[("IDP_PAR", "off")]);
    let (service, shell) = start_service(&idp, "backend-no-par");
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    let authorize = shell.last_opened();
    let params: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["redirect_uri"], "com.example.gatehouse:/callback");
    assert!(params["state"].len() >= 43 && params["nonce"].len() >= 43);
    assert!(!params.contains_key("request_uri"));
    let redirect = user_agent::authorize(authorize.as_str(), "alice", Decision::Approve).await.unwrap();
    service.handle_callback(&redirect).await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    assert!(idp.events_named("par.success", None).await.is_empty());
    service.sign_out().await.unwrap();
}

/// When the browser can't be opened, the message says so without quoting the authorization URL, which
/// carries the attempt's `state`, `nonce` and PKCE challenge.
#[tokio::test]
async fn a_browser_that_will_not_open_is_reported_without_the_url() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp-no-browser.log"));
    let (service, shell) = start_service(&idp, "backend-no-browser");
    service.start(Vec::new()).await;
    shell.missing.store(true, std::sync::atomic::Ordering::Relaxed);
    let error = service.sign_in().await.unwrap_err();
    assert_eq!(error.kind(), "browser_unavailable");
    let url = shell.last_opened();
    let reference = url.query_pairs().find(|(k, _)| k == "request_uri").unwrap().1.into_owned();
    let (kind, message) = notice(&service);
    assert_eq!(kind, "browser_unavailable");
    assert!(message.contains("no method available"), "{message}");
    for secret in [reference.as_str(), "request_uri", "state=", "code_challenge", url.as_str()] {
        assert!(!message.contains(secret), "{secret:?} in {message}");
    }
    assert_eq!(service.view().phase, Phase::SignedOut);
}

/// RFC 8414 and OIDC Discovery together: a server that lists its revocation endpoint only in its RFC 8414
/// metadata still has its sessions revoked at sign-out.
#[tokio::test]
async fn a_revocation_endpoint_listed_only_in_rfc_8414_metadata_is_used() {
    keyring::require_secret_service();
    let log = artifacts_dir("backend").join("idp-split-metadata.log");
    let idp = Idp::start_with(&log, &[("IDP_SPLIT_METADATA", "1")]);
    let http = reqwest::Client::new();
    let openid: serde_json::Value = http
        .get(format!("{}/.well-known/openid-configuration", idp.issuer()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openid.get("revocation_endpoint").is_none(), "the server must be split for this test: {openid}");

    let profile = "backend-split-metadata";
    let (service, shell) = start_service(&idp, profile);
    service.start(Vec::new()).await;
    sign_in(&service, &shell, "olga").await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    let refresh = keyring::stored(profile, "refresh_token");
    service.sign_out().await.unwrap();
    assert_eq!(notice(&service).0, "signed_out", "{:?}", service.view().notice);
    assert_eq!(idp.introspect(&refresh).await["active"], false);
}

/// A provider with no revocation endpoint (Microsoft Entra and GitHub have none): Sign out signs out here, and
/// says plainly that the session stays valid at the provider until it expires.
#[tokio::test]
async fn without_a_revocation_endpoint_sign_out_says_the_session_lives_on() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp-no-revocation.log"));
    let profile = "backend-no-revocation";
    let issuer = idp.issuer();
    // Explicit endpoints, as a profile for a provider without metadata lists them: no revocation endpoint.
    let toml = idp.profile_toml(profile).replace(
        &format!("issuer = \"{issuer}\"\n"),
        &format!(
            "issuer = \"{issuer}\"\nauthorization_endpoint = \"{issuer}/auth\"\ntoken_endpoint = \"{issuer}/token\"\n\
             jwks_uri = \"{issuer}/jwks\"\n"
        ),
    );
    let (service, shell) = common::service(&toml);
    service.start(Vec::new()).await;
    sign_in(&service, &shell, "pat").await;
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    let refresh = keyring::stored(profile, "refresh_token");

    service.sign_out().await.unwrap();
    let (kind, message) = notice(&service);
    assert_eq!(kind, "not_revoked");
    assert!(message.contains("offers no way to end the session"), "{message}");
    assert!(keyring::lookup(profile).is_none());
    assert_eq!(idp.introspect(&refresh).await["active"], true, "nothing was sent to revoke it");
}

/// Profiles side by side: two accounts of one provider sign in at once, each link reaches the sign-in it
/// answers whatever the order, a link that answers none changes no account, signing out of one leaves the
/// other, and a profile removed from the config leaves its session until it is forgotten.
#[tokio::test]
async fn two_profiles_sign_in_side_by_side_and_crossed_links_reach_their_own_sign_in() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend-profiles").join("idp.log"));
    let published = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = Arc::clone(&published);
    let sink: gatehouse_core::accounts::Sink = Box::new(move |_| {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let profiles = [idp.profile_toml("backend-work"), idp.profile_toml("backend-home")];
    let (accounts, browsers) = common::accounts(&profiles, sink);
    let (work, home) = (accounts.get(Some("backend-work")).unwrap(), accounts.get(Some("backend-home")).unwrap());
    let (work_browser, home_browser) = (&browsers[0], &browsers[1]);
    accounts.start(Vec::new()).await;

    // Both wait for the browser at once; each person answers their own page.
    work.sign_in().await.unwrap();
    home.sign_in().await.unwrap();
    let work_link = work_browser.answer("alice", Decision::Approve).await;
    let home_link = home_browser.answer("bob", Decision::Approve).await;

    // Crossed: the second sign-in's link comes back first.
    accounts.handle_link(&home_link).await;
    let view = accounts.view();
    assert_eq!(view.accounts[1].phase, Phase::SignedIn, "{:?}", view.accounts[1].notice);
    assert_eq!(view.accounts[1].account.as_ref().and_then(|a| a.name.as_deref()), Some("Bob"));
    assert_eq!(view.accounts[0].phase, Phase::WaitingForBrowser, "the other sign-in must still wait");
    assert!(view.accounts[0].notice.is_none(), "{:?}", view.accounts[0].notice);

    // A link that answers no sign-in (home's, replayed) is reported by the window and changes no account.
    let home_entry = keyring::lookup("backend-home").unwrap();
    accounts.handle_link(&home_link).await;
    let view = accounts.view();
    assert_eq!(view.notice.as_ref().map(|n| n.kind.as_str()), Some("callback_rejected"), "{:?}", view.notice);
    assert_eq!(view.accounts[0].phase, Phase::WaitingForBrowser);
    assert!(view.accounts[0].notice.is_none() && view.accounts[1].notice.is_none());
    assert_eq!(keyring::lookup("backend-home").unwrap(), home_entry);
    assert!(keyring::lookup("backend-work").is_none());

    let published_before = published.load(std::sync::atomic::Ordering::Relaxed);
    accounts.handle_link(&work_link).await;
    let view = accounts.view();
    assert_eq!(view.accounts[0].phase, Phase::SignedIn, "{:?}", view.accounts[0].notice);
    assert_eq!(view.accounts[0].account.as_ref().and_then(|a| a.name.as_deref()), Some("Alice"));
    assert_eq!(view.accounts[0].resource.as_ref().unwrap()["greeting"], "Hello, Alice!");
    assert_eq!(view.accounts[1].resource.as_ref().unwrap()["greeting"], "Hello, Bob!");
    assert!(view.notice.is_none(), "a link that completes a sign-in clears the window's notice");
    assert_eq!((keyring::count_entries("backend-work"), keyring::count_entries("backend-home")), (1, 1));
    assert!(
        published.load(std::sync::atomic::Ordering::Relaxed) > published_before,
        "the window was not sent the view of the completed sign-in"
    );

    // The home profile is taken out of the config: its session stays, and is listed as removed.
    let (remaining, _) = common::accounts(&[idp.profile_toml("backend-work")], Box::new(|_| {}));
    remaining.start(Vec::new()).await;
    let view = remaining.view();
    assert_eq!(view.accounts.len(), 1);
    assert_eq!(view.accounts[0].phase, Phase::SignedIn);
    assert!(view.removed.contains(&"backend-home".to_owned()), "{:?}", view.removed);
    assert!(!view.removed.contains(&"backend-work".to_owned()), "{:?}", view.removed);
    assert_eq!(keyring::lookup("backend-home").unwrap(), home_entry);
    // A configured profile is signed out, never forgotten.
    assert!(remaining.forget("backend-work").await.is_err());
    remaining.forget("backend-home").await.unwrap();
    assert!(keyring::lookup("backend-home").is_none());
    assert!(!remaining.view().removed.contains(&"backend-home".to_owned()));
    assert_eq!(remaining.view().notice.as_ref().map(|n| n.kind.as_str()), Some("forgotten"));

    // Signing out of one leaves the other, and its keychain entry.
    let work_entry = keyring::lookup("backend-work").unwrap();
    accounts.get(Some("backend-home")).unwrap().sign_out().await.unwrap();
    let view = accounts.view();
    assert_eq!(view.accounts[1].phase, Phase::SignedOut);
    assert_eq!(view.accounts[0].phase, Phase::SignedIn);
    assert_eq!(keyring::lookup("backend-work").unwrap(), work_entry);
    work.sign_out().await.unwrap();
    assert!(keyring::lookup("backend-work").is_none());
}

/// RFC 6749 §3.1: an authorization endpoint's own query (Azure AD B2C names its policy there) is kept, also when
/// the request itself is pushed (RFC 9126 §4: then only `client_id` and `request_uri` join it).
#[tokio::test]
async fn the_authorization_endpoints_own_query_is_kept_with_pushed_requests() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp-par-query.log"));
    let issuer = idp.issuer();
    let metadata: serde_json::Value =
        reqwest::get(format!("{issuer}/.well-known/openid-configuration")).await.unwrap().json().await.unwrap();
    let par = metadata["pushed_authorization_request_endpoint"].as_str().unwrap();
    let toml = format!(
        "{}authorization_endpoint = \"{issuer}/auth?p=B2C_1_signin\"\ntoken_endpoint = \"{issuer}/token\"\n\
         pushed_authorization_request_endpoint = \"{par}\"\njwks_uri = \"{issuer}/jwks\"\n",
        idp.profile_toml("backend-par-query")
    );
    let (service, shell) = common::service(&toml);
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    let opened = shell.last_opened();
    let mut names: Vec<String> = opened.query_pairs().map(|(k, _)| k.into_owned()).collect();
    names.sort();
    assert_eq!(names, ["client_id", "p", "request_uri", "response_type", "scope"], "{opened}");
    assert!(opened.query_pairs().any(|(k, v)| k == "p" && v == "B2C_1_signin"), "{opened}");
    assert_eq!(idp.events_named("par.success", None).await.len(), 1);
    service.cancel_sign_in().await.unwrap();
}

/// The core crate's example (`crates/gatehouse-core/examples/loopback.rs`, built by the test command): an app of
/// its own, with no Tauri, signs in through a loopback redirect against the real provider and keychain, shows the
/// resource, and signs out, revoking.
#[tokio::test]
async fn the_core_crates_example_signs_in_through_a_loopback_redirect() {
    use tokio::io::AsyncBufReadExt;
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("backend").join("idp-example.log"));
    let binary = harness::desktop::app_binary().with_file_name("examples").join("loopback");
    assert!(binary.exists(), "{} is missing: the test command builds it", binary.display());
    let issuer = idp.issuer();
    let mut child = tokio::process::Command::new(&binary)
        .args([issuer.as_str(), harness::idp::CLIENT_ID, &format!("{issuer}/api/resource")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let link = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), stderr.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap_or_else(|| panic!("the example ended without a link"));
        if let Some(link) = line.strip_prefix("Sign in at: ") {
            break link.to_owned();
        }
    };
    // The person signs in; the browser's last step takes the provider's answer to the example's listener.
    let answer = user_agent::authorize(&link, "dora", Decision::Approve).await.unwrap();
    assert!(answer.starts_with("http://127.0.0.1:"), "{answer}");
    let page = reqwest::get(&answer).await.unwrap();
    assert!(page.status().is_success(), "{}", page.status());
    let output =
        tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}: {stdout}", output.status);
    assert!(stdout.contains("signed in as Dora") && stdout.contains("Hello, Dora!"), "{stdout}");
    assert!(stdout.trim_end().ends_with("signed out"), "{stdout}");
    let revoked = idp.events_named("revocation.requested", None).await;
    assert!(!revoked.is_empty(), "signing out revoked the session at the provider");
}
