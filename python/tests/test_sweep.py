"""Tests of the ask/tell API (hyperdial.Sweep, hyperdial.Trial).

Against the fake server (fake_server.py), and once against the real binary when one is found:
HYPERDIAL_BIN, else target/release/hyperdial or target/debug/hyperdial (under CARGO_TARGET_DIR when set).

Run from the repository root: python3 -m unittest discover -s python/tests -v
"""

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))

import hyperdial  # noqa: E402
from fake_server import FakeServer, closed_port_url, wait_for  # noqa: E402
from real_server import BINARY, SKIP_REASON, RealServerCase  # noqa: E402


class SweepTestCase(unittest.TestCase):
    def setUp(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
        patcher = mock.patch.dict(os.environ, env, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)
        for name, value in [("_CALL_RETRY_FOR", 0.5), ("_ASK_BACKOFF", (0.01, 0.05)),
                            ("_REQUEST_TIMEOUT", 2.0)]:
            p = mock.patch.object(hyperdial, name, value)
            p.start()
            self.addCleanup(p.stop)
        self.server = FakeServer().start()
        self.addCleanup(self.server.stop)

    CONFIG = {"method": "bayes", "metric": {"name": "val loss", "goal": "minimize"},
              "parameters": {"x": {"min": 0.0, "max": 1.0}}}

    def create(self, **kwargs):
        return hyperdial.Sweep.create(self.CONFIG, server=self.server.url, **kwargs)


class CreateTests(SweepTestCase):
    def test_create_from_dict_sends_it_as_a_json_object(self):
        sweep = self.create(project="p1", seed=42)
        (req,) = self.server.of("POST", "/api/v1/sweeps")
        self.assertEqual(req.body["config"], self.CONFIG)
        self.assertNotIn("source", req.body)
        self.assertEqual(req.body["project"], "p1")
        self.assertEqual(req.body["seed"], 42)
        self.assertNotIn("resume", req.body)
        self.assertEqual(sweep.id, "sw000001")
        self.assertEqual(sweep.state, "running")
        self.assertEqual(sweep.metric["name"], "val loss")

    def test_create_from_text_sends_it_verbatim(self):
        text = "method: random\nparameters:\n  x: {min: 0.0, max: 1.0}\n"
        hyperdial.Sweep.create(text, server=self.server.url)
        (req,) = self.server.of("POST", "/api/v1/sweeps")
        self.assertEqual(req.body["source"], text)
        self.assertNotIn("project", req.body)

    def test_server_and_token_from_the_environment(self):
        self.server.token = "s3cret"
        with mock.patch.dict(os.environ, {"HYPERDIAL_SERVER": self.server.url,
                                          "HYPERDIAL_TOKEN": "s3cret"}):
            sweep = hyperdial.Sweep.create(self.CONFIG)
            trial = sweep.ask()
            sweep.tell(trial, 1.0)
        for req in self.server.requests:
            self.assertEqual(req.headers.get("Authorization"), "Bearer s3cret")
        self.assertEqual(sweep.server, self.server.url)

    def test_default_server(self):
        sweep = hyperdial.Sweep({"id": "x"})
        self.assertEqual(sweep.server, hyperdial.DEFAULT_SERVER)

    def test_invalid_config_raises_value_error_with_the_servers_message(self):
        with self.assertRaises(ValueError) as ctx:
            hyperdial.Sweep.create("method: invalid", server=self.server.url)
        self.assertIn("`min` must be below `max`", str(ctx.exception))

    def test_bad_config_type(self):
        with self.assertRaises(TypeError):
            hyperdial.Sweep.create(42, server=self.server.url)

    def test_get(self):
        created = self.create()
        sweep = hyperdial.Sweep.get(created.id, server=self.server.url)
        self.assertEqual(sweep.id, created.id)
        self.assertEqual(sweep.metric, created.metric)
        with self.assertRaises(KeyError):
            hyperdial.Sweep.get("nope", server=self.server.url)


class AskTellTests(SweepTestCase):
    def test_ask_gives_a_trial(self):
        sweep = self.create()
        trial = sweep.ask()
        (claim,) = self.server.of("POST", "/claim")
        self.assertEqual(list(claim.body), ["wait_ms"])  # no agent; a long poll
        self.assertEqual(trial.number, 1)
        self.assertEqual(trial.params, {"x": 0.1, "opt.lr": 0.01, "opt.kind": "adam"})
        self.assertEqual(trial.config.opt.kind, "adam")
        self.assertIsInstance(trial.config, hyperdial.Config)
        self.assertTrue(trial.open)
        self.assertIn("Trial(", repr(trial))

    def test_tell_sends_the_metric_with_the_finish(self):
        sweep = self.create()
        trial = sweep.ask()
        sweep.tell(trial, 0.25)
        self.assertEqual(self.server.of("POST", "/metrics"), [])  # one request, not two
        (finish,) = self.server.of("POST", "/runs/%s/finish" % trial.id)
        self.assertEqual(finish.body, {"exit_code": 0, "values": {"val loss": 0.25}})
        self.assertEqual(trial.state, "finished")
        self.assertEqual(trial.value, 0.25)
        self.assertFalse(trial.open)
        with self.assertRaises(RuntimeError):
            sweep.tell(trial, 0.3)

    def test_tell_accepts_numpy_like_scalars(self):
        class Scalar:
            def item(self):
                return 1.5

        sweep = self.create()
        trial = sweep.ask()
        sweep.tell(trial, Scalar())
        (finish,) = self.server.of("POST", "/finish")
        self.assertEqual(finish.body["values"]["val loss"], 1.5)
        with self.assertRaises(TypeError):
            sweep.tell(sweep.ask(), "bad")

    def test_tell_none_marks_failed_without_a_metric(self):
        sweep = self.create()
        trial = sweep.ask()
        sweep.tell(trial, None)
        (finish,) = self.server.of("POST", "/finish")
        self.assertNotIn("values", finish.body)
        self.assertEqual(finish.body["state"], "failed")
        self.assertEqual(trial.state, "failed")

    def test_tell_nan_sends_null_and_marks_failed(self):
        sweep = self.create()
        trial = sweep.ask()
        sweep.tell(trial, float("nan"))
        (finish,) = self.server.of("POST", "/finish")
        self.assertEqual(finish.body["values"], {"val loss": None})
        self.assertEqual(finish.body["state"], "failed")

    def test_tell_with_state_failed(self):
        sweep = self.create()
        trial = sweep.ask()
        sweep.tell(trial, 3.0, state="failed")
        (finish,) = self.server.of("POST", "/finish")
        self.assertEqual(finish.body["state"], "failed")
        self.assertEqual(finish.body["values"], {"val loss": 3.0})
        with self.assertRaises(ValueError):
            sweep.tell(sweep.ask(), 1.0, state="weird")

    def test_multi_objective_tell_and_report_take_a_dict_or_a_list(self):
        config = {"method": "tpe", "parameters": {"x": {"min": 0.0, "max": 1.0}},
                  "metrics": [{"name": "loss"}, {"name": "ms", "goal": "minimize"}]}
        sweep = hyperdial.Sweep.create(config, server=self.server.url)
        self.assertEqual(sweep.objectives(), ["loss", "ms"])
        trial = sweep.ask()
        trial.report({"ms": 3, "loss": 0.5}, step=0)
        sweep.tell(trial, {"loss": 0.25, "ms": 2.5})
        points = [r.body["points"][0]["values"] for r in self.server.of("POST", "/metrics")]
        self.assertEqual(points, [{"loss": 0.5, "ms": 3}])
        (told,) = self.server.of("POST", "/finish")
        self.assertEqual(told.body["values"], {"loss": 0.25, "ms": 2.5})
        self.assertEqual(trial.value, {"loss": 0.25, "ms": 2.5})
        self.assertEqual(trial.state, "finished")
        listed = sweep.ask()
        sweep.tell(listed, [0.1, float("inf")])
        last = self.server.of("POST", "/finish")[-1]
        self.assertEqual(last.body["values"], {"loss": 0.1, "ms": None})
        self.assertEqual(listed.state, "failed")  # not every objective is finite
        for bad, error in [(0.3, TypeError), ({"loss": 1.0}, ValueError),
                           ({"loss": 1.0, "ms": 1.0, "acc": 1.0}, ValueError),
                           ([1.0], ValueError)]:
            with self.assertRaises(error):
                sweep.tell(sweep.ask(), bad)
    def test_tell_and_ask_tells_with_the_next_claim(self):
        sweep = self.create()
        first = sweep.ask()
        second = sweep.tell_and_ask(first, 0.5)
        claims = self.server.of("POST", "/claim")
        self.assertEqual(len(claims), 2)
        self.assertEqual(claims[1].body["tell"], {
            "run": first.id, "finish": {"exit_code": 0, "values": {"val loss": 0.5}}})
        self.assertEqual(self.server.of("POST", "/finish"), [])
        self.assertEqual((first.state, first.value, first.open), ("finished", 0.5, False))
        self.assertEqual(second.number, 2)
        self.assertTrue(second.open)
        # The sweep's end: None, and the last trial was still told.
        self.server.sweep_cap = 2
        self.assertIsNone(sweep.tell_and_ask(second, 0.25))
        self.assertEqual(self.server.sweep_runs[second.id]["state"], "finished")
        self.assertEqual(sweep.best().id, second.id)

    def test_tell_and_ask_waits_as_ask_does_when_nothing_can_start(self):
        sweep = self.create()
        first = sweep.ask()
        self.server.claim_statuses = [204]  # the told claim finds nothing to start at once
        second = sweep.tell_and_ask(first, 1.0)
        self.assertEqual(second.number, 2)
        self.assertEqual(len(self.server.of("POST", "/claim")), 3)

    def test_tell_names_the_terminal_states_it_accepts(self):
        from hyperdial import _states
        sweep = self.create()
        with self.assertRaises(ValueError) as ctx:
            sweep.tell(sweep.ask(), 1.0, state="running")
        self.assertIn(", ".join(_states.TERMINAL_RUN_STATES), str(ctx.exception))
        self.assertIn("stopped_early", _states.TERMINAL_RUN_STATES)
        self.assertNotIn("running", _states.TERMINAL_RUN_STATES)

    def test_ask_waits_while_the_server_answers_204(self):
        sweep = self.create()
        self.server.claim_statuses = [204, 204, 204]
        trial = sweep.ask()
        self.assertIsNotNone(trial)
        self.assertEqual(len(self.server.of("POST", "/claim")), 4)

    def test_ask_asks_the_server_to_wait_and_asks_again_at_once_after_a_long_poll(self):
        sweep = self.create()
        self.server.claim_long_poll = True
        self.server.claim_statuses = [204, 204, 204]
        # A backoff sleep would outlast the timeout: only asking again at once gets a trial.
        with mock.patch.object(hyperdial, "_ASK_BACKOFF", (60.0, 60.0)):
            trial = sweep.ask(timeout=30)
        self.assertIsNotNone(trial)
        claims = self.server.of("POST", "/claim")
        self.assertEqual(len(claims), 4)
        for req in claims:
            self.assertTrue(0 < req.body["wait_ms"] <= 20000, req.body)

    def test_ask_times_out(self):
        sweep = self.create()
        self.server.claim_statuses = [204] * 1000
        t0 = time.monotonic()
        with self.assertRaises(TimeoutError):
            sweep.ask(timeout=0.3)
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_ask_returns_none_when_the_sweep_is_over(self):
        self.server.sweep_cap = 2
        sweep = self.create()
        trials = [sweep.ask(), sweep.ask()]
        self.assertTrue(all(trials))
        self.assertIsNone(sweep.ask())
        self.assertEqual(sweep.state, "finished")

    def test_report_and_should_stop(self):
        sweep = self.create()
        trial = sweep.ask()
        self.assertFalse(trial.report(0.9))
        self.assertFalse(trial.report(0.8, step=5))
        self.server.stop_runs = True
        self.assertTrue(trial.report(0.7))
        self.assertTrue(trial.should_stop())
        points = self.server.points()
        self.assertEqual(points, [{"values": {"val loss": 0.9}},
                                  {"step": 5, "values": {"val loss": 0.8}},
                                  {"values": {"val loss": 0.7}}])
        with self.assertRaises(TypeError):
            trial.report(0.5, step=-1)
        sweep.tell(trial, 0.7)
        (finish,) = self.server.of("POST", "/finish")
        self.assertEqual(finish.body, {"exit_code": 0, "state": "stopped_early",
                                       "values": {"val loss": 0.7}})

    def test_best(self):
        sweep = self.create()
        self.assertIsNone(sweep.best())
        for value in (3.0, 1.0, 2.0):
            sweep.tell(sweep.ask(), value)
        best = sweep.best()
        self.assertEqual(best.value, 1.0)
        self.assertEqual(best.number, 2)
        self.assertAlmostEqual(best.params["x"], 0.2)

    def test_open_trials_get_heartbeats(self):
        with mock.patch.object(hyperdial, "_TRIAL_HEARTBEAT", 0.1):
            sweep = self.create()
            trial = sweep.ask()
            self.assertTrue(wait_for(
                lambda: self.server.of("POST", "/runs/%s/heartbeat" % trial.id), 5.0))
            self.server.stop_runs = True
            self.assertTrue(wait_for(trial.should_stop, 5.0))
            sweep.tell(trial, 1.0)
            n = len(self.server.of("POST", "/heartbeat"))
            time.sleep(0.5)
            self.assertEqual(len(self.server.of("POST", "/heartbeat")), n)

    def test_unreachable_server_raises(self):
        sweep = hyperdial.Sweep({"id": "x"}, server="http://127.0.0.1:9")
        with self.assertRaises(RuntimeError):
            sweep.ask()

    def test_a_named_server_that_does_not_answer_fails_at_once_with_the_command(self):
        url = closed_port_url()
        # The ordinary retry window (60 s) is not what create() waits for a first contact.
        with mock.patch.object(hyperdial, "_CALL_RETRY_FOR", 3600.0):
            for named in ({"server": url}, {}):
                env = {"HYPERDIAL_SERVER": url} if not named else {}
                with mock.patch.dict(os.environ, env):
                    t0 = time.monotonic()
                    with self.assertRaises(RuntimeError) as ctx:
                        hyperdial.Sweep.create(self.CONFIG, **named)
                    # A hang guard far above the 1.5 s budget (the old wait was about 58 s).
                    self.assertLess(time.monotonic() - t0, 15.0)
                message = str(ctx.exception)
                self.assertIn("no server answers at %s" % url, message)
                self.assertIn("`hyperdial server`", message)

    def test_without_a_server_or_a_binary_the_error_says_what_to_run(self):
        env = {"HYPERDIAL_BIN": os.path.join(tempfile.gettempdir(), "no-such-hyperdial")}
        with mock.patch.object(hyperdial, "DEFAULT_SERVER", closed_port_url()), \
                mock.patch.dict(os.environ, env):
            with self.assertRaises(RuntimeError) as ctx:
                hyperdial.Sweep.create(self.CONFIG)
        self.assertIn("no `hyperdial` binary was found", str(ctx.exception))
        self.assertIn("Run `hyperdial server`", str(ctx.exception))


@unittest.skipUnless(BINARY, SKIP_REASON)
class RealServerTests(RealServerCase):
    """The ask/tell loop against `hyperdial server`."""

    TMP_PREFIX = "hyperdial-asktell-"

    def test_bayes_ask_tell_loop_improves_on_the_initial_design(self):
        config = {"method": "bayes", "metric": {"name": "loss", "goal": "minimize"},
                  "run_cap": 15,
                  "parameters": {"x": {"min": -5.0, "max": 5.0},
                                 "opt": {"parameters": {"y": {"min": -5.0, "max": 5.0}}}}}
        sweep = hyperdial.Sweep.create(config, server=self.url, project="asktell", seed=3)
        self.assertEqual(sweep.method, "bayes")
        values = []
        while True:
            trial = sweep.ask(timeout=10)
            if trial is None:
                break
            self.assertEqual(trial.config.opt.y, trial.params["opt.y"])
            x, y = trial.params["x"], trial.config.opt.y
            value = (x - 1.2) ** 2 + (y + 0.7) ** 2
            sweep.tell(trial, value)
            self.assertEqual(trial.state, "finished")
            values.append(value)
        self.assertEqual(len(values), 15)
        self.assertEqual(sweep.refresh().state, "finished")
        best = sweep.best()
        self.assertEqual(best.value, min(values))
        # The first max(5, d + 1) = 5 runs are the quasi-random design; the GP must beat them.
        self.assertLess(best.value, min(values[:5]))
        self.assertLess(best.value, 0.5)

    def test_multi_objective_ask_tell_loop_has_a_front(self):
        config = ("method: tpe\nrun_cap: 8\nmetrics:\n  - {name: a}\n"
                  "  - {name: b, goal: maximize}\nparameters:\n  x: {min: 0.0, max: 1.0}\n")
        sweep = hyperdial.Sweep.create(config, server=self.url, seed=4)
        self.assertEqual(sweep.objectives(), ["a", "b"])
        told = {}
        while True:
            trial = sweep.ask(timeout=10)
            if trial is None:
                break
            x = trial.params["x"]
            sweep.tell(trial, {"a": x, "b": x * x})  # a trade-off: every run is on the front
            told[trial.number] = (x, x * x)
        self.assertEqual(len(told), 8)
        front = json.loads(urllib.request.urlopen(
            "%s/api/v1/sweeps/%s/front" % (self.url, sweep.id), timeout=10).read())
        self.assertEqual([o["goal"] for o in front["objectives"]], ["minimize", "maximize"])
        self.assertEqual(sorted(r["number"] for r in front["runs"] if r["rank"] == 0),
                         sorted(told))
        for r in front["runs"]:
            self.assertEqual(tuple(r["values"]), told[r["number"]])
        self.assertIsNone(sweep.best())
    def test_tell_and_ask_loop_runs_to_the_cap(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss", "goal": "minimize"}, "run_cap": 6,
             "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)
        told = []
        trial = sweep.ask()
        while trial is not None:
            told.append((trial, trial.params["x"]))
            trial = sweep.tell_and_ask(trial, trial.params["x"])
        self.assertEqual(len(told), 6)
        self.assertEqual(sweep.refresh().state, "finished")
        runs = sweep.trials()
        self.assertEqual([t.state for t in runs], ["finished"] * 6)
        self.assertEqual([t.value for t in runs], [x for _, x in told])
        self.assertEqual(sweep.best().value, min(x for _, x in told))

    def test_failed_trials_and_validation(self):
        with self.assertRaises(ValueError) as ctx:
            hyperdial.Sweep.create({"method": "bayes", "parameters": {"x": {"min": 1.0,
                                                                            "max": 0.0}}},
                                   server=self.url)
        self.assertTrue(str(ctx.exception))
        sweep = hyperdial.Sweep.create(
            "method: tpe\nmetric: {name: acc, goal: maximize}\nrun_cap: 3\n"
            "parameters:\n  lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-1}\n",
            server=self.url)
        first = sweep.ask()
        sweep.tell(first, None)
        self.assertEqual(first.state, "failed")
        second = sweep.ask()
        second.report(0.5, step=0)
        sweep.tell(second, float("nan"))
        self.assertEqual(second.state, "failed")
        third = sweep.ask()
        sweep.tell(third, 0.9)
        self.assertIsNone(sweep.ask())
        self.assertEqual(sweep.best().id, third.id)
        states = [t.state for t in sweep.trials()]
        self.assertEqual(states, ["failed", "failed", "finished"])


@unittest.skipUnless(BINARY, SKIP_REASON)
class LocalServerTests(unittest.TestCase):
    """Sweep.create with no server named and none at the default address starts one."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hyperdial-local-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        cwd = os.getcwd()
        os.chdir(self.tmp)
        self.addCleanup(os.chdir, cwd)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
        env["HYPERDIAL_BIN"] = BINARY
        patches = [mock.patch.dict(os.environ, env, clear=True),
                   # Nothing at the default address, whatever this machine runs on 8337.
                   mock.patch.object(hyperdial, "DEFAULT_SERVER", closed_port_url())]
        for p in patches:
            p.start()
            self.addCleanup(p.stop)
        self.addCleanup(hyperdial._stop_local)

    CONFIG = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": {"x": {"values": [1, 2, 3]}}}

    def test_create_starts_a_local_server_on_the_default_store_and_stops_it(self):
        sweep = hyperdial.Sweep.create(self.CONFIG, project="local")
        self.assertNotEqual(sweep.server, hyperdial.DEFAULT_SERVER)
        self.assertTrue(sweep.server.startswith("http://127.0.0.1:"), sweep.server)
        values = []
        while (trial := sweep.ask(timeout=30)) is not None:
            sweep.tell(trial, trial.params["x"] * 2.0)
            values.append(trial.params["x"])
        self.assertEqual(sorted(values), [1, 2, 3])
        self.assertEqual(sweep.best().value, 2.0)
        # Later sweeps of this process use the same server; get() finds the sweep there.
        again = hyperdial.Sweep.get(sweep.id)
        self.assertEqual((again.server, again.state), (sweep.server, "finished"))
        local = hyperdial._local
        hyperdial._stop_local()
        self.assertEqual(local.proc.returncode, 0)
        # The sweeps are in the default store, for `hyperdial server` to show later.
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, ".hyperdial", "hyperdial.db")))

    def test_the_local_server_ends_with_the_process_that_started_it(self):
        script = (
            "import os, sys, time\n"
            "sys.path.insert(0, %r)\n"
            "import hyperdial\n"
            "hyperdial.DEFAULT_SERVER = %r\n"
            "sweep = hyperdial.Sweep.create({'method': 'random', 'parameters': "
            "{'x': {'min': 0.0, 'max': 1.0}}})\n"
            "print(hyperdial._local.proc.pid, flush=True)\n"
            "time.sleep(3600)\n" % (os.path.join(HERE, os.pardir), hyperdial.DEFAULT_SERVER))
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, cwd=self.tmp)
        try:
            pid = int(child.stdout.readline().decode() or "0")
            if pid == 0:
                child.kill()
                self.fail("the script failed: %s" % child.stderr.read().decode())
            self.assertTrue(_running(pid))
        finally:
            child.kill()  # SIGKILL: no atexit, no cleanup of any kind
            child.wait()
            child.stdout.close()
            child.stderr.close()
        # Its pipe closed with it: the server shuts down on its own.
        self.assertTrue(wait_for(lambda: not _running(pid), timeout=60),
                        "the local server outlived the process that started it")


def _running(pid):
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
