"""Grid search: hyperdial's grid against W&B's `sweeps` 0.3.0 grid search.

W&B's grid is read the way its controller produces it: `next_run` again and again, each run
recorded as finished, until it says the grid is done. hyperdial's grid is listed by
`hyperdial space FILE --grid`. Compared: the size, the set of configurations (each distinct
configuration once, under W&B's own equality of values) and the run configs' types. The order
differs on purpose (file order against W&B's sorted names), as does `q_uniform` (pinned below).
"""

import json
import math
import os
import random
import re
import unittest
import warnings

from conformance.wandb import _hyperdial as H

SEED = 20261130
GENERATED = 80
MAX_POINTS = 150


def canonical(config):
    """A run config as text that keeps types apart (1, 1.0, "1" and true all differ)."""
    return json.dumps(config, sort_keys=True)


def wb_grid(cfg, limit=MAX_POINTS + 1):
    """Every configuration W&B's grid search suggests, in its order."""
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while len(runs) < limit:
            run = H.sweeps.next_run(cfg, runs)
            if run is None:
                break
            runs.append(H.sweeps.SweepRun(name=str(len(runs)),
                                          state=H.sweeps.RunState.finished, config=run.config))
    return [H.wb_nested(r.config) for r in runs]


def _value(rng, depth=0):
    return rng.choice([
        0, 1, 1.0, -0.0, 2, 2.0, 1e-05, 0.1, "1", "a", "", True, False, None,
        [1], [1.0], [1, "a"], {"x": 1, "y": 2}, {"y": 2, "x": 1}, {"x": 1.0, "y": 2},
    ])


def gen_spec(rng, depth=0):
    kind = rng.choice(["values", "values", "int", "const", "nested" if depth < 1 else "values"])
    if kind == "values":
        values = [_value(rng) for _ in range(rng.randint(1, 5))]
        if rng.random() < 0.5:
            values.append(rng.choice(values))
        return {"values": values}
    if kind == "int":
        lo = rng.randint(-3, 3)
        return {"min": lo, "max": lo + rng.randint(1, 4)}  # W&B rejects min == max
    if kind == "const":
        return {"value": _value(rng)}
    return {"parameters": {"n{}".format(i): gen_spec(rng, depth + 1)
                           for i in range(rng.randint(1, 2))}}


def gen_config(rng):
    names = rng.sample(["a", "b", "c", "d", "e_f", "g-h"], rng.randint(1, 4))
    return {"program": "train.py", "method": "grid",
            "parameters": {n: gen_spec(rng) for n in names}}


@H.requires_wandb()
class GridConformance(unittest.TestCase):

    def setUp(self):
        self.scratch = H.Scratch()

    def tearDown(self):
        self.scratch.close()

    def compare(self, text, label, yaml12=False):
        """Assert both grids hold the same configurations, each once; return their size.
        With `yaml12`, values PyYAML leaves as strings but YAML 1.2 reads as numbers
        (`3e-4`, a deliberate difference) are compared as the numbers."""
        cfg = H.wb_load(text)
        path = self.scratch.write(text)
        wb = wb_grid(cfg)
        if yaml12:
            wb = [_as_yaml12(c) for c in wb]
        hd = [line["config"] for line in H.hd_grid(path, MAX_POINTS + 1)]
        report = H.hd_validate(path)
        self.assertTrue(report["valid"], report)
        self.assertEqual(int(report["grid_size"]), len(hd), label)
        self.assertEqual(len(wb), len(hd), "{}: W&B runs {} configurations, hyperdial {}\n{}"
                         .format(label, len(wb), len(hd), text))
        self.assertEqual(sorted(map(canonical, wb)), sorted(map(canonical, hd)),
                         "{}: different configurations\n{}".format(label, text))
        self.assertEqual(len(set(map(canonical, hd))), len(hd), "{}: a repeat".format(label))
        return len(hd)

    def test_generated_grids(self):
        rng = random.Random(SEED)
        compared = 0
        for i in range(GENERATED):
            cfg = gen_config(rng)
            text = H.dump_yaml(cfg)
            size = math.prod(len({H.wb_grid_search.yaml_hash(v) for v in s["values"]})
                             if "values" in s else (s["max"] - s["min"] + 1 if "min" in s else 1)
                             for _, s in _leaf_specs(cfg["parameters"]))
            if size > MAX_POINTS:
                continue
            self.compare(text, "config {}".format(i))
            compared += 1
        self.assertGreater(compared, GENERATED // 2)

    def test_corpus_grids(self):
        if not os.path.isfile(os.path.join(H.CORPUS, "SOURCES.tsv")):
            self.skipTest("no W&B corpus at {} (set HYPERDIAL_CORPUS)".format(H.CORPUS))
        compared = 0
        for name in sorted(os.listdir(H.CORPUS)):
            path = os.path.join(H.CORPUS, name)
            if name == "SOURCES.tsv":
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            try:
                cfg = H.wb_load(text)
            except Exception:  # noqa: BLE001 - not readable by PyYAML: not a grid to compare
                continue
            if not isinstance(cfg, dict) or cfg.get("method") != "grid":
                continue
            ok, _ = H.wb_check(cfg)
            if not ok or not H.hd_validate(path)["valid"]:
                continue
            specs = [s for _, s in _leaf_specs(cfg["parameters"])]
            if any(s.get("distribution") == "q_uniform" for s in specs):
                continue  # a deliberate difference, pinned below
            size = H.hd_validate(path)["grid_size"]
            if int(size) > MAX_POINTS:
                continue
            self.compare(text, name, yaml12=True)
            compared += 1
        self.assertGreater(compared, 3)

    def test_duplicates_under_wandbs_equality(self):
        text = ("method: grid\nprogram: t.py\nparameters:\n"
                "  p:\n    values:\n      - {outer: 1, inner: 1}\n      - {inner: 2, outer: 2}\n"
                "      - {outer: 2, inner: 2}\n"
                "  q: {values: [1, 1.0, \"1\", true, [1], [1.0], 0, -0.0]}\n")
        self.assertEqual(self.compare(text, "duplicates"), 2 * 6)
        # The form written last is the one run, as in W&B.
        hd = [line["config"]["q"] for line in H.hd_grid(self.scratch.write(text))][:6]
        self.assertEqual(hd, [1.0, "1", True, [1], [1.0], -0.0])

    def test_size_beyond_64_bits_is_exact(self):
        lines = ["method: grid", "program: t.py", "parameters:"]
        lines += ["  b{}: {{values: [0, 1, 1.0]}}".format(i) for i in range(70)]
        path = self.scratch.write("\n".join(lines) + "\n")
        report = H.hd_validate(path)
        # W&B's equality makes [0, 1, 1.0] two values; the product is 2^70, exactly.
        per_param = len({H.wb_grid_search.yaml_hash(v) for v in [0, 1, 1.0]})
        self.assertEqual(int(report["grid_size"]), per_param ** 70)
        self.assertEqual(len(H.hd_grid(path, 3)), 3)

    def test_order_differs_but_not_the_set(self):
        text = "method: grid\nprogram: t.py\nparameters:\n  z: {values: [1, 2]}\n  a: {values: [x, y]}\n"
        cfg = H.wb_load(text)
        wb = wb_grid(cfg)
        hd = [line["config"] for line in H.hd_grid(self.scratch.write(text))]
        # W&B sorts names (a varies slowest); hyperdial keeps file order (z varies slowest).
        self.assertEqual([c["a"] for c in wb], ["x", "x", "y", "y"])
        self.assertEqual([c["z"] for c in hd], [1, 1, 2, 2])
        self.compare(text, "order")

    def test_q_uniform_grid_is_the_multiples_of_q(self):
        text = ("method: grid\nprogram: t.py\nparameters:\n"
                "  x: {distribution: q_uniform, min: 0.1, max: 1, q: 0.25}\n")
        wb = [c["x"] for c in wb_grid(H.wb_load(text))]
        hd = [line["config"]["x"] for line in H.hd_grid(self.scratch.write(text))]
        self.assertEqual([round(x, 12) for x in wb], [0.1, 0.35, 0.6, 0.85])  # arange
        self.assertEqual(hd, [0.25, 0.5, 0.75, 1.0])  # what random search can draw


def _as_yaml12(value):
    """`value` with number-like strings (`"3e-4"`) read as YAML 1.2 reads them."""
    if isinstance(value, dict):
        return {k: _as_yaml12(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_yaml12(v) for v in value]
    if isinstance(value, str) and re.fullmatch(
            r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", value):
        return float(value) if re.search(r"[.eE]", value) else int(value)
    return value


def _leaf_specs(params, prefix=""):
    for name, spec in params.items():
        if "parameters" in spec:
            yield from _leaf_specs(spec["parameters"], prefix + name + ".")
        else:
            yield prefix + name, spec


if __name__ == "__main__":
    unittest.main()
