//! The keychain seen from the outside, through `secret-tool` (libsecret), as a user would check it.

use std::process::Command;

/// The Secret Service `service` attribute Gatehouse stores under: its app identifier.
pub const SERVICE: &str = "com.example.gatehouse";

/// The secret stored for `profile`, or `None` when there is no entry.
pub fn lookup(profile: &str) -> Option<String> {
    lookup_in(SERVICE, profile)
}

/// Where Gatehouse keeps what a client registration gave it (RFC 7591), by profile.
pub const REGISTRATION_SERVICE: &str = "com.example.gatehouse.registration";

/// Where Gatehouse keeps the client secrets providers issue to its registrations.
pub const CLIENT_SECRET_SERVICE: &str = "com.example.gatehouse.client-secret";

/// The secret stored under `service` for `name`, or `None` when there is no entry.
pub fn lookup_in(service: &str, name: &str) -> Option<String> {
    let output = Command::new("secret-tool")
        .args(["lookup", "service", service, "username", name])
        .output()
        .unwrap_or_else(|e| panic!("secret-tool: {e} (is libsecret-tools installed?)"));
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned()).filter(|s| !s.is_empty())
}

/// The stored session for `profile` as JSON, or `None`.
pub fn session(profile: &str) -> Option<serde_json::Value> {
    lookup(profile)
        .map(|text| serde_json::from_str(&text).unwrap_or_else(|e| panic!("keychain entry is not JSON: {e}")))
}

/// How many items the keychain holds for Gatehouse's `profile`.
pub fn count_entries(profile: &str) -> usize {
    let output = Command::new("secret-tool")
        .args(["search", "--all", "service", SERVICE, "username", profile])
        .output()
        .unwrap_or_else(|e| panic!("secret-tool: {e}"));
    // secret-tool prints one "[/org/freedesktop/secrets/collection/...]" header per item.
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    text.lines().filter(|l| l.starts_with('[')).count()
}

/// Asserts that this process can reach an unlocked Secret Service, with a hint when it can't.
pub fn require_secret_service() {
    let probe = Command::new("secret-tool").args(["search", "service", "gatehouse-probe"]).output();
    let ok = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        && probe.is_ok_and(|o| o.status.success() || o.stderr.is_empty());
    assert!(ok, "no unlocked Secret Service on the session bus: run the tests with the README's test command");
}

/// Locks the login collection, as the desktop does on screen lock or idle timeout.
pub fn lock() {
    call_secret_service(
        "/org/freedesktop/secrets",
        "org.freedesktop.Secret.Service.Lock",
        &["array:objpath:/org/freedesktop/secrets/collection/login"],
    );
}

/// Calls `method` on the Secret Service's object at `path` with `dbus-send`, as a desktop would.
///
/// # Panics
/// When the call fails.
fn call_secret_service(path: &str, method: &str, arguments: &[&str]) {
    let status = Command::new("dbus-send")
        .args(["--session", "--dest=org.freedesktop.secrets", "--type=method_call", "--print-reply", path, method])
        .args(arguments)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("dbus-send: {e}"));
    assert!(status.success(), "{method} on {path} failed");
}

/// Unlocks the login collection with its password, as a person does at the unlock prompt. gnome-keyring has no
/// public unlock call without a prompter, so a fresh daemon replaces the running one and unlocks with it.
pub fn unlock() {
    let password =
        std::env::var("GATEHOUSE_TEST_KEYRING_PASSWORD").unwrap_or_else(|_| panic!("run under tests/bin/test"));
    let mut child = Command::new("gnome-keyring-daemon")
        .args(["--unlock", "--components=secrets", "--replace", "--daemonize"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("gnome-keyring-daemon: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        let _ = stdin.write_all(password.as_bytes());
    }
    let status = child.wait().unwrap_or_else(|e| panic!("gnome-keyring-daemon: {e}"));
    assert!(status.success(), "unlocking the keyring failed");
}

/// The D-Bus object paths of the keychain items for Gatehouse's `profile`, which name their collection
/// (`/org/freedesktop/secrets/collection/<name>/<n>`), from the Secret Service's own `SearchItems`.
pub fn item_paths(profile: &str) -> Vec<String> {
    let attributes = format!("{{'service': '{SERVICE}', 'username': '{profile}'}}");
    let output = Command::new("gdbus")
        .args(["call", "--session", "--dest", "org.freedesktop.secrets", "--object-path", "/org/freedesktop/secrets"])
        .args(["--method", "org.freedesktop.Secret.Service.SearchItems", &attributes])
        .output()
        .unwrap_or_else(|e| panic!("gdbus: {e}"));
    assert!(output.status.success(), "SearchItems: {}", String::from_utf8_lossy(&output.stderr));
    // `([objectpath '/org/…/1', …], @ao [])`: the unlocked items, then the locked ones.
    String::from_utf8_lossy(&output.stdout)
        .split('\'')
        .filter(|part| part.starts_with("/org/freedesktop/secrets/"))
        .map(str::to_owned)
        .collect()
}

/// Stores a second item for `profile` beside Gatehouse's, as another program might: with one more attribute,
/// `secret-tool` adds an item instead of replacing Gatehouse's.
pub fn store_duplicate(profile: &str, secret: &str) {
    store_with(&["service", SERVICE, "username", profile, "written-by", "another-tool"], secret);
}

/// Keeps `secret` under `service` for `name`, as Gatehouse keeps its registrations' client secrets.
pub fn store_in(service: &str, name: &str, secret: &str) {
    store_with(&["service", service, "username", name], secret);
}

/// Replaces the text of Gatehouse's item for `profile` with `secret`, as another program might.
pub fn store_raw(profile: &str, secret: &str) {
    store_with(&["service", SERVICE, "username", profile], secret);
}

fn store_with(attributes: &[&str], secret: &str) {
    use std::io::Write;
    let mut child = Command::new("secret-tool")
        .args(["store", "--label=written by another tool"])
        .args(attributes)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("secret-tool: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(secret.as_bytes());
    }
    assert!(child.wait().is_ok_and(|s| s.success()), "secret-tool store failed");
}

/// Deletes the login collection, and with it the `default` alias, as WSL and some KeePassXC set-ups have no
/// default collection. [`unlock`] brings a fresh login collection back.
pub fn delete_login_collection() {
    call_secret_service("/org/freedesktop/secrets/collection/login", "org.freedesktop.Secret.Collection.Delete", &[]);
}

/// The Secret Service stopped in its tracks (`SIGSTOP`), as a keyring stuck behind a prompt or a swapped-out
/// daemon is: calls to it hang until [`Paused`] is dropped, which lets it go on (`SIGCONT`). Only the daemon that
/// owns `org.freedesktop.secrets` on the test's own session bus is paused.
pub struct Paused {
    pid: String,
}

impl Paused {
    /// Pauses the daemon now.
    ///
    /// # Panics
    /// When the daemon can't be found or signalled.
    pub fn now() -> Paused {
        let output = Command::new("gdbus")
            .args(["call", "--session", "--dest", "org.freedesktop.DBus", "--object-path", "/org/freedesktop/DBus"])
            .args(["--method", "org.freedesktop.DBus.GetConnectionUnixProcessID", "org.freedesktop.secrets"])
            .output()
            .unwrap_or_else(|e| panic!("gdbus: {e}"));
        // `(uint32 1234,)`
        let text = String::from_utf8_lossy(&output.stdout);
        let pid = text.split_whitespace().nth(1).unwrap_or_default().trim_end_matches([',', ')']).to_owned();
        assert!(!pid.is_empty(), "no Secret Service process: {text}");
        signal(&pid, "-STOP");
        Paused { pid }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal(&self.pid, "-CONT");
    }
}

fn signal(pid: &str, signal: &str) {
    let status = Command::new("kill").args([signal, pid]).status().unwrap_or_else(|e| panic!("kill: {e}"));
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// The string `field` of the session the keychain holds for `profile`, read from the outside as a person would;
/// panics, saying which, when there is no entry or no such field.
pub fn stored(profile: &str, field: &str) -> String {
    let session = session(profile).unwrap_or_else(|| panic!("no keychain entry for {profile}"));
    session[field].as_str().unwrap_or_else(|| panic!("the keychain entry for {profile} has no {field}")).to_owned()
}
