// The hyperdial HTTP API as the dashboard uses it, and live events over server-sent events
// (read with fetch so the bearer token can be sent, which EventSource cannot do). The types
// are those of wire.ts, generated from the server's own definitions.

import type {
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

const TOKEN_KEY = "hyperdial.token";

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function check(r: Response): Promise<Response> {
  if (r.status === 401) {
    const token = window.prompt("This hyperdial server needs its token (HYPERDIAL_TOKEN):");
    if (token) {
      localStorage.setItem(TOKEN_KEY, token);
      location.reload();
    }
  }
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
  const r = await check(await fetch(path, { headers: headers() }));
  return r.json();
}

export async function getText(path: string): Promise<string> {
  const r = await check(await fetch(path, { headers: headers() }));
  return r.text();
}

export async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await check(
    await fetch(path, {
      method,
      headers: headers({ "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  return r.json();
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
        const r = await fetch(url, { headers: headers(), signal: controller.signal });
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
