"""When, inside the smart window, to ring: the latest wakeable moment that is still safe.

The smart window gives the alarm a choice. Ringing at the first light-sleep epoch (the naive
policy) wakes the user gently but throws away the rest of the window; waiting keeps minutes of
sleep but risks the sleeper drifting into deep or REM sleep, from which the deadline then wakes
them. `LatestSafePolicy` makes that trade-off explicitly, as a finite-horizon optimal-stopping
problem on a Markov model of the sleeper's stage transitions (Ferguson, "Optimal Stopping and
Applications", ch. 1–3; backward induction):

- the stage of each coming 30-s epoch follows a 4-state Markov chain (wake, light, deep, REM)
  whose transition matrix is a Dirichlet posterior: prior pseudo-counts from typical bout lengths
  (wake ~2 min, light ~8 min, deep ~10 min, REM ~12 min, of the order Kishi et al. 2008 report;
  doi:10.1152/ajpregu.00062.2008) plus tonight's own transitions of the live stager;
- ringing at time t in stage s is worth the sleep kept, (t − window start) in minutes, minus a
  penalty `bad_wake_min` if s is deep or REM (the grogginess of a wake from deep/REM sleep, in
  minutes of sleep it is worth giving up to avoid it; default = the window length, so a bad wake
  cancels the whole benefit of the window); the deadline is forced, in whatever stage it finds;
- at a wakeable moment the policy compares ringing now with the value of waiting, computed by
  backward induction from the deadline over the epochs left (stopping allowed only in wake or
  light), and rings iff ringing now is worth at least as much.

The current stage is the live stager's probability vector (a belief), so a light epoch with a
high deep/REM probability ("a transition predicted") is less safe to wait on; the future is
valued as if stages will be known (the QMDP approximation; Littman, Cassandra & Kaelbling 1995).
Waiting is naturally worth it early in the window (time to recover from a deep/REM excursion) and
not near the end; a movement burst seen by the radar counts as a wakeable moment (an arousal).

Everything here is pure and cheap (a 4×4 matrix times ≤ 90 steps per decision). The policy only
ever brings the ring earlier: the deadline is the alarm's own, independent path.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Protocol

import numpy as np

from appliance.frames import EPOCH_S, StagedEpoch

__all__ = [
    "PRIOR_BOUT_MIN",
    "FirstWakeablePolicy",
    "LatestSafePolicy",
    "WakePolicy",
    "belief_of",
]

_N = 4
_WAKEABLE = np.array([True, True, False, False])
PRIOR_BOUT_MIN: tuple[float, float, float, float] = (2.0, 8.0, 10.0, 12.0)
"""Typical bout length of wake, light, deep and REM in the morning hours, minutes (the prior)."""
# Where a bout goes when it ends (rows: from wake, light, deep, REM), before tonight's counts.
_PRIOR_EXIT = np.array(
    [
        [0.0, 0.9, 0.0, 0.1],
        [0.35, 0.0, 0.35, 0.3],
        [0.2, 0.8, 0.0, 0.0],
        [0.5, 0.5, 0.0, 0.0],
    ]
)
_PRIOR_WEIGHT = 40.0  # pseudo-epochs per row: tonight's counts outweigh the prior after ~1 h
_HISTORY = 16 * 120  # transitions remembered: the last 16 h of epochs


def belief_of(epoch: StagedEpoch) -> np.ndarray:
    """The stage belief (wake, light, deep, REM) of a staged epoch, summing to 1.

    The stager's probabilities when they are valid, else all mass on the epoch's stage (uniform
    if it has none).
    """
    p = np.asarray(epoch.probs, np.float64)
    if p.shape == (_N,) and np.all(np.isfinite(p)) and np.all(p >= 0) and p.sum() > 0:
        out: np.ndarray = p / p.sum()
        return out
    b = np.zeros(_N)
    if 0 <= int(epoch.stage) < _N:
        b[int(epoch.stage)] = 1.0
    else:
        b[:] = 1.0 / _N
    return b


class WakePolicy(Protocol):
    """Decides, at a wakeable moment in the smart window, whether to ring now."""

    def observe(self, epoch: StagedEpoch) -> None:
        """Learn from one live-stager epoch (called for every epoch of the night)."""
        ...

    def ring_now(
        self, belief: np.ndarray, now_s: float, window_start_s: float, set_s: float
    ) -> bool:
        """Return True to ring now (`belief`: (4,) wake/light/deep/REM, sums to 1)."""
        ...


class FirstWakeablePolicy:
    """The naive policy: ring at the first wakeable moment in the window."""

    def observe(self, epoch: StagedEpoch) -> None:
        """Nothing to learn."""

    def ring_now(
        self, belief: np.ndarray, now_s: float, window_start_s: float, set_s: float
    ) -> bool:
        """Always True."""
        return True


class LatestSafePolicy:
    """Ring at the latest wakeable moment that is still safe (module docstring).

    Args:
        bad_wake_min: Penalty of ringing in deep or REM sleep, minutes of kept sleep, > 0; None =
            the window's length at each decision.
        prior_bout_min: Prior typical bout lengths (wake, light, deep, REM), minutes, each ≥ 0.5.
        prior_weight: Pseudo-epochs of the prior per row, > 0.

    Raises:
        ValueError: a parameter out of range.
    """

    def __init__(
        self,
        bad_wake_min: float | None = None,
        *,
        prior_bout_min: tuple[float, float, float, float] = PRIOR_BOUT_MIN,
        prior_weight: float = _PRIOR_WEIGHT,
    ) -> None:
        if bad_wake_min is not None and not (math.isfinite(bad_wake_min) and bad_wake_min > 0):
            raise ValueError(f"bad_wake_min must be > 0, got {bad_wake_min!r}")
        if len(prior_bout_min) != _N or not all(b >= 0.5 for b in prior_bout_min):
            raise ValueError("prior_bout_min: four bout lengths of at least 0.5 min")
        if not prior_weight > 0:
            raise ValueError("prior_weight must be > 0")
        self._bad_wake_min = bad_wake_min
        stay = np.array([1.0 - EPOCH_S / 60.0 / b for b in prior_bout_min])
        prior = _PRIOR_EXIT * (1.0 - stay)[:, None]
        prior[np.arange(_N), np.arange(_N)] = stay
        self._prior = prior * prior_weight
        self._pairs: deque[tuple[int, int]] = deque(maxlen=_HISTORY)
        self._last: tuple[int, int] | None = None  # (index, stage) of the last epoch seen

    def observe(self, epoch: StagedEpoch) -> None:
        """Count the transition from the previous epoch if both are stages and consecutive."""
        stage = int(epoch.stage)
        last = self._last
        self._last = (int(epoch.index), stage)
        if last is None or not (0 <= stage < _N and 0 <= last[1] < _N):
            return
        if int(epoch.index) == last[0] + 1:
            self._pairs.append((last[1], stage))

    def transitions(self) -> np.ndarray:
        """The posterior-mean transition matrix, (4, 4), rows sum to 1 (from → to)."""
        counts = self._prior.copy()
        for a, b in self._pairs:
            counts[a, b] += 1.0
        t: np.ndarray = counts / counts.sum(axis=1, keepdims=True)
        return t

    def values(
        self, now_s: float, window_start_s: float, set_s: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Backward induction from the deadline.

        Returns:
            (stop, wait): (4,) value of ringing now in each stage, and of waiting from each stage,
            minutes of kept sleep net of the bad-wake penalty.
        """
        window_min = max((set_s - window_start_s) / 60.0, 1e-9)
        penalty = self._bad_wake_min if self._bad_wake_min is not None else window_min
        bad = np.where(_WAKEABLE, 0.0, penalty)
        t = self.transitions()
        # Decision points: now and every epoch end after it that is strictly before the deadline.
        k_max = max(0, math.ceil((set_s - now_s) / EPOCH_S) - 1)
        value = window_min - bad  # the forced deadline ring, one step after the last decision
        for k in range(k_max, 0, -1):
            gain = (now_s + k * EPOCH_S - window_start_s) / 60.0
            cont = t @ value
            value = np.where(_WAKEABLE, np.maximum(gain - bad, cont), cont)
        stop = (now_s - window_start_s) / 60.0 - bad
        return stop, t @ value

    def ring_now(
        self, belief: np.ndarray, now_s: float, window_start_s: float, set_s: float
    ) -> bool:
        """Ring iff the expected value of ringing now is at least that of waiting."""
        if now_s >= set_s:
            return True
        stop, wait = self.values(now_s, window_start_s, set_s)
        b = np.asarray(belief, np.float64)
        return bool(b @ stop >= b @ wait)
