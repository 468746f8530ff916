//! The window: made on demand, shown and focused, and what a launch (a second launch, or the tray) asks of it.

use std::sync::{Arc, Mutex};

use tauri::{AppHandle, Manager, Runtime};

use gatehouse_app::launch::Launch;
use gatehouse_core::accounts::Accounts;

/// The label of the one window.
pub const MAIN_WINDOW: &str = "main";

/// Does what a launch asks of the running window: a second launch's arguments, or the tray's.
pub fn asked<R: Runtime>(app: &AppHandle<R>, launch: &Launch) {
    if !launch.light_tray {
        show_main_window(app);
    }
    let Some(accounts) = accounts_of(app) else { return };
    if let Some(profile) = launch.sign_in.clone() {
        let accounts = Arc::clone(&accounts);
        tauri::async_runtime::spawn(async move { accounts.sign_in(profile.as_deref()).await });
    }
    if launch.stale_link {
        accounts.stale_link();
    }
}

/// Every profile's service, once setup has created them.
pub fn accounts_of<R: Runtime>(app: &AppHandle<R>) -> Option<Arc<Accounts>> {
    app.try_state::<Arc<Accounts>>().map(|accounts| accounts.inner().clone())
}

/// Shows, unminimises and focuses the window, first making it if there is none (a login start, or a closed
/// window).
pub fn show_main_window<R: Runtime>(app: &AppHandle<R>) {
    let window = match app.get_webview_window(MAIN_WINDOW) {
        Some(window) => window,
        None => match open_main_window(app) {
            Ok(Some(window)) => window,
            // Being made for another caller, which shows it.
            Ok(None) => return,
            Err(e) => {
                tracing::error!("couldn't open the window: {e}");
                return;
            }
        },
    };
    let _ = window.show();
    let _ = window.unminimize();
    let _ = window.set_focus();
}

/// Makes the window as the config describes it, in the size and place it was last closed at (the window-state
/// plugin restores them as it is made). Its page asks the backend for everything it shows. `None` when another
/// caller is making it: two requests at once (the tray and a link) make one window, and a caller never waits for
/// another, which may be waiting for the main thread this one runs on.
fn open_main_window<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Option<tauri::WebviewWindow<R>>> {
    static OPENING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = match OPENING.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
    };
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        return Ok(Some(window));
    }
    let mut config = app
        .config()
        .app
        .windows
        .iter()
        .find(|w| w.label == MAIN_WINDOW)
        .cloned()
        .ok_or_else(|| tauri::Error::WindowNotFound)?;
    config.create = true;
    tauri::WebviewWindowBuilder::from_config(app, &config)?.build().map(Some)
}
