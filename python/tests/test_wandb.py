"""Tests of the W&B-compatible module (python/hyperdial_wandb/wandb) against the fake server.

Each test runs the module the way an agent started script does: HYPERDIAL_RUN_ID,
HYPERDIAL_SERVER and HYPERDIAL_CONFIG set, ``import wandb`` resolving to the module.

Run from the repository root: python3 -m unittest discover -s python/tests -v
"""

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = os.path.join(HERE, os.pardir)
SHIM = os.path.join(PYTHON, "hyperdial_wandb")
sys.path.insert(0, PYTHON)

import hyperdial  # noqa: E402
from test_client import ClientTestCase  # noqa: E402


def load_wandb():
    """A fresh copy of the module (its state is per process, like W&B's)."""
    sys.path.insert(0, SHIM)
    try:
        sys.modules.pop("wandb", None)
        return importlib.import_module("wandb")
    finally:
        sys.path.remove(SHIM)


class WandbTestCase(ClientTestCase):
    def setUp(self):
        super().setUp()
        self.wandb = load_wandb()
        self.addCleanup(sys.modules.pop, "wandb", None)
        self.addCleanup(self._finish_wandb)
        self.server = self.start_server()

    def _finish_wandb(self):
        if self.wandb.run is not None:
            self.wandb.run.finish()

    def scratch_dir(self):
        """A new directory, removed when the test ends."""
        path = tempfile.mkdtemp(prefix="hyperdial-test-")
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def points_of(self, name):
        """(step, value) of every point holding metric ``name``."""
        return [(p["step"], p["values"][name]) for p in self.server.points()
                if name in p["values"]]

    def summary_puts(self):
        merged = {}
        for r in self.server.of("PUT", "/summary"):
            merged.update(r.body)
        return merged


class ConfigTests(WandbTestCase):
    def test_sweep_values_override_the_defaults_and_both_are_stored(self):
        self.agent_env(self.server, config={"lr": 0.05, "model": {"depth": 4}})
        wandb = self.wandb
        run = wandb.init(project="mnist", config={"lr": 0.1, "batch_size": 32,
                                                  "model": {"depth": 2, "width": 64}})
        self.assertIs(wandb.run, run)
        self.assertIs(wandb.config, run.config)
        self.assertEqual(wandb.config.lr, 0.05)
        self.assertEqual(wandb.config["batch_size"], 32)
        self.assertEqual(wandb.config.get("missing", 7), 7)
        self.assertEqual(run.config.model["depth"], 4)
        self.assertEqual(run.config.model["width"], 64)
        self.assertEqual(sorted(wandb.config.keys()), ["batch_size", "lr", "model"])
        self.assertEqual(wandb.config.as_dict(),
                         {"lr": 0.05, "batch_size": 32, "model": {"depth": 4, "width": 64}})
        self.assertEqual(dict(wandb.config)["lr"], 0.05)
        # The defaults went to the server, which lays the sweep's values over them.
        puts = [r.body for r in self.server.of("PUT", "/config")]
        self.assertEqual(puts, [{"lr": 0.1, "batch_size": 32,
                                 "model": {"depth": 2, "width": 64}}])
        self.assertTrue(self.server.of("PUT", "/config")[0].path.endswith(
            "/runs/r7mz0c1d/config"))

    def test_update_after_init_keeps_the_sweep_keys_locked(self):
        self.agent_env(self.server, config={"lr": 0.05})
        wandb = self.wandb
        wandb.init()
        wandb.config.update(argparse.Namespace(lr=0.3, epochs=12))
        self.assertEqual(wandb.config.lr, 0.05)
        self.assertEqual(wandb.config.epochs, 12)
        self.assertIn("config item 'lr' is set by the sweep", self.stderr.getvalue())
        wandb.config.seed = 3
        wandb.config["dropout"] = 0.1
        wandb.config.setdefaults({"seed": 99, "warmup": 5})
        self.assertEqual((wandb.config.seed, wandb.config.dropout, wandb.config.warmup),
                         (3, 0.1, 5))
        sent = {}
        for r in self.server.of("PUT", "/config"):
            sent.update(r.body)
        self.assertEqual(sent, {"lr": 0.3, "epochs": 12, "seed": 3, "dropout": 0.1,
                                "warmup": 5})

    def test_missing_key_is_an_attribute_error_and_config_before_init_fails(self):
        wandb = self.wandb
        with self.assertRaises(wandb.errors.Error):
            wandb.config.lr = 1
        self.agent_env(self.server, config={})
        wandb.init(config={"a": 1})
        with self.assertRaises(AttributeError):
            wandb.config.nope  # noqa: B018
        self.assertIn("a", wandb.config)

    def test_argparse_namespace_and_include_exclude(self):
        self.agent_env(self.server, config={})
        ns = argparse.Namespace(lr=0.2, data="/tmp/x", secret="k")
        self.wandb.init(config=ns, config_exclude_keys=["secret"])
        self.assertEqual(self.wandb.config.as_dict(), {"lr": 0.2, "data": "/tmp/x"})


class LogTests(WandbTestCase):
    def setUp(self):
        super().setUp()
        self.agent_env(self.server, config={})

    def test_commit_false_merges_rows_and_steps_count_commits(self):
        wandb = self.wandb
        wandb.init()
        wandb.log({"a": 1}, commit=False)
        wandb.log({"b": 2})
        wandb.log({"a": 3})
        self.assertEqual(wandb.run.step, 2)
        wandb.finish()
        self.assertEqual([(p["step"], p["values"]) for p in self.server.points()],
                         [(0, {"a": 1, "b": 2}), (1, {"a": 3})])

    def test_explicit_steps_commit_when_the_step_moves_on(self):
        wandb = self.wandb
        run = wandb.init()
        run.log({"loss": 0.5}, step=5)
        run.log({"acc": 0.7}, step=5)
        self.assertEqual(self.server.points(), [])
        run.log({"loss": 0.4}, step=6)
        run.log({"loss": 9.0}, step=2)  # below the current step: ignored, as in W&B
        run.log({"acc": 0.8})  # joins the row of step 6 and commits it
        run.log({"loss": 0.3}, step=8, commit=True)
        run.finish()
        self.assertEqual([(p["step"], p["values"]) for p in self.server.points()],
                         [(5, {"loss": 0.5, "acc": 0.7}), (6, {"loss": 0.4, "acc": 0.8}),
                          (8, {"loss": 0.3})])
        self.assertIn("step 2 is below the current step 6", self.stderr.getvalue())

    def test_nested_dicts_are_flattened_with_dots_and_non_numbers_ignored_once(self):
        wandb = self.wandb
        wandb.init()
        for i in range(3):
            wandb.log({"val": {"loss": 1.0 / (i + 1), "acc": {"top1": i}}, "note": "text",
                       "img": wandb.Image([1, 2]), "ok": True})
        wandb.finish()
        self.assertEqual(self.server.points()[0]["values"],
                         {"val.loss": 1.0, "val.acc.top1": 0, "ok": 1})
        err = self.stderr.getvalue()
        self.assertEqual(err.count("'note' holds a str"), 1, err)
        self.assertEqual(err.count("wandb.Image is not recorded"), 1, err)

    def test_pending_row_is_sent_at_exit(self):
        script = (
            "import wandb\n"
            "wandb.init(config={'lr': 1})\n"
            "wandb.log({'loss': 0.25}, step=3)\n"
            "wandb.log({'loss': 0.125}, commit=False)\n"
        )
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([SHIM, PYTHON]))
        out = subprocess.run([sys.executable, "-c", script], env=env, cwd=self.tmp,
                             capture_output=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(self.points_of("loss"), [(3, 0.125)])

    def test_log_before_init_raises(self):
        with self.assertRaises(self.wandb.errors.Error):
            self.wandb.log({"a": 1})


class DefineMetricTests(WandbTestCase):
    def setUp(self):
        super().setUp()
        self.agent_env(self.server, config={})

    def test_summary_min_max_mean_best(self):
        wandb = self.wandb
        run = wandb.init()
        run.define_metric("val/loss", summary="min")
        run.define_metric("val/acc", summary="max")
        run.define_metric("train/*", summary="mean")
        run.define_metric("score", summary="best", goal="maximize")
        run.define_metric("both", summary="min,max")
        for loss, acc, t, score in [(0.9, 0.5, 1.0, 3), (0.4, 0.8, 2.0, 7), (0.6, 0.7, 6.0, 5)]:
            wandb.log({"val/loss": loss, "val/acc": acc, "train/x": t, "score": score,
                       "both": t, "plain": t})
        run.finish()
        summary = self.summary_puts()
        self.assertEqual(summary["val/loss"], 0.4)
        self.assertEqual(summary["val/acc"], 0.8)
        self.assertEqual(summary["train/x"], 3.0)
        self.assertEqual(summary["score"], 7)
        self.assertEqual((summary["both.min"], summary["both.max"]), (1.0, 6.0))
        self.assertNotIn("plain", summary)  # its summary is the server's last value
        self.assertEqual(run.summary["val/loss"], 0.4)

    def test_the_summary_is_last_write_wins_as_in_wandb(self):
        wandb = self.wandb
        run = wandb.init()
        run.summary["acc"] = 0.5
        wandb.log({"acc": 0.9})  # logged after the set: the logged value
        wandb.log({"loss": 2.0})
        run.summary["loss"] = 1.0  # set after the log: the value set
        wandb.log({"other": 1})
        self.assertEqual(run.summary["acc"], 0.9)
        self.assertEqual(run.summary["loss"], 1.0)
        run.finish()
        summary = self.summary_puts()
        self.assertEqual((summary["acc"], summary["loss"]), (0.9, 1.0))

    def test_a_step_metric_leaves_the_rows_and_their_steps_alone(self):
        # As in W&B: the step metric is the charts' x axis; every row keeps its own step, so
        # two values of a metric at one epoch are two points, and no row's values are
        # written over.
        wandb = self.wandb
        wandb.init()
        wandb.define_metric("epoch")
        wandb.define_metric("val/*", step_metric="epoch")
        for epoch in range(3):
            for _ in range(4):
                wandb.log({"train/loss": 1.0, "epoch": epoch})
            wandb.log({"epoch": epoch, "val/loss": 1.0 / (epoch + 1)})
        wandb.log({"val/loss": 0.25, "epoch": 2})  # a second value at epoch 2
        wandb.log({"val/acc": 0.9})  # no epoch in the row: step_sync adds the last one
        wandb.finish()
        self.assertEqual(self.points_of("val/loss"),
                         [(4, 1.0), (9, 0.5), (14, 1.0 / 3), (15, 0.25)])
        self.assertEqual(self.points_of("val/acc"), [(16, 0.9)])
        self.assertEqual(self.points_of("epoch"),
                         [(s, s // 5) for s in range(15)] + [(15, 2), (16, 2)])
        self.assertEqual([s for s, _ in self.points_of("train/loss")][:5], [0, 1, 2, 3, 5])

    def test_step_sync_false_adds_nothing_to_the_row(self):
        wandb = self.wandb
        wandb.init()
        wandb.define_metric("acc", step_metric="progress", step_sync=False)
        wandb.log({"progress": 0.5})
        wandb.log({"acc": 0.1})
        wandb.finish()
        self.assertEqual(self.points_of("acc"), [(1, 0.1)])
        self.assertEqual(self.points_of("progress"), [(0, 0.5)])

    def test_unknown_summary_is_an_error(self):
        self.wandb.init()
        with self.assertRaises(self.wandb.errors.Error):
            self.wandb.define_metric("x", summary="median")


class RunTests(WandbTestCase):
    def setUp(self):
        super().setUp()
        self.agent_env(self.server, config={"lr": 0.5})

    def test_attributes_context_manager_and_finish(self):
        wandb = self.wandb
        settings = wandb.Settings(start_method="thread", _disable_stats=True)
        self.assertTrue(wandb.login(key="x"))
        with wandb.init(project="p", name="first", settings=settings) as run:
            self.assertEqual((run.id, run.name, run.project, run.sweep_id),
                             ("r7mz0c1d", "first", "p", "k3x9q2ab"))
            self.assertTrue(os.path.isdir(run.dir), run.dir)
            self.assertEqual(run.dir, os.path.join(self.tmp, "files"))
            self.assertEqual(run.settings.start_method, "thread")
            run.summary["best"] = 0.25
            wandb.summary.update({"final": 1})
            wandb.summary.note = "done"
            self.assertEqual(wandb.summary["best"], 0.25)
        self.assertIsNone(wandb.run)
        self.assertEqual(self.summary_puts(), {"best": 0.25, "final": 1, "note": "done"})
        self.assertTrue(hyperdial.run is None or hyperdial.run.finished)

    def test_second_init_returns_the_run_unless_reinit(self):
        wandb = self.wandb
        first = wandb.init()
        self.assertIs(wandb.init(), first)
        second = wandb.init(reinit=True)
        self.assertIsNot(second, first)
        self.assertIs(wandb.run, second)

    def test_what_cannot_be_recorded_is_ignored_with_one_warning(self):
        wandb = self.wandb
        run = wandb.init()
        model = object()
        for _ in range(2):
            wandb.watch(model, log="all")
            run.watch(model)
            wandb.save("*.pt")
            wandb.alert(title="t", text="x")
            table = wandb.Table(columns=["a"])
            table.add_data(1)
            art = wandb.Artifact("model", type="model")
            art.add_file("m.pt")
            run.log_artifact(art)
            run.use_artifact("data:latest").download()
            wandb.log({"chart": wandb.plot.line(table, "a", "a")})
        err = self.stderr.getvalue()
        for name in ("watch", "save", "alert", "Table", "Artifact", "log_artifact",
                     "use_artifact", "plot.line"):
            self.assertEqual(err.count("wandb.%s is not recorded" % name), 1, (name, err))

    def test_finish_with_an_exit_code_under_an_agent_says_how_to_fail_the_run(self):
        # An agent that names no exit file (an older one): the script is told what to do.
        wandb = self.wandb
        with mock.patch.dict(os.environ):
            os.environ.pop("HYPERDIAL_EXIT_FILE", None)
            wandb.init()
            wandb.log({"loss": 1.0})
            wandb.finish(exit_code=3)
        self.assertIn("wandb.finish(exit_code=3): the run's state comes from the process's "
                      "exit status here; end the script with sys.exit(3)",
                      self.stderr.getvalue())
        self.assertEqual(self.server.of("POST", "/finish"), [])  # the agent ends the run

    def test_finish_with_an_exit_code_under_an_agent_declares_it_to_the_agent(self):
        # The agent names a file; the code goes there, silently, for the agent to end the
        # run failed with it when the process exits 0.
        wandb = self.wandb
        path = os.path.join(self.scratch_dir(), "offline", "r1.exit")
        with mock.patch.dict(os.environ, {"HYPERDIAL_EXIT_FILE": path}):
            wandb.init()
            wandb.log({"loss": 1.0})
            wandb.finish(exit_code=3)
        with open(path) as f:
            self.assertEqual(f.read(), "3\n")
        self.assertNotIn("exit_code=3", self.stderr.getvalue())
        self.assertEqual(self.server.of("POST", "/finish"), [])

    def test_disabled_mode_under_an_agent_says_the_sweep_gets_no_metric(self):
        with mock.patch.dict(os.environ, {"WANDB_MODE": "disabled"}):
            run = self.wandb.init()
        self.wandb.log({"loss": 1.0})
        run.finish()
        self.assertEqual(self.server.requests, [])
        self.assertIn("wandb is disabled (WANDB_MODE=disabled): run r7mz0c1d records nothing, "
                      "so the sweep gets no metric from it", self.stderr.getvalue())

    def test_mark_preempting_tells_the_agent_and_warns_outside_one(self):
        path = os.path.join(self.scratch_dir(), "offline", "r7mz0c1d.preempting")
        with mock.patch.dict(os.environ, {"HYPERDIAL_PREEMPT_FILE": path}):
            run = self.wandb.init()
            run.mark_preempting()
            self.assertTrue(os.path.exists(path))
            os.remove(path)
            self.wandb.mark_preempting()
            self.assertTrue(os.path.exists(path))
        self.assertNotIn("mark_preempting", self.stderr.getvalue())
        self.wandb.mark_preempting()  # no file named: outside an agent
        self.assertIn("wandb.mark_preempting(): outside an agent nothing queues this run again",
                      self.stderr.getvalue())

    def test_offline_outside_an_agent_names_the_setting_that_made_it_offline(self):
        with mock.patch.dict(os.environ, {"WANDB_MODE": "offline",
                                          "HYPERDIAL_DIR": self.scratch_dir()}):
            del os.environ["HYPERDIAL_RUN_ID"]
            run = self.wandb.init()
            self.wandb.log({"loss": 1.0})
            run.finish()
            self.wandb.init(mode="dryrun", reinit=True).finish()
        said = self.stderr.getvalue()
        self.assertIn("offline (WANDB_MODE=offline): logging to", said)
        self.assertIn("offline (mode='dryrun'): logging to", said)
        self.assertNotIn("HYPERDIAL_MODE", said)

    def test_under_an_agent_another_id_says_the_data_goes_to_the_agents_run(self):
        wandb = self.wandb
        wandb.init(id="r7mz0c1d", resume="allow")  # the agent's run (WANDB_RUN_ID)
        self.assertNotIn("agent's run", self.stderr.getvalue())
        wandb.init(id="abc123", resume="must", reinit=True)
        self.assertIn("wandb.init(id='abc123', resume='must'): under an agent the data goes "
                      "to the agent's run r7mz0c1d", self.stderr.getvalue())

    def test_disabled_mode_records_nothing(self):
        wandb = self.wandb
        run = wandb.init(mode="disabled", config={"lr": 1})
        wandb.log({"a": 1})
        run.finish()
        self.assertEqual(self.server.requests, [])

    def test_sweep_and_agent_check_their_arguments_before_sending_anything(self):
        wandb = self.wandb
        with self.assertRaises(wandb.errors.UsageError) as ctx:
            wandb.agent("abc", function=42)
        self.assertIn("must be callable", str(ctx.exception))
        with self.assertRaises(wandb.errors.UsageError):
            wandb.agent("abc", function=print, count=-1)
        with self.assertRaises(wandb.errors.UsageError):
            wandb.sweep("method: grid")
        self.assertEqual(self.server.requests, [])

    def test_agent_refuses_offline_mode_before_claiming_a_run(self):
        wandb = self.wandb
        for name in ("WANDB_MODE", "HYPERDIAL_MODE"):
            with mock.patch.dict(os.environ, {name: "offline"}):
                with self.assertRaises(wandb.errors.UsageError) as ctx:
                    wandb.agent("abc", function=print, count=1)
            self.assertIn("%s=offline is set" % name, str(ctx.exception))
        self.assertEqual(self.server.requests, [])


if __name__ == "__main__":
    unittest.main()
