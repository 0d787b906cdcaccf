import "./style.css";
import { disposeAll } from "./charts";
import { sweepsPage } from "./pages/sweeps";
import { sweepPage } from "./pages/sweep";
import { runPage } from "./pages/run";
import { runsPage } from "./pages/runs";
import { comparePage } from "./pages/compare";
import { clear, h } from "./util";
import { initAuth, signingIn } from "./auth";

export type Cleanup = () => void;
let cleanup: Cleanup[] = [];

export function navigate(path: string): void {
  history.pushState(null, "", path);
  route();
}

/** End the shown page: its live updates, timers and charts. */
function stop(): void {
  for (const c of cleanup) c();
  cleanup = [];
  disposeAll();
}

function route(): void {
  stop();
  // While the sign-in panel is up, links only change the URL: its page shows after sign-in.
  if (signingIn()) return;
  const app = document.getElementById("app")!;
  clear(app);
  const path = location.pathname;
  const at = (fn: (el: HTMLElement, id: string) => Cleanup[], id: string) => {
    cleanup = fn(app, decodeURIComponent(id));
  };
  let m: RegExpExecArray | null;
  if (path === "/" || path === "/index.html") at((el) => sweepsPage(el), "");
  else if ((m = /^\/sweeps\/([^/]+)\/?$/.exec(path))) at(sweepPage, m[1]);
  else if (path === "/runs" || path === "/runs/") at((el) => runsPage(el), "");
  else if ((m = /^\/runs\/([^/]+)\/?$/.exec(path))) at(runPage, m[1]);
  else if (path === "/compare" || path === "/compare/") at((el) => comparePage(el), "");
  else clear(app, h("p.empty", null, "Nothing here. ", h("a", { href: "/", "data-link": true }, "All sweeps")));
  window.scrollTo(0, 0);
}

// Client-side links: <a data-link href="/sweeps/x">.
document.addEventListener("click", (e) => {
  const a = (e.target as Element).closest("a[data-link]") as HTMLAnchorElement | null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  e.preventDefault();
  navigate(a.getAttribute("href")!);
});
window.addEventListener("popstate", route);
initAuth({ stop, resume: route });
route();
