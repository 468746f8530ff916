//! The tray menu and what its items do. The menu is a pure function of the accounts' view and the start-at-login
//! setting ([`entries`]): a disabled first line says who is signed in (or that nobody is), and only the actions
//! that make sense now are offered. A click is read once into an [`Action`], and [`carry_out`] does it and says
//! what the front end does next ([`Next`]). The window's tray (`gatehouse-window`, through Tauri) and the light
//! tray that stands in for it while there is no window (`gatehouse --hidden`, over D-Bus) both render this menu
//! and call [`carry_out`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gatehouse_core::accounts::Accounts;
use gatehouse_core::state::{AuthView, Phase, WindowView};

use crate::launch;

/// Menu item IDs, unique app-wide. With several accounts, an account's items add `:` and its profile name.
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

/// What a click on a tray item asks for; the profile is the account's, with several accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Show and focus the window.
    Show,
    /// Sign in, in the window.
    SignIn(Option<String>),
    /// Cancel the sign-in in progress.
    Cancel(Option<String>),
    /// Renew the session.
    Refresh(Option<String>),
    /// Sign out.
    SignOut(Option<String>),
    /// Turn start at login around.
    StartAtLogin,
    /// Quit.
    Quit,
}

impl Action {
    /// The action of the item `id`: an account's item is `action:profile` with several accounts, just `action`
    /// with one. `None` for the state line, and for an ID no menu has.
    pub fn parse(id: &str) -> Option<Action> {
        let (action, profile) = match id.split_once(':') {
            Some((action, profile)) => (action, Some(profile.to_owned())),
            None => (id, None),
        };
        Some(match action {
            ids::SHOW => Action::Show,
            ids::SIGN_IN => Action::SignIn(profile),
            ids::CANCEL => Action::Cancel(profile),
            ids::REFRESH => Action::Refresh(profile),
            ids::SIGN_OUT => Action::SignOut(profile),
            ids::START_AT_LOGIN => Action::StartAtLogin,
            ids::QUIT => Action::Quit,
            _ => return None,
        })
    }
}

/// A session action (a renewal, a sign-out, a cancel) for the front end to run to its end. Its errors are shown in
/// the accounts' view, so nothing comes back.
pub type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the front end does after [`carry_out`].
pub enum Next {
    /// Open or show the window, asking it for what these launch arguments ask ([`launch::Launch`]).
    Window(Vec<String>),
    /// Run this session action.
    Run(Work),
    /// Turn start at login around, in the front end's own setting.
    SwitchStartAtLogin,
    /// Quit.
    Quit,
    /// Nothing: the item's account is gone.
    Nothing,
}

/// Carries out `action` on `accounts`, and says what follows.
pub fn carry_out(action: Action, accounts: &Arc<Accounts>) -> Next {
    let service = |profile: Option<String>| {
        accounts
            .get(profile.as_deref())
            .inspect_err(|e| tracing::info!(kind = e.kind(), "a tray item's account is gone"))
            .ok()
    };
    let run = |work: Work| Next::Run(work);
    match action {
        Action::Show => Next::Window(Vec::new()),
        Action::SignIn(profile) => Next::Window(vec![launch::sign_in_arg(profile.as_deref())]),
        Action::Cancel(profile) => service(profile).map_or(Next::Nothing, |s| {
            run(Box::pin(async move {
                let _ = s.cancel_sign_in().await;
            }))
        }),
        Action::Refresh(profile) => service(profile).map_or(Next::Nothing, |s| {
            run(Box::pin(async move {
                let _ = s.refresh().await;
            }))
        }),
        Action::SignOut(profile) => service(profile).map_or(Next::Nothing, |s| {
            run(Box::pin(async move {
                let _ = s.sign_out().await;
            }))
        }),
        Action::StartAtLogin => Next::SwitchStartAtLogin,
        Action::Quit => Next::Quit,
    }
}

/// One line of the tray menu.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An item: its ID, label, and whether it can be clicked.
    Item(String, String, bool),
    /// A check item: its ID, label, and whether it is checked.
    Check(String, String, bool),
    /// A separator.
    Separator,
}

/// An account's state, in a few words.
fn status(view: &AuthView) -> String {
    let who = view
        .account
        .as_ref()
        .and_then(|a| a.name.clone().or_else(|| a.subject.clone()))
        .unwrap_or_else(|| "an unnamed account".to_owned());
    match view.phase {
        Phase::SignedIn | Phase::Refreshing => format!("Signed in as {who}"),
        Phase::WaitingForBrowser => "Signing in…".to_owned(),
        Phase::Exchanging => "Finishing sign-in…".to_owned(),
        Phase::SigningOut => "Signing out…".to_owned(),
        Phase::Restoring => "Restoring session…".to_owned(),
        Phase::SignedOut => "Signed out".to_owned(),
        Phase::ConfigError => "The config file needs fixing".to_owned(),
    }
}

/// The menu for `window` and the start-at-login setting, and the tooltip. One account gets a state line and its actions; with
/// several, each gets a section headed by its profile name, whose actions name it too.
pub fn entries(window: &WindowView, start_at_login: bool) -> (Vec<Entry>, String) {
    let item = |id: String, label: String, enabled| Entry::Item(id, label, enabled);
    let several = window.accounts.len() > 1;
    let mut menu = Vec::new();
    let mut tooltip = Vec::new();
    for view in &window.accounts {
        let status = status(view);
        // With one account, plain labels; with several, each names its account.
        let id = |id: &str| if several { format!("{id}:{}", view.profile) } else { id.to_owned() };
        let label = |action: &str, joiner: &str| {
            if several {
                format!("{action}{joiner}{}", view.profile)
            } else {
                action.to_owned()
            }
        };
        let line = if several { format!("{}: {status}", view.profile) } else { status.clone() };
        tooltip.push(line.clone());
        menu.push(item(id(ids::STATUS), line, false));
        if !several {
            menu.push(Entry::Separator);
        }
        match view.phase {
            Phase::SignedOut => menu.push(item(id(ids::SIGN_IN), label("Sign in", " to "), true)),
            Phase::WaitingForBrowser => menu.push(item(id(ids::CANCEL), label("Cancel sign-in", " to "), true)),
            Phase::SignedIn | Phase::Refreshing => {
                let renew = if view.renewable { "Refresh" } else { "Reload" };
                menu.push(item(id(ids::REFRESH), label(renew, " "), view.phase == Phase::SignedIn));
                menu.push(item(id(ids::SIGN_OUT), label("Sign out", " of "), view.phase == Phase::SignedIn));
            }
            Phase::Restoring | Phase::Exchanging | Phase::SigningOut | Phase::ConfigError => {}
        }
        if menu.last() != Some(&Entry::Separator) {
            menu.push(Entry::Separator);
        }
    }
    menu.push(Entry::Check(ids::START_AT_LOGIN.to_owned(), "Start at login".to_owned(), start_at_login));
    menu.push(item(ids::SHOW.to_owned(), "Show Gatehouse".to_owned(), true));
    menu.push(item(ids::QUIT.to_owned(), "Quit".to_owned(), true));
    (menu, format!("Gatehouse: {}", tooltip.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::tokens::Account;

    fn view(phase: Phase) -> AuthView {
        let mut view = AuthView::initial("demo", Some("Demo".into()));
        view.phase = phase;
        view
    }

    fn window(accounts: Vec<AuthView>) -> WindowView {
        WindowView {
            revision: 1,
            accounts,
            removed: Vec::new(),
            added: Vec::new(),
            providers: Vec::new(),
            notice: None,
            setup: None,
        }
    }

    const OFF: bool = false;

    fn shown_with(view: &AuthView, settings: bool) -> Vec<(String, bool)> {
        entries(&window(vec![view.clone()]), settings)
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
        assert_eq!(entries(&window(vec![signed_out.clone()]), OFF).1, "Gatehouse: Signed out");
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
        signed_in.account = Some(Account { subject: Some("alice".into()), name: Some("Alice".into()), login: None });
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
        assert_eq!(entries(&window(vec![signed_in.clone()]), OFF).1, "Gatehouse: Signed in as Alice");
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
        let on = true;
        for phase in [Phase::SignedOut, Phase::WaitingForBrowser, Phase::SignedIn, Phase::ConfigError] {
            assert!(shown_with(&view(phase), on).contains(&("Start at login [x]".to_owned(), true)), "{phase:?}");
            assert!(shown(&view(phase)).contains(&("Start at login [ ]".to_owned(), true)), "{phase:?}");
        }
    }

    #[test]
    fn every_item_of_every_menu_is_read_back_into_its_action() {
        let mut work = view(Phase::SignedIn);
        work.profile = "work".into();
        let mut home = view(Phase::SignedOut);
        home.profile = "home".into();
        let (menu, _) = entries(&window(vec![work, home]), OFF);
        let actions: Vec<Option<Action>> = menu
            .iter()
            .filter_map(|e| match e {
                Entry::Item(id, _, _) | Entry::Check(id, _, _) => Some(Action::parse(id)),
                Entry::Separator => None,
            })
            .collect();
        let work = || Some("work".to_owned());
        assert_eq!(
            actions,
            [
                None,
                Some(Action::Refresh(work())),
                Some(Action::SignOut(work())),
                None,
                Some(Action::SignIn(Some("home".into()))),
                Some(Action::StartAtLogin),
                Some(Action::Show),
                Some(Action::Quit),
            ]
        );
        assert_eq!(Action::parse(ids::CANCEL), Some(Action::Cancel(None)));
        assert_eq!(Action::parse("tray-unknown"), None);
    }

    #[test]
    fn separators_never_double_up() {
        for phase in [Phase::SignedOut, Phase::Exchanging, Phase::ConfigError, Phase::SignedIn] {
            let (menu, _) = entries(&window(vec![view(phase), view(Phase::SignedOut)]), OFF);
            assert!(menu.windows(2).all(|w| !(w[0] == Entry::Separator && w[1] == Entry::Separator)), "{phase:?}");
        }
    }

    #[test]
    fn several_accounts_each_get_a_section_that_names_them() {
        let mut work = view(Phase::SignedIn);
        work.profile = "work".into();
        work.account = Some(Account { subject: Some("alice".into()), name: Some("Alice".into()), login: None });
        work.renewable = true;
        let mut home = view(Phase::SignedOut);
        home.profile = "home".into();
        let (menu, tooltip) = entries(&window(vec![work, home]), OFF);
        let items: Vec<(&str, &str)> = menu
            .iter()
            .filter_map(|e| match e {
                Entry::Item(id, label, _) | Entry::Check(id, label, _) => Some((id.as_str(), label.as_str())),
                Entry::Separator => None,
            })
            .collect();
        assert_eq!(
            items,
            [
                ("tray-status:work", "work: Signed in as Alice"),
                ("tray-refresh:work", "Refresh work"),
                ("tray-sign-out:work", "Sign out of work"),
                ("tray-status:home", "home: Signed out"),
                ("tray-sign-in:home", "Sign in to home"),
                ("tray-start-at-login", "Start at login"),
                ("tray-show", "Show Gatehouse"),
                ("tray-quit", "Quit"),
            ]
        );
        assert_eq!(tooltip, "Gatehouse: work: Signed in as Alice; home: Signed out");
    }
}
