"""W&B scripts driven from one Python process against the real binary: ``wandb.sweep`` +
``wandb.agent(sweep_id, function=train, count=N)`` (W&B's notebook pattern), the W&B
submodule imports integrations make, ``config-defaults.yaml``, what ``wandb.plot`` and media
leave in a run, and a second ``wandb.init(reinit=True)`` in one run.

Each script runs in a fresh interpreter, as a user runs it (``import wandb`` finding the
module in python/hyperdial_wandb), against a ``hyperdial server`` of the test class; the runs
are read back through ``hyperdial.Api``.

Run from the repository root: python3 -m unittest discover -s python/tests -v
"""

import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(HERE, os.pardir)
SHIM = os.path.join(PYTHON, "hyperdial_wandb")
sys.path.insert(0, PYTHON)
sys.path.insert(0, HERE)

import hyperdial  # noqa: E402
from real_server import BINARY, SKIP_REASON, RealServerCase  # noqa: E402


@unittest.skipUnless(BINARY, SKIP_REASON)
class WandbScriptCase(RealServerCase):
    TMP_PREFIX = "hyperdial-wandb-agent-"

    def run_script(self, source, files=None, env=None):
        """Run ``source`` as a script in a directory of its own (with ``files``: name ->
        text); returns (exit code, stdout, stderr)."""
        cwd = tempfile.mkdtemp(dir=self.tmp)
        for name, text in (files or {}).items():
            os.makedirs(os.path.dirname(os.path.join(cwd, name)), exist_ok=True)
            with open(os.path.join(cwd, name), "w", encoding="utf-8") as f:
                f.write(textwrap.dedent(text))
        with open(os.path.join(cwd, "script.py"), "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(source))
        full = {k: v for k, v in os.environ.items()
                if not k.startswith(("HYPERDIAL_", "WANDB_"))}
        full.update(PYTHONPATH=os.pathsep.join([SHIM, PYTHON]), HYPERDIAL_SERVER=self.url,
                    HYPERDIAL_BIN=BINARY, PYTHONUNBUFFERED="1")
        full.update(env or {})
        out = subprocess.run([sys.executable, "script.py"], cwd=cwd, env=full,
                             capture_output=True, text=True, timeout=120)
        return out.returncode, out.stdout, out.stderr

    def sweep_runs(self, stdout):
        """The runs of the sweep whose id the script printed as ``sweep: ID``, by number."""
        sweep_id = next(line.split()[1] for line in stdout.splitlines()
                        if line.startswith("sweep: "))
        api = hyperdial.Api(self.url)
        self.addCleanup(api.close)
        return sorted(api.sweep(sweep_id).trials(), key=lambda t: t.number)


class FunctionAgentTests(WandbScriptCase):
    """``wandb.agent(sweep_id, function=train)``: each call of ``train`` is one run of the
    sweep, with the run's values in ``wandb.config``."""

    def test_notebook_sweep_runs_count_functions_with_their_values(self):
        code, out, err = self.run_script("""
            import os
            import wandb

            sweep_config = {
                "method": "grid",
                "metric": {"name": "loss", "goal": "minimize"},
                "parameters": {
                    "optimizer": {"parameters": {"lr": {"values": [0.1, 0.01, 0.001]}}},
                    "epochs": {"value": 3},
                },
            }

            def train(config=None):
                with wandb.init(config={"batch_size": 32, "epochs": 10}) as run:
                    config = wandb.config
                    assert os.environ["WANDB_SWEEP_ID"] == run.sweep_id
                    assert os.environ["WANDB_RUN_ID"] == run.id
                    assert run.project == "notebook", run.project
                    for epoch in range(config.epochs):
                        wandb.log({"loss": config.optimizer["lr"] * 10 / (epoch + 1),
                                   "epoch": epoch})

            sweep_id = wandb.sweep(sweep_config, project="notebook")
            print("sweep:", sweep_id)
            wandb.agent(sweep_id, function=train, count=2)
            print("after:", os.environ.get("WANDB_RUN_ID"), os.environ.get("HYPERDIAL_RUN_ID"),
                  os.environ.get("HYPERDIAL_PROJECT"))
            wandb.agent(sweep_id, train)  # the rest of the grid
        """)
        self.assertEqual(code, 0, err)
        self.assertIn("after: None None None", out)
        runs = self.sweep_runs(out)
        self.assertEqual([r.number for r in runs], [1, 2, 3])
        for r in runs:
            lr = r.config["optimizer"]["lr"]
            self.assertEqual(r.state, "finished", r.data)
            self.assertEqual(r.project, "notebook")
            # The sweep's values over the function's defaults, both stored.
            self.assertEqual((r.config["epochs"], r.config["batch_size"]), (3, 32), r.data)
            self.assertAlmostEqual(r.value, lr * 10 / 3)
            self.assertEqual(r.summary["epoch"], 2)
        self.assertEqual(sorted(r.config["optimizer"]["lr"] for r in runs), [0.001, 0.01, 0.1])

    def test_a_function_that_raises_fails_its_run_and_the_agent_goes_on(self):
        code, out, err = self.run_script("""
            import wandb

            def train():
                run = wandb.init()
                wandb.log({"loss": float(run.config.x)})
                if run.config.x == 2:
                    raise ValueError("diverged at x=2")
                if run.config.x == 3:
                    wandb.finish(exit_code=4)

            sweep_id = wandb.sweep({"method": "grid", "metric": {"name": "loss"},
                                    "parameters": {"x": {"values": [1, 2, 3, 4]}}})
            print("sweep:", sweep_id)
            wandb.agent(sweep_id, function=train)
            print("agent returned")
        """)
        self.assertEqual(code, 0, err)
        self.assertIn("agent returned", out)
        runs = self.sweep_runs(out)
        self.assertEqual([(r.config["x"], r.state) for r in runs],
                         [(1, "finished"), (2, "failed"), (3, "failed"), (4, "finished")])
        self.assertEqual(runs[1].data["error"], "ValueError: diverged at x=2")
        self.assertEqual(runs[2].data["exit_code"], 4)
        # The traceback is printed, as W&B's agent prints it, and the value logged is kept.
        self.assertIn("ValueError: diverged at x=2", err)
        self.assertIn("Traceback", err)
        self.assertEqual(runs[1].summary["loss"], 2.0)

    def test_an_agent_whose_runs_all_fail_stops_after_the_initial_failures(self):
        code, out, err = self.run_script("""
            import wandb

            def train():
                wandb.init()
                raise RuntimeError("broken script")

            sweep_id = wandb.sweep({"method": "random", "metric": {"name": "loss"},
                                    "parameters": {"x": {"min": 0.0, "max": 1.0}}})
            print("sweep:", sweep_id)
            wandb.agent(sweep_id, function=train, count=10)
        """, env={"WANDB_AGENT_DISABLE_FLAPPING": "true",
                  "WANDB_AGENT_MAX_INITIAL_FAILURES": "2"})
        self.assertEqual(code, 0, err)
        runs = self.sweep_runs(out)
        # More than 2 failures in a row from the start: the third stops the agent.
        self.assertEqual([r.state for r in runs], ["failed"] * 3)
        self.assertIn("3 failed runs in a row at start", err)

    def test_early_termination_stops_the_function_at_its_next_log(self):
        code, out, err = self.run_script("""
            import time
            import hyperdial
            import wandb

            def train():
                with wandb.init() as run:
                    for step in range(12):
                        wandb.log({"loss": run.config.x + 1.0 / (step + 1)})
                        if step == 3 and run.config.x == 9:
                            # Wait for the server's answer to the points sent (it carries
                            # the stop), so the test does not depend on how long that takes.
                            deadline = time.monotonic() + 30
                            while not hyperdial.run.should_stop() and \
                                    time.monotonic() < deadline:
                                time.sleep(0.05)
                    print("completed x =", run.config.x)

            sweep_id = wandb.sweep({
                "method": "grid", "metric": {"name": "loss", "goal": "minimize"},
                "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2},
                "parameters": {"x": {"values": [1, 2, 9]}}})
            print("sweep:", sweep_id)
            wandb.agent(sweep_id, function=train)
        """)
        self.assertEqual(code, 0, err)
        runs = self.sweep_runs(out)
        self.assertEqual([(r.config["x"], r.state) for r in runs],
                         [(1, "finished"), (2, "finished"), (9, "stopped_early")], err)
        self.assertEqual(runs[2].data["stop_reason"], "early_terminated")
        self.assertEqual(runs[2].data["exit_code"], 0)  # stopped, not failed
        self.assertIn("completed x = 2", out)
        self.assertNotIn("completed x = 9", out)
        self.assertLess(runs[2].data["steps"], 12)

    def test_without_a_function_the_agent_runs_the_sweep_program(self):
        code, out, err = self.run_script("""
            import wandb

            sweep_id = wandb.sweep({"program": "train.py", "method": "grid",
                                    "metric": {"name": "loss", "goal": "minimize"},
                                    "parameters": {"lr": {"values": [0.5, 0.25, 0.125]}}})
            print("sweep:", sweep_id)
            wandb.agent(sweep_id, count=2)
        """, files={"train.py": """
            import wandb

            run = wandb.init(config={"epochs": 2})
            for epoch in range(run.config.epochs):
                wandb.log({"loss": run.config.lr / (epoch + 1)})
        """})
        self.assertEqual(code, 0, err)
        runs = self.sweep_runs(out)
        self.assertEqual([(r.config["lr"], r.state, r.value) for r in runs],
                         [(0.5, "finished", 0.25), (0.25, "finished", 0.125)])

    def test_a_run_renamed_after_init_keeps_its_new_name(self):
        code, out, err = self.run_script("""
            import wandb

            def train():
                run = wandb.init()
                wandb.run.name = "lr=%g" % wandb.config.lr
                wandb.run.save()
                wandb.log({"loss": wandb.config.lr})

            sweep_id = wandb.sweep({"method": "grid",
                                    "parameters": {"lr": {"values": [0.5]}}})
            print("sweep:", sweep_id)
            wandb.agent(sweep_id, function=train)
            solo = wandb.init(project="solo", name="first")
            solo.name = "second"
            print("solo:", solo.id, solo.name)
        """)
        self.assertEqual(code, 0, err)
        self.assertEqual([r.name for r in self.sweep_runs(out)], ["lr=0.5"])
        self.assertNotIn("wandb.save", err)
        solo = next(line.split()[1] for line in out.splitlines() if line.startswith("solo:"))
        api = hyperdial.Api(self.url)
        self.addCleanup(api.close)
        self.assertEqual(api.run(solo).name, "second")

    def test_reinit_in_one_run_goes_on_counting_steps(self):
        code, out, err = self.run_script("""
            import wandb

            def train():
                for fold in range(2):
                    run = wandb.init(reinit=True, name="fold-%d" % fold)
                    for step in range(3):
                        wandb.log({"fold_loss": fold * 10 + step})
                    run.finish()

            sweep_id = wandb.sweep({"method": "grid",
                                    "parameters": {"x": {"values": [1]}}})
            print("sweep:", sweep_id)
            wandb.agent(sweep_id, function=train)
        """)
        self.assertEqual(code, 0, err)
        run = self.sweep_runs(out)[0]
        self.assertEqual(run.state, "finished", run.data)
        # Both folds' points are kept: the second init did not start again at step 0.
        self.assertEqual([(r["_step"], r["fold_loss"]) for r in run.scan_history()],
                         [(0, 0), (1, 1), (2, 2), (3, 10), (4, 11), (5, 12)])


class IntegrationImportTests(WandbScriptCase):
    """What libraries written against W&B's SDK import and call, outside a sweep."""

    def test_transformers_style_callback_runs_and_records(self):
        code, out, err = self.run_script("""
            import importlib.util
            import wandb
            from wandb.errors import CommError, UsageError
            from wandb.sdk.lib import RunDisabled
            from wandb.sdk.lib.config_util import ConfigError as WandbConfigError
            from wandb.sdk.wandb_run import Run
            from wandb.wandb_run import Run as SameRun

            assert importlib.util.find_spec("wandb") is not None
            assert Run is SameRun and issubclass(UsageError, wandb.Error)
            wandb.termwarn("run_name is the output_dir", repeat=False)
            wandb.termwarn("run_name is the output_dir", repeat=False)
            run = wandb.init(project="hf", name="trainer")
            assert isinstance(run, Run) and not isinstance(run, RunDisabled)
            wandb.config.update({"learning_rate": 5e-5, "output_dir": "out"},
                                allow_val_change=True)
            wandb.define_metric("train/global_step")
            wandb.define_metric("*", step_metric="train/global_step", step_sync=True)
            wandb.run._label(code="transformers_trainer")
            try:
                wandb.config["model/num_parameters"] = 1000
            except WandbConfigError:
                raise SystemExit("not raised by W&B for a new key")
            with wandb.Artifact("model", type="model").new_file("arch.txt", mode="w") as f:
                f.write("layers")
            for step in (10, 20):
                wandb.log({"train/loss": 1.0 / step, "train/global_step": step})
            wandb.run.summary["train_runtime"] = 1.5
            print("url:", wandb.run.get_url())
            print("id:", run.id, wandb.util.generate_id().isalnum())
            wandb.finish()
            disabled = wandb.init(mode="disabled", reinit=True)
            print("disabled:", isinstance(disabled, RunDisabled))
        """)
        self.assertEqual(code, 0, err)
        self.assertEqual(err.count("wandb: WARNING run_name is the output_dir"), 1, err)
        self.assertIn("disabled: True", out)
        run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("id:"))
        self.assertIn("url: %s/runs/%s" % (self.url, run_id), out)
        api = hyperdial.Api(self.url)
        self.addCleanup(api.close)
        run = api.run(run_id)
        self.assertEqual(run.state, "finished", run.data)
        self.assertEqual(run.config["model/num_parameters"], 1000)
        self.assertEqual(run.summary["train/loss"], 0.05)
        self.assertEqual(run.summary["train_runtime"], 1.5)
        # train/global_step is the charts' x axis; the rows keep their own steps (W&B's).
        self.assertEqual([(r["_step"], r["train/global_step"], r["train/loss"]) for r in
                          run.scan_history(keys=["train/loss", "train/global_step"])],
                         [(0, 10, 0.1), (1, 20, 0.05)])

    def test_lightning_style_logger_finds_the_distribution_and_logs(self):
        # What PyTorch Lightning's WandbLogger does: it checks for an installed `wandb>=0.12.10`
        # distribution (lightning_utilities' RequirementCache, through importlib.metadata),
        # then calls require, init with its arguments, define_metric, config.update and log.
        code, out, err = self.run_script("""
            import importlib.metadata
            import wandb
            from wandb.sdk.lib import RunDisabled
            from wandb.wandb_run import Run

            version = importlib.metadata.version("wandb")
            assert version == wandb.__version__, (version, wandb.__version__)
            assert tuple(int(p) for p in version.split(".")) >= (0, 12, 10)
            wandb.require("service")
            exp = wandb.init(name=None, project="lightning_logs", dir=".", id=None,
                             resume="allow", anonymous=None)
            assert isinstance(exp, (Run, RunDisabled))
            exp.define_metric("trainer/global_step")
            exp.define_metric("*", step_metric="trainer/global_step", step_sync=True)
            exp.config.update({"lr": 0.1, "model/hidden": 32}, allow_val_change=True)
            for step in (0, 49, 99):
                exp.log(dict({"train_loss": 1.0 / (step + 1)}, **{"trainer/global_step": step}))
            exp.log({"val_loss": 0.5, "epoch": 0, "trainer/global_step": 99})
            print("id:", exp.id)
        """)
        self.assertEqual(code, 0, err)
        self.assertNotIn("[hyperdial]", err)  # resume="allow" without an id is a new run
        run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("id:"))
        api = hyperdial.Api(self.url)
        self.addCleanup(api.close)
        run = api.run(run_id)
        self.assertEqual(run.state, "finished", run.data)
        self.assertEqual(run.config["model/hidden"], 32)
        self.assertEqual([(r["_step"], r["trainer/global_step"], r["val_loss"]) for r in
                          run.scan_history(keys=["val_loss", "trainer/global_step"])
                          if "val_loss" in r], [(3, 99, 0.5)])

    def test_keras_callbacks_log_what_keras_hands_them(self):
        # A stand-in for Keras' callback base classes (the tests need no TensorFlow): the
        # script drives the callbacks as model.fit does.
        code, out, err = self.run_script("""
            import wandb
            from wandb.integration.keras import WandbMetricsLogger, WandbModelCheckpoint
            from wandb.keras import WandbCallback

            class Optimizer:
                learning_rate = 0.01

            class Model:
                optimizer = Optimizer()

            run = wandb.init(project="keras")
            metrics = WandbMetricsLogger()
            metrics.set_model(Model())
            checkpoint = WandbModelCheckpoint("models/ckpt")
            for epoch, val_loss in enumerate([0.9, 0.5, 0.7]):
                for batch in range(4):
                    metrics.on_train_batch_end(batch, {"loss": 1.0})
                metrics.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_loss": val_loss})
            run.finish()
            legacy_run = wandb.init(project="keras", reinit=True)
            legacy = WandbCallback(monitor="val_loss", save_model=False)
            for epoch, val_loss in enumerate([0.9, 0.5, 0.7]):
                legacy.on_epoch_end(epoch, {"val_loss": val_loss, "val_acc": 0.5})
            print("ids:", run.id, legacy_run.id)
        """, files={"keras/__init__.py": "from . import callbacks\n",
                    "keras/callbacks.py": """
            class Callback:
                def __init__(self):
                    self.model = None
                def set_model(self, model):
                    self.model = model
                def on_train_batch_end(self, batch, logs=None):
                    pass
                def on_epoch_end(self, epoch, logs=None):
                    pass

            class ModelCheckpoint(Callback):
                def __init__(self, filepath, monitor="val_loss", **kwargs):
                    super().__init__()
                    self.filepath = filepath
        """})
        self.assertEqual(code, 0, err)
        ids = next(line.split()[1:] for line in out.splitlines() if line.startswith("ids:"))
        api = hyperdial.Api(self.url)
        self.addCleanup(api.close)
        epochs = api.run(ids[0])
        self.assertEqual([(r["_step"], r["epoch/val_loss"], r["epoch/learning_rate"])
                          for r in epochs.scan_history(keys=["epoch/val_loss",
                                                             "epoch/learning_rate"])],
                         [(0, 0.9, 0.01), (1, 0.5, 0.01), (2, 0.7, 0.01)])
        self.assertEqual(err.count("WandbModelCheckpoint upload is not recorded"), 1, err)
        legacy = api.run(ids[1])
        self.assertEqual((legacy.summary["best_val_loss"], legacy.summary["best_epoch"]),
                         (0.5, 1))
        self.assertEqual(legacy.summary["val_loss"], 0.7)
        self.assertEqual(legacy.summary["epoch"], 2)

    def test_gradient_boosting_callbacks_log_each_round_with_best_summaries(self):
        # Stand-ins for xgboost's callback base class and the boosters and callback
        # environments the libraries hand over (the tests need neither library).
        code, out, err = self.run_script("""
            import json
            from types import SimpleNamespace
            import wandb
            from wandb.integration.xgboost import WandbCallback
            from wandb.integration.lightgbm import log_summary, wandb_callback

            class Booster:
                best_iteration, best_score = 2, {"valid_0": {"l2": 0.25}}
                def save_config(self):
                    return json.dumps({"learner": {"objective": "reg:squarederror"}})
                def attr(self, name):
                    return {"best_score": "0.5", "best_iteration": "1"}.get(name)

            xgb_run = wandb.init(project="boosting")
            callback = WandbCallback(log_feature_importance=False)
            callback.before_training(Booster())
            history = {"validation_0": {"logloss": [], "auc": []}}
            for epoch, (loss, auc) in enumerate([(0.7, 0.6), (0.5, 0.8), (0.6, 0.7)]):
                history["validation_0"]["logloss"].append(loss)
                history["validation_0"]["auc"].append(auc)
                callback.after_iteration(Booster(), epoch, history)
            callback.after_training(Booster())
            xgb_run.finish()

            lgb_run = wandb.init(project="boosting", reinit=True)
            callback = wandb_callback()
            for iteration, l2 in enumerate([0.4, 0.25, 0.3]):
                callback(SimpleNamespace(params={"num_leaves": 31}, iteration=iteration,
                                         begin_iteration=0,
                                         evaluation_result_list=[("valid_0", "l2", l2, False)]))
            log_summary(Booster(), feature_importance=False)
            print("ids:", xgb_run.id, lgb_run.id)
        """, files={"xgboost/__init__.py": "from . import callback\n",
                    "xgboost/callback.py": "class TrainingCallback:\n    pass\n"})
        self.assertEqual(code, 0, err)
        ids = next(line.split()[1:] for line in out.splitlines() if line.startswith("ids:"))
        api = hyperdial.Api(self.url)
        self.addCleanup(api.close)
        xgb_run, lgb_run = api.run(ids[0]), api.run(ids[1])
        self.assertEqual(xgb_run.config["learner"], {"objective": "reg:squarederror"})
        # The best value of each metric is its summary: the lowest loss, the highest auc.
        self.assertEqual((xgb_run.summary["validation_0-logloss"],
                          xgb_run.summary["validation_0-auc"]), (0.5, 0.8))
        self.assertEqual((xgb_run.summary["best_score"], xgb_run.summary["best_iteration"]),
                         (0.5, 1))
        self.assertEqual([(r["_step"], r["epoch"]) for r in
                          xgb_run.scan_history(keys=["epoch"])], [(0, 0), (1, 1), (2, 2)])
        self.assertEqual(lgb_run.config["num_leaves"], 31)
        self.assertEqual(lgb_run.summary["valid_0_l2"], 0.25)
        self.assertEqual([r["valid_0_l2"] for r in lgb_run.scan_history(keys=["valid_0_l2"])],
                         [0.4, 0.25, 0.3])
        self.assertEqual((lgb_run.summary["best_iteration"], lgb_run.summary["best_score"]),
                         (2, {"valid_0": {"l2": 0.25}}))

    def test_charts_and_media_leave_no_metric_and_warn_once_per_name(self):
        code, out, err = self.run_script("""
            import wandb

            run = wandb.init(project="media")
            table = wandb.Table(columns=["a", "b"], data=[[1, 2]])
            for step in range(3):
                wandb.log({"loss": 1.0 / (step + 1),
                           "examples": [wandb.Image([[0, 1]]), wandb.Image([[1, 0]])],
                           "roc": wandb.plot.roc_curve([0, 1], [[0.2, 0.8]]),
                           "conf": wandb.plot.confusion_matrix(y_true=[1], preds=[1]),
                           "preds": table, "note": "text"})
            wandb.summary["best_image"] = wandb.Image([[0]])
            print("id:", run.id)
        """)
        self.assertEqual(code, 0, err)
        run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("id:"))
        api = hyperdial.Api(self.url)
        self.addCleanup(api.close)
        run = api.run(run_id)
        self.assertEqual(set(run.summary), {"loss"}, run.summary)
        self.assertEqual(err.count("[hyperdial]"), 5, err)
        for name in ("Table", "Image", "plot.roc_curve", "plot.confusion_matrix"):
            self.assertEqual(err.count("wandb.%s is not recorded" % name), 1, (name, err))
        self.assertEqual(err.count("'note' holds a str"), 1, err)


class ConfigFileTests(WandbScriptCase):
    """W&B loads ``config-defaults.yaml`` from the working directory into ``wandb.config``,
    under the values given to ``init`` and a sweep's."""

    def test_config_defaults_yaml_is_the_lowest_layer(self):
        try:
            import yaml  # noqa: F401
        except ImportError:
            self.skipTest("PyYAML is not installed")
        code, out, err = self.run_script("""
            import wandb

            def train():
                run = wandb.init(config={"batch_size": 64})
                print("config:", sorted(run.config.items()))

            sweep_id = wandb.sweep({"method": "grid",
                                    "parameters": {"lr": {"values": [0.5]}}})
            print("sweep:", sweep_id)
            wandb.agent(sweep_id, function=train)
        """, files={"config-defaults.yaml": """
            wandb_version: 1
            _wandb:
              desc: null
              value:
                cli_version: 0.19.0
            epochs:
              desc: Number of epochs to train over
              value: 7
            batch_size:
              desc: Size of each mini-batch
              value: 32
            lr:
              value: 0.1
        """})
        self.assertEqual(code, 0, err)
        self.assertIn("config: [('batch_size', 64), ('epochs', 7), ('lr', 0.5)]", out)
        run = self.sweep_runs(out)[0]
        self.assertEqual(run.config.as_dict(), {"batch_size": 64, "epochs": 7, "lr": 0.5})


@unittest.skipUnless(BINARY, SKIP_REASON)
class ResumeTests(WandbScriptCase):
    """W&B's resumable training script, run twice as a preempted job is: the second process
    continues the run of the first, from its last step, by ``id`` or by ``WANDB_RUN_ID`` and
    ``WANDB_RESUME``; ``resume="must"`` without such a run is W&B's ``UsageError``."""

    SCRIPT = """
        import sys
        import wandb
        run = wandb.init(project="preempt", config={"lr": 0.01}INIT_ARGS)
        print("resumed:", run.resumed, "step:", run.step)
        assert run.starting_step == run.step, (run.starting_step, run.step)
        for epoch in range(START, START + 3):
            wandb.log({"loss": 1.0 / (epoch + 1), "epoch": epoch})
        sys.exit(EXIT)
    """

    def history(self, run_id):
        api = hyperdial.Api(self.url)
        self.addCleanup(api.close)
        return [(row["_step"], row["epoch"]) for row in api.run(run_id).history(pandas=False)]

    def run_twice(self, init_args, env=None):
        """The script killed after epochs 0-2 (exit 143), then run again for epochs 3-5."""
        outs = []
        for start, code in ((0, 143), (3, 0)):
            source = (self.SCRIPT.replace("INIT_ARGS", init_args)
                      .replace("START", str(start)).replace("EXIT", str(code)))
            outs.append(self.run_script(source, env=env))
        return outs

    def test_a_preempted_script_continues_its_run_by_id(self):
        (c1, o1, e1), (c2, o2, e2) = self.run_twice(', id="mnist-7", resume="allow"')
        self.assertEqual(c1, 143, e1)
        self.assertEqual(c2, 0, e2)
        self.assertIn("resumed: False step: 0", o1)
        self.assertIn("resumed: True step: 3", o2)
        self.assertEqual(self.history("mnist-7"), [(i, i) for i in range(6)])

    def test_a_summary_minimum_goes_on_over_the_resumed_run(self):
        source = """
            import sys
            import wandb
            run = wandb.init(id="dm-run", resume="allow")
            run.define_metric("val_loss", summary="min")
            for v in VALUES:
                wandb.log({"val_loss": v})
            sys.exit(EXIT)
        """
        code, _, err = self.run_script(
            source.replace("VALUES", "(0.5, 0.1, 0.3)").replace("EXIT", "143"))
        self.assertEqual(code, 143, err)
        code, _, err = self.run_script(
            source.replace("VALUES", "(0.6, 0.7)").replace("EXIT", "0"))
        self.assertEqual(code, 0, err)
        api = hyperdial.Api(self.url)
        self.addCleanup(api.close)
        self.assertEqual(api.run("dm-run").summary["val_loss"], 0.1)

    def test_the_environment_names_the_run_to_resume(self):
        (_, _, e1), (c2, o2, e2) = self.run_twice(
            "", env={"WANDB_RUN_ID": "env-run-1", "WANDB_RESUME": "must"})
        self.assertIn("no run `env-run-1` to resume", e1)
        self.assertIn("UsageError", e1)
        self.assertNotEqual(c2, 0)
        (c1, _, e1), (c2, o2, e2) = self.run_twice(
            "", env={"WANDB_RUN_ID": "env-run-2", "WANDB_RESUME": "allow"})
        self.assertEqual(c2, 0, e2)
        self.assertIn("resumed: True step: 3", o2)
        self.assertEqual(self.history("env-run-2"), [(i, i) for i in range(6)])


if __name__ == "__main__":
    unittest.main()
