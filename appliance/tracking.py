"""Primary-user tracking: which of the targets the radar resolves is the user.

Every target the DSP resolves in a second (person or pet, `appliance.frames.Target`) is
associated, nearest first, with a track (gate `_GATE_M`); a track remembers its distance, its
recent breathing rates and amplitudes, and when it was last seen. The primary user is the nearest
sleeper on the user's side of the bed (`BedConfig.user_zone_m`; on the far side, the farthest). The
tracker keeps its choice while the track stays in the zone and breathes like the user, and
re-decides when:

- the user's track leaves the zone or is lost for `_LOST_AFTER_S`;
- the track breathes like a pet: a rate above `_PET_BPM` with a shallow chest (cats breathe 20–40
  /min with 1–2 mm of excursion; resting adults 10–20 /min with 3–12 mm);
- its breathing pattern changes abruptly: the 20-s rate jumps by more than `_JUMP_FRAC` from the
  user's rate of the previous minutes while the distance stays (another person's rhythm now
  dominates the bin), which lowers `user_confidence` and, when it lasts, hands the seat to
  another track.

Seconds whose data in the user's zone belong to someone else are marked
`attribution="other"`, with `user=None`, so that the epoch builder counts them out of the user's
presence and the session does not score them as the user's night.

The tracker also learns where the user lies: the running median of the user's distance while
breathing still (`learned_user_m`) is what the daemon keeps in the store between nights
(`learned_from_store` / the setting `bed.learned_user_m`), and it recentres the zone slowly, night
after night, as the bed or the device moves.

References:
    Bar-Shalom Y, Li XR, Kirubarajan T (2001). Estimation with Applications to Tracking and
    Navigation. Wiley (nearest-neighbour gating, track maintenance). doi:10.1002/0471221279
    Acconeer AB. "Presence detector" and "Breathing" reference applications, Acconeer
    Exploration Tool handbook, docs.acconeer.com (distance-gated breathing).
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import deque
from dataclasses import dataclass, field

from appliance.config import BedConfig
from appliance.frames import PresenceState, RadarSecond, Target, TrackedSecond

__all__ = ["UserTracker", "learned_zone"]

log = logging.getLogger(__name__)

_GATE_M = 0.2
"""Largest distance step, per second, of one target's track, metres."""
_LOST_AFTER_S = 30.0
"""A track unseen for this long is dropped, seconds."""
_PET_BPM = 23.0
"""A breathing rate above this, with a shallow chest, is a pet's, breaths/min."""
_PET_AMP_MM = 0.9
"""Respiration RMS below which a fast breather counts as a pet, mm."""
_JUMP_FRAC = 0.45
"""A 20-s breathing rate this far (relative) from the user's recent rate is an abrupt change."""
_STILL_MOVEMENT = 1.5
"""Movement energy below which a second counts as lying still, mm/s."""
_LEARN_WEIGHT = 0.1
"""Weight of one night's still-breathing distance in the learned bed location."""


@dataclass(slots=True)
class _Track:
    distance_m: float
    first_s: float
    last_s: float
    rates: deque[float] = field(default_factory=lambda: deque(maxlen=300))
    amps: deque[float] = field(default_factory=lambda: deque(maxlen=30))
    pet_votes: int = 0
    jump_s: float = 0.0

    def recent_rate(self, n: int) -> float | None:
        xs = list(self.rates)[-n:]
        return statistics.median(xs) if len(xs) >= max(3, n // 3) else None

    def pet_like(self) -> bool:
        rate = self.recent_rate(20)
        amp = statistics.median(self.amps) if self.amps else math.inf
        return rate is not None and rate > _PET_BPM and amp < _PET_AMP_MM


def learned_zone(bed: BedConfig, learned_user_m: float | None) -> tuple[float, float]:
    """The user's zone, recentred on the learned still-breathing distance.

    Args:
        bed: The configured bed.
        learned_user_m: Where the user was seen breathing still on past nights, metres, or None.

    Returns:
        (nearest, farthest) distance of the user's zone, metres.
    """
    lo, hi = bed.user_zone_m()
    if learned_user_m is None or not lo - 0.3 <= learned_user_m <= hi + 0.3:
        return lo, hi
    # Keep the zone's width, move its centre half-way to where the user actually lies.
    shift = 0.5 * (learned_user_m - 0.5 * (lo + hi))
    return max(bed.user_min_m, lo + shift), min(bed.user_max_m, hi + shift)


class UserTracker:
    """Follows every target and chooses the primary user's each second.

    Args:
        bed: Where the bed and the user's side are.
        learned_user_m: The user's still-breathing distance learned on past nights, metres, or
            None (the store's setting `bed.learned_user_m`).
    """

    def __init__(self, bed: BedConfig | None = None, learned_user_m: float | None = None) -> None:
        self.bed = bed or BedConfig()
        self._prior_m = learned_user_m
        self.zone_m = learned_zone(self.bed, learned_user_m)
        self._tracks: list[_Track] = []
        self._user: _Track | None = None
        self._still_m: deque[float] = deque(maxlen=3600)

    @property
    def learned_user_m(self) -> float | None:
        """The bed's learned user distance: the prior moved towards tonight's still distance."""
        if len(self._still_m) < 60:
            return self._prior_m
        tonight = statistics.median(self._still_m)
        if self._prior_m is None:
            return tonight
        return (1.0 - _LEARN_WEIGHT) * self._prior_m + _LEARN_WEIGHT * tonight

    def _associate(self, sec: RadarSecond) -> list[tuple[Target, _Track]]:
        """Give each target a track (nearest unclaimed within the gate, else a new one)."""
        self._tracks = [k for k in self._tracks if sec.t_s - k.last_s <= _LOST_AFTER_S]
        if self._user is not None and self._user not in self._tracks:
            self._user = None
        free = list(self._tracks)
        pairs: list[tuple[Target, _Track]] = []
        for t in sec.targets:
            best = min(free, key=lambda k: abs(k.distance_m - t.distance_m), default=None)
            if best is None or abs(best.distance_m - t.distance_m) > _GATE_M:
                best = _Track(t.distance_m, sec.t_s, sec.t_s)
                self._tracks.append(best)
            else:
                free.remove(best)
            best.distance_m = t.distance_m
            best.last_s = sec.t_s
            if t.breath_rate_bpm is not None and t.resp_quality >= 0.3:
                best.rates.append(t.breath_rate_bpm)
                best.amps.append(t.resp_amp_mm)
            pairs.append((t, best))
        return pairs

    def _in_zone(self, t: Target) -> bool:
        lo, hi = self.zone_m
        return lo <= t.distance_m <= hi

    @staticmethod
    def _alive(t: Target) -> bool:
        return t.breath_rate_bpm is not None or t.movement > 3.0 or t.snr_db > 15.0

    def _abrupt(self, t: Target, k: _Track) -> bool:
        """The track's breathing rate jumped away from the user's rhythm of the last minutes."""
        now = t.breath_rate_bpm
        base = statistics.median(list(k.rates)[-300:-30]) if len(k.rates) > 90 else None
        if now is None or base is None or t.resp_quality < 0.5:
            return False
        return abs(now - base) > _JUMP_FRAC * base

    def update(self, sec: RadarSecond, presence: PresenceState) -> TrackedSecond:
        """Return the user's target of this second and whose data the user's zone holds.

        Args:
            sec: The DSP's second (targets nearest first).
            presence: The presence verdict of the same second.

        Returns:
            The tracked second (`user` None when the user is not seen).
        """
        pairs = self._associate(sec)
        zone = [(t, k) for t, k in pairs if self._in_zone(t) and self._alive(t)]
        if not presence.present or not zone:
            return TrackedSecond(sec.t_s, presence, None, len(sec.targets), "none", 0.0)
        for _t, k in zone:
            k.pet_votes = min(k.pet_votes + 1, 60) if k.pet_like() else max(k.pet_votes - 1, 0)
        people = [(t, k) for t, k in zone if k.pet_votes < 20]
        chosen: tuple[Target, _Track] | None = None
        confidence = 1.0
        for t, k in people:
            if k is self._user:
                chosen = (t, k)
        if chosen is not None and self._abrupt(*chosen):
            k = chosen[1]
            k.jump_s += 1.0
            confidence = 0.5
            if k.jump_s >= 60.0 and len(people) > 1:
                chosen = None  # someone else's rhythm has held a minute: let the zone re-decide
        elif chosen is not None:
            chosen[1].jump_s = 0.0
        if chosen is None and people:
            pick = min if self.bed.side == "near" else max
            chosen = pick(people, key=lambda p: p[0].distance_m)
            if self._user is not None and chosen[1] is not self._user:
                log.debug("user target re-decided at d=%.2f m", chosen[0].distance_m)
            self._user = chosen[1]
            confidence = min(confidence, 0.8)
        if chosen is None:
            return TrackedSecond(sec.t_s, presence, None, len(sec.targets), "other", 0.0)
        user, track = chosen
        if len(track.rates) < 30:
            confidence = min(confidence, 0.7)
        if user.movement < _STILL_MOVEMENT and user.breath_rate_bpm is not None:
            self._still_m.append(user.distance_m)
        others = sum(1 for t in sec.targets if t is not user)
        return TrackedSecond(sec.t_s, presence, user, others, "user", confidence)
