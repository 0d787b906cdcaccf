"""Random sampling, per distribution: hyperdial's draws against W&B's.

hyperdial draws with `hyperdial space FILE --sample N --seed S` (the code random search uses);
W&B's draws come from `sweeps` 0.3.0's `HyperParameter.sample()` (what its random search
calls), seeded. For every distribution, a two-sample test decides whether both samples come
from the same distribution: Kolmogorov-Smirnov for continuous ones, chi-square on the value
counts for discrete ones. The distributions are a fixed list (every family, edge cases)
plus seeded random parameterizations of each family. The family-wise false-alarm rate is
ALPHA, split over the tests (Bonferroni). Seeds are fixed, so a run is reproducible; the power check below shows the
tests do reject a distribution that is slightly off. The types of the values (int or float)
must agree too.
"""

import random
import unittest
import warnings

from conformance.wandb import _hyperdial as H

N = 2000
SEED = 7
ALPHA = 1e-3

# name -> (spec, kind); every distribution of W&B's schema, and inference paths.
SPECS = {
    "constant": ({"value": 0.5}, "discrete"),
    "categorical": ({"values": ["a", "b", 3, 4.5, True]}, "discrete"),
    "categorical_dup": ({"values": [1, 1, 2]}, "discrete"),
    "categorical_w_probabilities": (
        {"values": ["x", "y", "z"], "probabilities": [0.2, 0.5, 0.3]}, "discrete"),
    "int_uniform": ({"min": -3, "max": 12}, "discrete"),
    "uniform": ({"min": 0, "max": 0.5}, "continuous"),
    "uniform_floats": ({"min": -2.5, "max": 7.25}, "continuous"),
    "q_uniform": ({"distribution": "q_uniform", "min": 0, "max": 10, "q": 2}, "discrete"),
    "q_uniform_float": ({"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.25},
                        "discrete"),
    "log_uniform_values": ({"distribution": "log_uniform_values", "min": 1e-5, "max": 0.1},
                           "continuous"),
    "inv_log_uniform_values": (
        {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 100}, "continuous"),
    "q_log_uniform_values": (
        {"distribution": "q_log_uniform_values", "min": 1, "max": 256, "q": 1}, "discrete"),
    "log_uniform": ({"distribution": "log_uniform", "min": -9.2, "max": -2.3}, "continuous"),
    "inv_log_uniform": ({"distribution": "inv_log_uniform", "min": 0.5, "max": 4},
                        "continuous"),
    # exp(min) and exp(max) are multiples of q, so rounding never leaves the bounds (where
    # hyperdial and W&B differ on purpose: see the last test).
    "q_log_uniform": ({"distribution": "q_log_uniform", "min": 1.3862943611198906,
                       "max": 4.1588830833596715, "q": 4}, "discrete"),
    "normal": ({"distribution": "normal", "mu": 1.5, "sigma": 0.3}, "continuous"),
    "q_normal": ({"distribution": "q_normal", "mu": 10, "sigma": 3}, "discrete"),
    "log_normal": ({"distribution": "log_normal", "mu": -1, "sigma": 0.5}, "continuous"),
    "q_log_normal": ({"distribution": "q_log_normal", "mu": 2, "sigma": 0.4, "q": 1},
                     "discrete"),
    "beta": ({"distribution": "beta", "a": 2, "b": 5}, "continuous"),
    "q_beta": ({"distribution": "q_beta", "a": 0.5, "b": 0.5, "q": 0.1}, "discrete"),
    "nested.inner": ({"min": 1.0, "max": 2.0}, "continuous"),
}


def _generated_specs(seed):
    """Random parameterizations of each family (bounded quantized ones on multiples of q, so
    rounding stays inside the bounds, where the two differ on purpose)."""
    rng = random.Random(seed)
    out = {}
    for i in range(2):
        lo = round(rng.uniform(-10, 10), 3)
        out["g_uniform_{}".format(i)] = ({"min": lo, "max": lo + round(rng.uniform(0.1, 20), 3)},
                                         "continuous")
        lo = rng.randint(-50, 50)
        out["g_int_uniform_{}".format(i)] = ({"min": lo, "max": lo + rng.randint(1, 30)},
                                             "discrete")
        lo = 10 ** rng.uniform(-6, 0)
        for name in ("log_uniform_values", "inv_log_uniform_values"):
            out["g_{}_{}".format(name, i)] = (
                {"distribution": name, "min": lo, "max": lo * 10 ** rng.uniform(0.5, 4)},
                "continuous")
        out["g_normal_{}".format(i)] = ({"distribution": "normal", "mu": rng.uniform(-5, 5),
                                         "sigma": rng.uniform(0.1, 3)}, "continuous")
        out["g_log_normal_{}".format(i)] = ({"distribution": "log_normal",
                                             "mu": rng.uniform(-2, 2),
                                             "sigma": rng.uniform(0.1, 1)}, "continuous")
        out["g_beta_{}".format(i)] = ({"distribution": "beta", "a": rng.uniform(0.3, 5),
                                       "b": rng.uniform(0.3, 5)}, "continuous")
        q = rng.choice([1, 2, 0.5, 0.25])
        k = rng.randint(-10, 10)
        out["g_q_uniform_{}".format(i)] = ({"distribution": "q_uniform", "min": k * q,
                                            "max": (k + rng.randint(1, 12)) * q, "q": q},
                                           "discrete")
        out["g_q_normal_{}".format(i)] = ({"distribution": "q_normal", "mu": rng.uniform(-5, 5),
                                           "sigma": rng.uniform(0.5, 3),
                                           "q": rng.choice([1, 0.5, 2])}, "discrete")
        weights = [rng.randint(1, 9) for _ in range(rng.randint(2, 5))]
        out["g_weighted_{}".format(i)] = (
            {"values": ["v{}".format(j) for j in range(len(weights))],
             "probabilities": [w / sum(weights) for w in weights]}, "discrete")
    return out


SPECS.update(_generated_specs(11))


def _flow(spec):
    return H.yaml.safe_dump(spec, default_flow_style=True, width=1000).strip()


def _config_yaml():
    lines = ["method: random", "program: t.py", "parameters:"]
    for name, (spec, _) in SPECS.items():
        if "." in name:
            outer, inner = name.split(".")
            lines.append("  {}:\n    parameters:\n      {}: {}".format(
                outer, inner, _flow(spec)))
        else:
            lines.append("  {}: {}".format(name, _flow(spec)))
    return "\n".join(lines) + "\n"


def wb_draws(spec, n, seed):
    """n draws of W&B's random search for one parameter."""
    random.seed(seed)
    hp = H.wb_params.HyperParameter("p", spec)
    return [H.wb_value(hp.sample()) for _ in range(n)]


def _key(v):
    """A hashable identity of a drawn value that keeps its type (1 and 1.0 differ)."""
    if isinstance(v, float):
        return ("float", round(v, 9))
    return (type(v).__name__, repr(v))


def two_sample_p(kind, a, b):
    """The p-value of the two-sample test of `kind` for samples a and b."""
    from scipy import stats
    if kind == "continuous":
        return stats.ks_2samp(a, b).pvalue
    keys = sorted({_key(v) for v in a + b})
    counts = [[sum(1 for v in s if _key(v) == k) for k in keys] for s in (a, b)]
    # Pool values too rare for the chi-square approximation (expected count < 5).
    total = [x + y for x, y in zip(*counts)]
    kept = [i for i, t in enumerate(total) if t >= 10]
    rare = [i for i, t in enumerate(total) if t < 10]
    table = [[row[i] for i in kept] + ([sum(row[i] for i in rare)] if rare else [])
             for row in counts]
    table = [[x for x, t in zip(row, map(sum, zip(*table))) if t > 0] for row in table]
    if len(table[0]) < 2:
        return 1.0 if counts[0] == counts[1] or len(keys) == 1 else 0.0
    return stats.chi2_contingency(table).pvalue


@H.requires_wandb()
class SamplingConformance(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.scratch = H.Scratch()
        path = cls.scratch.write(_config_yaml())
        cls.hd = H.hd_sample(path, N, SEED)

    @classmethod
    def tearDownClass(cls):
        cls.scratch.close()

    def hd_draws(self, name):
        return [line["params"][name] for line in self.hd]

    def test_every_distribution_matches(self):
        threshold = ALPHA / len(SPECS)  # Bonferroni over the distributions
        failures = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, (name, (spec, kind)) in enumerate(SPECS.items()):
                hd = self.hd_draws(name)
                wb = wb_draws(dict(spec), N, SEED + i)
                p = two_sample_p(kind, hd, wb)
                if p < threshold:
                    failures.append("{}: p = {:.2e} < {:.1e}".format(name, p, threshold))
                types_hd = {type(v).__name__ for v in hd}
                types_wb = {type(v).__name__ for v in wb}
                if types_hd != types_wb:
                    failures.append("{}: types {} vs {}".format(name, types_hd, types_wb))
        self.assertEqual(failures, [])

    def test_the_tests_have_power(self):
        """A distribution slightly off is rejected: the comparison above can fail."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = wb_draws({"min": 0.0, "max": 0.55}, N, 1)
            self.assertLess(two_sample_p("continuous", self.hd_draws("uniform"), wb),
                            ALPHA / len(SPECS))
            wb = wb_draws({"values": ["x", "y", "z"], "probabilities": [0.3, 0.4, 0.3]},
                          N, 2)
            self.assertLess(two_sample_p(
                "discrete", self.hd_draws("categorical_w_probabilities"), wb),
                ALPHA / len(SPECS))

    def test_quantized_values_stay_in_bounds(self):
        """Pinned difference: W&B's rounding can leave [min, max]; hyperdial's cannot."""
        spec = {"distribution": "q_uniform", "min": 0, "max": 1, "q": 0.6}
        text = "method: random\nprogram: t.py\nparameters:\n  x: {}\n".format(
            _flow(spec))
        hd = [line["params"]["x"] for line in H.hd_sample(self.scratch.write(text), 400, 3)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = wb_draws(spec, 400, 3)
        self.assertIn(1.2, [round(v, 9) for v in wb])
        self.assertEqual(sorted({round(v, 9) for v in hd}), [0.0, 0.6])


if __name__ == "__main__":
    unittest.main()
