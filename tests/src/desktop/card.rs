//! One account's card in the window, as a test reads and presses it.

use super::*;

/// One account's part of the window: elements are looked up inside its card (`[data-profile=…]`), or in the
/// whole page for the first account.
pub struct Card<'a> {
    pub(super) app: &'a App,
    /// A CSS selector prefix: the card's, or "" for the whole page.
    pub(super) scope: String,
}

impl Card<'_> {
    fn css(&self, test_id: &str) -> String {
        format!("{}[data-testid='{test_id}']", self.scope)
    }

    /// The account's phase, from its card's `data-phase`.
    pub async fn phase(&self) -> String {
        let script = match self.scope.as_str() {
            "" => {
                "const c = document.querySelector('[data-testid=account-card]'); return c ? c.dataset.phase || '' : ''"
                    .to_owned()
            }
            scope => {
                format!("const c = document.querySelector(\"{}\"); return c ? c.dataset.phase || '' : ''", scope.trim())
            }
        };
        let value = self.app.client().execute(&script, vec![]).await;
        value.ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// Waits until the account is in `phase`.
    pub async fn wait_for_phase(&self, phase: &str) {
        let what = format!("{}to reach phase {phase}", self.scope);
        wait_for(&what, UI_TIMEOUT, || async { (self.phase().await == phase).then_some(()) }).await;
    }

    /// The visible text of the element with `data-testid`, or "" when hidden or missing.
    pub async fn text(&self, test_id: &str) -> String {
        let Ok(element) = self.app.client().find(Locator::Css(&self.css(test_id))).await else {
            return String::new();
        };
        element.text().await.unwrap_or_default()
    }

    /// Waits until the element's text contains `needle`, and returns the text.
    pub async fn wait_for_text(&self, test_id: &str, needle: &str) -> String {
        let what = format!("{} to show {needle:?}", self.css(test_id));
        wait_for(&what, UI_TIMEOUT, || async {
            let text = self.text(test_id).await;
            text.contains(needle).then_some(text)
        })
        .await
    }

    /// The kind of the notice shown, if any.
    pub async fn notice_kind(&self) -> Option<String> {
        let script = format!(
            "const n = document.querySelector(\"{}\"); return n && !n.hidden ? n.dataset.kind : null",
            self.css("error")
        );
        self.app.client().execute(&script, vec![]).await.ok().and_then(|v| v.as_str().map(str::to_owned))
    }

    /// Waits until a notice of `kind` is shown, and returns its text.
    pub async fn wait_for_notice(&self, kind: &str) -> String {
        let what = format!("a {kind} notice");
        wait_for(&what, UI_TIMEOUT, || async { (self.notice_kind().await.as_deref() == Some(kind)).then_some(()) })
            .await;
        self.text("error").await
    }

    /// Waits until the element with `data-testid` is there, shown and enabled, as a person waits before using it.
    pub(super) async fn shown(&self, test_id: &str) -> fantoccini::elements::Element {
        let css = self.css(test_id);
        wait_for(&format!("{css} to be shown and enabled"), UI_TIMEOUT, || async {
            let element = self.app.client().find(Locator::Css(&css)).await.ok()?;
            let ready = element.is_displayed().await.unwrap_or(false) && element.is_enabled().await.unwrap_or(false);
            ready.then_some(element)
        })
        .await
    }

    /// Clicks the button with `data-testid`, as a person does.
    pub async fn click(&self, test_id: &str) {
        // As a person would: once the button is there, shown and enabled. (A click on a button the page has just
        // disabled for a moment, while a view arrives, does nothing, and the scenario would wait for nothing.)
        let css = self.css(test_id);
        let element = self.shown(test_id).await;
        // The buttons wired to the app's actions count the clicks that reach them (`data-actions` on the body).
        // WebKit can lose a click that lands while the page moves under it; one that never reached the page is
        // clicked once more, as a person would. One that reached it and did nothing is the app's, and stands.
        let counted = ["sign-in", "cancel", "refresh", "sign-out", "dismiss", "remove", "forget"].contains(&test_id);
        let actions = || async {
            let count = self.app.client().execute("return document.body.dataset.actions || '0'", vec![]).await;
            count.ok().and_then(|v| v.as_str().and_then(|n| n.parse::<u64>().ok())).unwrap_or(0)
        };
        let before = actions().await;
        element.click().await.unwrap_or_else(|e| panic!("clicking {test_id}: {e}"));
        if !counted {
            return;
        }
        let reached = || async { (actions().await > before).then_some(()) };
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            if reached().await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("the click on {test_id} never reached the page; clicking again");
        let element = self.app.client().find(Locator::Css(&css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"));
        element.click().await.unwrap_or_else(|e| panic!("clicking {test_id} again: {e}"));
        crate::wait_for(&format!("the click on {test_id} to reach the page"), UI_TIMEOUT, reached).await;
    }

    /// Clicks the notice's Dismiss button.
    pub async fn dismiss_notice(&self) {
        self.click("dismiss").await;
        wait_for("the notice to go", UI_TIMEOUT, || async { self.notice_kind().await.is_none().then_some(()) }).await;
    }
}
