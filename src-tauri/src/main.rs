//! `gatehouse-window`: the window and its tray. People start it as `gatehouse` (with no command, a sign-in link
//! or `--sign-in`), which hands over to it.

// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    gatehouse_window::run();
}
