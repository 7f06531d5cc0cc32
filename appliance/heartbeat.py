"""Heartbeat from the cardiac band (0.8–2.5 Hz) of a target's chest displacement.

The heart moves the chest surface by a few tenths of a millimetre per beat, 10–50 times less
than breathing. The heart rate is the peak of a harmonic-summed spectrum (the beat is a pulse,
so it has energy at 2·f0 too) of a Hann-windowed window of the band (Mercuri et al. 2019,
doi:10.1038/s41928-019-0258-6; Alizadeh et al. 2019, doi:10.1109/ACCESS.2019.2912956); the peak's
prominence over the median of the spectrum gives the heart quality. Where the quality allows,
beats are the band's peaks at least 0.7 of the expected period apart, and beat-to-beat intervals
within ±30 % of that period are reported (the others are mis-detections, not arrhythmia we could
trust from a radar).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import signal

from appliance.spectrum import peak_hz

__all__ = ["HR_SEARCH_HZ", "HeartEstimate", "HeartRateEstimator"]

HR_SEARCH_HZ = (0.8, 2.2)
"""Where the heart-rate peak is searched, Hz (48–132 beats/min): narrower at the top than the
cardiac filter band, whose upper edge leaves room for the beat's harmonics."""
_MIN_RATIO = 3.0
_FULL_RATIO = 12.0
_BEAT_QUALITY = 0.3


@dataclass(frozen=True, slots=True)
class HeartEstimate:
    """Heart rate of one window.

    Attributes:
        rate_bpm: Beats/min, or None if no clear peak.
        quality: Peak prominence mapped to [0, 1].
    """

    rate_bpm: float | None
    quality: float


class HeartRateEstimator:
    """Spectral heart rate and beat intervals of fixed-length cardiac-band windows.

    Args:
        fs_hz: Sample rate of the cardiac band, Hz.
        window_s: Window length, seconds.
    """

    def __init__(self, fs_hz: float, window_s: float) -> None:
        self.fs_hz = fs_hz
        self.n = int(window_s * fs_hz)
        self._nfft = 1024
        self._freqs = np.fft.rfftfreq(self._nfft, 1.0 / fs_hz)
        self._win = np.hanning(self.n)
        lo, hi = HR_SEARCH_HZ
        self._band = (self._freqs >= lo) & (self._freqs <= hi)

    def estimate(self, x: np.ndarray) -> HeartEstimate:
        """Heart rate of the last `window_s` of a cardiac-band signal.

        Args:
            x: (>= n,) cardiac-band displacement, mm.

        Returns:
            The estimate (rate None while the window is not full or the peak is not clear).
        """
        if x.shape[0] < self.n:
            return HeartEstimate(None, 0.0)
        y = (x[-self.n :] - x[-self.n :].mean()) * self._win
        spec = np.abs(np.fft.rfft(y, self._nfft)) ** 2
        f = self._freqs
        harm = spec + 0.5 * np.interp(2.0 * f, f, spec)
        hb = harm[self._band]
        if hb.sum() <= 0:
            return HeartEstimate(None, 0.0)
        i = int(np.argmax(hb))
        mid = hb.shape[0] // 2
        ratio = float(hb[i] / max(float(np.partition(hb, mid)[mid]), 1e-30))
        quality = float(np.clip((ratio - _MIN_RATIO) / (_FULL_RATIO - _MIN_RATIO), 0.0, 1.0))
        if ratio < _MIN_RATIO:
            return HeartEstimate(None, 0.0)
        # The interpolated peak: sub-bin resolution at half the FFT size.
        return HeartEstimate(peak_hz(f[self._band], hb) * 60.0, quality)

    def beat_intervals(
        self, x: np.ndarray, est: HeartEstimate, new_s: float = 1.0, lag_s: float = 0.5
    ) -> tuple[float, ...]:
        """Beat-to-beat intervals of the beats in [end − lag_s − new_s, end − lag_s).

        The `lag_s` keeps a beat at the very end of the window (not yet confirmed by the fall
        after it) for the next second; consecutive seconds therefore report each beat once.

        Args:
            x: (>= n,) cardiac-band displacement, mm, ending now.
            est: The window's estimate.
            new_s: Span of new beats, seconds (one second per call).
            lag_s: Confirmation lag, seconds.

        Returns:
            Intervals (seconds) ending at the new beats, plausible ones only.
        """
        if est.rate_bpm is None or est.quality < _BEAT_QUALITY or x.shape[0] < self.n:
            return ()
        y = x[-self.n :]
        period = self.fs_hz * 60.0 / est.rate_bpm
        peaks, _ = signal.find_peaks(y, distance=max(1, int(0.7 * period)))
        if peaks.size < 2:
            return ()
        hi = self.n - int(round(lag_s * self.fs_hz))
        lo = hi - int(round(new_s * self.fs_hz))
        out: list[float] = []
        for a, b in itertools.pairwise(peaks):
            if lo <= b < hi and abs(b - a - period) <= 0.3 * period:
                out.append(float((b - a) / self.fs_hz))
        return tuple(out)
