"""Config acceptance and the inferred distribution of every parameter: hyperdial against
W&B's `sweeps` 0.3.0 (its schema, its parameter inference, its first suggestion) and PyYAML
(W&B's YAML reader).

Compared on the real sweep files of the corpus and on generated configs (a fixed seed):
every distribution with and without `distribution:`, every inference path, nesting, and edge
values. Wherever the two disagree, the disagreement must be one of DIFFERENCES, each listed in
docs/config.md under "Differences from W&B" and pinned by a test below.
"""

import math
import os
import random
import re
import unittest
import warnings

from conformance.wandb import _hyperdial as H

# Deliberate differences: key -> a phrase of its entry in docs/config.md.
DIFFERENCES = {
    "yaml12-numbers": "`1e-5` and `2E3` are numbers",
    "deprecated-log": "The deprecated `log_uniform`, `inv_log_uniform` and `q_log_uniform`",
    "launch-keys": "W&B Launch keys",
    "min-equals-max": "`min` equal to `max`",
    "zero-shape": "`sigma`, `a` or `b` of 0",
    "q-without-multiple": "A bounded quantized range with no multiple of `q`",
    "infinite-range": "ranges whose width overflows",
    "yaml-leading-zero": "leading zero",
    "yaml-sexagesimal": "`1:30`",
    "non-finite-json": "`.inf`, `-.inf` and `.nan` values",
    "bayes-weighted": "`categorical_w_probabilities` under `method: bayes`",
}

DOCS = os.path.join(H.REPO, "docs", "config.md")
SEED = 20261129
GENERATED = 250


def _float_text(v):
    """Whether `v` is a string YAML 1.2 reads as a number but PyYAML does not."""
    if not isinstance(v, str):
        return False
    return re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", v) is not None


def _specs(params, prefix=""):
    """(dotted name, spec) for every leaf parameter of a `parameters` mapping."""
    for name, spec in (params or {}).items():
        if isinstance(spec, dict) and "parameters" in spec and isinstance(spec["parameters"], dict):
            yield from _specs(spec["parameters"], prefix + name + ".")
        elif isinstance(spec, dict):
            yield prefix + name, spec


def _leaves(spec):
    for key in ("min", "max", "q", "mu", "sigma", "a", "b"):
        if key in spec:
            yield key, spec[key]
    for v in spec.get("probabilities") or []:
        yield "probabilities", v


def explain_acceptance(cfg, wb_ok, wb_reason, report):
    """The DIFFERENCES key that explains W&B and hyperdial disagreeing on accepting `cfg`."""
    params = list(_specs(cfg.get("parameters"))) if isinstance(cfg, dict) else []
    hd_msgs = " ".join(e["message"] for e in report.get("errors", []))
    hd_warn = " ".join(w["message"] for w in report.get("warnings", []))
    if report["valid"] and not wb_ok:
        if any(_float_text(v) for _, s in params for _, v in _leaves(s)):
            return "yaml12-numbers"
        if "uses log_uniform" in wb_reason or "uses inv_log_uniform" in wb_reason \
                or "uses q_log_uniform" in wb_reason:
            return "deprecated-log" if "exponent" in hd_warn else None
        if "not less than max" in wb_reason and "min equals max" in hd_warn:
            return "min-equals-max"
        if ("scheduler" in cfg or "job" in cfg) and "Launch" in hd_warn:
            return "launch-keys"
        if cfg.get("method") == "bayes" and wb_reason.startswith("IndexError") and any(
                "probabilities" in s for _, s in params):
            return "bayes-weighted"
    if wb_ok and not report["valid"]:
        if "must be greater than 0" in hd_msgs and any(
                s.get(k) == 0 for _, s in params for k in ("sigma", "a", "b")):
            return "zero-shape"
        if "no multiple of q" in hd_msgs:
            return "q-without-multiple"
        if "overflows" in hd_msgs or "out of range" in hd_msgs or "finite number" in hd_msgs:
            return "infinite-range"
    return None


def _num_equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return (math.isnan(a) and math.isnan(b)) or float(a) == float(b)
    return a == b


def _same_value(wb, hd):
    """Equal, with the types kept: 1 and 1.0 differ, as do "1" and 1."""
    if type(wb) is not type(hd):
        return False
    if isinstance(wb, list):
        return len(wb) == len(hd) and all(_same_value(a, b) for a, b in zip(wb, hd))
    if isinstance(wb, dict):
        return wb.keys() == hd.keys() and all(_same_value(wb[k], hd[k]) for k in wb)
    return _num_equal(wb, hd)


def compare_parameter(wb_dist, wb_spec, hd_spec):
    """Why W&B's reading of one parameter differs from hyperdial's: None when they agree, a
    DIFFERENCES key when the difference is deliberate, or a description."""
    if wb_dist != hd_spec["distribution"]:
        return "distribution {} vs {}".format(wb_dist, hd_spec["distribution"])
    for key in ("min", "max", "mu", "sigma", "a", "b"):
        if key in hd_spec and not _num_equal(wb_spec.get(key), hd_spec[key]):
            return "{} {!r} vs {!r}".format(key, wb_spec.get(key), hd_spec[key])
    if "q" in hd_spec:
        q = wb_spec.get("q")
        if not _num_equal(q, hd_spec["q"]["q"]) or \
                (isinstance(q, int) and not isinstance(q, bool)) != hd_spec["q"]["integer"]:
            return "q {!r} vs {!r}".format(q, hd_spec["q"])
    for key in ("values", "probabilities"):
        if key in hd_spec:
            wb_v, hd_v = wb_spec.get(key), hd_spec[key]
            if not _same_value(wb_v, hd_v):
                numbers = isinstance(wb_v, list) and len(wb_v) == len(hd_v) and all(
                    _same_value(a, b) or (_float_text(a) and isinstance(b, float))
                    for a, b in zip(wb_v, hd_v))
                return "yaml12-numbers" if numbers else "{} {!r} vs {!r}".format(key, wb_v, hd_v)
    if "value" in hd_spec and not _same_value(wb_spec.get("value"), hd_spec["value"]):
        if _float_text(wb_spec.get("value")) and isinstance(hd_spec["value"], float):
            return "yaml12-numbers"
        return "value {!r} vs {!r}".format(wb_spec.get("value"), hd_spec["value"])
    return None


class Compared:
    """W&B's and hyperdial's readings of one sweep file."""

    def __init__(self, path, text):
        self.path = path
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                self.cfg = H.wb_load(text)
                self.wb_ok, self.wb_reason = (H.wb_check(self.cfg) if isinstance(self.cfg, dict)
                                              else (False, "not a mapping"))
            except Exception as e:  # noqa: BLE001 - PyYAML's parse errors
                self.cfg, self.wb_ok, self.wb_reason = None, False, "yaml: {}".format(e)
        self.report = H.hd_validate(path)

    def problems(self, seen):
        """Unexplained disagreements, as text; explained ones are counted in `seen`."""
        out = []
        if self.wb_ok != self.report["valid"]:
            key = explain_acceptance(self.cfg or {}, self.wb_ok, self.wb_reason, self.report)
            if key is None:
                errors = [e["path"] + ": " + e["message"] for e in self.report.get("errors", [])]
                out.append("accepted by {}: W&B says {!r}; hyperdial says {}".format(
                    "W&B only" if self.wb_ok else "hyperdial only", self.wb_reason, errors[:3]))
            else:
                seen[key] = seen.get(key, 0) + 1
            return out
        if not self.wb_ok:
            return out
        wb = H.wb_parameters(self.cfg)
        hd = H.hd_parameters(self.report)
        if set(wb) != set(hd):
            out.append("parameters {} vs {}".format(sorted(wb), sorted(hd)))
            return out
        for name in sorted(wb):
            why = compare_parameter(wb[name][0], wb[name][1], hd[name])
            if why in DIFFERENCES:
                seen[why] = seen.get(why, 0) + 1
            elif why:
                out.append("{}: {}".format(name, why))
        return out


# ---- generated configs ----

def _num(rng, kind):
    if kind == "int":
        return rng.choice([0, 1, -3, 7, 10, 100, 2 ** 31, -1])
    return rng.choice([0.0, 0.5, -2.5, 1e-05, 0.001, 0.1, 3.0, 1e3, 12.75])


def _bounds(rng, kinds):
    lo, hi = _num(rng, kinds[0]), _num(rng, kinds[1])
    r = rng.random()
    if r < 0.08:
        return lo, lo  # equal bounds
    if r < 0.14:
        return max(lo, hi), min(lo, hi) - 1  # reversed
    if lo > hi:
        lo, hi = hi, lo
    if lo == hi:
        hi = hi + (1 if kinds[1] == "int" else 1.5)
    return lo, hi


def _value(rng, depth=0):
    r = rng.random()
    if r < 0.3:
        return rng.choice([0, 1, -1, 2, 1024])
    if r < 0.5:
        return rng.choice([0.0, 1.0, 0.1, -2.5, 1e-05, 3e10])
    if r < 0.7:
        return rng.choice(["adam", "sgd", "1", "true", "", "a b", "x=y"])
    if r < 0.8:
        return rng.choice([True, False, None])
    if depth < 1 and r < 0.9:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 2))]
    if depth < 1:
        return {"k": _value(rng, depth + 1), "j": _value(rng, depth + 1)}
    return "z"


def gen_spec(rng, depth=0):
    """One parameter specification; a mix of valid and invalid ones."""
    kinds = ["value", "values", "probs", "int_inferred", "uniform_inferred", "mixed_inferred",
             "int_uniform", "uniform", "q_uniform", "log_values", "log_exponents", "normal",
             "beta", "nested", "broken"]
    kind = rng.choice(kinds if depth < 2 else kinds[:-2])
    explicit = rng.random() < 0.4
    if kind == "value":
        spec = {"value": _value(rng)}
        return dict(spec, distribution="constant") if explicit else spec
    if kind == "values":
        spec = {"values": [_value(rng) for _ in range(rng.randint(1, 4))]}
        if rng.random() < 0.2:
            spec["values"].append(spec["values"][0])
        return dict(spec, distribution="categorical") if explicit else spec
    if kind == "probs":
        probs = rng.choice([[1.0], [0.25, 0.75], [0.2, 0.3, 0.5], [0.5, 0.4], [0.5, 0.5, 0.0],
                            [0.333333, 0.333333, 0.333334], [-0.5, 1.5]])
        values = [_value(rng) for _ in range(len(probs) if rng.random() < 0.9 else 1)]
        spec = {"values": values, "probabilities": probs}
        return dict(spec, distribution="categorical_w_probabilities") if explicit else spec
    if kind == "int_inferred":
        lo, hi = _bounds(rng, ("int", "int"))
        return {"min": lo, "max": hi}
    if kind == "uniform_inferred":
        lo, hi = _bounds(rng, ("float", "float"))
        return {"min": lo, "max": hi}
    if kind == "mixed_inferred":
        lo, hi = _bounds(rng, rng.choice([("int", "float"), ("float", "int")]))
        return {"max": hi, "min": lo} if rng.random() < 0.3 else {"min": lo, "max": hi}
    if kind == "int_uniform":
        lo, hi = _bounds(rng, rng.choice([("int", "int"), ("float", "float")]))
        return {"distribution": "int_uniform", "min": lo, "max": hi}
    if kind == "uniform":
        lo, hi = _bounds(rng, rng.choice([("int", "int"), ("float", "int"), ("float", "float")]))
        if rng.random() < 0.05:
            lo, hi = float("-inf"), float("inf")
        return {"distribution": "uniform", "min": lo, "max": hi}
    if kind == "q_uniform":
        lo, hi = _bounds(rng, rng.choice([("int", "int"), ("float", "float")]))
        spec = {"distribution": "q_uniform", "min": lo, "max": hi}
        q = rng.choice([None, 1, 2, 0.25, 0.1, 5.0, 0, -1, 100])
        return spec if q is None else dict(spec, q=q)
    if kind == "log_values":
        name = rng.choice(["log_uniform_values", "inv_log_uniform_values",
                           "q_log_uniform_values"])
        lo = rng.choice([1e-05, 0.001, 1, 0.5, 0, -1, 10])
        hi = rng.choice([0.1, 1, 100, 1e3, 2.0])
        spec = {"distribution": name, "min": lo, "max": hi}
        if name.startswith("q_") and rng.random() < 0.6:
            spec["q"] = rng.choice([1, 0.01, 10, 0.5])
        return spec
    if kind == "log_exponents":
        name = rng.choice(["log_uniform", "inv_log_uniform", "q_log_uniform"])
        lo, hi = _bounds(rng, ("float", "float"))
        return {"distribution": name, "min": lo, "max": hi}
    if kind == "normal":
        name = rng.choice(["normal", "q_normal", "log_normal", "q_log_normal"])
        spec = {"distribution": name}
        if rng.random() < 0.6:
            spec["mu"] = rng.choice([0, 1.5, -3, 10])
        if rng.random() < 0.6:
            spec["sigma"] = rng.choice([1, 0.5, 2, 0, -1])
        if name.startswith("q_") and rng.random() < 0.5:
            spec["q"] = rng.choice([1, 0.5, 2, 0.1])
        return spec
    if kind == "beta":
        name = rng.choice(["beta", "q_beta"])
        spec = {"distribution": name}
        if rng.random() < 0.6:
            spec["a"] = rng.choice([1, 2.5, 0.5, 0])
        if rng.random() < 0.6:
            spec["b"] = rng.choice([1, 3, 0.5])
        if name == "q_beta" and rng.random() < 0.5:
            spec["q"] = rng.choice([0.1, 0.25, 1])
        return spec
    if kind == "nested":
        return {"parameters": {"n{}".format(i): gen_spec(rng, depth + 1)
                               for i in range(rng.randint(1, 3))}}
    # broken: each is an error for both
    return rng.choice([
        {"min": 1},
        {"values": []},
        {"min": "low", "max": 1.0},
        {"min": True, "max": 5},
        {"vaules": [1, 2]},
        {"distribution": "gaussian", "mu": 0},
        {"distribution": "int_uniform", "values": [1, 2]},
        {"value": 1, "values": [1]},
        {"min": 1, "max": 5, "q": 1},
    ])


def gen_config(rng):
    method = rng.choice(["random", "random", "grid", "bayes"])
    cfg = {"program": "train.py", "method": method}
    if method == "bayes" or rng.random() < 0.3:
        cfg["metric"] = {"name": "loss", "goal": rng.choice(["minimize", "maximize"])}
    names = rng.sample(["lr", "batch_size", "dropout", "opt", "wd", "layers", "x-y", "_z"],
                       rng.randint(1, 4))
    cfg["parameters"] = {n: gen_spec(rng) for n in names}
    return cfg


@H.requires_wandb()
class ConfigConformance(unittest.TestCase):
    """Acceptance and inferred distributions on the corpus and on generated configs."""

    @classmethod
    def setUpClass(cls):
        cls.scratch = H.Scratch()

    @classmethod
    def tearDownClass(cls):
        cls.scratch.close()

    def test_every_difference_is_documented(self):
        with open(DOCS, encoding="utf-8") as f:
            docs = f.read()
        section = docs[docs.index("## Differences from W&B"):]
        for key, phrase in DIFFERENCES.items():
            self.assertIn(phrase, section, "difference {} is not documented".format(key))

    def test_corpus(self):
        if not os.path.isfile(os.path.join(H.CORPUS, "SOURCES.tsv")):
            self.skipTest("no W&B corpus at {} (set HYPERDIAL_CORPUS)".format(H.CORPUS))
        seen, problems, agree = {}, [], 0
        for name in sorted(os.listdir(H.CORPUS)):
            if name == "SOURCES.tsv":
                continue
            path = os.path.join(H.CORPUS, name)
            with open(path, encoding="utf-8") as f:
                found = Compared(path, f.read()).problems(seen)
            problems += ["{}: {}".format(name, p) for p in found]
            agree += not found
        self.assertEqual(problems, [], "unexplained differences from W&B on the corpus")
        self.assertGreater(agree, 70)
        # The corpus holds both known kinds of real-world difference.
        self.assertIn("yaml12-numbers", seen)
        self.assertIn("deprecated-log", seen)

    def test_generated_configs(self):
        rng = random.Random(SEED)
        seen, problems, both_ok, both_bad = {}, [], 0, 0
        for i in range(GENERATED):
            cfg = gen_config(rng)
            text = H.dump_yaml(cfg)
            c = Compared(self.scratch.write(text), text)
            found = c.problems(seen)
            problems += ["config {}: {}\n{}".format(i, p, text) for p in found]
            if c.wb_ok and c.report["valid"]:
                both_ok += 1
            elif not c.wb_ok and not c.report["valid"]:
                both_bad += 1
        self.maxDiff = None
        self.assertEqual(problems[:8], [], "{} unexplained differences".format(len(problems)))
        # The generator exercises acceptance both ways and the deliberate differences.
        self.assertGreater(both_ok, GENERATED // 5)
        self.assertGreater(both_bad, GENERATED // 5)
        for key in ("min-equals-max", "deprecated-log", "zero-shape", "q-without-multiple"):
            self.assertIn(key, seen)


@H.requires_wandb()
class YamlReading(unittest.TestCase):
    """hyperdial reads every scalar as PyYAML does, except the deliberate differences."""

    TOKENS = ["yes", "No", "ON", "off", "y", "n", "Y", "true", "False", "~", "null", "NULL",
              "1_000", "1_000.5", "0b101", "-0b11", "0x1F", "+7", "-0", ".5", "1.", "1.5e+3", "2E3", "6.e-5",
              "3.0", "0.1", "-2.5", ".inf", "-.inf", "1e5", "1.0e5", "1e-5", "6.e-5", "0o17",
              "010", "017", "08", "1:30", "12:05:00", "2026-11-29", "'010'", '"yes"', "abc",
              "adam", "a b"]
    DIFFERENT = {"1e5": "yaml12-numbers", "1.0e5": "yaml12-numbers", "1e-5": "yaml12-numbers", "2E3": "yaml12-numbers",
                 "0o17": "yaml12-numbers",
                 "010": "yaml-leading-zero", "017": "yaml-leading-zero",
                 "08": "yaml-leading-zero", "1:30": "yaml-sexagesimal",
                 "12:05:00": "yaml-sexagesimal"}

    def setUp(self):
        self.scratch = H.Scratch()

    def tearDown(self):
        self.scratch.close()

    def read_both(self, text):
        path = self.scratch.write(text)
        report = H.hd_validate(path)
        self.assertTrue(report["valid"], report)
        return H.wb_load(text), H.hd_parameters(report)

    def test_scalars(self):
        for token in self.TOKENS:
            text = "method: random\nprogram: t.py\nparameters:\n  p: {value: %s}\n" % token
            wb, hd = self.read_both(text)
            same = _same_value(H.wb_value(wb["parameters"]["p"]["value"]), hd["p"]["value"])
            if token in self.DIFFERENT:
                self.assertFalse(same, token)
                self.assertIn(self.DIFFERENT[token], DIFFERENCES)
            elif token in (".inf", "-.inf"):
                # JSON has no infinity: the string Python's str() writes, so argv agree.
                self.assertEqual(hd["p"]["value"], str(wb["parameters"]["p"]["value"]))
                self.assertIn("non-finite-json", DIFFERENCES)
            elif token == "2026-11-29":
                # PyYAML makes a date, which W&B cannot store as JSON; hyperdial a string.
                self.assertEqual(hd["p"]["value"], "2026-11-29")
            else:
                self.assertTrue(same, "{}: PyYAML {!r}, hyperdial {!r}".format(
                    token, wb["parameters"]["p"]["value"], hd["p"]["value"]))

    def test_flow_lists_merge_keys_and_duplicate_keys(self):
        texts = [
            "method: grid\nprogram: t.py\nparameters:\n  lr:\n    values: [\n      0.1, 0.01\n    ]\n",
            "method: grid\nprogram: t.py\nparameters:\n  lr:\n    values: [\n  0.1,\n0.01\n]\n  b: {value: 1}\n",
            "method: grid\nprogram: t.py\nparameters:\n  lr: {\n    values: [0.1, 0.01]\n  }\n",
            "method: grid\nprogram: t.py\nparameters:\n  lr:\n    values: [1]\n    values: [0.1, 0.01]\n",
            "method: grid\nprogram: t.py\nparameters:\n  lr: {values:[0.1, 0.01]}\n",
            "method: grid\nprogram: t.py\nparameters:\n  a: &b {values: [7]}\n  lr:\n    <<: *b\n    values: [0.1, 0.01]\n",
            "method: grid\nprogram: t.py\nparameters:\n  lr:\n    <<: [{values: [0.1, 0.01]}, {values: [3]}]\n",
        ]
        for text in texts:
            wb, hd = self.read_both(text)
            self.assertEqual(wb["parameters"]["lr"]["values"], [0.1, 0.01])
            self.assertEqual(hd["lr"]["values"], [0.1, 0.01], text)


@H.requires_wandb()
class PinnedDifferences(unittest.TestCase):
    """Each deliberate difference, shown on the smallest file: W&B's answer, then ours."""

    def setUp(self):
        self.scratch = H.Scratch()

    def tearDown(self):
        self.scratch.close()

    def both(self, params_yaml):
        text = "method: random\nprogram: t.py\nparameters:\n" + params_yaml
        c = Compared(self.scratch.write(text), text)
        return c

    def test_yaml12_numbers(self):
        c = self.both("  lr: {min: 1e-5, max: 1e-3}\n")
        self.assertFalse(c.wb_ok)
        self.assertEqual(H.hd_parameters(c.report)["lr"],
                         {"distribution": "uniform", "min": 1e-5, "max": 1e-3})

    def test_deprecated_log_distributions(self):
        c = self.both("  lr: {distribution: log_uniform, min: -9.2, max: -2.3}\n")
        self.assertFalse(c.wb_ok)
        self.assertIn("uses log_uniform", c.wb_reason)
        self.assertTrue(c.report["valid"])
        self.assertIn("exponent", c.report["warnings"][0]["message"])

    def test_min_equal_to_max(self):
        c = self.both("  n: {min: 3, max: 3}\n")
        self.assertFalse(c.wb_ok)
        self.assertTrue(c.report["valid"])
        self.assertEqual(explain_acceptance(c.cfg, c.wb_ok, c.wb_reason, c.report),
                         "min-equals-max")

    def test_zero_shape(self):
        c = self.both("  x: {distribution: normal, sigma: 0}\n")
        self.assertTrue(c.wb_ok)
        self.assertFalse(c.report["valid"])
        self.assertEqual(explain_acceptance(c.cfg, c.wb_ok, c.wb_reason, c.report),
                         "zero-shape")

    def test_q_without_multiple(self):
        c = self.both("  x: {distribution: q_uniform, min: 0.1, max: 0.2, q: 1}\n")
        self.assertTrue(c.wb_ok)
        self.assertFalse(c.report["valid"])

    def test_infinite_range(self):
        c = self.both("  x: {distribution: uniform, min: -.inf, max: .inf}\n")
        self.assertTrue(c.wb_ok)
        self.assertFalse(c.report["valid"])

    def test_mixed_bounds_infer_uniform_in_both(self):
        c = self.both("  dropout: {min: 0, max: 0.5}\n  wd: {max: 3, min: 0.5}\n")
        self.assertTrue(c.wb_ok and c.report["valid"])
        self.assertEqual(c.problems({}), [])
        self.assertEqual(H.hd_parameters(c.report)["dropout"]["distribution"], "uniform")

    def test_default_q_is_the_float_one(self):
        c = self.both("  x: {distribution: q_normal}\n")
        self.assertEqual(c.problems({}), [])
        self.assertEqual(H.hd_parameters(c.report)["x"]["q"], {"q": 1.0, "integer": False})


if __name__ == "__main__":
    unittest.main()
