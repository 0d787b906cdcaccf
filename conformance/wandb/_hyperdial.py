"""Shared helpers of the differential suite: hyperdial's real binary and W&B's `sweeps`,
side by side on the same input.

hyperdial is found like python/tests does it: HYPERDIAL_BIN, else the newer of
target/release/hyperdial and target/debug/hyperdial (under CARGO_TARGET_DIR when set).
W&B's packages are pinned in python/requirements-test.txt; `requires_wandb` skips a test
class, with the reason printed by unittest, when they or the binary are missing.
"""

import json
import os
import subprocess
import tempfile
import unittest
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.environ.get("HYPERDIAL_CORPUS") or os.path.join(
    REPO, "..", "shared", "corpus", "wandb-sweeps")


def _find_binary():
    def usable(path):
        return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)

    if usable(os.environ.get("HYPERDIAL_BIN", "")):
        return os.environ["HYPERDIAL_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    built = [p for p in (os.path.join(target, "release", "hyperdial"),
                         os.path.join(target, "debug", "hyperdial")) if usable(p)]
    return max(built, key=os.path.getmtime) if built else None


BINARY = _find_binary()

# Importing W&B's packages prints deprecation noise from their dependencies; keep it out of
# the test output.
_quiet = warnings.catch_warnings()
_quiet.__enter__()
warnings.simplefilter("ignore")

try:  # W&B's sweep controller and the YAML reader it uses
    import yaml
    import sweeps
    from sweeps import params as wb_params
    from sweeps import grid_search as wb_grid_search
    from sweeps.config import schema as wb_schema
    SWEEPS_VERSION = sweeps.__version__
except ImportError as e:  # pragma: no cover - depends on the environment
    yaml = sweeps = wb_params = wb_schema = wb_grid_search = None
    SWEEPS_VERSION = None
    _MISSING = str(e)

try:  # the agent's command building, from the `wandb` package
    from wandb.sdk.launch.sweeps import utils as wb_sweep_utils
    import wandb as _wandb
    WANDB_VERSION = _wandb.__version__
except Exception as e:  # pragma: no cover - ImportError, or a broken optional install
    wb_sweep_utils = None
    WANDB_VERSION = None
    _WANDB_MISSING = str(e)


_quiet.__exit__(None, None, None)


def _skip_reason(need_wandb=False):
    if BINARY is None:
        return ("no hyperdial binary (set HYPERDIAL_BIN, or build it with "
                "`cargo build -p hyperdial-cli`)")
    if sweeps is None:
        return ("the W&B sweeps library is not installed ({}); "
                "pip install -r python/requirements-test.txt".format(_MISSING.replace("'", "")))
    if SWEEPS_VERSION != "0.3.0":
        return "sweeps {} is installed; the suite is pinned to 0.3.0".format(SWEEPS_VERSION)
    if need_wandb and wb_sweep_utils is None:
        return ("the wandb package is not installed ({}); "
                "pip install -r python/requirements-test.txt".format(
                    _WANDB_MISSING.replace("'", "")))
    return None


def requires_wandb(need_wandb=False):
    """Skip the decorated class, saying why, unless hyperdial and W&B's code are both here.
    Reasons avoid apostrophes, so unittest prints them in single quotes, which scripts/test
    collects."""
    reason = _skip_reason(need_wandb)
    return unittest.skipIf(reason is not None, reason or "")


class Scratch:
    """A temporary directory for sweep files; removed by `close`."""

    def __init__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="hd-conformance-")
        self.path = self._dir.name
        self._n = 0

    def write(self, text, suffix=".yaml"):
        self._n += 1
        path = os.path.join(self.path, "sweep{}{}".format(self._n, suffix))
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def close(self):
        self._dir.cleanup()


def run_hyperdial(*args, check=True):
    """Run the binary; return the completed process (text mode)."""
    proc = subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NO_COLOR": "1"})
    if check and proc.returncode not in (0, 1):
        raise AssertionError("hyperdial {} failed ({}):\n{}".format(
            " ".join(args), proc.returncode, proc.stderr))
    return proc


def hd_validate(path):
    """`hyperdial validate --json FILE` as a dict (`valid`, `parameters`, `errors`, ...)."""
    proc = run_hyperdial("validate", "--json", path)
    return json.loads(proc.stdout)


def hd_lines(*args):
    """JSON lines printed by `hyperdial space ...`."""
    proc = run_hyperdial("space", *args, check=False)
    if proc.returncode != 0:
        raise AssertionError("hyperdial space {} failed:\n{}".format(" ".join(args), proc.stderr))
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def hd_grid(path, limit=100000):
    return hd_lines(path, "--grid", "--limit", str(limit))


def hd_sample(path, n, seed):
    return hd_lines(path, "--sample", str(n), "--seed", str(seed))


# ---- W&B's side ----

def wb_load(text):
    """The sweep config as W&B reads it (PyYAML's safe_load), or raise."""
    return yaml.safe_load(text)


def wb_check(config):
    """Whether W&B accepts `config`: its schema and validation (`SweepConfig`), its parameter
    set, and the first suggestion (`next_run`, where a grid over a continuous parameter and
    similar problems surface). Returns (accepted, reason)."""
    import numpy as np
    try:
        sweeps.SweepConfig(config)
        # The filled config drops nested blocks; W&B's controller works on the original.
        wb_params.HyperParameterSet.from_config(config["parameters"])
        np.random.seed(0)
        sweeps.next_run(config, [])
    except Exception as e:  # noqa: BLE001 - any failure is a rejection by W&B
        return False, "{}: {}".format(type(e).__name__, str(e).splitlines()[0] if str(e) else "")
    return True, ""


NEST = "." if wb_params is None else wb_params.HyperParameterSet.NESTING_DELIMITER


def _distribution_names():
    """W&B's parameter type (its schema definition's name) -> distribution name."""
    if wb_schema is None:
        return {}
    defs = wb_schema.sweep_config_jsonschema["definitions"]
    names = {}
    for ref in defs["parameter"]["anyOf"]:
        key = ref["$ref"].split("/")[-1]
        d = defs[key]
        props = d.get("properties") or d["anyOf"][0]["properties"]
        if "distribution" in props:
            names[key] = props["distribution"]["enum"][0]
    return names


DISTRIBUTION_OF_TYPE = _distribution_names()


def wb_parameters(config):
    """{dotted name: (distribution, filled spec)} as W&B infers them."""
    out = {}
    for hp in wb_params.HyperParameterSet.from_config(config["parameters"]):
        out[hp.name.replace(NEST, ".")] = (DISTRIBUTION_OF_TYPE.get(hp.type), hp.config)
    return out


def hd_parameters(report):
    """{dotted name: spec} from `hyperdial validate --json`."""
    return {p["name"]: p["spec"] for p in report["parameters"]}


def dump_yaml(config):
    """A config as YAML text both readers parse the same way."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)


def wb_value(v):
    """A value of W&B's run config as plain Python (numpy scalars unwrapped)."""
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        return v.item()
    if isinstance(v, list):
        return [wb_value(x) for x in v]
    if isinstance(v, dict):
        return {k: wb_value(x) for k, x in v.items()}
    return v


def wb_nested(run_config):
    """A W&B run config ({"a": {"value": ...}}, nested parameters as nested dicts) as the
    plain nested object hyperdial's `config` (its `${args_json}`) holds."""
    return {k: wb_value(v["value"]) for k, v in run_config.items()}
