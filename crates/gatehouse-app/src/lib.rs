//! What Gatehouse's two programs share, above [`gatehouse_core`] and below their front ends: `gatehouse` (the
//! command line and the light tray, no window toolkit) and `gatehouse-window` (the window, on Tauri).
//!
//! - [`installation`]: the app identifier, and where this user's config, added accounts and sessions are, found
//!   once; every program opens its accounts there.
//! - [`tray`]: the tray menu, a pure function of the accounts' view, and what a click on it does.
//! - [`launch`]: what a launch's arguments ask for (`--hidden`, `--sign-in[=PROFILE]`, a sign-in link).
//! - [`handover`]: the ways between the programs: the single-instance hand-over, and `exec` into the other one.
//! - [`autostart`]: start at login, an XDG autostart entry that starts the light tray.
//! - [`agent`]: the token agent, which serves this user's programs while Gatehouse runs.
//! - [`handouts`]: the log of which program was given which token, and when.
//!
//! Nothing here loads Tauri, GTK or WebKit.

/// Writes a line to stderr, like `eprintln!`, but never panics: a closed or full stderr (`gatehouse … 2>&1 | true`)
/// loses the line, where `eprintln!` would panic and, with `panic = "abort"`, end a process that holds tokens.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

#[cfg(unix)]
pub mod agent;
pub mod autostart;
pub mod handouts;
pub mod handover;
pub mod installation;
pub mod launch;
pub mod tray;

pub use installation::{Installation, IDENTIFIER};

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
