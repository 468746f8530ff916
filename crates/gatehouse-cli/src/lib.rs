//! The `gatehouse` program: its command line, and its way to the window.
//!
//! `gatehouse status`, `token`, `sign-in`, `sign-out` and `credential` run here, over `gatehouse-core`, and load
//! no window toolkit: git calls the credential helper on every fetch, and shell prompts call `token` all the
//! time, so a command costs what a keychain lookup costs. `--hidden` (a login start) is the light tray, which
//! keeps the sessions and shows the tray menu over D-Bus, still with no window toolkit. Anything else (no
//! command, a sign-in link the OS hands over) is the window's, and [`main`] replaces this process with the window
//! program, which is installed beside this one; the light tray does the same when the window is asked for.

/// Writes a line to stderr, like `eprintln!`, but never panics: a closed or full stderr (`gatehouse … 2>&1 | true`)
/// loses the line, where `eprintln!` would panic and, with `panic = "abort"`, end a process that holds tokens.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

pub mod autostart;
mod commands;
pub mod menu;
#[cfg(target_os = "linux")]
mod resident;
mod window;

use std::ffi::OsString;
use std::process::ExitCode;

pub use commands::{exit_code, is_cli, run, terminal_safe};
#[cfg(unix)]
pub use window::open_tray;
pub use window::{open as open_window, WINDOW_PROGRAM};

/// The app identifier: the keychain service, config directory and single-instance name the window uses too.
pub(crate) const IDENTIFIER: &str = "com.example.gatehouse";

/// Sends the log to stderr, at the level `GATEHOUSE_LOG` sets (`info` by default): the window's and the light
/// tray's, which follow each other in one process.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A log line that can't be written is lost, never reported with `eprintln!` (which panics on the same
    // closed stderr).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .try_init();
}

/// What every Gatehouse program does first, before it holds a token: no core dumps (see
/// [`gatehouse_core::os::disable_core_dumps`]). The limit is kept across the `exec` hand-overs.
pub fn no_core_dumps() {
    if let Err(e) = gatehouse_core::os::disable_core_dumps() {
        say!("gatehouse: warning: couldn't turn core dumps off: {e}");
    }
}

/// The single-instance D-Bus name and object path of the app `identifier`: those tauri-plugin-single-instance
/// serves in the window (its `ExecuteCallback(argv, cwd)` takes a second launch's arguments), and the light tray
/// serves in its stead.
pub fn single_instance(identifier: &str) -> (String, String) {
    let name = format!("{identifier}.SingleInstance");
    let path = format!("/{}", name.replace('.', "/").replace('-', "_"));
    (name, path)
}

/// Says to the window that it was started for a sign-in link it can't have been waiting for (a link that started
/// Gatehouse, or one the light tray got): the window says so. It stands in for the link, which would otherwise
/// stay in the long-lived window's command line, readable by every local user (`/proc/PID/cmdline`).
pub const STALE_LINK_FLAG: &str = "--stale-link";

/// `args` (program first) with every sign-in link (an argument that is neither a flag nor `--config`'s value)
/// replaced by one [`STALE_LINK_FLAG`]; `None` when there is none.
pub fn without_links<S: AsRef<std::ffi::OsStr> + From<&'static str> + Clone>(args: &[S]) -> Option<Vec<S>> {
    let mut kept = Vec::with_capacity(args.len());
    let mut linked = false;
    let mut rest = args.iter();
    kept.extend(rest.next().cloned());
    while let Some(arg) = rest.next() {
        let text = arg.as_ref().to_string_lossy();
        if text == "--config" {
            kept.push(arg.clone());
            kept.extend(rest.next().cloned());
        } else if text.starts_with('-') {
            kept.push(arg.clone());
        } else if !linked {
            linked = true;
            kept.push(S::from(STALE_LINK_FLAG));
        }
    }
    linked.then_some(kept)
}

/// Opens the window and starts a sign-in there, for the first profile or (`--sign-in=PROFILE`) the one named: what
/// the tray's Sign in asks of the window.
pub const SIGN_IN_FLAG: &str = "--sign-in";

/// The `gatehouse` program: runs the command line in `std::env::args_os()`, or hands everything to the window.
pub fn main() -> ExitCode {
    no_core_dumps();
    let args: Vec<OsString> = std::env::args_os().collect();
    if is_cli(&args) {
        return run(args);
    }
    // A login start is the light tray, with no window toolkit, until the window is asked for.
    #[cfg(target_os = "linux")]
    if autostart::starts_hidden(&args) {
        return resident::run(args);
    }
    window::open(args)
}
