"""Train the live (causal) and morning stagers; write their ONNX files, JSON cards and model cards.

    .venv/bin/pip install -e '.[train]'
    .venv/bin/python -m models.train_live --data ../shared/data

Data (models.dataset): every night in `--data` (../shared/data/README.md format) twice:
- rendered through the radar scene simulator ("reading-then-sleep": 30–60 min awake in bed, then
  the recording) and the device's own DSP → presence → tracking → epoch features, so the model
  learns from what it will see on the device;
- from its recorded channels (ECG beats: heart rate and beat-to-beat HRV, RSA-derived breathing;
  no movement), the "recorded channel" the model is pretrained on.
Labels are the experts' stages of the epochs they scored, plus WAKE for the scene's scripted awake-
in-bed time (never an input to the simulator); every figure is measured on expert-scored epochs.

Evaluation is leave-one-subject-out (slp01a/b and slp02a/b are one subject each), reported for:
ECG → ECG, radar → radar, ECG → radar without adaptation, ECG + radar adapted (one fit over both,
ECG rows down-weighted) → radar, the same with deep/REM decision offsets (`Calibrated`: chosen
inside each fold by an inner cross-validation over the training subjects only, never the held-out
one) → radar, and the morning model (whole-night context) → radar. The live model shipped is the
calibrated one, over the adapted recipe unless radar alone measured better in this run's LOSO (the
card says which); both shipped models are fitted on all nights but those of the subjects whose
nights ship as the simulator's demo (SHIPPED_RECORDS). The held-out predictions' plots (hypnogram
pairs, Bland–Altman) go to <out>/plots/. Needs the `train` extra.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from appliance.epochs import FEATURE_NAMES, MORNING_FEATURE_NAMES, night_context
from appliance.evaluate import NightScore, metric_pairs
from appliance.frames import ABSENT, STAGE_NAMES, UNSCORED
from appliance.metrics import agreement
from appliance.staging import MIN_PRESENT_FRACTION, smooth_probs
from models.card import data_facts, write_model_card
from models.dataset import SCENE, load_radar, load_recorded

log = logging.getLogger("models.train_live")

Night = dict[str, np.ndarray]
_PRESENT = FEATURE_NAMES.index("present_frac")
SHIPPED_RECORDS = ("slp61", "slp04")
"""Nights the package ships as the simulator's sleeper and partner: their subjects are left out
of the shipped models' fit, so the out-of-the-box `appliance simulate` is on unseen subjects."""
PARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "max_bin": 63,
    "num_leaves": 15,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.6,
    "reg_lambda": 2.0,
    "verbose": -1,
    # One thread: on the shared 2-core machine two threads contend and a fit runs ~3x slower.
    "n_jobs": 1,
}
ECG_WEIGHT = 0.3
"""Weight of a recorded-channel (ECG) epoch relative to a radar epoch in the adapted fit."""
_RADAR_ONLY = frozenset(
    name
    for name in FEATURE_NAMES
    if name.startswith(("move", "amp", "resp_q", "dist", "ctx_move", "ctx_amp", "ctx_q"))
    or name in ("min_since_move", "min_since_big_move", "hr_amp_corr_5min")
)
CLASS_WEIGHT_POWER = 1.0
"""Class weights are (n / (k n_c)) ** power: 1 balances the classes fully (the deep and REM
stages are rare in these nights; a run with 0.75 found REM 3 % of the time)."""
MORNING_SMOOTH_EPOCHS = 5
"""The morning model's probabilities are averaged over a centred window of this many epochs."""


def load_all(data: Path, cache: Path, jobs: int) -> list[Night]:
    """Radar epoch features of every night in `data` (benchmarks.simulate uses this)."""
    return load_radar(data, cache, jobs)


def _class_weights(y: np.ndarray) -> np.ndarray:
    counts = np.bincount(y, minlength=len(STAGE_NAMES)).astype(float)
    w = (counts.sum() / (len(STAGE_NAMES) * np.maximum(counts, 1.0))) ** CLASS_WEIGHT_POWER
    return np.asarray(w[y], float)


def fit(  # type: ignore[no-untyped-def]
    x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None
):
    """Fit LightGBM with class weights (deep and REM are rare in these nights).

    Args:
        x: (n, n_features) feature rows.
        y: (n,) labels 0..3.
        w: (n,) sample weights (default: the class weights of `y`).
    """
    import lightgbm as lgb

    model = lgb.LGBMClassifier(**PARAMS)
    model.fit(x, y, sample_weight=_class_weights(y) if w is None else w)
    return model


def _rows(nights: Sequence[Night], morning: bool = False) -> tuple[np.ndarray, np.ndarray]:
    xs = [night_context(n["x"]) if morning else n["x"] for n in nights]
    x = np.vstack(xs) if xs else np.zeros((0, len(FEATURE_NAMES)), np.float32)
    y = np.concatenate([n["y"] for n in nights]) if nights else np.zeros(0, np.int8)
    keep = y >= 0
    return x[keep], y[keep].astype(int)


def _others(nights: Sequence[Night], subjects: set[str]) -> list[Night]:
    return [n for n in nights if str(n["subject"]) not in subjects]


def fit_without(nights: list[Night], subjects: set[str]):  # type: ignore[no-untyped-def]
    """Fit the radar-only live model on every night whose subject is not in `subjects`.

    Raises:
        ValueError: no night is left to fit on.
    """
    train = _others(nights, subjects)
    if not train:
        raise ValueError("no night left to train on")
    return fit(*_rows(train))


def _without_radar_only_channels(nights: list[Night]) -> list[Night]:
    """The recorded nights with the channels only the radar has set missing.

    Movement, breathing amplitude, regularity and distance: PSG gives none, and a constant 0
    there would teach the trees that "no movement" means what it means in the ECG rows.
    """
    cols = [i for i, n in enumerate(FEATURE_NAMES) if n in _RADAR_ONLY]
    out = []
    for n in nights:
        x = n["x"].copy()
        x[:, cols] = np.nan
        out.append({**n, "x": x})
    return out


def _joint_rows(
    ecg: list[Night], radar: list[Night], morning: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xe, ye = _rows(_without_radar_only_channels(ecg), morning)
    xr, yr = _rows(radar, morning)
    w = np.concatenate([ECG_WEIGHT * _class_weights(ye), _class_weights(yr)])
    return np.vstack([xe, xr]), np.concatenate([ye, yr]), w


def fit_adapted(ecg: list[Night], radar: list[Night], subjects: set[str]):  # type: ignore[no-untyped-def]
    """Learn from the recorded-channel (ECG) features and adapt to the radar's, in one fit.

    Both sets of rows, the ECG rows down-weighted (ECG_WEIGHT) and without the radar-only
    channels. (Continued boosting from an ECG-only model, LightGBM `init_model`, measured lower
    here: kappa 0.322 against 0.338 for radar alone, with the ECG model at -0.02 on radar.)

    Raises:
        ValueError: no night is left to fit on.
    """
    e, r = _others(ecg, subjects), _others(radar, subjects)
    if not e or not r:
        raise ValueError("no night left to train on")
    return fit(*_joint_rows(e, r, morning=False))


def fit_morning(ecg: list[Night], radar: list[Night], subjects: set[str]):  # type: ignore[no-untyped-def]
    """The morning model: the adapted recipe over whole-night features (`night_context`).

    Raises:
        ValueError: no night is left to fit on.
    """
    e, r = _others(ecg, subjects), _others(radar, subjects)
    if not e or not r:
        raise ValueError("no night left to train on")
    return fit(*_joint_rows(e, r, morning=True))


INNER_FOLDS = 4
"""Subject groups of the inner cross-validation that picks the class offsets (`Calibrated`)."""
OFFSET_GRID = np.arange(-0.5, 2.51, 0.25)
"""Log-probability offsets searched for deep and for REM (wake and light keep 0): the two rare
stages are the ones the balanced class weights still under-call."""


class Calibrated:
    """A fitted classifier whose class probabilities are re-weighted: p_c exp(b_c), renormalised.

    The offsets `b` (log units, one per class) move the decision boundaries towards the rare
    stages; they are chosen on the training subjects only (`fit_calibrated`), never on the
    held-out one. In the ONNX file they are the tree ensemble's ``base_values`` (added to the
    raw scores before the softmax: the same re-weighting), so the device needs nothing new.
    """

    def __init__(self, model: Any, offsets: np.ndarray) -> None:
        self.model = model
        self.offsets = np.asarray(offsets, float)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Re-weighted class probabilities (n, 4)."""
        q = np.asarray(self.model.predict_proba(x), float) * np.exp(self.offsets)[None, :]
        return np.asarray(q / q.sum(axis=1, keepdims=True))


def _kappa_and_balanced(cm: np.ndarray) -> tuple[float, float]:
    """Cohen's kappa and the mean per-stage sensitivity of a 4 x 4 confusion (rows truth)."""
    n = cm.sum()
    rows, cols = cm.sum(axis=1), cm.sum(axis=0)
    chance = float(rows @ cols)
    kappa = (n * np.trace(cm) - chance) / (n * n - chance) if n * n > chance else 0.0
    present = rows > 0
    balanced = float(np.mean(np.diag(cm)[present] / rows[present])) if present.any() else 0.0
    return float(kappa), balanced


def choose_offsets(p: np.ndarray, truth: np.ndarray, gated: np.ndarray) -> np.ndarray:
    """Deep and REM offsets maximising kappa + mean per-stage sensitivity on `p`.

    The objective is the rule a change of the stager is kept by (neither the kappa nor the
    balanced sensitivities may fall), as one number; no offset wins ties.

    Args:
        p: (n, 4) out-of-fold probabilities of the training subjects' expert epochs.
        truth: (n,) their expert stages 0..3.
        gated: (n,) the epochs the device calls absent (scored as wake whatever `p` says).

    Returns:
        (4,) log offsets (wake, light, deep, rem); wake's and light's are 0.
    """
    logp = np.log(np.maximum(p, 1e-12))
    best = np.zeros(4)
    best_v = sum(_kappa_and_balanced(_confusion(truth, np.argmax(logp, axis=1), gated)))
    for d in OFFSET_GRID:
        for r in OFFSET_GRID:
            off = np.array([0.0, 0.0, d, r])
            v = sum(_kappa_and_balanced(_confusion(truth, np.argmax(logp + off, axis=1), gated)))
            if v > best_v + 1e-9:
                best, best_v = off, v
    return best


def _confusion(truth: np.ndarray, pred: np.ndarray, gated: np.ndarray) -> np.ndarray:
    pred = np.where(gated, 0, pred)
    return np.bincount(truth * 4 + pred, minlength=16).reshape(4, 4).astype(float)


def inner_scores(
    radar: list[Night], subjects: set[str], fitter: Callable[[set[str]], Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Out-of-fold scores of the subjects not in `subjects`, by an inner cross-validation.

    Those subjects are split into `INNER_FOLDS` groups; each group's radar nights are scored
    by a model fitted (`fitter`) without it and without `subjects`.

    Returns:
        (p (n, 4) probabilities, truth (n,) expert stages, gated (n,) epochs the device calls
        absent), over the groups' expert epochs.
    """
    train = sorted({str(n["subject"]) for n in radar} - subjects)
    groups = [set(train[i::INNER_FOLDS]) for i in range(INNER_FOLDS)]
    ps, ts, gs = [], [], []
    for g in groups:
        inner = fitter(subjects | g)
        for n in (n for n in radar if str(n["subject"]) in g):
            keep = n["expert"]
            ps.append(inner.predict_proba(n["x"][keep]))
            ts.append(n["y"][keep].astype(int))
            gs.append(n["x"][keep, _PRESENT] < MIN_PRESENT_FRACTION)
    return np.vstack(ps), np.concatenate(ts), np.concatenate(gs)


def fit_calibrated(
    radar: list[Night], subjects: set[str], fitter: Callable[[set[str]], Any]
) -> Calibrated:
    """A live model with deep/REM offsets chosen by an inner cross-validation.

    The subjects not in `subjects` are split into `INNER_FOLDS` groups; each group's radar
    nights are scored by a model fitted (`fitter`) without it, and `choose_offsets` picks the
    offsets on those out-of-fold scores. The model itself is `fitter(subjects)`. The held-out
    subjects take no part in either.

    Args:
        radar: The radar nights (the offsets are chosen on their expert epochs).
        subjects: The subjects left out.
        fitter: subjects to leave out → fitted model (the recipe being calibrated).

    Raises:
        ValueError: no night is left to fit on.
    """
    offsets = choose_offsets(*inner_scores(radar, subjects, fitter))
    log.info("offsets (wake, light, deep, rem) without %s: %s", sorted(subjects), offsets)
    return Calibrated(fitter(subjects), offsets)


def _predict(model: Any, night: Night, morning: bool, smooth: int) -> np.ndarray:
    """Device hypnogram of one night, gated as the Stager gates (absent epochs → ABSENT)."""
    x = night_context(night["x"]) if morning else night["x"]
    p = model.predict_proba(x)
    if smooth > 1:
        p = smooth_probs(p, smooth)
    pred = np.argmax(p, axis=1).astype(np.int8)
    return np.where(night["x"][:, _PRESENT] < MIN_PRESENT_FRACTION, ABSENT, pred).astype(np.int8)


def cross_validate(
    test_nights: list[Night],
    fitter: Callable[[set[str]], Any],
    *,
    morning: bool = False,
    smooth: Sequence[int] = (1,),
    scores_out: dict[int, list[NightScore]] | None = None,
) -> dict[int, dict[str, Any]]:
    """Leave-one-subject-out: pooled, 3-class, per-subject agreement and per-night metrics.

    Args:
        test_nights: The nights scored (each by a model fitted without its subject).
        fitter: subjects to leave out → fitted model.
        morning: Score with whole-night features.
        smooth: Probability smoothing windows to report (epochs; 1 = none).
        scores_out: If given, filled with smoothing window → the held-out nights' hypnograms
            (what the plots are drawn from).

    Returns:
        smoothing window → figures.
    """
    subjects = sorted({str(n["subject"]) for n in test_nights})
    preds: dict[int, list[tuple[Night, np.ndarray]]] = {k: [] for k in smooth}
    for s in subjects:
        model = fitter({s})
        for n in (n for n in test_nights if str(n["subject"]) == s):
            for k in smooth:
                preds[k].append((n, _predict(model, n, morning, k)))
    if scores_out is not None:
        scores_out.update({k: _scores(v) for k, v in preds.items()})
    return {k: _figures(v) for k, v in preds.items()}


def _scores(preds: list[tuple[Night, np.ndarray]]) -> list[NightScore]:
    """The held-out nights as `appliance.evaluate` scores them (truth = expert-scored epochs)."""
    return [
        NightScore(
            str(n["record"]),
            str(n["subject"]),
            np.where(n["expert"], n["y"], UNSCORED).astype(np.int8),
            p,
            {},
        )
        for n, p in preds
    ]


def _figures(preds: list[tuple[Night, np.ndarray]]) -> dict[str, Any]:
    scores = _scores(preds)
    truth = [s.truth for s in scores]
    device = [s.device for s in scores]
    per_subject: dict[str, dict[str, Any]] = {}
    for s in sorted({str(n["subject"]) for n, _ in preds}):
        idx = [i for i, (n, _) in enumerate(preds) if str(n["subject"]) == s]
        a = agreement(
            np.concatenate([truth[i] for i in idx]), np.concatenate([device[i] for i in idx])
        )
        per_subject[s] = {
            "kappa": a.kappa,
            "accuracy": a.accuracy,
            "epochs": a.n_epochs,
            # None where the subject's nights hold no epoch of the stage.
            "sensitivity": {k: v["sensitivity"] for k, v in a.per_stage.items()},
        }
    pooled = agreement(np.concatenate(truth), np.concatenate(device))
    pooled3 = agreement(np.concatenate(truth), np.concatenate(device), classes=3)
    kappas = np.array([v["kappa"] for v in per_subject.values() if v["kappa"] is not None], float)
    return {
        "pooled": pooled.to_dict(),
        "pooled_3class": pooled3.to_dict(),
        "per_subject": per_subject,
        "kappa_subject_mean": float(kappas.mean()),
        "kappa_subject_sd": float(kappas.std(ddof=1)) if kappas.size > 1 else 0.0,
        "kappa_subject_min": float(kappas.min()),
        "kappa_subject_max": float(kappas.max()),
        "metrics": metric_pairs(scores),
    }


def export(  # type: ignore[no-untyped-def]
    model,
    out: Path,
    metrics: dict[str, object],
    data_desc: str,
    records: list[str],
    *,
    name: str = "live",
    feature_names: Sequence[str] = FEATURE_NAMES,
    extra: dict[str, object] | None = None,
) -> None:
    """Write <name>.onnx and <name>.json (the card the stager checks); check ONNX parity.

    A `Calibrated` model's offsets become the tree ensemble's ``base_values`` (added to the raw
    scores before its softmax), and the card records them as ``class_offsets``.
    """
    import onnxruntime as ort
    from onnx import helper
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    base = model.model if isinstance(model, Calibrated) else model
    onx = convert_lightgbm(
        base,
        initial_types=[("features", FloatTensorType([None, len(feature_names)]))],
        zipmap=False,
        target_opset=15,
    )
    if isinstance(model, Calibrated):
        (tree,) = [n for n in onx.graph.node if n.op_type == "TreeEnsembleClassifier"]
        post = next(a for a in tree.attribute if a.name == "post_transform")
        if post.s != b"SOFTMAX" or any(a.name == "base_values" for a in tree.attribute):
            raise SystemExit("unexpected ONNX tree ensemble: cannot add the class offsets")
        tree.attribute.append(helper.make_attribute("base_values", model.offsets.tolist()))
        extra = {**(extra or {}), "class_offsets": model.offsets.tolist()}
    (out / f"{name}.onnx").write_bytes(onx.SerializeToString())
    card = {
        "name": name,
        "feature_names": list(feature_names),
        "classes": list(STAGE_NAMES),
        "trained_on": data_desc,
        "training_records": records,
        **(extra or {}),
        "metrics": metrics,
    }
    (out / f"{name}.json").write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # the converter declares the label output as (1,): harmless here
    sess = ort.InferenceSession(str(out / f"{name}.onnx"), opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(feature_names))).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    p_onnx = sess.run(None, {"features": x})[1]
    p_lgb = model.predict_proba(x)
    if not np.allclose(p_onnx, p_lgb, atol=1e-4):
        raise SystemExit(f"ONNX export of {name} disagrees with LightGBM")


def write_cv_plots(scores: Sequence[NightScore], out_dir: Path, title: str) -> list[Path]:
    """The card's plots: `appliance eval --plots` of the held-out (LOSO) hypnograms.

    Stale plots of an earlier run are removed first (a night no longer in the data must not
    linger beside the card). 64 dpi keeps both models' plots well under 2 MB in the repository.
    """
    from appliance.eval_plots import write_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [*out_dir.glob("*_hypnogram.png"), *out_dir.glob("bland_altman_*.png")]:
        old.unlink()
    return write_plots(scores, out_dir, title=title, dpi=64)


def _summary(tag: str, cv: dict[str, Any]) -> None:
    p = cv["pooled"]
    sens = " ".join(f"{k} {v['sensitivity']:.2f}" for k, v in p["per_stage"].items())
    log.info(
        "%s: kappa %.3f (3-class %.3f) acc %.3f; subjects %.3f ± %.3f; sensitivity %s",
        tag,
        p["kappa"],
        cv["pooled_3class"]["kappa"],
        p["accuracy"],
        cv["kappa_subject_mean"],
        cv["kappa_subject_sd"],
        sens,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: render/load, cross-validate, fit, export, write the cards."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--out", type=Path, default=Path(__file__).parent)
    ap.add_argument("--cache", type=Path, default=Path(".cache/features"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    t0 = time.time()
    radar = load_radar(args.data, args.cache, args.jobs)
    ecg = load_recorded(args.data, args.jobs)
    t_data = time.time() - t0
    log.info("features of %d nights ready (%.0f s)", len(radar), t_data)

    cv: dict[str, dict[str, Any]] = {}
    held_out: dict[str, dict[int, list[NightScore]]] = {
        k: {} for k in ("radar", "adapted", "calibrated", "morning")
    }
    fits: dict[frozenset[str], Any] = {}

    def adapted(subjects: set[str]) -> Any:
        # The calibrated recipe's own fit on the training subjects is the adapted LOSO fit.
        key = frozenset(subjects)
        if key not in fits:
            fits[key] = fit_adapted(ecg, radar, subjects)
        return fits[key]

    cv["ecg"] = cross_validate(ecg, lambda s: fit_without(ecg, s))[1]
    _summary("ECG -> ECG", cv["ecg"])
    cv["radar"] = cross_validate(
        radar, lambda s: fit_without(radar, s), scores_out=held_out["radar"]
    )[1]
    _summary("radar -> radar", cv["radar"])
    ecg_masked = _without_radar_only_channels(ecg)
    cv["ecg_on_radar"] = cross_validate(radar, lambda s: fit_without(ecg_masked, s))[1]
    _summary("ECG -> radar (no adaptation)", cv["ecg_on_radar"])
    cv["adapted"] = cross_validate(radar, adapted, scores_out=held_out["adapted"])[1]
    _summary("ECG + adapted -> radar", cv["adapted"])
    adapted_wins = cv["adapted"]["pooled"]["kappa"] >= cv["radar"]["pooled"]["kappa"]
    base_key = "adapted" if adapted_wins else "radar"
    base_fit: Callable[[set[str]], Any] = (
        adapted if adapted_wins else (lambda s: fit_without(radar, s))
    )
    cv["calibrated"] = cross_validate(
        radar, lambda s: fit_calibrated(radar, s, base_fit), scores_out=held_out["calibrated"]
    )[1]
    _summary(f"{base_key} + deep/REM offsets -> radar (live)", cv["calibrated"])
    morning = cross_validate(
        radar,
        lambda s: fit_morning(ecg, radar, s),
        morning=True,
        smooth=(1, MORNING_SMOOTH_EPOCHS),
        scores_out=held_out["morning"],
    )
    cv["morning_unsmoothed"] = morning[1]
    cv["morning"] = morning[MORNING_SMOOTH_EPOCHS]
    _summary("morning, unsmoothed", cv["morning_unsmoothed"])
    _summary("morning", cv["morning"])

    shipped = {str(n["subject"]) for n in radar if str(n["record"]) in SHIPPED_RECORDS}
    fit_nights = _others(radar, shipped)
    live_key = "calibrated"
    live = fit_calibrated(radar, shipped, base_fit)
    best = fit_morning(ecg, radar, shipped)
    n_subjects = len({str(n["subject"]) for n in fit_nights})
    n_expert = int(sum(int(n["expert"].sum()) for n in fit_nights))
    n_rows = int(sum(int((n["y"] >= 0).sum()) for n in fit_nights))
    desc = (
        f"{len(fit_nights)} nights / {n_subjects} subjects of MIT-BIH slpdb (all but the shipped "
        f"demo nights' subjects {', '.join(sorted(shipped))}), {n_expert} expert-scored "
        f"epochs (+{n_rows - n_expert} scripted awake-in-bed) rendered through the radar "
        f"simulator (scene {SCENE})"
    )
    desc_live = desc + (
        ", with the same nights' recorded ECG features (weight 0.3)" if adapted_wins else ""
    )
    desc_morning = desc + ", with the same nights' recorded ECG features (weight 0.3)"
    records = sorted(str(n["record"]) for n in fit_nights)
    facts = data_facts(radar, ecg)
    t_total = time.time() - t0
    timing = {"seconds_total": round(t_total, 1), "seconds_features": round(t_data, 1)}
    export(
        live,
        args.out,
        {"loso": cv[live_key], "timing": timing},
        desc_live,
        records,
        extra={"recipe": f"{base_key} + offsets"},
    )
    export(
        best,
        args.out,
        {"loso": cv["morning"], "timing": timing},
        desc_morning,
        records,
        name="morning",
        feature_names=MORNING_FEATURE_NAMES,
        extra={"smooth_epochs": MORNING_SMOOTH_EPOCHS},
    )
    plots = {
        "live": write_cv_plots(held_out[live_key][1], args.out / "plots" / "live", "live, LOSO"),
        "morning": write_cv_plots(
            held_out["morning"][MORNING_SMOOTH_EPOCHS],
            args.out / "plots" / "morning",
            "morning, LOSO",
        ),
    }
    for which, key in (("live", live_key), ("morning", "morning")):
        write_model_card(
            args.out / f"{which}.md",
            which,
            key,
            cv,
            desc_live if which == "live" else desc_morning,
            t_total,
            t_data,
            plots=[p.relative_to(args.out).as_posix() for p in plots[which]],
            facts=facts,
            base=base_key,
        )
    log.info("trained, cross-validated and exported in %.0f s (%.1f min)", t_total, t_total / 60)
    print(json.dumps({k: {"pooled": v["pooled"]} for k, v in cv.items()}, indent=1))


if __name__ == "__main__":
    main()
