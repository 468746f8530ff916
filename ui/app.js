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

let view = null;

function render(next) {
  // A get_state answer can arrive after a newer change event: never step back to an older view.
  if (view && next.revision < view.revision) return;
  const phaseChanged = !view || view.phase !== next.phase;
  view = next;
  $("provider").textContent = next.provider ? `Provider: ${next.provider}` : "";
  $("status").textContent = STATUS_TEXT[next.phase] || next.phase;
  document.body.dataset.phase = next.phase;

  const notice = next.notice;
  $("notice").hidden = !notice;
  if (notice) {
    $("notice-message").textContent = notice.message;
    $("notice").className = notice.severity === "info" ? "info" : "error";
    $("notice").dataset.kind = notice.kind;
    // A broken config stays on screen until it is fixed.
    $("dismiss").hidden = next.phase === "configError";
  }

  $("waiting").hidden = next.phase !== "waitingForBrowser";
  $("waiting-expiry").textContent = next.signInExpiresAt
    ? `This sign-in stays open until ${formatTime(next.signInExpiresAt)}.`
    : "";
  const waiting = next.phase === "waitingForBrowser";
  $("sign-in").textContent = waiting ? "Open the browser again" : "Sign in";
  $("sign-in").classList.toggle("primary", !waiting);
  $("cancel").classList.toggle("primary", waiting);

  const signedIn = next.account && (next.phase === "signedIn" || next.phase === "refreshing");
  $("session").hidden = !signedIn;
  if (signedIn) {
    $("account").textContent = next.account.name || next.account.subject || "(unnamed account)";
    $("expires").textContent = next.expiresAt ? describeExpiry(next.expiresAt) : "not stated by the provider";
    $("scopes").replaceChildren(...next.scopes.map((s) => chip(s)));
    $("renewal").textContent = next.renewable
      ? "automatic, with a refresh token"
      : "not possible: the provider gave no refresh token, so you sign in again when access expires";
    $("resource").replaceChildren(next.resource === null || next.resource === undefined
      ? note("Not loaded. Press Refresh to try again.")
      : renderValue(next.resource));
  }

  // Without a refresh token, Refresh can only reload the data: the button says which it will do.
  $("refresh").textContent = next.renewable === false ? "Reload" : "Refresh";
  $("refresh").title = next.renewable === false
    ? "Reload your data with the current access (it can't be renewed)"
    : "Renew your access and reload your data";
  const shown = BUTTONS[next.phase] || [];
  for (const id of ["sign-in", "cancel", "refresh", "sign-out"]) {
    $(id).hidden = !shown.includes(id);
    $(id).disabled = BUSY.has(next.phase);
  }
  if (phaseChanged && shown.length > 0 && !$("notice").contains(document.activeElement)) {
    $(shown[0]).focus();
  }
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
  if (!view) return;
  render({ ...view, notice: { kind: e.kind || "internal", message: e.message || String(e), severity: "error" } });
}

async function act(command) {
  try {
    await invoke(command);
  } catch (e) {
    // The backend has already put the error in the view; this covers a failure to reach it at all.
    if (!view || !view.notice) showError(e);
  }
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

$("sign-in").addEventListener("click", () => act("sign_in"));
$("cancel").addEventListener("click", () => act("cancel_sign_in"));
$("refresh").addEventListener("click", () => act("refresh"));
$("sign-out").addEventListener("click", () => act("sign_out"));
$("dismiss").addEventListener("click", () => act("dismiss_notice"));

document.addEventListener("keydown", (event) => {
  const ctrl = event.ctrlKey || event.metaKey;
  if (event.key === "Escape" && view && view.phase === "waitingForBrowser") {
    event.preventDefault();
    act("cancel_sign_in");
  } else if (ctrl && event.key.toLowerCase() === "r") {
    event.preventDefault(); // never reload the page: it would only flash the window
    if (view && view.phase === "signedIn") act("refresh");
  } else if (ctrl && event.key.toLowerCase() === "q") {
    event.preventDefault();
    act("quit");
  }
});

// The backend sends every change over this channel, and answers with the current view. The window listens to no
// event: it is not allowed to, so no script here can hear a deep link's raw URL.
const views = new Channel();
views.onmessage = render;
invoke("watch_state", { channel: views }).then(render);

// The settings too can change from elsewhere (the tray), so they come over a channel of their own.
const settingsChanges = new Channel();
settingsChanges.onmessage = renderSettings;
invoke("watch_settings", { channel: settingsChanges }).then(renderSettings);
