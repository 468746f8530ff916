//! The light tray, `gatehouse --hidden`: Gatehouse in the tray with no window and no window toolkit. It keeps the sessions (restored from the
//! keychain, renewed and signed out from the tray menu), shows the tray icon over D-Bus, and is the running
//! instance a second launch or a sign-in link is handed to, all without loading GTK or WebKitGTK.
//!
//! Whatever needs the window (Show, Sign in, a link, a second launch) makes this process the window: it waits
//! for any renewal or sign-out in flight to finish, lets go of the instance's D-Bus name, and `exec`s
//! `gatehouse-window` in its place (same process, same config file). The window does the reverse when it is
//! closed with nothing in progress, so a closed window weighs what this does.

mod tray;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc::{self, UnboundedSender};

use gatehouse_app::launch::{self, Launch};
use gatehouse_app::tray::{self as menu, Action};
use gatehouse_app::{autostart, handover, Installation};
use gatehouse_core::accounts::{self, Accounts};
use gatehouse_core::service::Shell;
use gatehouse_core::state::WindowView;

/// What the light tray is asked to do.
pub enum Request {
    /// Become the window, with these arguments (links, [`SIGN_IN_FLAG`]).
    Window(Vec<String>),
    /// The tray's item with this ID was clicked.
    Clicked(String),
    /// An account's view changed.
    Changed,
}

/// How the light tray ends.
enum Next {
    Window(Vec<String>),
    Exit,
}

/// Runs the light tray until it is quit or becomes the window. With no session bus (so no tray and no single
/// instance), the window's own tray takes over.
pub fn run(args: Vec<OsString>) -> ExitCode {
    gatehouse_app::init_tracing();
    let strings: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::warn!("no async runtime ({e}); starting the window's tray instead");
            return handover::become_window(args);
        }
    };
    let next = runtime.block_on(serve(&strings));
    // The runtime goes first: the keychain's and the tray's connections close before the window starts.
    drop(runtime);
    match next {
        Ok(Next::Exit) => ExitCode::SUCCESS,
        Ok(Next::Window(extra)) => handover::become_window(window_args(&args, extra)),
        Err(e) => {
            tracing::warn!("the light tray couldn't start ({e}); starting the window's tray instead");
            handover::become_window(args)
        }
    }
}

/// The window's arguments: this program's name and config choice, and `extra`. Never `--hidden`: the window is
/// asked for.
fn window_args(args: &[OsString], extra: Vec<String>) -> Vec<OsString> {
    let mut kept = launch::config_args(args);
    kept.extend(extra.into_iter().map(OsString::from));
    kept
}

/// `org.SingleInstance.DBus`, as the window serves it: a second launch hands its arguments to the running one.
struct Instance {
    requests: UnboundedSender<Request>,
}

#[zbus::interface(name = "org.SingleInstance.DBus")]
impl Instance {
    fn execute_callback(&self, argv: Vec<String>, _cwd: String) {
        // Another login start changes nothing; anything else is a person, or the OS with a link, asking for the
        // window.
        let launch = Launch::parse(&argv);
        if !launch.light_tray {
            let _ = self.requests.send(Request::Window(launch.window_args()));
        }
    }
}

/// The light tray's shell: it opens no browser (a sign-in is the window's), and a request to show the window
/// becomes one.
struct LightTrayShell {
    requests: UnboundedSender<Request>,
}

impl Shell for LightTrayShell {
    fn open_browser(&self, _url: &url::Url) -> Result<(), String> {
        Err("a sign-in starts in the window".to_owned())
    }

    fn focus(&self) {
        let _ = self.requests.send(Request::Window(Vec::new()));
    }
}

async fn serve(args: &[String]) -> zbus::Result<Next> {
    let bus = zbus::Connection::session().await?;
    let (name, path) = handover::single_instance();
    let (requests, mut incoming) = mpsc::unbounded_channel();
    bus.object_server().at(path.as_str(), Instance { requests: requests.clone() }).await?;
    if !claim(&bus, &name, args).await? {
        return Ok(Next::Exit);
    }
    tracing::info!("in the tray, with no window");

    let installation = Installation::from_args(args);
    let accounts = open_accounts(&installation, &requests);
    // Other programs of the user ask this process for tokens while it runs.
    let agent = gatehouse_app::agent::start_for(&installation, &accounts);
    let tray = {
        let (entries, tooltip) = menu::entries(&accounts.view(), start_at_login());
        tray::Tray::start(&bus, entries, tooltip, requests.clone()).await?
    };
    // Everything that may write the keychain runs here, so that the hand-over to the window can wait for all of
    // it: a renewal cut off by `exec` after its request went out would lose the rotated refresh token.
    let mut work = tokio::task::JoinSet::new();
    work.spawn({
        let accounts = Arc::clone(&accounts);
        async move { accounts.start(Vec::new()).await }
    });
    // A panel started (or restarted) later has a watcher of its own, which must hear of the icon again.
    let dbus = zbus::fdo::DBusProxy::new(&bus).await?;
    let mut watchers = dbus.receive_name_owner_changed_with_args(&[(0, tray::WATCHER)]).await?;
    let mut reaper = tokio::time::interval(Duration::from_secs(1));
    let next = loop {
        let request = tokio::select! {
            request = incoming.recv() => request,
            Some(change) = watchers.next() => {
                if change.args().is_ok_and(|a| a.new_owner().is_some()) {
                    tray.register().await;
                }
                continue;
            }
            _ = reaper.tick() => {
                reap_children();
                continue;
            }
            Some(_) = work.join_next(), if !work.is_empty() => continue,
        };
        match request {
            None => break Next::Exit,
            Some(Request::Changed) => {
                let (entries, tooltip) = menu::entries(&accounts.view(), start_at_login());
                tray.show(entries, tooltip).await;
            }
            Some(Request::Window(extra)) => break Next::Window(extra),
            Some(Request::Clicked(id)) => {
                if let Some(next) = clicked(&id, &accounts, &requests, &mut work) {
                    break next;
                }
            }
        }
    };
    // A renewal made for a program that asked must not be cut off by the `exec` either.
    if let Some(agent) = &agent {
        agent.stop_and_finish(AGENT_PATIENCE).await;
    }
    let next = match next {
        Next::Window(extra) => {
            let next = hand_over(extra, &accounts, &requests, &mut incoming, &mut work).await;
            tracing::info!("opening the window");
            next
        }
        Next::Exit => Next::Exit,
    };
    // Let go of the name before the window asks for it; the call's reply also means everything sent before it,
    // such as a second launch's reply, has gone out.
    if let Ok(name) = zbus::names::WellKnownName::try_from(name.as_str()) {
        let _ = dbus.release_name(name).await;
    }
    Ok(next)
}

/// Takes the single-instance name, and returns whether this process is the running instance. When a window that
/// just handed over to this process still holds it, the bus gives it over as soon as that connection's end is
/// seen; when another Gatehouse holds it, this launch's arguments go to that one instead.
async fn claim(bus: &zbus::Connection, name: &str, args: &[String]) -> zbus::Result<bool> {
    use zbus::fdo::RequestNameReply;
    let dbus = zbus::fdo::DBusProxy::new(bus).await?;
    let mut acquired = dbus.receive_name_acquired().await?;
    let well_known = zbus::names::WellKnownName::try_from(name)?;
    match dbus.request_name(well_known.clone(), Default::default()).await? {
        RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner => return Ok(true),
        RequestNameReply::InQueue | RequestNameReply::Exists => {}
    }
    let wait = async {
        while let Some(signal) = acquired.next().await {
            if signal.args().is_ok_and(|a| a.name() == &well_known) {
                return true;
            }
        }
        false
    };
    if tokio::time::timeout(Duration::from_secs(3), wait).await.unwrap_or(false) {
        return Ok(true);
    }
    let _ = dbus.release_name(well_known).await;
    handover::to_running_instance(bus, args.to_vec()).await?;
    tracing::info!("Gatehouse is running already; handed this launch to it");
    Ok(false)
}

/// Every profile's service, as the window makes them: the config's profiles and the accounts added in the window.
/// Accounts are added, and providers set up, in the window.
fn open_accounts(installation: &Installation, requests: &UnboundedSender<Request>) -> Arc<Accounts> {
    let shell = {
        let requests = requests.clone();
        move || LightTrayShell { requests: requests.clone() }
    };
    let changed = requests.clone();
    let sink: accounts::Sink = Box::new(move |_: &WindowView| {
        let _ = changed.send(Request::Changed);
    });
    installation.open_accounts(shell, sink, false)
}

/// How long the hand-over waits for the programs the agent is answering: as long as a renewal may take.
const AGENT_PATIENCE: Duration = Duration::from_secs(90);

/// The hand-over to the window, as a state rather than a moment: no new request is taken as the loop's, every
/// action in flight (a restore, a renewal, a sign-out) is awaited, and what was asked meanwhile is done before the
/// `exec` (a Refresh or Sign out clicked together with Show) or goes to the window (a second launch's sign-in),
/// never dropped unsaid. A Quit asked meanwhile wins. Returns how the light tray ends.
async fn hand_over(
    mut extra: Vec<String>,
    accounts: &Arc<Accounts>,
    requests: &UnboundedSender<Request>,
    incoming: &mut mpsc::UnboundedReceiver<Request>,
    work: &mut tokio::task::JoinSet<()>,
) -> Next {
    loop {
        while work.join_next().await.is_some() {}
        settle(accounts).await;
        let Ok(request) = incoming.try_recv() else { return Next::Window(extra) };
        match request {
            Request::Changed => {}
            Request::Window(more) => merge(&mut extra, more),
            Request::Clicked(id) => match clicked(&id, accounts, requests, work) {
                Some(Next::Exit) => return Next::Exit,
                Some(Next::Window(more)) => merge(&mut extra, more),
                None => {}
            },
        }
    }
}

/// Adds to the window's arguments those of `more` it doesn't have yet.
fn merge(extra: &mut Vec<String>, more: Vec<String>) {
    for arg in more {
        if !extra.contains(&arg) {
            extra.push(arg);
        }
    }
}

/// Acts on the tray item `id`, starting any session action in `work`; returns how the light tray ends, if it does.
fn clicked(
    id: &str,
    accounts: &Arc<Accounts>,
    requests: &UnboundedSender<Request>,
    work: &mut tokio::task::JoinSet<()>,
) -> Option<Next> {
    match menu::carry_out(Action::parse(id)?, accounts) {
        menu::Next::Window(args) => return Some(Next::Window(args)),
        menu::Next::Run(action) => {
            work.spawn(action);
        }
        menu::Next::SwitchStartAtLogin => {
            let enabled = !start_at_login();
            match autostart::switch(enabled) {
                Ok(()) => tracing::info!("start at login is {}", if enabled { "on" } else { "off" }),
                Err(e) => tracing::warn!("couldn't change start at login: {e}"),
            }
            let _ = requests.send(Request::Changed);
        }
        menu::Next::Quit => return Some(Next::Exit),
        menu::Next::Nothing => {}
    }
    None
}

fn start_at_login() -> bool {
    autostart::is_enabled().unwrap_or_else(|e| {
        tracing::warn!("couldn't tell whether Gatehouse starts at login: {e}");
        false
    })
}

/// Waits until no account is restoring, renewing or signing out: those write the keychain, and a write cut off by
/// `exec` could lose a rotated refresh token. Their own timeouts bound the wait.
async fn settle(accounts: &Accounts) {
    while accounts.view().accounts.iter().any(|a| !a.phase.is_settled()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Collects the window's last processes (WebKit's), which end after the window handed this process over and so
/// are this process's children now.
fn reap_children() {
    while let Ok(Some(_)) = rustix::process::waitpid(None, rustix::process::WaitOptions::NOHANG) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_window_gets_the_config_choice_and_what_was_asked_never_hidden() {
        let args: Vec<OsString> = ["gatehouse", "--hidden", "--config", "/c/x.toml"].map(OsString::from).to_vec();
        let window = window_args(&args, strings(&["--sign-in=work"]));
        assert_eq!(window, ["gatehouse", "--config", "/c/x.toml", "--sign-in=work"].map(OsString::from).to_vec());
        let args: Vec<OsString> = ["gatehouse", "--config=/c/y.toml", "--hidden"].map(OsString::from).to_vec();
        assert_eq!(window_args(&args, Vec::new()), ["gatehouse", "--config=/c/y.toml"].map(OsString::from).to_vec());
    }
}
