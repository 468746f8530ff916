//! `gatehouse status`: each profile, who is signed in and until when; never a token.

use super::*;

/// One profile as `status` shows it: no token, no secret.
#[derive(Debug, Serialize)]
struct ProfileStatus {
    profile: String,
    provider: String,
    /// `signed_in`, `expired` (can't be renewed), `signed_out`, or `unavailable` (see `error`).
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<Account>,
    /// When the access token expires (Unix seconds), if the provider said.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    /// Whether it can be renewed without the browser.
    renewable: bool,
    scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<gatehouse_core::state::Notice>,
}

pub(super) async fn status(
    installation: &Installation,
    config: Result<Vec<Config>, ConfigError>,
    json: bool,
) -> Result<(), Error> {
    let profiles = config.map_err(Error::Config)?;
    let mut statuses = Vec::with_capacity(profiles.len());
    for profile in &profiles {
        let (service, _) = open(installation, profile)?;
        statuses.push(profile_status(&service, profile).await);
    }
    if json {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "profiles": statuses }))
            .map_err(|e| Error::Internal(e.to_string()))?;
        out(&[text])?;
    } else {
        for status in &statuses {
            out(&[describe(status)])?;
        }
    }
    Ok(())
}

async fn profile_status(service: &ProfileService, config: &Config) -> ProfileStatus {
    let loaded = service.load().await;
    let view = service.view();
    let state = match &loaded {
        Err(_) => "unavailable",
        Ok(false) => "signed_out",
        Ok(true) if !view.renewable && view.expires_at.is_some_and(|at| at <= unix_now()) => "expired",
        Ok(true) => "signed_in",
    };
    ProfileStatus {
        profile: config.profile.clone(),
        provider: config.display_name.clone(),
        state,
        account: view.account.clone(),
        expires_at: view.expires_at,
        renewable: view.renewable,
        scopes: view.scopes.clone(),
        // The core's words, and the command line's next step after them.
        error: loaded.as_ref().err().map(|e| {
            let mut notice = gatehouse_core::state::Notice::error(e);
            if let Some(step) = next_step(e, Some(&config.profile)) {
                notice.message = format!("{} ({step})", notice.message);
            }
            notice
        }),
    }
}

fn describe(status: &ProfileStatus) -> String {
    let head = format!("{} ({})", status.profile, status.provider);
    let who = status
        .account
        .as_ref()
        .and_then(|a| match (&a.name, &a.subject) {
            (Some(name), Some(subject)) if name != subject => Some(format!("{name} <{subject}>")),
            (Some(name), _) => Some(name.clone()),
            (None, subject) => subject.clone(),
        })
        .map(|who| terminal_safe(&who))
        .unwrap_or_else(|| "an unnamed account".to_owned());
    let expiry = match status.expires_at {
        Some(at) if at > unix_now() => format!("access expires in {} min", (at - unix_now()).div_ceil(60)),
        Some(_) => "access has expired".to_owned(),
        None => "access expiry not stated".to_owned(),
    };
    let renewal = if status.renewable { "renewable" } else { "not renewable" };
    match status.state {
        "signed_in" => format!("{head}: signed in as {who}; {expiry}, {renewal}"),
        "expired" => format!("{head}: {who}'s access has expired and can't be renewed; run `gatehouse sign-in`"),
        "signed_out" => format!("{head}: signed out"),
        _ => format!(
            "{head}: unknown: {}",
            status.error.as_ref().map_or("the keychain couldn't be read", |n| n.message.as_str())
        ),
    }
}
