"""The argv of every command macro: hyperdial against the `wandb` package's agent.

W&B's side is the agent's own code: `wandb.wandb_agent.Agent._command_run` (which calls
`wandb.sdk.launch.sweeps.utils.create_sweep_command` and `create_sweep_command_args`), with
the process start replaced by a recorder, so the argv is exactly what the agent would start.
hyperdial's side is `hyperdial space FILE --grid`, whose argv is what its agent starts.

Compared on generated templates (every macro, whole and embedded `${...}` that are not macros,
literal items) and generated parameter values (integers, floats written as Python writes them,
strings with spaces, quotes and non-ASCII letters, booleans, None, lists and mappings). The
`interpreter` key is set to `python` on hyperdial's side, W&B's interpreter; the default
(`python3`) and the other deliberate differences are pinned below.
"""

import json
import os
import random
import tempfile
import unittest
import warnings

from conformance.wandb import _hyperdial as H

SEED = 20261201
GENERATED = 200

WHOLE_MACROS = ["${env}", "${interpreter}", "${program}", "${args}", "${args_no_equals}",
                "${args_no_hyphens}", "${args_no_boolean_flags}", "${args_json}",
                "${args_append_hydra}", "${args_override_hydra}", "${envvar:HD_CONFORMANCE}"]
LITERALS = ["train.py", "--epochs", "10", "-v", "a b", "hydra.run.dir=out/${now:%H-%M}",
            "data=${oc.env:DATA}", "--data=${envvar:HD_CONFORMANCE}/x", "x=$HOME", "é",
            "--flag="]


class Recorder:
    """Stands in for W&B's AgentProcess: records the argv instead of starting it."""
    commands = []

    def __init__(self, command=None, **_):
        Recorder.commands.append(command)

    def poll(self):
        return None


def wb_argv(template, params):
    """The argv W&B's agent builds for `template` and `params` ({name: value}, in order)."""
    from wandb import wandb_agent
    saved = wandb_agent.AgentProcess
    wandb_agent.AgentProcess = Recorder
    Recorder.commands = []
    try:
        agent = wandb_agent.Agent(api=None, queue=None)
        agent._sweep_command = list(template)
        agent._command_run({"run_id": "r1", "program": "train.py",
                            "args": {k: {"value": v} for k, v in params.items()}})
    finally:
        wandb_agent.AgentProcess = saved
    return Recorder.commands[0]


def _value(rng):
    r = rng.random()
    if r < 0.2:
        return rng.choice([0, 1, -7, 10 ** 12, 2 ** 53 + 1])
    if r < 0.45:
        return rng.choice([
            rng.uniform(-1, 1), rng.uniform(0, 1e-4), rng.expovariate(1e-6), 10 ** rng.uniform(-12, 22),
            0.1, 1e-05, 1e16, 1e22, 123456789.0, -0.0, 100.0, 1.5e300, 5e-324])
    if r < 0.7:
        return rng.choice(["adam", "a b", "it's", 'say "hi"', "é", "", "1e-5", "--x", "ß∂"])
    if r < 0.85:
        return rng.choice([True, False, None])
    if r < 0.93:
        return [rng.choice([1, 0.5, "a", True, None]) for _ in range(rng.randint(0, 3))]
    return {"k": rng.choice([1, "v", 2.5, False]), "j": [1, "x"]}


def gen_case(rng):
    names = rng.sample(["lr", "batch_size", "opt", "use_amp", "x-y", "n_layers", "dropout"],
                       rng.randint(1, 4))
    params = {n: _value(rng) for n in names}
    template = [rng.choice(["${env}", "python", "${interpreter}"])]
    for _ in range(rng.randint(1, 5)):
        template.append(rng.choice(WHOLE_MACROS + LITERALS))
    return template, params


def hd_file(scratch, template, params, interpreter="python"):
    cfg = {"program": "train.py", "method": "grid", "command": template}
    if interpreter:
        cfg["interpreter"] = interpreter
    # One value per parameter: `values: [v]` keeps any type (a mapping value too).
    cfg["parameters"] = {n: {"values": [v]} for n, v in params.items()} or \
        {"_unused": {"value": 1}}
    # JSON, so that a string such as "1e-5" stays a string (PyYAML would write it plain,
    # which YAML 1.2 reads as a number: a difference of the YAML readers, tested elsewhere).
    return scratch.write(json.dumps(cfg), suffix=".json")


def hd_argv(path):
    lines = H.hd_grid(path, 1)
    return lines[0].get("argv"), lines[0].get("argv_error")


@H.requires_wandb(need_wandb=True)
class CommandConformance(unittest.TestCase):

    def setUp(self):
        self.scratch = H.Scratch()
        self.env = {k: os.environ.get(k) for k in ("HD_CONFORMANCE", "WANDB_DIR",
                                                    "WANDB_SWEEP_ID", "WANDB_RUN_ID",
                                                    "WANDB_SWEEP_PARAM_PATH")}
        os.environ["HD_CONFORMANCE"] = "/data/set 1"
        os.environ["WANDB_DIR"] = self.scratch.path
        os.environ["WANDB_SWEEP_ID"] = "s1"

    def tearDown(self):
        for k, v in self.env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        self.scratch.close()

    def compare(self, template, params, label):
        wb = wb_argv(template, params)
        hd, err = hd_argv(hd_file(self.scratch, template, params))
        self.assertIsNone(err, label)
        # The ${args_json_file} path differs on purpose; the file's content is compared by
        # the test below.
        json_path = os.path.join(self.scratch.path, "wandb", "sweep-s1", "config-r1.json")
        wb = ["args.json" if a == json_path else a for a in wb]
        self.assertEqual(wb, hd, "{}: template {!r}, params {!r}".format(label, template, params))

    def test_generated_templates_and_values(self):
        rng = random.Random(SEED)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i in range(GENERATED):
                template, params = gen_case(rng)
                self.compare(template, params, "case {}".format(i))

    def test_every_macro_alone(self):
        params = {"lr": 1e-05, "use_amp": True, "ema": False, "opt": "a b", "n": None,
                  "layers": [64, 32], "extra": {"k": 1}}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for macro in WHOLE_MACROS:
                self.compare(["python", macro], params, macro)

    def test_args_json_file_content(self):
        params = {"lr": 0.1, "name": "é x", "flag": False, "shape": [1, 2.0]}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb_argv(["python", "${args_json_file}"], params)
        path = os.path.join(self.scratch.path, "wandb", "sweep-s1", "config-r1.json")
        with open(path, encoding="utf-8") as f:
            wb_text = f.read()
        hd, _ = hd_argv(hd_file(self.scratch, ["python", "${args_json}"], params))
        self.assertEqual(hd[1], wb_text)
        self.assertEqual(json.loads(wb_text), params)

    def test_sweep_param_file_reads_back_as_wandbs(self):
        # The file W&B's agent writes and names in WANDB_SWEEP_PARAM_PATH, read with PyYAML
        # (what scripts and OmegaConf read it with): the same values from both.
        rng = random.Random(SEED + 1)
        cases = [{"lr": 1e-05, "big": 1e+20, "name": "é x \"q\"\n", "flag": False,
                  "none": None, "shape": [1, 2.0], "opt": {"kind": "adam", "beta": 0.9}}]
        cases += [dict(gen_case(rng)[1]) for _ in range(40)]
        path = os.path.join(self.scratch.path, "wandb", "sweep-s1", "config-r1.yaml")
        for params in cases:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wb_argv(["python", "t.py"], params)
            with open(path, encoding="utf-8") as f:
                wb = H.yaml.safe_load(f.read())
            line = H.hd_grid(hd_file(self.scratch, ["python", "t.py"], params), 1)[0]
            hd = H.yaml.safe_load(line["sweep_param_yaml"])
            self.assertEqual(hd, wb, "params {!r}:\n{}".format(params, line["sweep_param_yaml"]))
            self.assertEqual(wb, dict({"wandb_version": 1},
                                      **{k: {"value": v} for k, v in params.items()}))

    # ---- the deliberate differences, each pinned ----

    def test_parameters_by_name_are_substituted(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = wb_argv(["python", "t.py", "--lr=${lr}", "${lr}"], {"lr": 0.01})
        hd, _ = hd_argv(hd_file(self.scratch, ["python", "t.py", "--lr=${lr}", "${lr}"],
                                {"lr": 0.01}))
        self.assertEqual(wb, ["python", "t.py", "--lr=${lr}"])  # kept literally, then dropped
        self.assertEqual(hd, ["python", "t.py", "--lr=0.01", "0.01"])

    def test_unknown_whole_item_is_kept(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = wb_argv(["python", "t.py", "${now:%H}"], {})
        hd, _ = hd_argv(hd_file(self.scratch, ["python", "t.py", "${now:%H}"], {}))
        self.assertEqual(wb, ["python", "t.py"])
        self.assertEqual(hd, ["python", "t.py", "${now:%H}"])

    def test_single_value_macros_inside_items(self):
        t = ["python", "--prog=${program}"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = wb_argv(t, {})
        hd, _ = hd_argv(hd_file(self.scratch, t, {}))
        self.assertEqual(wb, ["python", "--prog=${program}"])
        self.assertEqual(hd, ["python", "--prog=train.py"])

    def test_nested_parameters_are_one_flag_holding_the_dict(self):
        text = ("method: grid\nprogram: train.py\ninterpreter: python\n"
                "parameters:\n  opt:\n    parameters:\n      lr: {value: 0.1}\n")
        hd, _ = hd_argv(self.scratch.write(text))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = wb_argv(["${env}", "${interpreter}", "${program}", "${args}"],
                         {"opt": {"lr": 0.1}})
        self.assertEqual(wb[-1], "--opt={'lr': 0.1}")
        self.assertEqual(hd[-1], wb[-1])

    def test_default_interpreter(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = wb_argv(["${interpreter}"], {})
        hd, _ = hd_argv(hd_file(self.scratch, ["${interpreter}"], {}, interpreter=None))
        self.assertEqual((wb, hd), (["python"], ["python3"]))

    def test_unset_envvar(self):
        os.environ.pop("HD_CONFORMANCE", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wb = wb_argv(["python", "${envvar:HD_CONFORMANCE}"], {})
        _, err = hd_argv(hd_file(self.scratch, ["python", "${envvar:HD_CONFORMANCE}"], {}))
        self.assertEqual(wb, ["python", "HD_CONFORMANCE"])
        self.assertIn("HD_CONFORMANCE is not set", err)


if __name__ == "__main__":
    unittest.main()
