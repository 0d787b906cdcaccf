"""Resuming a run in a later process (W&B's ``wandb.init(id=, resume=)``), against a real
server: the history goes on where it stopped, refusals raise, ``resume=True`` finds the run
of the last unfinished ``init`` in the directory, and ``hyperdial sync`` continues a run
recorded offline under a chosen id."""

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import unittest
import urllib.error
import urllib.request
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))

import hyperdial  # noqa: E402
from hyperdial import _settings  # noqa: E402
from real_server import BINARY, SKIP_REASON, RealServerClientCase  # noqa: E402

PYTHON = os.path.abspath(os.path.join(HERE, os.pardir))


@unittest.skipUnless(BINARY, SKIP_REASON)
class ResumeTests(RealServerClientCase):
    TMP_PREFIX = "hyperdial-resume-"

    def setUp(self):
        super().setUp()
        # Each test its own client directory: offline files and the resume file.
        os.environ["HYPERDIAL_DIR"] = os.path.join(self.tmp, "client", self._testMethodName)

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def steps(self, run_id, key="loss"):
        series = self.get("/api/v1/runs/%s/history?keys=%s" % (run_id, key))["series"][key]
        return list(zip(series["step"], series["value"]))

    def test_a_preempted_run_goes_on_from_its_last_step(self):
        first = hyperdial.init(config={"lr": 0.1}, id="job-41", resume="allow")
        self.assertFalse(first.resumed)
        for v in (0.9, 0.7, 0.5):
            first.log({"loss": v})
        first.finish(exit_code=143)  # killed by the scheduler
        self.assertEqual(self.get("/api/v1/runs/job-41")["state"], "failed")

        again = hyperdial.init(config={"lr": 0.1}, id="job-41", resume="allow")
        self.assertTrue(again.resumed)
        self.assertEqual(again.id, "job-41")
        again.log({"loss": 0.3})
        again.log({"loss": 0.2})
        again.finish()
        self.assertEqual(self.steps("job-41"),
                         [(0, 0.9), (1, 0.7), (2, 0.5), (3, 0.3), (4, 0.2)])
        run = self.get("/api/v1/runs/job-41")
        self.assertEqual(run["state"], "finished")
        self.assertEqual(run["summary"]["loss"], 0.2)

    def test_refusals_raise_and_create_nothing(self):
        hyperdial.init(id="taken-1").finish()
        with self.assertRaisesRegex(ValueError, "taken-1.*exists"):
            hyperdial.init(id="taken-1")
        with self.assertRaisesRegex(ValueError, "no run `absent-1` to resume"):
            hyperdial.init(id="absent-1", resume="must")
        with self.assertRaisesRegex(ValueError, "A-Z"):
            hyperdial.init(id="bad id/1", resume="allow")
        with self.assertRaisesRegex(ValueError, "resume must be one of"):
            hyperdial.init(id="x", resume="sometimes")
        with self.assertRaisesRegex(ValueError, "needs the id"):
            hyperdial.init(resume="must")
        with self.assertRaises(urllib.error.HTTPError):
            self.get("/api/v1/runs/absent-1")

    def test_resume_true_continues_the_last_unfinished_run_of_the_directory(self):
        first = hyperdial.init(resume=True)
        first.log({"loss": 1.0})
        first.finish(exit_code=1)
        second = hyperdial.init(resume=True)
        self.assertTrue(second.resumed)
        self.assertEqual(second.id, first.id)
        second.log({"loss": 0.5})
        second.finish()  # exit code 0: done, the next one is new
        third = hyperdial.init(resume=True)
        self.assertFalse(third.resumed)
        self.assertNotEqual(third.id, first.id)
        third.finish()
        self.assertEqual(self.steps(first.id), [(0, 1.0), (1, 0.5)])

    def test_sync_continues_a_run_recorded_offline_under_its_id(self):
        online = hyperdial.init(id="field-7", resume="allow")
        online.log({"loss": 0.8})
        online.finish(exit_code=1)
        os.environ["HYPERDIAL_MODE"] = "offline"
        try:
            offline = hyperdial.init(id="field-7", resume="allow")
            offline.log({"loss": 0.6})
            offline.log({"loss": 0.4})
            offline.finish()
        finally:
            del os.environ["HYPERDIAL_MODE"]
        out = subprocess.run(
            [BINARY, "sync", os.path.join(os.environ["HYPERDIAL_DIR"], "offline"),
             "--server", self.url],
            capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("field-7", out.stdout)
        self.assertEqual(self.steps("field-7"), [(0, 0.8), (1, 0.6), (2, 0.4)])
        self.assertEqual(self.get("/api/v1/runs/field-7")["state"], "finished")


    def sync(self):
        return subprocess.run(
            [BINARY, "sync", os.path.join(os.environ["HYPERDIAL_DIR"], "offline"),
             "--server", self.url],
            capture_output=True, text=True, timeout=60)

    def test_a_run_another_process_still_writes_to_is_not_taken_over(self):
        # Another process's run, just heard from.
        request = urllib.request.Request(
            self.url + "/api/v1/runs", data=json.dumps({"id": "live-1"}).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        urllib.request.urlopen(request, timeout=10).read()
        with mock.patch.object(_settings, "RESUME_WAIT", 0.3):
            with self.assertRaisesRegex(ValueError, "live-1.*heard from .* ago"):
                hyperdial.init(id="live-1", resume="allow")
        self.assertIn("waiting up to 0.3 s", sys.stderr.getvalue())
        self.assertEqual(self.get("/api/v1/runs/live-1")["state"], "running")

    def test_sys_exit_code_ends_the_run_and_a_resumed_run_sees_its_summary(self):
        script = textwrap.dedent("""
            import sys
            sys.path.insert(0, %r)
            import hyperdial
            run = hyperdial.init(id="exit-143", resume="allow")
            run.log({"loss": 0.7})
            run.summary["best"] = 0.7
            sys.exit(143)
        """ % PYTHON)
        env = dict(os.environ)
        out = subprocess.run([sys.executable, "-c", script], env=env,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 143, out.stderr)
        run = self.get("/api/v1/runs/exit-143")
        self.assertEqual((run["state"], run["exit_code"]), ("failed", 143))
        again = hyperdial.init(id="exit-143", resume="must")
        self.assertTrue(again.resumed)
        self.assertEqual(again.summary["best"], 0.7)
        self.assertEqual(again.summary["loss"], 0.7)
        again.finish()

    def test_offline_keeps_the_chosen_id_its_steps_and_the_resume_rule(self):
        online = hyperdial.init(id="off-9", resume="allow")
        for step in range(10):
            online.log({"loss": 1.0 / (step + 1)}, step=step)
        online.finish(exit_code=1)
        with mock.patch.dict(os.environ, {"HYPERDIAL_MODE": "offline"}):
            offline = hyperdial.init(id="off-9", resume="allow")
            self.assertEqual(offline.id, "off-9")
            for step in (10, 11):  # the script knows where it was
                offline.log({"loss": 0.01 * step}, step=step)
            offline.finish()
            never = hyperdial.init(id="off-9")  # resume "never": refused when synced
            never.log({"loss": 9.0})
            never.finish()
        out = self.sync()
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("1 failed", out.stdout)
        self.assertIn("exists", out.stderr)
        steps = self.steps("off-9")
        self.assertEqual([s for s, _ in steps], list(range(12)))
        self.assertEqual(steps[-1], (11, 0.11))


    def test_resume_true_does_not_continue_a_run_finished_for_good_while_waiting(self):
        # Another process of this directory runs the resumable run; it finishes it with exit
        # code 0 while this one waits: this one makes a new run instead of continuing it.
        first = hyperdial.init(resume=True)
        first.log({"loss": 1.0})
        finished = []

        def finish_soon():
            time.sleep(0.4)
            first.finish()  # exit code 0: removes the id from the resume file
            finished.append(True)

        hyperdial.run = None  # as if `first` lived in another process
        t = threading.Thread(target=finish_soon)
        t.start()
        with mock.patch.object(_settings, "RESUME_WAIT", 10.0):
            second = hyperdial.init(resume=True)
        t.join()
        self.assertTrue(finished)
        self.assertFalse(second.resumed)
        self.assertNotEqual(second.id, first.id)
        second.finish()
        self.assertEqual(self.steps(first.id), [(0, 1.0)])


if __name__ == "__main__":
    unittest.main()
