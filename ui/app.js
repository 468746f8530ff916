// Gatehouse's window. It renders the backend's view of the session and sends the user's intent back. It never
// sees a token: the backend only sends status, account, expiry, scopes and resource data.
"use strict";

const { invoke, Channel } = window.__TAURI__.core;

const $ = (id) => document.getElementById(id);

const STATUS_TEXT = {
  configError: "Gatehouse can't start signing in",
  restoring: "Restoring session…",
  signedOut: "Signed out",
  waitingForBrowser: "Waiting for the browser…",
  exchanging: "Finishing sign-in…",
  signedIn: "Signed in",
  refreshing: "Refreshing…",
  signingOut: "Signing out…",
};

// Which buttons each phase offers, and which one gets the keyboard focus.
const BUTTONS = {
  configError: [],
  restoring: [],
  signedOut: ["sign-in"],
  waitingForBrowser: ["cancel", "sign-in"],
  exchanging: [],
  signedIn: ["refresh", "sign-out"],
  refreshing: ["refresh", "sign-out"],
  signingOut: [],
};
const BUSY = new Set(["restoring", "exchanging", "refreshing", "signingOut"]);
const ACTIONS = { "sign-in": "sign_in", cancel: "cancel_sign_in", refresh: "refresh", "sign-out": "sign_out" };

let windowView = null;
// Each account's card and the view it shows, by profile name.
const cards = new Map();

function render(next) {
  // A get_state answer can arrive after a newer change event: never step back to an older view.
  if (windowView && next.revision < windowView.revision) return;
  windowView = next;
  const several = next.accounts.length > 1;
  document.body.classList.toggle("several", several);
  // With one account the header names its provider; with several, each card does.
  $("provider").textContent = !several && next.accounts[0]?.provider ? `Provider: ${next.accounts[0].provider}` : "";
  showNotice($("window-notice"), next.notice);

  const seen = new Set();
  const list = $("accounts");
  for (const [index, account] of next.accounts.entries()) {
    seen.add(account.profile);
    let card = cards.get(account.profile);
    if (!card) {
      card = makeCard(account.profile);
      cards.set(account.profile, card);
    }
    // The config's order. A card already in place is left there: moving it would take the focus from its
    // buttons, and lose a click that lands while it moves.
    if (list.children[index] !== card.element) list.insertBefore(card.element, list.children[index] || null);
    renderAccount(card, account, several, next.added.includes(account.profile));
  }
  for (const [profile, card] of cards) {
    if (!seen.has(profile)) {
      card.element.remove();
      cards.delete(profile);
    }
  }
  renderRemoved(next.removed);
  renderAdd(next.providers, next.setup, next.accounts);
  renderSetupView(next);
  focusWhenShown();
}

// A control to be given the focus as soon as it is shown: a card's, after it settles.
let pendingFocus = null;

function focusWhenShown() {
  const target = pendingFocus && cards.get(pendingFocus.profile)?.find(pendingFocus.testId);
  if (target && !target.hidden && !target.disabled && target.offsetParent !== null) {
    pendingFocus = null;
    target.focus();
  }
}

function renderAdd(providers, setup, accounts) {
  $("add-account").hidden = providers.length === 0 && !setup;
  // Another account once one is signed in, and not while a sign-in waits: two Cancels would be on screen.
  const signedIn = accounts.some((a) => a.phase === "signedIn" || a.phase === "refreshing");
  const waiting = accounts.some((a) => a.phase === "waitingForBrowser" || a.phase === "exchanging");
  $("add").hidden = providers.length === 0 || !signedIn || waiting;
  if ($("add").hidden) $("add-confirm").hidden = true;
  $("add-hint").hidden = $("add").hidden;
  $("add-provider").hidden = !setup;
  // With one provider there is nothing to choose.
  $("add-from-label").hidden = providers.length < 2;
  const chosen = $("add-from").value;
  $("add-from").replaceChildren(...providers.map((p) => {
    const option = document.createElement("option");
    option.value = p.profile;
    option.textContent = `${p.provider} (${p.profile})`;
    return option;
  }));
  if (providers.some((p) => p.profile === chosen)) $("add-from").value = chosen;
}

function makeCard(profile) {
  const element = $("account-template").content.firstElementChild.cloneNode(true);
  element.dataset.profile = profile;
  const card = { element, view: null, find: (testId) => element.querySelector(`[data-testid="${testId}"]`) };
  for (const [testId, command] of Object.entries(ACTIONS)) {
    card.find(testId).addEventListener("click", async () => {
      // While the browser is awaited, the button opens the same sign-in again: a link already copied elsewhere
      // keeps working.
      const again = testId === "sign-in" && card.view?.phase === "waitingForBrowser" && !card.view.deviceCode &&
        !pushedLink(card.view.signInLink);
      if (command === "refresh") forgetRefreshed(card);
      const done = await act(again ? "open_browser_again" : command, profile);
      if (done && command === "refresh") sayRefreshed(card);
      if (again && done === "sameLink") {
        element.querySelector(".copy-result").textContent = "Opened the same sign-in in the browser again.";
      }
    });
  }
  card.find("dismiss").addEventListener("click", () => act("dismiss_notice", profile));
  card.find("programs").addEventListener("toggle", () => {
    if (card.find("programs").open) loadPrograms(card, profile);
  });
  card.find("remove").addEventListener("click", () => act("remove_account", profile));
  card.find("use-code").addEventListener("click", () => act("sign_in_with_code", profile));
  card.find("copy-link").addEventListener("click", async () => {
    const link = card.find("sign-in-link");
    const result = element.querySelector(".copy-result");
    const copied = await copyOrSelect(link.value, () => {
      link.focus();
      link.select();
    });
    result.textContent = copied
      ? "Copied. Open it in any browser to sign in."
      : "The link is selected: press Ctrl+C to copy it.";
  });
  element.querySelector(".paste-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = card.find("paste-redirect");
    const link = input.value.trim();
    pasteProblem(card, null);
    if (!link) {
      pasteProblem(card, "Paste the address the browser ended on, after you signed in.");
      return;
    }
    const expected = card.view?.signInRedirect || "";
    // The sign-in link itself, pasted back: the likeliest mistake right after Copy link.
    if (card.view?.signInLink && sameTarget(link, card.view.signInLink)) {
      pasteProblem(card, "That's the link to open, not the address the browser ended on. Open it in a browser " +
        `and sign in; the browser then ends on an address starting with ${expected}?code=… Paste that.`);
      return;
    }
    countAction();
    try {
      await invoke("paste_redirect", { profile, link });
      input.value = "";
    } catch (e) {
      // Why, beside the field; the pasted address stays, to be corrected.
      if (e.kind === "callback_rejected") {
        pasteProblem(card, expected && !link.startsWith(expected.split("?")[0])
          ? `That isn't the address a browser ends on after signing in here: that one starts with ${expected}. ` +
            `(${e.message})`
          : e.message);
      } else if (!card.view || !card.view.notice) {
        showError(e);
      }
    }
  });
  // The paste field is described by its message (ids are per card).
  element.querySelector(".paste-error").id = `paste-error-${profile}`;
  card.find("paste-redirect").setAttribute("aria-describedby", `paste-error-${profile}`);
  card.find("edit-provider").addEventListener("click", () => openSetup(profile, card.find("edit-provider")));
  const confirmBox = element.querySelector(".confirm-remove");
  card.find("remove-provider").addEventListener("click", () => {
    confirmBox.querySelector(".confirm-text").textContent =
      `Remove ${profile}? Gatehouse signs it out first (ending the session at the provider), then deletes it ` +
      "from the config file.";
    confirmBox.hidden = false;
    card.find("remove-provider-keep").focus();
  });
  card.find("remove-provider-keep").addEventListener("click", () => {
    confirmBox.hidden = true;
    card.find("remove-provider").focus();
  });
  card.find("remove-provider-confirm").addEventListener("click", async () => {
    confirmBox.hidden = true;
    countAction();
    const name = card.view?.provider || profile;
    try {
      const signedOut = await invoke("remove_provider", { profile });
      // What the sign-out said goes with the card: the window says it instead.
      const said = signedOut && signedOut.kind !== "signed_out" ? ` ${signedOut.message}` : "";
      windowNotice(`Removed ${name}.${said}`);
    } catch (e) {
      // The sign-out may have put its own notice on the card; why the removal failed goes in the window's.
      showError(e);
    }
  });
  return card;
}

// Says `text` (or nothing) beside the paste field, marking it invalid and focusing it.
function pasteProblem(card, text) {
  const input = card.find("paste-redirect");
  const error = card.element.querySelector(".paste-error");
  error.textContent = text || "";
  error.hidden = !text;
  if (text) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  } else {
    input.removeAttribute("aria-invalid");
  }
}

// Whether `link` is a pushed request's (RFC 9126): a reference the provider takes once, so it can't be opened again.
function pushedLink(link) {
  try {
    return Boolean(link) && new URL(link).searchParams.has("request_uri");
  } catch {
    return false;
  }
}

// Whether two addresses lead to the same place (scheme, host, port and path), whatever their queries.
function sameTarget(a, b) {
  try {
    const [x, y] = [new URL(a), new URL(b)];
    return x.origin === y.origin && x.pathname === y.pathname;
  } catch {
    return false;
  }
}

// Says, beside the account, that Refresh renewed access (or, without a refresh token, reloaded the data), and
// until when access now holds.
function sayRefreshed(card) {
  if (!card || !card.view || !["signedIn", "refreshing"].includes(card.view.phase)) return;
  card.refreshedAt = Date.now() / 1000;
  showRefreshed(card);
}

function forgetRefreshed(card) {
  if (!card) return;
  card.refreshedAt = null;
  showRefreshed(card);
}

// The Refresh line, from the view as it is now (the renewed expiry may arrive after the answer).
function showRefreshed(card) {
  const line = card.element.querySelector(".refreshed");
  const view = card.view;
  if (!card.refreshedAt || !view) {
    line.textContent = "";
    return;
  }
  const at = formatTime(card.refreshedAt, true);
  const until = view.expiresAt ? `; access is now valid until ${formatTime(view.expiresAt, true)}` : "";
  const text = view.renewable === false ? `Reloaded your data at ${at}.` : `Renewed at ${at}${until}.`;
  if (line.textContent !== text) line.textContent = text;
}

function renderAccount(card, next, several, added) {
  const phaseChanged = !card.view || card.view.phase !== next.phase;
  const newAttempt = next.phase === "waitingForBrowser" && next.signInLink !== card.view?.signInLink;
  card.view = next;
  const { element, find } = card;
  const part = (name) => element.querySelector(`.${name}`);
  element.dataset.phase = next.phase;
  const title = part("profile-name");
  title.hidden = !several;
  // Headings go down one level at a time: under the window's h1 directly, or under the account's h2.
  part("data-heading").setAttribute("aria-level", several ? "3" : "2");
  title.textContent = next.provider ? `${next.profile} · ${next.provider}` : next.profile;
  element.setAttribute("aria-label", several ? `Account ${next.profile}` : "Account");
  find("status").textContent = next.deviceCode && next.phase === "waitingForBrowser"
    ? "Waiting for the code to be entered…"
    : STATUS_TEXT[next.phase] || next.phase;

  showNotice(find("error"), next.notice);
  // A broken config stays on screen until it is fixed.
  find("dismiss").hidden = next.phase === "configError";

  part("waiting").hidden = next.phase !== "waitingForBrowser";
  // Each attempt starts with an empty paste field and no message from the one before.
  if (newAttempt || next.phase !== "waitingForBrowser") {
    if (next.phase !== "waitingForBrowser" || newAttempt) find("paste-redirect").value = "";
    pasteProblem(card, null);
    if (newAttempt) part("copy-result").textContent = "";
  }
  if (next.phase !== "signedIn" && next.phase !== "refreshing") card.refreshedAt = null;
  showRefreshed(card);
  // The code on another device is offered only where the provider has it.
  const pushed = pushedLink(next.signInLink);
  part("no-browser").textContent = (next.deviceFlow
    ? "No browser window appeared? Copy the link and open it in a browser yourself, or use a code on another " +
      "device, such as your phone."
    : "No browser window appeared? Copy the link and open it in a browser yourself.") +
    (pushed ? " The link works once: Start over makes a new one, and this one then stops working." : "");
  part("waiting-expiry").textContent = next.signInExpiresAt
    ? `This sign-in stays open until ${formatTime(next.signInExpiresAt)}.`
    : "";
  const waiting = next.phase === "waitingForBrowser";
  const device = next.deviceCode;
  part("browser-wait").hidden = Boolean(device);
  part("device-wait").hidden = !device;
  find("sign-in-link").value = next.signInLink || "";
  part("link-field").hidden = find("copy-link").hidden = !next.signInLink;
  find("use-code").hidden = !next.deviceFlow || Boolean(device);
  if (!waiting) part("copy-result").textContent = "";
  if (device) {
    find("device-code").textContent = device.userCode;
    find("device-link").textContent = device.verificationUri;
    find("device-qr").hidden = !device.qr;
    if (device.qr && find("device-qr").getAttribute("src") !== device.qr) find("device-qr").src = device.qr;
    part("device-expiry").textContent = `The code works until ${formatTime(device.expiresAt)}.`;
  }
  find("sign-in").textContent = device ? "Use the browser instead"
    : waiting ? (pushed ? "Start over" : "Open the browser again") : "Sign in";
  find("sign-in").classList.toggle("primary", !waiting);
  find("cancel").classList.toggle("primary", waiting);

  const signedIn = next.account && (next.phase === "signedIn" || next.phase === "refreshing");
  part("session").hidden = !signedIn;
  if (signedIn) {
    find("account").textContent = next.account.name || next.account.subject || "(unnamed account)";
    part("expires").textContent = next.expiresAt ? describeExpiry(next.expiresAt) : "not stated by the provider";
    part("scopes").replaceChildren(...(next.scopes.length ? next.scopes.map((s) => chip(s)) : [note("none")]));
    // Asked for but not granted: said in words, not only by absence.
    const notGranted = next.notGranted || [];
    part("not-granted").replaceChildren(...notGranted.map((s) => chip(s)));
    part("not-granted").hidden = part("not-granted-label").hidden = notGranted.length === 0;
    find("renewal").textContent = next.renewable
      ? "automatic, with a refresh token"
      : "not possible: the provider gave no refresh token, so you sign in again when access expires";
    find("protection").textContent = next.keyBound
      ? "bound to a key kept in this computer's keychain (DPoP): a copied token is useless elsewhere"
      : "bearer token: whoever holds it can use it until it expires";
    find("resource").replaceChildren(next.resource === null || next.resource === undefined
      ? note("Not loaded. Press Refresh to try again.")
      : renderValue(next.resource));
  }

  // Without a refresh token, Refresh can only reload the data: the button says which it will do.
  find("refresh").textContent = next.renewable === false ? "Reload" : "Refresh";
  find("refresh").title = next.renewable === false
    ? "Reload your data with the current access (it can't be renewed)"
    : "Renew your access and reload your data";
  const shown = BUTTONS[next.phase] || [];
  for (const testId of Object.keys(ACTIONS)) {
    find(testId).hidden = !shown.includes(testId);
    find(testId).disabled = BUSY.has(next.phase);
    // With several accounts, a screen reader hears whose button it is.
    if (several) find(testId).setAttribute("aria-label", `${find(testId).textContent} (${next.profile})`);
    else find(testId).removeAttribute("aria-label");
  }
  // An account added here can be removed once it is signed out.
  find("remove").hidden = !(added && next.phase === "signedOut");
  // A provider in the config file can be edited and removed from here.
  const editable = Boolean(windowView.setup && windowView.setup.editable.includes(next.profile));
  part("provider-actions").hidden = !editable || BUSY.has(next.phase) || next.phase === "waitingForBrowser";
  for (const testId of ["edit-provider", "remove-provider"]) {
    find(testId).setAttribute("aria-label", `${find(testId).textContent} ${next.profile}`);
  }
  // Focus follows a change of phase, unless the person is busy elsewhere (another card, a message).
  const focusFree = document.activeElement === document.body || element.contains(document.activeElement);
  if (phaseChanged && shown.length > 0 && focusFree && !find("error").contains(document.activeElement)) {
    find(shown[0]).focus();
  }
}

function showNotice(box, notice) {
  box.hidden = !notice;
  if (!notice) return;
  box.querySelector(".notice-message").textContent = notice.message;
  box.classList.toggle("info", notice.severity === "info");
  box.classList.toggle("error", notice.severity !== "info");
  box.dataset.kind = notice.kind;
}

function renderRemoved(removed) {
  $("removed").hidden = removed.length === 0;
  $("removed-list").replaceChildren(...removed.map((profile) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = profile;
    const forget = document.createElement("button");
    forget.type = "button";
    forget.textContent = "Forget";
    forget.dataset.testid = `forget-${profile}`;
    forget.setAttribute("aria-label", `Forget the session of ${profile}`);
    forget.addEventListener("click", () => act("forget", profile));
    li.append(name, forget);
    return li;
  }));
}

function chip(text) {
  const span = document.createElement("span");
  span.className = "scope";
  span.textContent = text;
  return span;
}

function note(text) {
  const p = document.createElement("p");
  p.className = "empty";
  p.textContent = text;
  return p;
}

// Renders JSON as nested definition lists and lists, using text nodes only.
function renderValue(value, depth = 0) {
  if (value === null || value === undefined) return note("none");
  if (Array.isArray(value)) {
    if (value.length === 0) return note("none");
    const ul = document.createElement("ul");
    for (const item of value) {
      const li = document.createElement("li");
      li.append(depth > 4 ? JSON.stringify(item) : renderValue(item, depth + 1));
      ul.append(li);
    }
    return ul;
  }
  if (typeof value === "object") {
    const dl = document.createElement("dl");
    for (const [key, item] of Object.entries(value)) {
      const dt = document.createElement("dt");
      dt.textContent = humanise(key);
      const dd = document.createElement("dd");
      dd.append(depth > 4 ? JSON.stringify(item) : renderValue(item, depth + 1));
      dl.append(dt, dd);
    }
    return dl;
  }
  if (typeof value === "boolean") return document.createTextNode(value ? "Yes" : "No");
  return document.createTextNode(String(value));
}

// OpenID Connect's standard claims (OIDC Core §5.1), by the names people know them by.
const CLAIM_LABELS = {
  sub: "User ID", name: "Name", given_name: "Given name", family_name: "Family name", middle_name: "Middle name",
  nickname: "Nickname", preferred_username: "User name", profile: "Profile page", picture: "Picture",
  website: "Website", email: "Email", email_verified: "Email verified", gender: "Gender", birthdate: "Birth date",
  zoneinfo: "Time zone", locale: "Language", phone_number: "Phone", phone_number_verified: "Phone verified",
  address: "Address", updated_at: "Updated",
};

function humanise(key) {
  if (Object.hasOwn(CLAIM_LABELS, key)) return CLAIM_LABELS[key];
  const words = key.replace(/[_-]+/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function formatTime(unixSeconds, seconds = false) {
  const options = { hour: "2-digit", minute: "2-digit" };
  if (seconds) options.second = "2-digit";
  return new Date(unixSeconds * 1000).toLocaleTimeString([], options);
}

function describeExpiry(unixSeconds) {
  const minutes = Math.round((unixSeconds * 1000 - Date.now()) / 60000);
  if (minutes <= 0) return `expired at ${formatTime(unixSeconds)}; it is refreshed when needed`;
  return `at ${formatTime(unixSeconds, true)} (in ${minutes} min)`;
}

// Shows an error the backend could not put in the view itself.
function showError(e) {
  showNotice($("window-notice"), { kind: e.kind || "internal", message: e.message || String(e), severity: "error" });
}

// Says `text` (or nothing) in the window's status line: what an action done here did, such as saving or
// removing a provider. It goes with the next action.
function windowNotice(text) {
  $("window-status").textContent = text || "";
}

// Counts the clicks that reached a handler, for the end-to-end tests: a click that WebKit loses on its way (it
// lands while the page moves under it) is told from one the app ignored.
function countAction() {
  windowNotice(null);
  pendingFocus = null;
  document.body.dataset.actions = String(Number(document.body.dataset.actions || 0) + 1);
}

// Puts `text` on the clipboard and says true; where there is no clipboard, `select` selects it instead, so that
// Ctrl+C copies it, and this says false.
async function copyOrSelect(text, select) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    select();
    return false;
  }
}

// Asks the backend for `command`; says whether it was done (with what it answered, where it answers).
// "Programs using this account": the programs asked about and the decision for each, which a button changes,
// and the last tokens given out. Read when the list is opened, and again after a change.
async function loadPrograms(card, profile, change) {
  const error = card.element.querySelector(".programs-error");
  error.hidden = true;
  try {
    const view = change
      ? await invoke("decide_program", { profile, program: change.program, decision: change.decision })
      : await invoke("programs", { profile });
    renderPrograms(card, profile, view);
  } catch (e) {
    error.textContent = e.message || String(e);
    error.hidden = false;
  }
}

function renderPrograms(card, profile, view) {
  const list = card.find("program-list");
  card.find("programs-empty").hidden = view.programs.length > 0;
  list.replaceChildren(...view.programs.map((entry) => {
    const item = document.createElement("li");
    item.dataset.program = entry.program;
    const name = document.createElement("code");
    name.textContent = entry.program;
    const decision = document.createElement("span");
    decision.className = "decision";
    decision.dataset.testid = "program-decision";
    decision.textContent = entry.decision === "allow" ? "allowed" : "denied";
    const flip = document.createElement("button");
    flip.type = "button";
    const next = entry.decision === "allow" ? "deny" : "allow";
    flip.dataset.testid = `program-${next}`;
    flip.textContent = next === "deny" ? "Deny" : "Allow";
    flip.setAttribute("aria-label", `${flip.textContent} ${entry.program}`);
    flip.addEventListener("click", () => loadPrograms(card, profile, { program: entry.program, decision: next }));
    const forget = document.createElement("button");
    forget.type = "button";
    forget.className = "link";
    forget.dataset.testid = "program-forget";
    forget.textContent = "Ask again";
    forget.setAttribute("aria-label", `Ask again about ${entry.program}`);
    forget.addEventListener("click", () => loadPrograms(card, profile, { program: entry.program, decision: null }));
    item.append(name, " ", decision, " ", flip, " ", forget);
    return item;
  }));
  card.find("handouts-empty").hidden = view.handouts.length > 0;
  card.find("handout-list").replaceChildren(...view.handouts.map((handout) => {
    const item = document.createElement("li");
    const when = new Date(handout.at * 1000).toLocaleString();
    const who = handout.program || "an unknown program";
    const pid = handout.pid ? ` (pid ${handout.pid})` : "";
    const what = handout.resource ? ` for ${handout.resource}` : "";
    const outcome = { kept: "given", renewed: "renewed and given", refused: "refused" }[handout.outcome];
    const why = handout.error ? ` (${handout.error})` : "";
    item.textContent = `${when}: ${who}${pid}${what}, ${outcome}${why}`;
    return item;
  }));
}

async function act(command, profile) {
  countAction();
  try {
    const answer = await invoke(command, { profile });
    return answer ?? true;
  } catch (e) {
    // The backend has already put the error in the account's view; this covers a failure to reach it at all.
    const card = cards.get(profile);
    if (!card || !card.view || !card.view.notice) showError(e);
    return false;
  }
}

// The accounts a key acts on: the one whose card has the focus, else every one in `phase`.
function accountsFor(phase) {
  const focused = [...cards.values()].find((card) => card.element.contains(document.activeElement));
  const candidates = focused ? [focused] : [...cards.values()];
  return candidates.filter((card) => card.view && card.view.phase === phase).map((card) => card.view.profile);
}

function renderSettings(settings) {
  $("start-at-login").checked = settings.startAtLogin;
}

$("start-at-login").addEventListener("change", async (event) => {
  const wanted = event.target.checked;
  try {
    renderSettings(await invoke("set_start_at_login", { enabled: wanted }));
  } catch (e) {
    $("start-at-login").checked = !wanted;
    showError(e);
  }
});

// Add account asks first: nothing is created until the person says so, and the new account is kept only if its
// first sign-in succeeds.
$("add").addEventListener("click", () => {
  const from = windowView.providers.find((p) => p.profile === $("add-from").value) || windowView.providers[0];
  $("add-confirm-text").textContent = `Add another account at ${from ? from.provider : "this provider"}? Gatehouse ` +
    "opens your browser to sign in, and keeps the account only if that sign-in succeeds.";
  $("add-confirm").hidden = false;
  $("add-yes").focus();
});
$("add-no").addEventListener("click", () => {
  $("add-confirm").hidden = true;
  $("add").focus();
});
$("add-yes").addEventListener("click", async () => {
  $("add-confirm").hidden = true;
  try {
    await invoke("add_account", { from: $("add-from").value || null });
  } catch (e) {
    // A failed sign-in is shown on the new account's card; anything else here.
    if (e.kind === "config_invalid" || e.kind === "setting_failed" || e.kind === "unknown_profile") showError(e);
  }
});
$("add-confirm").addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.stopPropagation();
    $("add-no").click();
  }
});

$("window-notice").querySelector("button").addEventListener("click", () => {
  $("window-notice").hidden = true;
  invoke("dismiss_window_notice").catch(showError);
});

document.addEventListener("keydown", (event) => {
  const ctrl = event.ctrlKey || event.metaKey;
  if (event.key === "Escape" && accountsFor("waitingForBrowser").length > 0) {
    event.preventDefault();
    for (const profile of accountsFor("waitingForBrowser")) act("cancel_sign_in", profile);
  } else if (ctrl && event.key.toLowerCase() === "r") {
    event.preventDefault(); // never reload the page: it would only flash the window
    for (const profile of accountsFor("signedIn")) {
      forgetRefreshed(cards.get(profile));
      act("refresh", profile).then((done) => done && sayRefreshed(cards.get(profile)));
    }
  } else if (ctrl && event.key.toLowerCase() === "q") {
    event.preventDefault();
    act("quit");
  }
});

// --- Setting a provider up -------------------------------------------------------------------------------------

const LOOPBACK_ONLY = new Set(["google", "microsoft", "github"]);
const NAME_HINT = "How the window and the tray name this provider. Leave empty for ";
// What each choice asks for, and where to find it in the provider's console. `required` fields are marked so.
const PRESETS = {
  "": { fields: {}, required: [] },
  google: {
    fields: { clientId: "Google Cloud console → APIs & Services → Credentials → Create credentials → OAuth client ID, type “Desktop app”.",
      clientSecret: "Shown beside the client ID. Google requires it for desktop apps, though in a desktop app it is not secret.",
      name: NAME_HINT + "“Google”." },
    required: ["clientId", "clientSecret"],
  },
  microsoft: {
    fields: { tenant: "Microsoft Entra admin center → App registrations → your app → Overview: “Directory (tenant) ID”. Leave empty to let any Microsoft account sign in.",
      clientId: "Same page: “Application (client) ID”. Under Authentication, add the “Mobile and desktop applications” platform with the redirect URI above.",
      name: NAME_HINT + "“Microsoft”." },
    required: ["clientId"],
  },
  github: {
    fields: { clientId: "GitHub → Settings → Developer settings → OAuth Apps → your app: “Client ID”.",
      clientSecret: "Same page: “Generate a new client secret”. GitHub requires it, though in a desktop app it is not secret.",
      name: NAME_HINT + "“GitHub”." },
    required: ["clientId", "clientSecret"],
  },
  gitlab: {
    fields: { domain: "Your GitLab's host name; leave empty for gitlab.com.",
      clientId: "User settings → Applications → your application (with “Confidential” unticked): “Application ID”.",
      name: NAME_HINT + "“GitLab”." },
    required: ["clientId"],
  },
  keycloak: {
    fields: { domain: "Your Keycloak's host name, such as id.example.com.",
      realm: "The realm's name, as the admin console's realm menu shows it.",
      clientId: "Admin console → your realm → Clients → your client (with “Client authentication” off): “Client ID”.",
      name: NAME_HINT + "“Keycloak”." },
    required: ["domain", "realm", "clientId"],
  },
  okta: {
    fields: { domain: "Your Okta domain, such as example.okta.com.",
      clientId: "Admin console → Applications → your native app → General: “Client ID”.",
      name: NAME_HINT + "“Okta”." },
    required: ["domain", "clientId"],
  },
  auth0: {
    fields: { domain: "Auth0 dashboard → Applications → your Native application → Settings: “Domain”.",
      clientId: "Same page: “Client ID”.",
      name: NAME_HINT + "“Auth0”." },
    required: ["domain", "clientId"],
  },
  other: {
    fields: { issuer: "The provider's address, as its documentation names it, such as https://id.example.com.",
      clientId: "From the provider's console, for a native or desktop app. Leave empty to let Gatehouse register itself, where the provider allows that.",
      clientSecret: "Only if the provider insists on one for desktop apps; leave empty otherwise.",
      name: NAME_HINT + "the provider's host and port.",
      redirect: "",
      scopes: "Leave empty for those the provider offers of: openid profile email offline_access.",
      resource: "What the window shows once you're signed in. Leave empty for your profile at the provider (its userinfo)." },
    required: ["issuer"],
  },
};
const FIELD_INPUTS = {
  preset: "setup-preset", issuer: "setup-issuer", tenant: "setup-tenant", domain: "setup-domain",
  realm: "setup-realm", clientId: "setup-client-id", clientSecret: "setup-client-secret", name: "setup-name",
  redirect: "setup-redirect-kind", scopes: "setup-scopes", resource: "setup-resource",
};
// The fields a kept or edited form fills in (the choice is set first, and the secret never).
const FORM_FIELDS = ["issuer", "tenant", "domain", "realm", "clientId", "name", "redirect", "scopes", "resource"];

// The setup view is open when nothing is set up, or when the person asked for it (`editing`: the profile being
// edited, or null for a new provider). `opener` is the control that opened it, which gets the focus back.
let setup = { open: false, editing: null, hasSecret: false, opener: null };
// The choice whose fields are shown.
let shownPreset = null;

function renderSetupView(view) {
  const nothingSetUp = view.accounts.length === 0 && Boolean(view.setup);
  const shown = Boolean(view.setup) && (setup.open || nothingSetUp);
  const wasHidden = $("setup").hidden;
  $("setup").hidden = !shown;
  $("accounts").hidden = shown;
  if (shown) $("add-account").hidden = $("removed").hidden = true;
  if (!shown) return;
  $("setup-file").textContent = view.setup.configFile;
  $("setup-cancel").hidden = nothingSetUp && !setup.editing;
  if (wasHidden) {
    if (!setup.open) resetSetup(null);
    $("setup-preset").focus();
  }
}

function resetSetup(editing) {
  const opener = setup.opener;
  setup = { open: true, editing: editing ? editing.profile : null, hasSecret: Boolean(editing && editing.hasSecret),
    opener };
  $("setup-title").textContent = editing ? `Edit ${editing.profile}` : "Set up your provider";
  $("setup-lead").hidden = Boolean(editing);
  $("setup-preset").value = editing ? editing.preset : "";
  $("setup-preset").disabled = Boolean(editing);
  // A redirect written by hand is kept as it is, and offered as such.
  $("setup-redirect-kind").querySelector("option[data-saved]")?.remove();
  if (editing && !["app", "loopback"].includes(editing.redirect)) {
    const saved = document.createElement("option");
    saved.value = "";
    saved.dataset.saved = "";
    saved.textContent = `As saved: ${editing.redirect}`;
    $("setup-redirect-kind").append(saved);
  }
  for (const [field, id] of Object.entries(FIELD_INPUTS)) {
    if (field === "preset") continue;
    $(id).value = editing && field !== "clientSecret" ? editing[field] || "" : "";
  }
  if (!editing) $("setup-redirect-kind").value = "app";
  else if (!["app", "loopback"].includes(editing.redirect)) $("setup-redirect-kind").value = "";
  $("setup-advanced").open = false;
  clearFindings();
  applyPreset();
}

function applyPreset() {
  const preset = $("setup-preset").value;
  shownPreset = preset;
  const info = PRESETS[preset] || PRESETS[""];
  for (const element of document.querySelectorAll("#setup [data-field]")) {
    const field = element.dataset.field;
    if (field === "preset") continue;
    const shown = field === "redirectInfo" || field === "advanced" ? preset !== "" && (field !== "advanced" || preset === "other")
      : field in info.fields;
    element.hidden = !shown;
    if (!shown || !FIELD_INPUTS[field] || field === "redirect") continue;
    const input = $(FIELD_INPUTS[field]);
    const required = info.required.includes(field);
    input.required = required;
    input.setAttribute("aria-required", String(required));
    let hint = info.fields[field];
    if (field === "clientSecret" && setup.hasSecret) hint += " Leave empty to keep the saved one.";
    if (setup.editing && (field === "scopes" || field === "resource")) hint += " This shows what is saved now.";
    $(`${FIELD_INPUTS[field]}-hint`).textContent = hint;
    element.querySelector("label").textContent = labelFor(field) + (required ? " (required)" : " (optional)");
  }
  $("setup-preset-hint").textContent = preset === ""
    ? "Any provider that publishes its OpenID Connect or OAuth 2.0 metadata works by its address; the known ones need less typing."
    : "";
  showRedirect();
}

// The redirect URI the choice registers, in the order the provider's console asks for things: this first, then
// the client ID it gives.
function showRedirect() {
  const preset = $("setup-preset").value;
  const kind = $("setup-redirect-kind").value;
  const loopback = LOOPBACK_ONLY.has(preset) || (preset === "other" && kind === "loopback");
  const saved = preset === "other" && kind === "" ? $("setup-redirect-kind").selectedOptions[0]?.textContent : null;
  $("setup-redirect").textContent = saved ? saved.replace(/^As saved: /, "")
    : loopback ? "http://127.0.0.1/callback" : "com.example.gatehouse:/callback";
  $("setup-redirect-hint").textContent = loopback
    ? "Gatehouse listens on this computer's address, on a new port for each sign-in, which providers allow for desktop apps."
    : "Gatehouse receives the sign-in through this link, which the system hands to it.";
}

function labelFor(field) {
  return { issuer: "Issuer URL", tenant: "Tenant", domain: "Domain", realm: "Realm", clientId: "Client ID",
    clientSecret: "Client secret", name: "Name", scopes: "Scopes", resource: "Resource URL" }[field];
}

// What the person chose: only the fields the choice shows (one typed for another choice, then hidden, is not sent).
function draft() {
  const preset = $("setup-preset").value;
  const shown = (PRESETS[preset] || PRESETS[""]).fields;
  const value = (field) => (field in shown ? $(FIELD_INPUTS[field]).value : "");
  return {
    preset,
    issuer: value("issuer").trim(),
    clientId: value("clientId").trim(),
    clientSecret: value("clientSecret"),
    tenant: value("tenant").trim(),
    domain: value("domain").trim(),
    realm: value("realm").trim(),
    name: value("name").trim(),
    redirect: value("redirect"),
    scopes: value("scopes").trim(),
    resource: value("resource").trim(),
  };
}

// Takes every finding off the form (and what the progress line said): they were for the values as they were.
function clearFindings() {
  $("setup-progress").textContent = "";
  clearMarks();
}

// Takes the findings and the field marks off the form.
function clearMarks() {
  $("setup-findings").hidden = true;
  $("setup-error").hidden = true;
  for (const element of document.querySelectorAll("#setup .field-error")) {
    element.hidden = true;
    element.replaceChildren();
  }
  for (const element of document.querySelectorAll("#setup [aria-invalid]")) element.removeAttribute("aria-invalid");
}

const LEVEL_WORDS = { ok: "Works:", note: "Note:", problem: "Won't work:" };

// One finding's words, with the standard behind it (shown on request) and its one-click fix.
function findingContent(item, input) {
  const parts = [item.text];
  if (item.detail) {
    const detail = document.createElement("span");
    detail.className = "detail";
    detail.textContent = ` (${item.detail})`;
    parts.push(detail);
  }
  if (item.fix && input) {
    const fix = document.createElement("button");
    fix.type = "button";
    fix.className = "fix";
    fix.dataset.testid = `${input.id}-fix`;
    fix.textContent = `Use ${item.fix}`;
    fix.addEventListener("click", () => {
      input.value = item.fix;
      input.focus();
      keepForm();
      checkProvider();
    });
    parts.push(" ", fix);
  }
  return parts;
}

// Shows what Check (or Save) found: each problem beside its field, marked invalid and described by it, the
// first one focused; problems about no field first in the box; what works after, out of the way.
function showFindings(findings) {
  clearMarks();
  const box = $("setup-findings");
  const problems = findings.items.filter((item) => item.level === "problem");
  const placed = [];
  const loose = [];
  for (const item of problems) {
    const input = item.field && FIELD_INPUTS[item.field] ? $(FIELD_INPUTS[item.field]) : null;
    const field = input?.closest("[data-field]");
    const error = input && $(`${input.id}-error`);
    // Beside its field, one per field (the first found there); any other in the list above the findings.
    if (input && field && !field.hidden && !input.disabled && error.hidden) {
      if (input.closest("details")) input.closest("details").open = true;
      input.setAttribute("aria-invalid", "true");
      error.hidden = false;
      error.replaceChildren(...findingContent(item, input));
      placed.push(input);
    } else {
      loose.push(item);
    }
  }
  box.hidden = false;
  box.dataset.usable = String(findings.usable);
  box.querySelector(".findings-summary").textContent = findings.usable
    ? `${findings.provider || "The provider"} can be used. Press Save to add it.`
    : placed.length > 0 && loose.length === 0
      ? "Fix what is marked in the form, then press Check or Save again."
      : "This won't work yet:";
  const item = (finding) => {
    const li = document.createElement("li");
    li.className = `finding ${finding.level}`;
    li.dataset.level = finding.level;
    const word = document.createElement("strong");
    word.textContent = LEVEL_WORDS[finding.level] || "";
    li.append(word, " ", ...findingContent(finding, null));
    return li;
  };
  box.querySelector(".problems").replaceChildren(...loose.map(item));
  box.querySelector(".others").replaceChildren(...findings.items.filter((f) => f.level !== "problem").map(item));
  $("setup-details").hidden = !findings.items.some((f) => f.detail);
  if (findings.redirectUri) $("setup-redirect").textContent = findings.redirectUri;
  if (placed.length > 0) {
    placed[0].focus();
    placed[0].scrollIntoView({ block: "center" });
  } else {
    box.scrollIntoView({ block: "nearest" });
  }
}

$("setup-details").addEventListener("click", () => {
  const shown = !$("setup-findings").classList.contains("details-shown");
  $("setup-findings").classList.toggle("details-shown", shown);
  $("setup-details").setAttribute("aria-expanded", String(shown));
  $("setup-details").textContent = shown ? "Hide technical details" : "Show technical details";
});

// The control that had the focus when the setup went busy: disabling a button takes the focus from it, and the
// person is given it back.
let focusBeforeBusy = null;

function setupBusy(busy, text) {
  if (busy) focusBeforeBusy = document.activeElement;
  for (const id of ["setup-check", "setup-save", "setup-preset"]) {
    $(id).disabled = busy || (id === "setup-preset" && Boolean(setup.editing));
  }
  $("setup-progress").textContent = text;
  if (!busy && focusBeforeBusy && (document.activeElement === document.body || !document.activeElement)) {
    if (!$("setup").hidden && $("setup").contains(focusBeforeBusy)) focusBeforeBusy.focus();
    focusBeforeBusy = null;
  }
}

// Counts changes to the form: an answer about values that have changed since is not shown.
let formRevision = 0;

async function checkProvider() {
  clearFindings();
  setupBusy(true, "Checking the provider…");
  const asked = formRevision;
  try {
    const findings = await invoke("check_provider", { draft: draft(), editing: setup.editing });
    if (asked !== formRevision) {
      setupBusy(false, "The form changed while Check ran: press Check again.");
      return;
    }
    setupBusy(false, findings.usable ? "Check finished." : "Check found problems.");
    showFindings(findings);
  } catch (e) {
    setupBusy(false, "");
    showSetupError(e);
  }
}

async function saveProvider(event) {
  event.preventDefault();
  clearFindings();
  setupBusy(true, setup.editing ? "Checking and saving…" : "Checking the provider and saving it…");
  const asked = formRevision;
  try {
    const outcome = await invoke("save_provider", { draft: draft(), editing: setup.editing });
    if (outcome.outcome === "problems") {
      setupBusy(false, asked === formRevision ? "Nothing was saved." : "Nothing was saved: the form changed meanwhile.");
      if (asked === formRevision) showFindings(outcome.findings);
      return;
    }
    setupBusy(false, "");
    // The view with the saved provider in it, before the form closes: a view from before it would show the
    // setup again, as if nothing were set up.
    render(await invoke("get_state"));
    const editing = setup.editing;
    // The saved provider's card takes the focus once it has settled (it restores its session first).
    pendingFocus = { profile: outcome.profile, testId: editing ? "edit-provider" : "sign-in" };
    closeSetup(false);
    windowNotice(editing ? `Saved the changes to ${outcome.profile}.` : null);
  } catch (e) {
    setupBusy(false, "");
    showSetupError(e);
  }
}

function showSetupError(e) {
  $("setup-error").hidden = false;
  $("setup-error").scrollIntoView({ block: "nearest" });
  $("setup-error").dataset.kind = e.kind || "internal";
  $("setup-error").querySelector(".notice-message").textContent = e.message || String(e);
}

// Opens the setup view for `profile` (null: a new provider); `opener` gets the focus back when it closes.
// `byPerson`: opened by the person now (not brought back from a closed window).
async function openSetup(profile, opener = document.activeElement, byPerson = true) {
  let editing = null;
  if (profile) {
    try {
      editing = await invoke("provider_details", { profile });
    } catch (e) {
      showError(e);
      return;
    }
  }
  setup.opener = opener;
  // What earlier actions said (a declined sign-in, a cancel) is over: a new task starts with a clean window.
  if (byPerson) forgetOldNotices();
  resetSetup(editing);
  render({ ...windowView, revision: windowView.revision });
  $("setup-preset").disabled ? $("setup-client-id").focus() : $("setup-preset").focus();
}

// The notices that only report how an earlier action ended; the others (a keychain problem, a session still
// valid at the provider) stay until they are read and dismissed.
const FINISHED_ACTIONS = new Set(["access_denied", "sign_in_cancelled", "signed_out", "sign_in_timed_out",
  "callback_rejected"]);

// Dismisses the notices of earlier actions that are over, when the person starts something new.
function forgetOldNotices() {
  for (const card of cards.values()) {
    if (FINISHED_ACTIONS.has(card.view?.notice?.kind)) {
      invoke("dismiss_notice", { profile: card.view.profile }).catch(() => {});
    }
  }
  windowNotice(null);
}

// Closes the setup view; `restoreFocus`: the control that opened it gets the focus back (Cancel, Esc).
function closeSetup(restoreFocus) {
  const opener = setup.opener;
  setup = { open: false, editing: null, hasSecret: false, opener: null };
  keepForm();
  $("setup-preset").disabled = false;
  $("setup").hidden = true;
  render({ ...windowView, revision: windowView.revision });
  if (restoreFocus && opener && opener.isConnected && opener.offsetParent !== null) opener.focus();
}

// `input` as well as `change`: a choice made by keyboard, or by a script, is taken at once.
for (const type of ["input", "change"]) {
  $("setup-preset").addEventListener(type, () => {
    if ($("setup-preset").value === shownPreset) return;
    clearFindings();
    applyPreset();
  });
}
$("setup-redirect-kind").addEventListener("change", showRedirect);
// The unsaved form goes to the app as it is typed (never the client secret), so that a window closed and shown
// again from the tray shows it as it was left. The app keeps it in memory only.
function keepForm() {
  const { clientSecret, ...form } = draft();
  invoke("keep_setup_form", { form: setup.open ? { ...form, editing: setup.editing } : null }).catch(() => {});
}

async function restoreForm() {
  const form = await invoke("kept_setup_form").catch(() => null);
  if (!form) return;
  await openSetup(form.editing, null, false);
  if (!setup.open) return;
  if (!form.editing) {
    $("setup-preset").value = form.preset;
    applyPreset();
  }
  for (const field of FORM_FIELDS) {
    if (typeof form[field] === "string" && (field !== "redirect" || form[field])) $(FIELD_INPUTS[field]).value = form[field];
  }
  showRedirect();
}

for (const type of ["input", "change"]) $("setup-form").addEventListener(type, keepForm);
// What Check found was for the values as they were: a change takes it away.
$("setup-form").addEventListener("input", (event) => {
  formRevision += 1;
  if (event.target.id !== "setup-preset") clearFindings();
});
$("setup-form").addEventListener("change", () => {
  formRevision += 1;
});
$("setup-check").addEventListener("click", checkProvider);
$("setup-form").addEventListener("submit", saveProvider);
$("setup-cancel").addEventListener("click", () => closeSetup(true));
$("setup").addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("setup-cancel").hidden) {
    event.preventDefault();
    event.stopPropagation();
    closeSetup(true);
  }
});
$("add-provider").addEventListener("click", () => openSetup(null, $("add-provider")));
$("setup-copy").addEventListener("click", async () => {
  const text = $("setup-redirect").textContent;
  const copied = await copyOrSelect(text, () => window.getSelection().selectAllChildren($("setup-redirect")));
  $("setup-progress").textContent = copied
    ? "Copied the redirect URI."
    : "Press Ctrl+C to copy the selected redirect URI.";
});
applyPreset();

// The backend sends every change over this channel, and answers with the current view. The window listens to no
// event: it is not allowed to, so no script here can hear a deep link's raw URL.
const views = new Channel();
views.onmessage = render;
invoke("watch_state", { channel: views }).then((view) => {
  render(view);
  restoreForm();
});

// A program asking the token agent for an account's tokens: while the window is open, the question is asked here
// rather than in a notification. The answer goes to the program waiting for it, and is remembered.
let question = null;
// Where the keyboard was before a question took it, to give it back.
let focusBefore = null;
const QUESTION_BUTTONS = () => $("question").querySelectorAll(".actions button");
function renderQuestion(next) {
  const box = $("question");
  const was = question;
  // The same question again (the channel and the first answer may both bring it): nothing changes.
  if (was && next && was.id === next.id) return;
  question = next;
  box.hidden = !next;
  box.querySelector(".question-error").hidden = true;
  if (!next) {
    if (was && $("window-status").textContent.startsWith("A program asks")) windowNotice("");
    if (was && box.contains(document.activeElement) && focusBefore && document.body.contains(focusBefore)) {
      focusBefore.focus();
    }
    return;
  }
  // The whole path, in the title too: a program named like a trusted one elsewhere (/tmp/x/git) must not pass
  // for it.
  $("question-title").textContent = `Allow ${next.program} to use your ${next.profile} account?`;
  box.querySelector(".question-text").textContent =
    `${next.program} asks Gatehouse for a token of ${next.profile}${next.detail}.`;
  windowNotice(`A program asks for your ${next.profile} account's tokens.`);
  // A click meant for what was there before (the panel moves the page down) must not answer it: the buttons
  // wait a moment.
  for (const button of QUESTION_BUTTONS()) button.disabled = true;
  setTimeout(() => {
    if (question && question.id === next.id) for (const button of QUESTION_BUTTONS()) button.disabled = false;
  }, 1000);
  // A new question takes the keyboard, unless the person is typing somewhere.
  const typing = document.activeElement && ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
  if (!was && !typing) {
    focusBefore = document.activeElement;
    $("question-title").focus();
  }
}
async function answerQuestion(decision) {
  if (!question) return;
  const { id, program, profile } = question;
  try {
    const view = await invoke("decide_program", { profile, program, decision, question: id });
    renderQuestion(null);
    const card = cards.get(profile);
    if (card && card.find("programs").open) renderPrograms(card, profile, view);
  } catch (e) {
    const error = $("question").querySelector(".question-error");
    error.textContent = e.message || String(e);
    error.hidden = false;
  }
}
$("question").querySelector("[data-testid=question-allow]").addEventListener("click", () => answerQuestion("allow"));
$("question").querySelector("[data-testid=question-deny]").addEventListener("click", () => answerQuestion("deny"));
const questions = new Channel();
questions.onmessage = renderQuestion;
// Where no agent runs (another platform), there are no questions to watch.
invoke("watch_questions", { channel: questions }).then(renderQuestion).catch(() => {});

// The settings too can change from elsewhere (the tray), so they come over a channel of their own.
const settingsChanges = new Channel();
settingsChanges.onmessage = renderSettings;
invoke("watch_settings", { channel: settingsChanges }).then(renderSettings);
