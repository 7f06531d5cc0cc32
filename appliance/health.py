"""Health of every device and task, as the control API, MQTT and the TUI report it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from appliance.clock import Clock

__all__ = ["Health", "HealthEntry", "Status"]

log = logging.getLogger(__name__)

Status = Literal["ok", "starting", "off", "failing", "unavailable"]
"""ok: working; starting: not yet; off: switched off on purpose (standby); failing: errors, being
retried; unavailable: absent or given up on until it answers again."""


@dataclass(frozen=True, slots=True)
class HealthEntry:
    """One part's health.

    Attributes:
        status: See `Status`.
        detail: What it is or what went wrong, one line.
        since_s: When it entered this status, UTC epoch seconds.
    """

    status: Status
    detail: str
    since_s: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"status": self.status, "detail": self.detail, "since_s": self.since_s}


class Health:
    """The registry: `set` a part's status; a change (not a repeat) is logged once."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, HealthEntry] = {}

    def set(self, part: str, status: Status, detail: str = "") -> None:
        """Record `part`'s status; logs only when the status changes."""
        old = self._entries.get(part)
        if old is not None and old.status == status and old.detail == detail:
            return
        since = old.since_s if old is not None and old.status == status else self._clock.now()
        self._entries[part] = HealthEntry(status, detail, since)
        if old is not None and old.status != status:
            level = logging.WARNING if status in ("failing", "unavailable") else logging.INFO
            log.log(level, "%s: %s%s", part, status, f" ({detail})" if detail else "")

    def get(self, part: str) -> HealthEntry | None:
        """The part's entry, or None if it was never reported."""
        return self._entries.get(part)

    def to_dict(self) -> dict[str, dict[str, object]]:
        """Every part's health, JSON-ready, by name."""
        return {k: v.to_dict() for k, v in sorted(self._entries.items())}
