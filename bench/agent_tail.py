#!/usr/bin/env python3
"""The tail of a short multi-agent sweep: from the last run's finish to every agent's exit.

A sweep ends when its last run does; agents that had nothing to start meanwhile should learn
it at once, not after a poll interval. Each round creates a grid sweep of runs of different
lengths on one `hyperdial server`, starts `--agents` `hyperdial agent` processes, waits for
them to exit, and reports, per agent, the time from the last run's `finished_ms` (server
clock) to the agent process's exit (this machine's clock: the same clock). The exit time is
taken by a thread blocked in `wait()` on the process, so it includes process teardown.

    HYPERDIAL_BIN=target/release/hyperdial python3 bench/agent_tail.py --rounds 5 --agents 4

Prints one line per round and a summary (median and maximum tail over all agents and rounds).
Standard library only.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

TRAIN = """\
import sys, time
sleep = float(sys.argv[sys.argv.index("--sleep") + 1]) if "--sleep" in sys.argv else 0.0
time.sleep(sleep)
print('hyperdial: {"loss": %r}' % sleep, flush=True)
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(url, method="GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def wait_up(url, proc, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("hyperdial server exited at start")
        try:
            call(url + "/api/v1/sweeps")
            return
        except Exception:
            time.sleep(0.05)
    raise SystemExit("hyperdial server did not answer within %d s" % seconds)


def one_round(binary, url, workdir, agents, runs, index):
    # Run lengths spread from 0.2 s to 1.2 s so agents run out of work at different times.
    sleeps = [round(0.2 + 1.0 * i / max(1, runs - 1), 3) for i in range(runs)]
    source = json.dumps({
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": {"sleep": {"values": sleeps}},
    })
    sweep = call(url + "/api/v1/sweeps", "POST",
                 {"source": source, "project": "tail-%d" % index})["id"]
    exits = [None] * agents
    procs = []
    env = dict(os.environ, HYPERDIAL_SERVER=url)
    for i in range(agents):
        procs.append(subprocess.Popen(
            [binary, "agent", sweep, "--server", url], cwd=workdir, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def waiter(i):
        procs[i].wait()
        exits[i] = time.time() * 1000.0

    threads = [threading.Thread(target=waiter, args=(i,)) for i in range(agents)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if any(e is None for e in exits):
        for p in procs:
            p.kill()
        raise SystemExit("an agent did not exit within 300 s")
    listed = call(url + "/api/v1/runs?limit=1000&sweep=" + sweep)["runs"]
    finished = [r["finished_ms"] for r in listed if r.get("finished_ms")]
    if len(finished) != runs or any(r["state"] != "finished" for r in listed):
        raise SystemExit("round %d: expected %d finished runs, got %r"
                         % (index, runs, [r["state"] for r in listed]))
    last = max(finished)
    return [e - last for e in exits]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--runs", type=int, default=9, help="runs per sweep")
    args = ap.parse_args()
    binary = os.environ.get("HYPERDIAL_BIN") or shutil.which("hyperdial")
    if not binary:
        raise SystemExit("set HYPERDIAL_BIN to a hyperdial binary")
    binary = os.path.abspath(binary)
    tmp = tempfile.mkdtemp(prefix="hyperdial-tail-")
    try:
        with open(os.path.join(tmp, "train.py"), "w") as f:
            f.write(TRAIN)
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
        server = subprocess.Popen(
            [binary, "server", "--db", os.path.join(tmp, "db.sqlite"),
             "--bind", "127.0.0.1:%d" % port],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_up(url, server)
            tails = []
            for r in range(args.rounds):
                t = one_round(binary, url, tmp, args.agents, args.runs, r)
                tails.extend(t)
                print("round %d: tail per agent (ms): %s"
                      % (r + 1, " ".join("%.0f" % x for x in sorted(t))), flush=True)
            print("%d agents x %d rounds, %d runs per sweep: tail median %.0f ms, max %.0f ms"
                  % (args.agents, args.rounds, args.runs, statistics.median(tails), max(tails)))
        finally:
            server.terminate()
            server.wait(timeout=20)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
