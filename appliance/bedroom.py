"""The morning report's bedroom insight: the night's ranges and the time outside recommendations.

A pure function of the night's environment readings and the epochs scored asleep. Each reading
stands for the time until the next one, at most `max_hold_s` (so a sensor outage is not counted
as time in or out of range). Temperature and humidity are judged over the whole night's readings,
light only over the epochs asleep.

The recommended ranges and where they come from:

- Temperature 16–20 °C. The Sleep Foundation recommends a bedroom of about 15.6–19.4 °C
  (60–67 °F); a warm bedroom increases wakefulness and decreases slow-wave and REM sleep, a cold
  one mostly affects REM and cardiac responses: Okamoto-Mizuno K, Mizuno K. Effects of thermal
  environment on sleep and circadian rhythm. J Physiol Anthropol 2012;31:14,
  doi:10.1186/1880-6805-31-14.
- Relative humidity 40–60 %. The "optimum zone" that minimises both the survival of bacteria and
  viruses and of mites and fungi: Arundel AV, Sterling EM, Biggin JH, Sterling TD. Indirect
  health effects of relative humidity in indoor environments. Environ Health Perspect
  1986;65:351–361, doi:10.1289/ehp.8665351; the US EPA advises keeping indoor humidity below 60 %
  ("A Brief Guide to Mold, Moisture and Your Home", EPA 402-K-02-003), and ASHRAE Standard 55
  bounds comfort humidity from above.
- Light above 1 lx while asleep. A bedside light during sleep (~40 lx) made sleep shallower and
  more fragmented: Cho JR, Joo EY, Koo DL, Hong SB. Let there be no light: the effect of bedside
  light on sleep quality and background electroencephalographic rhythms. Sleep Med
  2013;14(12):1422–1425, doi:10.1016/j.sleep.2013.09.007. In home measurements, light at night
  of 3 lx or more (and 5 lx or more) was associated with lower melatonin and with obesity and
  dyslipidaemia: Obayashi K, Saeki K, Iwamoto J, et al. Exposure to light at night, nocturnal
  urinary melatonin excretion, and obesity/dyslipidemia in the elderly. J Clin Endocrinol Metab
  2013;98(1):337–344, doi:10.1210/jc.2012-2874. The 1 lx threshold is deliberately below those
  levels: a dark bedroom is well under it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "HUMIDITY_RANGE_PCT",
    "LIGHT_ASLEEP_MAX_LX",
    "TEMPERATURE_RANGE_C",
    "BedroomInsight",
    "Span",
    "bedroom_insight",
]

TEMPERATURE_RANGE_C = (16.0, 20.0)
HUMIDITY_RANGE_PCT = (40.0, 60.0)
LIGHT_ASLEEP_MAX_LX = 1.0


@dataclass(frozen=True, slots=True)
class Span:
    """The lowest and highest valid value of a quantity over the night."""

    min: float
    max: float


@dataclass(frozen=True, slots=True)
class BedroomInsight:
    """The night's bedroom, for the morning report.

    Attributes:
        temperature_c: Range of temperature, °C; None without a valid reading.
        humidity_pct: Range of relative humidity, %.
        lux: Range of illuminance, lx.
        lux_asleep: Range of illuminance during the epochs asleep, lx.
        minutes_too_cold: Minutes below 16 °C.
        minutes_too_warm: Minutes above 20 °C.
        minutes_too_dry: Minutes below 40 %RH.
        minutes_too_humid: Minutes above 60 %RH.
        minutes_light_asleep: Minutes asleep with more than 1 lx.
        minutes_climate_covered: Minutes with a valid temperature reading.
        minutes_asleep_covered: Minutes asleep with a valid light reading.
    """

    temperature_c: Span | None
    humidity_pct: Span | None
    lux: Span | None
    lux_asleep: Span | None
    minutes_too_cold: float
    minutes_too_warm: float
    minutes_too_dry: float
    minutes_too_humid: float
    minutes_light_asleep: float
    minutes_climate_covered: float
    minutes_asleep_covered: float


def _valid(values: Sequence[float | None]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def _span(values: Sequence[float | None]) -> Span | None:
    ok = _valid(values)
    return Span(min(ok), max(ok)) if ok else None


def _holds(t_s: Sequence[float], end_s: float, max_hold_s: float) -> list[float]:
    """Seconds each reading stands for: until the next reading (or `end_s`), at most max_hold."""
    out = []
    for i, t in enumerate(t_s):
        nxt = t_s[i + 1] if i + 1 < len(t_s) else end_s
        out.append(min(max(0.0, nxt - t), max_hold_s))
    return out


def _minutes_outside(
    values: Sequence[float | None], holds: Sequence[float], lo: float, hi: float
) -> tuple[float, float, float]:
    below = above = covered = 0.0
    for v, h in zip(values, holds, strict=True):
        if v is None or not math.isfinite(v):
            continue
        covered += h
        if v < lo:
            below += h
        elif v > hi:
            above += h
    return below / 60.0, above / 60.0, covered / 60.0


def _value_at(
    t_s: Sequence[float], values: Sequence[float | None], at_s: float, max_hold_s: float
) -> float | None:
    """The reading in force at `at_s`: the latest at or before it, if valid and fresh enough."""
    current: float | None = None
    since = -math.inf
    for t, v in zip(t_s, values, strict=True):
        if t > at_s:
            break
        current, since = v, t
    if current is None or not math.isfinite(current) or at_s - since >= max_hold_s:
        return None
    return current


def bedroom_insight(
    t_s: Sequence[float],
    temperature_c: Sequence[float | None],
    humidity_pct: Sequence[float | None],
    lux: Sequence[float | None],
    asleep_epochs_s: Sequence[float],
    *,
    epoch_s: float = 30.0,
    max_hold_s: float = 120.0,
    end_s: float | None = None,
) -> BedroomInsight:
    """Summarise a night's bedroom against the recommended ranges (module docstring).

    Args:
        t_s: Reading times, UTC epoch seconds, ascending, shape (n,).
        temperature_c: Temperature per reading, °C; None/NaN = invalid, shape (n,).
        humidity_pct: Relative humidity per reading, %; None/NaN = invalid, shape (n,).
        lux: Illuminance per reading, lx; None/NaN = invalid, shape (n,).
        asleep_epochs_s: Start times of the epochs scored asleep (Light, Deep or REM), UTC s.
        epoch_s: Epoch length, s.
        max_hold_s: Longest a reading stands for, s (4 sampling intervals by default).
        end_s: End of the night, UTC s; None = the last reading's time (it then stands for
            nothing).

    Returns:
        The insight; ranges are None and minutes 0 where there is no valid data.

    Raises:
        ValueError: the sequences differ in length or the times are not ascending.
    """
    n = len(t_s)
    if not (len(temperature_c) == len(humidity_pct) == len(lux) == n):
        raise ValueError("readings must have one value of each quantity per time")
    if any(b < a for a, b in itertools.pairwise(t_s)):
        raise ValueError("reading times must be ascending")
    last = t_s[-1] if n else 0.0
    holds = _holds(t_s, last if end_s is None else end_s, max_hold_s)
    cold, warm, covered = _minutes_outside(temperature_c, holds, *TEMPERATURE_RANGE_C)
    dry, humid, _ = _minutes_outside(humidity_pct, holds, *HUMIDITY_RANGE_PCT)
    asleep_lux = [_value_at(t_s, lux, e + epoch_s / 2.0, max_hold_s) for e in asleep_epochs_s]
    lit = sum(1 for v in asleep_lux if v is not None and v > LIGHT_ASLEEP_MAX_LX)
    seen = sum(1 for v in asleep_lux if v is not None)
    return BedroomInsight(
        temperature_c=_span(temperature_c),
        humidity_pct=_span(humidity_pct),
        lux=_span(lux),
        lux_asleep=_span(asleep_lux),
        minutes_too_cold=cold,
        minutes_too_warm=warm,
        minutes_too_dry=dry,
        minutes_too_humid=humid,
        minutes_light_asleep=lit * epoch_s / 60.0,
        minutes_climate_covered=covered,
        minutes_asleep_covered=seen * epoch_s / 60.0,
    )
