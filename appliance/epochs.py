"""30-s epochs of the primary user's features: one module for training and for the device.

Causal: an epoch's features use its own seconds and the epochs before it, never later ones, so the
live stager scores each epoch as it completes and the scores of epoch n do not change when later
epochs arrive. Per-night normalisation uses running medians and running percentile ranks of the
night so far. `night_matrix` adds the whole-night (non-causal) context the morning model uses.

What the features follow, and where they come from:
    - heart rate level, variability and trend over trailing windows of 30 s, 5, 10 and 30 min,
      relative to the night's own level (running median and percentile rank): Fonseca et al. 2015,
      doi:10.5665/sleep.4558; Sridhar et al. 2020, doi:10.1038/s41746-020-0291-x (per-night
      normalised heart rate is their strongest input); Radha et al. 2019,
      doi:10.1038/s41598-019-49703-y (multi-scale windows, 5 min to an hour);
    - heart-rate oscillation over 5 min (period under ~1 min): the cyclic variation of heart rate
      that accompanies apneas and arousals (Guilleminault et al. 1984,
      doi:10.1016/S0140-6736(84)91044-3), so the model can tell it from wake;
    - beat-to-beat HRV over the past 5 min when beat intervals are given (`rr_s` of
      `EpochBuilder.update`): SDNN, RMSSD, LF/HF (Task Force 1996, doi:10.1161/01.CIR.93.5.1043),
      DFA alpha1 over 4–16 beats (Peng et al. 1995, doi:10.1063/1.166141; Telser et al. 2004 and
      Fonseca 2015 use it for deep sleep). The recorded-channel path (ECG) passes them; the radar
      DSP does not yet (`Target` carries a 30-s heart rate, no intervals), so on the device these
      features are NaN until it does;
    - breath rate and amplitude, their variability and regularity (deep sleep breathes slowly and
      regularly, REM irregularly: Douglas et al. 1982, doi:10.1136/thx.37.11.840; Tataraidze et al.
      2016, doi:10.1088/0967-3334/37/9/1400 for radar/bio-radar respiration staging);
    - cardiorespiratory coupling, in the form the per-second inputs support: heart beats per breath
      and the 5-min correlation of heart rate with breath rate and with breathing amplitude
      (Bartsch et al. 2012, doi:10.1073/pnas.1204568109: coupling is strongest in deep sleep;
      Thomas et al. 2005, doi:10.1093/sleep/28.9.1151);
    - movement counts and energy, time since the last movement and the last large movement, and
      change of distance (posture changes) (actigraphy: Cole et al. 1992,
      doi:10.1093/sleep/15.5.461), time in bed so far (a proxy of time since sleep intent, which
      the epoch builder does not receive);
    - context of past epochs: trailing means over 5 and 20 min (the live model sees only the past).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from appliance.frames import EPOCH_S, EpochFeatures, TrackedSecond
from appliance.presence import MOVING_MM_S

__all__ = [
    "FEATURE_NAMES",
    "MORNING_FEATURE_NAMES",
    "EpochBuilder",
    "dfa_alpha1",
    "lf_hf_log",
    "night_context",
    "night_matrix",
]

_CONTEXT = (
    "hr_rel",
    "br_rel",
    "amp_rel",
    "move_mean",
    "hr_std",
    "br_std",
    "amp_cv",
    "resp_q",
    "hr_osc_5min",
    "hr_br_ratio",
    "rr_rmssd_rel",
)
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
    # multi-window and per-night normalised (running percentile ranks)
    "hr_sd_ep20",
    "hr_sd_ep60",
    "br_sd_ep20",
    "hr_trend_40",
    "hr_pct",
    "br_pct",
    "amp_pct",
    "hr_osc_pct",
    # per-second series over the past 5 min
    "hr_osc_5min",
    "br_osc_5min",
    "hr_br_ratio",
    "hr_br_corr_5min",
    "hr_amp_corr_5min",
    # movement history
    "move_frac_120",
    "min_since_big_move",
    "dist_change_cm",
    # beat-to-beat HRV over the past 5 min (NaN without beat intervals)
    "rr_sdnn_ms",
    "rr_rmssd_ms",
    "rr_rmssd_rel",
    "rr_lf_hf_log",
    "rr_dfa_a1",
    *(f"{name}_avg{k}" for name in _CONTEXT for k in _CONTEXT_EPOCHS),
)

_BASE_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
_MOVE_SECOND_MM_S = MOVING_MM_S
_NEW_NIGHT_EPOCHS = 60
_MAX_GAP_EPOCHS = 20
_MOVE_EPOCH_FRAC = 0.1
_BIG_MOVE_EPOCH_FRAC = 0.3
"""An epoch with movement in at least this share of its seconds (9 s) is a large movement."""
_SERIES_S = 300
_OSC_LAG_S = 30
_MIN_SERIES_S = 120
_RR_WINDOW_S = 300.0
_MIN_RR = 100
_NAN = float("nan")


def _nanmean(x: Sequence[float]) -> float:
    a = np.asarray(x, float)
    a = a[np.isfinite(a)]
    return float(a.mean()) if a.size else _NAN


def _nanstd(x: Sequence[float]) -> float:
    a = np.asarray(x, float)
    a = a[np.isfinite(a)]
    return float(a.std()) if a.size >= 2 else _NAN


def _nanmedian(x: Sequence[float]) -> float:
    a = np.asarray(x, float)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else _NAN


def _rank(history: Sequence[float], x: float) -> float:
    """Percentile rank in [0, 1] of `x` among the finite values of `history` (ties count half)."""
    if not math.isfinite(x):
        return _NAN
    a = np.asarray(history, float)
    a = a[np.isfinite(a)]
    if a.size < 2:
        return _NAN
    return float((np.sum(a < x) + 0.5 * np.sum(a == x)) / a.size)


def _oscillation(series: Sequence[float]) -> float:
    """Std of the 30-s differences of a 1-Hz series / sqrt 2: its variation faster than ~1 min."""
    a = np.asarray(series, float)
    if a.size <= _OSC_LAG_S:
        return _NAN
    d = a[_OSC_LAG_S:] - a[:-_OSC_LAG_S]
    d = d[np.isfinite(d)]
    return float(d.std() / math.sqrt(2.0)) if d.size >= _MIN_SERIES_S else _NAN


def _corr(a_s: Sequence[float], b_s: Sequence[float]) -> float:
    """Pearson correlation of two aligned 1-Hz series over their common finite seconds."""
    a, b = np.asarray(a_s, float), np.asarray(b_s, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < _MIN_SERIES_S:
        return _NAN
    a, b = a[ok], b[ok]
    sa, sb = a.std(), b.std()
    if sa < 1e-9 or sb < 1e-9:
        return _NAN
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))


def dfa_alpha1(rr_s: np.ndarray) -> float:
    """Short-term scaling exponent alpha1 of detrended fluctuation analysis (boxes of 4–16 beats).

    Args:
        rr_s: (n,) consecutive beat-to-beat intervals, seconds; n >= 64.

    Returns:
        alpha1 (about 1.0 awake, ~0.5–0.8 in deep sleep); NaN for a short or flat series.

    References:
        Peng CK et al. (1995). Quantification of scaling exponents and crossover phenomena in
        nonstationary heartbeat time series. Chaos 5:82–87. doi:10.1063/1.166141
    """
    x = np.asarray(rr_s, float)
    if x.size < 64 or x.std() < 1e-9:
        return _NAN
    y = np.cumsum(x - x.mean())
    sizes = np.arange(4, 17)
    fl = []
    for n in sizes:
        m = y.size // n
        seg = y[: m * n].reshape(m, n)
        t = np.arange(n, dtype=float) - (n - 1) / 2.0
        # least-squares line per box, closed form (t is centred)
        slope = seg @ t / float(t @ t)
        resid = seg - seg.mean(axis=1, keepdims=True) - np.outer(slope, t)
        fl.append(math.sqrt(float(np.mean(resid**2))))
    f = np.asarray(fl)
    if np.any(f <= 0):
        return _NAN
    return float(np.polyfit(np.log(sizes), np.log(f), 1)[0])


def lf_hf_log(t_s: np.ndarray, rr_s: np.ndarray) -> float:
    """Natural log of the LF (0.04–0.15 Hz) over HF (0.15–0.4 Hz) power of beat intervals.

    The intervals are resampled evenly at 4 Hz (linear), linearly detrended and Hann-windowed.

    Args:
        t_s: (n,) times of the intervals' closing beats, seconds, increasing.
        rr_s: (n,) intervals, seconds.

    Returns:
        ln(LF/HF); NaN when the series spans less than 2 min.

    References:
        Task Force of the ESC and NASPE (1996). Heart rate variability: standards of measurement.
        Circulation 93:1043–1065. doi:10.1161/01.CIR.93.5.1043
    """
    t = np.asarray(t_s, float)
    if t.size < 2 or t[-1] - t[0] < 120.0:
        return _NAN
    fs = 4.0
    grid = np.arange(t[0], t[-1], 1.0 / fs)
    x = np.interp(grid, t, np.asarray(rr_s, float))
    k = np.arange(x.size, dtype=float)
    x = x - np.polyval(np.polyfit(k, x, 1), k)
    p = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    f = np.fft.rfftfreq(x.size, 1.0 / fs)
    lf = float(p[(f >= 0.04) & (f < 0.15)].sum())
    hf = float(p[(f >= 0.15) & (f < 0.40)].sum())
    if lf <= 0 or hf <= 0:
        return _NAN
    return math.log(lf / hf)


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
            k: []
            for k in (
                "br",
                "amp",
                "hr",
                "move_frac",
                "amp_cv",
                "q",
                "present",
                "hr_osc",
                "rmssd",
                "dist",
            )
        }
        self._ctx: dict[str, list[float]] = {k: [] for k in _CONTEXT}
        self._last_move_idx: int | None = None
        self._last_big_move_idx: int | None = None
        self._first_present_idx: int | None = None
        self._sec_hr: deque[float] = deque(maxlen=_SERIES_S)
        self._sec_br: deque[float] = deque(maxlen=_SERIES_S)
        self._sec_amp: deque[float] = deque(maxlen=_SERIES_S)
        self._rr: deque[tuple[float, float, bool]] = deque()

    def epoch_index(self, t_s: float) -> int:
        """Index of the epoch containing second-end time `t_s` (after the first update)."""
        origin = self.origin_s if self.origin_s is not None else t_s
        return int(math.floor((t_s - origin + 1e-6) / EPOCH_S))

    def update(
        self, sec: TrackedSecond, rr_s: Sequence[float] | np.ndarray | None = None
    ) -> list[EpochFeatures]:
        """Add one second; return the epochs it completed (usually none, one at a boundary).

        Args:
            sec: The primary user's second.
            rr_s: HOOK for beat-to-beat intervals: the user's clean beat-to-beat intervals whose
                closing beat fell in this second, seconds (0.3–2.0), oldest first. The recorded
                (ECG) path passes them; the radar pipeline passes none until its DSP resolves
                single beats, and the `rr_*` features are NaN meanwhile.
        """
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
        u = sec.user
        nan = _NAN
        self._sec_hr.append(nan if u is None or u.heart_rate_bpm is None else u.heart_rate_bpm)
        self._sec_br.append(nan if u is None or u.breath_rate_bpm is None else u.breath_rate_bpm)
        self._sec_amp.append(nan if u is None else u.resp_amp_mm)
        if rr_s is not None and u is not None:
            for r in rr_s:
                # Beat times are rebuilt from the intervals: an interval that closes within this
                # second after the previous one is consecutive to it; otherwise a beat was lost.
                t_beat = self._rr[-1][0] + float(r) if self._rr else _NAN
                consecutive = sec.t_s - 1.5 <= t_beat <= sec.t_s + 0.5
                self._rr.append((t_beat if consecutive else sec.t_s, float(r), consecutive))
        while self._rr and self._rr[0][0] <= sec.t_s - _RR_WINDOW_S:
            self._rr.popleft()
        return out

    def flush(self) -> list[EpochFeatures]:
        """Finish the epoch in progress (end of a recording); returns it if it has seconds."""
        if self._idx is None or not self._secs:
            return []
        ep = self._finish(self._idx)
        self._idx += 1
        return [ep]

    def _rr_features(self) -> tuple[float, float, float, float]:
        """SDNN ms, RMSSD ms, ln LF/HF, DFA alpha1 of the past 5 min of beat intervals."""
        if len(self._rr) < _MIN_RR:
            return _NAN, _NAN, _NAN, _NAN
        t = np.fromiter((p[0] for p in self._rr), float, len(self._rr))
        rr = np.fromiter((p[1] for p in self._rr), float, len(self._rr))
        # Successive differences only across beats that were consecutive (no dropped beat).
        consecutive = np.fromiter((p[2] for p in self._rr), bool, len(self._rr))[1:]
        d = np.diff(rr)[consecutive]
        rmssd = 1000.0 * math.sqrt(float(np.mean(d**2))) if d.size >= 50 else _NAN
        return 1000.0 * float(rr.std()), rmssd, lf_hf_log(t, rr), dfa_alpha1(rr)

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
        dist_med = _nanmedian(dist) if dist else _NAN
        hr_osc = _oscillation(self._sec_hr)
        sdnn, rmssd, lf_hf, alpha1 = self._rr_features()
        rmssd_log = math.log(rmssd) if math.isfinite(rmssd) and rmssd > 0 else _NAN

        # Half an hour with nobody in range ends the night: the next one normalises on its own.
        self._absent_run = self._absent_run + 1 if present < 0.5 else 0
        if self._absent_run >= _NEW_NIGHT_EPOCHS:
            self._reset_night()
        h = self._hist
        prev_dist = next((d for d in reversed(h["dist"]) if math.isfinite(d)), _NAN)
        # Running medians and ranks of the night so far (this epoch included): causal.
        h["br"].append(br_mean)
        h["hr"].append(hr_mean)
        h["amp"].append(amp_log)
        h["move_frac"].append(move_frac)
        h["amp_cv"].append(amp_cv)
        h["q"].append(q_mean)
        h["present"].append(present)
        h["hr_osc"].append(hr_osc)
        h["rmssd"].append(rmssd_log)
        h["dist"].append(dist_med)
        if present >= 0.5 and self._first_present_idx is None:
            self._first_present_idx = idx
        if math.isfinite(move_frac) and move_frac >= _MOVE_EPOCH_FRAC:
            self._last_move_idx = idx
        if math.isfinite(move_frac) and move_frac >= _BIG_MOVE_EPOCH_FRAC:
            self._last_big_move_idx = idx

        def last(key: str, k: int) -> list[float]:
            return h[key][-k:]

        prev_hr = h["hr"][-11:-1]
        prev_hr40 = h["hr"][-41:-1]
        since = (
            60.0
            if self._last_move_idx is None
            else min(60.0, (idx - self._last_move_idx) * EPOCH_S / 60)
        )
        since_big = (
            120.0
            if self._last_big_move_idx is None
            else min(120.0, (idx - self._last_big_move_idx) * EPOCH_S / 60)
        )
        in_bed_h = (
            0.0
            if self._first_present_idx is None
            else (idx - self._first_present_idx) * EPOCH_S / 3600
        )
        hr_br = hr_mean / br_mean if math.isfinite(hr_mean) and br_mean > 0 else _NAN
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
            _nanstd(last("hr", 20)),
            _nanstd(last("hr", 60)),
            _nanstd(last("br", 20)),
            hr_mean - _nanmean(prev_hr40) if prev_hr40 else _NAN,
            _rank(h["hr"], hr_mean),
            _rank(h["br"], br_mean),
            _rank(h["amp"], amp_log),
            _rank(h["hr_osc"], hr_osc),
            hr_osc,
            _oscillation(self._sec_br),
            hr_br,
            _corr(self._sec_hr, self._sec_br),
            _corr(self._sec_hr, self._sec_amp),
            _nanmean(last("move_frac", 120)),
            since_big,
            100.0 * abs(dist_med - prev_dist)
            if math.isfinite(dist_med) and math.isfinite(prev_dist)
            else _NAN,
            sdnn,
            rmssd,
            rmssd_log - _nanmedian(h["rmssd"]),
            lf_hf,
            alpha1,
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
            distance_m=dist_med if math.isfinite(dist_med) else None,
            movement=_nanmean(mv) if mv else 0.0,
            presence_confidence=_nanmean(conf) if conf else 0.0,
            other_fraction=sum(s.attribution == "other" for s in secs) / max(len(secs), 1),
            user_confidence=_nanmean([s.user_confidence for s in secs if s.user is not None])
            if users
            else 0.0,
        )


# -- the morning model's whole-night context ------------------------------------------------------
_NIGHT_KEYS = (
    "hr_mean",
    "hr_std",
    "hr_osc_5min",
    "br_mean",
    "br_std",
    "amp_log",
    "amp_cv",
    "resp_q",
    "move_frac",
    "hr_br_ratio",
    "rr_rmssd_ms",
    "rr_dfa_a1",
    "rr_lf_hf_log",
)
"""Features whose whole-night rank and centred / future means the morning model sees."""
_CENTRED = (5, 20)
_FUTURE = 20

MORNING_FEATURE_NAMES: tuple[str, ...] = (
    *FEATURE_NAMES,
    "night_frac",
    *(f"{k}_night_pct" for k in _NIGHT_KEYS),
    *(f"{k}_c{2 * w + 1}" for k in _NIGHT_KEYS for w in _CENTRED),
    *(f"{k}_next{_FUTURE}" for k in _NIGHT_KEYS),
)


def _window_mean(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Mean of the finite x[lo[i]:hi[i]] for each i (NaN where none); x is (n,)."""
    ok = np.isfinite(x)
    c = np.concatenate(([0.0], np.cumsum(np.where(ok, x, 0.0))))
    n = np.concatenate(([0], np.cumsum(ok)))
    cnt = n[hi] - n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (c[hi] - c[lo]) / cnt
    return np.where(cnt > 0, out, np.nan)


def night_matrix(features: Sequence[EpochFeatures]) -> np.ndarray:
    """The morning model's input for a whole stored night: live features plus night context.

    Args:
        features: The night's epochs in order (`StagedEpoch.features` or the store's rows).

    Returns:
        (n_epochs, len(MORNING_FEATURE_NAMES)) float32; see `night_context`.
    """
    live = np.array([f.values for f in features], float).reshape(len(features), len(FEATURE_NAMES))
    return night_context(live)


def night_context(live: np.ndarray) -> np.ndarray:
    """Append the whole-night (non-causal) context to a night's live feature rows.

    Per epoch: the live features (`FEATURE_NAMES`), its position in the night, and for each of
    a few key features its percentile rank over the whole night, its mean over centred windows
    of 11 and 41 epochs and over the next 20 epochs (the morning model may look ahead). Epochs
    with the user absent (present fraction < 0.5) are left out of the ranks and means.

    Args:
        live: (n_epochs, len(FEATURE_NAMES)) the night's live features, in epoch order.

    Returns:
        (n_epochs, len(MORNING_FEATURE_NAMES)) float32.
    """
    live = np.asarray(live, float)
    n = live.shape[0]
    present = live[:, _BASE_INDEX["present_frac"]] >= 0.5
    i = np.arange(n)
    cols: list[np.ndarray] = [i / max(n - 1, 1)]
    blocks_c: list[np.ndarray] = []
    blocks_f: list[np.ndarray] = []
    for key in _NIGHT_KEYS:
        x = live[:, _BASE_INDEX[key]].copy()
        x[~present] = np.nan
        ok = np.isfinite(x)
        pct = np.full(n, np.nan)
        if ok.sum() >= 2:
            srt = np.sort(x[ok])
            lo_r = np.searchsorted(srt, x[ok], side="left")
            hi_r = np.searchsorted(srt, x[ok], side="right")
            pct[ok] = (lo_r + hi_r) / 2.0 / srt.size
        cols.append(pct)
        for w in _CENTRED:
            blocks_c.append(_window_mean(x, np.clip(i - w, 0, n), np.clip(i + w + 1, 0, n)))
        blocks_f.append(_window_mean(x, np.clip(i + 1, 0, n), np.clip(i + 1 + _FUTURE, 0, n)))
    extra = np.stack(cols + blocks_c + blocks_f, axis=1)
    return np.hstack([live, extra]).astype(np.float32)
