//! Start at login on Linux: an XDG autostart entry, `$XDG_CONFIG_HOME/autostart/Gatehouse.desktop` (XDG
//! Autostart Specification 0.5). The entry itself is the setting: there is no second copy that could drift from it.
//! It runs `gatehouse --hidden`, the light tray ([`LIGHT_TRAY_FLAG`]), which makes no window until a person asks for one.
//!
//! The window and the light tray both switch it here, so they write the same entry.

use std::io;
use std::path::{Path, PathBuf};

use crate::handover::{self, FRONT_PROGRAM};
use crate::launch::LIGHT_TRAY_FLAG;

/// The entry's file name, and the name a session manager lists it under.
const NAME: &str = "Gatehouse";

/// The entry's path: `autostart/Gatehouse.desktop` in the user's config directory.
///
/// # Errors
/// [`io::ErrorKind::NotFound`] when there is no home directory to find it in.
pub fn entry_path() -> io::Result<PathBuf> {
    dirs::config_dir()
        .map(|dir| dir.join("autostart").join(format!("{NAME}.desktop")))
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no home directory, so no autostart folder"))
}

/// Whether Gatehouse starts at login: whether its entry is there.
///
/// # Errors
/// When the autostart folder can't be looked at.
pub fn is_enabled() -> io::Result<bool> {
    entry_path()?.try_exists()
}

/// Turns start at login on (writing the entry, which starts `program --hidden`) or off (removing it).
///
/// # Errors
/// When the entry can't be written or removed; it is then left as it was.
pub fn set(enabled: bool, program: &Path) -> io::Result<()> {
    let path = entry_path()?;
    if !enabled {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        };
    }
    let dir = path.parent().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no autostart folder"))?;
    std::fs::create_dir_all(dir)?;
    // Written beside and renamed over, so a session starting meanwhile never reads half an entry.
    let partial = dir.join(format!(".{NAME}.desktop.partial"));
    std::fs::write(&partial, entry(program))?;
    std::fs::rename(&partial, &path).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })
}

/// Turns start at login on or off for this installation: the entry starts [`program`].
///
/// # Errors
/// As [`set`], or when this program's own path is unknown.
pub fn switch(enabled: bool) -> io::Result<()> {
    set(enabled, &program()?)
}

/// The `gatehouse` program beside the running one (the window program or `gatehouse-cli`): the autostart entry
/// starts it, not the window, and it hands `--hidden` to `gatehouse-cli`, so a login start loads no window
/// toolkit.
///
/// # Errors
/// When this program's own path is unknown.
pub fn program() -> io::Result<PathBuf> {
    handover::beside(FRONT_PROGRAM)
}

/// The entry's text (Desktop Entry Specification 1.5).
fn entry(program: &Path) -> String {
    format!(
        "[Desktop Entry]\nType=Application\nName={NAME}\nComment=Keeps your sign-in ready in the tray\nExec={} \
         {LIGHT_TRAY_FLAG}\nTerminal=false\nStartupNotify=false\nX-GNOME-Autostart-enabled=true\n",
        exec_arg(&program.to_string_lossy())
    )
}

/// `arg` as one argument of an `Exec` key: quoted when it holds a reserved character, with `"`, `` ` ``, `$` and
/// `\` escaped inside the quotes; `%` doubled, as field codes start with it; and then, as for any string value, `\`
/// escaped again (Desktop Entry Specification, "The Exec key").
fn exec_arg(arg: &str) -> String {
    const RESERVED: &[char] =
        &[' ', '\t', '\n', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')', '`'];
    let arg = arg.replace('%', "%%");
    let quoted = if arg.contains(RESERVED) {
        let mut inner = String::with_capacity(arg.len() + 2);
        for c in arg.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                inner.push('\\');
            }
            inner.push(c);
        }
        format!("\"{inner}\"")
    } else {
        arg
    };
    quoted.replace('\\', "\\\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_runs_the_program_hidden_however_its_path_is_spelled() {
        let text = entry(Path::new("/usr/bin/gatehouse"));
        assert!(text.starts_with("[Desktop Entry]\nType=Application\n"), "{text}");
        assert!(text.contains("\nExec=/usr/bin/gatehouse --hidden\n"), "{text}");
        assert_eq!(exec_arg("/opt/My Apps/gatehouse"), "\"/opt/My Apps/gatehouse\"");
        assert_eq!(exec_arg("/home/a$b/100%/x\"y"), "\"/home/a\\\\$b/100%%/x\\\\\"y\"");
    }
}
