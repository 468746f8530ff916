//! The window's "Programs using this account": the programs the token agent asked about for a profile, the
//! decision for each (changed here as in the notification, or with `gatehouse allow` and `deny`), and the last
//! handouts. Never a token. While the window is open, the agent's questions about programs are asked in it.

use gatehouse_app::agent::consent::{Consent, Decision, Decisions, Question, Remembered};
use gatehouse_app::handouts::{Handout, Log};
use gatehouse_app::Installation;
use gatehouse_core::error::{Error, Result};
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager as _, Runtime, State};

use crate::watch::Watcher;
use crate::TokenAgent;

/// Where the agent's question goes: the window's channel, while it is open.
pub type QuestionChannel = Watcher<Option<Question>>;

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
/// about again. Only a program already asked about, or being asked about now, can be changed here; the answer to
/// the question being asked goes to the program waiting for it.
#[tauri::command]
pub fn decide_program(
    programs: State<'_, Programs>,
    agent: State<'_, TokenAgent>,
    profile: String,
    program: std::path::PathBuf,
    decision: Option<Decision>,
    question: Option<u64>,
) -> Result<ProgramsView> {
    if let (Some(decision), Some(id), Some(consent)) = (decision, question, agent.consent()) {
        if consent.answer(id, &program, &profile, decision) {
            return Ok(programs.view(&profile));
        }
    }
    let decisions = programs.decisions.as_ref().ok_or_else(|| Error::Setting("there is no data directory".into()))?;
    if !decisions.of_profile(&profile).iter().any(|r| r.program == program) {
        return Err(Error::Setting("that program hasn't asked for this account's tokens".into()));
    }
    decisions.set(&program, &profile, decision).map_err(|e| Error::Setting(format!("couldn't save it: {e}")))?;
    Ok(programs.view(&profile))
}

/// Sends the agent's questions to the window's `channel` from now on; the question being asked now, if any.
#[tauri::command]
pub fn watch_questions(
    questions: State<'_, QuestionChannel>,
    agent: State<'_, TokenAgent>,
    channel: Channel<Option<Question>>,
) -> Option<Question> {
    questions.set(channel);
    agent.consent().and_then(Consent::pending)
}

/// Makes `consent` ask in the window while it is open (its page watches the questions), and draw the person's
/// attention to it; with no window, a notification asks.
pub fn ask_in_window<R: Runtime>(app: &AppHandle<R>, consent: &Consent) {
    let app = app.clone();
    consent.ask_in(Box::new(move |question| {
        let Some(channel) = app.try_state::<QuestionChannel>() else { return false };
        // Shown only where the page has it; else a notification asks.
        if !channel.watched() || !channel.send(&question.cloned()) {
            return false;
        }
        if question.is_some() {
            if let Some(window) = app.get_webview_window(crate::window::MAIN_WINDOW) {
                let _ = window.request_user_attention(Some(tauri::UserAttentionType::Informational));
            }
        }
        true
    }));
}

/// The window is gone: a question in it has nobody to answer it, and its caller is told so at once.
pub fn window_closed<R: Runtime>(app: &AppHandle<R>) {
    if let Some(questions) = app.try_state::<QuestionChannel>() {
        questions.clear();
    }
    if let Some(agent) = app.try_state::<TokenAgent>() {
        if let Some(consent) = agent.consent() {
            consent.withdraw();
        }
    }
}
