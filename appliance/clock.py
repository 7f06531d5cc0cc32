"""Injected time: every stage gets time in its inputs, and the daemon gets it from a `Clock`.

All clocks speak UTC epoch seconds (`time.time()` semantics). Local wall-clock times (alarms) are
derived with `zoneinfo` where they are needed, never stored as naive times.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

__all__ = ["Clock", "RealClock", "ScaledClock", "VirtualClock", "local_datetime"]


@runtime_checkable
class Clock(Protocol):
    """A source of time and of waiting."""

    def now(self) -> float:
        """Return the current time, UTC epoch seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class RealClock:
    """The wall clock, for production."""

    def now(self) -> float:
        """Return `time.time()`."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep in real time."""
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """A clock that starts at `start_s` and runs `speed` times faster than real time.

    Used by `appliance run --speed N` on simulated hardware, so a night can be watched in minutes.

    Args:
        start_s: Virtual time at creation, UTC epoch seconds.
        speed: Ratio of virtual to real time, > 0.
    """

    def __init__(self, start_s: float, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self._start_s = start_s
        self._speed = speed
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Return the virtual time."""
        return self._start_s + (time.monotonic() - self._t0) * self._speed

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of virtual time."""
        await asyncio.sleep(max(0.0, seconds) / self._speed)


class VirtualClock:
    """A clock that only moves when told to: tests and `appliance simulate`.

    `sleep` returns as soon as some other party has advanced the clock past the wake-up time, so
    a whole night of asyncio tasks runs as fast as the machine allows and deterministically.

    Args:
        start_s: Initial time, UTC epoch seconds.
    """

    def __init__(self, start_s: float) -> None:
        self._now = start_s
        self._changed: asyncio.Event | None = None

    def now(self) -> float:
        """Return the virtual time."""
        return self._now

    def advance_to(self, t_s: float) -> None:
        """Move time forward to `t_s` (never backwards) and wake sleepers whose time has come."""
        if t_s > self._now:
            self._now = t_s
            if self._changed is not None:
                self._changed.set()
                self._changed = None

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`."""
        self.advance_to(self._now + seconds)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by `seconds`."""
        wake_at = self._now + max(0.0, seconds)
        while self._now < wake_at:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()


def local_datetime(t_s: float, tz: str | ZoneInfo) -> datetime:
    """Return the aware local datetime of UTC epoch seconds `t_s` in time zone `tz`."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    return datetime.fromtimestamp(t_s, tz=zone)
