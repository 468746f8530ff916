//! Names of the events the backend sends the webview. Payloads are camelCase and never hold a token.

/// Sent with the full [`crate::state::AuthView`] whenever it changes.
pub const STATE_CHANGED: &str = "auth://state-changed";
