// No console window behind the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() -> std::process::ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `gatehouse status`, `gatehouse token`, …: the command line, which never opens a window.
    if gatehouse_lib::cli::is_cli(&args) {
        return gatehouse_lib::cli::run(args);
    }
    gatehouse_lib::run();
    std::process::ExitCode::SUCCESS
}
