"""Primary-user tracking: which of the targets the radar resolves is the user.

First version: the user is the nearest target on the user's side of the bed (between
`bed.user_min_m` and `bed.user_max_m`) that breathes or moves; once chosen, the target that keeps
the user's distance (within `_GATE_M`) is preferred, so a partner or a pet further away does not
take the user's place. Everything else counts as "others".
"""

from __future__ import annotations

from appliance.config import BedConfig
from appliance.frames import PresenceState, RadarSecond, Target, TrackedSecond

__all__ = ["UserTracker"]

_GATE_M = 0.15
_LOST_AFTER_S = 30.0


class UserTracker:
    """Chooses the primary user's target each second.

    Args:
        bed: Where the user's side of the bed is.
    """

    def __init__(self, bed: BedConfig | None = None) -> None:
        self.bed = bed or BedConfig()
        self._last_m: float | None = None
        self._last_seen_s = float("-inf")

    def _candidates(self, sec: RadarSecond) -> list[Target]:
        return [
            t
            for t in sec.targets
            if self.bed.user_min_m <= t.distance_m <= self.bed.user_max_m
            and (t.breath_rate_bpm is not None or t.movement > 3.0 or t.snr_db > 15.0)
        ]

    def update(self, sec: RadarSecond, presence: PresenceState) -> TrackedSecond:
        """Return the user's target of this second (None if not seen) and how many others."""
        user: Target | None = None
        if presence.present:
            cands = self._candidates(sec)
            if cands:
                if self._last_m is not None and sec.t_s - self._last_seen_s <= _LOST_AFTER_S:
                    near = [t for t in cands if abs(t.distance_m - self._last_m) <= _GATE_M]
                    user = near[0] if near else cands[0]
                else:
                    user = cands[0]
        if user is not None:
            self._last_m = user.distance_m
            self._last_seen_s = sec.t_s
        others = sum(1 for t in sec.targets if t is not user)
        return TrackedSecond(t_s=sec.t_s, presence=presence, user=user, others=others)
