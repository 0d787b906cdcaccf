"""Tests of the ask/tell API (hyperdial.Sweep, hyperdial.Trial).

Against the fake server (fake_server.py), and once against the real binary when one is found:
HYPERDIAL_BIN, else target/release/hyperdial or target/debug/hyperdial (under CARGO_TARGET_DIR when set).

Run from the repository root: python3 -m unittest discover -s python/tests -v
"""

import _thread
import io
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import warnings
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))

import hyperdial  # noqa: E402
from fake_server import FakeServer, closed_port_url, wait_for  # noqa: E402
from real_server import BINARY, SKIP_REASON, RealServerCase  # noqa: E402


class SweepTestCase(unittest.TestCase):
    def setUp(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
        patcher = mock.patch.dict(os.environ, env, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)
        for name, value in [("CALL_RETRY_FOR", 0.5), ("ASK_BACKOFF", (0.01, 0.05)),
                            ("REQUEST_TIMEOUT", 2.0)]:
            p = mock.patch.object(hyperdial._settings, name, value)
            p.start()
            self.addCleanup(p.stop)
        self.server = FakeServer().start()
        self.addCleanup(self.server.stop)

    CONFIG = {"method": "bayes", "metric": {"name": "val loss", "goal": "minimize"},
              "parameters": {"x": {"min": 0.0, "max": 1.0}}}

    def create(self, **kwargs):
        return hyperdial.Sweep.create(self.CONFIG, server=self.server.url, **kwargs)


class CreateTests(SweepTestCase):
    def test_create_from_dict_sends_it_as_a_json_object(self):
        sweep = self.create(project="p1", seed=42)
        (req,) = self.server.of("POST", "/api/v1/sweeps")
        self.assertEqual(req.body["config"], self.CONFIG)
        self.assertNotIn("source", req.body)
        self.assertEqual(req.body["project"], "p1")
        self.assertEqual(req.body["seed"], 42)
        self.assertNotIn("resume", req.body)
        self.assertEqual(sweep.id, "sw000001")
        self.assertEqual(sweep.state, "running")
        self.assertEqual(sweep.metric["name"], "val loss")

    def test_create_from_text_sends_it_verbatim(self):
        text = "method: random\nparameters:\n  x: {min: 0.0, max: 1.0}\n"
        hyperdial.Sweep.create(text, server=self.server.url)
        (req,) = self.server.of("POST", "/api/v1/sweeps")
        self.assertEqual(req.body["source"], text)
        self.assertNotIn("project", req.body)

    def test_server_and_token_from_the_environment(self):
        self.server.token = "s3cret"
        with mock.patch.dict(os.environ, {"HYPERDIAL_SERVER": self.server.url,
                                          "HYPERDIAL_TOKEN": "s3cret"}):
            sweep = hyperdial.Sweep.create(self.CONFIG)
            trial = sweep.ask()
            sweep.tell(trial, 1.0)
        for req in self.server.requests:
            self.assertEqual(req.headers.get("Authorization"), "Bearer s3cret")
        self.assertEqual(sweep.server, self.server.url)

    def test_default_server(self):
        sweep = hyperdial.Sweep({"id": "x"})
        self.assertEqual(sweep.server, hyperdial._settings.DEFAULT_SERVER)

    def test_invalid_config_raises_value_error_with_the_servers_message(self):
        with self.assertRaises(ValueError) as ctx:
            hyperdial.Sweep.create("method: invalid", server=self.server.url)
        self.assertIn("`min` must be below `max`", str(ctx.exception))

    def test_bad_config_type(self):
        with self.assertRaises(TypeError):
            hyperdial.Sweep.create(42, server=self.server.url)

    def test_get(self):
        created = self.create()
        sweep = hyperdial.Sweep.get(created.id, server=self.server.url)
        self.assertEqual(sweep.id, created.id)
        self.assertEqual(sweep.metric, created.metric)
        with self.assertRaises(KeyError):
            hyperdial.Sweep.get("nope", server=self.server.url)


class AskTellTests(SweepTestCase):
    def test_ask_gives_a_trial(self):
        sweep = self.create()
        trial = sweep.ask()
        (claim,) = self.server.of("POST", "/claim")
        # No agent; a long poll, and the claim's idempotency key.
        self.assertEqual(sorted(claim.body), ["claim_key", "wait_ms"])
        self.assertEqual(trial.number, 1)
        self.assertEqual(trial.params, {"x": 0.1, "opt.lr": 0.01, "opt.kind": "adam"})
        self.assertEqual(trial.config.opt.kind, "adam")
        self.assertIsInstance(trial.config, hyperdial.Config)
        self.assertTrue(trial.open)
        self.assertIn("Trial(", repr(trial))

    def test_optunas_suggest_calls_say_where_the_space_is_declared(self):
        trial = self.create().ask()
        with self.assertRaises(AttributeError) as caught:
            trial.suggest_float("x", 0.0, 1.0)
        said = str(caught.exception)
        self.assertIn("has no suggest_float()", said)
        self.assertIn("declared when the sweep is created", said)
        self.assertIn('trial.params["lr"]', said)
        # Any other missing name is Python's usual error, and hasattr still works.
        with self.assertRaises(AttributeError) as caught:
            trial.no_such_thing
        self.assertEqual(str(caught.exception), "'Trial' object has no attribute 'no_such_thing'")
        self.assertFalse(hasattr(trial, "suggest_int"))
        self.assertEqual(trial.params["x"], 0.1)
        # Each call is answered with its own counterpart in a sweep config.
        for call, ours in [("suggest_int", "distribution: int_uniform, min: 1, max: 8"),
                           ("suggest_categorical", "optimizer: {values: [adam, sgd]}"),
                           ("suggest_discrete_uniform", "distribution: q_uniform"),
                           ("suggest_uniform", "dropout: {min: 0.0, max: 0.5}"),
                           ("suggest_loguniform", "log_uniform_values")]:
            with self.assertRaises(AttributeError) as caught:
                getattr(trial, call)
            said = str(caught.exception)
            self.assertIn("has no %s()" % call, said)
            self.assertIn("Optuna's %s(" % call, said)
            self.assertIn(ours, said)

    def test_optunas_study_attributes_say_what_stands_for_them(self):
        sweep = self.create()
        for name, ours in [("best_trial", "sweep.best()"), ("best_value", "sweep.best().value"),
                           ("best_params", "sweep.best().params"),
                           ("trials_dataframe", "hyperdial export")]:
            with self.assertRaises(AttributeError) as caught:
                getattr(sweep, name)
            said = str(caught.exception)
            self.assertIn("Optuna's study.%s" % name, said)
            self.assertIn(ours, said)
        self.assertFalse(hasattr(sweep, "no_such_thing"))
        with self.assertRaises(AttributeError) as caught:
            sweep.ask().values
        self.assertIn("trial.value", str(caught.exception))

    def test_a_claim_sends_one_key_on_each_retry_and_a_new_one_for_the_next_claim(self):
        sweep = self.create()
        # Two failed attempts (the server may have stored the trial each time): the retries
        # carry the first attempt's key, so such a server answers the trial it stored.
        self.server.claim_statuses = [503, 503]
        with mock.patch.object(hyperdial._settings, "CALL_RETRY_FOR", 5.0):
            first = sweep.ask()
        keys = [c.body["claim_key"] for c in self.server.of("POST", "/claim")]
        self.assertEqual(len(keys), 3)
        self.assertEqual(len(set(keys)), 1)
        self.assertRegex(keys[0], r"^[0-9a-f]{32}$")
        # A claim that got nothing (204) is settled: the next one has a key of its own.
        self.server.claim_statuses = [204]
        second = sweep.ask()
        # The claim that tells, retried, carries one key and the same tell.
        self.server.claim_statuses = [503]
        sweep.tell_and_ask(second, 0.5)
        claims = self.server.of("POST", "/claim")
        keys = [c.body["claim_key"] for c in claims]
        self.assertEqual(len(keys), 7)
        self.assertEqual(len(set(keys)), 4)
        self.assertNotEqual(keys[3], keys[4])
        self.assertEqual(keys[5], keys[6])
        self.assertEqual(claims[5].body["tell"], claims[6].body["tell"])
        self.assertEqual(claims[5].body["tell"]["run"], second.id)
        self.assertNotEqual(first.id, second.id)

    def test_tell_sends_the_metric_with_the_finish(self):
        sweep = self.create()
        trial = sweep.ask()
        sweep.tell(trial, 0.25)
        self.assertEqual(self.server.of("POST", "/metrics"), [])  # one request, not two
        (finish,) = self.server.of("POST", "/runs/%s/finish" % trial.id)
        self.assertEqual(finish.body, {"exit_code": 0, "values": {"val loss": 0.25}})
        self.assertEqual(trial.state, "finished")
        self.assertEqual(trial.value, 0.25)
        self.assertFalse(trial.open)
        with self.assertRaises(RuntimeError):
            sweep.tell(trial, 0.3)

    def test_tell_accepts_numpy_like_scalars(self):
        class Scalar:
            def item(self):
                return 1.5

        sweep = self.create()
        trial = sweep.ask()
        sweep.tell(trial, Scalar())
        (finish,) = self.server.of("POST", "/finish")
        self.assertEqual(finish.body["values"]["val loss"], 1.5)

    def test_a_decimal_or_fraction_is_told_as_the_float_it_makes(self):
        import decimal
        import fractions
        sweep = self.create()
        for told, sent in [(decimal.Decimal("0.125"), 0.125), (fractions.Fraction(1, 4), 0.25),
                           (decimal.Decimal("NaN"), None)]:
            trial = sweep.ask()
            sweep.tell(trial, told)
            finish = self.server.of("POST", "/finish")[-1]
            self.assertEqual(finish.body["values"], {"val loss": sent})

    def test_a_value_that_is_not_a_number_fails_the_trial_and_warns(self):
        # As Optuna's tell: the trial ends failed on the server, saying what was given (it
        # would otherwise stay running until the run timeout crashes it and it is retried).
        sweep = self.create()
        for bad, given in [("0.5", "is not a number: got str '0.5'"),
                           (object, "is not a number: got type <class 'object'>"),
                           ({"loss": 0.5}, "has the objectives val loss: no value for val loss; loss is "
                                           "not among them")]:
            trial = sweep.ask()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.assertIs(sweep.tell(trial, bad), trial)
            (warning,) = caught
            self.assertIs(warning.category, hyperdial.ValueWarning)
            self.assertTrue(issubclass(warning.category, UserWarning))
            self.assertEqual(warning.filename, __file__)  # the caller's line
            self.assertIn("trial %s of sweep %s" % (trial.number, sweep.id),
                          str(warning.message))
            self.assertIn(given, str(warning.message))
            finish = self.server.of("POST", "/runs/%s/finish" % trial.id)[-1]
            self.assertNotIn("values", finish.body)
            self.assertEqual((finish.body["state"], finish.body["exit_code"]), ("failed", 1))
            self.assertIn(given, finish.body["error"])
            self.assertEqual(self.server.sweep_runs[trial.id]["state"], "failed")
            self.assertEqual((trial.state, trial.open), ("failed", False))
        # The same when the finish travels with the next claim.
        trial = sweep.ask()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            following = sweep.tell_and_ask(trial, "0.5")
        self.assertEqual(len(caught), 1)
        told = self.server.of("POST", "/claim")[-1].body["tell"]
        self.assertEqual(told["finish"]["state"], "failed")
        self.assertIn("got str '0.5'", told["finish"]["error"])
        self.assertEqual(trial.state, "failed")
        self.assertTrue(following.open)

    def test_an_unknown_state_raises_before_anything_is_sent(self):
        sweep = self.create()
        trial = sweep.ask()
        before = len(self.server.requests)
        with self.assertRaises(ValueError) as ctx:
            sweep.tell(trial, 1.0, state="bogus")
        for word in ("'bogus'", "finished, failed, crashed, stopped_early, cancelled"):
            self.assertIn(word, str(ctx.exception))
        self.assertEqual(len(self.server.requests), before)
        self.assertEqual((trial.state, trial.open), ("running", True))
        sweep.tell(trial, 1.0)  # the trial is as it was: it can still be told
        self.assertEqual(trial.state, "finished")

    def test_tell_none_marks_failed_without_a_metric(self):
        sweep = self.create()
        trial = sweep.ask()
        sweep.tell(trial, None)
        (finish,) = self.server.of("POST", "/finish")
        self.assertNotIn("values", finish.body)
        self.assertEqual(finish.body["state"], "failed")
        self.assertEqual(trial.state, "failed")

    def test_tell_nan_sends_null_and_marks_failed(self):
        sweep = self.create()
        trial = sweep.ask()
        sweep.tell(trial, float("nan"))
        (finish,) = self.server.of("POST", "/finish")
        self.assertEqual(finish.body["values"], {"val loss": None})
        self.assertEqual(finish.body["state"], "failed")

    def test_tell_with_state_failed(self):
        sweep = self.create()
        trial = sweep.ask()
        sweep.tell(trial, 3.0, state="failed")
        (finish,) = self.server.of("POST", "/finish")
        self.assertEqual(finish.body["state"], "failed")
        self.assertEqual(finish.body["values"], {"val loss": 3.0})
        with self.assertRaises(ValueError):
            sweep.tell(sweep.ask(), 1.0, state="weird")

    def test_multi_objective_tell_and_report_take_a_dict_or_a_list(self):
        config = {"method": "tpe", "parameters": {"x": {"min": 0.0, "max": 1.0}},
                  "metrics": [{"name": "loss"}, {"name": "ms", "goal": "minimize"}]}
        sweep = hyperdial.Sweep.create(config, server=self.server.url)
        self.assertEqual(sweep.objectives(), ["loss", "ms"])
        trial = sweep.ask()
        trial.report({"ms": 3, "loss": 0.5}, step=0)
        sweep.tell(trial, {"loss": 0.25, "ms": 2.5})
        points = [r.body["points"][0]["values"] for r in self.server.of("POST", "/metrics")]
        self.assertEqual(points, [{"loss": 0.5, "ms": 3}])
        (told,) = self.server.of("POST", "/finish")
        self.assertEqual(told.body["values"], {"loss": 0.25, "ms": 2.5})
        self.assertEqual(trial.value, {"loss": 0.25, "ms": 2.5})
        self.assertEqual(trial.state, "finished")
        listed = sweep.ask()
        sweep.tell(listed, [0.1, float("inf")])
        last = self.server.of("POST", "/finish")[-1]
        self.assertEqual(last.body["values"], {"loss": 0.1, "ms": None})
        self.assertEqual(listed.state, "failed")  # not every objective is finite
        for bad, said in [(0.3, "several objectives"), ({"loss": 1.0}, "objectives loss, ms"),
                          ({"loss": 1.0}, "no value for ms (give a number for each"),
                          ({"loss": 1.0, "ms": 1.0, "acc": 1.0}, "acc is not among them"),
                          ([1.0], "got 1 values")]:
            refused = sweep.ask()
            with self.assertWarns(hyperdial.ValueWarning) as ctx:
                sweep.tell(refused, bad)
            self.assertIn(said, str(ctx.warning))
            self.assertEqual(refused.state, "failed")
            self.assertIn(said, self.server.of("POST", "/finish")[-1].body["error"])
        with self.assertRaises(ValueError):  # a report is not a tell: it raises
            sweep.ask().report({"loss": 1.0})
        # A single number reported says "report" and why a dict is wanted.
        with self.assertRaises(TypeError) as caught:
            sweep.ask().report(0.5, step=1)
        said = str(caught.exception)
        self.assertIn("report a dict {name: value}", said)
        self.assertIn("early termination judges one metric", said)
    def test_tell_and_ask_tells_with_the_next_claim(self):
        sweep = self.create()
        first = sweep.ask()
        second = sweep.tell_and_ask(first, 0.5)
        claims = self.server.of("POST", "/claim")
        self.assertEqual(len(claims), 2)
        self.assertEqual(claims[1].body["tell"], {
            "run": first.id, "finish": {"exit_code": 0, "values": {"val loss": 0.5}}})
        self.assertEqual(self.server.of("POST", "/finish"), [])
        self.assertEqual((first.state, first.value, first.open), ("finished", 0.5, False))
        self.assertEqual(second.number, 2)
        self.assertTrue(second.open)
        # The sweep's end: None, and the last trial was still told.
        self.server.sweep_cap = 2
        self.assertIsNone(sweep.tell_and_ask(second, 0.25))
        self.assertEqual(self.server.sweep_runs[second.id]["state"], "finished")
        self.assertEqual(sweep.best().id, second.id)

    def test_an_unreachable_server_is_named_with_how_long_it_was_tried(self):
        sweep = hyperdial.Sweep({"id": "x"}, server=closed_port_url())
        for call in (sweep.ask, lambda: sweep.optimize(lambda t: 0.5, n_trials=2)):
            with self.assertRaises(RuntimeError) as ctx:
                call()
            self.assertIn("after retrying for", str(ctx.exception))
            self.assertIn("hyperdial server", str(ctx.exception))

    def test_a_server_answering_503_is_not_told_to_be_started(self):
        sweep = self.create()
        self.server.claim_statuses = [503] * 1000
        with self.assertRaises(RuntimeError) as ctx:
            sweep.ask()
        message = str(ctx.exception)
        self.assertIn("after retrying for", message)
        self.assertIn("is running but could not do it (503: its database", message)
        self.assertNotIn("hyperdial server", message)

    def test_calls_retry_for_the_window_hyperdial_retry_seconds_sets(self):
        sweep = self.create()
        self.server.claim_statuses = [503] * 1000
        os.environ["HYPERDIAL_RETRY_SECONDS"] = "1.5"
        # Attempts at 0, 0.25 and 0.75 s; the next would come after the window. With the
        # default window of 60 s there would be about 15.
        with mock.patch.object(hyperdial._settings, "CALL_RETRY_FOR", None):
            with self.assertRaises(RuntimeError) as ctx:
                sweep.ask()
        self.assertIn("after retrying for", str(ctx.exception))
        self.assertLessEqual(len(self.server.of("POST", "/claim")), 4)
        self.assertGreaterEqual(len(self.server.of("POST", "/claim")), 2)

    def test_a_server_that_accepts_but_does_not_answer_is_not_told_to_be_started(self):
        sweep = self.create()
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        self.addCleanup(silent.close)
        url = "http://127.0.0.1:%d" % silent.getsockname()[1]
        sweep._transport = hyperdial._transport._Transport(url, None, keep_alive=True)
        with mock.patch.object(hyperdial._settings, "REQUEST_TIMEOUT", 0.2):
            with self.assertRaises(RuntimeError) as ctx:
                sweep.ask()
        message = str(ctx.exception)
        self.assertIn("accepted the connection but did not answer in time", message)
        self.assertNotIn("is the server running?", message)

    def test_a_default_server_slow_to_answer_is_used_not_replaced_by_a_local_one(self):
        # A server whose database is down answers 503 only after a second: something listens
        # at the default address, so no local server (on another store) is started.
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        self.addCleanup(silent.close)
        url = "http://127.0.0.1:%d" % silent.getsockname()[1]
        self.addCleanup(hyperdial._local_server._stop_local)
        with mock.patch.object(hyperdial._settings, "DEFAULT_SERVER", url), \
                mock.patch.object(hyperdial._settings, "PROBE_TIMEOUT", 0.2), \
                mock.patch.object(hyperdial._settings, "REQUEST_TIMEOUT", 0.2), \
                mock.patch.dict(os.environ, {"HYPERDIAL_BIN": BINARY or "hyperdial"}):
            with self.assertRaises(RuntimeError) as ctx:
                hyperdial.Sweep.create(self.CONFIG)
            with self.assertRaises(RuntimeError) as named:
                hyperdial.Sweep.get("s1", server=url)
        self.assertIsNone(hyperdial._local_server._local)
        for message in (str(ctx.exception), str(named.exception)):
            self.assertIn("accepted the connection but did not answer in time", message)
            self.assertNotIn("no server answers", message)

    def test_optimize_names_the_trial_whose_value_could_not_be_stored(self):
        sweep = self.create()

        def objective(trial):
            # The server is gone while the trial runs.
            sweep._transport = hyperdial._transport._Transport(closed_port_url(), None,
                                                               keep_alive=True)
            return 0.125

        with self.assertRaises(RuntimeError) as ctx:
            sweep.optimize(objective, n_trials=1)
        message = str(ctx.exception)
        self.assertIn("returned 0.125, which was not stored", message)
        self.assertIn("trial 1 of sweep", message)

    def test_optimize_makes_one_request_per_trial(self):
        sweep = self.create()
        self.assertEqual(sweep.optimize(lambda t: 0.5, n_trials=4), 4)
        claims = self.server.of("POST", "/claim")
        # The first claim alone, each next one with the previous trial's tell; the last
        # trial is told alone (nothing more is claimed).
        self.assertEqual(len(claims), 4)
        self.assertNotIn("tell", claims[0].body)
        self.assertEqual([c.body["tell"]["finish"]["values"] for c in claims[1:]],
                         [{"val loss": 0.5}] * 3)
        self.assertEqual(len(self.server.of("POST", "/finish")), 1)

    def test_tell_and_ask_waits_as_ask_does_when_nothing_can_start(self):
        sweep = self.create()
        first = sweep.ask()
        self.server.claim_statuses = [204]  # the told claim finds nothing to start at once
        second = sweep.tell_and_ask(first, 1.0)
        self.assertEqual(second.number, 2)
        self.assertEqual(len(self.server.of("POST", "/claim")), 3)

    def test_tell_names_the_terminal_states_it_accepts(self):
        from hyperdial import _states
        sweep = self.create()
        with self.assertRaises(ValueError) as ctx:
            sweep.tell(sweep.ask(), 1.0, state="running")
        self.assertIn(", ".join(_states.TERMINAL_RUN_STATES), str(ctx.exception))
        self.assertIn("stopped_early", _states.TERMINAL_RUN_STATES)
        self.assertNotIn("running", _states.TERMINAL_RUN_STATES)

    def test_ask_waits_while_the_server_answers_204(self):
        sweep = self.create()
        self.server.claim_statuses = [204, 204, 204]
        trial = sweep.ask()
        self.assertIsNotNone(trial)
        self.assertEqual(len(self.server.of("POST", "/claim")), 4)

    def test_ask_asks_the_server_to_wait_and_asks_again_at_once_after_a_long_poll(self):
        sweep = self.create()
        self.server.claim_long_poll = True
        self.server.claim_statuses = [204, 204, 204]
        # A backoff sleep would outlast the timeout: only asking again at once gets a trial.
        with mock.patch.object(hyperdial._settings, "ASK_BACKOFF", (60.0, 60.0)):
            trial = sweep.ask(timeout=30)
        self.assertIsNotNone(trial)
        claims = self.server.of("POST", "/claim")
        self.assertEqual(len(claims), 4)
        for req in claims:
            self.assertTrue(0 < req.body["wait_ms"] <= 20000, req.body)

    def test_ask_times_out(self):
        sweep = self.create()
        self.server.claim_statuses = [204] * 1000
        t0 = time.monotonic()
        with self.assertRaises(TimeoutError):
            sweep.ask(timeout=0.3)
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_ask_returns_none_when_the_sweep_is_over(self):
        self.server.sweep_cap = 2
        sweep = self.create()
        trials = [sweep.ask(), sweep.ask()]
        self.assertTrue(all(trials))
        self.assertIsNone(sweep.ask())
        self.assertEqual(sweep.state, "finished")

    def test_report_and_should_stop(self):
        sweep = self.create()
        trial = sweep.ask()
        self.assertFalse(trial.report(0.9))
        self.assertFalse(trial.report(0.8, step=5))
        self.server.stop_runs = True
        self.assertTrue(trial.report(0.7))
        self.assertTrue(trial.should_stop())
        points = self.server.points()
        self.assertEqual(points, [{"values": {"val loss": 0.9}},
                                  {"step": 5, "values": {"val loss": 0.8}},
                                  {"values": {"val loss": 0.7}}])
        with self.assertRaises(TypeError):
            trial.report(0.5, step=-1)
        sweep.tell(trial, 0.7)
        (finish,) = self.server.of("POST", "/finish")
        self.assertEqual(finish.body, {"exit_code": 0, "state": "stopped_early",
                                       "values": {"val loss": 0.7}})

    def test_best(self):
        sweep = self.create()
        self.assertIsNone(sweep.best())
        for value in (3.0, 1.0, 2.0):
            sweep.tell(sweep.ask(), value)
        best = sweep.best()
        self.assertEqual(best.value, 1.0)
        self.assertEqual(best.number, 2)
        self.assertAlmostEqual(best.params["x"], 0.2)

    def test_open_trials_get_heartbeats(self):
        with mock.patch.object(hyperdial._settings, "TRIAL_HEARTBEAT", 0.1):
            sweep = self.create()
            trial = sweep.ask()
            self.assertTrue(wait_for(
                lambda: self.server.of("POST", "/runs/%s/heartbeat" % trial.id), 5.0))
            self.server.stop_runs = True
            self.assertTrue(wait_for(trial.should_stop, 5.0))
            sweep.tell(trial, 1.0)
            n = len(self.server.of("POST", "/heartbeat"))
            time.sleep(0.5)
            self.assertEqual(len(self.server.of("POST", "/heartbeat")), n)

    def test_failing_heartbeats_are_said_once_and_so_is_their_recovery(self):
        err = io.StringIO()
        with mock.patch.object(hyperdial._settings, "TRIAL_HEARTBEAT", 0.1), \
                mock.patch.object(hyperdial._settings, "HEARTBEAT_WARN_AFTER", 0.5), \
                mock.patch.object(sys, "stderr", err):
            sweep = self.create()
            self.server.heartbeat_status = 503
            trial = sweep.ask()
            # (Trials other tests left open beat on servers long gone: their lines name a
            # refused connection, not this server's 503.)
            ours = "answered 503: no heartbeats here); the server ends a trial crashed when " \
                "it hears nothing of it for its run timeout"
            self.assertTrue(wait_for(lambda: ours in err.getvalue(), 5.0))
            # Said once, not at every failed heartbeat.
            time.sleep(0.5)
            self.assertEqual(err.getvalue().count(ours), 1, err.getvalue())
            self.server.heartbeat_status = 200
            self.assertTrue(wait_for(lambda: "reach the server again" in err.getvalue(), 5.0))
            sweep.tell(trial, 1.0)

    def test_a_trial_optimize_could_not_tell_is_left_to_crash_not_kept_alive(self):
        # The server refuses the tell (5xx for the retry window): optimize raises, and the
        # trial's heartbeats stop, so the server ends it crashed, as the error says, even
        # while this process lives on.
        with mock.patch.object(hyperdial._settings, "TRIAL_HEARTBEAT", 0.1), \
                mock.patch.object(sys, "stderr", io.StringIO()):
            sweep = self.create()
            self.server.fail_status = 503
            with self.assertRaises(RuntimeError) as raised:
                sweep.optimize(lambda t: 0.5, n_trials=1)
            self.assertIn("once the server is back the trial ends crashed", str(raised.exception))
            self.assertEqual(sweep._open, {})
            self.server.fail_status = None
            beats = len(self.server.of("POST", "/heartbeat"))
            time.sleep(0.6)
            self.assertEqual(len(self.server.of("POST", "/heartbeat")), beats)

    def test_unreachable_server_raises(self):
        sweep = hyperdial.Sweep({"id": "x"}, server="http://127.0.0.1:9")
        with self.assertRaises(RuntimeError):
            sweep.ask()

    def test_a_named_server_that_does_not_answer_fails_at_once_with_the_command(self):
        url = closed_port_url()
        # The ordinary retry window (60 s) is not what create() waits for a first contact.
        with mock.patch.object(hyperdial._settings, "CALL_RETRY_FOR", 3600.0):
            for named in ({"server": url}, {}):
                env = {"HYPERDIAL_SERVER": url} if not named else {}
                with mock.patch.dict(os.environ, env):
                    t0 = time.monotonic()
                    with self.assertRaises(RuntimeError) as ctx:
                        hyperdial.Sweep.create(self.CONFIG, **named)
                    # A hang guard far above the 1.5 s budget (the old wait was about 58 s).
                    self.assertLess(time.monotonic() - t0, 15.0)
                message = str(ctx.exception)
                self.assertIn("no server answers at %s" % url, message)
                # The command starts a server at that address, not at the default one.
                self.assertIn("`hyperdial server --bind %s`" % url[len("http://"):], message)

    def test_the_command_to_start_a_server_binds_the_address_named(self):
        for url, command in [
                (hyperdial._settings.DEFAULT_SERVER, "`hyperdial server`"),
                ("http://127.0.0.1:9", "`hyperdial server --bind 127.0.0.1:9`"),
                ("http://localhost:8400", "`hyperdial server --bind 127.0.0.1:8400`"),
                ("http://127.0.0.1", "`hyperdial server --bind 127.0.0.1:80`"),
                ("http://gpu-box:8337", "`HYPERDIAL_TOKEN=TOKEN hyperdial server --bind "
                                        "0.0.0.0:8337` on gpu-box")]:
            self.assertIn(command, hyperdial._transport._start_command(url), url)
        # The message of calls that ran out of retries says the same.
        sweep = hyperdial.Sweep({"id": "x"}, server="http://127.0.0.1:9")
        with self.assertRaises(RuntimeError) as ctx:
            sweep.ask()
        self.assertIn("`hyperdial server --bind 127.0.0.1:9`", str(ctx.exception))

    def test_without_a_server_or_a_binary_the_error_says_what_to_run(self):
        env = {"HYPERDIAL_BIN": os.path.join(tempfile.gettempdir(), "no-such-hyperdial")}
        with mock.patch.object(hyperdial._settings, "DEFAULT_SERVER", closed_port_url()), \
                mock.patch.dict(os.environ, env):
            with self.assertRaises(RuntimeError) as ctx:
                hyperdial.Sweep.create(self.CONFIG)
        self.assertIn("no `hyperdial` binary was found", str(ctx.exception))
        self.assertIn("Run `hyperdial server`", str(ctx.exception))


@unittest.skipUnless(BINARY, SKIP_REASON)
class RealServerTests(RealServerCase):
    """The ask/tell loop against `hyperdial server`."""

    TMP_PREFIX = "hyperdial-asktell-"

    def test_create_with_resume_says_what_it_did_and_warns_when_the_config_was_edited(self):
        config = {"name": "resume-me", "method": "random", "metric": {"name": "loss"},
                  "parameters": {"x": {"min": 0.0, "max": 5.0}}}
        err = io.StringIO()
        with mock.patch.object(sys, "stderr", err), warnings.catch_warnings():
            warnings.simplefilter("error")  # neither of these warns
            first = hyperdial.Sweep.create(config, server=self.url, project="res", resume=True)
            first.optimize(lambda t: t.params["x"], n_trials=3)
            again = hyperdial.Sweep.create(config, server=self.url, project="res", resume=True)
        self.assertEqual(again.id, first.id)
        said = err.getvalue()
        self.assertIn("created sweep %s (resume-me): no unfinished sweep of project res has "
                      "this config" % first.id, said)
        self.assertIn("resumed sweep %s (resume-me) of project res: 3 trials so far"
                      % first.id, said)
        edited = dict(config, parameters={"x": {"min": 0.0, "max": 4.0}})
        with mock.patch.object(sys, "stderr", io.StringIO()), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            other = hyperdial.Sweep.create(edited, server=self.url, project="res", resume=True)
        self.assertNotEqual(other.id, first.id)
        texts = [str(w.message) for w in caught if w.category is hyperdial.ConfigWarning]
        self.assertEqual(len(texts), 1, texts)
        self.assertIn("made a new sweep %s: the unfinished sweep %s named 'resume-me' has "
                      "another config" % (other.id, first.id), texts[0])
        self.assertIn("Sweep.get(%r)" % first.id, texts[0])
        self.assertEqual(caught[0].filename, __file__)

    def test_bayes_ask_tell_loop_improves_on_the_initial_design(self):
        config = {"method": "bayes", "metric": {"name": "loss", "goal": "minimize"},
                  "run_cap": 15,
                  "parameters": {"x": {"min": -5.0, "max": 5.0},
                                 "opt": {"parameters": {"y": {"min": -5.0, "max": 5.0}}}}}
        sweep = hyperdial.Sweep.create(config, server=self.url, project="asktell", seed=3)
        self.assertEqual(sweep.method, "bayes")
        values = []
        while True:
            trial = sweep.ask(timeout=10)
            if trial is None:
                break
            self.assertEqual(trial.config.opt.y, trial.params["opt.y"])
            x, y = trial.params["x"], trial.config.opt.y
            value = (x - 1.2) ** 2 + (y + 0.7) ** 2
            sweep.tell(trial, value)
            self.assertEqual(trial.state, "finished")
            values.append(value)
        self.assertEqual(len(values), 15)
        self.assertEqual(sweep.refresh().state, "finished")
        best = sweep.best()
        self.assertEqual(best.value, min(values))
        # The first max(5, d + 1) = 5 runs are the quasi-random design; the GP must beat them.
        self.assertLess(best.value, min(values[:5]))
        self.assertLess(best.value, 0.5)

    def test_estimate_of_the_best_configuration_is_not_the_lucky_draw(self):
        # A grid over x (optimum at 12) and a second, idle parameter; a noise of about 0.2
        # on every run, unlucky near the optimum, and one lucky draw far from it.
        xs = ", ".join(str(x) for x in range(20))
        config = ("method: grid\nmetric: {name: loss}\nparameters:\n  x: {values: [%s]}\n"
                  "  rep: {values: [1, 2]}\n" % xs)
        sweep = hyperdial.Sweep.create(config, server=self.url, seed=5)

        def loss(x, rep):
            noise = ((x * 37 + rep * 11) % 7 - 3) * 0.1
            if 10 <= x <= 14:
                noise = abs(noise) + 0.1
            if x == 6 and rep == 1:
                noise = -0.95
            return (x - 12) ** 2 / 40.0 + noise

        for n in range(40):
            trial = sweep.ask(timeout=10)
            sweep.tell(trial, loss(trial.params["x"], trial.params["rep"]))
            if n == 3:
                self.assertIsNone(sweep.estimate())  # 4 results: too few
        self.assertEqual(sweep.best().params["x"], 6)
        estimate = sweep.estimate()
        self.assertTrue(estimate["differs"], estimate)
        self.assertEqual(estimate["observed_best"], sweep.best().id)
        self.assertIn(estimate["trial"].params["x"], range(10, 15), estimate)
        self.assertEqual(estimate["results"], 40)
        self.assertLess(estimate["mean"], estimate["observed_best_mean"])
        self.assertGreater(estimate["noise_sd"], 0.05)
        self.assertGreaterEqual(estimate["p_better"], 0.75)

    def test_multi_objective_ask_tell_loop_has_a_front(self):
        config = ("method: tpe\nrun_cap: 8\nmetrics:\n  - {name: a}\n"
                  "  - {name: b, goal: maximize}\nparameters:\n  x: {min: 0.0, max: 1.0}\n")
        sweep = hyperdial.Sweep.create(config, server=self.url, seed=4)
        self.assertEqual(sweep.objectives(), ["a", "b"])
        told = {}
        while True:
            trial = sweep.ask(timeout=10)
            if trial is None:
                break
            x = trial.params["x"]
            sweep.tell(trial, {"a": x, "b": x * x})  # a trade-off: every run is on the front
            told[trial.number] = (x, x * x)
        self.assertEqual(len(told), 8)
        front = json.loads(urllib.request.urlopen(
            "%s/api/v1/sweeps/%s/front" % (self.url, sweep.id), timeout=10).read())
        self.assertEqual([o["goal"] for o in front["objectives"]], ["minimize", "maximize"])
        self.assertEqual(sorted(r["number"] for r in front["runs"] if r["rank"] == 0),
                         sorted(told))
        for r in front["runs"]:
            self.assertEqual(tuple(r["values"]), told[r["number"]])
        self.assertIsNone(sweep.best())
        # Read back, a trial's value is the dict of each objective's final value, as told
        # (not the best value its first objective ever reached).
        extra = sweep.trials()[0]
        for trial in sweep.trials():
            a, b = told[trial.number]
            self.assertEqual(trial.value, {"a": a, "b": b})
        self.assertIsInstance(extra.value, dict)
    def test_tell_and_ask_loop_runs_to_the_cap(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss", "goal": "minimize"}, "run_cap": 6,
             "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)
        told = []
        trial = sweep.ask()
        while trial is not None:
            told.append((trial, trial.params["x"]))
            trial = sweep.tell_and_ask(trial, trial.params["x"])
        self.assertEqual(len(told), 6)
        self.assertEqual(sweep.refresh().state, "finished")
        runs = sweep.trials()
        self.assertEqual([t.state for t in runs], ["finished"] * 6)
        self.assertEqual([t.value for t in runs], [x for _, x in told])
        self.assertEqual(sweep.best().value, min(x for _, x in told))

    def test_optimize_runs_n_trials_and_stops_at_the_sweeps_end(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss", "goal": "maximize"},
             "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url, seed=2)
        seen = []
        calls = []
        told = sweep.optimize(lambda t: seen.append(t.params["x"]) or t.params["x"],
                              n_trials=7, callbacks=[lambda s, t: calls.append(t.state)])
        self.assertEqual(told, 7)
        self.assertEqual(calls, ["finished"] * 7)
        runs = sweep.trials()
        self.assertEqual([t.value for t in runs], seen)
        self.assertEqual([t.state for t in runs], ["finished"] * 7)
        self.assertEqual(sweep.best().value, max(seen))
        self.assertEqual(sweep.refresh().state, "running")  # n_trials ends the loop only
        # A second call goes on with the same sweep; a finite space ends it.
        grid = hyperdial.Sweep.create(
            {"method": "grid", "metric": {"name": "loss"},
             "parameters": {"a": {"values": [1, 2, 3]}, "b": {"values": [10, 20]}}},
            server=self.url)
        self.assertEqual(grid.optimize(lambda t: t.params["a"] * t.params["b"]), 6)
        self.assertEqual(grid.refresh().state, "finished")
        self.assertEqual(grid.best().value, 10)
        self.assertEqual(sweep.optimize(lambda t: 0.5, n_trials=2), 2)
        self.assertEqual(len(sweep.trials()), 9)
        self.assertEqual(sweep.optimize(lambda t: 0.5, n_trials=0), 0)
        self.assertEqual(len(sweep.trials()), 9)  # nothing claimed, nothing left open

    def test_optimize_tells_failures_prunes_and_raises_what_it_does_not_catch(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss"},
             "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)

        def objective(trial):
            if trial.number == 2:
                raise ArithmeticError("diverged at step 3")
            if trial.number == 3:
                trial.report(0.25, step=0)
                raise hyperdial.TrialPruned()
            if trial.number == 5:
                raise LookupError("no such file")
            return 1.0

        with self.assertRaises(LookupError):
            sweep.optimize(objective, n_trials=10, catch=(ArithmeticError,))
        runs = {t.number: t for t in sweep.trials()}
        self.assertEqual(sorted(runs), [1, 2, 3, 4, 5])  # nothing claimed after the raise
        self.assertEqual([runs[n].state for n in sorted(runs)],
                         ["finished", "failed", "stopped_early", "finished", "failed"])
        self.assertIn("diverged at step 3", runs[2].data.get("error") or "")
        self.assertIn("LookupError", runs[5].data.get("error") or "")
        self.assertEqual(runs[3].value, 0.25)  # the reported value stays its metric
        with self.assertRaises(ValueError):
            sweep.optimize(objective, n_trials=-1)
        with self.assertRaises(TypeError):
            sweep.optimize(objective, n_trials=1, catch=("ValueError",))

    def test_optimize_stops_at_its_timeout_and_a_keyboard_interrupt_cancels_the_trial(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss"},
             "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)
        told = sweep.optimize(lambda t: time.sleep(0.05) or 1.0, timeout=0.3)
        self.assertGreaterEqual(told, 1)
        self.assertLessEqual(told, 7)
        self.assertEqual(len(sweep.trials()), told)  # no trial left claimed

        def interrupted(trial):
            raise KeyboardInterrupt

        with self.assertRaises(KeyboardInterrupt):
            sweep.optimize(interrupted)
        last = sweep.trials()[-1]
        self.assertEqual(last.state, "cancelled")
        self.assertEqual(len(sweep.trials()), told + 1)

    def test_optimize_fails_a_trial_whose_value_is_not_a_number_and_goes_on(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss"},
             "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)
        err = io.StringIO()
        with mock.patch.object(sys, "stderr", err):
            told = sweep.optimize(lambda t: "0.5" if t.number % 2 else 1.0, n_trials=4)
        self.assertEqual(told, 4)
        runs = sweep.trials()
        self.assertEqual([t.state for t in runs], ["failed", "finished"] * 2)
        self.assertIn("is not a number: got str '0.5'", runs[0].data.get("error") or "")
        # Said on standard error for each trial (with its parameters), not once per line as
        # a warning would be.
        self.assertEqual(err.getvalue().count("is not a number: got str '0.5'"), 2,
                         err.getvalue())
        self.assertIn("trial 3 of sweep %s {'x': " % sweep.id, err.getvalue())

    def test_optimize_says_so_when_a_trial_fails_by_returning_none_nan_or_inf(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss"},
             "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)
        returns = {1: None, 2: float("nan"), 3: 0.5, 4: float("-inf")}
        err = io.StringIO()
        with mock.patch.object(sys, "stderr", err):
            told = sweep.optimize(lambda t: returns[t.number], n_trials=4)
        self.assertEqual(told, 4)
        self.assertEqual([t.state for t in sweep.trials()],
                         ["failed", "failed", "finished", "failed"])
        said = err.getvalue()
        for number, text in [(1, "None"), (2, "nan"), (4, "-inf")]:
            self.assertIn("trial %d of sweep %s {'x': " % (number, sweep.id), said)
            self.assertIn("returned %s: it ends failed" % text, said)
        self.assertNotIn("trial 3 ", said)

    def test_optimize_with_n_jobs_runs_threads_that_share_n_trials(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss"},
             "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)
        threads, lock = set(), threading.Lock()

        def objective(trial):
            with lock:
                threads.add(threading.current_thread().name)
            time.sleep(0.05)
            return trial.params["x"]

        self.assertEqual(sweep.optimize(objective, n_trials=12, n_jobs=3), 12)
        trials = sweep.trials()
        self.assertEqual(len(trials), 12)
        self.assertTrue(all(t.state == "finished" for t in trials), [t.state for t in trials])
        self.assertEqual(len(threads), 3, threads)
        # An exception raised in a worker thread stops the others and is raised here; no
        # trial is left open.

        def failing(trial):
            if threading.current_thread() is not threading.main_thread():
                raise RuntimeError("boom in a worker")
            time.sleep(0.05)
            return 1.0

        with self.assertRaisesRegex(RuntimeError, "boom in a worker"):
            sweep.optimize(failing, n_trials=20, n_jobs=2)
        states = [t.state for t in sweep.trials()[12:]]
        self.assertIn("failed", states)
        self.assertFalse(set(states) & {"running", "queued"}, states)
        for bad in (0, -2, 1.5, True):
            with self.assertRaisesRegex(ValueError, "n_jobs must be a positive integer or -1"):
                sweep.optimize(objective, n_trials=1, n_jobs=bad)

    def test_a_long_ask_says_why_nothing_can_start(self):
        sweep = hyperdial.Sweep.create(
            {"method": "random", "metric": {"name": "loss"}, "run_cap": 1,
             "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)
        first = sweep.ask()
        err = io.StringIO()
        with mock.patch.object(sys, "stderr", err), \
                mock.patch.object(hyperdial._settings, "ASK_WAIT", 0.3), \
                mock.patch.object(hyperdial._settings, "ASK_NOTE_AFTER", 0.2):
            with self.assertRaises(TimeoutError):
                sweep.ask(timeout=1.5)
        said = err.getvalue()
        self.assertEqual(said.count("no trial to start for"), 1, said)
        self.assertIn("sweep %s: no trial to start for" % sweep.id, said)
        self.assertIn("1 trial in flight and nothing else can start (run_cap", said)
        sweep.tell(first, 0.5)

    def test_a_claim_parked_on_one_server_hears_of_runs_ended_through_another_on_its_file(self):
        # Processes that find no server each start their own on the default store: two
        # servers on one SQLite file. A claim parked on one must learn that the sweep's last
        # trials ended through the other within its periodic recheck (2 s), not its 20 s hold.
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        other_url = "http://127.0.0.1:%d" % port
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
        with open(os.path.join(self.tmp, "second-server.log"), "wb") as log:
            other = subprocess.Popen(
                [BINARY, "server", "--db", os.path.join(self.tmp, "db.sqlite"),
                 "--bind", "127.0.0.1:%d" % port], stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    urllib.request.urlopen(other_url + "/api/v1/sweeps", timeout=1).read()
                    break
                except Exception:
                    self.assertIsNone(other.poll(), "the second server exited")
                    self.assertLess(time.monotonic(), deadline, "the second server did not start")
                    time.sleep(0.05)
            here = hyperdial.Sweep.create(
                {"method": "random", "metric": {"name": "loss"}, "run_cap": 2,
                 "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)
            there = hyperdial.Sweep.get(here.id, server=other_url)
            trials = [here.ask(), there.ask()]
            answer = {}

            def parked():
                started = time.monotonic()
                answer["trial"] = here.ask(timeout=60)
                answer["seconds"] = time.monotonic() - started

            waiter = threading.Thread(target=parked)
            waiter.start()
            time.sleep(0.5)  # the claim is parked on the first server
            for trial in trials:  # ended through the other server, as its process would
                request = urllib.request.Request(
                    other_url + "/api/v1/runs/%s/finish" % trial.id, method="POST",
                    data=json.dumps({"exit_code": 0, "values": {"loss": 0.5}}).encode(),
                    headers={"Content-Type": "application/json"})
                urllib.request.urlopen(request, timeout=10).read()
            waiter.join(60)
            self.assertIsNone(answer.get("trial", "no answer"))
            # The hold is 20 s; the recheck every 2 s.
            self.assertLess(answer["seconds"], 12, answer)
        finally:
            other.terminate()
            other.wait(10)

    def test_a_ctrl_c_anywhere_in_optimize_leaves_no_trial_open(self):
        # An interrupt lands mostly in the client's socket calls with a fast objective:
        # wherever it lands, every trial ends (told, or cancelled) before it propagates.
        for delay in (0.02, 0.05, 0.11, 0.17, 0.23, 0.3):
            sweep = hyperdial.Sweep.create(
                {"method": "random", "metric": {"name": "loss"},
                 "parameters": {"x": {"min": 0.0, "max": 1.0}}}, server=self.url)
            timer = threading.Timer(delay, _thread.interrupt_main)
            timer.start()
            with self.assertRaises(KeyboardInterrupt):
                sweep.optimize(lambda t: t.params["x"], timeout=30)
            timer.join()
            states = [t.state for t in sweep.trials()]
            self.assertNotIn("running", states, "interrupt after %.2f s" % delay)
            if states:  # (none when it landed before the first claim was sent)
                self.assertIn("cancelled", states[-2:], "interrupt after %.2f s" % delay)

    def test_failed_trials_and_validation(self):
        with self.assertRaises(ValueError) as ctx:
            hyperdial.Sweep.create({"method": "bayes", "parameters": {"x": {"min": 1.0,
                                                                            "max": 0.0}}},
                                   server=self.url)
        self.assertTrue(str(ctx.exception))
        sweep = hyperdial.Sweep.create(
            "method: tpe\nmetric: {name: acc, goal: maximize}\nrun_cap: 3\n"
            "parameters:\n  lr: {distribution: log_uniform_values, min: 1e-4, max: 1e-1}\n",
            server=self.url)
        first = sweep.ask()
        sweep.tell(first, None)
        self.assertEqual(first.state, "failed")
        second = sweep.ask()
        second.report(0.5, step=0)
        sweep.tell(second, float("nan"))
        self.assertEqual(second.state, "failed")
        third = sweep.ask()
        sweep.tell(third, 0.9)
        self.assertIsNone(sweep.ask())
        self.assertEqual(sweep.best().id, third.id)
        states = [t.state for t in sweep.trials()]
        self.assertEqual(states, ["failed", "failed", "finished"])


@unittest.skipUnless(BINARY, SKIP_REASON)
class _DroppingProxy:
    """A plain HTTP proxy to ``upstream`` that forwards every request and answer, except that
    for the next ``drop`` claims it forwards the request, waits for the server's answer (so
    the server has stored what it claimed) and then closes the client's connection without
    answering: an answer lost after the commit, as when a server is killed at that moment."""

    def __init__(self, upstream):
        import http.client
        import http.server
        import threading
        import urllib.parse

        parts = urllib.parse.urlsplit(upstream)
        proxy = self
        self.drop = 0
        self.dropped = 0
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "accept", "authorization")}
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                finally:
                    conn.close()
                with proxy.lock:
                    lose = self.path.endswith("/claim") and proxy.drop > 0
                    if lose:
                        proxy.drop -= 1
                        proxy.dropped += 1
                if lose:
                    self.close_connection = True
                    return
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_PUT = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@unittest.skipUnless(BINARY, SKIP_REASON)
class LostAnswerTests(RealServerCase):
    """A claim whose answer is lost after the server stored its trial, against `hyperdial
    server`: the client's retry gets that trial, so no run is left running unseen."""

    TMP_PREFIX = "hyperdial-lost-"

    def test_claims_whose_answers_are_lost_leave_no_orphaned_trial(self):
        config = {"method": "random", "metric": {"name": "loss", "goal": "minimize"},
                  "run_cap": 4, "parameters": {"x": {"min": 0.0, "max": 1.0}}}
        created = hyperdial.Sweep.create(config, server=self.url, seed=5)
        proxy = _DroppingProxy(self.url)
        self.addCleanup(proxy.close)
        sweep = hyperdial.Sweep.get(created.id, server=proxy.url)
        seen = []
        # The answers of the first ask() and of the first tell_and_ask() are lost.
        proxy.drop = 1
        trial = sweep.ask(timeout=10)
        proxy.drop = 1
        while trial is not None:
            seen.append(trial.id)
            # With an orphan holding one of the four slots, the fourth trial could not start
            # before the orphan's lease ran out (60 s): ask() would time out.
            trial = sweep.tell_and_ask(trial, trial.params["x"], timeout=10)
        self.assertEqual(proxy.dropped, 2)
        runs = json.loads(urllib.request.urlopen(
            "%s/api/v1/runs?sweep=%s" % (self.url, created.id), timeout=10).read())["runs"]
        self.assertEqual(sorted(r["id"] for r in runs), sorted(seen))
        self.assertEqual([r["state"] for r in runs], ["finished"] * 4)


class LocalServerTests(unittest.TestCase):
    """Sweep.create with no server named and none at the default address starts one."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hyperdial-local-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        cwd = os.getcwd()
        os.chdir(self.tmp)
        self.addCleanup(os.chdir, cwd)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPERDIAL_")}
        env["HYPERDIAL_BIN"] = BINARY
        patches = [mock.patch.dict(os.environ, env, clear=True),
                   # Nothing at the default address, whatever this machine runs on 8337.
                   mock.patch.object(hyperdial._settings, "DEFAULT_SERVER", closed_port_url())]
        for p in patches:
            p.start()
            self.addCleanup(p.stop)
        self.addCleanup(hyperdial._local_server._stop_local)

    CONFIG = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
              "parameters": {"x": {"values": [1, 2, 3]}}}

    def test_create_starts_a_local_server_on_the_default_store_and_stops_it(self):
        sweep = hyperdial.Sweep.create(self.CONFIG, project="local")
        self.assertNotEqual(sweep.server, hyperdial._settings.DEFAULT_SERVER)
        self.assertTrue(sweep.server.startswith("http://127.0.0.1:"), sweep.server)
        values = []
        while (trial := sweep.ask(timeout=30)) is not None:
            sweep.tell(trial, trial.params["x"] * 2.0)
            values.append(trial.params["x"])
        self.assertEqual(sorted(values), [1, 2, 3])
        self.assertEqual(sweep.best().value, 2.0)
        # Later sweeps of this process use the same server; get() finds the sweep there.
        again = hyperdial.Sweep.get(sweep.id)
        self.assertEqual((again.server, again.state), (sweep.server, "finished"))
        local = hyperdial._local_server._local
        hyperdial._local_server._stop_local()
        self.assertEqual(local.proc.returncode, 0)
        # The sweeps are in the default store, for `hyperdial server` to show later.
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, ".hyperdial", "hyperdial.db")))

    def test_a_run_missing_from_the_local_servers_store_names_that_store(self):
        api = hyperdial.Api()
        with self.assertRaises(KeyError) as ctx:
            api.run("rnope")
        message = str(ctx.exception)
        self.assertIn("no run 'rnope'", message)
        self.assertIn("hyperdial.db", message)  # the store it looked in
        self.assertIn("HYPERDIAL_SERVER", message)  # how to read another

    def test_the_local_server_ends_with_the_process_that_started_it(self):
        script = (
            "import os, sys, time\n"
            "sys.path.insert(0, %r)\n"
            "import hyperdial\n"
            "hyperdial._settings.DEFAULT_SERVER = %r\n"
            "sweep = hyperdial.Sweep.create({'method': 'random', 'parameters': "
            "{'x': {'min': 0.0, 'max': 1.0}}})\n"
            "print(hyperdial._local_server._local.proc.pid, flush=True)\n"
            "time.sleep(3600)\n"
            % (os.path.join(HERE, os.pardir), hyperdial._settings.DEFAULT_SERVER))
        child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, cwd=self.tmp)
        try:
            pid = int(child.stdout.readline().decode() or "0")
            if pid == 0:
                child.kill()
                self.fail("the script failed: %s" % child.stderr.read().decode())
            self.assertTrue(_running(pid))
        finally:
            child.kill()  # SIGKILL: no atexit, no cleanup of any kind
            child.wait()
            child.stdout.close()
            child.stderr.close()
        # Its pipe closed with it: the server shuts down on its own.
        self.assertTrue(wait_for(lambda: not _running(pid), timeout=60),
                        "the local server outlived the process that started it")


def _running(pid):
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
