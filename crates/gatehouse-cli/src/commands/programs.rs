//! `gatehouse programs`, `allow` and `deny`: the programs the token agent asked about, and the person's decision
//! for each (program, profile), changed here as in the notification.

use gatehouse_app::agent::consent::{Decision, Remembered};

use super::*;

/// Lists every decision: as text, or as JSON lines.
pub(super) fn programs(installation: &Installation, json: bool) -> Result<(), Error> {
    let decisions = installation.decisions().map(|d| d.list()).unwrap_or_default();
    let lines: Vec<String> = if json {
        decisions.iter().filter_map(|d| serde_json::to_string(d).ok()).collect()
    } else {
        decisions.iter().map(describe).collect()
    };
    out(&lines)
}

/// Remembers `decision` for `program` (a path, or a name looked up on `PATH`) and `profile` (the config's first
/// when `None`).
pub(super) fn decide(
    installation: &Installation,
    configs: &Result<Vec<Config>, ConfigError>,
    program: &std::path::Path,
    profile: Option<&str>,
    decision: Decision,
) -> Result<(), Error> {
    let profiles = configs.as_ref().map_err(|e| Error::Config(e.clone()))?;
    let profile = find_profile(profiles, profile)?.profile.clone();
    let program = resolve(program).ok_or_else(|| {
        Error::Setting(format!("there is no program {} (give its path, or a name on PATH)", program.display()))
    })?;
    let decisions = installation.decisions().ok_or_else(|| Error::Setting("there is no data directory".into()))?;
    decisions.set(&program, &profile, Some(decision)).map_err(|e| Error::Setting(format!("couldn't save it: {e}")))?;
    let verb = match decision {
        Decision::Allow => "may now have",
        Decision::Deny => "is now refused",
    };
    say!("{} {verb} the tokens of {}.", terminal_safe(&program.display().to_string()), terminal_safe(&profile));
    Ok(())
}

/// `program` as the kernel names a running one: its canonical path, found on `PATH` for a bare name.
fn resolve(program: &std::path::Path) -> Option<PathBuf> {
    if program.components().count() > 1 || program.is_absolute() {
        return program.canonicalize().ok();
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .and_then(|found| found.canonicalize().ok())
}

fn describe(remembered: &Remembered) -> String {
    let decision = match remembered.decision {
        Decision::Allow => "allowed",
        Decision::Deny => "denied ",
    };
    terminal_safe(&format!("{decision}  {}  {}", remembered.profile, remembered.program.display()))
}
