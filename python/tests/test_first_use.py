"""What a new user meets first, against the real binary (HYPERDIAL_BIN, else
target/release/hyperdial or target/debug/hyperdial, under CARGO_TARGET_DIR when set): a
misspelt metric name in history(keys=), reading a run from another process (hyperdial.Api),
which told trials come back (retries), config mistakes of a dict, text or file passed to
Sweep.create, and what a disabled run says.

Run from the repository root: python3 -m unittest discover -s python/tests -v
"""

import os
import subprocess
import sys
import textwrap
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))
sys.path.insert(0, HERE)

import hyperdial  # noqa: E402
from real_server import (BINARY, SKIP_REASON, RealServerClientCase,  # noqa: E402
                         isolate_client)


def ours(caught):
    """The client's warnings among those caught (the garbage collector may add others, such
    as a ResourceWarning for another test's socket)."""
    return [w for w in caught if str(w.message).startswith("hyperdial:")]


class _Case(RealServerClientCase):
    def logged_run(self):
        run = hyperdial.init(project="first-use")
        run.log({"loss": 0.5, "accuracy": 0.75})
        run.log({"loss": 0.25})
        run.finish()
        return run


@unittest.skipUnless(BINARY, SKIP_REASON)
class UnknownKeysTests(_Case):
    TMP_PREFIX = "hyperdial-first-use-keys-"

    def test_an_unknown_key_reads_empty_and_warns_once_naming_it_and_the_known_ones(self):
        run = self.logged_run()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rows = run.history(keys=["los"])
        caught = ours(caught)
        self.assertEqual(rows, [], "as W&B: no rows for a metric never logged")
        self.assertEqual(len(caught), 1, [str(w.message) for w in caught])
        message = str(caught[0].message)
        self.assertIs(caught[0].category, UserWarning)
        for part in ["'los'", run.id, "accuracy, loss", "did you mean 'loss'"]:
            self.assertIn(part, message)
        # It points at the caller's line, not at the client's insides.
        self.assertEqual(caught[0].filename, __file__)

    def test_known_keys_are_read_with_the_unknown_one_named(self):
        run = self.logged_run()
        for read in (lambda: run.history(keys=["loss", "nope"]),
                     lambda: list(run.scan_history(keys=["loss", "nope"], page_size=1)),
                     lambda: run.history(keys=["loss", "nope"], max_points=10)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                rows = read()
            caught = ours(caught)
            self.assertEqual([r["loss"] for r in rows], [0.5, 0.25])
            self.assertEqual(len(caught), 1, "once per read, not per page")
            self.assertIn("'nope'", str(caught[0].message))
            self.assertNotIn("'loss'", str(caught[0].message).split(";")[0])
            self.assertEqual(caught[0].filename, __file__)

    def test_known_keys_and_every_key_read_without_a_warning(self):
        run = self.logged_run()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.history()
            run.history(keys=["loss"])
            run.history(keys=["accuracy"], max_points=10)
        self.assertEqual(ours(caught), [])

    def test_the_list_of_known_names_is_bounded(self):
        run = hyperdial.init(project="first-use")
        run.log({"m%02d" % i: float(i) for i in range(45)})
        run.finish()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.history(keys=["zzz"])
        message = str(ours(caught)[0].message)
        self.assertIn("m00, m01", message)
        self.assertIn("and 25 more", message)
        self.assertNotIn("m44", message)


@unittest.skipUnless(BINARY, SKIP_REASON)
class ApiTests(_Case):
    TMP_PREFIX = "hyperdial-first-use-api-"

    def test_another_process_reads_a_run_outside_any_sweep(self):
        run = self.logged_run()
        run_dir = os.path.dirname(HERE)
        script = textwrap.dedent("""
            import json, sys
            sys.path.insert(0, %r)
            import hyperdial
            api = hyperdial.Api()
            a = api.run(sys.argv[1])
            b = api.run("some-entity/first-use/" + sys.argv[1])
            print(json.dumps({"id": a.id, "state": a.state, "config": a.config,
                              "summary": a.summary, "sweep": a.sweep, "same": b.id == a.id,
                              "history": a.history(keys=["loss"]),
                              "scan": [r["_step"] for r in a.scan_history()]}))
        """ % run_dir)
        out = subprocess.run([sys.executable, "-c", script, run.id], capture_output=True,
                             text=True, timeout=60, env=dict(os.environ))
        self.assertEqual(out.returncode, 0, out.stderr)
        import json
        got = json.loads(out.stdout)
        self.assertEqual(got["id"], run.id)
        self.assertEqual(got["state"], "finished")
        self.assertEqual(got["summary"]["loss"], 0.25)
        self.assertEqual(got["summary"]["accuracy"], 0.75)
        self.assertIsNone(got["sweep"])
        self.assertTrue(got["same"])
        self.assertEqual([r["loss"] for r in got["history"]], [0.5, 0.25])
        self.assertEqual(got["scan"], [0, 1])

    def test_a_sweep_run_is_the_trial_its_sweep_gives(self):
        sweep = hyperdial.Sweep.create({"method": "random", "metric": {"name": "loss"},
                                        "parameters": {"x": {"min": 0.0, "max": 1.0}}})
        trial = sweep.ask()
        trial.report(0.75, step=0)
        sweep.tell(trial, 0.5)
        api = hyperdial.Api()
        read = api.run(trial.id)
        self.assertIsInstance(read, hyperdial.Trial)
        self.assertEqual((read.id, read.params, read.state), (trial.id, trial.params,
                                                              "finished"))
        self.assertEqual(read.config.x, trial.params["x"])
        self.assertEqual(read.sweep.id, sweep.id)
        self.assertEqual(read.summary["loss"], 0.5)
        self.assertEqual([r["loss"] for r in read.history()], [0.75, 0.5])
        self.assertEqual(api.sweep(sweep.id).id, sweep.id)
        self.assertEqual(api.sweep("e/p/" + sweep.id).metric["name"], "loss")

    def test_an_unknown_id_is_a_key_error_naming_it_and_the_server(self):
        api = hyperdial.Api()
        for call in (api.run, api.sweep):
            with self.assertRaises(KeyError) as ctx:
                call("r_nope")
            self.assertIn("r_nope", str(ctx.exception))
            self.assertIn(self.url, str(ctx.exception))
            # An empty id is a bad value, not a bad type.
            with self.assertRaises(ValueError):
                call("")
            with self.assertRaises(TypeError):
                call(7)


@unittest.skipUnless(BINARY, SKIP_REASON)
class RetryTests(_Case):
    """The rule docs/python.md states: which told states come back, how often, and the
    switch."""

    TMP_PREFIX = "hyperdial-first-use-retry-"

    def sweep(self, **extra):
        config = {"method": "random", "metric": {"name": "loss"},
                  "parameters": {"x": {"min": 0.0, "max": 1.0}}}
        config.update(extra)
        return hyperdial.Sweep.create(config)

    def test_a_crashed_trial_comes_back_once_by_default(self):
        sweep = self.sweep()
        first = sweep.ask()
        sweep.tell(first, None, state="crashed")
        again = sweep.ask()
        self.assertEqual(again.params, first.params)
        self.assertEqual((again.data["retry_of"], again.data["attempt"]), (first.id, 2))
        sweep.tell(again, None, state="crashed")
        fresh = sweep.ask()
        self.assertNotEqual(fresh.params, first.params, "one retry by default")
        self.assertEqual(fresh.data["attempt"], 1)

    def test_failed_cancelled_and_stopped_early_do_not_come_back_by_default(self):
        sweep = self.sweep()
        for state in ("failed", "cancelled", "stopped_early"):
            trial = sweep.ask()
            sweep.tell(trial, None if state == "failed" else 1.0, state=state)
            nxt = sweep.ask()
            self.assertNotEqual(nxt.params, trial.params, state)
            sweep.tell(nxt, 1.0)

    def test_retry_on_and_max_choose_what_comes_back_and_max_0_turns_it_off(self):
        sweep = self.sweep(retry={"max": 2, "on": ["crashed", "failed"]})
        first = sweep.ask()
        sweep.tell(first, None)  # failed
        second = sweep.ask()
        sweep.tell(second, None, state="crashed")
        third = sweep.ask()
        self.assertEqual(first.params, second.params)
        self.assertEqual(third.params, first.params)
        self.assertEqual(third.data["attempt"], 3)
        sweep.tell(third, None)
        self.assertNotEqual(sweep.ask().params, first.params, "max: 2 retries")

        off = self.sweep(retry={"max": 0})
        trial = off.ask()
        off.tell(trial, None, state="crashed")
        self.assertNotEqual(off.ask().params, trial.params)


@unittest.skipUnless(BINARY, SKIP_REASON)
class ConfigErrorTests(_Case):
    TMP_PREFIX = "hyperdial-first-use-config-"

    def test_a_dicts_mistakes_are_named_by_key_path_not_by_a_files_line(self):
        with self.assertRaises(ValueError) as ctx:
            hyperdial.Sweep.create({"method": "random", "metric": {"name": "loss"},
                                    "parameters": {"lr": {"min": "x", "max": 1.0},
                                                   "b": {"valuess": [1, 2]}}})
        message = str(ctx.exception)
        self.assertIn("in the config passed to Sweep.create", message)
        self.assertIn("parameters.lr.min: expected a number", message)
        self.assertIn("parameters.b.valuess", message)
        self.assertIn("did you mean `values`", message)
        self.assertIn("2 errors", message)
        self.assertNotIn("sweep.yaml", message)
        self.assertNotRegex(message, r":\d+:\d+")
        self.assertNotIn("warning", message, "warnings did not refuse it")

    BAD = "method: random\nparameters:\n  lr: {min: x, max: 1.0}\n"

    def test_text_is_named_as_text_with_its_line_and_column(self):
        for text in (self.BAD, self.BAD.encode()):
            with self.assertRaises(ValueError) as ctx:
                hyperdial.Sweep.create(text)
            message = str(ctx.exception)
            self.assertIn("<sweep config text>:3:13: error: parameters.lr.min", message)
            self.assertNotIn("sweep.yaml", message, "no file of that name was written")

    def test_a_file_is_named_by_the_path_given(self):
        import pathlib
        folder = os.path.join(self.tmp, "conf")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, "mnist.yaml")
        with open(path, "w") as f:
            f.write(self.BAD)
        for given in (pathlib.Path(path), path, " %s\n" % path):
            with self.assertRaises(ValueError) as ctx:
                hyperdial.Sweep.create(given)
            self.assertIn("%s:3:13: error: parameters.lr.min" % path, str(ctx.exception))
        with open(path, "w") as f:
            f.write("method: random\nparameters:\n  lr: {min: 0.0, max: 1.0}\n")
        sweep = hyperdial.Sweep.create(pathlib.Path(path))
        self.assertEqual(sweep.data["file"], path)
        self.assertEqual(sweep.method, "random")
        # Text keeps no file name with its sweep.
        self.assertIsNone(hyperdial.Sweep.create(
            "method: random\nparameters:\n  lr: {min: 0.0, max: 2.0}\n").data.get("file"))
        missing = os.path.join(folder, "nope.yml")
        with self.assertRaises(FileNotFoundError) as ctx:
            hyperdial.Sweep.create(missing)
        self.assertIn("no such file %s" % missing, str(ctx.exception))


class DisabledRunTests(unittest.TestCase):
    def setUp(self):
        isolate_client(self)

    def test_a_disabled_run_has_an_id_and_says_why_and_how_to_record(self):
        os.environ["HYPERDIAL_MODE"] = "disabled"
        run = hyperdial.init()
        self.addCleanup(run.finish)
        self.assertIsInstance(run.id, str)
        with self.assertRaises(RuntimeError) as ctx:
            run.history()
        message = str(ctx.exception)
        self.assertNotIn("None", message)
        self.assertIn("run %s is disabled" % run.id, message)
        self.assertIn("HYPERDIAL_MODE=disabled", message)
        self.assertIn("unset it", message)

    def test_mode_disabled_passed_to_init_is_named(self):
        run = hyperdial.init(mode="disabled")
        self.addCleanup(run.finish)
        with self.assertRaises(RuntimeError) as ctx:
            list(run.scan_history())
        self.assertIn('mode="disabled" was passed to hyperdial.init()', str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
