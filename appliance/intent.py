"""Sleep intent: when the user starts *trying* to sleep, and when the night's final wake is.

Two parts, as DESIGN.md lays out:

- `IntentScorer` (live, causal) scores each epoch in [0, 1]: high when the user is in bed, in the
  dark, still and breathing regularly; low while reading (lamp on), watching TV (5–50 lx of
  flicker) or fidgeting. Lights going out is the strongest hint: with a light level the score is
  `present · (0.6 · dark + 0.4 · stillness · (0.5 + 0.5 · resp_q))`, where
  dark = 1 / (1 + (lux / 1 lx)²) (a dark bedroom is < 1 lx; a lamp 50–300 lx; a TV 5–50 lx);
  without one it is `present · stillness · (0.5 + 0.5 · resp_q)`. A user lying well off their
  usual distance (sitting up against the headboard) scores lower.
- `find_intent` (morning) segments the night's score series with a penalised change-point method
  (PELT, Killick et al. 2012, doi:10.1080/01621459.2012.737745, via `ruptures`, Truong et al. 2020,
  doi:10.1016/j.sigpro.2019.107299) and returns the start of the first sustained high segment
  ("trying to sleep") and the end of the last one ("final wake").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from appliance.epochs import FEATURE_NAMES
from appliance.frames import EpochFeatures
from appliance.staging import MIN_PRESENT_FRACTION

__all__ = ["IntentScorer", "IntentTimes", "darkness", "find_intent"]

_I_MOVE = FEATURE_NAMES.index("move_frac")
_I_Q = FEATURE_NAMES.index("resp_q")


_LIGHT_WEIGHT = 0.6
_DARK_LUX = 1.0


def darkness(lux: float) -> float:
    """How dark the bedroom is, in [0, 1]: 1 / (1 + (lux / 1 lx)²).

    Args:
        lux: Illuminance at the device, lx (>= 0).

    Returns:
        ~1 below 0.3 lx, 0.5 at 1 lx, 0.04 at 5 lx (a dim TV), < 0.001 under a lamp.
    """
    return 1.0 / (1.0 + (max(lux, 0.0) / _DARK_LUX) ** 2)


class IntentScorer:
    """Per-epoch sleep-intent score in [0, 1] from presence, movement, respiration, distance, light.

    The user's usual lying distance is the running median of the distances of still epochs;
    an epoch more than 0.25 m from it counts half (sitting up, at the edge of the bed).
    """

    def __init__(self) -> None:
        self._still_d: list[float] = []

    def update(self, ep: EpochFeatures, lux: float | None = None) -> float:
        """Score one epoch (causal: uses only its own and past features).

        Args:
            ep: The epoch's features.
            lux: Bedroom illuminance during the epoch, lx; None = `ep.illuminance_lux` (None
                without a light sensor: the score then rests on the body alone).

        Returns:
            The score in [0, 1].
        """
        if ep.present_fraction < MIN_PRESENT_FRACTION:
            return 0.0
        v = ep.values
        move = v[_I_MOVE] if math.isfinite(v[_I_MOVE]) else 1.0
        q = v[_I_Q] if math.isfinite(v[_I_Q]) else 0.0
        # A couple of moving seconds in an epoch (a page turned, a phone) already mean awake; the
        # epoch's own movement only, so the change points are not delayed by a trailing window.
        stillness = math.exp(-40.0 * move)
        body = stillness * (0.5 + 0.5 * q)
        if ep.distance_m is not None:
            if stillness > 0.8:
                self._still_d.append(ep.distance_m)
                del self._still_d[:-240]
            if len(self._still_d) >= 10:
                usual = float(np.median(self._still_d))
                if abs(ep.distance_m - usual) > 0.25:
                    body *= 0.5
        light = ep.illuminance_lux if lux is None else lux
        if light is None or not math.isfinite(light):
            return float(ep.present_fraction * body)
        dark = darkness(light)
        return float(ep.present_fraction * (_LIGHT_WEIGHT * dark + (1.0 - _LIGHT_WEIGHT) * body))


@dataclass(frozen=True, slots=True)
class IntentTimes:
    """Epoch indices (into the scored series) of trying-to-sleep and of the final wake.

    Attributes:
        intent_index: First epoch of the first sustained high-intent segment, or None.
        final_wake_index: Epoch after the last high-intent segment, or None.
        change_points: All change points found (segment ends, exclusive).
    """

    intent_index: int | None
    final_wake_index: int | None
    change_points: tuple[int, ...]


def find_intent(
    scores: np.ndarray, *, high: float = 0.6, min_size: int = 4, penalty: float = 1.5
) -> IntentTimes:
    """Find trying-to-sleep and final-wake in a night's intent scores.

    Args:
        scores: (n_epochs,) intent scores in [0, 1].
        high: A segment whose mean score reaches this is "trying to sleep / asleep".
        min_size: Shortest segment, epochs (4 = 2 min).
        penalty: PELT penalty per change point on the l2 cost (scores are in [0, 1]).

    Returns:
        The indices; None where there is no high segment.
    """
    import ruptures as rpt  # deferred: only the morning pass needs it

    x = np.asarray(scores, float)
    n = x.shape[0]
    if n == 0:
        return IntentTimes(None, None, ())
    if n < 2 * min_size:
        bkps = [n]
    else:
        bkps = (
            rpt.Pelt(model="l2", min_size=min_size, jump=1)
            .fit(x.reshape(-1, 1))
            .predict(pen=penalty)
        )
    starts = [0, *bkps[:-1]]
    means = [float(x[a:b].mean()) for a, b in zip(starts, bkps, strict=True)]
    highs = [i for i, m in enumerate(means) if m >= high]
    if not highs:
        return IntentTimes(None, None, tuple(int(b) for b in bkps))
    first, last = highs[0], highs[-1]
    final = int(bkps[last]) if bkps[last] < n else None
    return IntentTimes(int(starts[first]), final, tuple(int(b) for b in bkps))
