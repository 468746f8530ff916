//! The loopback redirect (RFC 8252 §7.3, §8.3) against the real demo provider and keychain: the listener's
//! port, what it answers, and how long it lives.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gatehouse_core::state::Phase;
use harness::idp::Idp;
use harness::user_agent::Decision;
use harness::{accepts_connections, artifacts_dir, keyring, wait_for};
use url::Url;

/// These tests read the attempt's port from the authorization URL, so the provider takes no pushed requests
/// (RFC 9126), which would keep the redirect URI out of the browser. A loopback sign-in with them is in e2e s17.
const NO_PAR: &[(&str, &str)] = &[("IDP_PAR", "off")];

fn loopback_profile(idp: &Idp, profile: &str, extra: &str) -> String {
    let toml = idp.profile_toml(profile).replace("com.example.gatehouse:/callback", "http://127.0.0.1/callback");
    format!("{toml}{extra}")
}

/// The redirect URI the last authorization request carried.
fn redirect_uri(browser: &common::Browser) -> Url {
    let authorize = browser.last_opened();
    let redirect = authorize.query_pairs().find(|(k, _)| k == "redirect_uri").unwrap().1.into_owned();
    Url::parse(&redirect).unwrap()
}

async fn wait_until_closed(port: u16) -> Duration {
    let start = Instant::now();
    wait_for(&format!("port {port} to refuse connections"), Duration::from_secs(5), || async {
        (!accepts_connections(port)).then_some(())
    })
    .await;
    start.elapsed()
}

fn browser_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap()
}

#[tokio::test]
async fn a_loopback_sign_in_takes_one_good_request_and_closes_its_port() {
    keyring::require_secret_service();
    let idp = Idp::start_with(&artifacts_dir("loopback").join("idp-full.log"), NO_PAR);
    let (service, browser) = common::service(&loopback_profile(&idp, "loopback-full", ""));
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    let redirect_uri = redirect_uri(&browser);
    let port = redirect_uri.port().unwrap();
    assert_eq!(redirect_uri.as_str(), format!("http://127.0.0.1:{port}/callback"));
    assert!(accepts_connections(port), "the listener must be open while the sign-in waits");
    let opened_at = Instant::now();

    // Anything but the browser's redirect is answered with an error and consumes nothing.
    let http = browser_client();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(http.get(format!("{base}/favicon.ico")).send().await.unwrap().status(), 404);
    assert_eq!(http.post(format!("{base}/callback")).send().await.unwrap().status(), 405);
    let forged =
        http.get(format!("{base}/callback?code=forged&state=forged&iss={}", idp.issuer())).send().await.unwrap();
    assert_eq!(forged.status(), 400);
    // A stray or forged request doesn't take the focus from the browser; the real answer, below, does.
    assert_eq!(browser.focused.load(std::sync::atomic::Ordering::Relaxed), 0, "a forged request raised the window");
    let forged_page = forged.text().await.unwrap();
    assert!(
        forged_page.contains("Not signed in") && forged_page.contains("earlier or another sign-in"),
        "{forged_page}"
    );
    // The head limit, apart from the callback's own size check (which would answer an oversized callback with
    // 400 by itself): a 20 KB header on any other path would be a plain 404 without it.
    let padded = http.get(format!("{base}/favicon.ico")).header("x-padding", "p".repeat(20_000)).send().await;
    let status = padded.as_ref().map(|r| r.status().as_u16());
    assert!(matches!(status, Err(_) | Ok(431)), "a head past 16 KiB must be cut off, not served: {status:?}");
    assert_eq!(service.view().phase, Phase::WaitingForBrowser);
    assert!(idp.events_named("grant.success", None).await.is_empty());
    // The path as a URI (RFC 3986 §6.2.2): a percent-encoded spelling of it is the same path, and is answered as
    // the callback (here forged, so refused), never a 404 that would strand the sign-in.
    let spelled = http.get(format!("{base}/%63allback?code=forged&state=forged")).send().await.unwrap();
    assert_eq!(spelled.status(), 400);
    // The pending sign-in's own answer at another path (a provider whose registered redirect URI differs) is said
    // at once, with where it came and where it was expected, and leaves the sign-in waiting.
    let state = browser.last_opened().query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let misdirected = http.get(format!("{base}/oauth2/callback?code=x&state={state}")).send().await.unwrap();
    assert_eq!(misdirected.status(), 400);
    let notice = service.view().notice.unwrap();
    assert!(
        notice.message.contains(&format!("back to http://127.0.0.1:{port}/oauth2/callback"))
            && notice.message.contains(&format!("expects http://127.0.0.1:{port}/callback")),
        "{notice:?}"
    );
    assert!(!notice.message.contains("code=x"), "{notice:?}");
    assert_eq!(service.view().phase, Phase::WaitingForBrowser);

    // The browser follows the provider's redirect to the listener.
    let redirect = browser.answer("quinn", Decision::Approve).await;
    assert!(redirect.starts_with(&format!("{base}/callback?")), "{redirect}");
    let started = Instant::now();
    let page = http.get(&redirect).send().await.unwrap();
    let signed_in_after = started.elapsed();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert!(page.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
    let body = page.text().await.unwrap();
    assert!(body.contains("You're signed in") && !body.contains("<script") && !body.contains("src="), "{body}");
    assert_eq!(browser.focused.load(std::sync::atomic::Ordering::Relaxed), 1, "the answer raises the window");
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedIn, "{:?}", view.notice);
    assert_eq!(view.account.and_then(|a| a.name).as_deref(), Some("Quinn"));
    // The provider checked that the token request repeated the redirect URI, port and all (RFC 6749 §4.1.3).
    assert_eq!(idp.events_named("grant.success", Some("authorization_code")).await.len(), 1);

    let closed_after = wait_until_closed(port).await;
    eprintln!(
        "loopback figures: port {port} open {:?} in all; redirect to signed in (exchange, keychain, resource) {:?}; \
         refused connections {:?} after the answer",
        opened_at.elapsed(),
        signed_in_after,
        closed_after
    );
    assert!(http.get(&redirect).send().await.is_err(), "a second request must find the port closed");
    service.sign_out().await.unwrap();
}

#[tokio::test]
async fn a_new_attempt_cancel_and_sign_out_each_close_the_listener() {
    keyring::require_secret_service();
    let idp = Idp::start_with(&artifacts_dir("loopback").join("idp-close.log"), NO_PAR);
    let (service, browser) = common::service(&loopback_profile(&idp, "loopback-close", ""));
    service.start(Vec::new()).await;

    service.sign_in().await.unwrap();
    let first = redirect_uri(&browser).port().unwrap();
    assert!(accepts_connections(first));
    service.sign_in().await.unwrap();
    let second = redirect_uri(&browser).port().unwrap();
    assert_ne!(first, second, "each attempt gets a fresh port");
    wait_until_closed(first).await;
    assert!(accepts_connections(second));

    service.cancel_sign_in().await.unwrap();
    wait_until_closed(second).await;

    service.sign_in().await.unwrap();
    let third = redirect_uri(&browser).port().unwrap();
    assert!(accepts_connections(third));
    service.sign_out().await.unwrap();
    wait_until_closed(third).await;
    assert_eq!(service.view().phase, Phase::SignedOut);
}

#[tokio::test]
async fn a_timed_out_attempt_and_a_silent_connection_are_both_cut_off() {
    keyring::require_secret_service();
    let idp = Idp::start_with(&artifacts_dir("loopback").join("idp-timeout.log"), NO_PAR);
    let (service, browser) =
        common::service(&loopback_profile(&idp, "loopback-timeout", "sign_in_timeout_secs = 12\n"));
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    let port = redirect_uri(&browser).port().unwrap();

    // A client that starts a request and never finishes it is disconnected after the read timeout.
    let silent = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
        stream.write_all(b"GET /callback?state=").unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        started.elapsed()
    });
    let cut_off_after = silent.await.unwrap();
    assert!(cut_off_after < Duration::from_secs(12), "the read timeout must cut off a silent client");
    assert_eq!(service.view().phase, Phase::WaitingForBrowser, "a silent client consumes nothing");

    wait_for("the sign-in to time out", Duration::from_secs(20), || async {
        (service.view().phase == Phase::SignedOut).then_some(())
    })
    .await;
    assert_eq!(service.view().notice.map(|n| n.kind).as_deref(), Some("sign_in_timed_out"));
    wait_until_closed(port).await;
}

/// Some providers match a loopback redirect's port exactly, and a browser at the far end of an SSH tunnel needs
/// a known one: `redirect_uri = "http://127.0.0.1:PORT/callback"` listens on exactly that port and sends exactly
/// that URI. When another program holds the port, Sign in says so, naming the port and what to do.
#[tokio::test]
async fn a_fixed_loopback_port_is_used_as_written_and_a_taken_one_is_named() {
    keyring::require_secret_service();
    let idp = Idp::start_with(&artifacts_dir("loopback").join("idp-fixed-port.log"), NO_PAR);
    let port = harness::free_port();
    let toml = idp
        .profile_toml("loopback-fixed-port")
        .replace("com.example.gatehouse:/callback", &format!("http://127.0.0.1:{port}/callback"));
    let (service, browser) = common::service(&toml);
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    assert_eq!(redirect_uri(&browser).as_str(), format!("http://127.0.0.1:{port}/callback"));
    assert!(accepts_connections(port));
    let redirect = browser.answer("lee", Decision::Approve).await;
    assert!(redirect.starts_with(&format!("http://127.0.0.1:{port}/callback?")), "{redirect}");
    let page = browser_client().get(&redirect).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("You're signed in"));
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    wait_until_closed(port).await;
    service.sign_out().await.unwrap();

    let _taken = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let error = service.sign_in().await.unwrap_err();
    assert_eq!(error.kind(), "loopback_port_in_use", "{error}");
    assert!(error.to_string().contains(&format!("Port {port}")), "{error}");
    let view = service.view();
    assert_eq!(view.phase, Phase::SignedOut);
    assert_eq!(view.notice.map(|n| n.kind).as_deref(), Some("loopback_port_in_use"));
}

/// A flood of idle connections can't run the listener out of file descriptors: past
/// [`gatehouse_core::auth::loopback::MAX_CONNECTIONS`] open at once, a new one is closed as soon as it is
/// accepted; once they go, the browser's redirect is served as usual.
#[tokio::test]
async fn a_flood_of_idle_connections_is_capped_and_the_sign_in_still_completes() {
    use std::io::Read;
    keyring::require_secret_service();
    let idp = Idp::start_with(&artifacts_dir("loopback").join("idp-flood.log"), NO_PAR);
    let (service, browser) = common::service(&loopback_profile(&idp, "loopback-flood", ""));
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    let port = redirect_uri(&browser).port().unwrap();
    let cap = gatehouse_core::auth::loopback::MAX_CONNECTIONS;
    let idle: Vec<TcpStream> = (0..cap)
        .map(|_| TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_secs(1)).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let closed_at_once = tokio::task::spawn_blocking(move || {
        let mut extra = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
        extra.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        // Closed by the listener: end of stream (or a reset), well before the 10 s head timeout.
        let mut byte = [0u8; 1];
        match extra.read(&mut byte) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    })
    .await
    .unwrap();
    assert!(closed_at_once, "a connection past the cap must be closed");
    let mut first = idle.into_iter().next().unwrap();
    first.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut byte = [0u8; 1];
    assert!(
        matches!(first.read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut),
        "a connection within the cap stays open for its request"
    );
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let redirect = browser.answer("quinn", Decision::Approve).await;
    let page = browser_client().get(&redirect).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    service.sign_out().await.unwrap();
}

/// Another local user can read the authorization request in the browser's command line and try to deliver a
/// code of their own account to this listener (login CSRF, RFC 6749 §10.12). A connection from a socket that
/// another user owns is closed unread, over IPv4 and from an IPv6 socket to the IPv4-mapped address alike (the
/// kernel lists that one only in `/proc/net/tcp6`); this user's own requests are answered as always, both ways.
/// Acting as another user needs root: CI has it, and under CI the test fails without it rather than pass
/// untried.
#[tokio::test]
async fn another_users_connection_is_closed_unread() {
    keyring::require_secret_service();
    let idp = Idp::start_with(&artifacts_dir("loopback").join("idp-other-user.log"), NO_PAR);
    let (service, browser) = common::service(&loopback_profile(&idp, "loopback-other-user", ""));
    service.start(Vec::new()).await;
    service.sign_in().await.unwrap();
    let port = redirect_uri(&browser).port().unwrap();
    // Run without blocking the runtime the listener is served on.
    let curl = |as_other: bool, host: &str| {
        let forged = format!("http://{host}:{port}/callback?code=theirs&state=theirs");
        let mut command = tokio::process::Command::new(if as_other { "setpriv" } else { "curl" });
        if as_other {
            command.args(["--reuid=65534", "--regid=65534", "--clear-groups", "curl"]);
        }
        // -g: the brackets of an IPv6 literal are the address, not a glob.
        command.args(["-g", "-s", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}", &forged]);
        async move { String::from_utf8_lossy(&command.output().await.unwrap().stdout).into_owned() }
    };
    for host in ["127.0.0.1", "[::ffff:127.0.0.1]"] {
        assert_eq!(curl(false, host).await, "400", "this user's forged request to {host} is answered, and refused");
    }
    let root = std::fs::read_to_string("/proc/self/status").unwrap().lines().any(|l| l.starts_with("Uid:\t0\t"));
    if root {
        for host in ["127.0.0.1", "[::ffff:127.0.0.1]"] {
            assert_eq!(curl(true, host).await, "000", "another user's connection to {host} must be closed unanswered");
        }
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI must run this test as root, to act as another user");
        eprintln!("not root: another user's connection can't be tried here");
    }
    assert_eq!(service.view().phase, Phase::WaitingForBrowser);
    let redirect = browser.answer("quinn", Decision::Approve).await;
    assert_eq!(browser_client().get(&redirect).send().await.unwrap().status(), 200);
    assert_eq!(service.view().phase, Phase::SignedIn, "{:?}", service.view().notice);
    service.sign_out().await.unwrap();
}
