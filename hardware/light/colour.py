"""Colour of a blackbody, and perceptually even brightness, for the LED ring.

Two small conversions, both pure:

- `cct_to_rgb`: a correlated colour temperature (kelvin) to a linear-light RGB triple. The
  chromaticity of the Planckian locus comes from the cubic-spline fit of Kang et al. (2002), the
  1931 CIE xy of a blackbody within ~1e-3 over 1667–25000 K; xy at unit luminance is turned into
  CIE XYZ and then into linear sRGB with the IEC 61966-2-1 matrix. Out-of-gamut (negative) blue
  at the red end is clipped to 0, and the triple is scaled so its largest channel is 1.
  WS2812 primaries are close to, not exactly, sRGB's: the result is an approximation of the hue,
  good enough for a bedside sunrise, not a calibrated colour.
- `lightness_to_luminance`: CIE 1976 lightness L* (0–100, here as 0–1) to relative luminance Y.
  An LED's PWM duty is linear in luminance, so driving it with Y(L*) makes equal steps of L*
  (equal time steps of the sunrise) look equally brighter (CIE 15:2004).

References:
    Kang, B., Moon, O., Hong, C., Lee, H., Cho, B., Kim, Y. (2002). Design of advanced color
    temperature control system for HDTV applications. Journal of the Korean Physical Society
    41(6), 865–871.
    IEC 61966-2-1:1999, Multimedia systems and equipment – Colour measurement and management –
    Part 2-1: Default RGB colour space – sRGB.
    CIE 15:2004, Colorimetry, 3rd edition (L* and its inverse).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "CCT_MAX_K",
    "CCT_MIN_K",
    "cct_to_rgb",
    "cct_to_xy",
    "lightness_to_luminance",
    "mired_interpolate",
    "relative_luminance",
    "xy_to_linear_srgb",
]

CCT_MIN_K = 1667.0
"""Lowest temperature the spline covers, kelvin."""
CCT_MAX_K = 25000.0
"""Highest temperature the spline covers, kelvin."""

# XYZ -> linear sRGB (D65), IEC 61966-2-1.
_XYZ_TO_SRGB = np.array(
    [
        [3.2406, -1.5372, -0.4986],
        [-0.9689, 1.8758, 0.0415],
        [0.0557, -0.2040, 1.0570],
    ]
)
# Rec. 709 / sRGB luminance weights of linear R, G, B.
_LUMA = np.array([0.2126, 0.7152, 0.0722])


def cct_to_xy(t_k: float) -> tuple[float, float]:
    """CIE 1931 (x, y) chromaticity of a blackbody at `t_k` kelvin (Kang et al. 2002).

    Args:
        t_k: Colour temperature, kelvin, clipped to [1667, 25000].

    Returns:
        (x, y), dimensionless.
    """
    t = float(np.clip(t_k, CCT_MIN_K, CCT_MAX_K))
    if t <= 4000.0:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222.0:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000.0:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def xy_to_linear_srgb(x: float, y: float) -> npt.NDArray[np.float64]:
    """Linear sRGB of chromaticity (x, y) at luminance Y = 1, unclipped, shape (3,)."""
    xyz = np.array([x / y, 1.0, (1.0 - x - y) / y])
    return np.asarray(_XYZ_TO_SRGB @ xyz, dtype=np.float64)


def cct_to_rgb(t_k: float) -> npt.NDArray[np.float64]:
    """Linear RGB of a blackbody at `t_k`, negatives clipped, largest channel 1, shape (3,).

    Args:
        t_k: Colour temperature, kelvin (1667–25000; clipped outside).
    """
    rgb = np.clip(xy_to_linear_srgb(*cct_to_xy(t_k)), 0.0, None)
    return np.asarray(rgb / rgb.max(), dtype=np.float64)


def relative_luminance(rgb: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Relative luminance Y of linear RGB (last axis of size 3), same scale as the input."""
    return np.asarray(np.asarray(rgb, dtype=np.float64) @ _LUMA, dtype=np.float64)


def lightness_to_luminance(lightness: float) -> float:
    """Relative luminance Y (0–1) of CIE lightness L* given as a fraction (L*/100, 0–1).

    The inverse of CIE 1976 L*: Y = ((L* + 16) / 116)^3 above L* = 8, and the linear toe
    Y = L* / 903.3 below it. Monotone increasing, 0 -> 0, 1 -> 1.

    Args:
        lightness: L*/100, clipped to [0, 1].
    """
    l_star = 100.0 * min(1.0, max(0.0, float(lightness)))
    if l_star > 8.0:
        return ((l_star + 16.0) / 116.0) ** 3
    return l_star / 903.2962962962963  # 24389/27, the CIE's exact kappa


def mired_interpolate(t0_k: float, t1_k: float, frac: float) -> float:
    """Temperature a fraction `frac` (0–1) of the way from `t0_k` to `t1_k`, even in mireds.

    Equal steps in mireds (1e6 / K) are closer to equal perceived steps of colour than equal
    steps in kelvin, which would rush through the reds and crawl through the whites.
    """
    f = min(1.0, max(0.0, float(frac)))
    m = (1e6 / t0_k) * (1.0 - f) + (1e6 / t1_k) * f
    return 1e6 / m
