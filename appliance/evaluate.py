"""`appliance eval`: score nights the model has never seen against their expert hypnograms.

Follows Menghini et al. 2021 (doi:10.1093/sleep/zsaa170): epoch by epoch accuracy, Cohen's kappa,
per-stage sensitivity / precision / specificity and the confusion matrix, pooled over every epoch
the experts scored; per night TST, SE, SOL and WASO as device − PSG bias with 95 % limits of
agreement (Bland–Altman), and the same for the minutes of each stage (wake, light, deep, rem).
With a plots folder, the PNGs Menghini et al. recommend: a hypnogram pair per night (experts above,
device below) and a Bland–Altman plot per metric (`appliance.eval_plots`).

Two input paths, named in the JSON's ``inputs``:

- **via radar** (`via_radar=True`): each night drives the scene simulator's sleeper (its real
  heartbeats; breathing from its ``resp`` channel when it has one, else derived from the heartbeat);
  the rendered A121 frames go through the device's own DSP → presence → tracking → epochs → stager.
  This is the whole chain the appliance runs.
- **recorded channels** (default): the same epoch features built directly from what the night
  recorded — heart rate from the ECG beats, breathing rate from ``resp`` when present, else from the
  heartbeat's respiratory sinus arrhythmia — with no radar in between and no movement channel
  (PSG files carry none the device could use). A night with ``resp`` and no beats is scored from
  respiration alone (heart-rate features missing, which the model tolerates).

Nothing is retrained: the shipped model scores every night as it would on the device. With
``model="morning"`` each night is re-scored whole by `appliance.staging.refine_night` (the morning
model, which sees the night's future), as the session close does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.config import Config
from appliance.epochs import EpochBuilder
from appliance.errors import ConfigError
from appliance.frames import (
    ABSENT,
    UNSCORED,
    EpochFeatures,
    PresenceState,
    Stage,
    Target,
    TrackedSecond,
)
from appliance.metrics import agreement, bland_altman, sleep_metrics, stage_minutes
from appliance.pipeline import Pipeline
from appliance.staging import Stager, model_path, refine_night
from hardware.radar.night import Night, load_night
from hardware.radar.physiology import clean_rr, rsa_breath_rate
from hardware.radar.scene import build_scene
from hardware.radar.simulated import SimulatedRadar

__all__ = [
    "METRIC_UNITS",
    "SCENE",
    "NightScore",
    "evaluate",
    "metric_pairs",
    "night_metric_values",
    "radar_night_features",
    "recorded_night_features",
]

SCENE = "asleep-at-once"
"""The scene a night is rendered in for evaluation: in bed at the recording's start, out at its end,
so that device and PSG epochs coincide one for one."""
_T0_S = 1_700_000_000.0
METRIC_UNITS: dict[str, str] = {
    "tst": "min",
    "se": "%",
    "sol": "min",
    "waso": "min",
    "wake_min": "min",
    "light_min": "min",
    "deep_min": "min",
    "rem_min": "min",
}
"""The JSON `metrics` keys (device − experts Bland–Altman per night) and their units."""
_SLEEP_METRIC_FIELDS = {"tst": "tst_min", "se": "se_pct", "sol": "sol_min", "waso": "waso_min"}


@dataclass(frozen=True, slots=True)
class NightScore:
    """One night's device and expert hypnograms over the recording's epochs (codes as `Stage`)."""

    record: str
    subject: str
    truth: np.ndarray
    device: np.ndarray
    inputs: dict[str, str]


def _stage_codes(staged: Sequence[int], n: int) -> np.ndarray:
    out = np.full(n, ABSENT, np.int8)
    k = min(n, len(staged))
    out[:k] = np.asarray(staged[:k], np.int8)
    return out


def _night_inputs(night: Night, via_radar: bool) -> dict[str, str]:
    has_beats = night.beat_t_s.size > 10
    resp = night.resp is not None
    return {
        "path": "radar (simulated A121 frames, device DSP)" if via_radar else "recorded channels",
        "heartbeat": ("ECG beats" if has_beats else "none")
        if not via_radar
        else ("radar cardiac band (sleeper driven by the ECG beats)" if has_beats else "none"),
        "respiration": ("resp channel" if resp else "derived from the heartbeat (RSA)")
        if not via_radar
        else (
            "radar (sleeper breathing from the resp channel)"
            if resp
            else "radar (sleeper breathing derived from the heartbeat)"
        ),
        "movement": "radar" if via_radar else "none",
    }


def radar_night_features(night: Night, seed: int = 0) -> tuple[list[EpochFeatures], np.ndarray]:
    """Render `night` in `SCENE` and run the device's front half; returns features and truth.

    Returns:
        The epoch features from the scene start, and the scene's truth stages per epoch (expert
        codes where scored and the user in bed, `ABSENT` out of bed, `UNSCORED` otherwise).
    """
    cfg = Config()
    scene = build_scene(SCENE, night, None, seed)
    radar = SimulatedRadar(scene, cfg.radar, start_s=_T0_S, seed=seed)
    radar.start()
    pipe = Pipeline(cfg, stager=None)
    feats: list[EpochFeatures] = []
    while (frames := radar.read(1200)) is not None:
        feats.extend(pipe.features(frames)[1])
    feats.extend(pipe.epochs.flush())
    truth = radar.truth
    stages = truth.stages.astype(np.int8).copy()
    stages[~truth.expert_scored] = UNSCORED
    stages[~truth.user_present] = ABSENT
    return feats, stages


def _trailing_mean(t: np.ndarray, v: np.ndarray, grid: np.ndarray, win_s: float) -> np.ndarray:
    """Mean of the samples (t, v) in (g − win_s, g] for each g of `grid`; NaN where none."""
    csum = np.concatenate(([0.0], np.cumsum(v)))
    hi = np.searchsorted(t, grid, side="right")
    lo = np.searchsorted(t, grid - win_s, side="right")
    n = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (csum[hi] - csum[lo]) / n
    return np.where(n > 0, out, np.nan)


def _resp_rate(resp: np.ndarray, fs: float, grid: np.ndarray) -> np.ndarray:
    """Breathing rate (breaths/min) of a respiration channel: spectral peak over the past 32 s."""
    win = int(round(32.0 * fs))
    out = np.full(grid.size, np.nan)
    x = np.asarray(resp, np.float64)
    nfft = max(4096, 1 << int(math.ceil(math.log2(max(win, 2)))))
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs)
    band = (freqs >= 6 / 60) & (freqs <= 30 / 60)
    for i, g in enumerate(grid):
        end = int(g * fs)
        if end < win or end > x.size:
            continue
        seg = x[end - win : end]
        seg = (seg - seg.mean()) * np.hanning(win)
        p = np.abs(np.fft.rfft(seg, nfft)) ** 2
        out[i] = 60.0 * freqs[band][int(np.argmax(p[band]))]
    return out


def recorded_night_features(night: Night) -> tuple[list[EpochFeatures], np.ndarray]:
    """Epoch features from the night's recorded channels (no radar); returns features and truth.

    Per second: heart rate = mean of the ECG's clean beat-to-beat rates over the past 30 s, and
    the clean beat-to-beat intervals themselves (the epoch builder's `rr_s` hook: SDNN, RMSSD,
    LF/HF, DFA alpha1); breathing rate from ``resp`` (past 32 s) or, without it, from the
    heartbeat's RSA; no amplitude, movement or distance channel (their features are missing or
    constant).
    """
    n_s = int(night.duration_s)
    grid = np.arange(1, n_s + 1, dtype=np.float64)
    t_rr, rr = clean_rr(night.beat_t_s)
    hr = _trailing_mean(t_rr, 60.0 / rr, grid, 30.0) if rr.size else np.full(n_s, np.nan)
    if night.resp is not None and night.fs_resp:
        br = _resp_rate(night.resp, float(night.fs_resp), grid)
    elif rr.size:
        t_c, rate = rsa_breath_rate(night.beat_t_s, night.duration_s)
        # The RSA estimate is centred on a 32-s window: read it at the window's end (causal).
        br = np.interp(grid, t_c + 16.0, rate, left=np.nan)
    else:
        br = np.full(n_s, np.nan)
    builder = EpochBuilder(1.0)
    presence = PresenceState(0.0, True, 1.0, "present-still")
    feats: list[EpochFeatures] = []
    # The beat-to-beat intervals closing in each second (k, k + 1]: the epoch builder's HRV hook.
    cut = np.searchsorted(t_rr, np.arange(n_s + 1, dtype=np.float64), side="right")
    for k in range(n_s):
        b = None if not math.isfinite(br[k]) else float(br[k])
        h = None if not math.isfinite(hr[k]) else float(hr[k])
        user = Target(1.0, 20.0, math.nan, b, h, 0.0, math.nan)
        t = _T0_S + float(grid[k])
        feats.extend(builder.update(TrackedSecond(t, presence, user, 0), rr[cut[k] : cut[k + 1]]))
    feats.extend(builder.flush())
    # The builder's epochs start at the first second: epoch i covers record [30 i, 30 i + 30).
    offset = int(round(night.epoch0_offset_s / night.epoch_s))
    stages = np.full(len(feats), UNSCORED, np.int8)
    src = night.stages.astype(np.int8)
    for i in range(len(feats)):
        j = i - offset
        if 0 <= j < src.size:
            stages[i] = src[j]
    return feats, stages


def score_night(path: Path, via_radar: bool, model: str, seed: int = 0) -> NightScore:
    """Score one night with the shipped model (no retraining)."""
    night = load_night(path)
    if via_radar:
        feats, truth = radar_night_features(night, seed)
    else:
        feats, truth = recorded_night_features(night)
    if model == "morning":
        # The morning pass re-scores the whole night at once, as the session close does.
        staged = refine_night(feats, model_path("morning"))
    else:
        stager = Stager(model_path(model))
        staged = [stager.update(f).stage for f in feats]
    device = _stage_codes(staged, truth.size)
    return NightScore(night.record, night.subject, truth, device, _night_inputs(night, via_radar))


def _scored_span(s: NightScore) -> tuple[np.ndarray, np.ndarray] | None:
    """Both hypnograms over the experts' scored span (time in bed = the recording), or None.

    An `ABSENT` epoch counts as wake on both sides; device epochs the experts left unscored are
    unscored on the device side too.
    """
    scored = s.truth >= 0
    if not scored.any():
        return None
    idx = np.flatnonzero(scored)
    lo, hi = int(idx[0]), int(idx[-1]) + 1
    truth = s.truth[lo:hi].copy()
    device = s.device[lo:hi].copy()
    truth[truth == ABSENT] = Stage.WAKE
    device[device == ABSENT] = Stage.WAKE
    device[truth == UNSCORED] = UNSCORED
    return truth, device


def night_metric_values(
    scores: Sequence[NightScore],
) -> dict[str, tuple[list[str], list[float | None], list[float | None]]]:
    """Per night, device and expert values of every compared metric (the Bland–Altman inputs).

    Returns:
        JSON metric key (`METRIC_UNITS`) → (records, device values, expert values), one entry per
        night with an expert-scored epoch; None where the night does not define the metric
        (e.g. SOL of a night without sleep).
    """
    out: dict[str, tuple[list[str], list[float | None], list[float | None]]] = {
        k: ([], [], []) for k in METRIC_UNITS
    }
    for s in scores:
        pair = _scored_span(s)
        if pair is None:
            continue
        truth, device = pair
        m_dev, m_ref = sleep_metrics(device), sleep_metrics(truth)
        st_dev, st_ref = stage_minutes(device), stage_minutes(truth)
        for key in METRIC_UNITS:
            records, dev, ref = out[key]
            records.append(s.record)
            if key in _SLEEP_METRIC_FIELDS:
                dev.append(getattr(m_dev, _SLEEP_METRIC_FIELDS[key]))
                ref.append(getattr(m_ref, _SLEEP_METRIC_FIELDS[key]))
            else:
                stage = key.removesuffix("_min")
                dev.append(st_dev[stage])
                ref.append(st_ref[stage])
    return out


def metric_pairs(scores: Sequence[NightScore]) -> dict[str, dict[str, float | int | None]]:
    """Bland–Altman, device − experts over nights, of every metric in `METRIC_UNITS`.

    TST, SOL, WASO and the minutes per stage in minutes, SE in percent. Each night is compared
    over the experts' scored span (time in bed = the recording); an `ABSENT` epoch counts as
    wake on both sides.
    """
    return {k: bland_altman(dev, ref) for k, (_, dev, ref) in night_metric_values(scores).items()}


def evaluate(
    data: Path,
    *,
    via_radar: bool = False,
    model: str = "live",
    classes: int = 4,
    jobs: int = 1,
    seed: int = 0,
    plots: Path | None = None,
) -> dict[str, Any]:
    """Score every night in `data` and return the figures (the JSON `appliance eval` writes).

    Args:
        data: A folder of nights (*.npz, ../shared/data/README.md format).
        via_radar: Render each night through the radar simulator and the device's DSP first.
        model: "live" or "morning".
        classes: 4 (wake/light/deep/rem) or 3 (wake/nrem/rem) for the epoch-by-epoch figures.
        jobs: Nights scored in parallel (processes).
        seed: Noise seed of the radar simulator.
        plots: If given, a folder to write the PNGs into (`appliance.eval_plots.write_plots`:
            a hypnogram pair per night, a Bland–Altman plot per metric); the JSON then lists
            them under ``plots``.

    Raises:
        ConfigError: no night in `data`, a bad model name or class count.
        DataError: a night file that is not in the documented format.
        ApplianceError: `plots` asked for without matplotlib, or not writable.
    """
    if classes not in (3, 4):
        raise ConfigError("--classes", "must be 4 (wake/light/deep/rem) or 3 (wake/nrem/rem)")
    if not model_path(model).is_file():
        raise ConfigError("--model", f"no shipped model {model!r}")
    if not data.is_dir():
        raise ConfigError("--data", f"{data} is not a directory")
    paths = sorted(data.glob("*.npz"))
    if not paths:
        raise ConfigError("--data", f"no night (*.npz) in {data}")
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            scores = list(
                pool.map(score_night, paths, [via_radar] * len(paths), [model] * len(paths))
            )
    else:
        scores = [score_night(p, via_radar, model, seed) for p in paths]
    truth = np.concatenate([s.truth for s in scores])
    device = np.concatenate([s.device for s in scores])
    ag = agreement(truth, device, classes=classes)
    per_night = []
    for s in scores:
        a = agreement(s.truth, s.device, classes=classes)
        per_night.append(
            {
                "record": s.record,
                "subject": s.subject,
                "epochs": a.n_epochs,
                "accuracy": a.accuracy,
                "kappa": a.kappa,
            }
        )
    out: dict[str, Any] = {
        "nights": len(scores),
        "epochs": ag.n_epochs,
        "model": model,
        "classes": classes,
        "stage_names": list(ag.classes),
        "inputs": scores[0].inputs
        if len({str(s.inputs) for s in scores}) == 1
        else {s.record: s.inputs for s in scores},
        "accuracy": ag.accuracy,
        "kappa": ag.kappa,
        "per_stage": ag.per_stage,
        "confusion": ag.confusion,
        "metrics": metric_pairs(scores),
        "metric_units": dict(METRIC_UNITS),
        "per_night": per_night,
    }
    if plots is not None:
        from appliance.eval_plots import write_plots

        written = write_plots(scores, plots, classes=classes, title=f"{model} model")
        out["plots"] = [str(p) for p in written]
    return out
