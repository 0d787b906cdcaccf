"""Tests of the values-list tasks and of the report's incumbent rule (standard library only).

    python3 -m unittest discover -s bench/quality -p 'test_*.py' -v
"""

import math
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lists  # noqa: E402
import report  # noqa: E402
import run as bench  # noqa: E402


class Tables(unittest.TestCase):
    def test_every_table_holds_its_whole_grid(self):
        for base in lists.TABLE_TASKS:
            rows = lists.read_table(base)
            self.assertEqual(len(rows), len(lists.grid(lists.SPACES[base])), base)
            for reps in rows:
                self.assertEqual(len(reps), lists.REPLICATES)
                self.assertTrue(all(math.isfinite(x) for x in reps), base)

    def test_spaces_are_the_size_real_sweep_files_have(self):
        for base, space in lists.SPACES.items():
            n = len(lists.grid(space))
            if base in lists.COMPUTED_NOISY and base not in lists.SYNTHETIC_TASKS:
                # The large grids: network-training spaces of 10^4-10^5 configurations.
                self.assertTrue(5 <= len(space) <= 9, base)
                self.assertTrue(10_000 <= n <= 100_000, (base, n))
            else:
                self.assertTrue(3 <= len(space) <= 7, base)
                self.assertTrue(50 <= n <= 5000, (base, n))

    def test_a_table_that_misses_a_row_is_refused(self):
        base = "svm-cancer"
        with open(lists.table_path(base)) as f:
            lines = f.read().splitlines()
        saved = lists.TABLES
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, base + ".csv"), "w") as f:
                f.write("\n".join(lines[:-1]) + "\n")
            lists.TABLES = d
            try:
                with self.assertRaises(ValueError):
                    lists.read_table(base)
            finally:
                lists.TABLES = saved


class Lookup(unittest.TestCase):
    def test_index_accepts_each_numeric_form_of_a_listed_value(self):
        lk = lists.lookup("forest-wine-list")
        cfg = {"n_estimators": 16, "max_depth": 3, "min_samples_split": 8,
               "max_features": 1.0, "criterion": "entropy"}
        i = lk.index(cfg)
        self.assertEqual(lk.configs[i], (16, 3, 8, 1.0, "entropy"))
        # An int where the list has 1.0, a float where it has 16: the same configuration.
        self.assertEqual(lk.index(dict(cfg, max_features=1, n_estimators=16.0)), i)

    def test_a_value_off_the_list_is_an_error(self):
        lk = lists.lookup("svm-cancer-list")
        with self.assertRaises(ValueError):
            lk.index({"C": 2.0, "gamma": 0.01, "kernel": "rbf"})
        with self.assertRaises(ValueError):
            lk.index({"C": 1, "gamma": 0.01, "kernel": "linear"})

    def test_noise_is_the_same_draws_for_every_run_of_a_seed(self):
        lk = lists.lookup("mlp-digits-list-noisy")
        a, b = lk.draws(3), lk.draws(3)
        first = [next(a) for _ in range(100)]
        self.assertEqual(first, [next(b) for _ in range(100)])
        c = lk.draws(4)
        self.assertNotEqual(first, [next(c) for _ in range(100)])
        self.assertTrue(set(first) <= set(range(lists.REPLICATES)))
        self.assertGreater(len(set(first)), 1)

    def test_noisy_observations_average_to_the_true_value(self):
        lk = lists.lookup("enet-diabetes-list-noisy")
        det = lists.lookup("enet-diabetes-list")
        for idx in (0, 17, len(lk.configs) - 1):
            obs = [lk.observe(idx, k)[0] for k in range(lists.REPLICATES)]
            self.assertAlmostEqual(sum(obs) / len(obs), lk.true[idx], places=9)
            self.assertEqual(det.observe(idx, 2), (det.true[idx], det.true[idx]))
        # The noise is real: some configuration's observations differ.
        self.assertTrue(any(lk.observe(i, 0)[0] != lk.observe(i, 1)[0]
                            for i in range(len(lk.configs))))

    def test_computed_noise_is_seeded_gaussian_and_centred_on_the_true_value(self):
        for task in ("hartmann6-list-noisy", "mlp9-list-noisy", "cell6-list-noisy"):
            lk = lists.lookup(task)
            a, b = lk.draws(5), lk.draws(5)
            first = [next(a) for _ in range(2000)]
            self.assertEqual(first[:100], [next(b) for _ in range(100)])
            mean = sum(first) / len(first)
            sd = math.sqrt(sum((z - mean) ** 2 for z in first) / len(first))
            self.assertLess(abs(mean), 0.1, task)
            self.assertLess(abs(sd - 1.0), 0.1, task)
            idx = len(lk.configs) // 3
            obs, true = lk.observe(idx, 1.5)
            self.assertEqual(true, lk.true[idx])
            self.assertAlmostEqual(obs, lk.true[idx] + 1.5 * lk.sd[idx], places=12)

    def test_computed_noise_is_heteroscedastic_and_of_a_realistic_size(self):
        for task in ("hartmann6-list-noisy", "mlp9-list-noisy", "cell6-list-noisy"):
            lk = lists.lookup(task)
            order = sorted(range(len(lk.configs)), key=lambda i: lk.true[i])
            best, middling = order[0], order[len(order) // 2]
            # Worse configurations are noisier.
            self.assertLess(lk.sd[best], lk.sd[middling], task)
            # Near the optimum the noise is a tenth to a third of the gap to the median:
            # enough to reorder good configurations, not enough to hide the landscape.
            sd_all, sd_top = lk.noise_summary()
            gap = lk.median - lk.best
            self.assertTrue(0.05 <= sd_top / gap <= 0.35, (task, sd_top / gap))
            # One best configuration, as a table of real training runs has.
            self.assertEqual(sum(t == lk.best for t in lk.true), 1, task)

    def test_large_grids_hold_string_categoricals_and_every_value_is_reachable(self):
        lk = lists.lookup("mlp9-list-noisy")
        self.assertEqual(len(lk.configs), 62_208)
        self.assertTrue(any(isinstance(c, str) for p in lk.space for c in p["choices"]))
        cell = lists.lookup("cell6-list-noisy")
        self.assertEqual(len(cell.configs), 5 ** 6)
        # A cell whose output is cut off from the input scores chance error.
        cut = {"edge_%d_%d" % e: "none" for e in lists.CELL_EDGES}
        cut["edge_1_0"] = "conv3x3"
        self.assertEqual(cell.true[cell.index(cut)], 0.9)
        # The best cell is connected and far better than the median.
        self.assertLess(cell.best, cell.median)
        # The MLP's best learning rate depends on the batch size (an interaction).
        names = [p["name"] for p in lk.space]
        best = dict(zip(names, lk.configs[min(range(len(lk.true)), key=lk.true.__getitem__)]))
        def best_lr(batch):
            cands = [dict(best, batch_size=batch, lr=lr) for lr in lk.space[0]["choices"]]
            return min(cands, key=lambda c: lk.true[lk.index(c)])["lr"]
        self.assertLess(best_lr(8), best_lr(64))

    def test_synthetic_grid_optimum(self):
        lk = lists.lookup("rosenbrock5-list")
        self.assertEqual(lk.best, 0.0)
        self.assertEqual(lk.true[lk.index({"x%d" % i: 1 for i in range(5)})], 0.0)


class Incumbent(unittest.TestCase):
    def _records(self, task, values, trues, optimizer="random", seed=0):
        return {"optimizer": optimizer, "task": task, "seed": seed, "budget": len(values),
                "status": "ok", "values": values, "true_values": trues,
                "configs": list(range(len(values))), "suggest_s": [0.0] * len(values)}

    def test_regret_is_the_true_value_of_the_best_observed_trial(self):
        task = "svm-cancer-list-noisy"
        lk = lists.lookup(task)
        scale = lk.median - lk.best
        # Trial 2 is observed best (a lucky draw) but truly worse than trial 1.
        values = [lk.median, lk.best + 0.5 * scale, lk.best - scale] + [lk.median] * 97
        trues = [lk.median, lk.best + 0.1 * scale, lk.best + 0.8 * scale] + [lk.median] * 97
        a = report.analyse([self._records(task, values, trues)], ["random"], [task],
                           {task: (lk.best, lk.median)})
        regret = a["table"][(task, "random", 20)][0]
        self.assertAlmostEqual(regret, 0.8, places=9)

    def test_versions_are_ranked_against_the_peers_separately(self):
        f = report.fields(["random", "optuna-tpe", "hyperdial-bayes", "hyperdial-bayes@before",
                           "hyperdial-tpe@before"])
        self.assertEqual(f[""], ["random", "optuna-tpe", "hyperdial-bayes"])
        self.assertEqual(f["before"], ["random", "optuna-tpe", "hyperdial-bayes@before",
                                       "hyperdial-tpe@before"])

    def test_every_optimizer_sees_a_values_list_as_a_list(self):
        space = lists.SPACES["mlp-digits"]
        params = bench._wandb_like_params(space)
        for p in space:
            self.assertEqual(params[p["name"]], {"values": p["choices"]})


if __name__ == "__main__":
    unittest.main()
