"""Telling trials, against the real binary (HYPERDIAL_BIN, else target/release/hyperdial or
target/debug/hyperdial, under CARGO_TARGET_DIR when set): a trial's value and state after
tell() are the server's, a trial of another sweep is refused before anything is sent, a sweep
without a metric fails the trial it cannot take a value for, the config warnings
Sweep.create passes on, and the connections a process keeps are closed.

Run from the repository root: python3 -m unittest discover -s python/tests -v
"""

import math
import os
import subprocess
import sys
import textwrap
import time
import unittest
import warnings
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(HERE, os.pardir)
sys.path.insert(0, PYTHON)
sys.path.insert(0, HERE)

import hyperdial  # noqa: E402
from real_server import BINARY, SKIP_REASON, RealServerClientCase  # noqa: E402

MAXIMIZE = {"method": "random", "metric": {"name": "acc", "goal": "maximize"},
            "parameters": {"x": {"min": 0.0, "max": 1.0}}}
NO_METRIC = {"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}}


def ours(caught, category=hyperdial.HyperdialWarning):
    """The client's warnings of ``category`` among those caught."""
    return [w for w in caught if issubclass(w.category, category)]


@unittest.skipUnless(BINARY, SKIP_REASON)
class ToldValueTests(RealServerClientCase):
    TMP_PREFIX = "hyperdial-tell-value-"

    def stored(self, trial):
        return hyperdial.Api().run(trial.id)

    def test_the_value_after_tell_is_the_best_reported_or_told_as_stored(self):
        sweep = hyperdial.Sweep.create(MAXIMIZE)
        # tell(): the finish's answer is the stored run.
        trial = sweep.ask()
        trial.report(0.9, step=0)
        self.assertIs(sweep.tell(trial, 0.1), trial)
        self.assertEqual((trial.value, trial.state), (0.9, "finished"))
        self.assertEqual(self.stored(trial).value, 0.9)
        # A told value better than the reports is the value.
        trial = sweep.ask()
        trial.report(0.2, step=0)
        sweep.tell(trial, 0.7)
        self.assertEqual((trial.value, self.stored(trial).value), (0.7, 0.7))
        # NaN fails the trial; its value is what the server keeps (the reported one).
        trial = sweep.ask()
        trial.report(0.9, step=0)
        sweep.tell(trial, float("nan"))
        stored = self.stored(trial)
        self.assertEqual((trial.state, trial.value), ("failed", 0.9))
        self.assertEqual((stored.state, stored.value), ("failed", 0.9))
        # tell_and_ask(): the claim's answer is the next trial, so the value is worked out
        # by the same rule, and agrees with what is stored.
        trial = sweep.ask()
        trial.report(0.9, step=0)
        trial.report(0.8, step=1)
        following = sweep.tell_and_ask(trial, 0.1)
        self.assertEqual((trial.value, trial.state), (0.9, "finished"))
        self.assertEqual(self.stored(trial).value, 0.9)
        sweep.tell(following, None)
        self.assertEqual((following.state, following.value), ("failed", None))

    def test_optimize_callbacks_see_the_stored_value(self):
        sweep = hyperdial.Sweep.create(MAXIMIZE)
        seen = []

        def objective(trial):
            trial.report(0.9, step=0)
            return 0.1

        sweep.optimize(objective, n_trials=3,
                       callbacks=[lambda s, t: seen.append((t.id, t.value, t.state))])
        self.assertEqual([(v, s) for _, v, s in seen], [(0.9, "finished")] * 3)
        for run_id, value, _ in seen:
            self.assertEqual(hyperdial.Api().run(run_id).value, value)

    def test_a_callback_that_stops_the_sweep_starts_no_further_trial(self):
        # Optuna's rule: study.stop() in a callback ends the loop after the current trial; a
        # threshold callback may call it again for a later trial without failing.
        sweep = hyperdial.Sweep.create(MAXIMIZE)
        seen = []

        def stop_at_3(s, t):
            seen.append(t.number)
            if t.number >= 3:
                s.stop()
                s.stop()  # stopping an ended sweep changes nothing

        told = sweep.optimize(lambda t: 0.5, n_trials=10, callbacks=[stop_at_3])
        self.assertEqual(told, 3)
        self.assertEqual(seen, [1, 2, 3])
        self.assertEqual(len(sweep.trials()), 3, "no trial was claimed after the stop")
        self.assertEqual(sweep.refresh().state, "finished")

    def test_a_trial_of_another_sweep_is_refused_before_anything_is_sent(self):
        mine = hyperdial.Sweep.create(MAXIMIZE)
        other = hyperdial.Sweep.create(MAXIMIZE)
        trial = other.ask()
        for tell in (lambda: mine.tell(trial, 1.0), lambda: mine.tell_and_ask(trial, 1.0)):
            with self.assertRaises(ValueError) as ctx:
                tell()
            message = str(ctx.exception)
            self.assertIn("belongs to sweep %s, not to sweep %s" % (other.id, mine.id), message)
            self.assertIn(trial.id, message)
        self.assertEqual((trial.state, self.stored(trial).state), ("running", "running"))
        self.assertEqual(mine.trials(), [], "nothing claimed on the sweep told")
        other.tell(trial, 0.5)
        self.assertEqual((self.stored(trial).state, self.stored(trial).value), ("finished", 0.5))
        # A run outside any sweep is no sweep's trial.
        run = hyperdial.init(project="tell")
        run.finish()
        with self.assertRaises(ValueError) as ctx:
            mine.tell(hyperdial.Api().run(run.id), 1.0)
        self.assertIn("belongs to no sweep", str(ctx.exception))

    def test_a_value_that_is_not_a_number_fails_the_stored_trial(self):
        sweep = hyperdial.Sweep.create(MAXIMIZE)
        trial = sweep.ask()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sweep.tell(trial, "0.5")
        self.assertEqual(len(ours(caught, hyperdial.ValueWarning)), 1)
        stored = self.stored(trial)
        self.assertEqual((trial.state, stored.state), ("failed", "failed"))
        self.assertIn("got str '0.5'", stored.data["error"])


@unittest.skipUnless(BINARY, SKIP_REASON)
class NoMetricTests(RealServerClientCase):
    TMP_PREFIX = "hyperdial-tell-no-metric-"

    def test_a_value_told_to_a_sweep_without_a_metric_fails_the_trial_then_raises(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sweep = hyperdial.Sweep.create(NO_METRIC)
        (said,) = ours(caught, hyperdial.ConfigWarning)
        self.assertIn("has no `metric`: tell() with a value needs `metric: {name:",
                      str(said.message))
        self.assertEqual(said.filename, __file__)
        trial = sweep.ask()
        with self.assertRaises(hyperdial.NoMetricError) as ctx:
            sweep.tell(trial, 1.0)
        self.assertIsInstance(ctx.exception, ValueError)
        self.assertIn("has no metric", str(ctx.exception))
        stored = hyperdial.Api().run(trial.id)
        self.assertEqual((trial.state, stored.state), ("failed", "failed"))
        self.assertIn("has no metric", stored.data["error"])
        # optimize() cannot store any value either: it raises rather than fail every trial.
        with self.assertRaises(ValueError):
            sweep.optimize(lambda t: 1.0, n_trials=5)
        self.assertEqual([t.state for t in sweep.trials()], ["failed", "failed"])
        # None and a state still end a trial.
        trial = sweep.ask()
        sweep.tell(trial, None, state="crashed")
        self.assertEqual(trial.state, "crashed")

    def test_best_run_without_a_metric_says_what_it_returns(self):
        sweep = hyperdial.Sweep.create(NO_METRIC)
        self.assertIsNone(sweep.best_run())
        self.assertIn("no run yet: best_run() returns None", sys.stderr.getvalue())
        self.assertNotIn("returning its most recent run", sys.stderr.getvalue())
        first, second = sweep.ask(), sweep.ask()
        sweep.tell(first, None)
        sweep.tell(second, None)
        newest = max((first, second), key=lambda t: (t.data["created_ms"], t.number))
        self.assertEqual(sweep.best_run().id, newest.id)
        self.assertIn("returning its most recent run, %s" % newest.id, sys.stderr.getvalue())


@unittest.skipUnless(BINARY, SKIP_REASON)
class ConfigWarningTests(RealServerClientCase):
    TMP_PREFIX = "hyperdial-tell-config-"

    LOG_UNIFORM_TEXT = textwrap.dedent("""\
        method: random
        metric: {name: loss}
        parameters:
          lr:
            distribution: log_uniform
            min: 0.00001
            max: 0.1
        """)

    def created(self, config):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sweep = hyperdial.Sweep.create(config)
        return sweep, ours(caught)

    def test_the_servers_warnings_are_warned_with_their_place(self):
        # As text: named by line and column, as `hyperdial validate` prints them.
        sweep, caught = self.created(self.LOG_UNIFORM_TEXT)
        self.assertEqual(len(caught), 1, [str(w.message) for w in caught])
        (warning,) = caught
        self.assertIs(warning.category, hyperdial.ConfigWarning)
        self.assertTrue(issubclass(hyperdial.ConfigWarning, UserWarning))
        self.assertEqual(warning.filename, __file__)
        message = str(warning.message)
        self.assertIn("<sweep config text>:5:19: warning: parameters.lr.distribution: "
                      "`log_uniform` bounds are natural-log exponents", message)
        self.assertIn("hint: use `log_uniform_values`", message)
        self.assertNotIn("program", message, "an ask/tell sweep needs no program")
        # The warning is the server's: the sweep holds it.
        self.assertTrue(sweep.data["warnings"])
        # A file: by its path; a dict: by key path.
        path = os.path.join(self.tmp, "lr.yaml")
        with open(path, "w") as f:
            f.write(self.LOG_UNIFORM_TEXT)
        _, (warning,) = self.created(path)
        self.assertIn("%s:5:19: warning: parameters.lr.distribution:" % path,
                      str(warning.message))
        config = {"method": "random", "metric": {"name": "loss"}, "parameters": {
            "lr": {"distribution": "log_uniform", "min": 1e-5, "max": 0.1}}}
        _, (warning,) = self.created(config)
        self.assertIn("parameters.lr.distribution: warning: `log_uniform` bounds",
                      str(warning.message))
        # Users may filter them by class.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=hyperdial.ConfigWarning)
            hyperdial.Sweep.create(config)
        self.assertEqual(ours(caught), [])

    def test_a_clean_config_warns_nothing(self):
        _, caught = self.created(MAXIMIZE)
        self.assertEqual(caught, [])

    def test_an_empty_config_is_said_to_be_empty(self):
        path = os.path.join(self.tmp, "empty.yaml")
        open(path, "w").close()
        for config, said in (("", "the sweep config is empty"),
                             ("  \n", "the sweep config is empty"),
                             (b"", "the sweep config is empty"),
                             (path, "the file %s holds nothing" % path)):
            with self.assertRaises(ValueError) as ctx:
                hyperdial.Sweep.create(config)
            self.assertIn(said, str(ctx.exception))
            self.assertNotIn("`source`", str(ctx.exception), "no words of the HTTP API")


@unittest.skipUnless(BINARY, SKIP_REASON)
class ConnectionTests(RealServerClientCase):
    TMP_PREFIX = "hyperdial-tell-sockets-"

    def test_a_process_leaves_no_socket_to_the_garbage_collector(self):
        # Sweeps, trials told and asked with heartbeats, Api reads of several sweeps, a run:
        # with warnings on, not one ResourceWarning (unclosed socket) at any point.
        script = textwrap.dedent("""
            import gc, sys, time
            import hyperdial

            hyperdial._settings.TRIAL_HEARTBEAT = 0.1
            config = {"method": "random", "metric": {"name": "loss"},
                      "parameters": {"x": {"min": 0.0, "max": 1.0}}}
            sweeps = [hyperdial.Sweep.create(config) for _ in range(3)]
            for sweep in sweeps:
                sweep.optimize(lambda t: t.params["x"], n_trials=2)
                trial = sweep.ask()
                time.sleep(0.5)  # a heartbeat goes out, from a thread of its own
                sweep.tell(trial, 0.5)
            time.sleep(1.5)  # the heartbeat thread ends: no trial is open
            api = hyperdial.Api()
            runs = api.runs()
            print(len(runs), len({r.sweep.id for r in runs}))
            runs[0].history()
            api.close()  # closed, and still usable
            api.run(runs[0].id)
            with hyperdial.Sweep.get(runs[0].sweep.id) as again:
                again.trials()
            try:
                api.run("nosuchrun")
            except KeyError:
                pass
            run = hyperdial.init(project="p")
            run.log({"a": 1})
            run.finish()
            del sweeps, api, runs, trial, sweep
            gc.collect()
            print("collected", flush=True)
        """)
        env = dict(os.environ, PYTHONPATH=PYTHON, PYTHONWARNINGS="always")
        out = subprocess.run([sys.executable, "-X", "dev", "-c", script], capture_output=True,
                             text=True, timeout=120, env=env, cwd=self.tmp)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.split(), ["9", "3", "collected"])
        self.assertNotIn("ResourceWarning", out.stderr)


if __name__ == "__main__":
    unittest.main()


@unittest.skipUnless(BINARY, SKIP_REASON)
class CrashedTrialTests(RealServerClientCase):
    """A trial the server ended crashed while it was open (its heartbeats never got through
    for the run timeout): its reports and its tell store nothing, say so once, and the loop
    goes on with the next trial instead of raising."""

    TMP_PREFIX = "hyperdial-crashed-"
    SERVER_ARGS = ("--run-timeout", "1")

    def wait_crashed(self, sweep, trial):
        """Wait until the server has ended ``trial`` crashed (at most 15 s)."""
        deadline = time.monotonic() + 15
        while sweep.trial(trial.id).state != "crashed":
            self.assertLess(time.monotonic(), deadline, "the trial was not crashed")
            time.sleep(0.2)

    def test_a_trial_crashed_while_open_is_said_once_and_the_loop_goes_on(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss", "goal": "minimize"},
             "parameters": {"x": {"min": 0.0, "max": 1.0}}, "retry": {"max": 0}},
            project="crashed")
        # No heartbeat is sent: the server hears nothing of the open trial.
        with mock.patch.object(hyperdial._settings, "TRIAL_HEARTBEAT", 3600.0):
            trial = sweep.ask()
            self.wait_crashed(sweep, trial)
            self.assertTrue(trial.report(0.3))
            self.assertTrue(trial.should_stop())
            nxt = sweep.tell_and_ask(trial, 0.3)
        self.assertEqual(trial.state, "crashed")
        self.assertIsNotNone(nxt)
        self.assertNotEqual(nxt.id, trial.id)
        said = sys.stderr.getvalue()
        self.assertEqual(said.count("trial %s is crashed" % trial.id), 1, said)
        self.assertIn("ask for the next trial", said)
        self.assertIn("nothing more of it will be stored", said)
        # The crashed trial stored nothing; the next one is told as usual.
        self.assertIsNone(sweep.trial(trial.id).value)
        sweep.tell(nxt, 0.2)
        self.assertEqual(sweep.trial(nxt.id).state, "finished")
        # A plain tell of a trial crashed unnoticed says so too, and does not raise.
        with mock.patch.object(hyperdial._settings, "TRIAL_HEARTBEAT", 3600.0):
            last = sweep.ask()
            self.wait_crashed(sweep, last)
            sweep.tell(last, 0.1)
        self.assertEqual(last.state, "crashed")
        self.assertIn("the value told (0.1) was not stored", sys.stderr.getvalue())
