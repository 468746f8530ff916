//! The "system browser" for the end-to-end suite. Gatehouse opens URLs with xdg-open, which runs `$BROWSER`;
//! the harness points `$BROWSER` here. Like a person with a browser, it signs in at the provider's real pages
//! and hands the final custom-scheme redirect to `xdg-open`, which routes it to the app.
//!
//! Environment: `GATEHOUSE_TEST_LOGIN` (default "alice"); `GATEHOUSE_TEST_DECISION` = approve (default), deny,
//! or ignore (the person never finishes); `GATEHOUSE_TEST_BROWSER_LOG` appends what happened to a file.

use std::io::Write;

use harness::user_agent::{self, Decision};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::args().nth(1).unwrap_or_default();
    let login = std::env::var("GATEHOUSE_TEST_LOGIN").unwrap_or_else(|_| "alice".into());
    let decision = std::env::var("GATEHOUSE_TEST_DECISION").unwrap_or_else(|_| "approve".into());
    let outcome = match decision.as_str() {
        "ignore" => Ok(None),
        "deny" => user_agent::authorize(&url, &login, Decision::Deny).await.map(Some),
        _ => user_agent::authorize(&url, &login, Decision::Approve).await.map(Some),
    };
    let (line, code) = match outcome {
        Ok(None) => ("opened the sign-in page and left it".to_string(), 0),
        Ok(Some(redirect)) => {
            let status = std::process::Command::new("xdg-open").arg(&redirect).status();
            match status {
                Ok(s) if s.success() => ("handed the redirect to xdg-open".to_string(), 0),
                Ok(s) => (format!("xdg-open failed: {s}"), 1),
                Err(e) => (format!("xdg-open could not run: {e}"), 1),
            }
        }
        Err(e) => (format!("sign-in failed: {e}"), 1),
    };
    if let Some(path) = std::env::var_os("GATEHOUSE_TEST_BROWSER_LOG") {
        if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(file, "{decision} {login}: {line}");
        }
    }
    std::process::exit(code);
}
