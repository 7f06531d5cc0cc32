"""30-s epochs of the primary user's features: one module for training and for the device.

Causal: an epoch's features use its own seconds and the epochs before it, never later ones, so the
live stager scores each epoch as it completes and the scores of epoch n do not change when later
epochs arrive. Per-night normalisation uses the running median of the night so far.

What the features follow:
    - heart rate level, variability and trend over trailing windows, relative to the night's own
      level (Fonseca et al. 2015, doi:10.5665/sleep.4558; Sridhar et al. 2020,
      doi:10.1038/s41746-020-0291-x);
    - breath rate and amplitude, their variability and regularity (deep sleep breathes slowly and
      regularly, REM irregularly: Douglas et al. 1982, doi:10.1136/thx.37.11.840; Tataraidze et al.
      2016, doi:10.1088/0967-3334/37/9/1400 for radar/bio-radar respiration staging);
    - movement counts and energy, and time since the last movement (actigraphy: Cole et al. 1992,
      doi:10.1093/sleep/15.5.461), time in bed so far.
"""

from __future__ import annotations

import math

import numpy as np

from appliance.frames import EPOCH_S, EpochFeatures, TrackedSecond
from appliance.presence import MOVING_MM_S

__all__ = ["FEATURE_NAMES", "EpochBuilder"]

_CONTEXT = ("hr_rel", "br_rel", "amp_rel", "move_mean", "hr_std", "br_std", "amp_cv", "resp_q")
"""Per-epoch features whose trailing means (5 and 20 minutes) are features too: sleep stages
last minutes, and their cardiorespiratory signature shows over several epochs."""
_CONTEXT_EPOCHS = (10, 40)

FEATURE_NAMES: tuple[str, ...] = (
    "present_frac",
    "br_mean",
    "br_std",
    "br_rel",
    "amp_log",
    "amp_cv",
    "amp_rel",
    "resp_q",
    "hr_mean",
    "hr_std",
    "hr_rel",
    "move_mean",
    "move_max",
    "move_frac",
    "dist_std_cm",
    "ctx_move_10",
    "ctx_move_30",
    "ctx_br_std_10",
    "ctx_hr_std_10",
    "ctx_amp_cv_10",
    "ctx_q_10",
    "hr_trend_10",
    "min_since_move",
    "hours_in_bed",
    *(f"{name}_avg{k}" for name in _CONTEXT for k in _CONTEXT_EPOCHS),
)

_BASE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
_MOVE_SECOND_MM_S = MOVING_MM_S
_NEW_NIGHT_EPOCHS = 60
_MAX_GAP_EPOCHS = 20
_MOVE_EPOCH_FRAC = 0.1
_NAN = float("nan")


def _nanmean(x: list[float]) -> float:
    a = np.asarray(x, float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else _NAN


def _nanstd(x: list[float]) -> float:
    a = np.asarray(x, float)
    a = a[np.isfinite(a)]
    return float(a.std()) if a.size >= 2 else _NAN


def _nanmedian(x: list[float]) -> float:
    a = np.asarray(x, float)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else _NAN


class EpochBuilder:
    """Accumulates `TrackedSecond`s and emits `EpochFeatures` for each completed 30-s epoch.

    Epoch i covers [origin + 30 i, origin + 30 i + 30). By default the origin is the time of the
    first frame (a recording's epochs count from its start); with `wall_grid` it is the UTC epoch,
    so epochs fall on the wall clock's :00 and :30 and their indices stay the same across a
    restart of the daemon (a resumed night continues its own numbering).

    Args:
        frame_rate_hz: Frame rate of the radar (places the first frame before the first second).
        wall_grid: Align epochs to the wall clock (the daemon) instead of the first frame.
    """

    def __init__(self, frame_rate_hz: float = 20.0, *, wall_grid: bool = False) -> None:
        self._dt_frame = 1.0 / frame_rate_hz
        self.origin_s: float | None = 0.0 if wall_grid else None
        self._idx: int | None = None
        self._secs: list[TrackedSecond] = []
        self._absent_run = 0
        self._reset_night()

    def _reset_night(self) -> None:
        self._hist: dict[str, list[float]] = {
            k: [] for k in ("br", "amp", "hr", "move_frac", "amp_cv", "q", "present")
        }
        self._ctx: dict[str, list[float]] = {k: [] for k in _CONTEXT}
        self._last_move_idx: int | None = None
        self._first_present_idx: int | None = None

    def epoch_index(self, t_s: float) -> int:
        """Index of the epoch containing second-end time `t_s` (after the first update)."""
        origin = self.origin_s if self.origin_s is not None else t_s
        return int(math.floor((t_s - origin + 1e-6) / EPOCH_S))

    def update(self, sec: TrackedSecond) -> list[EpochFeatures]:
        """Add one second; return the epochs it completed (usually none, one at a boundary)."""
        if self.origin_s is None:
            self.origin_s = sec.t_s - 1.0 + self._dt_frame
        idx = self.epoch_index(sec.t_s)
        out: list[EpochFeatures] = []
        if self._idx is None:
            self._idx = idx
        if self._idx < idx <= self._idx + _MAX_GAP_EPOCHS:
            while idx > self._idx:  # a short dropout gives empty (absent) epochs
                out.append(self._finish(self._idx))
                self._idx += 1
        elif idx != self._idx:
            # The clock jumped (NTP at boot, a long outage): close what we have, start afresh.
            if self._secs:
                out.append(self._finish(self._idx))
            self._idx = idx
        self._secs.append(sec)
        return out

    def flush(self) -> list[EpochFeatures]:
        """Finish the epoch in progress (end of a recording); returns it if it has seconds."""
        if self._idx is None or not self._secs:
            return []
        ep = self._finish(self._idx)
        self._idx += 1
        return [ep]

    def _finish(self, idx: int) -> EpochFeatures:
        origin = self.origin_s if self.origin_s is not None else 0.0
        secs, self._secs = self._secs, []
        users = [s.user for s in secs if s.user is not None]
        present = len(users) / max(len(secs), 1)
        br = [u.breath_rate_bpm for u in users if u.breath_rate_bpm is not None]
        hr = [u.heart_rate_bpm for u in users if u.heart_rate_bpm is not None]
        amp = [u.resp_amp_mm for u in users]
        mv = [u.movement for u in users]
        dist = [u.distance_m for u in users]
        q = [u.resp_quality for u in users]
        conf = [s.presence.confidence for s in secs]

        br_mean = _nanmedian(br)
        hr_mean = _nanmedian(hr)
        amp_med = _nanmedian(amp)
        amp_log = math.log(amp_med + 1e-3) if math.isfinite(amp_med) else _NAN
        amp_cv = _nanstd(amp) / amp_med if amp and amp_med > 0 else _NAN
        move_frac = float(np.mean(np.asarray(mv) >= _MOVE_SECOND_MM_S)) if mv else _NAN
        q_mean = _nanmean(q)

        # Half an hour with nobody in range ends the night: the next one normalises on its own.
        self._absent_run = self._absent_run + 1 if present < 0.5 else 0
        if self._absent_run >= _NEW_NIGHT_EPOCHS:
            self._reset_night()
        h = self._hist
        # Running medians of the night so far (this epoch included): causal normalisation.
        h["br"].append(br_mean)
        h["hr"].append(hr_mean)
        h["amp"].append(amp_log)
        h["move_frac"].append(move_frac)
        h["amp_cv"].append(amp_cv)
        h["q"].append(q_mean)
        h["present"].append(present)
        if present >= 0.5 and self._first_present_idx is None:
            self._first_present_idx = idx
        if math.isfinite(move_frac) and move_frac >= _MOVE_EPOCH_FRAC:
            self._last_move_idx = idx

        def last(key: str, k: int) -> list[float]:
            return h[key][-k:]

        prev_hr = h["hr"][-11:-1]
        since = (
            60.0
            if self._last_move_idx is None
            else min(60.0, (idx - self._last_move_idx) * EPOCH_S / 60)
        )
        in_bed_h = (
            0.0
            if self._first_present_idx is None
            else (idx - self._first_present_idx) * EPOCH_S / 3600
        )
        base = (
            present,
            br_mean,
            _nanstd(br),
            br_mean - _nanmedian(h["br"]),
            amp_log,
            amp_cv,
            amp_log - _nanmedian(h["amp"]),
            q_mean,
            hr_mean,
            _nanstd(hr),
            hr_mean - _nanmedian(h["hr"]),
            math.log1p(_nanmean(mv)) if mv else _NAN,
            math.log1p(max(mv)) if mv else _NAN,
            move_frac,
            100.0 * _nanstd(dist) if len(dist) >= 2 else _NAN,
            _nanmean(last("move_frac", 10)),
            _nanmean(last("move_frac", 30)),
            _nanstd(last("br", 10)),
            _nanstd(last("hr", 10)),
            _nanmean(last("amp_cv", 10)),
            _nanmean(last("q", 10)),
            hr_mean - _nanmean(prev_hr) if prev_hr else _NAN,
            since,
            in_bed_h,
        )
        ctx_values: list[float] = []
        for name in _CONTEXT:
            series = self._ctx[name]
            series.append(base[_BASE_INDEX[name]])
            del series[: -max(_CONTEXT_EPOCHS)]
            ctx_values.extend(_nanmean(series[-k:]) for k in _CONTEXT_EPOCHS)
        values = (*base, *ctx_values)
        return EpochFeatures(
            t_s=origin + idx * EPOCH_S,
            index=idx,
            present_fraction=present,
            values=tuple(float(v) for v in values),
            breath_rate_bpm=br_mean if math.isfinite(br_mean) else None,
            heart_rate_bpm=hr_mean if math.isfinite(hr_mean) else None,
            distance_m=_nanmedian(dist) if dist else None,
            movement=_nanmean(mv) if mv else 0.0,
            presence_confidence=_nanmean(conf) if conf else 0.0,
            other_fraction=sum(s.attribution == "other" for s in secs) / max(len(secs), 1),
            user_confidence=_nanmean([s.user_confidence for s in secs if s.user is not None])
            if users
            else 0.0,
        )
