#[allow(clippy::expect_used)] // a build script reports failure by panicking
fn main() {
    // Generate `allow-<command>` permissions for the app's own commands, so the capability can list exactly
    // those and nothing else.
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(tauri_build::AppManifest::new().commands(&[
        "get_state",
        "watch_state",
        "sign_in",
        "cancel_sign_in",
        "sign_in_with_code",
        "open_browser_again",
        "paste_redirect",
        "refresh",
        "sign_out",
        "dismiss_notice",
        "dismiss_window_notice",
        "forget",
        "add_account",
        "remove_account",
        "check_provider",
        "save_provider",
        "provider_details",
        "remove_provider",
        "keep_setup_form",
        "kept_setup_form",
        "watch_settings",
        "set_start_at_login",
        "quit",
        "programs",
        "decide_program",
        "watch_questions",
    ])))
    .expect("failed to run tauri-build");
}
