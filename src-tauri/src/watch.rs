//! How the window hears of changes: over a channel it hands the backend (`watch_state`, `watch_settings`), never
//! over an event, which it may not listen to.

use std::sync::Mutex;

use tauri::ipc::{Channel, IpcResponse};

use crate::state::WindowView;

/// Where a value the window watches goes: the window's channel, once it has asked for one (`watch_state`,
/// `watch_settings`). A reload of the page asks again and replaces it.
pub struct Watcher<T: IpcResponse + Clone>(Mutex<Option<Channel<T>>>);

impl<T: IpcResponse + Clone> Default for Watcher<T> {
    fn default() -> Self {
        Watcher(Mutex::new(None))
    }
}

impl<T: IpcResponse + Clone> Watcher<T> {
    /// Sends later values to `channel` instead of the one before.
    pub fn set(&self, channel: Channel<T>) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(channel);
    }

    /// Forgets the window's channel: the window is gone.
    pub fn clear(&self) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }

    /// Sends `value` to the window, if it is watching.
    pub fn send(&self, value: &T) {
        let channel = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if let Some(channel) = channel {
            if let Err(e) = channel.send(value.clone()) {
                tracing::warn!("couldn't update the window: {e}");
            }
        }
    }
}

/// Where views go.
pub type ViewChannel = Watcher<WindowView>;
