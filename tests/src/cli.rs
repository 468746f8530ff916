//! The command line, run as another tool runs it: the built `gatehouse` binary in a child process, with its
//! config file named in the environment.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What one run of the command line did.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 if it was killed).
    pub code: i32,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// How long it took, start to exit.
    pub elapsed: Duration,
}

/// The environment of a command with no session bus, so no keychain: only a running Gatehouse's agent can give it
/// a token.
pub fn no_keychain() -> Vec<(String, String)> {
    vec![("DBUS_SESSION_BUS_ADDRESS".to_owned(), "unix:path=/nonexistent/bus".to_owned())]
}

/// Runs `gatehouse args…` with `config` and waits for it.
///
/// # Panics
/// When the binary can't be started.
pub async fn gatehouse(config: &Path, args: &[&str]) -> Run {
    gatehouse_with(config, args, &[]).await
}

/// Runs `gatehouse args…` with `config` and the extra environment `env`, and waits for it.
///
/// # Panics
/// When the binary can't be started.
pub async fn gatehouse_with(config: &Path, args: &[&str], env: &[(String, String)]) -> Run {
    let started = Instant::now();
    let output = tokio::process::Command::new(crate::desktop::app_binary())
        .args(args)
        .env("GATEHOUSE_CONFIG", config)
        .env("GATEHOUSE_LOG", "info")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("gatehouse {args:?}: {e}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Runs `gatehouse args…` with `config`, writes `input` to its stdin, and waits for it.
///
/// # Panics
/// When the binary can't be started.
pub async fn gatehouse_with_input(config: &Path, args: &[&str], input: &str) -> Run {
    gatehouse_with_input_env(config, args, input, &[]).await
}

/// As [`gatehouse_with_input`], with the extra environment `env`.
///
/// # Panics
/// When the binary can't be started.
pub async fn gatehouse_with_input_env(config: &Path, args: &[&str], input: &str, env: &[(String, String)]) -> Run {
    use tokio::io::AsyncWriteExt;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(crate::desktop::app_binary())
        .args(args)
        .env("GATEHOUSE_CONFIG", config)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("gatehouse {args:?}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    let output = child.wait_with_output().await.unwrap_or_else(|e| panic!("gatehouse {args:?}: {e}"));
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// Runs `gatehouse token` `count` times at once, and returns the runs.
///
/// # Panics
/// When a run can't be started.
pub async fn concurrent_tokens(config: &Path, count: usize) -> Vec<Run> {
    concurrent_runs(config, &["token"], count).await
}

/// Runs `gatehouse args…` `count` times at once, and returns the runs.
///
/// # Panics
/// When a run can't be started.
pub async fn concurrent_runs(config: &Path, args: &[&str], count: usize) -> Vec<Run> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (config, args) = (config.to_owned(), args.clone());
            tokio::spawn(async move {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                gatehouse(&config, &args).await
            })
        })
        .collect();
    let mut runs = Vec::new();
    for task in tasks {
        runs.push(task.await.unwrap_or_else(|e| panic!("gatehouse token: {e}")));
    }
    runs
}

/// Asks the provider's resource server whether it accepts `token`: the HTTP status of `GET /api/resource`.
///
/// # Panics
/// When the request can't be made.
pub async fn resource_status(issuer: &str, token: &str) -> u16 {
    resource_answer(issuer, "/api/resource", token).await.0
}

/// What the demo resource at `path` (`/api/resource`, `/api/a`, `/api/b`) answers `token` with: the HTTP status,
/// and its JSON (`null` when it is none).
///
/// # Panics
/// When the request can't be made.
pub async fn resource_answer(issuer: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .get(format!("{issuer}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// Gatehouse's renewal lock file for `profile`, where the README says it is on Linux, written out here rather
/// than computed as the code computes it: `/run/user/UID` where the user has one, else `/tmp` (never `TMPDIR`).
///
/// # Panics
/// When this process's user can't be found.
pub fn renewal_lock_path(profile: &str) -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").unwrap_or_else(|e| panic!("/proc/self: {e}")).uid();
    let service = crate::keyring::SERVICE;
    let runtime = PathBuf::from(format!("/run/user/{uid}"));
    let base = match std::fs::symlink_metadata(&runtime) {
        Ok(meta) if meta.is_dir() && meta.uid() == uid => runtime.join(service),
        _ => PathBuf::from(format!("/tmp/{service}-{uid}")),
    };
    base.join("locks").join(format!("{profile}.lock"))
}

/// Takes `profile`'s renewal lock as another Gatehouse process would, until the file is dropped: the
/// processes that want to renew then queue up at it.
///
/// # Panics
/// When the lock file can't be made or locked.
pub fn hold_renewal_lock(profile: &str) -> std::fs::File {
    let path = renewal_lock_path(profile);
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.lock().unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    file
}

/// How many other processes have `path` open: those waiting at (or holding) a lock on it.
pub fn processes_with_open(path: &Path) -> usize {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()) && n != me))
        .filter(|e| {
            std::fs::read_dir(e.path().join("fd")).is_ok_and(|fds| {
                fds.filter_map(|fd| fd.ok()).any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == path))
            })
        })
        .count()
}

/// The profiles `gatehouse status --json` printed, each with the name of who is signed in ("" for nobody).
pub fn listed_accounts(stdout: &str) -> Vec<(String, String)> {
    let status: serde_json::Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("status --json printed no JSON ({e}): {stdout}"));
    let profiles = status["profiles"].as_array().unwrap_or_else(|| panic!("no profiles in {stdout}"));
    profiles
        .iter()
        .map(|p| {
            let name = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            (name(&p["profile"]), name(&p["account"]["name"]))
        })
        .collect()
}

/// Runs `gatehouse sign-in --device` with `config`, approves the code it shows as `login` in the test's user
/// agent, and waits for it. Returns the run, its stderr whole.
///
/// # Panics
/// When no code is shown within 30 s, or the command doesn't end.
pub async fn device_sign_in(config: &Path, login: &str) -> Run {
    device_sign_in_with(config, login, &[]).await
}

/// As [`device_sign_in`], with the extra environment `env`.
///
/// # Panics
/// As [`device_sign_in`].
pub async fn device_sign_in_with(config: &Path, login: &str, env: &[(String, String)]) -> Run {
    use tokio::io::AsyncBufReadExt;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(crate::desktop::app_binary())
        .args(["sign-in", "--device"])
        .env("GATEHOUSE_CONFIG", config)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("gatehouse sign-in --device: {e}"));
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap_or_else(|| panic!("no stderr"))).lines();
    let mut shown = Vec::new();
    let next = |line: std::io::Result<Option<String>>| line.ok().flatten();
    let (uri, code) = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), stderr.next_line())
            .await
            .unwrap_or_else(|_| panic!("no code shown in 30 s: {shown:?}"));
        let line = next(line).unwrap_or_else(|| panic!("no code shown: {shown:?}"));
        shown.push(line.clone());
        let Some(uri) = line.strip_prefix("To sign in, open ").and_then(|l| l.split(' ').next()) else { continue };
        let uri = uri.to_owned();
        let code = loop {
            let line = next(stderr.next_line().await).unwrap_or_else(|| panic!("no code shown: {shown:?}"));
            if !line.trim().is_empty() {
                break line.trim().to_owned();
            }
        };
        break (uri, code);
    };
    crate::user_agent::approve_device(&uri, &code, login)
        .await
        .unwrap_or_else(|e| panic!("approving the device code: {e}"));
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .unwrap_or_else(|_| panic!("gatehouse sign-in --device didn't end"))
        .unwrap_or_else(|e| panic!("gatehouse sign-in --device: {e}"));
    let mut rest = shown.join("\n");
    while let Some(line) = next(stderr.next_line().await) {
        rest.push('\n');
        rest.push_str(&line);
    }
    Run { code: status.code().unwrap_or(-1), stdout: String::new(), stderr: rest, elapsed: started.elapsed() }
}
