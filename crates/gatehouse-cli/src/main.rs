//! `gatehouse`: a token from the running Gatehouse's agent, or else, in this process's place, `gatehouse-cli`.

fn main() -> std::process::ExitCode {
    gatehouse_cli::front()
}
