"""The open peer: sleepecg's MESA GRU (wake / NREM / REM from heartbeat times) on our nights.

sleepecg needs TensorFlow (~1 GB), which the appliance never installs, so this runs from a venv of
its own:

    python3 -m venv /tmp/sleepecg && /tmp/sleepecg/bin/pip install sleepecg tensorflow-cpu \
        numpy scipy pydantic onnxruntime ruptures tzdata
    PYTHONPATH=. /tmp/sleepecg/bin/python -m benchmarks.sleepecg_peer [--data DIR] [--json OUT]

Every night is scored with the classifier as shipped (`wrn-gru-mesa`), from the ECG beat times,
with the recording's clock start (slpdb files carry none: 23:00 is assumed, as the classifier's
time-of-night features need one). sleepecg was trained on MESA, never on these nights, so every
night is held out for it; compare with our leave-one-subject-out figures on the same epochs
(`appliance eval --classes 3`). Agreement is computed with the appliance's own `agreement`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from pathlib import Path

import numpy as np

from appliance.frames import UNSCORED, Stage
from appliance.metrics import agreement
from hardware.radar.night import load_night

CLASSIFIER = "wrn-gru-mesa"
START = dt.time(23, 0)


def _to_codes(names: np.ndarray) -> np.ndarray:
    table = {
        "WAKE": Stage.WAKE,
        "NREM": Stage.LIGHT,
        "N1": Stage.LIGHT,
        "N2": Stage.LIGHT,
        "N3": Stage.DEEP,
        "REM": Stage.REM,
    }
    return np.array([table.get(str(n), Stage.WAKE) for n in names], np.int8)


def score(path: Path, clf: object) -> tuple[np.ndarray, np.ndarray]:
    """(truth, sleepecg) hypnogram codes over the night's expert epochs."""
    import sleepecg

    night = load_night(path)
    beats = np.asarray(night.beat_t_s, np.float64)
    with np.load(path) as z:  # the classifier also takes the subject's age and sex
        age = float(z["age"]) if "age" in z else float("nan")
        sex = str(z["sex"]) if "sex" in z else ""
    subject = sleepecg.SubjectData(
        gender={"M": sleepecg.Gender.MALE, "F": sleepecg.Gender.FEMALE}.get(sex[:1].upper()),
        age=None if not np.isfinite(age) else int(age),
    )
    rec = sleepecg.SleepRecord(
        sleep_stage_duration=30,
        recording_start_time=START,
        heartbeat_times=beats,
        subject_data=subject,
    )
    pred = sleepecg.stage(clf, rec, return_mode="str")
    # sleepecg's epochs start at the recording's start; the experts' at epoch0_offset_s.
    off = int(round(night.epoch0_offset_s / 30.0))
    n = night.stages.size
    device = np.full(n, Stage.WAKE, np.int8)
    codes = _to_codes(pred)
    for i in range(n):
        if 0 <= i + off < codes.size:
            device[i] = codes[i + off]
    truth = night.stages.astype(np.int8)
    truth[truth < 0] = UNSCORED
    return truth, device


def main() -> int:
    # sleepecg defaults Keras to PyTorch, whose CPU wheel PyPI does not serve; TensorFlow works.
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import sleepecg

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    clf = sleepecg.load_classifier(CLASSIFIER, "SleepECG")
    truths, devices, per_night = [], [], []
    for p in sorted(args.data.glob("*.npz")):
        t, d = score(p, clf)
        a = agreement(t, d, classes=3)
        per_night.append(
            {"record": p.stem, "epochs": a.n_epochs, "kappa": a.kappa, "accuracy": a.accuracy}
        )
        print(f"{p.stem:16s} epochs {a.n_epochs:4d}  kappa {a.kappa:.3f}  acc {a.accuracy:.3f}")
        truths.append(t)
        devices.append(d)
    ag = agreement(np.concatenate(truths), np.concatenate(devices), classes=3)
    out = {
        "classifier": CLASSIFIER,
        "assumed_start": START.isoformat(),
        "nights": len(per_night),
        "epochs": ag.n_epochs,
        "kappa": ag.kappa,
        "accuracy": ag.accuracy,
        "per_stage": ag.per_stage,
        "confusion": ag.confusion,
        "per_night": per_night,
    }
    print(
        f"pooled 3-class: kappa {ag.kappa:.3f}, accuracy {ag.accuracy:.3f} ({ag.n_epochs} epochs)"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
