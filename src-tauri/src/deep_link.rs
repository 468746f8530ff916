//! Deep links into the running app.
//!
//! The OS delivers a custom-scheme redirect by launching Gatehouse again with the URL as its only argument.
//! single-instance (registered first, with its `deep-link` feature) forwards that launch to the running
//! instance, where `on_open_url` fires. A link that *starts* the app does not fire `on_open_url`: it is read
//! with `get_current()` during setup and handled after the stored session is restored, so it is never lost.

use std::sync::Arc;

use tauri::{AppHandle, Runtime};
use tauri_plugin_deep_link::DeepLinkExt;

/// Registers the redirect scheme with the OS where that can happen at run time, and starts listening.
/// Returns the links that launched the app.
pub fn listen<R: Runtime>(app: &AppHandle<R>, scheme: Option<&str>) -> Vec<String> {
    // Linux and Windows read scheme handlers at run time; a development build registers itself so that it
    // works unbundled. An installed app is registered by its installer, and a handler someone already set
    // up (such as the test harness's .desktop file) is left alone.
    #[cfg(all(debug_assertions, any(target_os = "linux", windows)))]
    if let Some(scheme) = scheme {
        if !app.deep_link().is_registered(scheme).unwrap_or(false) {
            if let Err(e) = app.deep_link().register(scheme) {
                tracing::warn!("couldn't register the {scheme}: handler: {e}");
            }
        }
    }
    #[cfg(not(all(debug_assertions, any(target_os = "linux", windows))))]
    let _ = scheme;

    let handle = app.clone();
    app.deep_link().on_open_url(move |event| {
        let Some(service) = crate::service_of(&handle) else { return };
        crate::show_main_window(&handle);
        let urls = event.urls();
        // Never log the link: it may carry a live authorization code.
        tracing::info!(links = urls.len(), "deep link received");
        for url in urls {
            let service = Arc::clone(&service);
            tauri::async_runtime::spawn(async move { service.handle_callback(url.as_str()).await });
        }
    });

    match app.deep_link().get_current() {
        Ok(Some(urls)) => {
            tracing::info!(links = urls.len(), "started by a deep link; handling it after restore");
            urls.into_iter().map(String::from).collect()
        }
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::warn!("couldn't read the launch link: {e}");
            Vec::new()
        }
    }
}
