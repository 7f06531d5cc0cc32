"""Inference time of the shipped stagers, per epoch (the issue's bar: < 5 ms per epoch).

    .venv/bin/python -m benchmarks.stager_speed [--epochs 960] [--repeat 5]

Live: `Stager.update` on one epoch at a time, as the device calls it (feature rows taken from a
synthetic 20-min night through the real pipeline, cycled). Morning: `refine_night` on a whole
night of `--epochs` epochs (8 h = 960), divided by the epochs. Prints the median of `--repeat`
runs; nothing is asserted (tests never time anything).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import synthetic

from appliance.config import Config
from appliance.pipeline import Pipeline
from appliance.staging import Stager, refine_night


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--epochs", type=int, default=960)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    pipe = Pipeline(Config(), stager=None)
    _, feats = pipe.features(synthetic.frames(1200.0, moving=((300.0, 330.0),)))
    night = [feats[i % len(feats)] for i in range(args.epochs)]
    stager = Stager()
    stager.update(night[0])  # warm-up (session allocation)
    live, morning = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        for f in night:
            stager.update(f)
        live.append((time.perf_counter() - t) / len(night))
        t = time.perf_counter()
        refine_night(night)
        morning.append((time.perf_counter() - t) / len(night))
    print(f"live    Stager.update: {1e3 * statistics.median(live):.3f} ms per epoch")
    print(
        f"morning refine_night:  {1e3 * statistics.median(morning):.3f} ms per epoch "
        f"({args.epochs} epochs a night)"
    )


if __name__ == "__main__":
    main()
