"""The daemon's internal bus: what happened, for the MQTT bridge, the control API and the TUI.

The daemon publishes; every reader subscribes with a bounded queue of its own. Publishing never
blocks and never fails: a subscriber that falls behind loses its oldest messages (counted in
`Subscription.dropped`), so a slow or stuck client can never hold up sensing or the alarm.

Topics and their `data` (JSON-ready dicts; times are UTC epoch seconds):

- ``second``: the live radar second — ``presence`` (bool), ``presence_confidence`` [0, 1],
  ``presence_state`` (empty | moving | present-still), ``breath_rate`` and ``heart_rate``
  (per minute, or None), ``distance_m`` (or None), ``movement``, ``waveform_mm`` (the last second
  of the 10-Hz respiration displacement, mm; for on-device display only, never sent off it).
- ``epoch``: a staged 30-s epoch — ``index``, ``stage`` (wake|light|deep|rem|absent|unscored),
  ``present_fraction``, ``breath_rate``, ``heart_rate``, ``distance_m``.
- ``event``: a session or alarm event — ``kind`` and ``detail`` (a dict).
- ``session``: the session state changed — ``state``, ``session_id``.
- ``standby``: ``on`` (bool).
- ``environment``: a bedroom reading — ``temperature_c``, ``humidity_pct``, ``illuminance_lux``.
- ``alarm``: the alarm schedule or state changed — ``next_alarm`` (UTC s or None), ``state``.
- ``night``: a session closed — ``session_id`` and its summary dict.
- ``light``: the light's user mode changed — ``mode`` (off|reading|night), ``brightness``
  (0–255, or None for the mode's own).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TOPICS", "Bus", "Message", "Subscription"]

TOPICS: frozenset[str] = frozenset(
    {"second", "epoch", "event", "session", "standby", "environment", "alarm", "night", "light"}
)


@dataclass(frozen=True, slots=True)
class Message:
    """One published fact.

    Attributes:
        topic: One of `TOPICS`.
        t_s: When it happened, UTC epoch seconds (the daemon's clock).
        data: The payload, JSON-serialisable.
    """

    topic: str
    t_s: float
    data: Mapping[str, Any]


class Subscription:
    """A reader's bounded queue. Iterate it (`async for msg in sub`) or `await sub.get()`."""

    def __init__(self, bus: Bus, topics: frozenset[str] | None, maxsize: int) -> None:
        self._bus = bus
        self.topics = topics
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize)
        self.dropped = 0
        """Messages lost because this reader fell behind."""

    def _put(self, msg: Message) -> None:
        if self.topics is not None and msg.topic not in self.topics:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(msg)

    async def get(self) -> Message:
        """The next message (waits for one)."""
        return await self._queue.get()

    def get_nowait(self) -> Message | None:
        """The next message if one is queued, else None."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        """Stop receiving."""
        self._bus._unsubscribe(self)

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            yield await self.get()


class Bus:
    """Publish/subscribe inside the daemon's event loop (not thread-safe: one loop only)."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def publish(self, topic: str, t_s: float, data: Mapping[str, Any]) -> None:
        """Deliver to every subscriber of `topic`; never blocks, never raises for a reader."""
        if topic not in TOPICS:
            raise ValueError(f"unknown bus topic {topic!r}")
        msg = Message(topic, float(t_s), data)
        for sub in tuple(self._subs):
            sub._put(msg)

    def subscribe(
        self, topics: Collection[str] | None = None, *, maxsize: int = 256
    ) -> Subscription:
        """A new reader of `topics` (None = all), keeping at most `maxsize` unread messages."""
        wanted = None if topics is None else frozenset(topics)
        if wanted is not None and (unknown := wanted - TOPICS):
            raise ValueError(f"unknown bus topics {sorted(unknown)}")
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        sub = Subscription(self, wanted, maxsize)
        self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    @property
    def subscribers(self) -> int:
        """How many readers are subscribed."""
        return len(self._subs)
