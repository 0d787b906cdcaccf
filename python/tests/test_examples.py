"""The client in real processes: the example scripts and what happens at interpreter exit.

Each test starts `python3` with a clean environment (no HYPERDIAL_* variables, no PYTHONPATH,
so the examples find the client through their checkout fallback) in a temporary directory.
"""

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, os.pardir, os.pardir))
PYTHON_DIR = os.path.join(REPO, "python")
QUICKSTART = os.path.join(REPO, "examples", "quickstart", "train.py")
SKLEARN = os.path.join(REPO, "examples", "sklearn", "train.py")

sys.path.insert(0, HERE)
from fake_server import FakeServer, closed_port_url  # noqa: E402


class ProcessTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hyperdial-proc-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("HYPERDIAL_") and k != "PYTHONPATH"}
        self.env["HYPERDIAL_SERVER"] = closed_port_url()

    def start_server(self):
        server = FakeServer().start()
        self.addCleanup(server.stop)
        return server

    def python(self, args, timeout=60, **env):
        full_env = dict(self.env, **env)
        return subprocess.run([sys.executable] + args, cwd=self.tmp, env=full_env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout)

    def offline_records(self):
        folder = os.path.join(self.tmp, ".hyperdial", "offline")
        (name,) = os.listdir(folder)
        with open(os.path.join(folder, name)) as f:
            return [json.loads(line) for line in f]

    def script(self, body):
        path = os.path.join(self.tmp, "script.py")
        with open(path, "w") as f:
            f.write("import sys\nsys.path.insert(0, %r)\nimport hyperdial\n" % PYTHON_DIR)
            f.write(textwrap.dedent(body))
        return path


class QuickstartTests(ProcessTestCase):
    def test_offline_without_a_server(self):
        proc = self.python([QUICKSTART, "--epochs=3", "--hidden=8"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(len(proc.stdout.splitlines()), 3)
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn("offline", proc.stderr)
        records = self.offline_records()
        self.assertEqual(records[0]["type"], "init")
        self.assertEqual(records[-1]["type"], "finish")
        self.assertEqual(records[-1]["exit_code"], 0)
        self.assertEqual(records[0]["config"]["hidden"], 8)
        self.assertEqual(records[0]["config"]["epochs"], 3)
        logs = [r for r in records if r["type"] == "log"]
        self.assertEqual([r["values"]["epoch"] for r in logs], [1, 2, 3])
        self.assertEqual([r["step"] for r in logs], [0, 1, 2])
        for r in logs:
            self.assertEqual(set(r["values"]), {"epoch", "val_loss", "val_acc"})
        summaries = [r["values"] for r in records if r["type"] == "summary"]
        self.assertEqual(summaries[-1], {"best_val_acc": max(r["values"]["val_acc"] for r in logs)})

    def test_divergence_logs_nan_and_exits_1(self):
        proc = self.python([QUICKSTART, "--epochs=3", "--lr=1000", "--momentum=0.999",
                            "--l2=0.5"])
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("diverged", proc.stderr)
        records = self.offline_records()
        self.assertEqual(records[1]["values"], {"epoch": 1, "val_loss": None})
        self.assertEqual(records[-1]["type"], "finish")
        self.assertEqual(records[-1]["exit_code"], 1)

    def test_under_an_agent_the_run_config_wins_over_flags(self):
        server = self.start_server()
        config_path = os.path.join(self.tmp, "config.json")
        with open(config_path, "w") as f:
            json.dump({"lr": 0.1, "momentum": 0.5, "hidden": 4, "activation": "relu",
                       "l2": 1e-5, "epochs": 2}, f)
        # the sweep's default command passes the same values as flags; the file wins anyway
        proc = self.python([QUICKSTART, "--lr=0.1", "--epochs=9", "--unknown=1"],
                           HYPERDIAL_SERVER=server.url, HYPERDIAL_RUN_ID="r7mz0c1d",
                           HYPERDIAL_SWEEP_ID="k3x9q2ab", HYPERDIAL_CONFIG=config_path)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        points = server.points()
        self.assertEqual([p["values"]["epoch"] for p in points], [1, 2])
        self.assertEqual([p["step"] for p in points], [0, 1])
        (summary,) = [r.body for r in server.of("PUT", "/summary")][-1:]
        self.assertEqual(summary["best_val_acc"], max(p["values"]["val_acc"] for p in points))
        self.assertEqual(server.of("POST", "/finish"), [])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, ".hyperdial")))


@unittest.skipUnless(importlib.util.find_spec("sklearn"), "scikit-learn is not installed")
class SklearnTests(ProcessTestCase):
    def test_small_run_logs_a_curve(self):
        proc = self.python([SKLEARN, "--n_estimators=6", "--stage=2", "--max_depth=2"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        records = self.offline_records()
        logs = [r for r in records if r["type"] == "log"]
        self.assertEqual([r["values"]["n_estimators"] for r in logs], [2, 4, 6])
        self.assertTrue(all(0 < r["values"]["val_acc"] <= 1 for r in logs))
        summary = {}
        for r in records:
            if r["type"] == "summary":
                summary.update(r["values"])
        self.assertEqual(summary["val_acc"], logs[-1]["values"]["val_acc"])
        self.assertEqual(records[-1]["exit_code"], 0)


class ExitTests(ProcessTestCase):
    def test_unfinished_run_is_finished_at_exit(self):
        server = self.start_server()
        path = self.script("""
            run = hyperdial.init(config={"a": 1})
            for i in range(5):
                run.log({"x": i})
            run.summary["done"] = True
        """)
        proc = self.python([path], HYPERDIAL_SERVER=server.url)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual([p["step"] for p in server.points()], [0, 1, 2, 3, 4])
        self.assertEqual(server.of("PUT", "/summary")[0].body, {"done": True})
        (fin,) = server.of("POST", "/finish")
        self.assertEqual({k: v for k, v in fin.body.items() if k != "ended_ms"}, {"exit_code": 0})
        self.assertIsInstance(fin.body["ended_ms"], int)

    def test_uncaught_exception_finishes_with_exit_code_1(self):
        server = self.start_server()
        path = self.script("""
            hyperdial.init()
            hyperdial.log({"x": 1})
            raise RuntimeError("boom")
        """)
        proc = self.python([path], HYPERDIAL_SERVER=server.url)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("boom", proc.stderr)
        self.assertEqual(len(server.points()), 1)
        (fin,) = server.of("POST", "/finish")
        self.assertEqual({k: v for k, v in fin.body.items() if k != "ended_ms"}, {"exit_code": 1})
        self.assertIsInstance(fin.body["ended_ms"], int)

    def test_agent_run_flushes_at_exit_without_finish_call(self):
        server = self.start_server()
        path = self.script("""
            hyperdial.init()
            hyperdial.log({"loss": float("nan")})
        """)
        proc = self.python([path], HYPERDIAL_SERVER=server.url, HYPERDIAL_RUN_ID="r7mz0c1d")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual([p["values"] for p in server.points()], [{"loss": None}])
        self.assertEqual(server.of("POST", "/finish"), [])

    def test_server_that_never_answers_does_not_hang_the_exit(self):
        # A socket that listens but never accepts: connections open, requests time out.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        path = self.script("""
            hyperdial._settings.REQUEST_TIMEOUT = 0.3
            hyperdial._settings.RETRY_DELAYS = (0.05,)
            hyperdial._settings.DEFAULT_RETRY_SECONDS = 1.0
            run = hyperdial.init()
            for i in range(3):
                run.log({"x": i})
        """)
        start = time.monotonic()
        proc = self.python([path], HYPERDIAL_SERVER="http://127.0.0.1:%d" % sock.getsockname()[1],
                           HYPERDIAL_RUN_ID="r1", timeout=20)
        self.assertLess(time.monotonic() - start, 8.0)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("3 metric points did not reach the server", proc.stderr)


if __name__ == "__main__":
    unittest.main()


class StopTests(ProcessTestCase):
    """How a run under an agent ends when the agent stops it with SIGTERM."""

    def test_sigterm_runs_on_stop_flushes_and_exits_143(self):
        server = self.start_server()
        marker = os.path.join(self.tmp, "checkpoint.txt")
        path = self.script("""
            import time
            run = hyperdial.init(config={"lr": 0.1})

            @run.on_stop
            def save():
                with open(%r, "w") as f:
                    f.write("saved at step %%d" %% run.step)

            for step in range(1000):
                run.log({"loss": 1.0 / (step + 1)})
                print("step", step, flush=True)
                time.sleep(0.01)
        """ % marker)
        env = dict(self.env, HYPERDIAL_SERVER=server.url, HYPERDIAL_RUN_ID="r7mz0c1d")
        proc = subprocess.Popen([sys.executable, path], cwd=self.tmp, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
        self.addCleanup(proc.kill)
        for _ in range(20):  # wait until it has logged a few steps
            if proc.stdout.readline().startswith("step 19"):
                break
        proc.terminate()
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 143, err)
        with open(marker) as f:
            self.assertTrue(f.read().startswith("saved at step"))
        steps = [p["step"] for p in server.points()]
        # Every point logged before the signal reached the server: no gap at the end.
        self.assertGreaterEqual(len(steps), 20)
        self.assertEqual(steps, list(range(len(steps))))

    def test_should_stop_follows_the_server(self):
        server = self.start_server()
        server.stop_runs = True
        path = self.script("""
            import time
            run = hyperdial.init()
            for step in range(500):
                run.log({"loss": 1.0})
                if run.should_stop():
                    print("stopped at", step)
                    break
                time.sleep(0.01)
            run.finish()
        """)
        proc = self.python([path], HYPERDIAL_SERVER=server.url, HYPERDIAL_RUN_ID="r7mz0c1d")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("stopped at", proc.stdout)
        self.assertLess(int(proc.stdout.split()[-1]), 499)
