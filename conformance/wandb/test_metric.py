"""A run's metric from history and summary, and what the search counts each run as: hyperdial
against W&B's `sweeps` 0.3.0 (`SweepRun.metric_extremum` and the bayes search's imputation).

Property-based with fixed seeds: runs in every state with random histories (NaN, infinities,
rows without the metric) and summaries (numbers, none, strings, booleans, objects), every
`goal`, `impute` and `impute_while_running`.

- `hyperdial debug run-metric` (the functions the store and the controller use) against
  `metric_extremum` and the `y` of W&B's bayes search, run by run;
- a real `hyperdial server`: runs report through the HTTP API (metric points, summary, finish
  in a state), and each run's `metric` and the sweep's best run must be W&B's.

The one deliberate difference (docs/config.md, "Differences from W&B"): where W&B counts a run
as 0.0 for lack of anything to impute from, hyperdial leaves it out (running runs stay
pending). Generated values are never exactly 0.0, so a W&B 0.0 always is that fallback.
"""

import math
import random
import unittest
import warnings

from conformance.wandb import _stop_util as util

CASES = 300


def value(rng):
    """A metric value, never exactly 0.0; sometimes NaN or infinite."""
    r = rng.random()
    if r < 0.05:
        return float("nan")
    if r < 0.08:
        return float("inf") * rng.choice([1, -1])
    v = round(rng.uniform(-5, 10), rng.choice([1, 3, 8]))
    return v if v != 0.0 else 0.5


def summary(rng):
    """A summary entry for the metric: absent (None), a number, or something W&B ignores."""
    return rng.choice([None, None, "absent", value(rng), value(rng), "0.3", True,
                       {"min": 0.1}, float("nan")])


def runs_for(rng):
    runs = []
    for _ in range(rng.randint(1, 8)):
        state = rng.choice(["finished", "finished", "failed", "crashed", "killed",
                            "running", "pending"])
        length = 0 if state == "pending" else rng.choice([0, 1, 3, 8])
        history = [value(rng) if rng.random() > 0.1 else "missing" for _ in range(length)]
        runs.append({"state": state, "history": history, "summary": summary(rng),
                     "a": rng.random()})
    return runs


def metric_config(rng):
    metric = {"name": "loss"}
    for key, choices in (("goal", ["minimize", "maximize"]),
                         ("impute", ["worst", "best", "latest"]),
                         ("impute_while_running", ["false", "worst", "best", "latest"])):
        if rng.random() < 0.8:
            metric[key] = rng.choice(choices)
    return {"method": "bayes", "metric": metric, "parameters": {"a": {"min": 0.0, "max": 1.0}}}


def sweep_run(i, r):
    from sweeps.run import SweepRun

    history = [{"loss": v} if v != "missing" else {"other": 1.0} for v in r["history"]]
    summary = {} if r["summary"] in (None, "absent") else {"loss": r["summary"]}
    return SweepRun(name=str(i), state=r["state"], history=history, summary_metrics=summary,
                    config={"a": {"value": r["a"]}})


def wandb_view(config, runs):
    """Per run: (metric_extremum or None, y or None if W&B does not count the run)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sweeps.bayes_search import _construct_gp_data, bayes_baseline_validate_and_fill

        filled = bayes_baseline_validate_and_fill(config)
        metric = filled["metric"]
        sweep_runs = [sweep_run(i, r) for i, r in enumerate(runs)]
        kind = "maximum" if metric["goal"] == "maximize" else "minimum"
        extrema = []
        for r in sweep_runs:
            try:
                extrema.append(float(r.metric_extremum("loss", kind=kind)))
            except ValueError:
                extrema.append(None)
        _, _, _, y, _ = _construct_gp_data(sweep_runs, filled)
        y = list(y * (-1 if metric["goal"] == "maximize" else 1))
        counts_running = metric.get("impute_while_running") not in ("false", None)
        counted = []
        for r in runs:
            if r["state"] in ("finished", "failed", "crashed", "killed") or (
                    r["state"] == "running" and counts_running):
                counted.append(float(y.pop(0)))
            else:
                counted.append(None)
        assert not y
        return extrema, counted


def hyperdial_view(config, runs):
    def wire(v):
        return util.finite_or_none(v) if not isinstance(v, (dict, str, bool)) else v

    out = util.debug("run-metric", config, [
        dict({"state": util.STATES[r["state"]],
              "history": [None if v == "missing" else util.finite_or_none(v) for v in r["history"]]},
             **({} if r["summary"] == "absent" else {"summary": wire(r["summary"])}))
        for r in runs
    ])
    return out["runs"]


@unittest.skipIf(util.SWEEPS_MISSING, util.SWEEPS_MISSING or "")
class RunMetric(unittest.TestCase):
    def test_metric_and_counted_value_match_wandb(self):
        rng = random.Random(1129)
        imputed = fallbacks = summary_decides = 0
        for case in range(CASES):
            config = metric_config(rng)
            runs = runs_for(rng)
            extrema, counted = wandb_view(config, runs)
            got = hyperdial_view(config, runs)
            where = "case %d: config %s runs %s -> hyperdial %s" % (case, config, runs, got)
            for i, (r, ext, y, h) in enumerate(zip(runs, extrema, counted, got)):
                self.assertEqual(h["metric"], ext, "run %d metric; %s" % (i, where))
                finite = [v for v in r["history"] if v != "missing" and math.isfinite(v)]
                if ext is not None and ext not in finite:
                    summary_decides += 1
                if y is None:
                    self.assertEqual(h["counted"], "pending", "run %d; %s" % (i, where))
                elif y == 0.0:
                    # W&B's fallback when nothing can be imputed: hyperdial leaves it out.
                    fallbacks += 1
                    self.assertIn(h["counted"], ("omitted", "pending"), "run %d; %s" % (i, where))
                else:
                    self.assertIn(h["counted"], ("observed", "imputed"), "run %d; %s" % (i, where))
                    self.assertEqual(h["value"], y, "run %d; %s" % (i, where))
                    imputed += h["counted"] == "imputed"
        # The generator exercises every path.
        self.assertGreater(imputed, 100)
        self.assertGreater(fallbacks, 20)
        self.assertGreater(summary_decides, 50)

    def test_summary_only_metric(self):
        # What Keras' W&B callback does: the metric is only in the summary.
        config = {"method": "bayes", "metric": {"name": "loss", "goal": "minimize"},
                  "parameters": {"a": {"min": 0.0, "max": 1.0}}}
        runs = [{"state": "finished", "history": [], "summary": 0.2, "a": 0.5}]
        extrema, counted = wandb_view(config, runs)
        self.assertEqual((extrema, counted), ([0.2], [0.2]))
        got = hyperdial_view(config, runs)
        self.assertEqual(got, [{"metric": 0.2, "counted": "observed", "value": 0.2}])


@unittest.skipIf(util.SWEEPS_MISSING, util.SWEEPS_MISSING or "")
class RunMetricThroughTheServer(unittest.TestCase):
    """Runs report through the real server's API; its `metric` and best run must be W&B's."""

    @classmethod
    def setUpClass(cls):
        cls.server = util.Server()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def test_reported_metric_matches_metric_extremum(self):
        rng = random.Random(29)
        call = self.server.call
        finish_state = {"finished": "finished", "failed": "failed", "crashed": "crashed",
                        "killed": "cancelled"}
        for case in range(25):
            goal = rng.choice(["minimize", "maximize"])
            source = ('{"method": "random", "metric": {"name": "loss", "goal": "%s"}, '
                      '"parameters": {"a": {"min": 0.0, "max": 1.0}}}' % goal)
            sweep = call("POST", "/sweeps", {"source": source, "file": "sweep.json"})["id"]
            runs = [r for r in runs_for(rng) if r["state"] != "pending"]
            ids = []
            for r in runs:
                run = call("POST", "/sweeps/%s/claim" % sweep, {})["run"]["id"]
                ids.append(run)
                # The summary is set before, amid or after the points.
                cut = rng.randint(0, len(r["history"]))
                for k, v in enumerate(r["history"] + [None]):
                    if k == cut and r["summary"] not in ("absent", None):
                        s = r["summary"]
                        s = util.finite_or_none(s) if isinstance(s, float) else s
                        call("PUT", "/runs/%s/summary" % run, {"loss": s, "note": "x"})
                    if k == len(r["history"]):
                        break
                    point = {"other": 1.0} if v == "missing" else {"loss": util.finite_or_none(v)}
                    call("POST", "/runs/%s/metrics" % run, {"points": [{"values": point}]})
                if r["state"] != "running":
                    call("POST", "/runs/%s/finish" % run,
                         {"exit_code": 0, "state": finish_state[r["state"]]})
            config = {"method": "random", "metric": {"name": "loss", "goal": goal},
                      "parameters": {"a": {"min": 0.0, "max": 1.0}}}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                extrema, _ = wandb_view(dict(config, method="bayes"), runs)
            for i, (run, ext) in enumerate(zip(ids, extrema)):
                got = call("GET", "/runs/%s?history=false" % run)["metric"]
                self.assertEqual(got, ext, "case %d run %d: %s" % (case, i, runs[i]))
            # The sweep's best run: the best metric, the earliest run on ties, among the runs
            # that ended `finished` (or `stopped_early`). A deliberate difference from W&B,
            # whose sweep page ranks every run with a value, killed, crashed and failed ones
            # included (docs/config.md, "The best run").
            known = [(e, i) for i, e in enumerate(extrema)
                     if e is not None and runs[i]["state"] == "finished"]
            best = call("GET", "/sweeps/%s" % sweep)["best"]
            if not known:
                self.assertIsNone(best)
                continue
            pick = min(known, key=lambda t: (t[0] if goal == "minimize" else -t[0], t[1]))
            self.assertEqual(best["run"], ids[pick[1]], "case %d: %s" % (case, runs))
            self.assertEqual(best["value"], pick[0])


if __name__ == "__main__":
    unittest.main()
