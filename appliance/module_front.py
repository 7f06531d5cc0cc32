"""The front stage for a radar module that does its own DSP (the Seeed MR60BHA2).

The MR60BHA2 reports no IQ: each second (`hardware.radar.mr60bha2.ModuleSecond`) carries its
breathing-, heartbeat- and total-phase samples, its breath and heart rates, the distance of the
chest it follows and a presence verdict. `ModuleFront.update(seconds) -> list[RadarSecond]` maps
that stream onto what the IQ DSP (`appliance.dsp`) gives the rest of the pipeline, so presence,
tracking, epochs and staging run unchanged:

- the breathing phase is placed evenly across its second, resampled to 10 Hz (linear
  interpolation), converted to millimetres and band-passed to 0.1–0.7 Hz with the DSP's filter
  (`sosfilt` with carried state: causal, and identical whatever the chunking of the seconds);
- on it, `appliance.breath` finds each breath (onset, Ti, Te, amplitude), and a 30-s spectrum gives
  the breathing periodicity (`resp_quality`) and a breath rate where the module gives none;
- breath and heart rates are the module's own when it has a fresh one; beat-to-beat intervals
  do not exist (the module reports none), so `beat_intervals_s` is empty and the epochs' `rr_*`
  features are NaN: the stager scores from heart rate, respiration and movement;
- movement energy is the RMS velocity of what the total phase holds beyond breathing and
  heartbeat (total − breath − heart), mm/s, with the DSP's large-movement threshold and a steady
  level per 60 s (a fan's vibration is no body movement);
- presence is NOT the module's flag: the flag is one input of `appliance.presence`'s confidence
  score. It sets the evidence weight the detector gives the target (`snr_db` below: "someone" →
  `_SNR_PRESENT_DB`, "nobody" or no verdict → `_SNR_UNSURE_DB`, both above the detector's 12-dB
  midpoint) and the detector's own breathing test (periodic, chest-sized, living variability,
  asymmetric, going on now) must still hold, with its threshold, hysteresis and hold time. A
  breathing chest the module has stopped flagging (the classic mmWave failure on a still, deeply
  asleep sleeper) keeps presence through that test; while the module says "nobody", movement does
  not count as presence evidence (a curtain or a fan must not seat anyone).

Units of the phase. Seeed publishes the 0x0A13 payload as three float32 values named
`total_phase`, `breath_phase`, `heart_phase` (Seeed_Arduino_mmWave, SEEED_MR60BHA2.h, struct
`HeartBreath`; wiki "Getting started with MR60BHA2 mmWave kit", Arduino example printing them)
and states no unit, scale or report rate; ESPHome's `seeed_mr60bha2` does not decode them. We read
them as radar phase in radians, as the names say, and convert with the 60-GHz carrier:
displacement = phase · λ / 4π (λ ≈ 5.0 mm, ≈ 0.40 mm/rad). If a firmware scales them otherwise,
the breath timing, rate, periodicity and variability are unaffected (the breath detector's band is
relative to the signal's RMS); only the amplitudes in mm and the presence test's chest-size bounds
(0.3–15 mm peak to peak) depend on it: `ModuleFront(mm_per_unit=...)` is the one place to change.
The sign of the phase is unknown too; nothing downstream depends on it (Ti/Ttot is tested for its
distance from 0.5, whichever way).

Assumes: the module streams phases at >= 2 Hz (the 0.1–0.7-Hz band needs it); a second without
phase samples holds the last value (a flat, breath-less second), and a gap in the seconds (an
unplugged port) restarts the filters and windows.

References:
    Seeed Studio (2024). MR60BHA2 60GHz mmWave Breathing and Heartbeat module: wiki and the
    Seeed_Arduino_mmWave library (SEEED_MR60BHA2: frame types 0x0A13–0x0A16, 0x0F09).
    Schäfer A, Kratky KW (2008). Estimation of breathing rate from respiratory sinus arrhythmia:
    comparison of various methods. Ann Biomed Eng 36:476–485. doi:10.1007/s10439-008-9532-3
    (breath-by-breath extrema, as `appliance.breath`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np
from scipy import signal

from appliance.breath import breath_stats, find_breaths
from appliance.dsp import LARGE_MOVEMENT_MM_S, DspConfig, rms
from appliance.frames import Breath, RadarSecond, Target
from appliance.spectrum import peak_hz

__all__ = ["MM_PER_RAD_60GHZ", "ModuleFront", "ModuleReading"]

MM_PER_RAD_60GHZ = 299.792458 / 60.0 / (4.0 * math.pi)
"""Chest displacement per radian of radar phase at 60 GHz, mm (λ / 4π)."""

_FS_HZ = 10.0
_N_PER_S = 10
_SNR_PRESENT_DB = 20.0
"""Evidence weight (on the detector's dB scale) of a target the module says is someone."""
_SNR_UNSURE_DB = 14.0
"""Evidence weight when the module says nobody or has not said: breathing must prove it."""
_NOISE_FLOOR_DB = 0.0
_GAP_S = 1.5
"""Seconds between two readings beyond which the stream restarts (the port was gone)."""
_DISTANCE_HOLD_S = 300.0
"""How long the module's last distance stands for the chest it follows, s."""
_MIN_RATE_QUALITY = 0.25
"""Periodicity below which our own spectrum gives no breath rate (as the DSP)."""


class ModuleReading(Protocol):
    """What the front reads of one module second (`hardware.radar.mr60bha2.ModuleSecond`)."""

    @property
    def t_s(self) -> float:
        """End of the second, UTC epoch seconds."""
        ...

    @property
    def present(self) -> bool | None:
        """The module's presence verdict (None: none yet)."""
        ...

    @property
    def breath_rate_bpm(self) -> float | None:
        """The module's fresh breath rate, /min."""
        ...

    @property
    def heart_rate_bpm(self) -> float | None:
        """The module's fresh heart rate, /min."""
        ...

    @property
    def distance_m(self) -> float | None:
        """The module's fresh distance, m."""
        ...

    @property
    def breath_phase(self) -> np.ndarray:
        """(k,) breathing-phase samples of the second, module units (radians)."""
        ...

    @property
    def heart_phase(self) -> np.ndarray:
        """(k,) heartbeat-phase samples of the second."""
        ...

    @property
    def total_phase(self) -> np.ndarray:
        """(k,) total-phase samples of the second."""
        ...


def _spectral_rate(x: np.ndarray, band_hz: tuple[float, float]) -> tuple[float | None, float]:
    """(breaths/min or None, periodicity in [0, 1]) of a 10-Hz respiration window.

    Periodicity is the share of the band's power within ±0.04 Hz of the spectral peak (Hann
    window, 512-point FFT, parabolic interpolation of the peak on log power), as the IQ DSP
    computes it, so the presence detector reads the same scale from either source.
    """
    n = x.shape[0]
    if n < 16:
        return None, 0.0
    nfft = 512
    y = (x - x.mean()) * np.hanning(n)
    spec = np.abs(np.fft.rfft(y, nfft)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / _FS_HZ)
    band = (f >= band_hz[0]) & (f <= band_hz[1])
    sb, fb = spec[band], f[band]
    total = float(sb.sum())
    if total <= 0.0:
        return None, 0.0
    i = int(np.argmax(sb))
    quality = float(sb[np.abs(fb - fb[i]) <= 0.04].sum() / total)
    if quality < _MIN_RATE_QUALITY:
        return None, quality
    return peak_hz(fb, sb) * 60.0, quality


class ModuleFront:
    """Module seconds in, `RadarSecond`s out (one per reading), for the shared pipeline.

    Args:
        mm_per_unit: Displacement per unit of the module's phase, mm (default: radians at
            60 GHz, `MM_PER_RAD_60GHZ`).
        cfg: The DSP's tuning, for the same respiration band and windows.
    """

    def __init__(self, mm_per_unit: float = MM_PER_RAD_60GHZ, cfg: DspConfig | None = None) -> None:
        self.mm_per_unit = mm_per_unit
        self.cfg = cfg or DspConfig()
        self._sos = signal.butter(2, self.cfg.resp_band_hz, "bandpass", fs=_FS_HZ, output="sos")
        self._n_resp = int(self.cfg.resp_window_s * _FS_HZ)
        self._n_recent = int(self.cfg.recent_resp_s * _FS_HZ)
        self._a_steady = 1.0 - math.exp(-1.0 / self.cfg.steady_tau_s)
        self._distance_m: float | None = None
        self._distance_t_s = -math.inf
        self._restart()

    def _restart(self) -> None:
        """Forget the stream (first reading, or after a gap)."""
        self._zi = np.zeros((self._sos.shape[0], 2))
        self._resp = np.zeros(0)
        self._last_t_s: float | None = None
        self._last_phase: float | None = None  # the previous second's last breath sample
        self._last_rest: float | None = None  # and its last "rest" (total - breath - heart)
        self._steady: float | None = None
        self._last_onset_s = -math.inf

    def update(self, seconds: Sequence[ModuleReading]) -> list[RadarSecond]:
        """Map the module's seconds (oldest first) to the DSP's per-second values.

        Returns:
            One `RadarSecond` per reading, in order.
        """
        return [self._one(s) for s in seconds]

    # -- one second ------------------------------------------------------------------------
    def _waveform(self, s: ModuleReading) -> np.ndarray:
        """The 10-Hz displacement of one second, mm (before the band-pass)."""
        ph = np.asarray(s.breath_phase, np.float64)
        k = ph.shape[0]
        grid = (np.arange(1, _N_PER_S + 1) / _N_PER_S) - 1.0  # seconds before the end
        if k == 0:
            hold = 0.0 if self._last_phase is None else self._last_phase
            return np.full(_N_PER_S, hold * self.mm_per_unit)
        # The module does not stamp its samples: spread them evenly, the last at the second's end.
        t = (np.arange(1, k + 1) / k) - 1.0
        if self._last_phase is not None:
            t = np.concatenate(([-1.0], t))
            ph = np.concatenate(([self._last_phase], ph))
        self._last_phase = float(ph[-1])
        return np.interp(grid, t, ph) * self.mm_per_unit

    def _movement(self, s: ModuleReading) -> float:
        """RMS velocity of the total phase beyond breathing and heartbeat this second, mm/s."""
        tot = np.asarray(s.total_phase, np.float64)
        br = np.asarray(s.breath_phase, np.float64)
        hr = np.asarray(s.heart_phase, np.float64)
        k = min(tot.shape[0], br.shape[0], hr.shape[0])
        if k == 0:
            return 0.0
        rest = (tot[:k] - br[:k] - hr[:k]) * self.mm_per_unit
        if self._last_rest is not None:
            rest = np.concatenate(([self._last_rest], rest))
        self._last_rest = float(rest[-1])
        if rest.shape[0] < 2:
            return 0.0
        return rms(np.diff(rest) * float(k))

    def _one(self, s: ModuleReading) -> RadarSecond:
        t_s = float(s.t_s)
        if self._last_t_s is not None and not 0.0 < t_s - self._last_t_s <= _GAP_S:
            self._restart()
        self._last_t_s = t_s
        raw = self._waveform(s)
        wave, self._zi = signal.sosfilt(self._sos, raw, zi=self._zi)
        self._resp = np.concatenate([self._resp, wave])[-self._n_resp :]
        if s.distance_m is not None and math.isfinite(s.distance_m):
            self._distance_m, self._distance_t_s = float(s.distance_m), t_s
        elif t_s - self._distance_t_s > _DISTANCE_HOLD_S:
            self._distance_m = None
        movement = self._movement(s)
        if s.present is False:
            movement = 0.0  # the module sees nobody: motion alone must not seat anyone
        steady = 0.0 if self._steady is None else self._steady
        self._steady = (
            movement if self._steady is None else steady + self._a_steady * (movement - steady)
        )
        dist = self._distance_m
        if dist is None:
            self._last_onset_s = -math.inf
            return RadarSecond(t_s=t_s, targets=(), noise_floor_db=_NOISE_FLOOR_DB)

        resp = self._resp
        full = resp.shape[0] >= self._n_resp
        own_rate, quality = _spectral_rate(resp, self.cfg.resp_band_hz) if full else (None, 0.0)
        t0 = t_s - (resp.shape[0] - 1) / _FS_HZ
        found, done = find_breaths(resp, _FS_HZ, t0) if full else ([], [])
        st = breath_stats(found)
        last = resp.shape[0] - _N_PER_S
        fresh: list[Breath] = [
            b
            for b, k in zip(found, done, strict=True)
            if k >= last and b.onset_s > self._last_onset_s + 0.5
        ]
        if fresh:
            self._last_onset_s = fresh[-1].onset_s
        rate = s.breath_rate_bpm if s.breath_rate_bpm is not None else own_rate
        snr = _SNR_PRESENT_DB if s.present else _SNR_UNSURE_DB
        snr_q = 1.0 / (1.0 + math.exp(-(snr - 12.0) / 3.0))
        target = Target(
            distance_m=dist,
            snr_db=snr,
            resp_amp_mm=rms(resp[-100:]),
            breath_rate_bpm=rate,
            heart_rate_bpm=s.heart_rate_bpm,
            movement=movement,
            resp_quality=quality,
            large_movement=movement >= LARGE_MOVEMENT_MM_S,
            steady_movement=steady,
            breath_interval_cv=st.interval_cv,
            breath_amp_cv=st.amp_cv,
            breath_amp_mm=st.amp_mm,
            breath_ti_ratio=st.ti_ratio,
            recent_resp_mm=rms(resp[-self._n_recent :]),
            heart_quality=0.0,  # the module reports no spectrum to judge its rate by
            signal_quality=quality * snr_q,
        )
        return RadarSecond(
            t_s=t_s,
            targets=(target,),
            noise_floor_db=_NOISE_FLOOR_DB,
            resp_waveform_mm=wave[-_N_PER_S:].astype(np.float32),
            breaths=tuple(fresh),
            beat_intervals_s=(),
            waveform_distance_m=dist,
        )
