//! The command line against the real demo provider and the real Secret Service: `gatehouse status`, `token`
//! and `sign-out` as another tool runs them, in child processes, sharing the keychain entry with a session
//! signed in through the service (as the window does).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed assertion

#[path = "../common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::time::Duration;

use gatehouse_core::tokens::unix_now;
use harness::cli::{
    concurrent_runs, concurrent_tokens, gatehouse, gatehouse_with_input, hold_renewal_lock, processes_with_open,
    renewal_lock_path, resource_answer, resource_status,
};
use harness::idp::Idp;
use harness::{artifacts_dir, config_path, desktop, keyring, sha256_hex, wait_for};

/// A provider, a config file for `profile`, and Alice signed in under that profile, with Bearer tokens that other
/// tools can use.
async fn signed_in(name: &str) -> (Idp, PathBuf) {
    signed_in_with(name, Idp::bearer_profile_toml).await
}

/// As [`signed_in`], with the profile `profile_toml` writes.
async fn signed_in_with(name: &str, profile_toml: fn(&Idp, &str) -> String) -> (Idp, PathBuf) {
    keyring::require_secret_service();
    let idp = Idp::start(&artifacts_dir(name).join("idp.log"));
    let profile = profile_of(name);
    let config = config_path(name);
    std::fs::write(&config, profile_toml(&idp, &profile)).unwrap();
    let (service, browser) = common::service(&profile_toml(&idp, &profile));
    service.start(Vec::new()).await;
    common::sign_in(&service, &browser, "alice").await;
    assert!(keyring::lookup(&profile).is_some());
    (idp, config)
}

fn profile_of(name: &str) -> String {
    format!("cli-{name}")
}

/// Every library the dynamic loader reported loading into the runs whose `LD_DEBUG=libs` output went to files
/// named `prefix.<pid>`, at start or later (`dlopen`).
fn loaded_libraries(prefix: &std::path::Path) -> String {
    let dir = prefix.parent().unwrap();
    let name = prefix.file_name().unwrap().to_string_lossy().into_owned();
    let mut loaded = String::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        if entry.file_name().to_string_lossy().starts_with(&format!("{name}.")) {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for line in text.lines().filter(|l| l.contains("calling init:")) {
                loaded.push_str(line.trim());
                loaded.push('\n');
            }
        }
    }
    loaded
}

/// Runs `gatehouse args…` (with `config`, when given) where there is no graphical session; returns its exit code
/// and what it said on stderr.
async fn without_a_display(args: &[&str], config: Option<&std::path::Path>) -> (Option<i32>, String) {
    let mut command = tokio::process::Command::new(harness::desktop::app_binary());
    command.args(args).env_remove("DISPLAY").env_remove("WAYLAND_DISPLAY");
    if let Some(config) = config {
        command.env("GATEHOUSE_CONFIG", config);
    }
    let output = command.output().await.unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

mod agent;
mod commands;
mod edges;
mod narrowed;
mod no_window;
mod sessions;
