"""The decision-offset variants the live model's recipe was picked from, on the same LOSO folds.

    nice -n 10 .venv/bin/python -m models.offset_variants --data ../shared/data

For each held-out subject: the adapted recipe (models.train_live.fit_adapted) is fitted without
it; the training subjects are split into `INNER_FOLDS` groups and each group is scored by a fit
without it (out-of-fold probabilities); a variant picks per-class log offsets on those inner
scores only, and the held-out subject is scored with them. Variants: which classes get an offset
(deep; REM; deep and REM; light, deep and REM) × the objective (mean per-stage sensitivity with
kappa not below no offset; kappa; kappa + mean sensitivity). The shipped recipe is
`models.train_live.choose_offsets` (deep and REM, kappa + mean sensitivity); choosing it among
these on the held-out figures makes its row optimistic, which its card says. Prints one line
per variant. Needs the `train` extra.
"""

from __future__ import annotations

import argparse
import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from appliance.frames import ABSENT
from appliance.staging import MIN_PRESENT_FRACTION
from models.dataset import load_radar, load_recorded
from models.train_live import (
    _PRESENT,
    OFFSET_GRID,
    _confusion,
    _figures,
    _kappa_and_balanced,
    fit_adapted,
    inner_scores,
)

log = logging.getLogger("models.offset_variants")

_LIGHT_GRID = np.arange(-0.5, 0.51, 0.25)
"""Light is the majority class: its offset is searched over a narrower range."""
AXES: tuple[tuple[int, ...], ...] = ((2,), (3,), (2, 3), (1, 2, 3))
OBJECTIVES = ("balanced if kappa kept", "kappa", "kappa + balanced")

Inner = tuple[np.ndarray, np.ndarray, np.ndarray]


def fold_probabilities(
    ecg: list[dict[str, Any]], radar: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per held-out subject: the inner out-of-fold (p, truth, gated) and the outer nights' p."""
    subjects = sorted({str(n["subject"]) for n in radar})
    out: dict[str, dict[str, Any]] = {}
    for s in subjects:
        inner = inner_scores(radar, {s}, lambda left: fit_adapted(ecg, radar, left))
        m = fit_adapted(ecg, radar, {s})
        outer = [(n, m.predict_proba(n["x"])) for n in radar if str(n["subject"]) == s]
        out[s] = {"inner": inner, "outer": outer}
        log.info("fold %s scored", s)
    return out


def pick(inner: Inner, axes: Sequence[int], objective: str) -> np.ndarray:
    """The offsets of `axes` (class indices) that maximise `objective` on the inner scores."""
    p, t, g = inner
    logp = np.log(np.maximum(p, 1e-12))
    ranges = [
        (_LIGHT_GRID if c == 1 else OFFSET_GRID) if c in axes else np.zeros(1) for c in (1, 2, 3)
    ]
    k0, _ = _kappa_and_balanced(_confusion(t, np.argmax(logp, axis=1), g))

    def value(off: np.ndarray) -> float:
        k, bal = _kappa_and_balanced(_confusion(t, np.argmax(logp + off, axis=1), g))
        if objective == "kappa":
            return k
        if objective == "kappa + balanced":
            return k + bal
        return bal if k >= k0 else -1.0

    # As `choose_offsets`: no offset wins ties.
    best = np.zeros(4)
    best_v = value(best)
    for a, b, c in itertools.product(*ranges):
        off = np.array([0.0, a, b, c])
        v = value(off)
        if v > best_v + 1e-9:
            best, best_v = off, v
    return best


def score(folds: dict[str, dict[str, Any]], axes: Sequence[int], objective: str) -> str:
    """One variant's LOSO line: pooled kappa, accuracy, per-stage sensitivity, offsets."""
    preds, offs = [], []
    for f in folds.values():
        off = pick(f["inner"], axes, objective) if axes else np.zeros(4)
        offs.append(off)
        for n, p in f["outer"]:
            pred = np.argmax(np.log(np.maximum(p, 1e-12)) + off, axis=1)
            gated = n["x"][:, _PRESENT] < MIN_PRESENT_FRACTION
            preds.append((n, np.where(gated, ABSENT, pred).astype(np.int8)))
    fig = _figures(preds)
    pooled = fig["pooled"]
    sens = [v["sensitivity"] for v in pooled["per_stage"].values()]
    o = np.array(offs)
    names = "+".join(("wake", "light", "deep", "rem")[c] for c in axes) or "none"
    return (
        f"| {names} | {objective if axes else '-'} | {pooled['kappa']:.3f} | "
        f"{pooled['accuracy']:.3f} | " + " / ".join(f"{x:.2f}" for x in sens) + f" | "
        f"{np.mean(sens):.3f} | "
        + " ".join(f"{m:.2f}±{s:.2f}" for m, s in zip(o.mean(0), o.std(0), strict=True))
        + " |"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: features, fold probabilities, one table line per variant."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--cache", type=Path, default=Path(".cache/features"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    radar = load_radar(args.data, args.cache, args.jobs)
    ecg = load_recorded(args.data, args.jobs)
    folds = fold_probabilities(ecg, radar)
    print(
        "| offsets on | objective | kappa | accuracy | sens. wake / light / deep / rem | "
        "mean sens. | offsets per fold (mean ± sd) |"
    )
    print("|---|---|---|---|---|---|---|")
    print(score(folds, (), ""))
    for axes in AXES:
        for objective in OBJECTIVES:
            print(score(folds, axes, objective), flush=True)


if __name__ == "__main__":
    main()
