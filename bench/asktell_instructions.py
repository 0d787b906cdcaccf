#!/usr/bin/env python3
"""Server instructions per ask/tell trial, counted by callgrind: a figure that does not
depend on what else the machine is doing, for comparing two builds of the hot path.

    python3 bench/asktell_instructions.py target/release/hyperdial [--trials 500]
    python3 bench/asktell_instructions.py OLD_BINARY NEW_BINARY

For each binary: a server on a new SQLite store under valgrind's callgrind with counting
off, a random sweep on it, 100 warm-up trials of ``Sweep.optimize`` (one request per trial:
the told trial and the next claim in one commit), then counting on for ``--trials`` trials.
Prints the server's instructions per trial (user space only: the kernel's ``fdatasync`` and
``pwrite`` are not counted; count bytes written with /proc/PID/io for those). Needs valgrind
(Debian's package). Two runs of one binary agree within about 0.3 %.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
import hyperdial  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "peers"))
from hotpaths import free_port  # noqa: E402


def control(pid, *args):
    subprocess.run(["callgrind_control", *args, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def instructions_per_trial(binary, trials):
    work = tempfile.mkdtemp(prefix="hyperdial-instr-")
    out = os.path.join(work, "callgrind.out")
    url = "http://127.0.0.1:%d" % free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
    with open(out + ".log", "w") as log:
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + out,
             binary, "server", "--db", os.path.join(work, "h.db"),
             "--bind", url.split("//")[1]],
            env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/api/v1/sweeps", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server under callgrind did not start: see " + out + ".log")
                time.sleep(0.5)
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "y", "goal": "minimize"},
             "run_cap": 10 * trials + 1000, "parameters": {"x": {"min": 0.0, "max": 1.0}}},
            server=url)
        sweep.optimize(lambda t: t.params["x"], n_trials=50)
        control(server.pid, "-i", "on")
        sweep.optimize(lambda t: t.params["x"], n_trials=50)
        control(server.pid, "-z")
        sweep.optimize(lambda t: t.params["x"], n_trials=trials)
        control(server.pid, "-i", "off")
        control(server.pid, "-d")
        sweep.close()
    finally:
        server.terminate()
        server.wait()
    total = 0
    for name in os.listdir(work):
        if name.startswith("callgrind.out") and not name.endswith(".log"):
            with open(os.path.join(work, name)) as f:
                for line in f:
                    # `totals:`, not `summary:`, which the zeroing (-z) leaves wrapped.
                    m = re.match(r"totals:\s+(\d+)", line)
                    if m:
                        total = max(total, int(m.group(1)))
    shutil.rmtree(work, ignore_errors=True)
    return total / trials


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("binaries", nargs="+")
    ap.add_argument("--trials", type=int, default=500)
    args = ap.parse_args()
    for binary in args.binaries:
        n = instructions_per_trial(binary, args.trials)
        print("%s: %.0f instructions per trial (%d trials)" % (binary, n, args.trials), flush=True)


if __name__ == "__main__":
    main()
