// Signing in to a server that has a token. The token is asked for in the page (a sign-in panel
// shown when the server answers 401), checked against the server before it is kept, kept in
// localStorage, and forgotten with the header's Sign out button. A token in the page's URL is
// never read, and is taken out of the address bar: URLs end up in server logs and the
// browser's history.

import { clear, codeText, h } from "./util";

const TOKEN_KEY = "hyperdial.token";

/** The request that checks a token: one authenticated GET, the smallest page of runs. */
const PROBE = "/api/v1/runs?limit=1";

/** What the page does around sign-in: `stop` ends the shown page (its live updates and
 *  timers), `resume` shows the page of the current URL again. */
export interface AuthHooks {
  stop: () => void;
  resume: () => void;
}

let hooks: AuthHooks = { stop: () => {}, resume: () => {} };
let panelShown = false;

/** The kept token, or null (none kept, or no localStorage). */
export function token(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY) || null;
  } catch {
    return null;
  }
}

function keep(t: string | null): void {
  try {
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* no storage: the token lasts until the page is left */
  }
  showSignOut();
}

/** Whether the sign-in panel is up (the page's content is not shown meanwhile). */
export function signingIn(): boolean {
  return panelShown;
}

/** Set up sign-in: the hooks, the Sign out button, and a URL cleared of any token. */
export function initAuth(given: AuthHooks): void {
  hooks = given;
  dropUrlToken();
  document.getElementById("signout")?.addEventListener("click", signOut);
  // Another tab signed in (with a token the server accepted) or out.
  window.addEventListener("storage", (e) => {
    if (e.key !== TOKEN_KEY && e.key !== null) return;
    if (panelShown && token()) closePanel();
    else if (!panelShown && !token() && e.oldValue) signedOut("Signed out in another tab.");
    else showSignOut();
  });
  showSignOut();
}

/** A request sent with `sent` (the token then kept, or null) was answered 401: ask for the
 *  token. A request sent before the token changed says nothing about the new one. */
export function refused(sent: string | null): void {
  if (sent !== token()) return;
  if (sent) {
    keep(null);
    showPanel("The saved token was refused by the server (was it changed?). Sign in again.");
  } else {
    showPanel("");
  }
}

function dropUrlToken(): void {
  const url = new URL(location.href);
  if (!url.searchParams.has("token")) return;
  url.searchParams.delete("token");
  history.replaceState(history.state, "", url.pathname + url.search + url.hash);
}

function showSignOut(): void {
  const btn = document.getElementById("signout");
  if (btn) btn.hidden = !token() || panelShown;
}

function signOut(): void {
  keep(null);
  signedOut("Signed out.");
}

/** The kept token is gone: end the page, then offer the panel with `note`. */
async function signedOut(note: string): Promise<void> {
  showSignOut();
  hooks.stop();
  clear(document.getElementById("app")!);
  // A server without a token needs no sign-in: show its page again, without the token.
  let needed = true;
  try {
    needed = (await fetch(PROBE)).status === 401;
  } catch {
    /* unreachable: offer the panel */
  }
  if (needed) showPanel(note);
  else hooks.resume();
}

function showPanel(note: string): void {
  if (panelShown) return;
  panelShown = true;
  hooks.stop();
  const app = document.getElementById("app")!;
  clear(app);
  app.hidden = true;
  showSignOut();
  document.title = "Sign in · hyperdial";

  const input = h("input#signin-token", {
    type: "password",
    name: "token",
    autocomplete: "current-password",
    spellcheck: "false",
    "aria-describedby": "signin-why",
  });
  const button = h("button", { class: "btn primary", id: "signin-submit", type: "submit" }, "Sign in");
  const message = h("p.action-error#signin-error", { role: "alert" });
  const status = h("p.muted.small#signin-note", { "aria-live": "polite" }, note);
  const form = h(
    "form.signin-form",
    { onsubmit: (e: Event) => (e.preventDefault(), submit()) },
    h("label", { for: "signin-token" }, "Token"),
    h("div.signin-row", null, input, button),
  );
  const panel = document.getElementById("signin")!;
  clear(
    panel,
    h(
      "div.card.signin-card",
      null,
      h("h1", null, "Sign in"),
      h("p#signin-why", null, codeText("This server needs its token (`HYPERDIAL_TOKEN` or `--token` of `hyperdial server`)")),
      form,
      message,
      status,
    ),
  );
  panel.hidden = false;
  input.focus();

  async function submit(): Promise<void> {
    const candidate = input.value.trim();
    message.textContent = "";
    if (!candidate) {
      message.textContent = "Enter the token first";
      input.focus();
      return;
    }
    button.disabled = true;
    status.textContent = "Checking the token…";
    let r: Response | null = null;
    let failure = "";
    try {
      r = await fetch(PROBE, { headers: { Authorization: `Bearer ${candidate}` } });
    } catch (e) {
      // fetch refuses header values outside Latin-1 before sending anything.
      failure =
        e instanceof TypeError && /[^\x20-\x7e]/.test(candidate)
          ? "That token has characters an HTTP header cannot carry: check it was copied whole"
          : `Could not reach the server to check the token: ${(e as Error).message}`;
    }
    button.disabled = false;
    status.textContent = "";
    if (r && r.status === 401) failure = "That token was refused by the server";
    else if (r && !r.ok) failure = `The server could not check the token: ${await errorOf(r)}`;
    if (failure) {
      message.textContent = failure;
      input.select();
      input.focus();
      return;
    }
    keep(candidate);
    closePanel();
  }
}

/** Take the panel down and show the page of the current URL. */
function closePanel(): void {
  panelShown = false;
  const panel = document.getElementById("signin")!;
  clear(panel);
  panel.hidden = true;
  document.getElementById("app")!.hidden = false;
  showSignOut();
  hooks.resume();
}

async function errorOf(r: Response): Promise<string> {
  try {
    const body = await r.json();
    if (body && body.error) return String(body.error);
  } catch {
    /* not JSON */
  }
  return `${r.status} ${r.statusText}`;
}
