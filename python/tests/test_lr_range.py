"""The LR range test helper: schedule, smoothing, stopping, the suggestion rule, what a run
records, and the example on the quickstart's network against a grid of learning rates."""

import json
import math
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, os.pardir, os.pardir))
sys.path.insert(0, os.path.join(REPO, "python"))
import hyperdial  # noqa: E402

EXAMPLE = os.path.join(REPO, "examples", "lr-range-test")


class Recorder:
    """Stands in for a Run: keeps what log() and the summary receive."""

    def __init__(self):
        self.points = []
        self.summary = {}

    def log(self, values):
        self.points.append(dict(values))


def drive(test, loss_of_lr):
    """Run `test` to its end with loss = loss_of_lr(lr); return the learning rates handed out."""
    handed = []
    for lr in test:
        handed.append(lr)
        test.record(loss_of_lr(lr))
    return handed


class ScheduleTests(unittest.TestCase):
    def test_exponential_from_min_to_max_both_included(self):
        rates = hyperdial.lr_range_schedule(1e-4, 1.0, 5)
        for got, want in zip(rates, [1e-4, 1e-3, 1e-2, 1e-1, 1.0]):
            self.assertAlmostEqual(got, want, delta=want * 1e-12)
        ratios = [b / a for a, b in zip(rates, rates[1:])]
        self.assertTrue(all(abs(r - 10.0) < 1e-9 for r in ratios), ratios)

    def test_bad_settings_are_refused(self):
        for args in [(1.0, 0.1, 10), (0.0, 1.0, 10), (1e-3, 1.0, 1), (1e-3, float("inf"), 10),
                     (1e-3, 1.0, 2.5)]:
            with self.assertRaises(ValueError, msg=repr(args)):
                hyperdial.lr_range_test(*args, run=Recorder())
        with self.assertRaises(ValueError):
            hyperdial.lr_range_test(1e-3, 1.0, 10, beta=1.0, run=Recorder())
        with self.assertRaises(ValueError):
            hyperdial.lr_range_test(1e-3, 1.0, 10, diverge_factor=1.0, run=Recorder())
        with self.assertRaises(ValueError):
            hyperdial.lr_range_test(1e-3, 1.0, 10, skip_start=-1, run=Recorder())


class SmoothingTests(unittest.TestCase):
    def test_bias_correction_makes_a_constant_loss_constant(self):
        self.assertEqual([round(v, 12) for v in hyperdial.smooth_losses([2.0] * 5)], [2.0] * 5)

    def test_values_by_hand(self):
        beta = 0.5
        got = hyperdial.smooth_losses([1.0, 3.0, 0.0], beta)
        # avg: 0.5, 1.75, 0.875; corrections 0.5, 0.75, 0.875
        self.assertEqual([round(v, 12) for v in got], [1.0, round(1.75 / 0.75, 12), 1.0])

    def test_a_non_finite_loss_poisons_what_follows(self):
        got = hyperdial.smooth_losses([1.0, float("nan"), 1.0])
        self.assertEqual(got[0], 1.0)
        self.assertTrue(math.isnan(got[1]) and math.isnan(got[2]))

    def test_the_helper_smooths_as_smooth_losses_does(self):
        losses = [1.0, 0.9, 1.1, 0.7, 0.8, 0.6]
        test = hyperdial.lr_range_test(1e-3, 1.0, steps=len(losses), beta=0.7, run=Recorder())
        it = iter(losses)
        drive(test, lambda lr: next(it))
        self.assertEqual(test.smoothed, hyperdial.smooth_losses(losses, 0.7))


class StoppingTests(unittest.TestCase):
    def test_runs_every_step_when_the_loss_never_diverges(self):
        run = Recorder()
        test = hyperdial.lr_range_test(1e-3, 1.0, steps=30, run=run)
        handed = drive(test, lambda lr: 1.0 / (1.0 + lr))
        self.assertEqual(handed, hyperdial.lr_range_schedule(1e-3, 1.0, 30))
        self.assertEqual(test.stop, "completed")
        self.assertIsNone(test.divergence_lr)
        self.assertEqual(run.summary["lr_range_test"]["stop"], "completed")

    def test_stops_when_the_smoothed_loss_passes_four_times_its_minimum(self):
        # Loss 1 until lr 0.1, then 100: the smoothed loss crosses 4 at the step where
        # avg/(1-beta^n) > 4 first holds; computed here by the same arithmetic.
        schedule = hyperdial.lr_range_schedule(1e-4, 10.0, 100)
        losses = [1.0 if lr < 0.1 else 100.0 for lr in schedule]
        smoothed = hyperdial.smooth_losses(losses)
        first = next(i for i, s in enumerate(smoothed) if s > 4.0 * min(smoothed[:i + 1]))
        test = hyperdial.lr_range_test(1e-4, 10.0, steps=100, run=Recorder())
        handed = drive(test, lambda lr: 1.0 if lr < 0.1 else 100.0)
        self.assertEqual(len(handed), first + 1)
        self.assertEqual(test.stop, "diverged")
        self.assertEqual(test.divergence_lr, schedule[first])
        self.assertGreater(schedule[first], 0.1)
        # A factor of 50 lets it go on further.
        later = hyperdial.lr_range_test(1e-4, 10.0, steps=100, diverge_factor=50.0, run=Recorder())
        self.assertGreater(len(drive(later, lambda lr: 1.0 if lr < 0.1 else 100.0)), len(handed))

    def test_a_nan_loss_stops_at_once(self):
        run = Recorder()
        test = hyperdial.lr_range_test(1e-4, 10.0, steps=50, run=run)
        handed = drive(test, lambda lr: float("nan") if lr > 1.0 else 1.0)
        self.assertEqual(test.stop, "non_finite")
        self.assertGreater(handed[-1], 1.0)
        self.assertLessEqual(handed[-2], 1.0)
        self.assertTrue(math.isnan(run.points[-1]["loss"]))  # run.log sends it as null
        self.assertEqual(len(run.points), len(handed))

    def test_record_must_follow_each_learning_rate(self):
        test = hyperdial.lr_range_test(1e-3, 1.0, steps=10, run=Recorder())
        with self.assertRaises(RuntimeError):
            test.record(1.0)
        it = iter(test)
        next(it)
        with self.assertRaises(RuntimeError):
            next(it)

    def test_finish_before_the_end_says_ended(self):
        run = Recorder()
        test = hyperdial.lr_range_test(1e-3, 1.0, steps=10, run=run)
        for lr in test:
            test.record(1.0)
            if len(test.lrs) == 3:
                break
        result = test.finish()
        self.assertEqual(result["stop"], "ended")
        self.assertEqual(result["points"], 3)
        self.assertEqual(run.summary["lr_range_test"], result)


def bowl(lr):
    """A loss against lr shaped as range tests look: flat, falling, a minimum at lr 0.1,
    then rising steeply."""
    x = math.log10(lr)
    return 2.0 - 1.5 / (1.0 + math.exp(-4.0 * (x + 2.0))) + (max(0.0, x + 1.0) ** 2) * 20.0


class SuggestionTests(unittest.TestCase):
    def test_a_tenth_of_the_minimum_and_the_steepest_point(self):
        lrs = hyperdial.lr_range_schedule(1e-5, 10.0, 121)  # 20 points per decade
        smoothed = [bowl(lr) for lr in lrs]
        got = hyperdial.lr_range_suggestion(lrs, smoothed)
        best = min(range(10, 116), key=lambda i: smoothed[i])
        self.assertEqual(got["min_loss_lr"], lrs[best])
        self.assertAlmostEqual(math.log10(got["min_loss_lr"]), -1.0, delta=0.1)
        self.assertEqual(got["tenth_min_loss_lr"], lrs[best] / 10.0)
        self.assertEqual(got["suggested_lr"], got["tenth_min_loss_lr"])
        # the sigmoid falls fastest at lr 1e-2; the span of 5 points keeps it within a step
        self.assertAlmostEqual(math.log10(got["steepest_lr"]), -2.0, delta=0.06)
        self.assertIsNone(got["reason"])

    def test_skipped_ends_are_not_looked_at(self):
        lrs = hyperdial.lr_range_schedule(1e-5, 10.0, 121)
        smoothed = [bowl(lr) for lr in lrs]
        smoothed[3] = -100.0   # a glitch in the skipped start
        smoothed[118] = -100.0  # and in the skipped end
        got = hyperdial.lr_range_suggestion(lrs, smoothed, skip_start=10, skip_end=5)
        self.assertAlmostEqual(math.log10(got["min_loss_lr"]), -1.0, delta=0.1)
        with_glitch = hyperdial.lr_range_suggestion(lrs, smoothed, skip_start=0, skip_end=0)
        self.assertNotEqual(with_glitch["min_loss_lr"], got["min_loss_lr"])

    def test_too_few_points_give_no_suggestion_and_a_reason(self):
        lrs = hyperdial.lr_range_schedule(1e-3, 1.0, 19)
        got = hyperdial.lr_range_suggestion(lrs, [1.0] * 19)
        self.assertIsNone(got["suggested_lr"])
        self.assertIn("4 points are left", got["reason"])

    def test_the_stored_result_carries_settings_and_suggestion(self):
        run = Recorder()
        test = hyperdial.lr_range_test(1e-5, 10.0, steps=121, run=run)
        drive(test, bowl)
        stored = run.summary["lr_range_test"]
        self.assertEqual(stored["rule"], "tenth_min_loss")
        self.assertEqual((stored["min_lr"], stored["max_lr"], stored["steps"]), (1e-5, 10.0, 121))
        self.assertEqual(stored["stop"], "diverged")
        self.assertGreater(stored["divergence_lr"], stored["min_loss_lr"])
        self.assertEqual(stored["suggested_lr"], stored["tenth_min_loss_lr"])
        self.assertEqual([sorted(p) for p in run.points[:1]], [["loss", "loss_smoothed", "lr"]])
        json.dumps(stored)  # storable as is


class ExampleTests(unittest.TestCase):
    """The quickstart's network and data: the suggestion against a grid of learning rates."""

    def test_the_suggestion_trains_as_well_as_the_best_of_the_grid(self):
        # Two seeds here; bench/results/lr-range-test.md has the six-seed run of compare.py.
        proc = subprocess.run([sys.executable, os.path.join(EXAMPLE, "compare.py"), "--seeds",
                               "2", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=300)
        rows = json.loads(proc.stdout)
        self.assertEqual(len(rows), 2, proc.stderr)
        for row in rows:
            self.assertLessEqual(row["val_loss"], 1.10 * row["best_grid_val_loss"], row)
            self.assertTrue(row["ok"])
            # a suggestion inside the range where training works, below the divergence point
            self.assertLess(row["suggested_lr"], row["divergence_lr"])
        self.assertEqual(proc.returncode, 0, proc.stderr)


if __name__ == "__main__":
    unittest.main()
