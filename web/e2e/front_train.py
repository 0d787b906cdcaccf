# A two-objective "training" script for the end-to-end test of the Pareto view: loss falls and
# size grows with a; b = 1 only adds 0.3 to both, so the four runs with b = 0 are the front and
# each run with b = 1 is dominated by the run with the same a.
import json, os

cfg = json.load(open(os.environ["HYPERDIAL_CONFIG"]))
a, b = float(cfg["a"]), float(cfg["b"])
print(f"hyperdial: loss={1 - a + 0.3 * b:.6f} size={a + 0.3 * b:.6f}", flush=True)
