//! How Gatehouse's HTTP client reaches the provider: never through a proxy for a loopback endpoint (plain http
//! is allowed there only because it stays on this machine, RFC 8252 §8.3), and trusting the OS certificate
//! store as well as the bundled roots.
//!
//! Both read the process environment when a client is built, so this binary sets the proxy variables and
//! `SSL_CERT_FILE` once, before any client exists, and has no other tests. The "proxy" and the "servers" all
//! listen on 127.0.0.1: nothing here leaves the machine.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

use std::io::{Read, Write};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gatehouse_core::api::{self, Fetched};
use oauth2::AccessToken;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

struct Environment {
    /// The request lines the proxy received.
    proxied: Arc<Mutex<Vec<String>>>,
    /// The certificate authority that only `SSL_CERT_FILE` trusts.
    authority: CertifiedIssuer<'static, KeyPair>,
}

/// Sets the environment once: every proxy variable points at a local recording proxy, and `SSL_CERT_FILE`
/// holds a throwaway root that no bundled list has.
fn environment() -> &'static Environment {
    static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let proxied = Arc::new(Mutex::new(Vec::new()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::clone(&proxied);
        std::thread::spawn(move || {
            for mut stream in listener.incoming().map_while(Result::ok) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
                seen.lock().unwrap().push(line);
                let _ = stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });

        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "Gatehouse test root (network.rs)");
        let authority = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let scratch = std::env::var_os("GATEHOUSE_TEST_SCRATCH").map(std::path::PathBuf::from);
        let dir = scratch.unwrap_or_else(std::env::temp_dir).join(format!("network-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let roots = dir.join("roots.pem");
        std::fs::write(&roots, authority.pem()).unwrap();

        for name in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"] {
            std::env::set_var(name, &proxy);
        }
        for name in ["NO_PROXY", "no_proxy", "SSL_CERT_DIR", "REQUEST_METHOD"] {
            std::env::remove_var(name);
        }
        std::env::set_var("SSL_CERT_FILE", &roots);
        Environment { proxied, authority }
    })
}

fn proxied() -> Vec<String> {
    environment().proxied.lock().unwrap().clone()
}

const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n{\"ok\":true}";

/// Answers one request on each connection with `{"ok":true}`, through `tls` when given.
async fn serve(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
    while let Ok((stream, _)) = listener.accept().await {
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                Some(tls) => {
                    if let Ok(stream) = tls.accept(stream).await {
                        answer(stream).await;
                    }
                }
                None => answer(stream).await,
            }
        });
    }
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let _ = stream.write_all(ANSWER).await;
    let _ = stream.shutdown().await;
}

fn token() -> AccessToken {
    AccessToken::new("test-access-token".into())
}

#[tokio::test]
async fn loopback_endpoints_are_never_proxied_but_others_are() {
    environment();
    let client = gatehouse_core::http::Http::system(Duration::from_secs(5));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = Url::parse(&format!("http://{}/api/resource", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(serve(listener, None));

    let before = proxied().len();
    let fetched = api::get_json(&client, &local, &token(), None).await.unwrap();
    assert!(matches!(fetched, Fetched::Json(ref v) if v["ok"] == true), "{fetched:?}");
    let through_proxy: Vec<String> = proxied().into_iter().skip(before).filter(|l| l.contains("127.0.0.1")).collect();
    assert!(through_proxy.is_empty(), "a loopback request went through the proxy: {through_proxy:?}");

    // The proxy variables still count for everything else (and this request, too, stays on this machine).
    let remote = Url::parse("http://gatehouse-proxy-test.invalid/api/resource").unwrap();
    let error = api::get_json(&client, &remote, &token(), None).await.unwrap_err();
    assert_eq!(error.kind(), "bad_response", "{error}");
    assert!(
        proxied().iter().any(|l| l.starts_with("GET http://gatehouse-proxy-test.invalid/api/resource")),
        "{:?}",
        proxied()
    );
}

#[tokio::test]
async fn a_root_the_os_trusts_is_trusted() {
    let environment = environment();
    let key = KeyPair::generate().unwrap();
    let leaf =
        CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &environment.authority).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("https://{}/api/resource", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(serve(listener, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))));

    let client = gatehouse_core::http::Http::system(Duration::from_secs(5));
    let fetched = api::get_json(&client, &url, &token(), None).await;
    assert!(matches!(fetched, Ok(Fetched::Json(ref v)) if v["ok"] == true), "{fetched:?}");
}
