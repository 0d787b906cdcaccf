"""Tests of the multi-objective suite: hypervolume, tasks, scores (standard library only).

    python3 -m unittest discover -s bench/quality -p 'test_*.py' -v
"""

import itertools
import math
import os
import random
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import multi  # noqa: E402
import run as bench  # noqa: E402


def _cells_dominated(points, ref):
    """Brute force for integer points: the unit cells of [0, ref) whose lower corner some point
    weakly dominates."""
    count = 0
    for cell in itertools.product(*[range(r) for r in ref]):
        if any(all(p[i] <= cell[i] for i in range(len(ref))) for p in points):
            count += 1
    return count


class Hypervolume(unittest.TestCase):
    def test_two_points_in_two_dimensions(self):
        # [1,3]x[2,3] and [2,3]x[1,3] overlap in [2,3]x[2,3]: 2 + 2 - 1.
        self.assertEqual(multi.hypervolume([(1, 2), (2, 1)], (3, 3)), 3.0)

    def test_one_point_is_a_box(self):
        self.assertEqual(multi.hypervolume([(0, 0, 0)], (1, 2, 3)), 6.0)
        self.assertEqual(multi.hypervolume([(0.5,)], (2,)), 1.5)

    def test_dominated_repeated_and_outside_points_add_nothing(self):
        base = multi.hypervolume([(1, 2), (2, 1)], (3, 3))
        more = [(1, 2), (2, 1), (2, 2), (1, 2), (2.5, 2.5), (0, 4), (4, 0), (3, 0)]
        self.assertEqual(multi.hypervolume(more, (3, 3)), base)
        self.assertEqual(multi.hypervolume([(5, 5)], (3, 3)), 0.0)
        self.assertEqual(multi.hypervolume([], (3, 3)), 0.0)
        self.assertEqual(multi.hypervolume([(float("nan"), 1)], (3, 3)), 0.0)

    def test_matches_counting_cells_in_three_and_four_dimensions(self):
        # Integer points in [0, 5)^m: ties in every objective, repeats, dominated points.
        rng = random.Random(7)
        for m, n in ((2, 12), (3, 1), (3, 6), (3, 15), (3, 40), (4, 8)) * 4:
            ref = (5,) * m
            pts = [tuple(rng.randrange(5) for _ in range(m)) for _ in range(n)]
            self.assertEqual(multi.hypervolume(pts, ref), _cells_dominated(pts, ref), pts)

    def test_known_fronts(self):
        # ZDT1: the area above f2 = 1 - sqrt(f1) inside the unit square is 2/3.
        zdt1 = multi._zdt_front("zdt1")
        self.assertAlmostEqual(multi.hypervolume(zdt1, (1, 1)), 2 / 3, delta=1e-3)
        # DTLZ2's front (the unit sphere's octant) against (1, 1, 1): the cube less pi/6.
        sphere = multi._dtlz2_front(101)
        hv = multi.hypervolume(sphere, (1, 1, 1))
        self.assertLess(hv, 1 - math.pi / 6)
        self.assertGreater(hv, 1 - math.pi / 6 - 0.01)

    def test_pareto_front(self):
        pts = [(1, 3), (2, 2), (3, 1), (2, 3), (3, 3), (2, 2)]
        self.assertEqual(multi.pareto_front(pts), [(1, 3), (2, 2), (3, 1)])


class Tasks(unittest.TestCase):
    def test_synthetic_points_on_the_front(self):
        x = {"x%d" % i: 0.0 for i in range(6)}
        for f1 in (0.0, 0.25, 0.81):
            x["x0"] = f1
            self.assertAlmostEqual(multi.zdt1(x)[1], 1 - math.sqrt(f1))
            self.assertAlmostEqual(multi.zdt2(x)[1], 1 - f1 ** 2)
        d = {"x%d" % i: 0.5 for i in range(6)}
        d["x0"], d["x1"] = 0.3, 0.7
        self.assertAlmostEqual(math.sqrt(sum(v * v for v in multi.dtlz2(d))), 1.0)
        d["x5"] = 1.0  # off the front: the radius grows by g = 0.25
        self.assertAlmostEqual(math.sqrt(sum(v * v for v in multi.dtlz2(d))), 1.25)

    def test_known_bounds_hold_over_the_domain(self):
        rng = random.Random(3)
        for name in ("zdt1", "zdt2", "zdt3", "dtlz2"):
            spec = bench.TASKS[name]
            lo, hi = spec["bounds"]
            for _ in range(300):
                v = spec["f"]({"x%d" % i: rng.random() for i in range(6)})
                for x, a, b in zip(v, lo, hi):
                    self.assertTrue(a - 1e-9 <= x <= b + 1e-9, (name, v))

    def test_list_tasks_read_the_table_and_count_the_cost(self):
        import lists
        f = bench.TASKS["forest-wine-mo-list"]["f"]
        cfg = {"n_estimators": 16, "max_depth": 3, "min_samples_split": 8,
               "max_features": 1.0, "criterion": "entropy"}
        lk = lists.lookup("forest-wine-list")
        self.assertEqual(f(cfg), [lk.true[lk.index(cfg)], 48.0])
        g = bench.TASKS["mlp-digits-mo-list"]["f"]
        cfg = {"hidden": 32, "alpha": 1e-3, "lr": 1e-2, "batch_size": 64,
               "activation": "tanh"}
        self.assertEqual(g(cfg)[1], (65 * 32 + 10 * 33) * 5)
        with self.assertRaises(ValueError):
            g(dict(cfg, hidden=33))

    def test_every_multi_task_is_in_the_suite_with_its_objectives(self):
        self.assertEqual(sorted(bench.SUITES["multi"]), sorted(multi.tasks()))
        for t in bench.SUITES["multi"]:
            self.assertIn(len(bench.TASKS[t]["objectives"]), (2, 3))


class Scores(unittest.TestCase):
    def _rec(self, o, t, s, values):
        return {"optimizer": o, "task": t, "seed": s, "status": "ok", "values": values}

    def test_best_known_front_scores_one_and_ranks_follow_hypervolume(self):
        front = multi._zdt_front("zdt1", 101)
        good = [list(p) for p in front] * 1
        poor = [[p[0], p[1] + 3.0] for p in front]
        recs = [self._rec("a", "zdt1", 0, good[:100]), self._rec("b", "zdt1", 0, poor[:100])]
        sc, _ = multi.scores(recs, {"zdt1": bench.TASKS["zdt1"]}, ["a", "b"])
        self.assertGreater(sc[("a", "zdt1", 0)][100], sc[("b", "zdt1", 0)][100])
        self.assertLessEqual(sc[("a", "zdt1", 0)][100], 1.0 + 1e-9)
        sm = multi.summarize(sc, ["a", "b"], ["zdt1"])
        self.assertEqual(sm[100]["a"][1], 1.0)
        self.assertEqual(sm[100]["b"][1], 2.0)
        self.assertEqual(sm[100]["a"][2], 1)

    def test_real_tasks_scale_by_the_pooled_trials(self):
        spec = {"svm-cancer-mo": bench.TASKS["svm-cancer-mo"]}
        recs = [self._rec("a", "svm-cancer-mo", 0, [[0.1, 100.0], [0.3, 10.0]] * 50),
                self._rec("b", "svm-cancer-mo", 0, [[0.2, 200.0]] * 100)]
        refs = multi.references(recs, spec)
        lo, hi, _ = refs["svm-cancer-mo"]
        self.assertEqual((lo, hi), ([0.1, 10.0], [0.3, 200.0]))
        sc, _ = multi.scores(recs, spec, ["a", "b"])
        # a holds the pooled front: it scores 1.
        self.assertAlmostEqual(sc[("a", "svm-cancer-mo", 0)][20], 1.0)
        self.assertLess(sc[("b", "svm-cancer-mo", 0)][20], 1.0)


if __name__ == "__main__":
    unittest.main()
