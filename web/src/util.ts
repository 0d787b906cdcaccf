// Small DOM and formatting helpers.

import type { Run } from "./wire";

type Child = Node | string | number | null | undefined | false;

/** Create an element: h("div.card#x", {onclick}, children...). */
export function h<K extends keyof HTMLElementTagNameMap>(
  spec: K | `${K}.${string}` | `${K}#${string}`,
  attrs: Record<string, any> | null = null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const m = /^([a-z0-9]+)((?:[.#][\w-]+)*)$/.exec(spec as string);
  const tag = (m ? m[1] : spec) as K;
  const el = document.createElement(tag);
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g) || []) {
      if (part[0] === ".") el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = String(v);
    else if (k === "value") (el as any).value = v;
    else if (k === "checked") (el as any).checked = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el: Element, ...children: (Child | Child[])[]): void {
  el.textContent = "";
  append(el, children);
}

/** A number for people: 4 significant digits, exponent for very small or large. */
export function num(x: unknown): string {
  if (x === null || x === undefined) return "—";
  if (typeof x !== "number") return String(x);
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x) && Math.abs(x) < 1e9) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(3).replace(/\.?0+e/, "e");
  return String(Number(x.toPrecision(4)));
}

export function value(v: unknown): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return num(v);
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.round(s % 60)}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${m % 60}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export function when(ms: number | null | undefined): string {
  if (!ms) return "—";
  const d = new Date(ms);
  const ago = Date.now() - ms;
  if (ago >= 0 && ago < 60_000) return "just now";
  if (ago >= 0 && ago < 3_600_000) return `${Math.round(ago / 60_000)} min ago`;
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function stateBadge(state: string): HTMLElement {
  return h("span", { class: `badge s-${state}` }, state.replace("_", " "));
}

/** Call `fn` at most once per `ms`, trailing call included. */
export function throttle(fn: () => void, ms: number): () => void {
  let timer: number | null = null;
  let last = 0;
  return () => {
    if (timer !== null) return;
    const wait = Math.max(0, last + ms - Date.now());
    timer = window.setTimeout(() => {
      timer = null;
      last = Date.now();
      fn();
    }, wait);
  };
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

function inline(s: string): string {
  let out = esc(s);
  out = out.replace(/`([^`]+)`/g, "<code>$1</code>");
  out = out.replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  out = out.replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>");
  out = out.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_m, text: string, url: string) => {
    const safe = /^(https?:\/\/|\/|#)/.test(url) ? url : "#";
    return `<a href="${safe}" rel="noopener noreferrer">${text}</a>`;
  });
  return out;
}

/** Markdown to HTML: headings, paragraphs, lists, code blocks, emphasis, code, links. Input
 *  is escaped first, so notes can never inject markup. */
export function markdown(src: string): string {
  const lines = src.replace(/\r\n/g, "\n").split("\n");
  const out: string[] = [];
  let para: string[] = [];
  let list: "ul" | "ol" | null = null;
  const flush = () => {
    if (para.length) out.push(`<p>${inline(para.join(" "))}</p>`);
    para = [];
  };
  const endList = () => {
    if (list) out.push(`</${list}>`);
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith("```")) {
      flush();
      endList();
      const code: string[] = [];
      while (++i < lines.length && !lines[i].startsWith("```")) code.push(lines[i]);
      out.push(`<pre><code>${esc(code.join("\n"))}</code></pre>`);
      continue;
    }
    const head = /^(#{1,4})\s+(.*)$/.exec(line);
    const ul = /^\s*[-*]\s+(.*)$/.exec(line);
    const ol = /^\s*\d+[.)]\s+(.*)$/.exec(line);
    if (head) {
      flush();
      endList();
      const level = head[1].length + 2;
      out.push(`<h${level}>${inline(head[2])}</h${level}>`);
    } else if (ul || ol) {
      flush();
      const kind = ul ? "ul" : "ol";
      if (list !== kind) {
        endList();
        out.push(`<${kind}>`);
        list = kind;
      }
      out.push(`<li>${inline((ul || ol)![1])}</li>`);
    } else if (!line.trim()) {
      flush();
      endList();
    } else {
      endList();
      para.push(line.trim());
    }
  }
  flush();
  endList();
  return out.join("\n");
}

function yamlScalar(v: unknown): string {
  if (typeof v === "string") {
    return /^[\w./-][\w ./=-]*$/.test(v) && !/^(true|false|null|yes|no|~|[-+]?[\d.]+(e[-+]?\d+)?)$/i.test(v)
      ? v
      : JSON.stringify(v);
  }
  return JSON.stringify(v);
}

/** A JSON value as YAML (for configs that were written as JSON). */
export function toYaml(v: unknown, indent = ""): string {
  if (Array.isArray(v)) {
    if (!v.length) return "[]";
    if (v.every((x) => x === null || typeof x !== "object")) return `[${v.map(yamlScalar).join(", ")}]`;
    return v.map((x) => `\n${indent}- ${toYaml(x, indent + "  ").replace(/^\n\s*/, "")}`).join("");
  }
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>);
    if (!entries.length) return "{}";
    return entries
      .map(([k, x]) => {
        const inner = toYaml(x, indent + "  ");
        return `\n${indent}${yamlScalar(k)}:${inner.startsWith("\n") ? "" : " "}${inner}`;
      })
      .join("");
  }
  return yamlScalar(v);
}

export function configYaml(source: string): string {
  const t = source.trim();
  if (t.startsWith("{")) {
    try {
      return toYaml(JSON.parse(t)).replace(/^\n/, "");
    } catch {
      /* show as written */
    }
  }
  return source;
}

/** Exponential moving average smoothing as TensorBoard applies it (debiased). */
export function smooth(values: (number | null)[], weight: number): (number | null)[] {
  if (weight <= 0) return values;
  let last = 0;
  let n = 0;
  return values.map((v) => {
    if (v === null || !Number.isFinite(v)) return null;
    last = last * weight + (1 - weight) * v;
    n++;
    return last / (1 - Math.pow(weight, n));
  });
}

/** The hosts of a run's spill files (`delivery.files` entries are `host:path`), in order. */
export function spillHosts(files: unknown): string[] {
  const hosts: string[] = [];
  for (const f of Array.isArray(files) ? files : []) {
    if (typeof f !== "string") continue;
    const at = f.indexOf(":");
    const host = at > 0 ? f.slice(0, at) : f;
    if (host && !hosts.includes(host)) hosts.push(host);
  }
  return hosts;
}

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? "" : "s"}`;

/** What a run's `delivery` record says, as text: a warning while points are missing (with
 *  where to run `hyperdial sync`), and a quieter note for points recovered later. Null when
 *  every point was delivered. */
export function deliveryText(r: Pick<Run, "delivery"> | null): { missing: string | null; recovered: string | null } {
  const d = r?.delivery;
  if (!d) return { missing: null, recovered: null };
  const missing = Number(d.missing) || 0;
  const recovered = Number(d.recovered) || 0;
  const hosts = spillHosts(d.files);
  let warn: string | null = null;
  if (missing > 0) {
    warn = hosts.length
      ? `${plural(missing, "metric point")} missing: run \`hyperdial sync\` on ${hosts.join(", ")}`
      : `${plural(missing, "metric point")} missing: no spill file holds ${missing === 1 ? "it" : "them"}`;
  }
  return { missing: warn, recovered: recovered > 0 ? `${plural(recovered, "metric point")} recovered by \`hyperdial sync\`` : null };
}

/** Labels for a run's delivery record: a warning badge while points are missing, a muted note
 *  when points were recovered; empty when every point arrived. Text, not colour, carries the
 *  meaning. */
export function deliveryLabels(r: Pick<Run, "delivery"> | null): HTMLElement[] {
  const { missing, recovered } = deliveryText(r);
  const out: HTMLElement[] = [];
  if (missing) out.push(h("span.badge.warn", { "data-delivery": "missing" }, "⚠ ", codeText(missing)));
  if (recovered) out.push(h("span.note", { "data-delivery": "recovered" }, codeText(recovered)));
  return out;
}

/** Text with `code` spans as nodes. */
export function codeText(s: string): Node[] {
  return s.split("`").map((part, i) => (i % 2 ? h("code", null, part) : document.createTextNode(part)));
}
