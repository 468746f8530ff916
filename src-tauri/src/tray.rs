//! The tray icon and its menu, which follow the state: a disabled first line says who is signed in (or that
//! nobody is), and only the actions that make sense now are offered. Each item calls the same service method
//! as the window's button. The tooltip says the state too.
//!
//! What the menu holds is a pure function of the view and the settings ([`entries`]); the menu is rebuilt
//! only when that changes.

use std::sync::Mutex;

use tauri::menu::{CheckMenuItem, IsMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Runtime};

use crate::settings::{self, Settings};
use crate::state::{AuthView, Phase};

/// The tray icon's ID.
const TRAY: &str = "main";

/// Menu item IDs, unique app-wide.
pub mod ids {
    /// The state line; disabled.
    pub const STATUS: &str = "tray-status";
    /// Starts a sign-in.
    pub const SIGN_IN: &str = "tray-sign-in";
    /// Cancels the sign-in in progress.
    pub const CANCEL: &str = "tray-cancel";
    /// Refreshes the session.
    pub const REFRESH: &str = "tray-refresh";
    /// Signs out.
    pub const SIGN_OUT: &str = "tray-sign-out";
    /// Turns start at login on or off.
    pub const START_AT_LOGIN: &str = "tray-start-at-login";
    /// Shows and focuses the window.
    pub const SHOW: &str = "tray-show";
    /// Quits.
    pub const QUIT: &str = "tray-quit";
}

/// One line of the tray menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An item: its ID, label, and whether it can be clicked.
    Item(&'static str, String, bool),
    /// A check item: its ID, label, and whether it is checked.
    Check(&'static str, String, bool),
    /// A separator.
    Separator,
}

/// The menu for `view` and `settings`, and the tooltip.
pub fn entries(view: &AuthView, settings: Settings) -> (Vec<Entry>, String) {
    let who = view
        .account
        .as_ref()
        .and_then(|a| a.name.clone().or_else(|| a.subject.clone()))
        .unwrap_or_else(|| "an unnamed account".to_owned());
    let status = match view.phase {
        Phase::SignedIn | Phase::Refreshing => format!("Signed in as {who}"),
        Phase::WaitingForBrowser => "Signing in…".to_owned(),
        Phase::Exchanging => "Finishing sign-in…".to_owned(),
        Phase::SigningOut => "Signing out…".to_owned(),
        Phase::Restoring => "Restoring session…".to_owned(),
        Phase::SignedOut => "Signed out".to_owned(),
        Phase::ConfigError => "The config file needs fixing".to_owned(),
    };
    let item = |id, label: &str, enabled| Entry::Item(id, label.to_owned(), enabled);
    let mut menu = vec![item(ids::STATUS, &status, false), Entry::Separator];
    match view.phase {
        Phase::SignedOut => menu.push(item(ids::SIGN_IN, "Sign in", true)),
        Phase::WaitingForBrowser => menu.push(item(ids::CANCEL, "Cancel sign-in", true)),
        Phase::SignedIn | Phase::Refreshing => {
            let renew = if view.renewable { "Refresh" } else { "Reload" };
            menu.push(item(ids::REFRESH, renew, view.phase == Phase::SignedIn));
            menu.push(item(ids::SIGN_OUT, "Sign out", view.phase == Phase::SignedIn));
        }
        Phase::Restoring | Phase::Exchanging | Phase::SigningOut | Phase::ConfigError => {}
    }
    if menu.last() != Some(&Entry::Separator) {
        menu.push(Entry::Separator);
    }
    menu.push(Entry::Check(ids::START_AT_LOGIN, "Start at login".to_owned(), settings.start_at_login));
    menu.push(item(ids::SHOW, "Show Gatehouse", true));
    menu.push(item(ids::QUIT, "Quit", true));
    (menu, format!("Gatehouse: {status}"))
}

/// What the tray shows now: the latest view and settings, and the menu made from them, so an unchanged
/// state doesn't rebuild it.
struct Shown(Mutex<ShownState>);

struct ShownState {
    view: AuthView,
    settings: Settings,
    entries: Vec<Entry>,
}

/// Builds the tray icon for `view`. With no tray host (a bare X server), this still succeeds and the icon is
/// simply unseen.
///
/// # Errors
/// A Tauri error if the menu or icon cannot be built.
pub fn create<R: Runtime>(app: &AppHandle<R>, view: &AuthView) -> tauri::Result<()> {
    let settings = settings::current(app);
    let (entries, tooltip) = entries(view, settings);
    let mut tray = TrayIconBuilder::with_id(TRAY)
        .tooltip(tooltip)
        .menu(&menu(app, &entries)?)
        .on_menu_event(|app, event| on_menu(app, event.id.as_ref()));
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    app.manage(Shown(Mutex::new(ShownState { view: view.clone(), settings, entries })));
    Ok(())
}

/// Shows `view` in the tray, if there is one.
pub fn update<R: Runtime>(app: &AppHandle<R>, view: &AuthView) {
    show(app, |state| state.view = view.clone());
}

/// Shows `settings` in the tray, if there is one.
pub fn show_settings<R: Runtime>(app: &AppHandle<R>, settings: Settings) {
    show(app, |state| state.settings = settings);
}

/// Applies `change` and rebuilds the menu if what it shows has changed.
fn show<R: Runtime>(app: &AppHandle<R>, change: impl FnOnce(&mut ShownState)) {
    let (Some(tray), Some(shown)) = (app.tray_by_id(TRAY), app.try_state::<Shown>()) else { return };
    let Ok(mut state) = shown.0.lock() else { return };
    change(&mut state);
    let (entries, tooltip) = entries(&state.view, state.settings);
    if state.entries == entries {
        return;
    }
    let result =
        menu(app, &entries).and_then(|menu| tray.set_menu(Some(menu))).and_then(|()| tray.set_tooltip(Some(tooltip)));
    match result {
        Ok(()) => state.entries = entries,
        Err(e) => tracing::warn!("couldn't update the tray: {e}"),
    }
}

fn menu<R: Runtime>(app: &AppHandle<R>, entries: &[Entry]) -> tauri::Result<Menu<R>> {
    let mut items: Vec<Box<dyn IsMenuItem<R>>> = Vec::new();
    for entry in entries {
        items.push(match entry {
            Entry::Item(id, label, enabled) => Box::new(MenuItem::with_id(app, *id, label, *enabled, None::<&str>)?),
            Entry::Check(id, label, checked) => {
                Box::new(CheckMenuItem::with_id(app, *id, label, true, *checked, None::<&str>)?)
            }
            Entry::Separator => Box::new(PredefinedMenuItem::separator(app)?),
        });
    }
    let refs: Vec<&dyn IsMenuItem<R>> = items.iter().map(|item| item.as_ref()).collect();
    Menu::with_items(app, &refs)
}

fn on_menu<R: Runtime>(app: &AppHandle<R>, id: &str) {
    let Some(service) = crate::service_of(app) else { return };
    match id {
        ids::SHOW => crate::show_main_window(app),
        ids::SIGN_IN => {
            crate::show_main_window(app);
            run(async move { service.sign_in().await });
        }
        ids::CANCEL => run(async move { service.cancel_sign_in().await }),
        ids::REFRESH => run(async move { service.refresh().await }),
        ids::SIGN_OUT => run(async move { service.sign_out().await }),
        ids::START_AT_LOGIN => {
            // The clicked check item has toggled itself; the menu is made again from the setting as it turns out,
            // even when it could not change.
            if let Some(shown) = app.try_state::<Shown>() {
                if let Ok(mut state) = shown.0.lock() {
                    state.entries.clear();
                }
            }
            let enabled = !settings::current(app).start_at_login;
            if let Err(e) = settings::set_start_at_login(app, enabled) {
                service.report(&e);
            }
        }
        ids::QUIT => app.exit(0),
        _ => {}
    }
}

/// Runs a service action for a menu item. Its errors are shown in the window by the service; nothing more to
/// do with them here.
fn run(action: impl std::future::Future<Output = crate::error::Result<()>> + Send + 'static) {
    tauri::async_runtime::spawn(async move {
        let _ = action.await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::Account;

    fn view(phase: Phase) -> AuthView {
        let mut view = AuthView::initial(Some("Demo".into()));
        view.phase = phase;
        view
    }

    const OFF: Settings = Settings { start_at_login: false };

    fn shown_with(view: &AuthView, settings: Settings) -> Vec<(String, bool)> {
        entries(view, settings)
            .0
            .into_iter()
            .filter_map(|e| match e {
                Entry::Item(_, label, enabled) => Some((label, enabled)),
                Entry::Check(_, label, checked) => {
                    Some((format!("{label} [{}]", if checked { "x" } else { " " }), true))
                }
                Entry::Separator => None,
            })
            .collect()
    }

    fn shown(view: &AuthView) -> Vec<(String, bool)> {
        shown_with(view, OFF)
    }

    fn labels(items: &[(&str, bool)]) -> Vec<(String, bool)> {
        items.iter().map(|(l, e)| (l.to_string(), *e)).collect()
    }

    #[test]
    fn each_phase_offers_what_makes_sense() {
        let signed_out = view(Phase::SignedOut);
        assert_eq!(
            shown(&signed_out),
            labels(&[
                ("Signed out", false),
                ("Sign in", true),
                ("Start at login [ ]", true),
                ("Show Gatehouse", true),
                ("Quit", true)
            ])
        );
        assert_eq!(entries(&signed_out, OFF).1, "Gatehouse: Signed out");
        assert_eq!(
            shown(&view(Phase::WaitingForBrowser)),
            labels(&[
                ("Signing in…", false),
                ("Cancel sign-in", true),
                ("Start at login [ ]", true),
                ("Show Gatehouse", true),
                ("Quit", true)
            ])
        );
        let mut signed_in = view(Phase::SignedIn);
        signed_in.account = Some(Account { subject: Some("alice".into()), name: Some("Alice".into()) });
        signed_in.renewable = true;
        assert_eq!(
            shown(&signed_in),
            labels(&[
                ("Signed in as Alice", false),
                ("Refresh", true),
                ("Sign out", true),
                ("Start at login [ ]", true),
                ("Show Gatehouse", true),
                ("Quit", true)
            ])
        );
        assert_eq!(entries(&signed_in, OFF).1, "Gatehouse: Signed in as Alice");
        signed_in.phase = Phase::Refreshing;
        signed_in.renewable = false;
        assert_eq!(shown(&signed_in)[1..3], labels(&[("Reload", false), ("Sign out", false)]));
        assert_eq!(
            shown(&view(Phase::Exchanging)),
            labels(&[
                ("Finishing sign-in…", false),
                ("Start at login [ ]", true),
                ("Show Gatehouse", true),
                ("Quit", true)
            ])
        );
    }

    #[test]
    fn the_start_at_login_item_shows_the_setting_in_every_phase() {
        let on = Settings { start_at_login: true };
        for phase in [Phase::SignedOut, Phase::WaitingForBrowser, Phase::SignedIn, Phase::ConfigError] {
            assert!(shown_with(&view(phase), on).contains(&("Start at login [x]".to_owned(), true)), "{phase:?}");
            assert!(shown(&view(phase)).contains(&("Start at login [ ]".to_owned(), true)), "{phase:?}");
        }
    }

    #[test]
    fn separators_never_double_up() {
        for phase in [Phase::SignedOut, Phase::Exchanging, Phase::ConfigError, Phase::SignedIn] {
            let (menu, _) = entries(&view(phase), OFF);
            assert!(menu.windows(2).all(|w| !(w[0] == Entry::Separator && w[1] == Entry::Separator)), "{phase:?}");
        }
    }
}
