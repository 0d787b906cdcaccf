// Every run, sweep or not (`hyperdial run`, the Python client, `hyperdial sync`), newest first,
// a page of 50 at a time, filtered by project and state. The view (project, state, page) lives
// in the URL, so Back and a reload keep it. New and ended runs reload the page live; a
// periodic reload also shows runs other processes wrote to the same store (`hyperdial ui`
// beside a `tune`).

import { api, subscribe } from "../api";
import { clear, duration, h, num, stateBadge, throttle, value, when } from "../util";
import type { Run } from "../wire";
import { RUN_STATES } from "../wire";
import { errorText, stopReasonText } from "./sweep_table";

/** Runs per page. */
const PER_PAGE = 50;

/** What a run ran, shortened: its command for a run outside a sweep, else its parameters. */
function what(r: Run): string {
  const text = r.sweep
    ? Object.entries(r.params)
        .map(([k, v]) => `${k}=${value(v)}`)
        .join(" ")
    : (r.argv ?? []).join(" ");
  return text.length > 80 ? text.slice(0, 79) + "…" : text;
}

/** Up to three numbers of a run's summary, `name=value`. */
function summaryText(r: Run): string {
  return Object.entries(r.summary ?? {})
    .filter(([, v]) => typeof v === "number")
    .slice(0, 3)
    .map(([k, v]) => `${k}=${num(v)}`)
    .join(" ");
}

export function runsPage(el: HTMLElement): (() => void)[] {
  const q = new URLSearchParams(location.search);
  let project = q.get("project") ?? "";
  let state = q.get("state") ?? "";
  let page = Math.max(1, Math.floor(Number(q.get("page"))) || 1);
  document.title = "Runs · hyperdial";

  const body = h("tbody");
  const summary = h("p.muted#runs-summary", { "aria-live": "polite" });
  const projects = h("datalist#projects");
  const projectInput = h("input#runs-project", {
    type: "search",
    list: "projects",
    placeholder: "all projects",
    value: project,
    "aria-label": "Project",
  });
  const stateSelect = h(
    "select#runs-state",
    { "aria-label": "State" },
    h("option", { value: "" }, "any state"),
    RUN_STATES.map((s) => h("option", { value: s }, s.replace("_", " "))),
  );
  stateSelect.value = state;
  const prev = h("button", { class: "btn small", id: "runs-prev", type: "button" }, "← newer");
  const next = h("button", { class: "btn small", id: "runs-next", type: "button" }, "older →");
  clear(
    el,
    h("h1", null, "Runs"),
    h("p.muted.small", null, "Every run, of a sweep or not (hyperdial run, the Python client, hyperdial sync), newest first."),
    h("div.filters", null, h("label", null, "Project ", projectInput, projects), h("label", null, "State ", stateSelect), prev, next),
    summary,
    h(
      "div.card.flush",
      null,
      // The table scrolls inside its box on a narrow window; the page never does.
      h(
        "div.scroll-x",
        null,
        h(
          "table.grid#all-runs",
          null,
          h("thead", null, h("tr", null, ["Run", "Project", "Sweep", "State", "Created", "Runtime", "Command or parameters", "Summary", "Error or stop reason"].map((t) => h("th", { scope: "col" }, t)))),
          body,
        ),
      ),
    ),
  );

  const known = new Set<string>();
  const addProjects = (names: string[]) => {
    let added = false;
    for (const n of names) if (!known.has(n)) (known.add(n), (added = true));
    if (added) clear(projects, [...known].sort().map((n) => h("option", { value: n })));
  };
  api
    .sweeps()
    .then(({ sweeps }) => addProjects(sweeps.map((s) => s.project)))
    .catch(() => {});

  const syncUrl = () => {
    const p = new URLSearchParams();
    if (project) p.set("project", project);
    if (state) p.set("state", state);
    if (page > 1) p.set("page", String(page));
    const search = p.toString();
    history.replaceState(null, "", "/runs" + (search ? `?${search}` : ""));
  };

  let loading = 0;
  const load = async () => {
    const ticket = ++loading;
    const p = new URLSearchParams({ sort: "created_ms", order: "desc", limit: String(PER_PAGE), offset: String((page - 1) * PER_PAGE) });
    if (project) p.set("project", project);
    if (state) p.set("state", state);
    const res = await api.runs(p.toString());
    if (ticket !== loading) return;
    addProjects(res.runs.map((r) => r.project));
    const first = res.total ? (page - 1) * PER_PAGE + 1 : 0;
    const last = (page - 1) * PER_PAGE + res.runs.length;
    summary.textContent = res.total
      ? res.runs.length
        ? `Runs ${first}–${last} of ${res.total}`
        : `No runs on page ${page} (${res.total} in all)`
      : project || state
        ? "No runs match."
        : "No runs yet. `hyperdial run -- CMD`, a sweep, or the Python client's `hyperdial.init()` records one.";
    summary.setAttribute("data-total", String(res.total));
    prev.disabled = page <= 1;
    next.disabled = last >= res.total;
    clear(
      body,
      res.runs.map((r) =>
        h(
          "tr",
          { "data-run": r.id },
          h("td", null, h("a", { href: `/runs/${encodeURIComponent(r.id)}`, "data-link": true }, r.name || r.id), r.name ? h("div.muted.small", null, r.id) : null),
          h("td", null, r.project),
          h("td", null, r.sweep ? h("a", { href: `/sweeps/${encodeURIComponent(r.sweep)}`, "data-link": true }, `${r.sweep} #${r.number ?? ""}`) : h("span.muted", null, "—")),
          h("td", null, stateBadge(r.state)),
          h("td", null, when(r.created_ms)),
          h("td", null, r.started_ms ? duration((r.finished_ms ?? r.heartbeat_ms ?? Date.now()) - r.started_ms) : "—"),
          h("td.mono.small", null, what(r)),
          h("td.small", null, summaryText(r)),
          h("td.small.text", null, (errorText(r) || stopReasonText(r)) ? h("span.trunc", { title: errorText(r) || stopReasonText(r) }, errorText(r) || stopReasonText(r)) : ""),
        ),
      ),
    );
  };
  const show = () => {
    syncUrl();
    load().catch((e) => (summary.textContent = String((e as Error).message)));
  };
  projectInput.addEventListener("change", () => {
    project = projectInput.value.trim();
    page = 1;
    show();
  });
  stateSelect.addEventListener("change", () => {
    state = stateSelect.value;
    page = 1;
    show();
  });
  prev.addEventListener("click", () => {
    page = Math.max(1, page - 1);
    show();
  });
  next.addEventListener("click", () => {
    page += 1;
    show();
  });
  show();
  const refresh = throttle(() => load().catch(() => {}), 1500);
  const unsub = subscribe(null, (...[kind]) => {
    if (kind === "run_created" || kind === "run_finished" || kind === "resync") refresh();
  });
  const timer = window.setInterval(refresh, 10_000);
  return [unsub, () => clearInterval(timer)];
}
