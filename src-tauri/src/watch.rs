//! How the window and the tray hear of changes. The window hears over a channel it hands the backend
//! (`watch_state`, `watch_settings`), never over an event, which it may not listen to; the tray listens in the
//! backend.

use std::sync::{Arc, Mutex};

use tauri::ipc::{Channel, IpcResponse};

use gatehouse_core::state::WindowView;

/// Where a value goes when it changes: the window's channel, once it has asked for one (`watch_state`,
/// `watch_settings`; a reload of the page asks again and replaces it), and every listener in the backend.
pub struct Watcher<T: IpcResponse + Clone> {
    window: Mutex<Option<Channel<T>>>,
    listeners: Mutex<Vec<Listener<T>>>,
}

type Listener<T> = Arc<dyn Fn(&T) + Send + Sync>;

impl<T: IpcResponse + Clone> Default for Watcher<T> {
    fn default() -> Self {
        Watcher { window: Mutex::new(None), listeners: Mutex::new(Vec::new()) }
    }
}

impl<T: IpcResponse + Clone> Watcher<T> {
    /// Sends later values to the window's `channel` instead of the one before.
    pub fn set(&self, channel: Channel<T>) {
        *self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(channel);
    }

    /// Whether the window is watching: it is open, and its page has asked.
    pub fn watched(&self) -> bool {
        self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some()
    }

    /// Forgets the window's channel: the window is gone.
    pub fn clear(&self) {
        *self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    /// Calls `listener` with every later value, for as long as the app runs.
    pub fn listen(&self, listener: impl Fn(&T) + Send + Sync + 'static) {
        self.listeners.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(Arc::new(listener));
    }

    /// Sends `value` to the window, if it is watching, and to every listener. Whether the window got it.
    pub fn send(&self, value: &T) -> bool {
        let channel = self.window.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        let delivered = match channel.map(|channel| channel.send(value.clone())) {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                tracing::warn!("couldn't update the window: {e}");
                false
            }
            None => false,
        };
        let listeners = self.listeners.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        for listener in listeners {
            listener(value);
        }
        delivered
    }
}

/// Where views go.
pub type ViewChannel = Watcher<WindowView>;
