//! A desktop's notification server on the test's session bus (org.freedesktop.Notifications), as the
//! person's desktop would be: it keeps what it was asked to show, and answers each notification with the action
//! the test chose, or with none.

use std::sync::{Arc, Mutex, OnceLock};

use zbus::blocking::Connection;

/// A notification as shown: its summary, body and actions.
#[derive(Debug, Clone)]
pub struct Shown {
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
}

#[derive(Default)]
struct State {
    shown: Vec<Shown>,
    /// The action the person picks for the next notifications, or none (they let it be).
    answer: Option<String>,
}

struct Server {
    state: Arc<Mutex<State>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        #[zbus(connection)] connection: &zbus::Connection,
        _app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: std::collections::HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.shown.push(Shown { summary, body, actions });
        let id = u32::try_from(state.shown.len()).unwrap_or(u32::MAX);
        if let Some(action) = state.answer.clone() {
            // The person clicks a moment after the notification appears (after this call has been answered).
            let connection = connection.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                let _ = zbus::block_on(connection.emit_signal(
                    None::<()>,
                    "/org/freedesktop/Notifications",
                    "org.freedesktop.Notifications",
                    "ActionInvoked",
                    &(id, action),
                ));
            });
        }
        id
    }

    fn close_notification(&self, _id: u32) {}

    fn get_server_information(&self) -> (String, String, String, String) {
        ("gatehouse-tests".into(), "Gatehouse".into(), "1".into(), "1.2".into())
    }
}

/// The notification server of this test process.
pub struct Notifications {
    _connection: Connection,
    state: Arc<Mutex<State>>,
}

impl Notifications {
    /// Starts the server on the session bus, once per process.
    ///
    /// # Panics
    /// When the name is taken or the bus can't be reached.
    pub fn start() -> &'static Notifications {
        static SERVER: OnceLock<Notifications> = OnceLock::new();
        SERVER.get_or_init(|| {
            let state: Arc<Mutex<State>> = Arc::default();
            let connection = zbus::blocking::connection::Builder::session()
                .and_then(|b| b.name("org.freedesktop.Notifications"))
                .and_then(|b| b.serve_at("/org/freedesktop/Notifications", Server { state: Arc::clone(&state) }))
                .and_then(|b| b.build())
                .unwrap_or_else(|e| panic!("the notification server couldn't start on the session bus: {e}"));
            Notifications { _connection: connection, state }
        })
    }

    /// The action the person picks for the notifications from now on (`"allow"`, `"deny"`), or `None` to let
    /// them be.
    pub fn answer_with(&self, action: Option<&str>) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).answer = action.map(str::to_owned);
    }

    /// Every notification shown so far.
    pub fn shown(&self) -> Vec<Shown> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).shown.clone()
    }
}
