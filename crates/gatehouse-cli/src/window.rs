//! The way from `gatehouse` to the window program.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// The file name of the window program, installed in the same directory as `gatehouse`.
pub const WINDOW_PROGRAM: &str = "gatehouse-window";

/// Replaces this process with the window program, given the same arguments (a sign-in link, `--hidden`,
/// `--config FILE`), environment and working directory. On Unix the process stays the same one (`exec`): what
/// started `gatehouse` (a desktop entry, WebDriver, a service manager) is left holding the window's process.
/// Elsewhere the window runs as a child, and its exit code is this program's.
pub fn open(args: Vec<OsString>) -> ExitCode {
    let program = match window_program() {
        Ok(program) => program,
        Err(e) => return missing(&e),
    };
    let mut command = std::process::Command::new(&program);
    let mut args = args.into_iter();
    let name = args.next();
    command.args(args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // The name it was started by, so the window's class and process name stay `gatehouse`.
        if let Some(name) = name {
            command.arg0(name);
        }
        // `exec` only returns when it failed.
        let e = command.exec();
        missing(&format!("{}: {e}", program.display()))
    }
    #[cfg(not(unix))]
    {
        let _ = name;
        match command.status() {
            Ok(status) => ExitCode::from(status.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(1)),
            Err(e) => missing(&format!("{}: {e}", program.display())),
        }
    }
}

/// Starts the window program beside this one with `args` (no program name), apart from this process: in a
/// process group of its own, so that Ctrl+C in this terminal leaves it running, and with no terminal. A
/// Gatehouse already running (the window or the light tray) is handed the arguments instead, by the
/// single-instance hand-over, and the started one ends at once.
///
/// Returns the started program, to see whether it failed at once.
///
/// # Errors
/// Why the window program couldn't be started.
pub fn start(args: &[OsString]) -> Result<std::process::Child, String> {
    use std::process::Stdio;
    let program = window_program()?;
    let mut command = std::process::Command::new(&program);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
    command.spawn().map_err(|e| format!("{}: {e}", program.display()))
}

/// Replaces the window program's process with the light tray (`gatehouse --hidden`, beside it), keeping the
/// config choice of `args` (the window's own command line, program first). Returns only when that failed.
#[cfg(unix)]
pub fn open_tray(args: &[OsString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let program = match crate::autostart::program() {
        Ok(program) => program,
        Err(e) => return e,
    };
    let mut command = std::process::Command::new(program);
    if let Some(name) = args.first() {
        command.arg0(name);
    }
    command.args(config_args(args).into_iter().skip(1)).arg(crate::autostart::HIDDEN_FLAG);
    command.exec()
}

/// The program name and config choice (`--config FILE`, `--config=FILE`) of `args`, a command line.
pub(crate) fn config_args(args: &[OsString]) -> Vec<OsString> {
    let mut kept = Vec::new();
    let mut rest = args.iter();
    kept.extend(rest.next().cloned());
    while let Some(arg) = rest.next() {
        if arg == "--config" {
            kept.push(arg.clone());
            kept.extend(rest.next().cloned());
        } else if arg.to_str().is_some_and(|a| a.starts_with("--config=")) {
            kept.push(arg.clone());
        }
    }
    kept
}

/// The window program beside this one.
fn window_program() -> Result<PathBuf, String> {
    let this = std::env::current_exe().map_err(|e| format!("this program's path is unknown ({e})"))?;
    Ok(this.with_file_name(format!("{WINDOW_PROGRAM}{}", std::env::consts::EXE_SUFFIX)))
}

fn missing(detail: &str) -> ExitCode {
    crate::say!(
        "gatehouse: error[no_window]: Gatehouse's window couldn't be started ({detail}). Reinstall Gatehouse; the \
         command line (gatehouse --help) works without it."
    );
    ExitCode::FAILURE
}
