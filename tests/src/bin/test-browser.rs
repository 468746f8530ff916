//! The "system browser" for the end-to-end suite. Gatehouse opens URLs with xdg-open; the harness makes this
//! the default handler for http and https in its XDG directories, as a person picks a default browser. Like a person with a browser, it signs in at the provider's real pages
//! and hands the final custom-scheme redirect to `xdg-open`, which routes it to the app.
//!
//! `$GATEHOUSE_TEST_BROWSER_DIR` is its control directory:
//! - `decision`: `approve` (the default), `deny`, or `ignore` (the person never finishes);
//! - `hold`: while this file exists, the person has not started yet;
//! - `log`: one line per page opened, appended;
//! - `last-redirect`: the last redirect handed to the OS (single-use, in the test's scratch space only).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::user_agent::{self, Decision};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args().nth(1).unwrap_or_default();
    let dir = std::env::var_os("GATEHOUSE_TEST_BROWSER_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).map(|s| s.trim().to_owned()).unwrap_or_default();

    let hold_until = Instant::now() + Duration::from_secs(120);
    while dir.join("hold").exists() && Instant::now() < hold_until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let decision = read("decision");
    let outcome = match decision.as_str() {
        "ignore" => Ok(None),
        "deny" => user_agent::authorize(&url, "alice", Decision::Deny).await.map(Some),
        _ => user_agent::authorize(&url, "alice", Decision::Approve).await.map(Some),
    };
    let (line, code) = match outcome {
        Ok(None) => ("opened the sign-in page and left it".to_string(), 0),
        Ok(Some(redirect)) => {
            let _ = std::fs::write(dir.join("last-redirect"), &redirect);
            match std::process::Command::new("xdg-open").arg(&redirect).status() {
                Ok(s) if s.success() => ("handed the redirect to xdg-open".to_string(), 0),
                Ok(s) => (format!("xdg-open failed: {s}"), 1),
                Err(e) => (format!("xdg-open could not run: {e}"), 1),
            }
        }
        Err(e) => (format!("sign-in failed: {e}"), 1),
    };
    if let Ok(mut log) = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("log")) {
        let _ = writeln!(log, "{decision}: {line}");
    }
    std::process::exit(code);
}
