//! The handout log: which program was given a token of which profile, when, for what, and how (kept from
//! before, renewed, or refused). Never a token, nor any part of one: a [`Handout`] has no field that could hold
//! one.
//!
//! One JSON line per handout in `handouts.jsonl` in the app's data directory, owner-only (0600, in a 0700
//! directory), appended by every process that hands tokens out (the agent, `gatehouse token`). Past
//! [`MAX_BYTES`] the file becomes `handouts.jsonl.1` (replacing the one before), so the two hold the last few
//! thousand handouts, and survive a restart.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The most characters kept of what a caller says (its name, the resource and scopes it asks for).
const MAX_FIELD: usize = 200;

/// How large the log grows before it is rotated.
pub const MAX_BYTES: u64 = 256 * 1024;

/// One handout, or one refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handout {
    /// When, in seconds since the Unix epoch.
    pub at: u64,
    /// The profile.
    pub profile: String,
    /// The program that asked: its executable, as the kernel names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<PathBuf>,
    /// Its process ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The name it gave itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The resource the token was narrowed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The scopes it was narrowed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// How it went.
    pub outcome: Outcome,
    /// For a refusal, the error's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a request for a token went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A token kept from before was given.
    Kept,
    /// The provider was asked for the token given.
    Renewed,
    /// No token was given.
    Refused,
}

impl Outcome {
    /// The word the log shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Kept => "kept",
            Outcome::Renewed => "renewed",
            Outcome::Refused => "refused",
        }
    }
}

/// The log at `file`.
#[derive(Debug, Clone)]
pub struct Log {
    file: PathBuf,
}

impl Log {
    /// The log kept in `file`.
    pub fn at(file: PathBuf) -> Log {
        Log { file }
    }

    /// Appends `handout`, rotating the file first when it has grown past [`MAX_BYTES`]. A log that can't be
    /// written is said in the process's own log, and the handout goes on: the record is not the token.
    pub fn record(&self, handout: &Handout) {
        if let Err(e) = self.append(handout) {
            tracing::warn!("couldn't write the handout log {}: {e}", self.file.display());
        }
    }

    fn append(&self, handout: &Handout) -> std::io::Result<()> {
        let dir = self.file.parent().ok_or_else(|| std::io::Error::other("the log has no directory"))?;
        gatehouse_core::os::create_private_dir(dir)?;
        if std::fs::metadata(&self.file).is_ok_and(|m| m.len() > MAX_BYTES) {
            std::fs::rename(&self.file, rotated(&self.file))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            // Owner-only, and never through a link planted where the log goes.
            options.mode(0o600).custom_flags(gatehouse_core::os::NOFOLLOW);
        }
        // What a caller says of itself is kept short, so that a few requests can't push the record out.
        let mut handout = handout.clone();
        for field in [&mut handout.caller, &mut handout.resource, &mut handout.scope] {
            if let Some(text) = field.as_mut() {
                if let Some((cut, _)) = text.char_indices().nth(MAX_FIELD) {
                    text.truncate(cut);
                    text.push('…');
                }
            }
        }
        let mut line = serde_json::to_vec(&handout)?;
        line.push(b'\n');
        // One write of one line: appends from several processes don't interleave.
        options.open(&self.file)?.write_all(&line)
    }

    /// The last `count` handouts of `profile`, newest first.
    pub fn recent(&self, profile: &str, count: usize) -> Vec<Handout> {
        self.read().into_iter().rev().filter(|h| h.profile == profile).take(count).collect()
    }

    /// Every handout kept, oldest first; lines that can't be read are skipped.
    pub fn read(&self) -> Vec<Handout> {
        [rotated(&self.file), self.file.clone()]
            .iter()
            .filter_map(|file| std::fs::read_to_string(file).ok())
            .flat_map(|text| text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect::<Vec<_>>())
            .collect()
    }
}

fn rotated(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handout(profile: &str, outcome: Outcome) -> Handout {
        Handout {
            at: 1,
            profile: profile.into(),
            program: Some("/usr/bin/kubectl".into()),
            pid: Some(7),
            caller: None,
            resource: Some("https://a.example/".into()),
            scope: None,
            outcome,
            error: None,
        }
    }

    #[test]
    fn handouts_are_kept_owner_only_read_back_and_rotated() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("gatehouse-handouts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = Log::at(dir.join("handouts.jsonl"));
        log.record(&handout("work", Outcome::Renewed));
        log.record(&handout("home", Outcome::Kept));
        assert_eq!(log.read(), [handout("work", Outcome::Renewed), handout("home", Outcome::Kept)]);
        assert_eq!(std::fs::metadata(dir.join("handouts.jsonl")).unwrap().permissions().mode() & 0o777, 0o600);
        // Past the bound, the file is rotated once, and the two together keep the latest.
        let line = serde_json::to_vec(&handout("work", Outcome::Refused)).unwrap().len() as u64 + 1;
        let many = (MAX_BYTES / line) as usize + 10;
        for _ in 0..many {
            log.record(&handout("work", Outcome::Refused));
        }
        let size = std::fs::metadata(dir.join("handouts.jsonl")).unwrap().len();
        assert!(size <= MAX_BYTES + 1024, "{size}");
        assert!(dir.join("handouts.jsonl.1").exists());
        assert_eq!(log.read().last(), Some(&handout("work", Outcome::Refused)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
