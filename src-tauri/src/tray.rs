//! The window program's tray icon and its menu, which follow the state. The tooltip says the state too.
//!
//! What the menu holds is a pure function of the view and the settings, and what a click does is decided once,
//! both in [`gatehouse_app::tray`], shared with the light tray of `gatehouse --hidden`; the menu is rebuilt only
//! when what it shows changes. The tray hears of changes as the window does, through the [`ViewChannel`] and
//! [`SettingsChannel`].

use std::sync::Mutex;

use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use gatehouse_app::launch::Launch;
use gatehouse_app::tray::{self as menu, Action, Entry, Next};
use gatehouse_core::state::WindowView;

use crate::settings::{self, Settings, SettingsChannel};
use crate::watch::ViewChannel;

/// The tray icon's ID.
const TRAY: &str = "main";

/// What the tray shows now: the latest view and settings, and the menu made from them, so an unchanged
/// state doesn't rebuild it.
struct Shown(Mutex<ShownState>);

struct ShownState {
    view: WindowView,
    settings: Settings,
    entries: Vec<Entry>,
}

/// Builds the tray icon for `view`, which then follows every view and setting. With no tray host (a bare X
/// server), this still succeeds and the icon is simply unseen.
///
/// # Errors
/// A Tauri error if the menu or icon cannot be built.
pub fn create<R: Runtime>(app: &AppHandle<R>, view: &WindowView) -> tauri::Result<()> {
    let settings = settings::current(app);
    let (entries, tooltip) = menu::entries(view, settings.start_at_login);
    let mut tray = TrayIconBuilder::with_id(TRAY)
        .tooltip(tooltip)
        .menu(&build_menu(app, &entries)?)
        .on_menu_event(|app, event| on_menu(app, event.id.as_ref()));
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    app.manage(Shown(Mutex::new(ShownState { view: view.clone(), settings, entries })));
    if let Some(views) = app.try_state::<ViewChannel>() {
        let app = app.clone();
        views.listen(move |view| {
            let view = view.clone();
            show(&app, move |state| state.view = view);
        });
    }
    if let Some(settings) = app.try_state::<SettingsChannel>() {
        let app = app.clone();
        settings.listen(move |settings: &Settings| {
            let settings = *settings;
            show(&app, move |state| state.settings = settings);
        });
    }
    Ok(())
}

/// Applies `change` on the main thread, where the menu lives, in the order the changes were made. From another
/// thread, Tauri would block the caller until the main thread is free to build the menu, and the main thread
/// may itself be waiting for the caller: a window command reading the accounts while they publish a view.
fn show<R: Runtime>(app: &AppHandle<R>, change: impl FnOnce(&mut ShownState) + Send + 'static) {
    let handle = app.clone();
    if let Err(e) = app.run_on_main_thread(move || rebuild(&handle, change)) {
        tracing::warn!("couldn't update the tray: {e}");
    }
}

/// Applies `change` and rebuilds the menu if what it shows has changed. On the main thread only.
fn rebuild<R: Runtime>(app: &AppHandle<R>, change: impl FnOnce(&mut ShownState)) {
    let (Some(tray), Some(shown)) = (app.tray_by_id(TRAY), app.try_state::<Shown>()) else { return };
    let Ok(mut state) = shown.0.lock() else { return };
    change(&mut state);
    let (entries, tooltip) = menu::entries(&state.view, state.settings.start_at_login);
    if state.entries == entries {
        return;
    }
    let result = build_menu(app, &entries)
        .and_then(|menu| tray.set_menu(Some(menu)))
        .and_then(|()| tray.set_tooltip(Some(tooltip)));
    match result {
        Ok(()) => state.entries = entries,
        Err(e) => tracing::warn!("couldn't update the tray: {e}"),
    }
}

fn build_menu<R: Runtime>(app: &AppHandle<R>, entries: &[Entry]) -> tauri::Result<Menu<R>> {
    let mut items: Vec<Box<dyn IsMenuItem<R>>> = Vec::new();
    for entry in entries {
        items.push(match entry {
            Entry::Item(id, label, enabled) => {
                Box::new(MenuItem::with_id(app, id.as_str(), label, *enabled, None::<&str>)?)
            }
            Entry::Check(id, label, checked) => {
                Box::new(CheckMenuItem::with_id(app, id.as_str(), label, true, *checked, None::<&str>)?)
            }
            Entry::Separator => Box::new(PredefinedMenuItem::separator(app)?),
        });
    }
    let refs: Vec<&dyn IsMenuItem<R>> = items.iter().map(|item| item.as_ref()).collect();
    Menu::with_items(app, &refs)
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let (Some(accounts), Some(action)) = (crate::window::accounts_of(app), Action::parse(id)) else { return };
    match menu::carry_out(action, &accounts) {
        Next::Window(args) => crate::window::asked(app, &Launch::parse_args(&args)),
        Next::Run(work) => {
            tauri::async_runtime::spawn(work);
        }
        Next::SwitchStartAtLogin => {
            // The clicked check item has toggled itself; the menu is made again from the setting as it turns out,
            // even when it could not change.
            if let Some(shown) = app.try_state::<Shown>() {
                if let Ok(mut state) = shown.0.lock() {
                    state.entries.clear();
                }
            }
            let enabled = !settings::current(app).start_at_login;
            if let Err(e) = settings::set_start_at_login(app, enabled) {
                if let Ok(service) = accounts.get(None) {
                    service.report(&e);
                }
            }
        }
        Next::Quit => app.exit(0),
        Next::Nothing => {}
    }
}
