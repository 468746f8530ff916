//! `gatehouse-cli`: the command line, which loads no window toolkit, or (with `--hidden`) the light tray, or (with
//! no command, or a sign-in link) the window program, `gatehouse-window`, which takes this process's place.
//! People start it as `gatehouse`, which hands over to it.

fn main() -> std::process::ExitCode {
    gatehouse_cli::main()
}
