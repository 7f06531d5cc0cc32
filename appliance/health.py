"""Health of every device and task, as the control API, MQTT and the TUI report it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from appliance.clock import Clock

if TYPE_CHECKING:
    from hardware.speaker import Speaker

__all__ = ["Health", "HealthEntry", "ReportingSpeaker", "Status"]

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


class ReportingSpeaker:
    """A speaker that reports every play's outcome as the `part`'s health.

    The alarm only learns that a play failed; the status must also say when the ring went to a
    fallback output (a `FallbackSpeaker` that grew its `failures` during a play), so that a dead
    primary speaker is seen before the morning it is the only one left. "unavailable" when every
    output failed, "failing" while a fallback rings, "ok" when the primary played.

    Args:
        speaker: The speaker (or chain) to drive.
        health: Where to report.
        part: The health entry's name.
    """

    def __init__(self, speaker: Speaker, health: Health, part: str = "speaker") -> None:
        self._speaker = speaker
        self._health = health
        self._part = part
        self._fell_back: str | None = None

    @property
    def name(self) -> str:
        """The wrapped speaker's name."""
        name = getattr(self._speaker, "name", None)
        return name if isinstance(name, str) else type(self._speaker).__name__

    def _failures(self) -> list[tuple[str, str]]:
        failures = getattr(self._speaker, "failures", None)
        return failures if isinstance(failures, list) else []

    def play(self, t_s: float) -> None:
        """Play, and report the outcome.

        Raises:
            Exception: whatever the wrapped speaker raised (after reporting it).
        """
        seen = len(self._failures())
        try:
            self._speaker.play(t_s)
        except Exception as e:
            self._health.set(self._part, "unavailable", str(e))
            raise
        new = self._failures()[seen:]
        if new:
            failed, error = new[-1]
            self._fell_back = f"ringing on {self.name}; {failed} failed: {error}"
        if self._fell_back is not None:
            self._health.set(self._part, "failing", self._fell_back)
        else:
            self._health.set(self._part, "ok", self.name)

    def stop(self) -> None:
        """Stop; the next ring tries the primary output again."""
        self._fell_back = None
        self._speaker.stop()

    def available(self) -> bool:
        """Whether the wrapped speaker can play."""
        return self._speaker.available()

    def set_volume(self, fraction: float) -> None:
        """Pass a volume to the wrapped speaker, if it takes one (the alarm's ramp)."""
        set_volume = getattr(self._speaker, "set_volume", None)
        if callable(set_volume):
            set_volume(fraction)

    def set_sound(self, name: str) -> None:
        """Pass an alarm's sound to the wrapped speaker, if it can choose one."""
        set_sound = getattr(self._speaker, "set_sound", None)
        if callable(set_sound):
            set_sound(name)
