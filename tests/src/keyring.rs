//! The keychain seen from the outside, through `secret-tool` (libsecret), as a user would check it.

use std::process::Command;

/// The Secret Service `service` attribute Gatehouse stores under: its app identifier.
pub const SERVICE: &str = "com.example.gatehouse";

/// The secret stored for `profile`, or `None` when there is no entry.
pub fn lookup(profile: &str) -> Option<String> {
    let output = Command::new("secret-tool")
        .args(["lookup", "service", SERVICE, "username", profile])
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
