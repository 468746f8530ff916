//! Figures, not tests: each prints what it measured and checks only that the run itself was sound. They are
//! `#[ignore]`d so that the suite stays quick; `tests/bin/bench --figures` runs them against the real demo
//! provider and keychain:
//! - the latency from receiving the deep link to showing the resource, beside the floor: the same token POST and
//!   resource GET made directly with the same HTTP client;
//! - a soak of 200 sign-in and sign-out cycles: memory at the start and end, keychain entries and grants left.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use gatehouse_core::http::{self, header, Http, Method};
use gatehouse_core::state::Phase;
use harness::idp::Idp;
use harness::user_agent::{self, Decision};
use harness::{artifacts_dir, keyring};
use sha2::Digest as _;

const RUNS: usize = 11;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kib / 1024.0
}

/// A code for `gatehouse-desktop`, from an authorization request made here with a PKCE pair of our own, and
/// the verifier that redeems it.
async fn code_for_the_floor(idp: &Idp) -> (String, String) {
    // RFC 7636 §4.1: 43 to 128 unreserved characters; a fresh one for each run.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let verifier = harness::sha256_hex(&format!("floor-{nanos}"));
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut url = url::Url::parse(&format!("{}/auth", idp.issuer())).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "gatehouse-desktop")
        .append_pair("redirect_uri", "com.example.gatehouse:/callback")
        .append_pair("scope", "openid profile offline_access")
        .append_pair("state", "floor-state-0123456789")
        .append_pair("nonce", "floor-nonce-0123456789")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let redirect = user_agent::authorize(url.as_str(), "alice", Decision::Approve).await.unwrap();
    let redirect = url::Url::parse(&redirect).unwrap();
    let code = redirect.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    (code, verifier)
}

/// The floor: the code exchange and the resource fetch, nothing else, with Gatehouse's own HTTP client.
async fn floor_once(idp: &Idp, client: &Http) -> Duration {
    let (code, verifier) = code_for_the_floor(idp).await;
    let started = Instant::now();
    let token_endpoint = url::Url::parse(&format!("{}/token", idp.issuer())).unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "com.example.gatehouse:/callback"),
        ("client_id", "gatehouse-desktop"),
        ("code_verifier", verifier.as_str()),
    ];
    let answer =
        client.send(http::with_form(http::request(Method::POST, &token_endpoint), form).unwrap()).await.unwrap();
    let tokens: serde_json::Value = serde_json::from_slice(&answer.body.unwrap()).unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let resource = url::Url::parse(&format!("{}/api/resource", idp.issuer())).unwrap();
    let request = http::request(Method::GET, &resource)
        .header(header::AUTHORIZATION, http::credential("Bearer", access).unwrap());
    let answer = client.send(http::with_body(request, Vec::new()).unwrap()).await.unwrap();
    assert_eq!(answer.status, 200);
    answer.body.unwrap();
    started.elapsed()
}

#[tokio::test]
#[ignore = "figures: run with tests/bin/bench --figures"]
async fn latency_from_link_to_resource_beside_the_floor() {
    keyring::require_secret_service();
    // Bearer tokens on both sides, so that the floor makes the very requests Gatehouse makes.
    let idp = Idp::start_with(&artifacts_dir("figures").join("idp-latency.log"), &[("IDP_DPOP", "off")]);
    let profile = "figures-latency";
    let (service, browser) = common::service(&idp.profile_toml(profile));
    service.start(Vec::new()).await;
    let http = Http::system(Duration::from_secs(20));
    // One of each first, so that discovery, the JWK Set and connections are warm for both, as in a running app.
    common::sign_in(&service, &browser, "alice").await;
    service.sign_out().await.unwrap();
    let _ = floor_once(&idp, &http).await;

    let (mut app, mut floor) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        service.sign_in().await.unwrap();
        let redirect = browser.answer("alice", Decision::Approve).await;
        let started = Instant::now();
        service.handle_callback(&redirect).await;
        app.push(started.elapsed().as_secs_f64() * 1000.0);
        let view = service.view();
        assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
        assert!(view.resource.is_some(), "the resource is shown");
        service.sign_out().await.unwrap();
        floor.push(floor_once(&idp, &http).await.as_secs_f64() * 1000.0);
    }
    let (app_median, floor_median) = (median(app.clone()), median(floor.clone()));
    println!("\nlink to resource shown, {RUNS} runs (debug build, backend; the window's paint not included):");
    println!("  Gatehouse: median {app_median:.1} ms  {:?}", app.iter().map(|v| v.round()).collect::<Vec<_>>());
    println!(
        "  floor (token POST + resource GET): median {floor_median:.1} ms  {:?}",
        floor.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!(
        "  ratio {:.2}x; goal 1.2x floor + 15 ms = {:.1} ms: {}",
        app_median / floor_median,
        floor_median * 1.2 + 15.0,
        if app_median <= floor_median * 1.2 + 15.0 { "met" } else { "not met" }
    );
}

#[tokio::test]
#[ignore = "figures: run with tests/bin/bench --figures"]
async fn soak_of_200_sign_in_and_sign_out_cycles() {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir("figures").join("idp-soak.log"));
    let profile = "figures-soak";
    let (service, browser) = common::service(&idp.profile_toml(profile));
    service.start(Vec::new()).await;
    let cycles = 200;
    let started = Instant::now();
    let mut refresh_tokens = Vec::new();
    let mut rss = Vec::new();
    for cycle in 0..cycles {
        common::sign_in(&service, &browser, "alice").await;
        assert_eq!(service.view().phase, Phase::SignedIn, "cycle {cycle}: {:?}", service.view().notice);
        refresh_tokens.push(keyring::session(profile).unwrap()["refresh_token"].as_str().unwrap().to_owned());
        service.sign_out().await.unwrap();
        if cycle == 0 || cycle + 1 == cycles {
            rss.push(rss_mib());
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let entries = keyring::count_entries(profile);
    let mut alive = 0;
    for token in &refresh_tokens {
        if idp.introspect(token).await["active"] == true {
            alive += 1;
        }
    }
    println!("\nsoak: {cycles} sign-in and sign-out cycles in {elapsed:.0} s (backend, scripted user agent)");
    println!("  RSS of the process: {:.1} MiB after the first cycle, {:.1} MiB after the last", rss[0], rss[1]);
    println!(
        "  keychain entries left: {entries}; grants left alive at the provider: {alive} of {}",
        refresh_tokens.len()
    );
    assert_eq!(refresh_tokens.len(), cycles);
}
