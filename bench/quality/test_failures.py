"""Tests of the crash-region tasks and their report (standard library only).

    python3 -m unittest discover -s bench/quality -p 'test_*.py' -v
"""

import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import failures  # noqa: E402


class CrashSynth(unittest.TestCase):
    def test_minimum_sits_below_the_divergence_limit(self):
        # Batch 64 (b = 6): the best-scaled rate is 10^-2.45; the optimum 0.4 decades above.
        best = {"lr": 10 ** (-2.45 + 0.4), "batch": 64, "wd": 1e-4, "dropout": 0.2}
        self.assertAlmostEqual(failures.crash_synth(best), 0.1)
        # 0.1 decade further still runs; past 0.6 decades above the scaled rate it fails.
        self.assertIsNotNone(failures.crash_synth(dict(best, lr=10 ** (-2.45 + 0.55))))
        self.assertIsNone(failures.crash_synth(dict(best, lr=10 ** (-2.45 + 0.65))))
        # A larger batch moves the limit up: the same rate runs with batch 512.
        self.assertIsNotNone(failures.crash_synth(dict(best, lr=10 ** (-2.45 + 0.65),
                                                       batch=512)))


class Report(unittest.TestCase):
    def test_failed_trials_are_counted_and_skipped_in_the_regret(self):
        rec = lambda opt, values: {"optimizer": opt, "task": "crash-synth", "seed": 0,
                                   "status": "ok", "values": values}
        records = [rec("random", [None, 1.1, 2.1]),
                   rec("hyperdial-bayes", [None, None, 0.6]),
                   rec("hyperdial-tpe", [None, None, None])]
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.md")
            failures.write(records, path, "cmd", "", ["hyperdial-bayes", "hyperdial-tpe",
                                                      "random"],
                           ["crash-synth"], {"crash-synth": 0.1})
            with open(path) as f:
                text = f.read()
        # Random's median is 1.6: bayes's best 0.6 is (0.6 − 0.1)/(1.6 − 0.1) = 1/3.
        self.assertIn("| hyperdial-bayes | 1 | 2.0 | 0.333 ± 0.000 |", text)
        # No successful trial: regret 1.
        self.assertIn("| hyperdial-tpe | 1 | 3.0 | 1.000 ± 0.000 |", text)


if __name__ == "__main__":
    unittest.main()
