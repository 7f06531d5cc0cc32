"""A body's line-of-sight surface displacement, driven by a real recorded night (the "world").

`Physiology` renders, on a uniform grid at the radar frame rate over [0, duration) of its own time,
the displacement of a person's (or a cat's) chest wall along the radar's line of sight, in mm,
positive = away from the radar (so d(t) = d0 + displacement_mm / 1000, and inspiration, which moves
the chest toward the radar, is negative), plus a reflection-amplitude scale, a lasting distance
offset (posture) and a movement mask. It has three parts:

- Heartbeat. Each recorded ECG beat gives, after an electromechanical delay of 0.10–0.20 s, a
  smooth Gaussian pulse (FWHM 0.10–0.20 s) of a few tenths of a mm (per subject 0.15–0.40 mm,
  ~5 % beat-to-beat jitter): the chest-surface cardiac motion a 60-GHz radar resolves.
- Breathing. A night's `resp` is used as it is where the file has one (band-passed 0.05–1 Hz,
  normalised by its 5–95 % range and scaled to a drawn depth). Otherwise the rhythm is derived
  from the heartbeat's respiratory sinus arrhythmia (RSA), as in ECG-derived respiration:
  cleaned RR intervals are resampled evenly at 4 Hz, band-passed 0.1–0.5 Hz, and the
  frequency-weighted spectral peak of a sliding 32-s window (2-s hop) gives the breathing rate,
  robustly smoothed (60-s running median, 30-s mean) and clipped to 8–24 breaths/min. Small
  breath-to-breath jitter (~7 %) is added and the rate is integrated into a phase. The breath
  shape is asymmetric (inspiration 36–44 % of the cycle, a raised-cosine rise; expiration a fast
  fall easing into an end-expiratory pause). Depth (peak-to-peak, mm) is a per-subject mean drawn
  in 3–12 mm times a slow log-normal random walk (σ 0.2, τ 10 min) and ~10 % per-breath
  variability; no part of it depends on sleep stage. Apneas and hypopneas from the experts'
  event flags scale the depth (hypopnea ×0.4–0.6, obstructive ×0.15–0.35 with thoraco-abdominal
  paradox, central ×~0.03) over a 10–40-s span in the flagged epoch, followed by one or two
  larger recovery breaths. Offline (non-causal) processing is fine: this is the world, not the DSP.
- Movements. Expert arousals (p = 0.6: 2–8 s), leg movements (small, mostly legs) and movement
  time (10–30 s, large) come from the event flags; spontaneous movements come at a rate that
  rises with cardiac accelerations of the recorded beat series (10-s heart rate above its 5-min
  running median), since real body movements come with a heart-rate surge. A movement is a smooth
  random excursion of mm to tens of mm, a change of reflection amplitude (×0.5–1.5) and, for big
  ones, a lasting posture change (distance offset within ±4 cm, amplitude ×0.75–1.25).

**The expert stage labels are never read here** (`Night.stages` is truth for scoring only); only
beat times, event flags and `resp` shape the signal.

Synthetic modes: "awake" (awake in bed, e.g. reading: heart rate from the reference night's first
10 minutes + ~5 bpm with VLF/LF/RSA variability, breathing 14–20/min irregular with sighs, small
hand movements every 20–60 s, posture shifts every 3–10 min) and "pet" (a cat: breathing
20–35/min of 1–2 mm, heart 140–200/min of a few hundredths of a mm, grooming bouts).

References:
    Moody GB, Mark RG, Zoccola A, Mantero S (1985). Derivation of respiratory signals from
    multi-lead ECGs. Computers in Cardiology 12:113–116.
    Charlton PH et al. (2016). An assessment of algorithms to estimate respiratory rate from the
    electrocardiogram and photoplethysmogram. Physiological Measurement 37(4):610–626.
    doi:10.1088/0967-3334/37/4/610
    Task Force of the ESC and NASPE (1996). Heart rate variability: standards of measurement.
    Circulation 93(5):1043–1065. doi:10.1161/01.CIR.93.5.1043
    Tobin MJ et al. (1983). Breathing patterns. 1. Normal subjects. Chest 84(2):202–205.
    doi:10.1378/chest.84.2.202
    Berry RB et al. (2012). Rules for scoring respiratory events in sleep (AASM). Journal of
    Clinical Sleep Medicine 8(5):597–619. doi:10.5664/jcsm.2172
    Sforza E, Jouny C, Ibanez V (2000). Cardiac activation during arousal in humans. Clinical
    Neurophysiology 111(9):1611–1619. doi:10.1016/S1388-2457(00)00363-1
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import signal
from scipy.ndimage import gaussian_filter1d, median_filter, uniform_filter1d

from hardware.radar.night import (
    EVENT_AROUSAL_BITS,
    EVENT_CENTRAL_APNEA,
    EVENT_HYPOPNEA,
    EVENT_LEG_MOVEMENT,
    EVENT_MOVEMENT_TIME,
    EVENT_OBSTRUCTIVE_APNEA,
    Night,
)

__all__ = [
    "BREATH_MAX_BPM",
    "BREATH_MIN_BPM",
    "Mode",
    "Physiology",
    "clean_rr",
    "rsa_breath_rate",
]

logger = logging.getLogger(__name__)

Mode = Literal["sleeper", "awake", "pet"]

BREATH_MIN_BPM = 8.0
"""Lowest derived breathing rate, breaths/min."""
BREATH_MAX_BPM = 24.0
"""Highest derived breathing rate, breaths/min."""

_FS_RR_HZ = 4.0
_RSA_BAND_HZ = (0.1, 0.5)
_RSA_WIN_S = 32.0
_RSA_HOP_S = 2.0
_RSA_NFFT = 1024


@dataclass(frozen=True, slots=True)
class _Move:
    """One planned body movement (times in physiology seconds)."""

    t0_s: float
    dur_s: float
    amp_mm: float
    amp_factor: float
    posture: bool
    legs_mm: float = 0.0
    rhythm_hz: float = 0.0


def clean_rr(beat_t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the plausible beat-to-beat intervals of a beat series.

    Intervals outside 0.3–2.0 s, or more than 25 % away from the running median of 11 intervals
    (ectopic beats, missed detections), are dropped.

    Args:
        beat_t_s: (n,) sorted beat times, seconds.

    Returns:
        (t_s, rr_s): (m,) time of the interval's closing beat, seconds, and (m,) interval, seconds.
    """
    beats = np.asarray(beat_t_s, dtype=np.float64)
    if beats.size < 3:
        return np.zeros(0), np.zeros(0)
    rr = np.diff(beats)
    ok = (rr > 0.3) & (rr < 2.0)
    med = median_filter(rr, size=11, mode="nearest")
    ok &= np.abs(rr - med) <= 0.25 * med
    return beats[1:][ok], rr[ok]


def _even_rr(t_s: np.ndarray, rr_s: np.ndarray, duration_s: float) -> np.ndarray:
    """Resample intervals evenly at 4 Hz over [0, duration) (edge-held)."""
    n = max(1, int(math.ceil(duration_s * _FS_RR_HZ)))
    grid = np.arange(n) / _FS_RR_HZ
    if rr_s.size < 2:
        return np.full(n, 1.0 if rr_s.size == 0 else float(rr_s[0]))
    return np.asarray(np.interp(grid, t_s, rr_s), dtype=np.float64)


def rsa_breath_rate(beat_t_s: np.ndarray, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Derive the breathing rate from the respiratory sinus arrhythmia of a beat series.

    Cleaned RR intervals → evenly resampled at 4 Hz → band-passed 0.1–0.5 Hz (3rd-order
    Butterworth, zero phase) → sliding 32-s Hann window (2-s hop) → peak of the power spectrum
    weighted by frequency (a mild pre-whitening that keeps the LF/Mayer-wave slope from pulling
    the peak to the band edge) within 8–24 breaths/min, parabolically interpolated → 60-s running
    median, 30-s running mean → clipped to 8–24 breaths/min.

    Args:
        beat_t_s: (n,) sorted beat times, seconds.
        duration_s: Length of the series, seconds.

    Returns:
        (t_s, rate_bpm): (k,) window centres, seconds, and (k,) breathing rate, breaths/min.

    References:
        Moody GB et al. (1985). Derivation of respiratory signals from multi-lead ECGs.
        Computers in Cardiology 12:113–116.
        Charlton PH et al. (2016). Physiological Measurement 37(4):610–626.
        doi:10.1088/0967-3334/37/4/610
    """
    t_rr, rr = clean_rr(beat_t_s)
    x = _even_rr(t_rr, rr, duration_s)
    win = int(_RSA_WIN_S * _FS_RR_HZ)
    hop = int(_RSA_HOP_S * _FS_RR_HZ)
    if x.size < win + 4 * hop:
        return np.array([0.0, duration_s]), np.full(2, 15.0)
    sos = signal.butter(3, _RSA_BAND_HZ, btype="bandpass", fs=_FS_RR_HZ, output="sos")
    bp = signal.sosfiltfilt(sos, x - x.mean())
    frames = np.lib.stride_tricks.sliding_window_view(bp, win)[::hop] * np.hanning(win)
    power = np.abs(np.fft.rfft(frames, _RSA_NFFT, axis=1)) ** 2
    freqs = np.fft.rfftfreq(_RSA_NFFT, 1.0 / _FS_RR_HZ)
    band = np.flatnonzero((freqs >= BREATH_MIN_BPM / 60.0) & (freqs <= BREATH_MAX_BPM / 60.0))
    pw = power[:, band] * freqs[band] + 1e-30
    k = np.argmax(pw, axis=1)
    # Parabolic interpolation on log power around interior peaks.
    kk = np.clip(k, 1, band.size - 2)
    lp = np.log(pw)
    rows = np.arange(pw.shape[0])
    a, b, c = lp[rows, kk - 1], lp[rows, kk], lp[rows, kk + 1]
    denom = a - 2 * b + c
    delta = np.where(np.abs(denom) > 1e-12, 0.5 * (a - c) / np.where(denom == 0, 1, denom), 0.0)
    delta = np.where((k == kk), np.clip(delta, -0.5, 0.5), 0.0)
    df = freqs[1] - freqs[0]
    rate = (freqs[band][k] + delta * df) * 60.0
    n_med = int(round(60.0 / _RSA_HOP_S)) | 1
    n_mean = int(round(30.0 / _RSA_HOP_S))
    rate = median_filter(rate, size=n_med, mode="nearest")
    rate = uniform_filter1d(rate, size=n_mean, mode="nearest")
    rate = np.clip(rate, BREATH_MIN_BPM, BREATH_MAX_BPM)
    t_c = (np.arange(rate.size) * hop + win / 2.0) / _FS_RR_HZ
    return t_c, rate


def _smooth_noise(rng: np.random.Generator, n: int, sigma_samples: float) -> np.ndarray:
    """Gaussian-smoothed white noise of unit standard deviation."""
    if n == 0:
        return np.zeros(0)
    z = gaussian_filter1d(rng.standard_normal(n), max(sigma_samples, 1e-3), mode="wrap")
    sd = float(z.std())
    return np.asarray(z / sd if sd > 0 else z, dtype=np.float64)


def _ou(rng: np.random.Generator, n: int, dt_s: float, tau_s: float, sigma: float) -> np.ndarray:
    """Stationary Ornstein–Uhlenbeck process (AR(1)) sampled every dt_s."""
    a = math.exp(-dt_s / tau_s)
    warm = int(min(5 * tau_s / dt_s, 20000)) + 1
    e = rng.standard_normal(n + warm) * sigma * math.sqrt(1 - a * a)
    x = signal.lfilter([1.0], [1.0, -a], e)
    return np.asarray(x[warm:], dtype=np.float64)


def _slow(rng: np.random.Generator, t: np.ndarray, tau_s: float, sigma: float) -> np.ndarray:
    """An OU process at 1 Hz, linearly interpolated onto the grid `t`."""
    dur = float(t[-1]) if t.size else 0.0
    n1 = int(math.ceil(dur)) + 2
    x = _ou(rng, n1, 1.0, tau_s, sigma)
    return np.asarray(np.interp(t, np.arange(n1, dtype=np.float64), x), dtype=np.float64)


def _breath_shape(frac: np.ndarray, ti: float) -> np.ndarray:
    """Normalised breath (0 end-expiration → 1 end-inspiration) over the cycle fraction."""
    s = np.empty_like(frac)
    insp = frac < ti
    s[insp] = 0.5 * (1.0 - np.cos(np.pi * frac[insp] / ti))
    x = (frac[~insp] - ti) / (1.0 - ti)
    w = 1.0 - (1.0 - x) ** 2
    s[~insp] = 0.5 * (1.0 + np.cos(np.pi * w))
    return s


def _raised(n: int) -> np.ndarray:
    """A raised-cosine (Hann) window of n samples, peak 1."""
    if n <= 1:
        return np.ones(max(n, 0))
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n - 1))


def _plateau(n: int, ramp: int) -> np.ndarray:
    """1 with raised-cosine ramps of `ramp` samples at both ends."""
    w = np.ones(n)
    r = min(ramp, n // 2)
    if r > 0:
        up = 0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)
        w[:r] = up
        w[n - r :] = up[::-1]
    return w


def _beats_from_rate(t: np.ndarray, rate_hz: np.ndarray, phase0: float) -> np.ndarray:
    """Event times where the integral of a positive rate crosses integers."""
    fs = 1.0 / (t[1] - t[0]) if t.size > 1 else 1.0
    ph = phase0 + np.concatenate([[0.0], np.cumsum(rate_hz[:-1]) / fs])
    k = np.arange(math.ceil(ph[0]), math.floor(ph[-1]) + 1)
    return np.asarray(np.interp(k, ph, t), dtype=np.float64)


class Physiology:
    """A body's line-of-sight displacement, reflection amplitude and posture on a uniform grid.

    All arrays are read-only, (n,) on `t_s` (n = ceil(duration_s · frame_rate_hz)).

    Attributes:
        mode: "sleeper" (driven by a recorded night), "awake" (awake in bed) or "pet" (a cat).
        frame_rate_hz: Grid rate, Hz.
        duration_s: Length, seconds.
        t_s: Grid times, seconds of this physiology's own time (0 = start of the recording).
        displacement_mm: Chest-wall displacement along the line of sight (breathing + heartbeat
            + movement), mm, positive = away from the radar.
        breath_waveform_mm: Breathing-only component of `displacement_mm` (inspiration negative),
            mm.
        breath_gain: Depth factor of the respiratory events (apneas, hypopneas, recovery
            breaths), 1 = normal breathing.
        heart_waveform_mm: Heartbeat-only component, mm.
        movement_mm: Body-movement component, mm.
        leg_displacement_mm: Displacement of the legs (movements only, no breathing), mm.
        abdomen_breath_share: Abdomen excursion per unit chest excursion (negative during
            obstructive paradox), dimensionless.
        amplitude_scale: Reflection-amplitude factor, 1 = normal.
        distance_offset_m: Lasting posture offset of distance, metres.
        movement_mask: True during body movements.
        beat_t_s: (n_beats,) the heartbeats that drive the heart component, seconds.
        breath_depth_mm: Mean breath depth (peak-to-peak) of this subject, mm.
    """

    def __init__(
        self,
        night: Night | None,
        rng: np.random.Generator,
        *,
        frame_rate_hz: float = 20.0,
        mode: Mode | None = None,
        duration_s: float | None = None,
    ) -> None:
        """Build the physiology.

        Args:
            night: The recorded night ("sleeper" mode: drives everything; "awake": only its
                first 10 minutes' heart rate is used as a reference; "pet": ignored). None for a
                purely synthetic body.
            rng: Random generator; the result is a deterministic function of its state.
            frame_rate_hz: Grid rate, Hz (the radar frame rate), > 0.
            mode: "sleeper", "awake" or "pet"; None = "sleeper" with a night, else "awake".
            duration_s: Length of a synthetic body, seconds; a sleeper lasts its night's
                `duration_s` unless a shorter one is given.

        Raises:
            ValueError: A sleeper without a night, a synthetic body without a positive duration,
                or a non-positive frame rate.
        """
        if not frame_rate_hz > 0:
            raise ValueError(f"frame_rate_hz must be positive, got {frame_rate_hz}")
        if mode is None:
            mode = "sleeper" if night is not None else "awake"
        sleeper_night: Night | None = None
        if mode == "sleeper":
            if night is None:
                raise ValueError("a sleeper Physiology needs a Night")
            sleeper_night = night
            dur = (
                float(night.duration_s) if duration_s is None else min(duration_s, night.duration_s)
            )
        else:
            if duration_s is None or not duration_s > 0:
                raise ValueError(f"a synthetic ({mode}) Physiology needs a positive duration_s")
            dur = float(duration_s)
        self.mode: Mode = mode
        self.frame_rate_hz = float(frame_rate_hz)
        self.duration_s = dur
        n = max(2, int(math.ceil(dur * frame_rate_hz - 1e-9)))
        self.t_s = np.arange(n, dtype=np.float64) / frame_rate_hz
        self._n = n
        subs = [np.random.default_rng(int(s)) for s in rng.integers(0, 2**62, size=6)]
        self._rng_param, self._rng_breath, self._rng_heart = subs[0], subs[1], subs[2]
        self._rng_events, self._rng_spont, self._rng_render = subs[3], subs[4], subs[5]

        self._gain = np.ones(n)
        self._moves: list[_Move] = []
        self._resp_spans: list[tuple[float, float]] = []

        if sleeper_night is not None:
            self._build_sleeper(sleeper_night)
        elif mode == "awake":
            self._build_awake(night)
        else:
            self._build_pet()
        self._render_movements()
        self._compose()
        logger.debug(
            "physiology mode=%s duration_s=%.0f beats=%d moves=%d",
            mode,
            dur,
            self.beat_t_s.size,
            len(self._moves),
        )

    # ------------------------------------------------------------------ building blocks

    def _heart(self, beats: np.ndarray, amp_mm: float, fwhm_s: float, delay_s: float) -> None:
        """Render the cardiac pulses and keep the driving beats."""
        rng = self._rng_heart
        fs, n = self.frame_rate_hz, self._n
        beats = np.asarray(beats, dtype=np.float64)
        if beats.size > 1:  # a mechanical beat needs ~0.25 s; drop duplicate annotations
            beats = beats[np.concatenate([[True], np.diff(beats) >= 0.25])]
        self.beat_t_s = beats
        tb = beats + delay_s
        amps = amp_mm * (1.0 + 0.05 * rng.standard_normal(tb.size))
        sigma = fwhm_s / 2.3548
        half = int(math.ceil(4 * sigma * fs)) + 1
        offs = np.arange(-half, half + 1)
        idx = np.rint(tb * fs).astype(np.int64)[:, None] + offs[None, :]
        vals = amps[:, None] * np.exp(-0.5 * ((idx / fs - tb[:, None]) / sigma) ** 2)
        ok = (idx >= 0) & (idx < n)
        self._heart_mm = np.bincount(idx[ok], weights=vals[ok], minlength=n)[:n]

    def _breath_from_rate(
        self,
        rate_bpm: np.ndarray,
        *,
        depth_mm: float,
        ti: float,
        rate_jitter: float,
        depth_cv: float,
        sigh_every_s: tuple[float, float] | None = None,
        bounds_bpm: tuple[float, float] = (4.0, 60.0),
    ) -> None:
        """Integrate a rate into a phase and draw the breath-by-breath waveform."""
        rng = self._rng_breath
        fs, t = self.frame_rate_hz, self.t_s
        z = _smooth_noise(rng, self._n, 1.5 * fs)
        f_hz = np.clip(rate_bpm * (1.0 + rate_jitter * z), *bounds_bpm) / 60.0
        phase = rng.random() + np.concatenate([[0.0], np.cumsum(f_hz[:-1]) / fs])
        cyc = np.floor(phase).astype(np.int64)
        c0 = int(cyc[0])
        n_cyc = int(cyc[-1]) - c0 + 1
        per_breath = np.exp(depth_cv * rng.standard_normal(n_cyc) - 0.5 * depth_cv**2)
        if sigh_every_s is not None:
            tt = rng.uniform(*sigh_every_s)
            while tt < self.duration_s:
                k = int(np.interp(tt, t, phase)) - c0
                if 0 <= k < n_cyc:
                    per_breath[k] *= rng.uniform(2.0, 2.5)
                tt += rng.uniform(*sigh_every_s)
        walk = np.exp(_slow(rng, t, 600.0, 0.2) - 0.02)
        self._depth_mm = depth_mm * walk * per_breath[cyc - c0]
        self._phase = phase
        self._breath_unit = -_breath_shape(phase - cyc, ti)  # inspiration toward the radar
        self.breath_depth_mm = float(depth_mm)

    def _abdomen(self, share: float) -> None:
        self._abd_share = np.full(self._n, share)

    # ------------------------------------------------------------------ sleeper

    def _build_sleeper(self, night: Night) -> None:
        p = self._rng_param
        heart_amp = p.uniform(0.15, 0.4)
        heart_fwhm = p.uniform(0.10, 0.20)
        heart_delay = p.uniform(0.10, 0.20)
        depth = p.uniform(3.0, 12.0)
        ti = p.uniform(0.36, 0.44)
        share = p.uniform(0.6, 1.2)
        beats = night.beat_t_s[night.beat_t_s < self.duration_s]
        self._heart(beats, heart_amp, heart_fwhm, heart_delay)
        self._abdomen(share)

        t_rr, rr = clean_rr(beats)
        self._rr = (t_rr, rr)
        if night.resp is not None and night.fs_resp is not None:
            self._breath_from_resp(night.resp, night.fs_resp, depth)
        else:
            t_c, rate = rsa_breath_rate(beats, self.duration_s)
            rate_grid = np.interp(self.t_s, t_c, rate)
            self._breath_from_rate(
                rate_grid,
                depth_mm=depth,
                ti=ti,
                rate_jitter=0.07,
                depth_cv=0.1,
                bounds_bpm=(BREATH_MIN_BPM, BREATH_MAX_BPM),
            )
            self._events(night)
        self._event_movements(night)
        self._spontaneous_movements(t_rr, rr)

    def _breath_from_resp(self, resp: np.ndarray, fs_resp: float, depth_mm: float) -> None:
        """Use a recorded respiration signal (any unit) as the breathing waveform."""
        x = np.asarray(resp, dtype=np.float64)
        x = np.where(np.isfinite(x), x, np.nanmedian(x) if np.isfinite(x).any() else 0.0)
        hi = min(1.0, 0.45 * fs_resp)
        sos = signal.butter(2, (0.05, hi), btype="bandpass", fs=fs_resp, output="sos")
        y = signal.sosfiltfilt(sos, x - x.mean())
        ty = np.arange(y.size) / fs_resp
        yg = np.interp(self.t_s, ty, y, left=0.0, right=0.0)
        lo_q, hi_q = np.percentile(y, [5, 95])
        scale = float(hi_q - lo_q) or 1.0
        # Resp effort rises on inspiration; the chest then moves toward the radar (negative).
        unit = -(yg - float(np.median(y))) / scale
        self._breath_unit = unit
        self._depth_mm = np.full(self._n, depth_mm)
        self.breath_depth_mm = float(depth_mm)
        # Truth phase: cycles of the analytic signal of the 4-Hz breathing band.
        n4 = max(8, int(math.ceil(self.duration_s * _FS_RR_HZ)))
        t4 = np.arange(n4) / _FS_RR_HZ
        y4 = np.interp(t4, ty, y)
        sos4 = signal.butter(2, (0.1, 0.6), btype="bandpass", fs=_FS_RR_HZ, output="sos")
        ph = np.unwrap(np.angle(signal.hilbert(signal.sosfiltfilt(sos4, y4)))) / (2 * np.pi)
        ph = np.maximum.accumulate(ph - ph[0])
        self._phase = np.interp(self.t_s, t4, ph)

    def _events(self, night: Night) -> None:
        """Apneas and hypopneas from the event flags: depth gain and abdominal paradox."""
        rng = self._rng_events
        fs, n = self.frame_rate_hz, self._n
        dip = np.ones(n)
        rec = np.ones(n)
        paradox = np.zeros(n)
        rate_grid = self._rate_grid()
        kinds = (
            (EVENT_CENTRAL_APNEA, (0.02, 0.05), False),
            (EVENT_OBSTRUCTIVE_APNEA, (0.15, 0.35), True),
            (EVENT_HYPOPNEA, (0.4, 0.6), False),
        )
        starts = night.epoch_start_s()
        for e in np.flatnonzero(
            night.events & (EVENT_CENTRAL_APNEA | EVENT_OBSTRUCTIVE_APNEA | EVENT_HYPOPNEA)
        ):
            flags = int(night.events[e])
            for bits, (lo, hi), obstructive in kinds:
                if not flags & bits:
                    continue
                factor = rng.uniform(lo, hi)
                dur = rng.uniform(10.0, 40.0)
                t0 = starts[e] + rng.uniform(0.0, max(0.0, night.epoch_s - dur))
                i0 = int(round(t0 * fs))
                m = int(round(dur * fs))
                if i0 >= n or m <= 0:
                    continue
                w = _plateau(m, int(2.5 * fs))
                sl = slice(i0, min(n, i0 + m))
                w = w[: sl.stop - sl.start]
                dip[sl] = np.minimum(dip[sl], 1.0 - (1.0 - factor) * w)
                if obstructive:
                    paradox[sl] = np.maximum(paradox[sl], rng.uniform(0.5, 1.0) * w)
                # One or two larger recovery breaths.
                period = 60.0 / max(float(rate_grid[min(n - 1, max(0, i0 + m))]), 1.0)
                r_n = int(round(rng.integers(1, 3) * period * fs))
                r_amp = rng.uniform(1.5, 2.2)
                r0 = i0 + m
                if r0 < n and r_n > 1:
                    rs = slice(r0, min(n, r0 + r_n))
                    rw = _raised(r_n)[: rs.stop - rs.start]
                    rec[rs] = np.maximum(rec[rs], 1.0 + (r_amp - 1.0) * rw)
                self._resp_spans.append((t0, t0 + dur))
        self._gain = dip * rec
        self._abd_share = self._abd_share * (1.0 - 2.0 * paradox)

    def _rate_grid(self) -> np.ndarray:
        fs = self.frame_rate_hz
        return np.gradient(self._phase) * fs * 60.0

    def _event_movements(self, night: Night) -> None:
        rng = self._rng_events
        starts = night.epoch_start_s()
        spans = self._resp_spans
        span_ends = np.array([b for _, b in spans]) if spans else np.zeros(0)
        for e in np.flatnonzero(night.events):
            flags = int(night.events[e])
            t_ep = float(starts[e])
            if t_ep >= self.duration_s:
                continue
            if flags & EVENT_MOVEMENT_TIME:
                dur = rng.uniform(10.0, 30.0)
                t0 = t_ep + rng.uniform(0.0, max(0.0, night.epoch_s - dur))
                self._moves.append(
                    _Move(
                        t0,
                        dur,
                        rng.uniform(20.0, 60.0),
                        rng.uniform(0.5, 1.5),
                        True,
                        legs_mm=rng.uniform(10.0, 40.0),
                    )
                )
            if flags & EVENT_LEG_MOVEMENT:
                dur = rng.uniform(1.0, 4.0)
                t0 = t_ep + rng.uniform(0.0, night.epoch_s - dur)
                self._moves.append(
                    _Move(
                        t0,
                        dur,
                        rng.uniform(0.5, 3.0),
                        rng.uniform(0.9, 1.1),
                        False,
                        legs_mm=rng.uniform(5.0, 20.0),
                    )
                )
            if flags & EVENT_AROUSAL_BITS and rng.random() < 0.6:
                dur = rng.uniform(2.0, 8.0)
                inside = span_ends[(span_ends >= t_ep) & (span_ends < t_ep + night.epoch_s + 40.0)]
                t0 = (
                    float(inside[0])
                    if inside.size
                    else t_ep + rng.uniform(0.0, night.epoch_s - dur)
                )
                self._moves.append(
                    _Move(
                        t0, dur, rng.uniform(5.0, 30.0), rng.uniform(0.5, 1.5), rng.random() < 0.3
                    )
                )

    def _spontaneous_movements(self, t_rr: np.ndarray, rr: np.ndarray) -> None:
        """Movements whose rate rises with cardiac accelerations (10-s HR over 5-min median)."""
        rng = self._rng_spont
        n_s = int(math.ceil(self.duration_s))
        u = rng.random(n_s)
        if rr.size < 10:
            return
        hr4 = 60.0 / _even_rr(t_rr, rr, self.duration_s)
        hr10 = uniform_filter1d(hr4, size=int(10 * _FS_RR_HZ), mode="nearest")
        hr1 = hr10[:: int(_FS_RR_HZ)][:n_s]
        base = median_filter(hr1, size=301, mode="nearest")
        excess = np.clip(hr1 - base - 3.0, 0.0, 20.0)
        rate_per_h = 0.5 + 20.0 * excess
        cand = np.flatnonzero(u[: hr1.size] < rate_per_h / 3600.0)
        last = -1e9
        for c in cand:
            if c - last < 30:
                continue
            last = float(c)
            dur = float(np.clip(rng.lognormal(math.log(4.0), 0.5), 1.5, 15.0))
            big = dur > 6.0 or rng.random() < 0.3
            amp = rng.uniform(15.0, 50.0) if big else rng.uniform(5.0, 20.0)
            self._moves.append(_Move(float(c), dur, amp, rng.uniform(0.5, 1.5), big))

    # ------------------------------------------------------------------ synthetic modes

    def _synthetic_heart(
        self,
        hr_mean: float,
        *,
        vlf_sd: float,
        lf_sd: float,
        rsa_bpm: float,
        amp_mm: float,
        fwhm_s: float,
        surge_bpm: tuple[float, float],
    ) -> None:
        """Heart rate with VLF/LF variability, RSA from the breath phase and movement surges."""
        rng = self._rng_heart
        t, fs = self.t_s, self.frame_rate_hz
        hr = hr_mean + _slow(rng, t, 120.0, vlf_sd)
        hr += lf_sd * _smooth_noise(rng, self._n, 2.0 * fs)
        hr += rsa_bpm * np.sin(2 * np.pi * self._phase - 0.5)
        for mv in self._moves:
            lo = max(0, int((mv.t0_s - 15.0) * fs))
            hi = min(self._n, int((mv.t0_s + 30.0) * fs))
            if hi > lo:
                seg = t[lo:hi] - mv.t0_s - 5.0
                size = min(1.0, mv.amp_mm / 30.0)
                hr[lo:hi] += size * rng.uniform(*surge_bpm) * np.exp(-0.5 * (seg / 6.0) ** 2)
        hr = np.clip(hr, 35.0, 230.0)
        beats = _beats_from_rate(t, hr / 60.0, rng.random())
        self._rr = clean_rr(beats)
        self._heart(beats, amp_mm, fwhm_s, 0.12)

    def _synthetic_rate(self, lo: float, hi: float, wander_bpm: float) -> np.ndarray:
        base = self._rng_param.uniform(lo, hi)
        r = base + _slow(self._rng_breath, self.t_s, 60.0, wander_bpm)
        return np.clip(r, lo, hi)

    def _build_awake(self, night: Night | None) -> None:
        p = self._rng_param
        if night is not None:
            first = night.beat_t_s[night.beat_t_s < 600.0]
            _, rr = clean_rr(first)
            ref = 60.0 / float(np.mean(rr)) if rr.size > 20 else 65.0
        else:
            ref = p.uniform(60.0, 72.0)
        hr_mean = ref + p.uniform(3.0, 7.0)
        depth = p.uniform(3.0, 12.0)
        ti = p.uniform(0.38, 0.45)
        share = p.uniform(0.6, 1.2)
        heart_amp = p.uniform(0.15, 0.4)
        heart_fwhm = p.uniform(0.10, 0.20)
        self._abdomen(share)
        rate = self._synthetic_rate(14.0, 20.0, 1.5)
        self._breath_from_rate(
            rate, depth_mm=depth, ti=ti, rate_jitter=0.12, depth_cv=0.2, sigh_every_s=(120.0, 400.0)
        )
        # Small hand movements (page turns) every 20–60 s; posture shifts every 3–10 min.
        rng = self._rng_spont
        # page turns and hands
        self._every(
            (5.0, 40.0),
            (20.0, 60.0),
            lambda t: _Move(
                t, rng.uniform(0.8, 3.0), rng.uniform(2.0, 10.0), rng.uniform(0.8, 1.2), False
            ),
        )
        # posture shifts
        self._every(
            (60.0, 400.0),
            (180.0, 600.0),
            lambda t: _Move(
                t,
                rng.uniform(3.0, 8.0),
                rng.uniform(20.0, 50.0),
                rng.uniform(0.5, 1.5),
                True,
                legs_mm=rng.uniform(5.0, 30.0),
            ),
        )
        self._synthetic_heart(
            hr_mean,
            vlf_sd=3.0,
            lf_sd=2.0,
            rsa_bpm=p.uniform(1.5, 4.0),
            amp_mm=heart_amp,
            fwhm_s=heart_fwhm,
            surge_bpm=(4.0, 10.0),
        )

    def _every(
        self,
        first_s: tuple[float, float],
        gap_s: tuple[float, float],
        make: Callable[[float], _Move],
    ) -> None:
        """Schedule movements from a random first time, at random gaps, over the whole body."""
        rng = self._rng_spont
        tt = rng.uniform(*first_s)
        while tt < self.duration_s:
            self._moves.append(make(tt))
            tt += rng.uniform(*gap_s)

    def _build_pet(self) -> None:
        p = self._rng_param
        depth = p.uniform(1.0, 2.0)
        hr_mean = p.uniform(140.0, 200.0)
        heart_amp = p.uniform(0.02, 0.05)
        self._abdomen(p.uniform(0.8, 1.2))
        rate = self._synthetic_rate(20.0, 35.0, 2.0)
        self._breath_from_rate(
            rate, depth_mm=depth, ti=p.uniform(0.4, 0.5), rate_jitter=0.08, depth_cv=0.12
        )
        rng = self._rng_spont
        # grooming bouts: rhythmic licking / head bobbing
        self._every(
            (10.0, 200.0),
            (120.0, 420.0),
            lambda t: _Move(
                t,
                rng.uniform(10.0, 60.0),
                rng.uniform(2.0, 8.0),
                rng.uniform(0.6, 1.4),
                False,
                rhythm_hz=rng.uniform(2.0, 4.0),
            ),
        )
        # repositioning
        self._every(
            (60.0, 600.0),
            (300.0, 900.0),
            lambda t: _Move(
                t, rng.uniform(2.0, 5.0), rng.uniform(10.0, 30.0), rng.uniform(0.6, 1.4), True
            ),
        )
        self._synthetic_heart(
            hr_mean,
            vlf_sd=5.0,
            lf_sd=2.0,
            rsa_bpm=3.0,
            amp_mm=heart_amp,
            fwhm_s=p.uniform(0.06, 0.10),
            surge_bpm=(5.0, 15.0),
        )

    # ------------------------------------------------------------------ movements, composition

    def _render_movements(self) -> None:
        rng = self._rng_render
        fs, n = self.frame_rate_hz, self._n
        mov = np.zeros(n)
        legs = np.zeros(n)
        amp_tr = np.ones(n)
        dist_inc = np.zeros(n)
        lamp_inc = np.zeros(n)
        mask = np.zeros(n, dtype=bool)
        cur_d, cur_la = 0.0, 0.0
        self._moves.sort(key=lambda m: m.t0_s)
        for mv in self._moves:
            i0 = int(round(mv.t0_s * fs))
            m = max(2, int(round(mv.dur_s * fs)))
            if i0 >= n or i0 + m <= 0:
                continue
            lo, hi = max(0, i0), min(n, i0 + m)
            cut = slice(lo - i0, hi - i0)
            w = signal.windows.tukey(m, 0.6)
            if mv.rhythm_hz > 0:
                tt = np.arange(m) / fs
                x = np.sin(2 * np.pi * mv.rhythm_hz * tt + rng.uniform(0, 2 * np.pi))
                x *= 0.6 + 0.4 * np.abs(_smooth_noise(rng, m, 0.5 * fs))
            else:
                x = _smooth_noise(rng, m, 0.3 * fs)
            x /= max(float(np.max(np.abs(x))), 1e-9)
            sign = 1.0 if rng.random() < 0.5 else -1.0
            mov[lo:hi] += sign * mv.amp_mm * (x * w)[cut]
            if mv.legs_mm > 0:
                y = _smooth_noise(rng, m, 0.3 * fs)
                y /= max(float(np.max(np.abs(y))), 1e-9)
                legs[lo:hi] += mv.legs_mm * (y * w)[cut]
            flick = _smooth_noise(rng, m, 0.5 * fs)
            tr = 1.0 + ((mv.amp_factor - 1.0) + 0.15 * flick) * w
            amp_tr[lo:hi] *= np.clip(tr, 0.2, 2.0)[cut]
            mask[lo:hi] = True
            if mv.posture:
                new_d = rng.uniform(-0.04, 0.04)
                new_la = math.log(rng.uniform(0.75, 1.25))
                ramp = np.diff(0.5 - 0.5 * np.cos(np.pi * np.linspace(0.0, 1.0, m + 1)))
                dist_inc[lo:hi] += (new_d - cur_d) * ramp[cut]
                lamp_inc[lo:hi] += (new_la - cur_la) * ramp[cut]
                cur_d, cur_la = new_d, new_la
        self._mov_mm = mov
        self._legs_mm = legs
        self._amp_tr = amp_tr
        self._dist = np.cumsum(dist_inc)
        self._lamp = np.exp(np.cumsum(lamp_inc))
        self._mask = mask

    def _compose(self) -> None:
        breath = self._breath_unit * self._depth_mm * self._gain
        ro = _readonly
        self.breath_waveform_mm = ro(breath)
        self.breath_gain = ro(self._gain)
        self.heart_waveform_mm = ro(self._heart_mm)
        self.movement_mm = ro(self._mov_mm)
        self.leg_displacement_mm = ro(self._legs_mm)
        self.displacement_mm = ro(breath + self._heart_mm + self._mov_mm)
        self.amplitude_scale = ro(np.clip(self._amp_tr * self._lamp, 0.3, 2.0))
        self.distance_offset_m = ro(self._dist)
        self.movement_mask = ro(self._mask)
        self.abdomen_breath_share = ro(self._abd_share)
        self.beat_t_s = ro(self.beat_t_s)
        self.t_s = ro(self.t_s)
        for name in (
            "_breath_unit",
            "_depth_mm",
            "_heart_mm",
            "_mov_mm",
            "_legs_mm",
            "_amp_tr",
            "_lamp",
            "_dist",
            "_mask",
            "_gain",
        ):
            delattr(self, name)

    # ------------------------------------------------------------------ truth helpers

    def _epoch_bounds(
        self, t_epoch_starts: np.ndarray, epoch_s: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t0 = np.asarray(t_epoch_starts, dtype=np.float64)
        t1 = t0 + epoch_s
        a = np.clip(t0, 0.0, self.duration_s)
        b = np.clip(t1, 0.0, self.duration_s)
        valid = (b - a) >= 0.5 * epoch_s
        return a, b, valid

    def breath_rate_bpm(self, t_epoch_starts: np.ndarray, epoch_s: float = 30.0) -> np.ndarray:
        """Return the true breathing rate of each epoch: breath cycles per minute of the phase.

        Args:
            t_epoch_starts: (k,) epoch starts, seconds of this physiology's time.
            epoch_s: Epoch length, seconds.

        Returns:
            (k,) float64 breaths/min; NaN for epochs less than half inside [0, duration).
        """
        a, b, valid = self._epoch_bounds(t_epoch_starts, epoch_s)
        pa = np.interp(a, self.t_s, self._phase)
        pb = np.interp(b, self.t_s, self._phase)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (pb - pa) / (b - a) * 60.0
        return np.where(valid, r, np.nan)

    def heart_rate_bpm(self, t_epoch_starts: np.ndarray, epoch_s: float = 30.0) -> np.ndarray:
        """Return the true heart rate of each epoch: 60 / mean clean RR interval in it.

        Args:
            t_epoch_starts: (k,) epoch starts, seconds of this physiology's time.
            epoch_s: Epoch length, seconds.

        Returns:
            (k,) float64 beats/min; NaN with fewer than 10 clean intervals in the epoch.
        """
        a, b, valid = self._epoch_bounds(t_epoch_starts, epoch_s)
        t_rr, rr = self._rr
        cs = np.concatenate([[0.0], np.cumsum(rr)])
        ia = np.searchsorted(t_rr, a)
        ib = np.searchsorted(t_rr, b)
        cnt = ib - ia
        with np.errstate(invalid="ignore", divide="ignore"):
            hr = 60.0 * cnt / (cs[ib] - cs[ia])
        return np.where(valid & (cnt >= 10), hr, np.nan)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a
