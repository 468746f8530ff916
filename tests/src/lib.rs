//! The test harness: the real demo authorization server, a scripted user agent that fills in its real forms,
//! and helpers that look at the real keychain from the outside.
//!
//! Everything here starts real processes and stops them on drop, also when a test fails.

pub mod cli;
pub mod desktop;
pub mod faults;
pub mod idp;
pub mod keyring;
pub mod notifications;
pub mod oidc_agent;
pub mod tray;
pub mod user_agent;

use std::path::PathBuf;

/// The tests crate's directory.
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where tests keep logs and screenshots (`tests/artifacts/<name>`), created on demand.
pub fn artifacts_dir(name: &str) -> PathBuf {
    let dir = tests_dir().join("artifacts").join(name);
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// SHA-256 of `value` as lowercase hex; the demo provider logs token hashes, never tokens.
pub fn sha256_hex(value: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `link` with its query parameter `name` set to `value`, the rest as it was.
pub fn with_param(link: &str, name: &str, value: &str) -> String {
    let mut url = url::Url::parse(link).unwrap_or_else(|e| panic!("{link}: {e}"));
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.to_string(), if k == name { value.to_owned() } else { v.to_string() }))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

/// A config file's path for the test `name`, in the suite's scratch directory (not written yet).
pub fn config_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("GATEHOUSE_TEST_SCRATCH").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    dir.join(format!("gatehouse-{name}-{}.toml", std::process::id()))
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn accepts_connections(port: u16) -> bool {
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(1)).is_ok()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Waits until `check` returns `Some`, polling every 100 ms, or panics with `what` after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
