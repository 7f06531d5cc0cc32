"""Put a recording's frames on the uniform grid the DSP needs.

The DSP (`appliance.dsp`) filters frame by frame at a fixed rate that is a multiple of 10 Hz (it
decimates the respiration band to 10 Hz in whole seconds). A recording made elsewhere need not
be like that: another frame rate (an A121 at 17 Hz, a module at 25 Hz), timestamps with jitter,
or frames lost to a busy USB link. `uniform_frames` leaves a recording that is already uniform
untouched, bit for bit, and otherwise interpolates the complex IQ of every range point linearly
in time onto a uniform grid at the nearest supported rate.

Linear interpolation is enough here: what the DSP looks at moves slowly against the frame rate
(breathing below 0.7 Hz, the heartbeat below 2.5 Hz, against at least 10 frames per second), and
interpolating I and Q keeps the phase continuous between frames. Across a gap longer than
`MAX_GAP_S` the interpolation would invent a smooth signal, so such gaps are held at the last
frame instead (a still, clutter-only stretch: the DSP's presence then decays rather than seeing
breathing that was never recorded) and counted, so the caller can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MAX_GAP_S", "Uniform", "supported_rate", "uniform_frames"]

MAX_GAP_S = 1.0
"""Longest hole between two frames that is bridged by interpolation, seconds."""
_JITTER = 0.25
"""Largest deviation of a frame interval from 1/rate, as a share of it, that counts as uniform."""


def supported_rate(rate_hz: float) -> float:
    """The DSP rate a recording at `rate_hz` is resampled to: the nearest multiple of 10 Hz (>= 10).

    Raises:
        ValueError: `rate_hz` is not a positive, finite number.
    """
    if not np.isfinite(rate_hz) or rate_hz <= 0:
        raise ValueError(f"frame rate must be positive, got {rate_hz}")
    return 10.0 * max(1, round(rate_hz / 10.0))


@dataclass(frozen=True, slots=True)
class Uniform:
    """Frames on a uniform time grid.

    Attributes:
        t_s: (n,) frame times, UTC epoch seconds, spaced 1 / `rate_hz`.
        iq: (n, points) complex64 IQ.
        rate_hz: The grid's frame rate, Hz (a multiple of 10).
        resampled: False when the input was already uniform (returned as it was).
        held_gaps: Gaps longer than `MAX_GAP_S` that were held, not interpolated.
    """

    t_s: np.ndarray
    iq: np.ndarray
    rate_hz: float
    resampled: bool
    held_gaps: int


def uniform_frames(t_s: np.ndarray, iq: np.ndarray, rate_hz: float) -> Uniform:
    """Return the frames on a uniform grid at `supported_rate(rate_hz)`.

    Args:
        t_s: (n,) strictly increasing capture times, seconds.
        iq: (n, points) complex IQ.
        rate_hz: The recording's nominal frame rate, Hz.

    Returns:
        The input itself if its rate is supported and every interval is within 25 % of
        1 / rate; else the linearly interpolated frames from the first frame time to the last.
    """
    fs = supported_rate(rate_hz)
    t = np.asarray(t_s, np.float64)
    x = np.asarray(iq)
    dt = np.diff(t)
    if t.size < 2 or (abs(rate_hz - fs) < 1e-6 and bool(np.all(np.abs(dt * fs - 1.0) <= _JITTER))):
        return Uniform(t, x.astype(np.complex64, copy=False), fs, False, 0)
    n = int(np.floor((t[-1] - t[0]) * fs + 1e-9)) + 1
    grid = t[0] + np.arange(n) / fs
    out = np.empty((n, x.shape[1]), np.complex64)
    for j in range(x.shape[1]):
        out[:, j] = np.interp(grid, t, x[:, j].real) + 1j * np.interp(grid, t, x[:, j].imag)
    gaps = np.flatnonzero(dt > MAX_GAP_S)
    before = np.searchsorted(t, grid, side="right") - 1  # the last frame at or before each time
    hold = np.isin(before, gaps) & (grid > t[before])
    out[hold] = x[before[hold]]
    return Uniform(grid, out, fs, True, int(gaps.size))
