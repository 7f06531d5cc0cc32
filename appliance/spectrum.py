"""Spectral helpers shared by the respiration, heart-rate and module-front estimators."""

from __future__ import annotations

import numpy as np

__all__ = ["peak_hz"]


def peak_hz(f: np.ndarray, power: np.ndarray) -> float:
    """The frequency of a spectrum's highest bin, refined between bins, Hz.

    Parabolic interpolation of the peak on log power (Gaussian interpolation: exact for a
    Gaussian-shaped peak, close for a Hann-windowed sinusoid), clipped to half a bin.

    Args:
        f: (n,) evenly spaced frequencies, Hz.
        power: (n,) power at each, > 0 somewhere.
    """
    i = int(np.argmax(power))
    fi = float(f[i])
    if 0 < i < len(power) - 1:
        y0, y1, y2 = np.log(power[i - 1 : i + 2] + 1e-30)
        den = y0 - 2 * y1 + y2
        if den < 0:
            fi += float(np.clip(0.5 * (y0 - y2) / den, -0.5, 0.5)) * float(f[1] - f[0])
    return fi
