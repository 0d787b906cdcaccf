// The hyperdial HTTP API as the dashboard uses it, and live events over server-sent events
// (read with fetch so the bearer token can be sent, which EventSource cannot do). The token is
// the one auth.ts keeps; a 401 brings up its sign-in panel. The types are those of wire.ts,
// generated from the server's own definitions.

import type {
  EstimateAnswer,
  Hello,
  Importance,
  MetricsEvent,
  NoiseReport,
  Notes,
  NotesRequest,
  Resync,
  Run,
  RunBrief,
  RunHistory,
  RunsPage,
  Sweep,
  SweepList,
  SweepPoints,
  SweepState,
} from "./wire";
import { refused, token } from "./auth";

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

/** The headers of an API request, with the kept token, and that token (null for none). */
function headers(extra: Record<string, string> = {}): [Record<string, string>, string | null] {
  const t = token();
  return [t ? { ...extra, Authorization: `Bearer ${t}` } : extra, t];
}

/** Fetch an API path with the kept token; a 401 brings up the sign-in panel (and still
 *  rejects, so the page's request ends). */
async function call(path: string, init: RequestInit = {}, extra: Record<string, string> = {}): Promise<Response> {
  const [hdrs, sent] = headers(extra);
  const r = await fetch(path, { ...init, headers: hdrs });
  if (r.status === 401) refused(sent);
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      const body = await r.json();
      if (body && body.error) msg = body.error;
    } catch {
      /* not JSON */
    }
    throw new ApiError(r.status, msg);
  }
  return r;
}

export async function get<T>(path: string): Promise<T> {
  return (await call(path)).json();
}

export async function getText(path: string): Promise<string> {
  return (await call(path)).text();
}

export async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init = { method, body: body === undefined ? undefined : JSON.stringify(body) };
  return (await call(path, init, { "Content-Type": "application/json" })).json();
}

const seg = encodeURIComponent;

/** The API calls the pages make, each with the type of its answer. */
export const api = {
  sweeps: () => get<SweepList>("/api/v1/sweeps"),
  sweep: (id: string) => get<Sweep>(`/api/v1/sweeps/${seg(id)}`),
  sweepAction: (id: string, action: "pause" | "resume" | "stop" | "cancel") => send<Sweep>("POST", `/api/v1/sweeps/${seg(id)}/${action}`),
  putNotes: (id: string, body: NotesRequest) => send<Notes>("PUT", `/api/v1/sweeps/${seg(id)}/notes`, body),
  points: (id: string) => get<SweepPoints>(`/api/v1/sweeps/${seg(id)}/points`),
  /** `states`: the comma list of run states whose runs count (the server's default: finished). */
  importance: (id: string, states = "finished") => get<Importance>(`/api/v1/sweeps/${seg(id)}/importance?state=${seg(states)}`),
  /** The model's estimate of the best configuration (a 404 with fewer than 5 results). */
  estimate: (id: string) => get<EstimateAnswer>(`/api/v1/sweeps/${seg(id)}/estimate`),
  /** The seed-noise report of the sweep's repeats. */
  noise: (id: string) => get<NoiseReport>(`/api/v1/sweeps/${seg(id)}/noise`),
  /** `query`: the runs query string (sweep, state, sort, order, range, in, limit, offset). */
  runs: (query: string) => get<RunsPage>(`/api/v1/runs?${query}`),
  run: (id: string) => get<Run>(`/api/v1/runs/${seg(id)}?history=false`),
  /** `query`: keys and max_points. */
  history: (id: string, query: string) => get<RunHistory>(`/api/v1/runs/${seg(id)}/history?${query}`),
  output: (id: string) => getText(`/api/v1/runs/${seg(id)}/output`),
};

/** A live event: its name and its payload. */
export type LiveEvent =
  | [kind: "hello", data: Hello]
  | [kind: "sweep", data: Sweep | Notes | { id: string; state: SweepState }]
  | [kind: "run_created" | "run_updated" | "run_finished", data: RunBrief]
  | [kind: "metrics", data: MetricsEvent]
  | [kind: "resync", data: Resync];

export type LiveHandler = (...event: LiveEvent) => void;

/** Subscribe to live events (of one sweep, or all); returns a function that unsubscribes. */
export function subscribe(sweep: string | null, onEvent: LiveHandler): () => void {
  let stopped = false;
  let controller: AbortController | null = null;
  const dot = document.getElementById("live");
  const setLive = (on: boolean) => dot?.classList.toggle("on", on);
  const run = async () => {
    let delay = 500;
    while (!stopped) {
      controller = new AbortController();
      try {
        const url = "/api/v1/events" + (sweep ? `?sweep=${encodeURIComponent(sweep)}` : "");
        // The kept token as it is now: after a sign-in the next attempt sends the new one.
        const [hdrs, sent] = headers();
        const r = await fetch(url, { headers: hdrs, signal: controller.signal });
        if (r.status === 401) refused(sent);
        if (!r.ok || !r.body) throw new Error(`events: ${r.status}`);
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        let buf = "";
        delay = 500;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let at: number;
          while ((at = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, at);
            buf = buf.slice(at + 2);
            let kind = "message";
            const data: string[] = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) kind = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            }
            if (!data.length) continue;
            if (kind === "hello") setLive(true);
            try {
              onEvent(...([kind, JSON.parse(data.join("\n"))] as LiveEvent));
            } catch (e) {
              console.error("live event", e);
            }
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      setLive(false);
      await new Promise((res) => setTimeout(res, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  run();
  return () => {
    stopped = true;
    controller?.abort();
    setLive(false);
  };
}
