"""Reading runs and sweeps back, against the real binary (HYPERDIAL_BIN, else
target/release/hyperdial or target/debug/hyperdial, under CARGO_TARGET_DIR when set):
``hyperdial.Api().runs(path, filters=, order=)``, ``sweep.runs`` and ``sweep.best_run()``,
and ``wandb.Api()`` of the W&B-compatible module (python/hyperdial_wandb), used as a script
written for W&B uses it.

Run from the repository root: python3 -m unittest discover -s python/tests -v
"""

import json
import os
import subprocess
import sys
import textwrap
import unittest
import warnings
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(HERE, os.pardir)
SHIM = os.path.join(PYTHON, "hyperdial_wandb")
sys.path.insert(0, PYTHON)
sys.path.insert(0, HERE)

import hyperdial  # noqa: E402
from real_server import BINARY, SKIP_REASON, RealServerClientCase  # noqa: E402
from test_wandb import load_wandb  # noqa: E402

try:
    import pandas  # noqa: F401
    HAVE_PANDAS = True
except ImportError:
    HAVE_PANDAS = False

SWEEP = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
         "parameters": {"lr": {"values": [0.1, 0.2, 0.3, 0.4]},
                        "opt": {"parameters": {"kind": {"value": "sgd"}}}}}


class _Case(RealServerClientCase):
    def made_sweep(self, project="mnist"):
        """A grid sweep of four trials in ``project``: lr 0.1 and 0.3 finished with loss
        2 * lr (reported at steps 0 to 9 on the way), 0.2 failed, 0.4 still running."""
        sweep = hyperdial.Sweep.create(SWEEP, project=project)
        trials = {}
        for _ in range(4):
            trial = sweep.ask()
            trials[trial.params["lr"]] = trial
        for lr in (0.1, 0.3):
            trial = trials[lr]
            for step in range(10):
                trial.report(2 * lr + (9 - step) * 0.01, step=step)
            sweep.tell(trial, 2 * lr)
        sweep.tell(trials[0.2], None, state="failed")
        self.addCleanup(lambda: trials[0.4].open and sweep.tell(trials[0.4], None))
        return sweep, trials


@unittest.skipUnless(BINARY, SKIP_REASON)
class RunsTests(_Case):
    TMP_PREFIX = "hyperdial-api-runs-"

    def test_filters_and_order_as_in_wb(self):
        sweep, trials = self.made_sweep()
        other, _ = self.made_sweep(project="other")
        lone = hyperdial.init(project="mnist", name="lone-run", config={"lr": 0.05})
        lone.log({"loss": 9.0})
        lone.finish()
        api = hyperdial.Api()

        def ids(runs):
            return [r.id for r in runs]

        every = api.runs()
        self.assertEqual(len(every), 9)
        self.assertEqual(ids(every), sorted(ids(every), key=lambda i: next(
            r.data["created_ms"] for r in every if r.id == i)), "oldest first by default")
        mnist = api.runs("my-team/mnist")
        self.assertEqual(len(mnist), 5)
        self.assertEqual(ids(api.runs("mnist")), ids(mnist))
        self.assertEqual(api.runs("nosuchproject"), [], "a project is a label, not an id")

        in_sweep = api.runs("mnist", filters={"sweep": sweep.id}, order="+config.lr")
        self.assertEqual([r.config["lr"] for r in in_sweep], [0.1, 0.2, 0.3, 0.4])
        self.assertTrue(all(r.sweep.id == sweep.id for r in in_sweep))
        self.assertIsInstance(in_sweep[0], hyperdial.Trial)

        best_first = api.runs("mnist", filters={"$and": [{"sweep": sweep.id},
                                                         {"state": "finished"}]},
                              order="-summary_metrics.loss")
        self.assertEqual([r.config.lr for r in best_first], [0.3, 0.1])
        self.assertEqual(ids(api.runs("mnist", {"sweep": sweep.id, "state": "finished"},
                                      order="loss")), ids(best_first),
                         "a bare name is -summary_metrics.NAME")
        self.assertEqual(
            [r.config.lr for r in api.runs(filters={"sweep": sweep.id,
                                                    "config.lr": {"$gte": 0.2, "$lt": 0.4}},
                                           order="+config.lr")], [0.2, 0.3])
        self.assertEqual(
            [r.config.lr for r in api.runs(filters={"$or": [{"state": "failed"},
                                                            {"config.lr.value": 0.4}],
                                                    "sweep": sweep.id},
                                           order="-config.lr")], [0.4, 0.2])
        self.assertEqual(
            ids(api.runs(filters={"config.opt.kind": "sgd", "state": {"$in": ["running"]},
                                  "project": "mnist"})), [trials[0.4].id])
        self.assertEqual(ids(api.runs(filters={"display_name": {"$regex": "^lone"}})),
                         [lone.id])
        self.assertEqual(ids(api.runs(filters={"name": lone.id})), [lone.id],
                         "W&B's `name` filter is the run id")
        self.assertEqual(len(api.runs(filters={"sweep": {"$in": [sweep.id, other.id]},
                                               "summary_metrics.loss": {"$exists": True}})),
                         4, "two finished runs in each")
        self.assertEqual(len(api.runs("mnist", filters={"summary_metrics.loss": {
            "$exists": False}})), 2, "the failed and the running trial")
        # Runs without the sorted value come last whichever the direction.
        for order in ("+summary_metrics.loss", "-summary_metrics.loss"):
            runs = api.runs("mnist", filters={"sweep": sweep.id}, order=order)
            self.assertEqual({r.state for r in runs[2:]}, {"failed", "running"}, order)



@unittest.skipUnless(BINARY, SKIP_REASON)
class RunsMistakesTests(_Case):
    TMP_PREFIX = "hyperdial-api-mistakes-"

    def test_mistakes_are_named(self):
        sweep, _ = self.made_sweep()
        api = hyperdial.Api()
        with self.assertRaises(KeyError) as ctx:
            api.runs("my-team/mnist", filters={"sweep": "nosuchsweep"})
        for part in ("'nosuchsweep'", self.url, "hyperdial sweeps"):
            self.assertIn(part, str(ctx.exception))
        self.assertIsInstance(ctx.exception, LookupError)
        with self.assertRaises(KeyError):
            api.runs(filters={"$and": [{"sweep": "nosuchsweep"}]})
        # A path naming more than a project says what to pass instead.
        with self.assertRaises(ValueError) as ctx:
            api.runs("my-team/mnist/" + sweep.id)
        message = str(ctx.exception)
        self.assertIn("{'sweep': '%s'}" % sweep.id, message)
        self.assertIn("api.sweep(", message)
        for bad, named in (({"colour": "red"}, "'colour'"),
                           ({"config.lr": {"$near": 1}}, "'$near'"),
                           ({"$xor": []}, "'$xor'"),
                           ({"state": {"$in": "finished"}}, "$in takes a list")):
            with self.assertRaises(ValueError) as ctx:
                api.runs(filters=bad)
            self.assertIn(named, str(ctx.exception))
        for order in ("", "+", "-colour"):
            if order == "-colour":  # W&B's rule: a bare name is a summary metric
                with self.assertWarns(hyperdial.QueryWarning) as ctx:  # which no run has
                    self.assertEqual(len(api.runs(order=order)), 4)
                self.assertNotIn("did you mean", str(ctx.warning), "nothing is close")
                continue
            with self.assertRaises(ValueError):
                api.runs(order=order)
        with self.assertRaises(TypeError):
            api.runs(filters=[("sweep", sweep.id)])
        # A sweep that does not exist: its runs are a KeyError too, not an empty list.
        gone = hyperdial.Sweep({"id": "nosuchsweep"}, server=self.url)
        with self.assertRaises(KeyError):
            gone.trials()
        with self.assertRaises(KeyError) as ctx:
            api.sweep("nosuchsweep")
        self.assertIn("hyperdial sweeps", str(ctx.exception))


@unittest.skipUnless(BINARY, SKIP_REASON)
class SilentMistakesTests(_Case):
    TMP_PREFIX = "hyperdial-api-silent-"

    def test_a_state_no_run_can_have_is_named_rather_than_matching_nothing(self):
        sweep, _ = self.made_sweep()
        api = hyperdial.Api()
        for spec, said in [
                ("finshed", "did you mean 'finished'?"),
                ("killed", "W&B's 'killed' is `cancelled` (stopped by hand"),
                ("preempted", "W&B's 'preempted' is `crashed`"),
                ("Finished", "states are lower case: 'finished'"),
                ({"$in": ["finished", "finshed"]}, "'finshed'"),
                ({"$ne": "killed"}, "'killed'"),
                ({"$not": {"$eq": "done"}}, "'done'")]:
            with self.assertRaises(ValueError, msg=spec) as ctx:
                api.runs(filters={"sweep": sweep.id, "state": spec})
            message = str(ctx.exception)
            self.assertIn(said, message)
            self.assertIn("queued, running, finished, failed, crashed, stopped_early, cancelled",
                          message)
        with self.assertRaises(ValueError):  # inside $or too
            api.runs(filters={"$or": [{"state": "finished"}, {"state": "killed"}]})
        # W&B's words that are hyperdial's too work as they do there.
        self.assertEqual(len(api.runs(filters={"sweep": sweep.id, "state": "crashed"})), 0)
        self.assertEqual(len(api.runs(filters={"sweep": sweep.id,
                                                "state": {"$in": ["finished", "failed"]}})), 3)

    def test_an_order_no_run_has_warns_with_the_closest_field(self):
        sweep, trials = self.made_sweep()
        api = hyperdial.Api()
        for order, field, close in [("-summary_metrics.los", "summary_metrics.los",
                                     "summary_metrics.loss"),
                                    ("los", "summary_metrics.los", "summary_metrics.loss"),
                                    ("+config.learning_rate", "config.learning_rate", None),
                                    ("-lr", "summary_metrics.lr", "config.lr"),
                                    ("+config.opt.kin", "config.opt.kin", "config.opt.kind")]:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                runs = api.runs(filters={"sweep": sweep.id}, order=order)
            self.assertEqual(len(runs), 4)
            caught = [w for w in caught if issubclass(w.category, hyperdial.QueryWarning)]
            self.assertEqual(len(caught), 1, order)
            message = str(caught[0].message)
            self.assertEqual(caught[0].filename, __file__)
            self.assertIn("no run has %s" % field, message)
            self.assertIn("config.lr", message)  # the fields the runs have
            if close:
                self.assertIn("did you mean %r" % close, message)
        # best_run(order=) too.
        with self.assertWarns(hyperdial.QueryWarning):
            sweep.best_run(order="-summary_metrics.los")
        # A field some run has: no warning.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.assertEqual(api.runs(filters={"sweep": sweep.id},
                                      order="+summary_metrics.loss")[0].id, trials[0.1].id)
        self.assertFalse([w for w in caught if issubclass(w.category, hyperdial.QueryWarning)])


@unittest.skipUnless(BINARY, SKIP_REASON)
class SweepRunsTests(_Case):
    TMP_PREFIX = "hyperdial-api-sweep-"

    def test_runs_and_best_run(self):
        sweep, trials = self.made_sweep()
        read = hyperdial.Api().sweep("my-team/mnist/" + sweep.id)
        self.assertEqual([r.config.lr for r in read.runs], [0.1, 0.2, 0.3, 0.4])
        self.assertEqual((read.name, read.project), (sweep.id, "mnist"))
        best = read.best_run()
        self.assertEqual((best.id, best.summary["loss"]), (trials[0.1].id, 0.2))
        self.assertEqual(read.best_run(order="-summary_metrics.loss").id, trials[0.3].id)
        self.assertEqual(read.best_run(order="+config.lr").id, trials[0.1].id)
        self.assertEqual(read.best_run(order="-created_at").created_at,
                         max(r.created_at for r in read.runs))
        self.assertTrue(best.url.endswith("/runs/" + best.id))

        with self.assertWarns(hyperdial.ConfigWarning):  # a sweep without a metric
            bare = hyperdial.Sweep.create({"method": "random",
                                           "parameters": {"x": {"min": 0.0, "max": 1.0}}})
        self.assertIsNone(bare.best_run())
        first, second = bare.ask(), bare.ask()
        bare.tell(first, None)
        bare.tell(second, None)
        newest = max((first, second), key=lambda t: (t.data["created_ms"], t.number))
        self.assertEqual(bare.best_run().id, newest.id, "without a metric: the newest")
        self.assertIn("has no metric", sys.stderr.getvalue())


@unittest.skipUnless(BINARY, SKIP_REASON)
class WandbApiTests(_Case):
    TMP_PREFIX = "hyperdial-api-wandb-"

    def setUp(self):
        super().setUp()
        self.wandb = load_wandb()
        self.addCleanup(sys.modules.pop, "wandb", None)

    def test_runs_and_sweeps_read_as_wb_objects(self):
        sweep, trials = self.made_sweep()
        api = self.wandb.Api()
        self.assertIsInstance(api, hyperdial.Api)
        run = api.run("my-team/mnist/" + trials[0.1].id)
        self.assertIsInstance(run, hyperdial.Trial)
        self.assertIsInstance(run, self.wandb.PublicRun)
        self.assertEqual((run.id, run.state, run.config["lr"], run.summary["loss"]),
                         (trials[0.1].id, "finished", 0.1, 0.2))
        self.assertEqual(run.name, run.id, "no name given: the id, never None")
        self.assertEqual(run.display_name, run.name)
        self.assertIsInstance(run.sweep, self.wandb.PublicSweep)
        self.assertEqual(run.sweep.id, sweep.id)
        self.assertTrue(all(isinstance(r, self.wandb.PublicRun) for r in run.sweep.runs))
        self.assertEqual(run.sweep.best_run().id, trials[0.1].id)
        self.assertIsInstance(api.sweep(sweep.id).best_run(), self.wandb.PublicRun)
        found = api.runs("my-team/mnist", filters={"sweep": sweep.id, "state": "finished"},
                         order="+summary_metrics.loss")
        self.assertEqual([r.id for r in found], [trials[0.1].id, trials[0.3].id])
        self.assertIsInstance(found[0], self.wandb.PublicRun)
        with self.assertRaises(AttributeError) as ctx:
            api.artifact("x:latest")
        self.assertIn("run(path)", str(ctx.exception))

    def test_best_run_sorts_by_the_summary_as_wb_does(self):
        # A run whose metric dipped then rose: its best logged value (hyperdial's rule) is
        # the sweep's best, while its summary (the last value, W&B's sort key) is not.
        sweep = hyperdial.Sweep.create(
            {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
             "parameters": {"curve": {"values": ["dip", "flat"]}}}, project="mnist")
        trials = {}
        for _ in range(2):
            trial = sweep.ask()
            trials[trial.params["curve"]] = trial
        trials["dip"].report(0.1, step=0)
        trials["dip"].report(0.9, step=1)
        sweep.tell(trials["dip"], 0.9)
        trials["flat"].report(0.5, step=0)
        sweep.tell(trials["flat"], 0.5)
        public = self.wandb.Api().sweep("mnist/" + sweep.id)
        self.assertEqual(public.order, "+summary_metrics.loss")
        self.assertEqual(public.best_run().id, trials["flat"].id)
        self.assertEqual(public.best_run(order="-summary_metrics.loss").id, trials["dip"].id)
        self.assertEqual(hyperdial.Api().sweep(sweep.id).best_run().id, trials["dip"].id,
                         "hyperdial's own objects keep the best logged value")
        self.assertEqual(public.path, ["", "mnist", sweep.id])
        self.assertEqual(public.url, "%s/sweeps/%s" % (self.url, sweep.id))
        self.assertEqual(public.expected_run_count, 2)  # the grid's two configurations
        endless = hyperdial.Sweep.create(
            {"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}}, project="mnist")
        self.assertIsNone(self.wandb.Api().sweep("mnist/" + endless.id).expected_run_count)

    def test_runs_histories_and_run_times(self):
        sweep, trials = self.made_sweep()
        runs = self.wandb.Api().runs("mnist", filters={"sweep": sweep.id, "state": "finished"})
        rows = runs.histories(keys=["loss"])
        self.assertEqual(sorted({r["run_id"] for r in rows}),
                         sorted([trials[0.1].id, trials[0.3].id]))
        self.assertEqual(len(rows), 22)
        self.assertEqual(set(rows[0]), {"_step", "loss", "run_id"})
        with self.assertRaises(ValueError):
            runs.histories(format="polars")
        run = runs[0]
        self.assertRegex(run.heartbeat_at, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(run.sweep_name, sweep.id)
        self.assertEqual(run.storage_id, run.id)
        self.assertEqual(run.rawconfig, dict(run.config))
        self.assertIn("lr", run.rawconfig)
        run.rawconfig["lr"] = "changed"  # a copy: the run's config is left alone
        self.assertNotEqual(run.config["lr"], "changed")

    def test_sweep_config_is_in_the_sweep_files_shape(self):
        sweep, _ = self.made_sweep()
        config = self.wandb.Api().sweep(sweep.id).config
        self.assertEqual(config["parameters"]["lr"], {"values": [0.1, 0.2, 0.3, 0.4]})
        self.assertEqual(config["parameters"]["opt"], {"parameters": {"kind": {"value": "sgd"}}})
        self.assertEqual(config["metric"], {"name": "loss", "goal": "minimize"})
        self.assertEqual(config["method"], "grid")
        self.assertNotIn("sample_without_replacement", config)
        self.assertIsInstance(hyperdial.Api().sweep(sweep.id).config["parameters"], list,
                              "hyperdial's own objects keep the validated form")

    def test_a_summary_written_back_is_stored(self):
        _, trials = self.made_sweep()
        api = self.wandb.Api()
        run = api.run(trials[0.1].id)
        run.summary["post_hoc"] = 1.23
        run.summary.update()
        run = api.run(trials[0.1].id)
        self.assertEqual(run.summary["post_hoc"], 1.23)
        run.summary.update({"note": "checked", "loss": 0.15})
        run.summary.tag = 7  # attribute set, stored by run.update()
        run.update()
        again = api.run(trials[0.1].id).summary
        self.assertEqual((again["note"], again["loss"], again["tag"]), ("checked", 0.15, 7))
        self.assertEqual(again.tag, 7)
        with self.assertRaises(TypeError):
            del run.summary["note"]

    def test_the_run_fields_wb_users_read(self):
        _, trials = self.made_sweep()
        api = self.wandb.Api()
        run = api.run(trials[0.1].id)
        self.assertEqual(run.entity, "", "hyperdial has no entities")
        self.assertEqual(run.path, ["", "mnist", run.id])
        self.assertEqual(api.run("/".join(run.path)).id, run.id, "a path that reads back")
        summary = run.summary_metrics
        self.assertIsInstance(summary, dict)
        # W&B's summary also holds the last step, the end time and the run time.
        self.assertEqual(sorted(summary), ["_runtime", "_step", "_timestamp", "loss"])
        self.assertEqual((summary["loss"], summary["_step"]), (0.2, 10))
        self.assertEqual(summary["_timestamp"], run.data["finished_ms"] / 1000.0)
        self.assertGreaterEqual(summary["_runtime"], 0.0)
        self.assertEqual(run.summary._json_dict, summary, "W&B's export recipe")
        self.assertEqual((run.tags, run.group, run.job_type, run.notes, run.user),
                         ([], None, None, None, None))
        self.assertEqual(run.lastHistoryStep, 10, "ten reports, then the told value")
        queued = api.run(trials[0.4].id)
        self.assertEqual(queued.lastHistoryStep, -1, "no step logged: W&B's -1")

    def test_overrides_name_the_server_and_unknown_keys_are_refused(self):
        sweep, _ = self.made_sweep()
        with mock.patch.dict(os.environ, {"HYPERDIAL_SERVER": "http://127.0.0.1:9"}):
            api = self.wandb.Api(overrides={"base_url": self.url, "entity": "my-team"})
        self.assertEqual(api.server, self.url)
        self.assertEqual(api.sweep(sweep.id).id, sweep.id)
        # A default project, as W&B's overrides give one.
        other, _ = self.made_sweep(project="other")
        runs = self.wandb.Api(overrides={"project": "other"}).runs()
        self.assertEqual({r.sweep.id for r in runs}, {other.id})
        for overrides, named in (({"baseurl": self.url}, "'baseurl'"),
                                 ({"base_url": self.url, "colour": 1}, "'colour'")):
            with self.assertRaises(ValueError) as ctx:
                self.wandb.Api(overrides=overrides)
            self.assertIn(named, str(ctx.exception))
            self.assertIn("base_url, entity, organization, project", str(ctx.exception))
        with self.assertRaises(ValueError):
            self.wandb.Api(overrides={"base_url": self.url}, server="http://127.0.0.1:9")

    def test_api_key_is_the_token(self):
        api = self.wandb.Api(api_key="k3y")
        self.assertEqual(api.token, "k3y")
        self.assertEqual(api._transport.token, "k3y")
        self.assertEqual(self.wandb.Api(api_key="k3y", token="t0k").token, "t0k")

    def test_history_has_wbs_arguments_and_defaults(self):
        _, trials = self.made_sweep()
        run = self.wandb.Api().run(trials[0.1].id)
        rows = run.history(pandas=False)
        # Ten reports, then the told value at the next step.
        self.assertEqual([r["_step"] for r in rows], list(range(11)))
        self.assertAlmostEqual(rows[0]["loss"], 0.29)
        self.assertTrue(all(isinstance(r["_timestamp"], float) for r in rows))
        thinned = run.history(samples=4, pandas=False)
        self.assertEqual([r["_step"] for r in thinned], [0, 3, 6, 10])
        # With keys: x_axis and those keys only (W&B asks for exactly these).
        self.assertEqual(run.history(keys=["loss"], pandas=False),
                         [{"_step": r["_step"], "loss": r["loss"]} for r in rows])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.assertEqual(run.history(keys=["loss", "nope"], pandas=False), [],
                             "only the rows holding every key")
        caught = [w for w in caught if "never logged 'nope'" in str(w.message)]
        self.assertEqual([w.filename for w in caught], [__file__], "the caller's line")
        # Keys not in a list: W&B prints an error and gives no rows.
        self.assertEqual(run.history(keys="loss"), [])
        self.assertIn("keys must be specified in a list", sys.stderr.getvalue())
        self.assertEqual(list(run.scan_history(keys=[3])), [])
        with self.assertRaises(ValueError):
            run.history(samples=0)
        # scan_history(keys=...): exactly those keys, only rows holding every one.
        self.assertEqual(list(run.scan_history(keys=["loss"])),
                         [{"loss": r["loss"]} for r in rows])
        self.assertEqual(list(run.scan_history(keys=["loss", "nope"])), [])
        self.assertEqual(run.history(stream="system", pandas=False), [])
        # Without pandas: the list, with a warning, as W&B does.
        with mock.patch.dict(sys.modules, {"pandas": None}):
            self.assertEqual(run.history(), rows)
        self.assertIn("pandas cannot be imported", sys.stderr.getvalue())
        # hyperdial's own objects keep their own defaults (a list of every point).
        self.assertEqual(hyperdial.Api().run(run.id).history(), rows)

    @unittest.skipUnless(HAVE_PANDAS, "pandas is not installed")
    def test_history_is_a_dataframe_when_pandas_is_there(self):
        _, trials = self.made_sweep()
        frame = self.wandb.Api().run(trials[0.3].id).history()
        self.assertEqual(type(frame).__name__, "DataFrame")
        self.assertEqual(list(frame["_step"]), list(range(11)))
        self.assertEqual(list(frame.columns), ["_step", "_timestamp", "loss"])
        self.assertAlmostEqual(frame["loss"].iloc[-1], 0.6)

    def test_a_script_written_for_wb_reads_runs_unchanged(self):
        sweep, trials = self.made_sweep()
        script = textwrap.dedent("""
            import json, sys
            import wandb

            api = wandb.Api()
            run = api.run("my-team/mnist/" + sys.argv[1])
            sweep = api.sweep("my-team/mnist/" + sys.argv[2])
            best = sweep.best_run()
            print(json.dumps({
                "run": [run.id, run.name, run.state, run.config["lr"], run.summary["loss"]],
                "steps": [row["_step"] for row in run.history(pandas=False)],
                "sweep": [sweep.id, len(sweep.runs), best.id, best.summary["loss"]],
                "finished": [r.id for r in api.runs(
                    "my-team/mnist", filters={"sweep": sweep.id, "state": "finished"})],
            }))
        """)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([SHIM, PYTHON]))
        out = subprocess.run([sys.executable, "-c", script, trials[0.3].id, sweep.id],
                             capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        got = json.loads(out.stdout)
        self.assertEqual(got["run"], [trials[0.3].id, trials[0.3].id, "finished", 0.3, 0.6])
        self.assertEqual(got["steps"], list(range(11)))
        self.assertEqual(got["sweep"], [sweep.id, 4, trials[0.1].id, 0.2])
        self.assertEqual(sorted(got["finished"]), sorted([trials[0.1].id, trials[0.3].id]))

    def test_integers_logged_read_back_as_integers(self):
        # W&B keeps a logged int an int in the summary; a script that logs `epoch` and reads
        # it back (range(run.summary["epoch"])) must not get a float.
        script = textwrap.dedent("""
            import json
            import wandb

            run = wandb.init(project="mnist")
            run.define_metric("best_loss", summary="min")
            for epoch in range(3):
                wandb.log({"epoch": epoch, "loss": 1.0 / (epoch + 1), "n": 7, "best_loss": 4 - epoch})
            wandb.log({"n": 2.5})  # a float after an int: the float
            run.finish()
            public = wandb.Api().run("mnist/" + run.id)
            back = public.summary
            got = {k: [back[k], type(back[k]).__name__] for k in ("epoch", "loss", "n", "best_loss")}
            # The history too: epoch's values are ints, loss's floats, and `n` (last a float)
            # keeps its 7.0s, as its summary is a float.
            rows = public.history(pandas=False)
            got["history"] = [[r.get("epoch"), type(r.get("epoch")).__name__,
                               type(r.get("loss")).__name__] for r in rows if "epoch" in r]
            got["n"].append([type(r["n"]).__name__ for r in rows if "n" in r])
            got["scan"] = [type(r["epoch"]).__name__ for r in public.scan_history(keys=["epoch"])]
            print(json.dumps(got))
        """)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([SHIM, PYTHON]))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=60, env=env)
        self.assertEqual(out.returncode, 0, out.stderr)
        got = json.loads(out.stdout.splitlines()[-1])
        self.assertEqual(got["epoch"], [2, "int"])
        self.assertEqual(got["loss"], [1.0 / 3, "float"])
        self.assertEqual(got["n"], [2.5, "float", ["float"] * 4])
        self.assertEqual(got["best_loss"][0], 2)
        self.assertEqual(got["history"], [[0, "int", "float"], [1, "int", "float"],
                                          [2, "int", "float"]])
        self.assertEqual(got["scan"], ["int"] * 3)


if __name__ == "__main__":
    unittest.main()
