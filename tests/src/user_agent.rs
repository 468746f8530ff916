//! A scripted user agent: it does in the provider's real pages what a person does in a browser. It loads the
//! authorization URL, fills in the login form, approves or denies consent, and returns the final redirect to
//! the app's custom scheme, which a browser would hand to the OS.

use url::Url;

/// What the person does at the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Presses Continue.
    Approve,
    /// Presses Cancel.
    Deny,
}

/// Signs in as `login` and answers consent with `decision`. Returns the URL the provider redirected to at the
/// end: the app's custom scheme, or its loopback listener, which this user agent does not visit.
///
/// # Errors
/// A description of the first step that did not go as a person would expect.
pub async fn authorize(authorize_url: &str, login: &str, decision: Decision) -> Result<String, String> {
    match walk(authorize_url, login, decision, None).await? {
        End::Redirect(location) => Ok(location),
        End::Page(url, _) => Err(format!("{url}: no form on the page")),
    }
}

/// Does what a person does with a device code (RFC 8628 §3.3) on another device: opens `verification_uri`,
/// types `user_code`, confirms it, signs in as `login` and approves.
///
/// # Errors
/// A description of the first step that did not go as a person would expect.
pub async fn approve_device(verification_uri: &str, user_code: &str, login: &str) -> Result<(), String> {
    match walk(verification_uri, login, Decision::Approve, Some(user_code)).await? {
        End::Page(_, page) if page.contains("Sign-in Success") => Ok(()),
        End::Page(url, page) => Err(format!("{url}: {}", page.chars().take(300).collect::<String>())),
        End::Redirect(location) => Err(format!("the device flow redirected away, to {location}")),
    }
}

/// Where a walk through the provider's pages ended.
enum End {
    /// A redirect away from the provider: the app's scheme or its loopback listener.
    Redirect(String),
    /// A page with no form to fill in, and its address.
    Page(Url, String),
}

/// Walks the provider's pages from `start`, filling in the login (and `user_code`, when given) and answering
/// consent with `decision`.
async fn walk(start: &str, login: &str, decision: Decision, user_code: Option<&str>) -> Result<End, String> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut url = Url::parse(start).map_err(|e| format!("start URL: {e}"))?;
    let provider = url.clone();
    let mut form: Option<(Url, Vec<(String, String)>)> = None;
    for _step in 0..20 {
        let request = match form.take() {
            Some((action, fields)) => http.post(action).form(&fields),
            None => http.get(url.clone()),
        };
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{url}: redirect without Location"))?
                .to_owned();
            // Read the raw Location: a custom-scheme target is where a browser hands over to the OS, and a
            // redirect away from the provider (a loopback listener) is where the app takes over.
            let next = url.join(&location).map_err(|e| format!("bad Location {location:?}: {e}"))?;
            if (next.scheme() != "http" && next.scheme() != "https") || next.origin() != provider.origin() {
                return Ok(End::Redirect(location));
            }
            url = next;
            continue;
        }
        let page = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{url}: HTTP {status}: {}", page.chars().take(300).collect::<String>()));
        }
        let Some((action, mut fields)) = parse_form(&page) else { return Ok(End::Page(url, page)) };
        let prompt = fields.iter().find(|(k, _)| k == "prompt").map(|(_, v)| v.clone()).unwrap_or_default();
        if prompt == "consent" && decision == Decision::Deny {
            let abort = find_href(&page, "/abort").ok_or("no Cancel link on the consent page")?;
            url = url.join(&abort).map_err(|e| e.to_string())?;
            continue;
        }
        for (name, value) in &mut fields {
            match name.as_str() {
                "login" => *value = login.to_owned(),
                "password" => *value = "any password".to_owned(),
                "user_code" if value.is_empty() => *value = user_code.unwrap_or_default().to_owned(),
                _ => {}
            }
        }
        form = Some((url.join(&action).map_err(|e| e.to_string())?, fields));
    }
    Err("the provider kept the user agent going round in circles".into())
}

/// The first form's action and its inputs' names and values.
fn parse_form(page: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = page.find("<form")?;
    let end = page[start..].find("</form>").map(|e| start + e)?;
    let form = &page[start..end];
    let tag_end = form.find('>')?;
    let action = attribute(&form[..tag_end], "action")?;
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find("<input") {
        let tag = &rest[i..];
        let close = tag.find('>').unwrap_or(tag.len());
        let tag_text = &tag[..close];
        if let Some(name) = attribute(tag_text, "name") {
            fields.push((name, attribute(tag_text, "value").unwrap_or_default()));
        }
        rest = &tag[close..];
    }
    Some((action, fields))
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&amp;", "&").replace("&#x2F;", "/").replace("&#47;", "/"))
}

fn find_href(page: &str, ending: &str) -> Option<String> {
    let mut rest = page;
    while let Some(i) = rest.find("href=\"") {
        let start = i + 6;
        let end = rest[start..].find('"')? + start;
        let href = rest[start..end].replace("&amp;", "&").replace("&#x2F;", "/");
        if href.ends_with(ending) {
            return Some(href);
        }
        rest = &rest[end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_login_form() {
        let page = r#"<html><form autocomplete="off" action="/interaction/abc" method="post">
            <input type="hidden" name="prompt" value="login"/>
            <input required type="text" name="login" placeholder="Enter any login" autofocus="on">
            <input required type="password" name="password" placeholder="and password" >
            <button type="submit">Sign-in</button></form><a href="/interaction/abc/abort">[ Cancel ]</a>"#;
        let (action, fields) = parse_form(page).unwrap();
        assert_eq!(action, "/interaction/abc");
        assert_eq!(fields[0], ("prompt".to_string(), "login".to_string()));
        assert_eq!(fields.len(), 3);
        assert_eq!(find_href(page, "/abort").as_deref(), Some("/interaction/abc/abort"));
    }
}
