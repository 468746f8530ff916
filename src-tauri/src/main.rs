//! `gatehouse`: the command line, which loads no window toolkit, or (with no command, a sign-in link or
//! `--hidden`) the window program, `gatehouse-window`, which takes this process's place.

fn main() -> std::process::ExitCode {
    gatehouse_cli::main()
}
