//! The tray icon and its menu: Show, Refresh, Sign out, Quit. Each item calls the same service method as the
//! window's button.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Runtime};

/// Menu item IDs, unique app-wide.
pub mod ids {
    /// Shows and focuses the window.
    pub const SHOW: &str = "tray-show";
    /// Refreshes the session.
    pub const REFRESH: &str = "tray-refresh";
    /// Signs out.
    pub const SIGN_OUT: &str = "tray-sign-out";
    /// Quits.
    pub const QUIT: &str = "tray-quit";
}

/// Builds the tray icon. With no tray host (a bare X server), this still succeeds and the icon is simply unseen.
///
/// # Errors
/// A Tauri error if the menu or icon cannot be built.
pub fn create<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    let menu = Menu::with_items(
        app,
        &[
            &MenuItem::with_id(app, ids::SHOW, "Show Gatehouse", true, None::<&str>)?,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, ids::REFRESH, "Refresh", true, None::<&str>)?,
            &MenuItem::with_id(app, ids::SIGN_OUT, "Sign out", true, None::<&str>)?,
            &PredefinedMenuItem::separator(app)?,
            &MenuItem::with_id(app, ids::QUIT, "Quit", true, None::<&str>)?,
        ],
    )?;
    let mut tray = TrayIconBuilder::with_id("main")
        .tooltip("Gatehouse")
        .menu(&menu)
        .on_menu_event(|app, event| on_menu(app, event.id.as_ref()));
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(service) = crate::service_of(app) else { return };
    match id {
        ids::SHOW => crate::show_main_window(app),
        // Errors are shown in the window by the service; nothing more to do here.
        ids::REFRESH => {
            tauri::async_runtime::spawn(async move {
                let _ = service.refresh().await;
            });
        }
        ids::SIGN_OUT => {
            tauri::async_runtime::spawn(async move {
                let _ = service.sign_out().await;
            });
        }
        ids::QUIT => app.exit(0),
        _ => {}
    }
}
