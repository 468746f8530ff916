//! Debian's `oidc-agent`, the agent Gatehouse's is measured against: started on its own socket and config
//! directory, with one account that `oidc-gen` signs in to the demo provider through the device grant (RFC 8628),
//! approved by the scripted user agent. Stopped on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The demo provider's client for oidc-agent (`tests/idp/server.mjs`).
const CLIENT_ID: &str = "oidc-agent-bench";
const CLIENT_SECRET: &str = "oidc-agent-bench-secret";
/// What oidc-gen encrypts the account's file with; a test's own, of no value elsewhere.
const PASSWORD: &str = "gatehouse-bench";

/// A running `oidc-agent`.
pub struct OidcAgent {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

impl OidcAgent {
    /// Starts `oidc-agent` in the foreground with its socket and account files under `dir`, and waits until its
    /// socket is there.
    ///
    /// # Panics
    /// When oidc-agent is not installed (the README's test command installs it) or doesn't start.
    pub fn start(dir: &Path) -> OidcAgent {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("config")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let socket = dir.join("oidc-agent.sock");
        let log = std::fs::File::create(dir.join("oidc-agent.log")).unwrap_or_else(|e| panic!("log: {e}"));
        let child = Command::new("oidc-agent")
            .args(["--console", "--no-autoload", "--quiet", "--socket-path"])
            .arg(&socket)
            .env("OIDC_CONFIG_DIR", dir.join("config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("oidc-agent (Debian's oidc-agent-cli): {e}"));
        let started = std::time::Instant::now();
        while !socket.exists() {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "oidc-agent made no socket");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        OidcAgent { child, dir: dir.to_owned(), socket }
    }

    /// The agent's process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Makes the account `account` at the provider `issuer` with `oidc-gen`, signing in as `login` through the
    /// device grant, and loads it into the agent (oidc-gen does both).
    ///
    /// # Panics
    /// When oidc-gen shows no code, or doesn't end well.
    pub async fn add_account(&self, account: &str, issuer: &str, login: &str) {
        use tokio::io::AsyncBufReadExt as _;
        let mut gen = tokio::process::Command::new("oidc-gen")
            .arg(account)
            .arg(format!("--issuer={issuer}/"))
            .arg(format!("--client-id={CLIENT_ID}"))
            .arg(format!("--client-secret={CLIENT_SECRET}"))
            .args(["--scope=openid offline_access", "--flow=device", "--pw-env", "--confirm-default", "--no-url-call"])
            // Asked for even with the device grant; the client has none.
            .arg("--redirect-uri=http://localhost:4242")
            .envs(self.env())
            .env("OIDC_ENCRYPTION_PW", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("oidc-gen: {e}"));
        // It shows the code on stderr.
        let mut lines = tokio::io::BufReader::new(gen.stderr.take().unwrap_or_else(|| panic!("no stderr"))).lines();
        let (mut uri, mut shown) = (None, Vec::new());
        let code = loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("oidc-gen showed no code in 30 s: {shown:?}"))
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("oidc-gen showed no code: {shown:?}"));
            shown.push(line.clone());
            if line.starts_with("http") && uri.is_none() {
                uri = Some(line.trim().to_owned());
            } else if let Some(code) = line.strip_prefix("And enter the code:") {
                break code.trim().to_owned();
            }
        };
        let uri = uri.unwrap_or_else(|| panic!("oidc-gen showed no address: {shown:?}"));
        crate::user_agent::approve_device(&uri, &code, login)
            .await
            .unwrap_or_else(|e| panic!("approving oidc-gen's device code: {e}"));
        // The rest of what it prints (a QR code) is read so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let output = tokio::time::timeout(std::time::Duration::from_secs(30), gen.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("oidc-gen didn't end"))
            .unwrap_or_else(|e| panic!("oidc-gen: {e}"));
        assert!(output.status.success(), "oidc-gen: {shown:?} {}", String::from_utf8_lossy(&output.stdout));
    }

    /// `oidc-token account`, as a program runs it to get a token from this agent.
    pub fn token_command(&self, account: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("oidc-token");
        command.arg(account).envs(self.env());
        command
    }

    /// The environment oidc-agent's tools find it by.
    fn env(&self) -> [(&'static str, PathBuf); 2] {
        [("OIDC_SOCK", self.socket.clone()), ("OIDC_CONFIG_DIR", self.dir.join("config"))]
    }
}

impl Drop for OidcAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
