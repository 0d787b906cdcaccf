# A tiny "training" script for the end-to-end test: prints metric lines for a few steps.
import json, math, os, sys, time

cfg = json.load(open(os.environ["HYPERDIAL_CONFIG"]))
lr, opt, width = cfg["lr"], cfg["opt"], cfg["width"]
best = abs(math.log10(lr) + 2.5) + (0.4 if opt == "sgd" else 0.0) + 0.001 * width
for step in range(8):
    loss = best + 1.0 / (step + 1)
    print(f"hyperdial: loss={loss:.6f} acc={1 - loss / 3:.6f}", flush=True)
    print(f"epoch {step} done", flush=True)
    time.sleep(0.15)
