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
  renderAdd(next.providers, next.setup);
  renderSetupView(next);
}

function renderAdd(providers, setup) {
  $("add-account").hidden = providers.length === 0 && !setup;
  $("add").hidden = providers.length === 0;
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
    card.find(testId).addEventListener("click", () => act(command, profile));
  }
  card.find("dismiss").addEventListener("click", () => act("dismiss_notice", profile));
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
    if (!link) {
      input.focus();
      return;
    }
    countAction();
    try {
      await invoke("paste_redirect", { profile, link });
      input.value = "";
    } catch (e) {
      // The card shows why; the pasted address stays, to be corrected.
      if (!card.view || !card.view.notice) showError(e);
    }
  });
  card.find("edit-provider").addEventListener("click", () => openSetup(profile));
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
    try {
      await invoke("remove_provider", { profile });
    } catch (e) {
      // The sign-out may have put its own notice on the card; why the removal failed goes in the window's.
      showError(e);
    }
  });
  return card;
}

function renderAccount(card, next, several, added) {
  const phaseChanged = !card.view || card.view.phase !== next.phase;
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
  find("sign-in").textContent = device ? "Use the browser instead" : waiting ? "Open the browser again" : "Sign in";
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
  return document.createTextNode(String(value));
}

function humanise(key) {
  const words = key.replace(/[_-]+/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function formatTime(unixSeconds) {
  return new Date(unixSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function describeExpiry(unixSeconds) {
  const minutes = Math.round((unixSeconds * 1000 - Date.now()) / 60000);
  if (minutes <= 0) return `expired at ${formatTime(unixSeconds)}; it is refreshed when needed`;
  return `at ${formatTime(unixSeconds)} (in ${minutes} min)`;
}

// Shows an error the backend could not put in the view itself.
function showError(e) {
  showNotice($("window-notice"), { kind: e.kind || "internal", message: e.message || String(e), severity: "error" });
}

// Counts the clicks that reached a handler, for the end-to-end tests: a click that WebKit loses on its way (it
// lands while the page moves under it) is told from one the app ignored.
function countAction() {
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

async function act(command, profile) {
  countAction();
  try {
    await invoke(command, { profile });
  } catch (e) {
    // The backend has already put the error in the account's view; this covers a failure to reach it at all.
    const card = cards.get(profile);
    if (!card || !card.view || !card.view.notice) showError(e);
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
    for (const profile of accountsFor("signedIn")) act("refresh", profile);
  } else if (ctrl && event.key.toLowerCase() === "q") {
    event.preventDefault();
    act("quit");
  }
});

// --- Setting a provider up -------------------------------------------------------------------------------------

const LOOPBACK_ONLY = new Set(["google", "microsoft", "github"]);
// What each choice asks for, and where to find it in the provider's console. `required` fields are marked so.
const PRESETS = {
  google: {
    fields: { clientId: "Google Cloud console → APIs & Services → Credentials → Create credentials → OAuth client ID, type “Desktop app”.",
      clientSecret: "Shown beside the client ID. Google requires it for desktop apps, though in a desktop app it is not secret." },
    required: ["clientId", "clientSecret"],
  },
  microsoft: {
    fields: { tenant: "Microsoft Entra admin center → App registrations → your app → Overview: “Directory (tenant) ID”. Leave empty to let any Microsoft account sign in.",
      clientId: "Same page: “Application (client) ID”. Under Authentication, add the “Mobile and desktop applications” platform with the redirect URI below." },
    required: ["clientId"],
  },
  github: {
    fields: { clientId: "GitHub → Settings → Developer settings → OAuth Apps → your app: “Client ID”.",
      clientSecret: "Same page: “Generate a new client secret”. GitHub requires it, though in a desktop app it is not secret." },
    required: ["clientId", "clientSecret"],
  },
  gitlab: {
    fields: { domain: "Your GitLab's host name; leave empty for gitlab.com.",
      clientId: "User settings → Applications → your application (with “Confidential” unticked): “Application ID”." },
    required: ["clientId"],
  },
  keycloak: {
    fields: { domain: "Your Keycloak's host name, such as id.example.com.",
      realm: "The realm's name, as the admin console's realm menu shows it.",
      clientId: "Admin console → your realm → Clients → your client (with “Client authentication” off): “Client ID”." },
    required: ["domain", "realm", "clientId"],
  },
  okta: {
    fields: { domain: "Your Okta domain, such as example.okta.com.",
      clientId: "Admin console → Applications → your native app → General: “Client ID”." },
    required: ["domain", "clientId"],
  },
  auth0: {
    fields: { domain: "Auth0 dashboard → Applications → your Native application → Settings: “Domain”.",
      clientId: "Same page: “Client ID”." },
    required: ["domain", "clientId"],
  },
  other: {
    fields: { issuer: "The provider's issuer URL, as its documentation names it (its metadata is at that URL plus /.well-known/openid-configuration).",
      clientId: "From the provider's console, for a native or desktop app. Leave empty to let Gatehouse register itself, where the provider allows that.",
      clientSecret: "Only if the provider insists on one for desktop apps; leave empty otherwise." },
    required: ["issuer"],
  },
};
const FIELD_INPUTS = {
  issuer: "setup-issuer", tenant: "setup-tenant", domain: "setup-domain", realm: "setup-realm",
  clientId: "setup-client-id", clientSecret: "setup-client-secret",
};

// The setup view is open when nothing is set up, or when the person asked for it (`editing`: the profile being
// edited, or null for a new provider).
let setup = { open: false, editing: null, hasSecret: false };
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
  setup = { open: true, editing: editing ? editing.profile : null, hasSecret: Boolean(editing && editing.hasSecret) };
  $("setup-title").textContent = editing ? `Edit ${editing.profile}` : "Set up your provider";
  $("setup-preset").value = editing ? editing.preset : (setup.preset || "google");
  $("setup-preset").disabled = Boolean(editing);
  for (const [field, id] of Object.entries(FIELD_INPUTS)) {
    $(id).value = editing && field !== "clientSecret" ? editing[field] || "" : "";
  }
  clearFindings();
  applyPreset();
}

function applyPreset() {
  const preset = $("setup-preset").value;
  shownPreset = preset;
  const info = PRESETS[preset];
  for (const element of document.querySelectorAll("#setup [data-field]")) {
    const field = element.dataset.field;
    const shown = field in info.fields;
    element.hidden = !shown;
    if (!shown) continue;
    const input = $(FIELD_INPUTS[field]);
    const required = info.required.includes(field);
    input.required = required;
    input.setAttribute("aria-required", String(required));
    let hint = info.fields[field];
    if (field === "clientSecret" && setup.hasSecret) hint += " Leave empty to keep the saved one.";
    $(`${FIELD_INPUTS[field]}-hint`).textContent = hint;
    element.querySelector("label").textContent = labelFor(field) + (required ? " (required)" : " (optional)");
  }
  const loopback = LOOPBACK_ONLY.has(preset);
  $("setup-redirect").textContent = loopback ? "http://127.0.0.1/callback" : "com.example.gatehouse:/callback";
  $("setup-redirect-hint").textContent = loopback
    ? "A loopback redirect (RFC 8252 §7.3): Gatehouse picks a free port for each sign-in, which providers allow for desktop apps."
    : "Gatehouse receives the sign-in through this address, which the system hands to it.";
}

function labelFor(field) {
  return { issuer: "Issuer URL", tenant: "Tenant", domain: "Domain", realm: "Realm", clientId: "Client ID",
    clientSecret: "Client secret" }[field];
}

// What the person chose: only the fields the choice shows (one typed for another choice, then hidden, is not sent).
function draft() {
  const preset = $("setup-preset").value;
  const shown = PRESETS[preset].fields;
  const value = (field) => (field in shown ? $(FIELD_INPUTS[field]).value : "");
  return {
    preset,
    issuer: value("issuer").trim(),
    clientId: value("clientId").trim(),
    clientSecret: value("clientSecret"),
    tenant: value("tenant").trim(),
    domain: value("domain").trim(),
    realm: value("realm").trim(),
  };
}

function clearFindings() {
  $("setup-findings").hidden = true;
  $("setup-error").hidden = true;
  $("setup-progress").textContent = "";
}

const LEVEL_WORDS = { ok: "Works:", note: "Note:", problem: "Won't work:" };

function showFindings(findings) {
  const box = $("setup-findings");
  box.hidden = false;
  box.dataset.usable = String(findings.usable);
  box.querySelector(".findings-summary").textContent = findings.usable
    ? `${findings.provider || "The provider"} can be used. Press Save to add it.`
    : "Something here won't work; each problem below says what to do.";
  box.querySelector("ul").replaceChildren(...findings.items.map((item) => {
    const li = document.createElement("li");
    li.className = `finding ${item.level}`;
    li.dataset.level = item.level;
    const word = document.createElement("strong");
    word.textContent = LEVEL_WORDS[item.level] || "";
    li.append(word, " ", item.text);
    return li;
  }));
  if (findings.redirectUri) $("setup-redirect").textContent = findings.redirectUri;
  box.scrollIntoView({ block: "nearest" });
}

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

async function checkProvider() {
  clearFindings();
  setupBusy(true, "Checking the provider…");
  try {
    const findings = await invoke("check_provider", { draft: draft(), editing: setup.editing });
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
  setupBusy(true, setup.editing ? "Saving…" : "Saving the provider…");
  try {
    const profile = await invoke("save_provider", { draft: draft(), editing: setup.editing });
    setupBusy(false, "");
    closeSetup();
    const card = cards.get(profile);
    if (card) card.find("sign-in").focus();
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

async function openSetup(profile) {
  let editing = null;
  if (profile) {
    try {
      editing = await invoke("provider_details", { profile });
    } catch (e) {
      showError(e);
      return;
    }
  }
  resetSetup(editing);
  render({ ...windowView, revision: windowView.revision });
  $("setup-preset").disabled ? $("setup-client-id").focus() : $("setup-preset").focus();
}

function closeSetup() {
  setup = { open: false, editing: null, hasSecret: false };
  keepForm();
  $("setup-preset").disabled = false;
  $("setup").hidden = true;
  render({ ...windowView, revision: windowView.revision });
}

// `input` as well as `change`: a choice made by keyboard, or by a script, is taken at once.
for (const type of ["input", "change"]) {
  $("setup-preset").addEventListener(type, () => {
    if ($("setup-preset").value === shownPreset) return;
    clearFindings();
    applyPreset();
  });
}
// The unsaved form goes to the app as it is typed (never the client secret), so that a window closed and shown
// again from the tray shows it as it was left. The app keeps it in memory only.
function keepForm() {
  const { clientSecret, ...form } = draft();
  invoke("keep_setup_form", { form: setup.open ? { ...form, editing: setup.editing } : null }).catch(() => {});
}

async function restoreForm() {
  const form = await invoke("kept_setup_form").catch(() => null);
  if (!form) return;
  await openSetup(form.editing);
  if (!setup.open) return;
  if (!form.editing) {
    $("setup-preset").value = form.preset;
    applyPreset();
  }
  for (const [field, id] of Object.entries(FIELD_INPUTS)) {
    if (field !== "clientSecret" && typeof form[field] === "string") $(id).value = form[field];
  }
}

for (const type of ["input", "change"]) $("setup-form").addEventListener(type, keepForm);
$("setup-check").addEventListener("click", checkProvider);
$("setup-form").addEventListener("submit", saveProvider);
$("setup-cancel").addEventListener("click", closeSetup);
$("add-provider").addEventListener("click", () => openSetup(null));
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

// The settings too can change from elsewhere (the tray), so they come over a channel of their own.
const settingsChanges = new Channel();
settingsChanges.onmessage = renderSettings;
invoke("watch_settings", { channel: settingsChanges }).then(renderSettings);
