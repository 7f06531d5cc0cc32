"""Presence: a confidence score in [0, 1] that somebody is in range, with threshold and hysteresis.

The raw score of a second combines how far the strongest target's dynamic power stands above the
noise floor with how periodic its respiration band is (a breathing body is periodic; noise is
not). It is smoothed with a first-order filter, compared with a threshold with hysteresis, and
presence is held for `hold_s` after the score last crossed the threshold, so that a still, deeply
asleep sleeper (or one in a central apnea, when the chest hardly moves) is not dropped. Nothing in
an empty room can latch: the score only rises on a target that stands out of the floor.

References:
    Acconeer, "Presence detection" reference application (A121 documentation): intra-/inter-frame
    motion scores with a threshold; we add respiration periodicity as in breathing-based
    occupancy sensing (e.g. Kaltiokallio et al. 2014, doi:10.1109/TMC.2013.66 for RF occupancy).
"""

from __future__ import annotations

import math

from appliance.config import PresenceConfig
from appliance.frames import PresenceState, RadarSecond

__all__ = ["MOVING_MM_S", "PresenceDetector"]

MOVING_MM_S = 6.0
"""Movement energy above which a present target counts as moving, mm/s."""

_SMOOTH_TAU_S = 4.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class PresenceDetector:
    """Turns `RadarSecond`s into `PresenceState`s.

    Args:
        cfg: Threshold, hysteresis and hold time.
    """

    def __init__(self, cfg: PresenceConfig | None = None) -> None:
        self.cfg = cfg or PresenceConfig()
        self._score = 0.0
        self._present = False
        self._last_above_s = -math.inf
        self._last_t_s: float | None = None

    @staticmethod
    def raw_score(sec: RadarSecond) -> float:
        """Score in [0, 1] of one second before smoothing."""
        best = 0.0
        for t in sec.targets:
            snr = _sigmoid((t.snr_db - 12.0) / 2.0)
            periodic = t.resp_quality if t.breath_rate_bpm is not None else 0.0
            moving = 1.0 if t.movement >= MOVING_MM_S and t.snr_db >= 12.0 else 0.0
            best = max(best, snr * (0.35 + 0.65 * max(periodic, moving)))
        return best

    def update(self, sec: RadarSecond) -> PresenceState:
        """Score one second and return the presence verdict."""
        dt = 1.0 if self._last_t_s is None else max(1e-3, sec.t_s - self._last_t_s)
        self._last_t_s = sec.t_s
        a = 1.0 - math.exp(-dt / _SMOOTH_TAU_S)
        self._score += a * (self.raw_score(sec) - self._score)
        thr, hyst = self.cfg.threshold, self.cfg.hysteresis
        if self._score >= thr:
            self._present = True
            self._last_above_s = sec.t_s
        elif (
            self._present
            and self._score < thr - hyst
            and sec.t_s - self._last_above_s > self.cfg.hold_s
        ):
            self._present = False
        state = "empty"
        if self._present:
            moving = any(t.movement >= MOVING_MM_S for t in sec.targets)
            state = "moving" if moving else "still"
        return PresenceState(
            t_s=sec.t_s, present=self._present, confidence=self._score, state=state
        )
