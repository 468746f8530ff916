//! Deep links into the running app.
//!
//! The OS delivers a custom-scheme redirect by launching Gatehouse again with the URL as its only argument.
//! single-instance (registered first, with its `deep-link` feature) forwards that launch to the running
//! instance, where `on_open_url` fires. A link that *starts* the app does not fire `on_open_url`: it is read
//! with `get_current()` during setup and handled after the stored session is restored, so it is never lost.

use std::sync::Arc;

use tauri::{AppHandle, Runtime};
use tauri_plugin_deep_link::DeepLinkExt;

/// Registers the profiles' redirect schemes with the OS where that can happen at run time, and starts
/// listening. Returns the links that launched the app.
pub fn listen<R: Runtime>(app: &AppHandle<R>, schemes: &[String]) -> Vec<String> {
    // Linux and Windows read scheme handlers at run time; a development build registers itself so that it
    // works unbundled. An installed app is registered by its installer.
    #[cfg(all(debug_assertions, target_os = "linux"))]
    for scheme in schemes {
        if let Err(e) = linux::ensure_handler(scheme) {
            tracing::warn!("couldn't register the {scheme}: handler: {e}");
        }
    }
    #[cfg(all(debug_assertions, windows))]
    for scheme in schemes {
        if !app.deep_link().is_registered(scheme).unwrap_or(false) {
            if let Err(e) = app.deep_link().register(scheme) {
                tracing::warn!("couldn't register the {scheme}: handler: {e}");
            }
        }
    }
    #[cfg(not(all(debug_assertions, any(target_os = "linux", windows))))]
    let _ = schemes;

    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        let Some(accounts) = crate::window::accounts_of(&handle) else { return };
        crate::window::show_main_window(&handle);
        let urls = event.urls();
        // Never log the link: it may carry a live authorization code.
        tracing::info!(links = urls.len(), "deep link received");
        for url in urls {
            let accounts = Arc::clone(&accounts);
            tauri::async_runtime::spawn(async move { accounts.handle_link(url.as_str()).await });
        }
    });

    match app.deep_link().get_current() {
        Ok(Some(urls)) => {
            tracing::info!(links = urls.len(), "started by a deep link; handling it after restore");
            urls.into_iter().map(String::from).collect()
        }
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::warn!("couldn't read the launch link: {e}");
            Vec::new()
        }
    }
}

/// A development build's scheme handler on Linux.
///
/// The deep-link plugin's own registration is not used here, for two reasons (tauri#15928 and our own trap):
/// - it counts a scheme as registered only when the default handler is a file of its own name, so it replaces
///   a handler the user set up under another name;
/// - it writes a quoted `Exec`, which Debian 12's `xdg-open` (xdg-utils 1.1.3) rejects outside a desktop
///   environment, so no link would ever arrive.
#[cfg(any(test, all(debug_assertions, target_os = "linux")))]
mod linux {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// The handler's file name, in `$XDG_DATA_HOME/applications`.
    pub const HANDLER_FILE: &str = "gatehouse-handler.desktop";

    /// Leaves any existing default handler for `scheme` alone; with none, registers this executable.
    #[cfg(all(debug_assertions, target_os = "linux"))]
    pub fn ensure_handler(scheme: &str) -> std::io::Result<()> {
        let mime = format!("x-scheme-handler/{scheme}");
        let current = Command::new("xdg-mime").args(["query", "default", &mime]).output()?;
        if let Some(handler) = default_handler(&current.stdout) {
            tracing::info!(handler, "the {scheme}: scheme already has a handler; leaving it alone");
            return Ok(());
        }
        let exe = std::env::current_exe()?;
        let apps = data_home().join("applications");
        std::fs::create_dir_all(&apps)?;
        std::fs::write(apps.join(HANDLER_FILE), desktop_entry(&exe, scheme))?;
        // The cache only speeds lookups up; xdg-mime's answer below is what counts.
        let _ = Command::new("update-desktop-database").arg(&apps).status();
        let status = Command::new("xdg-mime").args(["default", HANDLER_FILE, &mime]).status()?;
        if !status.success() {
            return Err(std::io::Error::other(format!("xdg-mime default exited with {status}")));
        }
        tracing::info!("registered this build as the {scheme}: handler");
        Ok(())
    }

    #[cfg(all(debug_assertions, target_os = "linux"))]
    fn data_home() -> PathBuf {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| dirs::home_dir().map(|home| home.join(".local/share")))
            .unwrap_or_else(|| PathBuf::from(".local/share"))
    }

    /// The desktop file id `xdg-mime query default` printed, if any.
    pub fn default_handler(output: &[u8]) -> Option<&str> {
        std::str::from_utf8(output).ok().map(str::trim).filter(|id| id.ends_with(".desktop"))
    }

    /// A handler entry for `exe`. `Exec` is unquoted when the path allows it, the form Debian 12's `xdg-open`
    /// accepts; a path with spaces or quotes is quoted as the Desktop Entry spec says.
    pub fn desktop_entry(exe: &Path, scheme: &str) -> String {
        let path = exe.display().to_string();
        let plain = path.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c));
        let exec = if plain {
            path
        } else {
            let escaped: String =
                path.chars().flat_map(|c| if "\"`$\\".contains(c) { vec!['\\', c] } else { vec![c] }).collect();
            format!("\"{escaped}\"")
        };
        format!(
            "[Desktop Entry]\nType=Application\nName=Gatehouse (development build)\nExec={exec} %u\nTerminal=false\n\
             NoDisplay=true\nMimeType=x-scheme-handler/{scheme};\n"
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn writes_an_unquoted_exec_with_the_url_argument() {
            let entry = desktop_entry(Path::new("/work/target/debug/gatehouse"), "com.example.gatehouse");
            assert!(entry.contains("\nExec=/work/target/debug/gatehouse %u\n"), "{entry}");
            assert!(entry.contains("\nMimeType=x-scheme-handler/com.example.gatehouse;\n"), "{entry}");
            let spaced = desktop_entry(Path::new("/home/a b/gatehouse"), "com.example.gatehouse");
            assert!(spaced.contains("\nExec=\"/home/a b/gatehouse\" %u\n"), "{spaced}");
        }

        #[test]
        fn reads_what_xdg_mime_says() {
            assert_eq!(default_handler(b"my-own-handler.desktop\n"), Some("my-own-handler.desktop"));
            assert_eq!(default_handler(b""), None);
            assert_eq!(default_handler(b"\n"), None);
        }
    }
}
