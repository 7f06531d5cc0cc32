"""What the ring shows: the sunrise curve, the steady modes, and the dither that makes 8 bits do.

A frame is a float array `(n_leds, 3)` of linear drive levels in 8-bit units (0.0–255.0, R, G, B);
a `Dither` turns it into the `uint8` frame a `LedRing` shows. Everything here is pure.

The sunrise runs over `duration_s` ending at the set time. Its progress p (0 at the start, 1 at
the set time) drives both
- the lightness, L* = 100·p, shown as luminance Y(L*) (`lightness_to_luminance`), so every minute
  looks as much brighter as the one before; the drive level of the brightest channel is
  255 · max_brightness · Y;
- the colour temperature, from `start_k` (1800 K: a deep, dim red-orange) to `end_k` (4000 K: a
  warm white), evenly in mireds (`mired_interpolate`), along the Planckian locus (`cct_to_rgb`).
Both rise with p, so the light never dims. After the set time the frame stays at the end.

In the first minutes the wanted level is below one 8-bit step (255 · Y(1 %) ≈ 0.28): rounding
would give darkness, then a visible jump. `Dither` is a per-LED, per-channel first-order
sigma-delta (error feedback over frames, Floyd & Steinberg 1976 in one dimension, over time):
the running mean of an LED's output stays within 1/N of the wanted level after N frames. Each
LED starts from a different residual (a golden-ratio sequence), so at a sub-step level a spread
share of the LEDs is lit in each frame, not all or none; the ring's mean per frame tracks the
level too. The faster the frames, the less the dither shows (`DITHER_MAX_LSB`).

References:
    Floyd, R. W., Steinberg, L. (1976). An adaptive algorithm for spatial greyscale.
    Proceedings of the Society for Information Display 17(2), 75–77.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from hardware.light.colour import cct_to_rgb, lightness_to_luminance, mired_interpolate

__all__ = [
    "DITHER_MAX_LSB",
    "FULL_SCALE",
    "Dither",
    "LightMode",
    "SunriseCurve",
    "night_frame",
    "reading_frame",
    "solid_frame",
    "sunrise_frame",
]

FULL_SCALE = 255.0
"""Drive level of a fully lit channel, 8-bit units."""

DITHER_MAX_LSB = 16.0
"""Below this brightest-channel level (8-bit units) single steps are visible in the dark: there
the controller asks for fast frames so the dither is seen as a steady level, not a flicker."""

LightMode = Literal["off", "sunrise", "reading", "night"]
"""What the ring is doing."""

FloatFrame = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SunriseCurve:
    """The sunrise's shape, as a function of its progress p in [0, 1].

    Attributes:
        start_k: Colour temperature at the start, kelvin (≥ 1667).
        end_k: Colour temperature at the set time, kelvin.
    """

    start_k: float = 1800.0
    end_k: float = 4000.0

    def luminance(self, p: float) -> float:
        """Relative luminance (0–1) at progress `p`: Y(L* = 100·p), monotone non-decreasing."""
        return lightness_to_luminance(p)

    def colour_k(self, p: float) -> float:
        """Colour temperature at progress `p`, kelvin, even in mireds."""
        return mired_interpolate(self.start_k, self.end_k, p)


def _progress(t_s: float, start_s: float, duration_s: float) -> float:
    if duration_s <= 0.0:
        return 1.0 if t_s >= start_s else 0.0
    return min(1.0, max(0.0, (t_s - start_s) / duration_s))


def solid_frame(rgb: npt.ArrayLike, level: float, n_leds: int) -> FloatFrame:
    """Every LED at colour `rgb` (linear, largest channel ≤ 1) times `level`, 8-bit units.

    Args:
        rgb: Linear RGB, shape (3,), each 0–1.
        level: Drive level of a channel at 1, fraction of full scale, clipped to [0, 1].
        n_leds: Number of LEDs, ≥ 1.

    Returns:
        Shape (n_leds, 3), float64, 0–255.
    """
    lv = min(1.0, max(0.0, float(level)))
    colour = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0) * (FULL_SCALE * lv)
    return np.tile(colour, (n_leds, 1))


def sunrise_frame(
    t_s: float,
    start_s: float,
    duration_s: float,
    n_leds: int,
    max_brightness: float,
    curve: SunriseCurve | None = None,
) -> FloatFrame:
    """The sunrise at time `t_s`, before dithering.

    Args:
        t_s: Now, UTC epoch seconds.
        start_s: When the sunrise starts (the set time minus `duration_s`), UTC epoch seconds.
        duration_s: Length of the sunrise, seconds (≥ 0; 0 is a step to full at `start_s`).
        n_leds: Number of LEDs, ≥ 1.
        max_brightness: Drive level of the brightest channel at the end, fraction 0–1.
        curve: Colour temperatures; None means 1800 K → 4000 K.

    Returns:
        Shape (n_leds, 3), float64, 8-bit units: all zero before `start_s`, the end frame from
        `start_s + duration_s` on.
    """
    c = curve or SunriseCurve()
    p = _progress(t_s, start_s, duration_s)
    if p <= 0.0:
        return np.zeros((n_leds, 3))
    return solid_frame(cct_to_rgb(c.colour_k(p)), max_brightness * c.luminance(p), n_leds)


def reading_frame(n_leds: int, brightness: float, t_k: float = 3000.0) -> FloatFrame:
    """A warm white reading light: colour `t_k` kelvin, brightest channel at `brightness` (0–1)."""
    return solid_frame(cct_to_rgb(t_k), brightness, n_leds)


def night_frame(n_leds: int, brightness: float) -> FloatFrame:
    """A dim red night light: red only (no blue, little to see by and little to wake you).

    Args:
        n_leds: Number of LEDs, ≥ 1.
        brightness: Red drive level, fraction 0–1 (a few hundredths is plenty in the dark).
    """
    return solid_frame((1.0, 0.0, 0.0), brightness, n_leds)


def _golden_residuals(n: int) -> FloatFrame:
    """Start residuals in [-0.5, 0.5), spread over the LEDs and channels by the golden ratio."""
    k = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    return np.asarray(np.mod(k * 0.6180339887498949, 1.0) - 0.5, dtype=np.float64)


class Dither:
    """Temporal error-feedback dither from float frames to uint8 frames.

    `update(frame)` returns round(frame + residual) clipped to 0–255 and keeps the rounding error
    as the next residual, so over N frames at a steady wanted level v the mean output is within
    1/N of v (|residual| ≤ 0.5 at all times: a clipped channel cannot wind up). A wanted level
    that is a whole step is shown exactly.

    Args:
        n_leds: Number of LEDs, ≥ 1.
    """

    def __init__(self, n_leds: int) -> None:
        if n_leds < 1:
            raise ValueError(f"n_leds must be ≥ 1, got {n_leds!r}")
        self._residual = _golden_residuals(n_leds)

    def update(self, frame: npt.ArrayLike) -> npt.NDArray[np.uint8]:
        """Quantize one frame.

        Args:
            frame: Wanted levels, shape (n_leds, 3), 8-bit units (values outside 0–255 clip).

        Returns:
            Shape (n_leds, 3), uint8.
        """
        want = np.asarray(frame, dtype=np.float64)
        if want.shape != self._residual.shape:
            raise ValueError(f"frame shape {want.shape} != {self._residual.shape}")
        v = want + self._residual
        q = np.clip(np.rint(v), 0.0, FULL_SCALE)
        # A whole step is shown as it is (off stays off, full stays full) and keeps its residual.
        whole = want == np.rint(want)
        q = np.where(whole, np.clip(want, 0.0, FULL_SCALE), q)
        self._residual = np.where(whole, self._residual, np.clip(v - q, -0.5, 0.5))
        return q.astype(np.uint8)

    def reset(self) -> None:
        """Forget the residuals (a new scene starts from the spread start)."""
        self._residual = _golden_residuals(self._residual.shape[0])
