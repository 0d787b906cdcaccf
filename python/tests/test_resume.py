"""Resuming a run in a later process (W&B's ``wandb.init(id=, resume=)``), against a real
server: the history goes on where it stopped, refusals raise, ``resume=True`` finds the run
of the last unfinished ``init`` in the directory, and ``hyperdial sync`` continues a run
recorded offline under a chosen id."""

import json
import os
import subprocess
import sys
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))

import hyperdial  # noqa: E402
from real_server import BINARY, SKIP_REASON, RealServerClientCase  # noqa: E402


@unittest.skipUnless(BINARY, SKIP_REASON)
class ResumeTests(RealServerClientCase):
    TMP_PREFIX = "hyperdial-resume-"

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


if __name__ == "__main__":
    unittest.main()
