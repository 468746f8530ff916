//! `gatehouse log`: the handout log, which program was given a token of which profile, when and for what.

use gatehouse_app::handouts::Handout;

use super::*;

/// Prints the handouts kept, oldest first, of `profile` only when given: as text, or as JSON lines.
pub(super) fn log(installation: &Installation, profile: Option<&str>, json: bool) -> Result<(), Error> {
    let handouts: Vec<Handout> = installation
        .handouts()
        .map(|log| log.read())
        .unwrap_or_default()
        .into_iter()
        .filter(|h| profile.is_none_or(|p| h.profile == p))
        .collect();
    let lines: Vec<String> = if json {
        handouts.iter().filter_map(|h| serde_json::to_string(h).ok()).collect()
    } else {
        handouts.iter().map(describe).collect()
    };
    out(&lines)
}

/// One handout as a line of text: when, the profile, the program and its pid, what for, and how it went.
fn describe(handout: &Handout) -> String {
    let program = handout.program.as_ref().map_or_else(|| "unknown program".to_owned(), |p| p.display().to_string());
    let pid = handout.pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
    let resource = handout.resource.as_deref().map(|r| format!(" for {r}")).unwrap_or_default();
    let scope = handout.scope.as_deref().map(|s| format!(" scope \"{s}\"")).unwrap_or_default();
    let error = handout.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default();
    terminal_safe(&format!(
        "{}  {}  {program}{pid}{resource}{scope}: {}{error}",
        utc(handout.at),
        handout.profile,
        handout.outcome.as_str()
    ))
}

/// `secs` since the Unix epoch as a UTC date and time, `2026-12-06 10:42:07 UTC` (the proleptic Gregorian
/// calendar's days from the epoch, as in Howard Hinnant's `civil_from_days`).
fn utc(secs: u64) -> String {
    let (days, time) = (secs / 86_400, secs % 86_400);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", time / 3600, time % 3600 / 60, time % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_796_553_727), "2026-12-06 10:42:07 UTC");
    }
}
