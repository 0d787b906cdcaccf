// Signing in to a server that has a token, end to end, in headless Chromium driven by
// playwright-core. Started by run.sh with the binary (HYPERDIAL_BIN) and a scratch directory
// (E2E_WORK); starts its own `hyperdial server --token` there. Prints one line per check and
// `e2e-auth: N passed, N failed`.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { chromium } from "playwright-core";
import { assert, check, finish } from "./checks.mjs";

const bin = process.env.HYPERDIAL_BIN;
const work = process.env.E2E_WORK;
const out = process.env.E2E_OUT;
const TOKEN = "e2e-right-token-5d1f";
const WRONG = "e2e-wrong-token";

const port = await new Promise((resolve, reject) => {
  const s = createServer();
  s.on("error", reject);
  s.listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const base = `http://127.0.0.1:${port}`;
const env = { ...process.env };
delete env.HYPERDIAL_TOKEN;
const server = spawn(bin, ["server", "--db", `${work}/auth.sqlite`, "--bind", `127.0.0.1:${port}`, "--token", TOKEN], {
  cwd: work,
  env,
  stdio: "ignore",
});
const serverExit = new Promise((resolve) => server.on("exit", (code) => resolve(code)));

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${TOKEN}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

async function serverUp() {
  for (;;) {
    const exited = await Promise.race([serverExit.then(() => true), new Promise((r) => setTimeout(() => r(false), 100))]);
    if (exited) throw new Error(`hyperdial server --token exited; see ${work}`);
    try {
      if ((await fetch(`${base}/api/v1/runs?limit=1`)).status === 401) return;
    } catch {
      /* not listening yet */
    }
  }
}

const sweepSource = (name) =>
  [`name: ${name}`, "program: train.py", "method: random", "metric: {name: loss, goal: minimize}", "parameters:", "  lr: {min: 0.001, max: 0.1}", ""].join("\n");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
const page = await context.newPage();
const errors = [];
const dialogs = [];
page.on("pageerror", (e) => errors.push(String(e)));
// The browser logs every 401 answer as a failed resource load: those are the point here.
page.on("console", (m) => m.type() === "error" && !/status of 401/.test(m.text()) && errors.push(m.text()));
page.on("dialog", (d) => (dialogs.push(d.message()), d.dismiss()));

const stored = () => page.evaluate(() => localStorage.getItem("hyperdial.token"));
const panelUp = async () => {
  await page.waitForSelector("#signin-token", { state: "visible", timeout: 10_000 });
  assert(await page.locator("#app").isHidden(), "the page's content is hidden behind the panel");
  assert(await page.locator("#signout").isHidden(), "no Sign out while signed out");
};

try {
  await serverUp();
  const first = (await api("POST", "/api/v1/sweeps", { source: sweepSource("e2e-auth-first"), project: "e2e-auth" })).body;
  assert(first && first.id, "sweep created with the token");

  await check("a first visit shows the sign-in panel, not a browser prompt", async () => {
    await page.goto(base + "/");
    await panelUp();
    assert((await page.getAttribute("#signin-token", "type")) === "password", "a password-type input");
    const why = await page.locator("#signin-why").innerText();
    assert(why === "This server needs its token (HYPERDIAL_TOKEN or --token of hyperdial server)", why);
    assert((await page.locator("#signin-submit").innerText()) === "Sign in", "a Sign in button");
    assert(dialogs.length === 0, `browser dialogs: ${dialogs.join(" | ")}`);
    assert((await page.locator("#sweeps").count()) === 0, "no sweeps table");
    assert((await stored()) === null, "nothing kept");
    await page.screenshot({ path: `${out}/signin.png`, fullPage: true });
  });

  await check("a token in the URL is neither used nor kept", async () => {
    await page.goto(`${base}/?token=${TOKEN}`);
    await panelUp();
    assert(!page.url().includes(TOKEN), `the address bar still holds it: ${page.url()}`);
    assert((await stored()) === null, "not kept");
  });

  await check("a wrong token says it was refused and keeps the panel", async () => {
    await page.fill("#signin-token", WRONG);
    await page.click("#signin-submit");
    await page.waitForSelector("#signin-error:has-text('That token was refused by the server')", { timeout: 10_000 });
    await panelUp();
    assert((await stored()) === null, "a refused token is not kept");
    await page.screenshot({ path: `${out}/signin-refused.png`, fullPage: true });
  });

  await check("the right token shows the sweeps, and live updates use it", async () => {
    await page.fill("#signin-token", TOKEN);
    await page.press("#signin-token", "Enter");
    await page.waitForSelector(`#sweeps tr[data-sweep='${first.id}']`, { timeout: 10_000 });
    assert(await page.locator("#signin").isHidden(), "the panel is gone");
    assert((await stored()) === TOKEN, "the token is kept");
    assert(await page.locator("#signout").isVisible(), "Sign out is offered");
    await page.waitForSelector("#live.on", { timeout: 10_000 });
    const second = (await api("POST", "/api/v1/sweeps", { source: sweepSource("e2e-auth-live"), project: "e2e-auth" })).body;
    await page.waitForSelector(`#sweeps tr[data-sweep='${second.id}']`, { timeout: 10_000 });
    await page.screenshot({ path: `${out}/signed-in.png`, fullPage: true });
  });

  await check("a reload stays signed in", async () => {
    await page.reload();
    await page.waitForSelector(`#sweeps tr[data-sweep='${first.id}']`, { timeout: 10_000 });
    await page.waitForSelector("#live.on", { timeout: 10_000 });
    assert(await page.locator("#signin").isHidden(), "no panel");
    await page.click(`a[href='/sweeps/${first.id}']`);
    await page.waitForSelector("h1:has-text('e2e-auth-first')", { timeout: 10_000 });
  });

  await check("Sign out forgets the token and shows the panel again", async () => {
    await page.click("#signout");
    await panelUp();
    assert((await stored()) === null, "the token is forgotten");
    await page.reload();
    await panelUp();
  });

  await check("a link followed while signed out opens its page after sign-in", async () => {
    await page.click("nav a[href='/runs']");
    assert(new URL(page.url()).pathname === "/runs", page.url());
    await panelUp();
    await page.fill("#signin-token", TOKEN);
    await page.click("#signin-submit");
    await page.waitForSelector("h1:has-text('Runs')", { timeout: 10_000 });
    await page.waitForSelector("#runs-summary", { timeout: 10_000 });
  });

  await check("a kept token the server refuses brings the panel back and is dropped", async () => {
    await page.evaluate((t) => localStorage.setItem("hyperdial.token", t), WRONG);
    await page.goto(base + "/");
    await panelUp();
    const note = await page.locator("#signin-note").innerText();
    assert(note.includes("saved token was refused"), note);
    assert((await stored()) === null, "the refused token is dropped");
  });

  await check("signing in in one tab signs in the others", async () => {
    const other = await context.newPage();
    try {
      await other.goto(base + "/runs");
      await other.waitForSelector("#signin-token", { state: "visible", timeout: 10_000 });
      await page.fill("#signin-token", TOKEN);
      await page.click("#signin-submit");
      await page.waitForSelector(`#sweeps tr[data-sweep='${first.id}']`, { timeout: 10_000 });
      await other.waitForSelector("#runs-summary", { timeout: 10_000 });
      assert(await other.locator("#signout").isVisible(), "Sign out in the other tab");
    } finally {
      await other.close();
    }
  });

  await check("signing out in one tab signs out the others", async () => {
    const other = await context.newPage();
    try {
      await other.goto(base + "/runs");
      await other.waitForSelector("#runs-summary", { timeout: 10_000 });
      await page.click("#signout");
      await panelUp();
      await other.waitForSelector("#signin-token", { state: "visible", timeout: 10_000 });
      assert(await other.locator("#app").isHidden(), "the other tab's page is hidden");
    } finally {
      await other.close();
    }
  });

  await check("no errors in the browser console", async () => {
    assert(errors.length === 0, errors.join(" | "));
    assert(dialogs.length === 0, `browser dialogs: ${dialogs.join(" | ")}`);
  });
} finally {
  await browser.close();
  server.kill("SIGTERM");
  await serverExit;
}
console.log(`screenshots: ${out}/{signin,signin-refused,signed-in}.png`);
finish("e2e-auth");
