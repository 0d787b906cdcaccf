"""Tests of the history reader (Run.history, Run.scan_history, Sweep.trial, Trial.history)
against the real binary: HYPERDIAL_BIN, else target/release/hyperdial or
target/debug/hyperdial (under CARGO_TARGET_DIR when set).

Run from the repository root: python3 -m unittest discover -s python/tests -v
"""

import math
import os
import sys
import time
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))
sys.path.insert(0, HERE)

import hyperdial  # noqa: E402
from real_server import BINARY, SKIP_REASON, RealServerClientCase  # noqa: E402

try:
    import pandas  # noqa: F401
    HAVE_PANDAS = True
except ImportError:
    HAVE_PANDAS = False

NAN = float("nan")


def same(a, b):
    """Equal, NaN included (NaN == NaN here), for lists of rows, columns and values."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@unittest.skipUnless(BINARY, SKIP_REASON)
class HistoryTests(RealServerClientCase):
    """What a script logged, read back through the client as a user would."""

    TMP_PREFIX = "hyperdial-history-"

    def logged_run(self):
        """A run with gaps, NaN, an infinity and a step logged twice (the later value wins)."""
        run = hyperdial.init(project="history")
        self.addCleanup(run.finish)
        run.log({"loss": 0.1 + 0.2, "acc": 0.5}, step=0)
        run.log({"loss": 1.0}, step=1)
        run.log({"loss": NAN, "acc": 0.75}, step=2)
        run.log({"loss": 0.25, "lr": 1e-300}, step=4)
        run.log({"acc": math.inf}, step=7)
        run.log({"loss": 0.125}, step=1)  # sent again: replaces step 1
        return run

    EXPECTED = [
        {"_step": 0, "loss": 0.1 + 0.2, "acc": 0.5},
        {"_step": 1, "loss": 0.125},
        {"_step": 2, "loss": NAN, "acc": 0.75},
        {"_step": 4, "loss": 0.25, "lr": 1e-300},
        {"_step": 7, "acc": NAN},
    ]

    def test_rows_columns_and_pages_of_a_run_being_logged_and_after_its_end(self):
        run = self.logged_run()
        # Before finish: what was logged is sent first, then read.
        rows = run.history()
        stamps = [row.pop("_timestamp") for row in rows]
        self.assertTrue(same(rows, self.EXPECTED), rows)
        self.assertTrue(all(abs(t - time.time()) < 600 for t in stamps), stamps)
        run.finish()
        self.assertTrue(same([{k: v for k, v in r.items() if k != "_timestamp"}
                              for r in run.history()], self.EXPECTED))
        cols = run.history(columns=True)
        self.assertEqual(list(cols), ["_step", "_timestamp", "acc", "loss", "lr"])
        self.assertEqual(cols["_step"], [0, 1, 2, 4, 7])
        self.assertTrue(same(cols["loss"], [0.1 + 0.2, 0.125, NAN, 0.25, None]))
        self.assertTrue(same(cols["acc"], [0.5, None, 0.75, None, NAN]))
        self.assertEqual(cols["lr"], [None, None, None, 1e-300, None])
        # Only some metrics: only their steps, in the order asked.
        only = run.history(keys=["lr", "acc"], columns=True)
        self.assertEqual(list(only), ["_step", "_timestamp", "lr", "acc"])
        self.assertEqual(only["_step"], [0, 2, 4, 7])
        # A history read in several answers is the same as one read whole.
        with mock.patch.object(hyperdial._settings, "HISTORY_PAGE_STEPS", 2):
            self.assertTrue(same(run.history(columns=True), cols))
        scanned = list(run.scan_history(page_size=2))
        self.assertTrue(same(scanned, run.history()))
        self.assertEqual([r["_step"] for r in run.scan_history(page_size=1, min_step=1,
                                                                max_step=7)], [1, 2, 4])

    def test_pandas_only_when_asked(self):
        run = self.logged_run()
        loaded = "pandas" in sys.modules
        run.history()
        run.history(columns=True)
        self.assertEqual("pandas" in sys.modules, loaded, "pandas imported without being asked")
        if not HAVE_PANDAS:
            with self.assertRaises(ImportError):
                run.history(pandas=True)
            return
        frame = run.history(pandas=True)
        self.assertEqual(list(frame.columns), ["_step", "_timestamp", "acc", "loss", "lr"])
        self.assertEqual(list(frame["_step"]), [0, 1, 2, 4, 7])
        self.assertTrue(math.isnan(frame["lr"][0]) and frame["lr"][3] == 1e-300)

    def test_sampled_history_keeps_the_first_and_last_points(self):
        run = hyperdial.init(project="history")
        self.addCleanup(run.finish)
        for step in range(500):
            run.log({"loss": 1.0 / (step + 1), "acc": step / 500.0}, step=step)
        run.finish()
        rows = run.history(max_points=20)
        steps = [r["_step"] for r in rows]
        self.assertLessEqual(len(steps), 40)
        self.assertEqual((steps[0], steps[-1]), (0, 499))
        self.assertEqual(steps, sorted(steps))
        for r in rows:
            self.assertEqual(r["loss"], 1.0 / (r["_step"] + 1))
        self.assertEqual(len(run.history()), 500)
        for bad in (0, 5, 100001, "50", True):
            with self.assertRaises(ValueError) as ctx:
                run.history(max_points=bad)
            self.assertIn("from 10 to 100000", str(ctx.exception))

    def test_sampled_history_of_more_metrics_than_one_answer_holds(self):
        run = hyperdial.init(project="history")
        self.addCleanup(run.finish)
        names = ["m%03d" % i for i in range(72)]  # the server samples 64 an answer
        for step in range(30):
            run.log({name: step + i / 100.0 for i, name in enumerate(names)}, step=step)
        run.finish()
        for keys in (None, names[3:70]):
            cols = run.history(keys=keys, max_points=10, columns=True)
            asked = names if keys is None else keys
            self.assertEqual(sorted(k for k in cols if not k.startswith("_")), asked)
            self.assertEqual((cols["_step"][0], cols["_step"][-1]), (0, 29))
            for name in asked:
                i = names.index(name)
                self.assertEqual(cols[name], [s + i / 100.0 for s in cols["_step"]])

    def test_a_sweep_run_by_id_and_refusals(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss", "goal": "minimize"},
             "run_cap": 2, "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)
        trial = sweep.ask()
        for step in range(3):
            trial.report(1.0 - step / 10.0, step=step)
        sweep.tell(trial, 0.5)
        found = sweep.trial(trial.id)
        self.assertEqual((found.id, found.number), (trial.id, trial.number))
        self.assertEqual([(r["_step"], r["loss"]) for r in found.history()],
                         [(0, 1.0), (1, 0.9), (2, 0.8), (3, 0.5)])
        self.assertEqual(trial.history(keys="loss", columns=True)["loss"],
                         [1.0, 0.9, 0.8, 0.5])
        with self.assertRaises(KeyError):
            sweep.trial("r_nope")
        other = hyperdial.init(project="history")
        self.addCleanup(other.finish)
        with self.assertRaises(KeyError) as ctx:
            sweep.trial(other.id)
        self.assertIn("no sweep", str(ctx.exception))
        with self.assertRaises(ValueError):
            trial.history(keys=["a,b"])
        # An unknown run, and a server without the route (older than the client).
        gone = hyperdial.Trial(sweep, {"id": "r_nope"})
        with self.assertRaises(KeyError):
            gone.history()
        with self.assertRaises(KeyError):
            gone.history(max_points=10)
        with mock.patch.object(hyperdial._history, "_history_path",
                               lambda run_id, *a: "/api/v1/runs/%s/no-such-form" % run_id):
            with self.assertRaises(RuntimeError) as ctx:
                trial.history()
        self.assertIn("older than the client", str(ctx.exception))

    def test_an_offline_run_has_no_history_to_read(self):
        with mock.patch.dict(os.environ, {"HYPERDIAL_MODE": "offline"}):
            run = hyperdial.init(project="history")
        self.addCleanup(run.finish)
        run.log({"loss": 1.0})
        with self.assertRaises(RuntimeError) as ctx:
            run.history()
        self.assertIn("hyperdial sync", str(ctx.exception))


if __name__ == "__main__":
    unittest.main()
