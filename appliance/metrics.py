"""Sleep metrics of one night and agreement with expert scoring (DESIGN.md, "Evaluation").

Pure functions on hypnograms: 1-D integer arrays of 30-s epoch codes, `Stage` values (0 wake,
1 light, 2 deep, 3 rem), `UNSCORED` (-1) or `ABSENT` (-2), in time order. numpy only.

Definitions (one night, epoch index i, epoch length `epoch_s`):

- *In bed*: from the first to the last present (not `ABSENT`) epoch, inclusive. `ABSENT` epochs
  inside that span are time in bed spent awake (out of bed is counted separately).
- *Sleep*: light, deep or rem. `UNSCORED` epochs are in bed but neither sleep nor wake.
- *Sleep onset*: the first epoch of any sleep stage (AASM). *Final awakening*: the epoch after the
  last sleep epoch.
- *WASO*: wake and absent epochs from sleep onset to the last sleep epoch.
- *Awakening*: a stretch of non-sleep epochs between sleep onset and the last sleep epoch that
  holds at least `min_awakening_s` (default 60 s = 2 epochs) of wake or absent epochs.
  `UNSCORED` epochs neither break nor lengthen such a stretch.

References:
    Menghini L, Cellini N, Goldstone A, Baker FC, de Zambotti M (2021). A standardized framework
    for testing the performance of sleep-tracking technology: step-by-step guidelines and
    open-source code. Sleep 44(2):zsaa170. doi:10.1093/sleep/zsaa170

    Berry RB et al. (2020). The AASM Manual for the Scoring of Sleep and Associated Events,
    version 2.6. American Academy of Sleep Medicine.

    Cohen J (1960). A coefficient of agreement for nominal scales. Educational and Psychological
    Measurement 20(1):37-46. doi:10.1177/001316446002000104

    Bland JM, Altman DG (1986). Statistical methods for assessing agreement between two methods
    of clinical measurement. Lancet 327(8476):307-310. doi:10.1016/S0140-6736(86)90837-8
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from appliance.frames import ABSENT, EPOCH_S, STAGE_NAMES, UNSCORED, Stage

__all__ = [
    "Agreement",
    "SleepMetrics",
    "agreement",
    "bland_altman",
    "sleep_metrics",
    "stage_minutes",
]

logger = logging.getLogger(__name__)

_VALID_CODES = frozenset({ABSENT, UNSCORED, *(int(s) for s in Stage)})
_NREM_CLASSES: tuple[str, ...] = ("wake", "nrem", "rem")
_LOA_Z = 1.96
"""Normal quantile of the 95 % limits of agreement (Bland & Altman 1986)."""


@dataclass(frozen=True, slots=True)
class SleepMetrics:
    """The night's sleep metrics, as Menghini et al. (2021) list them.

    Durations are minutes, percentages are 0-100, indices are epoch numbers into the hypnogram.
    Fields are None where the night does not define them (no sleep, nobody in bed).

    Attributes:
        tib_min: Time in bed, first to last present epoch inclusive, min.
        tst_min: Total sleep time (light + deep + rem), min.
        se_pct: Sleep efficiency, tst / tib * 100, %; None if nobody was in bed.
        sol_min: Sleep onset latency from the intent epoch (else the first in-bed epoch) to the
            first sleep epoch, min; 0 if sleep was scored before the intent; None if no sleep.
        waso_min: Wake after sleep onset: wake and absent epochs from onset to the last sleep
            epoch, min; None if no sleep.
        awakenings: Awakenings of at least `min_awakening_s` between onset and the last sleep
            epoch (see the module docstring); None if no sleep.
        out_of_bed: Runs of absent epochs between the first and last present epoch.
        light_min: Light sleep (N1 + N2), min.
        deep_min: Deep sleep (N3), min.
        rem_min: REM sleep, min.
        light_pct: Light sleep as a share of TST, %; None if no sleep.
        deep_pct: Deep sleep as a share of TST, %; None if no sleep.
        rem_pct: REM sleep as a share of TST, %; None if no sleep.
        deep_latency_min: From sleep onset to the first deep epoch, min; None if never reached.
        rem_latency_min: From sleep onset to the first REM epoch, min; None if never reached.
        final_wake_index: Index of the epoch after the last sleep epoch (equal to the hypnogram
            length if the night ends asleep); None if no sleep.
        sleep_onset_index: Index of the first sleep epoch; None if no sleep.
        intent_index: Index the latency was measured from (the given intent epoch, else the first
            in-bed epoch); None if nobody was in bed and no intent was given.
    """

    tib_min: float
    tst_min: float
    se_pct: float | None
    sol_min: float | None
    waso_min: float | None
    awakenings: int | None
    out_of_bed: int
    light_min: float
    deep_min: float
    rem_min: float
    light_pct: float | None
    deep_pct: float | None
    rem_pct: float | None
    deep_latency_min: float | None
    rem_latency_min: float | None
    final_wake_index: int | None
    sleep_onset_index: int | None
    intent_index: int | None

    def to_dict(self) -> dict[str, Any]:
        """Return the metrics as a JSON-friendly dict keyed by field name (None where undefined)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Agreement:
    """Epoch-by-epoch agreement of a device hypnogram with expert scoring.

    Attributes:
        n_epochs: Epochs compared (truth scored as a stage).
        accuracy: Share of epochs where device and experts agree, [0, 1]; None if n_epochs is 0.
        kappa: Cohen's kappa, [-1, 1]; None if chance agreement is 1 (a single class in both).
        confusion: (k, k) epoch counts, rows = experts (truth), columns = device, in `classes`
            order.
        per_stage: Class name -> {"sensitivity", "precision", "specificity"}, each in [0, 1] or
            None where its denominator is zero.
        classes: Class names: ("wake", "light", "deep", "rem") or ("wake", "nrem", "rem").
    """

    n_epochs: int
    accuracy: float | None
    kappa: float | None
    confusion: list[list[int]]
    per_stage: dict[str, dict[str, float | None]]
    classes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the agreement as a JSON-friendly dict (classes as a list)."""
        return {
            "n_epochs": self.n_epochs,
            "accuracy": self.accuracy,
            "kappa": self.kappa,
            "confusion": [list(row) for row in self.confusion],
            "per_stage": {name: dict(v) for name, v in self.per_stage.items()},
            "classes": list(self.classes),
        }


def _as_hypnogram(hypnogram: ArrayLike, what: str = "hypnogram") -> np.ndarray:
    """Return `hypnogram` as a 1-D int64 array, or raise ValueError on a shape or code error."""
    arr = np.asarray(hypnogram)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError(f"{what} holds non-integer codes")
    elif arr.dtype.kind not in "iub":
        raise ValueError(f"{what} must hold integer codes, got dtype {arr.dtype}")
    codes = arr.astype(np.int64)
    bad = sorted(set(np.unique(codes).tolist()) - _VALID_CODES)
    if bad:
        raise ValueError(f"{what} holds unknown codes {bad}")
    return codes


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Return the (start, stop) half-open index ranges where the boolean `mask` is True."""
    padded = np.concatenate(([False], mask.astype(bool), [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _first_at_or_after(mask: np.ndarray, start: int) -> int | None:
    """Return the first index >= `start` where `mask` is True, or None."""
    hits = np.flatnonzero(mask[start:])
    return int(start + hits[0]) if hits.size else None


def sleep_metrics(
    hypnogram: ArrayLike,
    *,
    epoch_s: float = EPOCH_S,
    intent_index: int | None = None,
    min_awakening_s: float = 60.0,
) -> SleepMetrics:
    """Compute the night's sleep metrics from a hypnogram.

    Args:
        hypnogram: (n_epochs,) hypnogram codes in time order: `Stage` values, `UNSCORED` (-1) or
            `ABSENT` (-2).
        epoch_s: Epoch length, seconds (> 0).
        intent_index: Epoch at which the user started trying to sleep ("lights off"), in
            [0, n_epochs); sleep onset latency is measured from it. None: from the first
            in-bed epoch.
        min_awakening_s: Least wake/absent time that makes a stretch between sleep an
            awakening, seconds (60 s = 2 epochs of 30 s).

    Returns:
        The metrics; see `SleepMetrics` for each definition.

    Raises:
        ValueError: If the hypnogram is not 1-D or holds unknown codes, `epoch_s` is not
            positive, or `intent_index` is outside the hypnogram.

    References:
        Menghini L et al. (2021). Sleep 44(2):zsaa170. doi:10.1093/sleep/zsaa170
    """
    hyp = _as_hypnogram(hypnogram)
    n = int(hyp.size)
    if not epoch_s > 0:
        raise ValueError(f"epoch_s must be positive, got {epoch_s}")
    if intent_index is not None and not 0 <= intent_index < n:
        raise ValueError(f"intent_index {intent_index} outside the hypnogram (0..{n - 1})")
    epoch_min = epoch_s / 60.0
    min_wake_epochs = max(1, math.ceil(min_awakening_s / epoch_s - 1e-9))

    present = hyp != ABSENT
    sleep = hyp >= Stage.LIGHT
    wakeish = (hyp == Stage.WAKE) | (hyp == ABSENT)

    present_idx = np.flatnonzero(present)
    first_in: int | None = None
    tib_epochs = out_of_bed = 0
    if present_idx.size:
        first_in, last_in = int(present_idx[0]), int(present_idx[-1])
        tib_epochs = last_in - first_in + 1
        out_of_bed = len(_runs(~present[first_in : last_in + 1]))
    ref = intent_index if intent_index is not None else first_in

    counts = {s: int(np.count_nonzero(hyp == s)) for s in (Stage.LIGHT, Stage.DEEP, Stage.REM)}
    tst_epochs = sum(counts.values())

    def pct(epochs: int) -> float | None:
        return 100.0 * epochs / tst_epochs if tst_epochs else None

    sleep_idx = np.flatnonzero(sleep)
    onset = int(sleep_idx[0]) if sleep_idx.size else None
    sol_min = waso_min = deep_lat = rem_lat = None
    awakenings = final_wake = None
    if onset is not None:
        last_sleep = int(sleep_idx[-1])
        final_wake = last_sleep + 1
        if ref is not None:
            sol_min = max(0, onset - ref) * epoch_min
        span = slice(onset, last_sleep + 1)
        waso_min = int(np.count_nonzero(wakeish[span])) * epoch_min
        awakenings = sum(
            1
            for a, b in _runs(~sleep[span])
            if np.count_nonzero(wakeish[span][a:b]) >= min_wake_epochs
        )
        first_deep = _first_at_or_after(hyp == Stage.DEEP, onset)
        first_rem = _first_at_or_after(hyp == Stage.REM, onset)
        deep_lat = (first_deep - onset) * epoch_min if first_deep is not None else None
        rem_lat = (first_rem - onset) * epoch_min if first_rem is not None else None

    metrics = SleepMetrics(
        tib_min=tib_epochs * epoch_min,
        tst_min=tst_epochs * epoch_min,
        se_pct=100.0 * tst_epochs / tib_epochs if tib_epochs else None,
        sol_min=sol_min,
        waso_min=waso_min,
        awakenings=awakenings,
        out_of_bed=out_of_bed,
        light_min=counts[Stage.LIGHT] * epoch_min,
        deep_min=counts[Stage.DEEP] * epoch_min,
        rem_min=counts[Stage.REM] * epoch_min,
        light_pct=pct(counts[Stage.LIGHT]),
        deep_pct=pct(counts[Stage.DEEP]),
        rem_pct=pct(counts[Stage.REM]),
        deep_latency_min=deep_lat,
        rem_latency_min=rem_lat,
        final_wake_index=final_wake,
        sleep_onset_index=onset,
        intent_index=ref,
    )
    logger.debug("sleep metrics n=%d tst_min=%.1f se_pct=%s", n, metrics.tst_min, metrics.se_pct)
    return metrics


def _ratio(num: int, den: int) -> float | None:
    """Return num / den, or None when den is 0."""
    return num / den if den else None


def agreement(truth: ArrayLike, predicted: ArrayLike, *, classes: int = 4) -> Agreement:
    """Compare a device hypnogram with expert scoring, epoch by epoch.

    Epochs the experts did not score as a stage (`UNSCORED`, `ABSENT`) are skipped. A device
    `ABSENT` or `UNSCORED` epoch counts as wake: the device says "not asleep".

    Args:
        truth: (n_epochs,) expert hypnogram codes.
        predicted: (n_epochs,) device hypnogram codes, aligned with `truth`.
        classes: 4 (wake, light, deep, rem) or 3 (wake, nrem = light + deep, rem).

    Returns:
        Accuracy, Cohen's kappa, the confusion matrix (rows = truth) and per-stage
        sensitivity, precision and specificity (one class against the rest).

    Raises:
        ValueError: If the hypnograms differ in length or hold unknown codes, or `classes` is
            not 3 or 4.

    References:
        Cohen J (1960). Educ Psychol Meas 20(1):37-46. doi:10.1177/001316446002000104
        Menghini L et al. (2021). Sleep 44(2):zsaa170. doi:10.1093/sleep/zsaa170
    """
    if classes not in (3, 4):
        raise ValueError(f"classes must be 3 or 4, got {classes}")
    t = _as_hypnogram(truth, "truth")
    p = _as_hypnogram(predicted, "predicted")
    if t.size != p.size:
        raise ValueError(f"truth has {t.size} epochs but predicted has {p.size}")
    keep = t >= Stage.WAKE
    t = t[keep]
    p = np.where(p[keep] >= Stage.WAKE, p[keep], Stage.WAKE)
    names = STAGE_NAMES
    if classes == 3:
        # wake 0, light/deep -> nrem 1, rem 3 -> 2
        merge = np.array([0, 1, 1, 2], dtype=np.int64)
        t, p = merge[t], merge[p]
        names = _NREM_CLASSES
    k = len(names)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (t, p), 1)

    n = int(t.size)
    agree = int(np.trace(cm))
    rows, cols = cm.sum(axis=1), cm.sum(axis=0)
    chance = int(np.dot(rows, cols))  # n^2 * expected agreement
    accuracy = _ratio(agree, n)
    kappa = (n * agree - chance) / (n * n - chance) if n and chance != n * n else None

    per_stage: dict[str, dict[str, float | None]] = {}
    for i, name in enumerate(names):
        tp = int(cm[i, i])
        fn, fp = int(rows[i]) - tp, int(cols[i]) - tp
        tn = n - tp - fn - fp
        per_stage[name] = {
            "sensitivity": _ratio(tp, tp + fn),
            "precision": _ratio(tp, tp + fp),
            "specificity": _ratio(tn, tn + fp),
        }
    logger.debug("agreement n=%d accuracy=%s kappa=%s", n, accuracy, kappa)
    return Agreement(
        n_epochs=n,
        accuracy=accuracy,
        kappa=kappa,
        confusion=cm.tolist(),
        per_stage=per_stage,
        classes=tuple(names),
    )


def bland_altman(
    device: Sequence[float | None], truth: Sequence[float | None]
) -> dict[str, float | int | None]:
    """Bias and 95 % limits of agreement of a device metric against the reference, over nights.

    Pairs where either value is None or NaN are ignored. The SD is the sample SD of the
    differences (n - 1 denominator).

    Args:
        device: Per-night device values of one metric (any unit, e.g. min).
        truth: Per-night reference values of the same metric, aligned with `device`.

    Returns:
        {"bias": mean of device - truth, "sd": SD of the differences, "loa_low": bias - 1.96 sd,
        "loa_high": bias + 1.96 sd, "n": pairs used}, in the metric's unit; bias is None with
        no pair, and sd and the limits are None with fewer than 2 pairs.

    Raises:
        ValueError: If the sequences differ in length.

    References:
        Bland JM, Altman DG (1986). Lancet 327(8476):307-310. doi:10.1016/S0140-6736(86)90837-8
        Menghini L et al. (2021). Sleep 44(2):zsaa170. doi:10.1093/sleep/zsaa170
    """
    if len(device) != len(truth):
        raise ValueError(f"device has {len(device)} values but truth has {len(truth)}")
    diffs = np.array(
        [
            float(d) - float(t)
            for d, t in zip(device, truth, strict=True)
            if d is not None and t is not None and math.isfinite(d) and math.isfinite(t)
        ],
        dtype=np.float64,
    )
    n = int(diffs.size)
    bias = float(diffs.mean()) if n else None
    sd = float(diffs.std(ddof=1)) if n >= 2 else None
    low = high = None
    if bias is not None and sd is not None:
        low, high = bias - _LOA_Z * sd, bias + _LOA_Z * sd
    return {"bias": bias, "sd": sd, "loa_low": low, "loa_high": high, "n": n}


def stage_minutes(hypnogram: ArrayLike, *, epoch_s: float = EPOCH_S) -> dict[str, float]:
    """Minutes the hypnogram spends in each stage: wake (with `ABSENT`), light, deep and rem.

    `UNSCORED` epochs count in none. Wake includes absent epochs because Menghini et al. (2021)
    compare wake over the whole recording, and a device that says "out of bed" says "not asleep".

    Args:
        hypnogram: (n_epochs,) hypnogram codes in time order.
        epoch_s: Epoch length, seconds (> 0).

    Returns:
        {"wake": min, "light": min, "deep": min, "rem": min}.

    Raises:
        ValueError: If the hypnogram is not 1-D or holds unknown codes, or `epoch_s` is not
            positive.

    References:
        Menghini L et al. (2021). Sleep 44(2):zsaa170. doi:10.1093/sleep/zsaa170
    """
    hyp = _as_hypnogram(hypnogram)
    if not epoch_s > 0:
        raise ValueError(f"epoch_s must be positive, got {epoch_s}")
    epoch_min = epoch_s / 60.0
    wake = int(np.count_nonzero((hyp == Stage.WAKE) | (hyp == ABSENT)))
    out = {"wake": wake * epoch_min}
    for stage in (Stage.LIGHT, Stage.DEEP, Stage.REM):
        out[STAGE_NAMES[stage]] = int(np.count_nonzero(hyp == stage)) * epoch_min
    return out
