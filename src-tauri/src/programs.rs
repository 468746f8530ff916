//! The window's "Programs using this account": the programs the token agent asked about for a profile, the
//! decision for each (changed here as in the notification, or with `gatehouse allow` and `deny`), and the last
//! handouts. Never a token.

use gatehouse_app::agent::consent::{Decision, Decisions, Remembered};
use gatehouse_app::handouts::{Handout, Log};
use gatehouse_app::Installation;
use gatehouse_core::error::{Error, Result};
use serde::Serialize;
use tauri::State;

/// How many handouts the window lists.
const SHOWN: usize = 20;

/// Where the decisions and the handout log are.
pub struct Programs {
    decisions: Option<Decisions>,
    log: Option<Log>,
}

impl Programs {
    /// `installation`'s.
    pub fn of(installation: &Installation) -> Programs {
        Programs { decisions: installation.decisions(), log: installation.handouts() }
    }

    fn view(&self, profile: &str) -> ProgramsView {
        ProgramsView {
            programs: self.decisions.as_ref().map(|d| d.of_profile(profile)).unwrap_or_default(),
            handouts: self.log.as_ref().map(|log| log.recent(profile, SHOWN)).unwrap_or_default(),
        }
    }
}

/// What the window lists under an account.
#[derive(Debug, Serialize)]
pub struct ProgramsView {
    programs: Vec<Remembered>,
    handouts: Vec<Handout>,
}

/// The programs asked about for `profile`, and its last handouts.
#[tauri::command]
pub fn programs(programs: State<'_, Programs>, profile: String) -> ProgramsView {
    programs.view(&profile)
}

/// Changes the decision about `program` for `profile`: allow, deny, or forget it (`None`), so that it is asked
/// about again. Only a program already asked about can be changed here.
#[tauri::command]
pub fn decide_program(
    programs: State<'_, Programs>,
    profile: String,
    program: std::path::PathBuf,
    decision: Option<Decision>,
) -> Result<ProgramsView> {
    let decisions = programs.decisions.as_ref().ok_or_else(|| Error::Setting("there is no data directory".into()))?;
    if !decisions.of_profile(&profile).iter().any(|r| r.program == program) {
        return Err(Error::Setting("that program hasn't asked for this account's tokens".into()));
    }
    decisions.set(&program, &profile, decision).map_err(|e| Error::Setting(format!("couldn't save it: {e}")))?;
    Ok(programs.view(&profile))
}
