"""Tests of the hyperdial Python client against a fake server (see fake_server.py).

Run from the repository root: python3 -m unittest discover -s python/tests -v
"""

import copy
import io
import json
import math
import os
import pickle
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import hyperdial  # noqa: E402
from fake_server import FakeServer, closed_port_url, wait_for  # noqa: E402

HAVE_GIT = shutil.which("git") is not None


def without_end_time(body):
    """A finish body without its ``ended_ms`` (the time the run ended, checked on its own)."""
    assert isinstance(body.get("ended_ms"), int), body
    return {k: v for k, v in body.items() if k != "ended_ms"}


class ClientTestCase(unittest.TestCase):
    """Isolates each test: no HYPERDIAL_* variables, a temporary cwd, fast retries, stderr
    captured in self.stderr."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hyperdial-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        old_cwd = os.getcwd()
        os.chdir(self.tmp)
        self.addCleanup(os.chdir, old_cwd)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
        patcher = mock.patch.dict(os.environ, env, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)
        for name, value in [("RETRY_DELAYS", (0.01, 0.02)), ("BACKOFF_MAX", 0.2),
                            ("DEFAULT_RETRY_SECONDS", 1.0), ("REQUEST_TIMEOUT", 2.0)]:
            p = mock.patch.object(hyperdial._settings, name, value)
            p.start()
            self.addCleanup(p.stop)
        self.stderr = io.StringIO()
        p = mock.patch.object(sys, "stderr", self.stderr)
        p.start()
        self.addCleanup(p.stop)
        self.addCleanup(self._finish_all)

    def _finish_all(self):
        for r in list(hyperdial._run._active_runs):
            r.finish()
        hyperdial._run._agent_next_step.clear()

    def start_server(self, **kwargs):
        server = FakeServer(**kwargs).start()
        self.addCleanup(server.stop)
        return server

    def agent_env(self, server, config=None, token=None):
        """Set the environment an agent gives a run."""
        os.environ["HYPERDIAL_SERVER"] = server.url
        os.environ["HYPERDIAL_RUN_ID"] = server.run_id
        os.environ["HYPERDIAL_SWEEP_ID"] = "k3x9q2ab"
        if token:
            os.environ["HYPERDIAL_TOKEN"] = token
        if config is not None:
            path = os.path.join(self.tmp, "run-config.json")
            with open(path, "w") as f:
                json.dump(config, f)
            os.environ["HYPERDIAL_CONFIG"] = path

    def offline_files(self, directory):
        folder = os.path.join(directory, "offline")
        return sorted(os.path.join(folder, n) for n in os.listdir(folder))

    def read_jsonl(self, path):
        with open(path) as f:
            text = f.read()
        self.assertTrue(text.endswith("\n"))
        return [json.loads(line) for line in text.splitlines()]


class ConfigTests(unittest.TestCase):
    def test_nested_attribute_and_item_access(self):
        c = hyperdial.Config({"lr": 0.1, "optimizer": {"kind": "adam", "betas": {"b1": 0.9}}})
        self.assertEqual(c.lr, 0.1)
        self.assertEqual(c["lr"], 0.1)
        self.assertEqual(c.optimizer.kind, "adam")
        self.assertEqual(c.optimizer.betas.b1, 0.9)
        self.assertEqual(c["optimizer"]["betas"]["b1"], 0.9)
        self.assertIn("lr", c)
        self.assertNotIn("momentum", c)
        self.assertEqual(c.get("momentum", 0.5), 0.5)
        self.assertEqual(list(c), ["lr", "optimizer"])
        self.assertEqual(len(c), 2)
        self.assertIsInstance(c, dict)
        with self.assertRaises(AttributeError) as ctx:
            c.momentum
        self.assertIn("momentum", str(ctx.exception))
        self.assertFalse(hasattr(c, "momentum"))

    def test_dict_as_dict_json_pickle(self):
        source = {"a": 1, "b": {"c": [1, {"d": 2}]}}
        c = hyperdial.Config(source)
        self.assertEqual(dict(c), source)
        plain = c.as_dict()
        self.assertEqual(plain, source)
        self.assertIs(type(plain["b"]), dict)
        self.assertEqual(json.loads(json.dumps(c)), source)
        self.assertEqual(pickle.loads(pickle.dumps(c)).b.c, [1, {"d": 2}])
        self.assertEqual(copy.deepcopy(c).b.c, [1, {"d": 2}])
        c.b.c = 5  # setting goes through to the nested config, not the source dict
        self.assertEqual(c["b"]["c"], 5)
        self.assertEqual(source["b"]["c"], [1, {"d": 2}])

    def test_setting_wraps_nested_dicts(self):
        c = hyperdial.Config()
        c.model = {"depth": 3}
        c["data"] = {"path": "/x"}
        c.update({"extra": {"k": 1}}, seed=2)
        self.assertEqual(c.model.depth, 3)
        self.assertEqual(c.data.path, "/x")
        self.assertEqual(c.extra.k, 1)
        self.assertEqual(c.seed, 2)
        del c.seed
        self.assertNotIn("seed", c)

    def test_deep_merge(self):
        merged = hyperdial._values._deep_merge(
            {"lr": 0.1, "epochs": 5, "optimizer": {"kind": "sgd", "momentum": 0.9}},
            {"lr": 0.01, "optimizer": {"kind": "adam"}, "new": {"x": 1}},
        )
        self.assertEqual(merged.as_dict(), {"lr": 0.01, "epochs": 5,
                                            "optimizer": {"kind": "adam", "momentum": 0.9},
                                            "new": {"x": 1}})


class AgentModeTests(ClientTestCase):
    def test_config_file_is_merged_over_defaults(self):
        server = self.start_server()
        self.agent_env(server, config={"lr": 0.01, "optimizer": {"kind": "adam"}})
        run = hyperdial.init(config={"lr": 0.1, "epochs": 5,
                                     "optimizer": {"kind": "sgd", "momentum": 0.9}})
        self.assertEqual(run.mode, "agent")
        self.assertEqual(run.id, "r7mz0c1d")
        self.assertEqual(run.sweep_id, "k3x9q2ab")
        self.assertEqual(run.config.lr, 0.01)
        self.assertEqual(run.config.epochs, 5)
        self.assertEqual(run.config.optimizer.kind, "adam")
        self.assertEqual(run.config.optimizer.momentum, 0.9)
        self.assertIs(hyperdial.config, run.config)
        run.finish()

    def test_defaults_and_update_config_are_stored_sweep_values_win(self):
        server = self.start_server()
        self.agent_env(server, config={"lr": 0.01, "opt": {"kind": "adam"}})
        run = hyperdial.init(config={"lr": 0.1, "opt": {"kind": "sgd", "beta": 0.9}})
        kept = run.update_config({"lr": 5, "seed": 1, "opt": {"beta": 0.5}})
        self.assertEqual(kept, ["lr"])
        self.assertEqual(run.config.as_dict(),
                         {"lr": 0.01, "seed": 1, "opt": {"kind": "adam", "beta": 0.5}})
        self.assertEqual([r.body for r in server.of("PUT", "/config")],
                         [{"lr": 0.1, "opt": {"kind": "sgd", "beta": 0.9}},
                          {"lr": 5, "seed": 1, "opt": {"beta": 0.5}}])
        run.finish()
        self.assertEqual(self.stderr.getvalue(), "")

    def test_a_name_given_to_init_reaches_a_run_the_agent_created(self):
        server = self.start_server()
        self.agent_env(server, config={})
        run = hyperdial.init(name="lr-range-test")
        self.assertEqual(run.mode, "agent")
        self.assertEqual([r.body for r in server.of("PUT", "/name")], [{"name": "lr-range-test"}])
        run.finish()
        hyperdial.init()
        self.assertEqual(len(server.of("PUT", "/name")), 1, "no name, nothing sent")
        self.assertEqual(self.stderr.getvalue(), "")

    def test_with_several_servers_a_run_goes_on_with_the_next_when_its_server_goes_away(self):
        # The agent names every server of the database, its current one first; the run's
        # points follow it to the next one instead of waiting for the first to come back.
        first = self.start_server()
        second = self.start_server()
        self.agent_env(first, config={})
        os.environ["HYPERDIAL_SERVER"] = first.url + "," + second.url
        run = hyperdial.init()
        run.log({"loss": 1.0})
        self.assertTrue(wait_for(lambda: len(first.points()) == 1))
        first_url = first.url
        first.stop()
        run.log({"loss": 0.5})
        run.finish()
        self.assertEqual([p["values"]["loss"] for p in second.points()], [0.5])
        self.assertEqual(second.points()[0]["step"], 1)
        said = self.stderr.getvalue()
        self.assertIn("%s did not answer; going on with %s" % (first_url, second.url), said)

    def test_a_project_given_to_init_under_an_agent_is_said_ignored(self):
        # The run exists already, in its sweep's project: the script is told, as W&B tells
        # a wandb.init(project=...) under a sweep agent.
        server = self.start_server()
        self.agent_env(server, config={})
        run = hyperdial.init(project="elsewhere")
        self.assertEqual(run.mode, "agent")
        said = self.stderr.getvalue()
        self.assertIn("init(project='elsewhere') ignored", said)
        self.assertIn("in its sweep's project", said)
        run.finish()
        hyperdial.init()
        self.assertEqual(self.stderr.getvalue(), said, "no project, nothing said")
        # The agent names the project the run was created in: that is the run's project, and
        # naming it to init() is no mistake.
        os.environ["HYPERDIAL_PROJECT"] = "vision"
        run = hyperdial.init(project="elsewhere")
        self.assertEqual(run.project, "vision")
        self.assertIn("init(project='elsewhere') ignored: the run was created before the "
                      "script started, in its sweep's project 'vision'",
                      self.stderr.getvalue())
        run.finish()
        before = self.stderr.getvalue()
        run = hyperdial.init(project="vision")
        self.assertEqual(self.stderr.getvalue(), before)
        run.finish()

    def test_batching_token_and_no_finish_call(self):
        server = self.start_server(token="s3cret")
        self.agent_env(server, config={}, token="s3cret")
        run = hyperdial.init(config={"lr": 0.1})
        for i in range(450):
            run.log({"loss": 1.0 / (i + 1), "epoch": i})
        run.summary["best_acc"] = 0.9
        run.finish(exit_code=3)
        points = server.points()
        self.assertEqual([p["step"] for p in points], list(range(450)))
        self.assertEqual(points[10]["values"], {"loss": 1.0 / 11, "epoch": 10})
        self.assertIsInstance(points[0]["time_ms"], int)
        batches = server.of("POST", "/metrics")
        self.assertLess(len(batches), 100, "points must be batched")
        for r in server.requests:
            self.assertEqual(r.headers.get("Authorization"), "Bearer s3cret")
            self.assertTrue(r.path.startswith("/api/v1/runs/r7mz0c1d/"), r.path)
        self.assertEqual([r.body for r in server.of("PUT", "/summary")], [{"best_acc": 0.9}])
        self.assertEqual(server.of("POST", "/finish"), [])
        self.assertEqual(server.of("POST", "/api/v1/runs"), [])
        self.assertEqual(server.of("GET", "/api/v1/sweeps"), [])
        self.assertEqual(server.of("POST", "/heartbeat"), [])
        self.assertEqual(self.stderr.getvalue(), "")

    def test_flushes_on_its_own_within_half_a_second(self):
        server = self.start_server()
        self.agent_env(server)
        run = hyperdial.init()
        run.log({"val_loss": 0.5})
        self.assertTrue(server.wait_for(lambda: len(server.points()) == 1, timeout=2.0))
        run.log({"val_loss": 0.4})
        run.summary["note"] = "ok"
        self.assertTrue(server.wait_for(lambda: server.of("PUT", "/summary"), timeout=2.0))
        self.assertEqual([p["step"] for p in server.points()], [0, 1])
        run.finish()

    def test_200_points_flush_at_once(self):
        server = self.start_server()
        self.agent_env(server)
        with mock.patch.object(hyperdial._settings, "FLUSH_INTERVAL", 60.0):
            run = hyperdial.init()
            run.log({"x": 0})  # the first flush happens at once
            self.assertTrue(server.wait_for(lambda: len(server.points()) == 1))
            for i in range(199):
                run.log({"x": i})
            time.sleep(0.3)
            self.assertEqual(len(server.points()), 1, "below 200 points: wait for the interval")
            run.log({"x": 200})
            self.assertTrue(server.wait_for(lambda: len(server.points()) == 201, timeout=2.0))
            run.finish()

    def test_explicit_steps(self):
        server = self.start_server()
        self.agent_env(server)
        run = hyperdial.init()
        run.log({"a": 1})
        run.log({"a": 2}, step=10)
        run.log({"a": 3})
        run.log({"a": 4}, step=5)
        run.log({"a": 5})
        run.finish()
        self.assertEqual([p["step"] for p in server.points()], [0, 10, 11, 5, 12])

    def test_nan_and_infinity_are_null_bools_are_numbers(self):
        server = self.start_server()
        self.agent_env(server)
        run = hyperdial.init()
        run.log({"nan": float("nan"), "inf": math.inf, "ninf": -math.inf, "ok": True,
                 "no": False, "n": None, "big": 10 ** 12, "nested": {"loss": 0.5}})
        run.summary["best"] = float("nan")
        run.finish()
        (point,) = server.points()
        self.assertEqual(point["values"], {"nan": None, "inf": None, "ninf": None, "ok": 1,
                                           "no": 0, "n": None, "big": 10 ** 12,
                                           "nested.loss": 0.5})
        (summary,) = server.of("PUT", "/summary")
        self.assertEqual(summary.body, {"best": None})

    def test_stop_requested(self):
        server = self.start_server()
        server.stop_runs = True
        self.agent_env(server)
        run = hyperdial.init()
        self.assertFalse(run.stop_requested)
        run.log({"loss": 1.0})
        self.assertTrue(server.wait_for(lambda: run.stop_requested, timeout=2.0))
        run.finish()

    def test_server_down_mid_run_does_not_raise(self):
        server = self.start_server()
        self.agent_env(server)
        run = hyperdial.init()
        run.log({"loss": 1.0})
        self.assertTrue(server.wait_for(lambda: len(server.points()) == 1))
        server.stop()
        for i in range(300):
            run.log({"loss": float(i)})
        run.summary["best"] = 1.0
        time.sleep(0.3)
        run.finish()  # must not raise
        err = self.stderr.getvalue()
        self.assertIn("cannot reach", err)
        self.assertEqual(err.count("metrics are kept"), 1, "warn once: " + err)
        # After the retry window the points wait in the spill file, with the summary.
        self.assertIn("300 metric points did not reach the server", err)
        self.assertIn("hyperdial sync", err)
        [path] = self.offline_files(os.path.join(self.tmp, ".hyperdial"))
        records = self.read_jsonl(path)
        self.assertEqual(records[0]["type"], "init")
        self.assertEqual(records[0]["run"], server.run_id)
        steps = [r["step"] for r in records if r["type"] == "log"]
        self.assertEqual(steps, list(range(1, 301)))
        self.assertEqual(records[-1], {"type": "summary", "values": {"best": 1.0}})

    def test_server_back_gets_the_buffered_points(self):
        server = self.start_server()
        self.agent_env(server)
        server.fail_status = 503
        run = hyperdial.init()
        for i in range(5):
            run.log({"loss": float(i)})
        time.sleep(0.2)
        server.fail_status = None
        run.finish()
        self.assertEqual([p["step"] for p in server.points()], [0, 1, 2, 3, 4])
        self.assertIn("503", self.stderr.getvalue())

    def test_refused_data_is_dropped_not_retried_forever(self):
        server = self.start_server()
        self.agent_env(server)
        server.fail_status = 400
        run = hyperdial.init()
        run.log({"loss": 1.0})
        start = time.monotonic()
        run.finish()
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertEqual(len(server.of("POST", "/metrics")), 1)
        self.assertIn("400", self.stderr.getvalue())
        # The dropped point is not lost in silence: the run's delivery report counts it.
        self.assertEqual([r.body["missing"] for r in server.of("POST", "/delivery")], [1])

    def test_buffer_is_bounded(self):
        os.environ["HYPERDIAL_SERVER"] = closed_port_url()
        os.environ["HYPERDIAL_RUN_ID"] = "r1"
        with mock.patch.object(hyperdial._settings, "MAX_BUFFER", 50), \
                mock.patch.object(hyperdial._settings, "DEFAULT_RETRY_SECONDS", 0.5):
            run = hyperdial.init()
            for i in range(120):
                run.log({"x": i})
            self.assertLessEqual(len(run._points), 50)
            run.finish()
        # The oldest points go to the spill file rather than being dropped.
        self.assertIn("the oldest go to", self.stderr.getvalue())
        [path] = self.offline_files(os.path.join(self.tmp, ".hyperdial"))
        steps = [r["step"] for r in self.read_jsonl(path) if r["type"] == "log"]
        self.assertEqual(sorted(steps), list(range(120)))

    def test_second_init_under_agent_goes_on_counting_steps(self):
        server = self.start_server()
        self.agent_env(server)
        first = hyperdial.init()
        first.log({"a": 1})
        first.log({"a": 2})
        second = hyperdial.init()
        self.assertTrue(first.finished)
        second.log({"a": 3})
        second.finish()
        self.assertEqual([p["step"] for p in server.points()], [0, 1, 2])


class ServerModeTests(ClientTestCase):
    def test_a_server_whose_database_is_down_is_waited_for_then_used(self):
        # Up, but answering 503 (its database down): init waits for it, said once, instead
        # of logging offline at once and leaving the run for `hyperdial sync`.
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        server.probe_fail = [503, 503]
        server.create_fail = [503]
        run = hyperdial.init(config={"a": 1})
        self.assertEqual(run.mode, "server")
        run.log({"x": 1})
        run.finish()
        self.assertEqual(len(server.of("GET", "/api/v1/sweeps")), 3)
        self.assertEqual(len(server.of("POST", "/api/v1/runs")), 2)
        said = self.stderr.getvalue()
        self.assertEqual(said.count("waiting up to"), 1, said)
        self.assertIn("answered 503 (its database may be down or busy); waiting up to 30 s "
                      "for it before logging offline (HYPERDIAL_INIT_TIMEOUT)", said)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, ".hyperdial", "offline")))

    def test_a_server_failing_past_the_init_timeout_means_offline(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        os.environ["HYPERDIAL_INIT_TIMEOUT"] = "1"
        server.probe_fail = [503] * 100
        start = time.monotonic()
        run = hyperdial.init()
        self.assertGreaterEqual(time.monotonic() - start, 0.9)
        self.assertEqual(run.mode, "offline")
        run.finish()
        self.assertEqual(server.of("POST", "/api/v1/runs"), [])
        # With 0, at once.
        os.environ["HYPERDIAL_INIT_TIMEOUT"] = "0"
        start = time.monotonic()
        run = hyperdial.init()
        self.assertLess(time.monotonic() - start, 0.5)
        self.assertEqual(run.mode, "offline")
        run.finish()

    def test_create_log_summary_finish(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        run = hyperdial.init(config={"lr": 0.1, "net": {"depth": 2}}, project="moons",
                             name="try-1")
        self.assertEqual(run.mode, "server")
        self.assertEqual(run.id, "r7mz0c1d")
        (probe,) = server.of("GET", "/api/v1/sweeps")
        self.assertEqual(probe.query, {"project": ["moons"]})
        (create,) = server.of("POST", "/api/v1/runs")
        self.assertEqual(create.body["project"], "moons")
        self.assertEqual(create.body["name"], "try-1")
        self.assertEqual(create.body["config"], {"lr": 0.1, "net": {"depth": 2}})
        self.assertEqual(create.body["argv"], sys.argv)
        self.assertEqual(create.body["host"], socket.gethostname())
        run.log({"val_loss": 0.3, "epoch": 1})
        run.log({"val_loss": 0.2, "epoch": 2})
        run.summary["best_acc"] = 0.9
        run.finish(exit_code=3)
        self.assertEqual([(p["step"], p["values"]) for p in server.points()],
                         [(0, {"val_loss": 0.3, "epoch": 1}), (1, {"val_loss": 0.2, "epoch": 2})])
        self.assertEqual([r.body for r in server.of("PUT", "/summary")], [{"best_acc": 0.9}])
        (fin,) = server.of("POST", "/api/v1/runs/r7mz0c1d/finish")
        self.assertEqual(without_end_time(fin.body), {"exit_code": 3})
        last = server.requests[-1]
        self.assertEqual(last.path, "/api/v1/runs/r7mz0c1d/finish", "finish comes last")
        self.assertIsNone(hyperdial.run)

    @unittest.skipUnless(HAVE_GIT, "git is not installed")
    def test_git_commit_and_dirty_flag(self):
        repo = os.path.join(self.tmp, "repo")
        os.mkdir(repo)
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid")
        git = ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
        subprocess.run(git + ["init", "-q"], cwd=repo, check=True, env=env)
        with open(os.path.join(repo, "train.py"), "w") as f:
            f.write("print(1)\n")
        subprocess.run(git + ["add", "train.py"], cwd=repo, check=True, env=env)
        subprocess.run(git + ["commit", "-q", "-m", "init"], cwd=repo, check=True, env=env)
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True,
                              stdout=subprocess.PIPE).stdout.decode().strip()
        os.chdir(repo)
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        hyperdial.init().finish()
        with open(os.path.join(repo, "train.py"), "a") as f:
            f.write("print(2)\n")
        hyperdial.init().finish()
        first, second = server.of("POST", "/api/v1/runs")
        self.assertEqual(first.body["git"], {"commit": head, "dirty": False})
        self.assertEqual(second.body["git"], {"commit": head, "dirty": True})

    def test_no_git_repo_means_no_git_field(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        with mock.patch.object(hyperdial._run, "_git_info", return_value=None):
            hyperdial.init().finish()
        (create,) = server.of("POST", "/api/v1/runs")
        self.assertNotIn("git", create.body)

    def test_context_manager_exception_means_exit_code_1(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        with self.assertRaises(ZeroDivisionError):
            with hyperdial.init(config={"lr": 1}) as run:
                run.log({"loss": 1.0})
                1 / 0
        (fin,) = server.of("POST", "/finish")
        self.assertEqual(without_end_time(fin.body), {"exit_code": 1})
        self.assertEqual(len(server.points()), 1)

    def test_context_manager_exit_codes(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        with hyperdial.init():
            pass
        with self.assertRaises(SystemExit):
            with hyperdial.init():
                sys.exit(4)
        with self.assertRaises(SystemExit):
            with hyperdial.init():
                sys.exit(0)
        self.assertEqual([r.body["exit_code"] for r in server.of("POST", "/finish")], [0, 4, 0])

    def test_finish_is_idempotent(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        with hyperdial.init() as run:
            run.finish(exit_code=2)
        run.finish()
        self.assertEqual([without_end_time(r.body) for r in server.of("POST", "/finish")],
                         [{"exit_code": 2}])

    def test_an_exit_code_no_process_has_is_sent_as_a_failure(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        for code in (2**40, -2**31 - 1, 2**31 - 1, -2**31):
            hyperdial.init().finish(exit_code=code)
        self.assertEqual([r.body["exit_code"] for r in server.of("POST", "/finish")],
                         [1, 1, 2**31 - 1, -2**31])

    def test_module_level_conveniences(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        self.assertIsNone(hyperdial.run)
        with self.assertRaises(RuntimeError):
            hyperdial.log({"x": 1})
        run = hyperdial.init(config={"opt": {"lr": 0.5}})
        self.assertIs(hyperdial.run, run)
        self.assertEqual(hyperdial.config.opt.lr, 0.5)
        hyperdial.log({"x": 1})
        hyperdial.log({"x": 2}, step=7)
        hyperdial.summary["best"] = 2
        self.assertEqual(hyperdial.summary["best"], 2)
        self.assertEqual(hyperdial.summary["x"], 2)  # the last logged value
        hyperdial.finish(exit_code=5)
        self.assertIsNone(hyperdial.run)
        self.assertEqual([p["step"] for p in server.points()], [0, 7])
        self.assertEqual(without_end_time(server.of("POST", "/finish")[0].body), {"exit_code": 5})
        hyperdial.finish()  # no current run: nothing happens

    def test_heartbeat_while_silent(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        with mock.patch.object(hyperdial._settings, "HEARTBEAT_INTERVAL", 0.1):
            run = hyperdial.init()
            self.assertTrue(server.wait_for(lambda: server.of("POST", "/heartbeat"), 2.0))
            run.finish()

    def test_refused_heartbeats_stop_quietly(self):
        server = self.start_server()
        server.heartbeat_status = 404
        os.environ["HYPERDIAL_SERVER"] = server.url
        with mock.patch.object(hyperdial._settings, "HEARTBEAT_INTERVAL", 0.05):
            run = hyperdial.init()
            self.assertTrue(server.wait_for(lambda: server.of("POST", "/heartbeat"), 2.0))
            time.sleep(0.3)
            run.log({"x": 1})
            run.finish()
        self.assertEqual(len(server.of("POST", "/heartbeat")), 1)
        self.assertEqual(len(server.points()), 1)
        self.assertEqual(self.stderr.getvalue(), "")

    def test_server_down_at_finish_does_not_raise(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        run = hyperdial.init()
        run.log({"loss": 1.0})
        server.stop()
        run.log({"loss": 2.0})
        run.finish(exit_code=0)
        self.assertIn("cannot reach", self.stderr.getvalue())
        # What did not arrive, and the end of the run, wait for `hyperdial sync`.
        [path] = self.offline_files(os.path.join(self.tmp, ".hyperdial"))
        records = self.read_jsonl(path)
        self.assertEqual(records[0]["run"], server.run_id)
        self.assertIn({"type": "finish", "exit_code": 0}, [
            {k: r[k] for k in ("type", "exit_code")} for r in records if r["type"] == "finish"])

    def test_token_refused_falls_back_to_offline(self):
        server = self.start_server(token="right")
        os.environ["HYPERDIAL_SERVER"] = server.url
        os.environ["HYPERDIAL_TOKEN"] = "wrong"
        run = hyperdial.init()
        self.assertEqual(run.mode, "offline")
        self.assertIn("401", self.stderr.getvalue())
        run.finish()


def _make_certificate(directory):
    """A self-signed server certificate for 127.0.0.1 (CA:FALSE) and its key, made by the
    openssl command; (cert, key) paths, or None when openssl is missing."""
    if shutil.which("openssl") is None:
        return None
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:FALSE"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return cert, key


class TlsTests(ClientTestCase):
    """https:// servers: HYPERDIAL_CA_CERT trusts a server's own certificate; a certificate
    that does not verify is reported at once, not retried."""

    def setUp(self):
        super().setUp()
        made = _make_certificate(self.tmp)
        if made is None:
            self.skipTest("openssl is not installed: cannot make a test certificate")
        self.cert, key = made
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(self.cert, key)

    def test_server_mode_over_https_with_the_ca_file(self):
        server = self.start_server(tls=self.tls)
        self.assertTrue(server.url.startswith("https://"))
        os.environ["HYPERDIAL_SERVER"] = server.url
        os.environ["HYPERDIAL_CA_CERT"] = self.cert
        run = hyperdial.init(project="tls")
        self.assertEqual(run.mode, "server")
        run.log({"loss": 0.5})
        run.finish()
        self.assertEqual([p["values"] for p in server.points()], [{"loss": 0.5}])
        self.assertEqual(len(server.of("POST", "/api/v1/runs/r7mz0c1d/finish")), 1)

    def test_an_untrusted_certificate_is_reported_not_retried(self):
        server = self.start_server(tls=self.tls)
        os.environ["HYPERDIAL_SERVER"] = server.url
        run = hyperdial.init(project="tls")
        self.assertEqual(run.mode, "offline")
        warning = self.stderr.getvalue()
        self.assertIn("does not verify", warning)
        self.assertIn("HYPERDIAL_CA_CERT", warning)
        self.assertEqual(server.requests, [])
        # The failure is final: the transport marks it not worth retrying.
        with self.assertRaises(hyperdial._transport._SendError) as ctx:
            hyperdial._transport._Transport(server.url, None).request("GET", "/api/v1/sweeps")
        self.assertFalse(ctx.exception.retryable)
        self.assertIn("does not verify", str(ctx.exception))

    def test_an_unusable_ca_file_is_named(self):
        os.environ["HYPERDIAL_SERVER"] = "https://127.0.0.1:1"
        missing = os.path.join(self.tmp, "missing.pem")
        os.environ["HYPERDIAL_CA_CERT"] = missing
        with self.assertRaises(ValueError) as ctx:
            hyperdial.init(project="tls")
        self.assertIn(missing, str(ctx.exception))


class KeptConnectionTests(ClientTestCase):
    """The ask/tell transport's kept connection sends a request's head and body together."""

    def test_a_request_head_is_held_back_for_its_body(self):
        if not hasattr(socket, "MSG_MORE"):
            self.skipTest("MSG_MORE does not exist on this platform: head and body go apart")
        server = self.start_server()
        transport = hyperdial._transport._Transport(server.url, None, keep_alive=True)
        sends = []

        class Recorder:
            """The connection's socket, recording each sendall's size and flags."""

            def __init__(self, sock):
                self._sock = sock

            def sendall(self, data, flags=0):
                sends.append((len(data), flags))
                return self._sock.sendall(data, flags)

            def __getattr__(self, name):
                return getattr(self._sock, name)

        real_connect = hyperdial._transport._KeptHTTPConnection.connect

        def connect(conn):
            real_connect(conn)
            conn.sock = Recorder(conn.sock)

        body = {"name": "kept"}
        with mock.patch.object(hyperdial._transport._KeptHTTPConnection, "connect", connect):
            for _ in range(2):  # a fresh connection, then the kept one
                transport.request("POST", "/api/v1/runs", body)
        sent = len(json.dumps(body, separators=(",", ":")))
        self.assertEqual([f for _, f in sends], [socket.MSG_MORE, 0] * 2, sends)
        self.assertEqual([n for n, _ in sends][1::2], [sent, sent])
        self.assertEqual(len(server.of("POST", "/api/v1/runs")), 2)


class DeliveryTests(ClientTestCase):
    """Request size, retries, spill files and delivery reports (docs/python.md, Delivery)."""

    def wide_run(self, server, steps, metrics):
        self.agent_env(server)
        run = hyperdial.init()
        for step in range(steps):
            run.log({"metric_%03d" % m: step + m / 1000.0 for m in range(metrics)})
        run.finish()
        return run

    def stored(self, server):
        return {(p["step"], name) for p in server.points() for name in p["values"]}

    def test_limit_is_the_servers(self):
        self.assertEqual(hyperdial._settings.MAX_REQUEST_BYTES, 8 * 1024 * 1024)

    def test_batches_are_split_by_encoded_size(self):
        server = self.start_server()
        server.max_body = 20000
        with mock.patch.object(hyperdial._settings, "MAX_REQUEST_BYTES", 20000):
            self.wide_run(server, 200, 150)
        requests = server.of("POST", "/metrics")
        self.assertTrue(all(r.size <= 20000 for r in requests), [r.size for r in requests])
        self.assertEqual([r.status for r in requests if r.status != 200], [])
        self.assertEqual(len(self.stored(server)), 200 * 150)

    def test_413_halves_the_request_and_loses_nothing(self):
        server = self.start_server()
        server.max_body = 30000  # a server with a smaller limit than the client assumes
        self.wide_run(server, 300, 150)
        # The first request may be a small one (the flusher wakes at the first point); a later,
        # larger one meets the server's limit and is halved.
        statuses = [r.status for r in server.of("POST", "/metrics")]
        self.assertIn(413, statuses)
        self.assertEqual(len(self.stored(server)), 300 * 150)
        self.assertEqual(server.of("POST", "/delivery"), [])

    def test_a_step_wider_than_the_limit_keeps_its_step(self):
        server = self.start_server()
        server.max_body = 5000
        with mock.patch.object(hyperdial._settings, "MAX_REQUEST_BYTES", 5000):
            self.wide_run(server, 1, 2000)
        self.assertEqual(self.stored(server), {(0, "metric_%03d" % m) for m in range(2000)})
        self.assertGreater(len(server.of("POST", "/metrics")), 10)

    def test_transient_answers_are_retried(self):
        server = self.start_server()
        server.fail_next = [503, 429, 408, 502, 503]
        self.wide_run(server, 20, 2)
        self.assertEqual(len(self.stored(server)), 40)
        self.assertEqual(len({(p["step"]) for p in server.points()}), 20)
        self.assertEqual(server.of("POST", "/delivery"), [])
        self.assertEqual(self.offline_dir_files(), [])

    def test_finish_waits_out_a_short_outage(self):
        server = self.start_server()
        self.agent_env(server)
        run = hyperdial.init()
        server.fail_status = 503
        for i in range(50):
            run.log({"loss": float(i)})
        timer = threading.Timer(0.4, lambda: setattr(server, "fail_status", None))
        timer.start()
        self.addCleanup(timer.cancel)
        with mock.patch.object(hyperdial._settings, "DEFAULT_RETRY_SECONDS", 10.0):
            run.finish()
        self.assertEqual(sorted(p["step"] for p in server.points()), list(range(50)))
        self.assertEqual(self.offline_dir_files(), [])

    def test_outage_longer_than_the_window_spills_and_is_reported(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        run = hyperdial.init()
        self.assertEqual(run.mode, "server")
        server.fail_status = 503
        with mock.patch.object(hyperdial._settings, "DEFAULT_RETRY_SECONDS", 0.3):
            for i in range(5):
                run.log({"loss": float(i)})
            self.assertTrue(wait_for(lambda: run._spilled == 5, timeout=10.0))
            server.fail_status = None
            for i in range(5, 8):
                run.log({"loss": float(i)})
            run.finish()
        self.assertEqual([p["step"] for p in server.points()], [5, 6, 7])
        [report] = server.of("POST", "/delivery")
        self.assertEqual(report.body["missing"], 5)
        [path] = self.offline_dir_files()
        self.assertEqual(report.body["files"], ["%s:%s" % (socket.gethostname(), path)])
        records = self.read_jsonl(path)
        self.assertEqual(records[0]["run"], server.run_id)
        self.assertEqual([r["step"] for r in records if r["type"] == "log"], [0, 1, 2, 3, 4])
        self.assertEqual(len(server.of("POST", "/finish")), 1)
        self.assertNotIn("finish", [r["type"] for r in records])

    def test_under_an_agent_the_spill_goes_where_the_agent_says(self):
        server = self.start_server()
        self.agent_env(server)
        spill_dir = os.path.join(self.tmp, "agent-spill")
        os.environ["HYPERDIAL_SPILL_DIR"] = spill_dir
        server.fail_status = 503
        with mock.patch.object(hyperdial._settings, "DEFAULT_RETRY_SECONDS", 0.3):
            run = hyperdial.init()
            run.log({"loss": 1.0})
            run.finish()
        name = "%s.py%d.jsonl" % (server.run_id, os.getpid())
        records = self.read_jsonl(os.path.join(spill_dir, name))
        self.assertEqual([r["type"] for r in records], ["init", "log"])
        # The agent uploads or reports it; the client does not.
        self.assertEqual(server.of("POST", "/delivery"), [])

    def test_under_an_agent_finish_hands_an_outage_over_to_the_agent(self):
        # The retry window stays 60 s: under an agent, finish() spills after a short wait
        # instead, so the process (whose exit dates the run's end) is not held for it.
        server = self.start_server()
        self.agent_env(server)
        spill_dir = os.path.join(self.tmp, "agent-spill")
        os.environ["HYPERDIAL_SPILL_DIR"] = spill_dir
        run = hyperdial.init()
        run.log({"loss": 1.0})
        self.assertTrue(wait_for(lambda: len(server.points()) == 1))
        server.fail_status = 503
        for i in range(2, 6):
            run.log({"loss": float(i)})
        started = time.monotonic()
        with mock.patch.object(hyperdial._settings, "DEFAULT_RETRY_SECONDS", 60.0):
            run.finish()
        waited = time.monotonic() - started
        self.assertLess(waited, 30.0)
        name = "%s.py%d.jsonl" % (server.run_id, os.getpid())
        records = self.read_jsonl(os.path.join(spill_dir, name))
        self.assertEqual([r["step"] for r in records if r["type"] == "log"], [1, 2, 3, 4])
        # The warning names the agent's upload, not a wait that did not happen nor a command
        # the user need not run.
        err = self.stderr.getvalue()
        self.assertIn("the agent running this script uploads when the server answers", err)
        self.assertNotIn("within 60 s", err)
        self.assertNotIn("upload them with `hyperdial sync`", err)

    def refused_mid_run(self, status):
        """A run under an agent whose server takes 3 points, then answers ``status`` to
        everything: returns the server and the spill directory, after checking that the
        other 5 points and the summary are in the spill file, not dropped."""
        server = self.start_server()
        self.agent_env(server)
        spill_dir = os.path.join(self.tmp, "agent-spill")
        os.environ["HYPERDIAL_SPILL_DIR"] = spill_dir
        run = hyperdial.init()
        for i in range(3):
            run.log({"loss": float(i)})
        self.assertTrue(wait_for(lambda: len(server.points()) == 3))
        server.fail_status = status
        for i in range(3, 8):
            run.log({"loss": float(i)})
        run.summary["best"] = 0.5
        start = time.monotonic()
        run.finish()
        self.assertLess(time.monotonic() - start, 5.0, "no waiting for a server that answers")
        self.assertEqual(sorted(p["step"] for p in server.points()), [0, 1, 2])
        name = "%s.py%d.jsonl" % (server.run_id, os.getpid())
        records = self.read_jsonl(os.path.join(spill_dir, name))
        self.assertEqual(sorted(r["step"] for r in records if r["type"] == "log"), [3, 4, 5, 6, 7])
        self.assertEqual([r["values"] for r in records if r["type"] == "summary"],
                         [{"best": 0.5}])
        self.assertNotIn("dropping", self.stderr.getvalue())
        return server, spill_dir

    def test_a_refused_token_keeps_every_point_in_the_spill_file(self):
        # The token is revoked mid-run (removed from the server's token file).
        server, spill_dir = self.refused_mid_run(401)
        err = self.stderr.getvalue()
        self.assertIn("refused this run's token (401)", err)
        self.assertIn("HYPERDIAL_TOKEN", err)
        self.assertIn("hyperdial sync %s --server %s" % (spill_dir, server.url), err)
        self.assertNotIn("dropping", err)
        self.assertEqual(err.count("refused this run's token"), 1, err)

    def test_a_server_without_the_run_keeps_every_point_in_the_spill_file(self):
        # A server restarted on another database answers 404 for the run: its points, summary
        # and end are kept for `hyperdial sync` to the server that has the run, not dropped.
        server, spill_dir = self.refused_mid_run(404)
        err = self.stderr.getvalue()
        self.assertIn("does not know run %s" % server.run_id, err)
        self.assertIn("another database", err)
        self.assertIn("hyperdial sync %s" % spill_dir, err)

    def test_config_and_name_the_server_does_not_take_are_kept_for_sync(self):
        server = self.start_server()
        self.agent_env(server)
        spill_dir = os.path.join(self.tmp, "agent-spill")
        os.environ["HYPERDIAL_SPILL_DIR"] = spill_dir
        run = hyperdial.init()
        server.fail_status = 401
        run.update_config({"batch": 32})
        server.fail_status = 503
        run.update_config({"warmup": 5})
        run.finish()
        name = "%s.py%d.jsonl" % (server.run_id, os.getpid())
        records = self.read_jsonl(os.path.join(spill_dir, name))
        self.assertEqual([r["values"] for r in records if r["type"] == "config"],
                         [{"batch": 32}, {"warmup": 5}])
        self.assertIn("kept in %s for `hyperdial sync`" % os.path.join(spill_dir, name),
                      self.stderr.getvalue())

    def test_a_refused_token_keeps_the_end_of_a_run_of_its_own(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        run = hyperdial.init()
        server.fail_status = 403
        run.log({"loss": 1.0})
        before = int(time.time() * 1000)
        run.finish(exit_code=0)
        after = int(time.time() * 1000)
        [path] = self.offline_dir_files()
        records = self.read_jsonl(path)
        self.assertEqual([r["step"] for r in records if r["type"] == "log"], [0])
        [end] = [r for r in records if r["type"] == "finish"]
        self.assertEqual(end["exit_code"], 0)
        self.assertTrue(before <= end["time_ms"] <= after, (before, end, after))

    def test_finish_says_when_the_run_ended(self):
        server = self.start_server()
        os.environ["HYPERDIAL_SERVER"] = server.url
        run = hyperdial.init()
        run.log({"loss": 1.0})
        before = int(time.time() * 1000)
        run.finish()
        after = int(time.time() * 1000)
        [req] = server.of("POST", "/finish")
        self.assertTrue(before <= req.body["ended_ms"] <= after, (before, req.body, after))

    def offline_dir_files(self):
        folder = os.path.join(self.tmp, ".hyperdial", "offline")
        if not os.path.isdir(folder):
            return []
        return sorted(os.path.join(folder, n) for n in os.listdir(folder))

    def test_retry_window_from_the_environment(self):
        os.environ["HYPERDIAL_RETRY_SECONDS"] = "120"
        self.assertEqual(hyperdial._settings.retry_seconds(), 120.0)
        for bad in ("", "abc", "-1", "0", "nan"):
            os.environ["HYPERDIAL_RETRY_SECONDS"] = bad
            self.assertEqual(hyperdial._settings.retry_seconds(),
                             hyperdial._settings.DEFAULT_RETRY_SECONDS)


class OfflineModeTests(ClientTestCase):
    def test_file_contents_exactly_as_documented(self):
        custom = os.path.join(self.tmp, "custom-dir")
        os.environ["HYPERDIAL_DIR"] = custom
        os.environ["HYPERDIAL_MODE"] = "offline"
        before = int(time.time() * 1000)
        run = hyperdial.init(config={"lr": 0.1, "net": {"depth": 2}}, project="moons",
                             name="try-1")
        self.assertEqual(run.mode, "offline")
        run.log({"val_loss": 0.5, "epoch": 0})
        run.log({"val_loss": float("nan"), "ok": True}, step=4)
        run.summary["best"] = 0.5
        run.finish(exit_code=2)
        after = int(time.time() * 1000)
        (path,) = self.offline_files(custom)
        self.assertEqual(path, run.path)
        self.assertEqual(os.path.basename(path), run.id + ".jsonl")
        records = self.read_jsonl(path)
        self.assertEqual([r["type"] for r in records], ["init", "log", "log", "summary", "finish"])
        init, log1, log2, summ, fin = records
        self.assertEqual(list(init), ["type", "project", "name", "config", "argv", "host", "git",
                                      "local_id", "time_ms"])
        # The file's name, and the run's id once synced: offline-LOCAL_ID.
        self.assertEqual(init["local_id"], run.id)
        self.assertEqual(init["project"], "moons")
        self.assertEqual(init["name"], "try-1")
        self.assertEqual(init["config"], {"lr": 0.1, "net": {"depth": 2}})
        self.assertEqual(init["argv"], sys.argv)
        self.assertEqual(init["host"], socket.gethostname())
        self.assertTrue(init["git"] is None or set(init["git"]) == {"commit", "dirty"})
        self.assertTrue(before <= init["time_ms"] <= after)
        self.assertEqual(list(log1), ["type", "step", "time_ms", "values"])
        self.assertEqual((log1["step"], log1["values"]), (0, {"val_loss": 0.5, "epoch": 0}))
        self.assertEqual((log2["step"], log2["values"]), (4, {"val_loss": None, "ok": 1}))
        self.assertTrue(before <= log1["time_ms"] <= log2["time_ms"] <= after)
        self.assertEqual(summ, {"type": "summary", "values": {"best": 0.5}})
        self.assertEqual(list(fin), ["type", "exit_code", "time_ms"])
        self.assertEqual(fin["exit_code"], 2)
        self.assertTrue(log2["time_ms"] <= fin["time_ms"] <= after)
        self.assertIn("offline", self.stderr.getvalue())
        self.assertIn(path, self.stderr.getvalue())

    def test_no_server_means_offline_in_default_dir(self):
        os.environ["HYPERDIAL_SERVER"] = closed_port_url()
        start = time.monotonic()
        run = hyperdial.init(config={"a": 1})
        self.assertLess(time.monotonic() - start, 2.0)
        self.assertEqual(run.mode, "offline")
        run.log({"x": 1})
        run.finish()
        (path,) = self.offline_files(os.path.join(self.tmp, ".hyperdial"))
        records = self.read_jsonl(path)
        self.assertEqual(records[0]["project"], "default")
        self.assertIsNone(records[0]["name"])
        self.assertEqual(records[-1]["exit_code"], 0)

    def test_offline_says_what_made_it_offline(self):
        hyperdial.init(mode="offline").finish()
        self.assertIn("offline (mode='offline' was passed to hyperdial.init()): logging to",
                      self.stderr.getvalue())
        os.environ["HYPERDIAL_MODE"] = "offline"
        hyperdial.init().finish()
        self.assertIn("offline (HYPERDIAL_MODE=offline): logging to", self.stderr.getvalue())

    def test_offline_beats_agent_variables(self):
        os.environ["HYPERDIAL_MODE"] = "offline"
        os.environ["HYPERDIAL_RUN_ID"] = "r1"
        os.environ["HYPERDIAL_SERVER"] = closed_port_url()
        run = hyperdial.init()
        self.assertEqual(run.mode, "offline")
        run.finish()

    def test_offline_config_added_later_is_recorded(self):
        os.environ["HYPERDIAL_MODE"] = "offline"
        run = hyperdial.init(config={"lr": 0.1})
        run.update_config({"batch": 32})
        run.finish()
        (path,) = self.offline_files(os.path.join(self.tmp, ".hyperdial"))
        records = self.read_jsonl(path)
        self.assertEqual(records[0]["config"], {"lr": 0.1})
        self.assertEqual([r["values"] for r in records if r["type"] == "config"],
                         [{"batch": 32}])

    def test_offline_file_is_written_as_it_goes(self):
        os.environ["HYPERDIAL_MODE"] = "offline"
        run = hyperdial.init()
        run.log({"x": 1})
        self.assertTrue(wait_for(lambda: len(self.read_jsonl(run.path)) == 2))
        run.finish()

    def test_summary_records_are_incremental(self):
        os.environ["HYPERDIAL_MODE"] = "offline"
        run = hyperdial.init()
        run.summary["a"] = 1
        run.summary.update({"b": "text", "c": [1, float("inf")]})
        time.sleep(0.7)
        run.summary["a"] = 2
        run.finish()
        summaries = [r["values"] for r in self.read_jsonl(run.path) if r["type"] == "summary"]
        merged = {}
        for values in summaries:
            merged.update(values)
        self.assertEqual(merged, {"a": 2, "b": "text", "c": [1, None]})
        self.assertEqual(summaries[-1], {"a": 2})

    def test_disabled_mode_writes_nothing(self):
        os.environ["HYPERDIAL_MODE"] = "disabled"
        run = hyperdial.init(config={"a": 1})
        run.log({"x": 1})
        run.finish()
        self.assertEqual(run.mode, "disabled")
        self.assertEqual(os.listdir(self.tmp), [])


class ValueTests(ClientTestCase):
    def setUp(self):
        super().setUp()
        os.environ["HYPERDIAL_MODE"] = "disabled"
        self.run = hyperdial.init()

    def test_non_numbers_raise_type_error_naming_the_key(self):
        for bad in ["0.5", [1, 2], object(), b"1", 1 + 2j]:
            with self.assertRaises(TypeError) as ctx:
                self.run.log({"val_loss": bad})
            self.assertIn("val_loss", str(ctx.exception))
            self.assertIn("number", str(ctx.exception))
        with self.assertRaises(TypeError):
            self.run.log([("a", 1)])
        with self.assertRaises(TypeError):
            self.run.log({1: 1.0})
        with self.assertRaises(TypeError):
            self.run.log({"a": 1}, step=1.5)
        with self.assertRaises(ValueError):
            self.run.log({"a": 1}, step=-1)
        self.assertEqual(self.run.step, 0, "a refused call logs nothing")

    def test_scalar_objects_with_item(self):
        class Scalar:
            def __init__(self, v):
                self.v = v

            def item(self):
                return self.v

        self.run.log({"a": Scalar(0.5), "b": Scalar(True)})
        self.assertEqual(self.run.summary["a"], 0.5)
        self.assertEqual(self.run.summary["b"], 1)
        with self.assertRaises(TypeError):
            self.run.log({"c": Scalar("x")})

    def test_init_rejects_bad_config(self):
        with self.assertRaises(TypeError):
            hyperdial.init(config=[1, 2])

    def test_init_accepts_namespace(self):
        import argparse
        run = hyperdial.init(config=argparse.Namespace(lr=0.1))
        self.assertEqual(run.config.lr, 0.1)


class ModuleTests(unittest.TestCase):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "hyperdial",
                        "__init__.py")

    def test_standard_library_only(self):
        import ast
        names = getattr(sys, "stdlib_module_names", None)
        if names is None:
            self.skipTest("needs Python 3.10 or newer")
        with open(self.path) as f:
            tree = ast.parse(f.read())
        # pandas only inside a function: history(pandas=True) imports it when asked.
        optional = {"pandas"}
        top_level = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level > 0:
                    continue  # the package's own modules (the generated _states.py)
                mods = [node.module or ""]
            else:
                continue
            for mod in mods:
                top = mod.split(".")[0]
                if top in optional and id(node) not in top_level:
                    continue
                self.assertIn(top, names, mod)

    def test_public_api_has_docstrings(self):
        self.assertGreater(len(hyperdial.__doc__.splitlines()), 10)
        for name in ["init", "log", "finish", "Run", "Config", "Summary"]:
            self.assertTrue(getattr(hyperdial, name).__doc__, name)
        for cls in (hyperdial.Run, hyperdial.Config, hyperdial.Summary):
            for attr, value in vars(cls).items():
                if not attr.startswith("_") and (callable(value) or isinstance(value, property)):
                    self.assertTrue(value.__doc__, "%s.%s" % (cls.__name__, attr))


if __name__ == "__main__":
    unittest.main()
