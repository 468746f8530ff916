//! A bare Tauri 2 app with Gatehouse's plugins and a tray, and nothing else: what `tests/bin/bench` compares
//! Gatehouse's start-up time and memory against.

fn main() {
    let app = tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|_, _, _| {}))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_autostart::Builder::new().arg("--hidden").build())
        .plugin(tauri_plugin_window_state::Builder::new().build())
        .setup(|app| {
            let mut tray = tauri::tray::TrayIconBuilder::with_id("main");
            if let Some(icon) = app.default_window_icon() {
                tray = tray.icon(icon.clone());
            }
            tray.build(app)?;
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(e) = app {
        eprintln!("bare-app: {e}");
        std::process::exit(1);
    }
}
