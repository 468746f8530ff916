//! The bundled demo authorization server (`tests/idp`, npm `oidc-provider`), started on a free loopback port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// The native client Gatehouse is registered as.
pub const CLIENT_ID: &str = "gatehouse-desktop";
/// The same, but never issued a refresh token.
pub const NO_REFRESH_CLIENT_ID: &str = "gatehouse-no-refresh";
/// The same, but with a client secret that needs RFC 6749 §2.3.1's form-encoding.
pub const SECRET_CLIENT: (&str, &str) = ("gatehouse-with-secret", "p+q/r=s%t:u v");
/// A client the demo provider takes only with its secret in the form body (`client_secret_post`).
pub const POST_SECRET_CLIENT: (&str, &str) = ("gatehouse-secret-post", "posted+secret/=");
const INTROSPECTION_CLIENT: (&str, &str) = ("gatehouse-tests", "introspection-only-test-secret");

/// A running demo provider. Dropping it stops it.
pub struct Idp {
    /// The port it listens on.
    pub port: u16,
    log: PathBuf,
    env: Vec<(String, String)>,
    child: Child,
    http: reqwest::Client,
}

impl Idp {
    /// Starts a fresh provider on a free port, with its test hooks on, and waits until it serves. Its output
    /// goes to `log`; its grants are kept in a file beside it, so [`Idp::restart`] brings them back.
    pub fn start(log: &Path) -> Idp {
        Idp::start_with(log, &[])
    }

    /// [`Idp::start`], with extra environment for the server (see `tests/idp/server.mjs`).
    pub fn start_with(log: &Path, env: &[(&str, &str)]) -> Idp {
        let _ = std::fs::remove_file(log.with_extension("store.json"));
        let port = crate::free_port();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let child = spawn(port, log, &log.with_extension("store.json"), &env);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("HTTP client: {e}"));
        Idp { port, log: log.to_owned(), env, child, http }
    }

    /// Starts the provider again after [`Idp::stop`], on the same port and with the same grants.
    pub fn restart(&mut self) {
        self.stop();
        let (log, store) = (self.log.with_extension("restarted.log"), self.log.with_extension("store.json"));
        self.child = spawn(self.port, &log, &store, &self.env);
    }

    /// The issuer identifier.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A Gatehouse profile for this provider.
    pub fn profile_toml(&self, profile: &str) -> String {
        self.profile_toml_for(profile, CLIENT_ID)
    }

    /// A profile whose tokens other tools can use: `dpop = false`, so they are Bearer tokens (the demo provider
    /// binds tokens to a DPoP key otherwise).
    pub fn bearer_profile_toml(&self, profile: &str) -> String {
        format!("{}dpop = false\n", self.profile_toml(profile))
    }

    /// A Gatehouse profile for this provider, signing in as `client_id`.
    pub fn profile_toml_for(&self, profile: &str, client_id: &str) -> String {
        format!(
            r#"profile = "{profile}"
name = "Demo provider (test)"
issuer = "{issuer}"
client_id = "{client_id}"
scopes = ["openid", "profile", "offline_access"]
redirect_uri = "com.example.gatehouse:/callback"
resource_url = "{issuer}/api/resource"
"#,
            issuer = self.issuer()
        )
    }

    /// The token requests the provider refused, leaving out its DPoP nonce challenges (`use_dpop_nonce`, RFC
    /// 9449 §8), which are a handshake every DPoP client goes through, not a refusal.
    pub async fn refused_grants(&self) -> Vec<Value> {
        let mut refused = self.events_named("grant.error", None).await;
        refused.retain(|event| event["error"] != "use_dpop_nonce");
        refused
    }

    /// The provider's event log (its test hook).
    pub async fn events(&self) -> Vec<Value> {
        let url = format!("{}/__test/events", self.issuer());
        let response = self.http.get(url).send().await.unwrap_or_else(|e| panic!("events: {e}"));
        response.json().await.unwrap_or_else(|e| panic!("events: {e}"))
    }

    /// The events named `name`, optionally only those for `grant_type`.
    pub async fn events_named(&self, name: &str, grant_type: Option<&str>) -> Vec<Value> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e["event"] == name && grant_type.is_none_or(|g| e["grantType"] == g))
            .collect()
    }

    /// RFC 7662 introspection of `token`, as a resource server would ask.
    pub async fn introspect(&self, token: &str) -> Value {
        let url = format!("{}/token/introspection", self.issuer());
        let response = self
            .http
            .post(url)
            .basic_auth(INTROSPECTION_CLIENT.0, Some(INTROSPECTION_CLIENT.1))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("introspection: {e}"));
        response.json().await.unwrap_or_else(|e| panic!("introspection: {e}"))
    }

    /// Tries the refresh_token grant directly; returns the HTTP status and body.
    pub async fn try_refresh(&self, refresh_token: &str) -> (u16, Value) {
        let url = format!("{}/token", self.issuer());
        let response = self
            .http
            .post(url)
            .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", CLIENT_ID)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("refresh: {e}"));
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Stops the provider now.
    pub fn stop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts `node server.mjs` on `port` and waits for its ready line.
fn spawn(port: u16, log: &Path, store: &Path, env: &[(String, String)]) -> Child {
    let idp_dir = crate::tests_dir().join("idp");
    assert!(
        idp_dir.join("node_modules/oidc-provider").exists(),
        "tests/idp has no node_modules: run the README's test command, which installs them"
    );
    let mut child = Command::new("node")
        .arg("server.mjs")
        .current_dir(&idp_dir)
        .env("PORT", port.to_string())
        .env("IDP_TEST_HOOKS", "1")
        .env("IDP_STORE", store)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("couldn't start node: {e}"));
    let (ready_tx, ready_rx) = mpsc::channel();
    let mut log_file = std::fs::File::create(log).unwrap_or_else(|e| panic!("log {}: {e}", log.display()));
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        use std::io::Write;
        let Some(stdout) = stdout else { return };
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("\"event\":\"ready\"") {
                let _ = ready_tx.send(());
            }
            let _ = writeln!(log_file, "{line}");
        }
    });
    std::thread::spawn(move || {
        let Some(stderr) = stderr else { return };
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !line.contains("WARNING") && !line.contains("NOTICE") {
                eprintln!("[idp] {line}");
            }
        }
    });
    if ready_rx.recv_timeout(Duration::from_secs(20)).is_err() {
        let _ = child.kill();
        panic!("the demo provider did not start on port {port}; see {}", log.display());
    }
    child
}

/// Stops a child with SIGTERM, then SIGKILL if it lingers.
pub fn stop_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    for _ in 0..50 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}
