"""Small synthetic radar scenes for stage unit tests (independent of the full scene simulator)."""

from __future__ import annotations

import numpy as np

from appliance.dsp import WAVELENGTH_MM
from appliance.frames import RadarFrames

FS_HZ = 20.0
RANGE_START_M = 0.3
RANGE_STEP_M = 0.06
N_BINS = 29


def _breath(phase: np.ndarray) -> np.ndarray:
    """Unit peak-to-peak/2 breath shape: a chest rises faster than it falls (Ti/Ttot ≈ 0.35)."""
    return (np.sin(phase) + 0.4 * np.sin(2 * phase)) / _BREATH_PEAK


_GRID = np.linspace(0, 2 * np.pi, 4001)
_BREATH_PEAK = float(np.max(np.sin(_GRID) + 0.4 * np.sin(2 * _GRID)))


def _breath_phase(rng: np.random.Generator, t: np.ndarray, br: float) -> np.ndarray:
    """Breathing phase at `br`/min: slow wander and ~8 % breath-to-breath variability."""
    slow = np.sin(2 * np.pi * t / rng.uniform(25.0, 45.0) + rng.uniform(0, 2 * np.pi))
    fast = np.sin(2 * np.pi * t / rng.uniform(7.0, 11.0) + rng.uniform(0, 2 * np.pi))
    period_s = 60.0 / br
    knots = np.arange(-period_s, t[-1] + 2 * period_s if t.size else period_s, period_s)
    per_breath = np.interp(t, knots, rng.normal(0.0, 0.08, knots.size))  # breath-to-breath
    rate_hz = br / 60.0 * (1.0 + 0.04 * slow + 0.03 * fast + per_breath)
    return 2 * np.pi * np.cumsum(rate_hz) * (t[1] - t[0] if t.size > 1 else 0.0)


def frames(
    duration_s: float,
    *,
    people: tuple[tuple[float, float, float, float], ...] = ((0.7, 15.0, 6.0, 62.0),),
    t0_s: float = 1_700_000_000.0,
    noise: float = 0.02,
    seed: int = 0,
    absent: tuple[tuple[float, float], ...] = (),
    moving: tuple[tuple[float, float], ...] = (),
) -> RadarFrames:
    """Render IQ for people given as (distance_m, breaths/min, depth_mm, heart_bpm).

    `absent` lists (start_s, end_s) spans when nobody is there; `moving` spans of body movement.
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * FS_HZ))
    t = np.arange(n) / FS_HZ
    r = RANGE_START_M + RANGE_STEP_M * np.arange(N_BINS)
    iq = np.zeros((n, N_BINS), np.complex128)
    clutter = rng.normal(size=N_BINS) + 1j * rng.normal(size=N_BINS)
    iq += clutter[None, :] * 0.5
    here = np.ones(n, bool)
    for a, b in absent:
        here &= ~((t >= a) & (t < b))
    mov = np.zeros(n)
    for a, b in moving:
        m = (t >= a) & (t < b)
        mov[m] = 25.0 * np.sin(2 * np.pi * 0.7 * (t[m] - a)) + rng.normal(0, 3.0, m.sum())
    for d, br, depth, hr in people:
        disp = (
            depth / 2 * _breath(_breath_phase(rng, t, br))
            + 0.25 * np.sin(2 * np.pi * hr / 60 * t)
            + mov
        )
        dist_m = d + disp / 1000.0
        amp = (0.7 / d) ** 2 * here
        env = np.exp(-0.5 * ((r[None, :] - dist_m[:, None]) / 0.04) ** 2)
        iq += (
            amp[:, None] * env * np.exp(1j * 4 * np.pi * (dist_m[:, None] * 1000.0) / WAVELENGTH_MM)
        )
    iq += noise * (rng.normal(size=iq.shape) + 1j * rng.normal(size=iq.shape))
    return RadarFrames(
        t_s=t0_s + t,
        iq=iq.astype(np.complex64),
        range_start_m=RANGE_START_M,
        range_step_m=RANGE_STEP_M,
        frame_rate_hz=FS_HZ,
    )


def split(fr: RadarFrames, size: int) -> list[RadarFrames]:
    """Cut a batch into consecutive batches of `size` frames."""
    return [
        RadarFrames(
            fr.t_s[i : i + size],
            fr.iq[i : i + size],
            fr.range_start_m,
            fr.range_step_m,
            fr.frame_rate_hz,
        )
        for i in range(0, fr.n_frames, size)
    ]
