"""Tests of compare.py, the paired comparison of labels (standard library only).

    python3 -m unittest discover -s bench/quality -p 'test_*.py' -v
"""

import math
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import compare  # noqa: E402


def record(values, true_values):
    return {"values": values, "true_values": true_values}


class Compare(unittest.TestCase):
    def test_regret_is_the_true_value_of_the_best_observed_trial(self):
        # The lucky draw (observed 0.1) is the incumbent, scored by its true value 0.6.
        r = record([0.5, 0.1, 0.3] + [1.0] * 97, [0.5, 0.6, 0.3] + [1.0] * 97)
        self.assertAlmostEqual(compare.regret(r, 20, 0.0, 1.0), 0.6)
        # Normalized by the task's best and median; never below 0.
        self.assertAlmostEqual(compare.regret(r, 20, 0.1, 1.1), 0.5)
        self.assertEqual(compare.regret(r, 20, 0.7, 1.0), 0.0)
        # Too short for the budget.
        self.assertIsNone(compare.regret(record([0.1], [0.1]), 20, 0.0, 1.0))

    def test_a_reported_estimate_is_the_incumbent_of_its_own_label(self):
        import json
        import tempfile
        rec = {"optimizer": "hyperdial-bayes", "task": "a-list-noisy", "seed": 0,
               "status": "ok", "values": [0.5, 0.1, 0.3] + [1.0] * 97,
               "true_values": [0.5, 0.6, 0.3] + [1.0] * 97,
               "estimates": {"20": 2, "50": 2, "100": 0}}
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            f.write(json.dumps(rec) + "\n")
        try:
            runs = compare.load([f.name])
        finally:
            os.unlink(f.name)
        self.assertEqual(sorted(runs), ["hyperdial-bayes", "hyperdial-bayes+estimate"])
        key = ("a-list-noisy", 0)
        # The best observed value is the lucky draw (true 0.6); the estimate is trial 2
        # (true 0.3) after 20 and 50 trials, trial 0 (true 0.5) after 100.
        self.assertAlmostEqual(compare.regret(runs["hyperdial-bayes"][key], 20, 0.0, 1.0), 0.6)
        est = runs["hyperdial-bayes+estimate"][key]
        self.assertAlmostEqual(compare.regret(est, 20, 0.0, 1.0), 0.3)
        self.assertAlmostEqual(compare.regret(est, 100, 0.0, 1.0), 0.5)

    def test_paired_difference_and_its_standard_error(self):
        def run(true):
            return record([true] * 100, [true] * 100)
        base = {("a-list", s): run(0.2 + 0.1 * (s % 2)) for s in range(4)}
        # The variant is 0.1 better on every seed but one, where it is level.
        variant = {("a-list", s): run(base[("a-list", s)]["true_values"][0] - (0.1 if s else 0.0))
                   for s in range(4)}
        runs = {"base": base, "variant": variant}
        rows = compare.compare(runs, ["base", "variant"], "base",
                               compare.seed_ranges("0-3"), {"a-list": (0.0, 1.0)})
        row = [r for r in rows if r[0] == 100 and r[1] == "all" and r[3] == "variant"][0]
        diffs = [0.0, -0.1, -0.1, -0.1]
        mean = sum(diffs) / 4
        sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 3)
        self.assertAlmostEqual(row[5], mean)
        self.assertAlmostEqual(row[6], sd / 2)
        self.assertEqual(row[7], 4)
        # The base has no difference; no noisy group exists.
        base_row = [r for r in rows if r[0] == 100 and r[1] == "all" and r[3] == "base"][0]
        self.assertIsNone(base_row[5])
        self.assertFalse([r for r in rows if r[1] == "noisy"])

    def test_only_groups_every_label_finished_are_counted(self):
        full = {("t-list-noisy", s): record([0.5] * 100, [0.5] * 100) for s in range(3)}
        part = {k: v for k, v in full.items() if k[1] != 2}
        rows = compare.compare({"x": full, "y": part}, ["x", "y"], "x",
                               compare.seed_ranges("0-2"), {"t-list-noisy": (0.0, 1.0)})
        self.assertTrue(rows)
        self.assertTrue(all(r[7] == 2 for r in rows))

    def test_per_task_groups_split_the_suite_by_task(self):
        runs = {"x": {(t, s): record([v] * 100, [v] * 100)
                      for t, v in (("a-list", 0.2), ("b-list-noisy", 0.6)) for s in range(2)}}
        known = {"a-list": (0.0, 1.0), "b-list-noisy": (0.0, 1.0)}
        rows = compare.compare(runs, ["x"], "x", compare.seed_ranges("0-1"), known,
                               compare.task_groups(["b-list-noisy", "a-list"]))
        at100 = {r[1]: r[4] for r in rows if r[0] == 100}
        self.assertEqual(set(at100), {"a-list", "b-list-noisy"})
        self.assertAlmostEqual(at100["a-list"], 0.2)
        self.assertAlmostEqual(at100["b-list-noisy"], 0.6)

    def test_seed_ranges(self):
        self.assertEqual(compare.seed_ranges("0-9,10-19,5"),
                         [("0-9", range(0, 10)), ("10-19", range(10, 20)), ("5", range(5, 6))])


if __name__ == "__main__":
    unittest.main()
