"""Injected time: every stage gets time in its inputs, and the daemon gets it from a `Clock`.

All clocks speak UTC epoch seconds (`time.time()` semantics). Local wall-clock times (alarms) are
derived with `zoneinfo` where they are needed, never stored as naive times.
"""

from __future__ import annotations

import asyncio
import heapq
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

    Sleepers wait on the clock, not on real time. `advance_to` jumps and wakes every sleeper that
    is due; `run_until` steps through the due wake-up times one by one, letting each woken task
    run at its own instant, so a whole night of asyncio tasks runs as fast as the machine allows,
    deterministically, and a 1-s alarm tick is never skipped by a long jump.

    Args:
        start_s: Initial time, UTC epoch seconds.
    """

    def __init__(self, start_s: float) -> None:
        self._now = start_s
        self._seq = 0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def now(self) -> float:
        """Return the virtual time."""
        return self._now

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    def advance_to(self, t_s: float) -> None:
        """Jump forward to `t_s` (never backwards) and wake every sleeper that is due."""
        if t_s > self._now:
            self._now = t_s
        self._wake_due()

    def advance(self, seconds: float) -> None:
        """Jump forward by `seconds`."""
        self.advance_to(self._now + seconds)

    def step(self, offset_s: float) -> None:
        """Step the wall clock by `offset_s` (either sign), as NTP or a first time sync does.

        Unlike `advance`, no time elapses: pending sleeps keep their remaining duration, as
        `asyncio.sleep` (monotonic) does on the device while `time.time()` steps. Tests use it to
        check that alarms and epochs survive clock corrections.

        Args:
            offset_s: How far the wall clock moves, seconds; negative steps back.
        """
        self._now += offset_s
        # A uniform shift keeps the heap ordered.
        self._sleepers = [(w + offset_s, seq, fut) for w, seq, fut in self._sleepers]

    async def run_until(self, t_s: float) -> None:
        """Advance to `t_s` through every intermediate wake-up time, yielding at each."""
        while self._sleepers and self._sleepers[0][0] <= t_s:
            wake_at = self._sleepers[0][0]
            self._now = max(self._now, wake_at)
            self._wake_due()
            for _ in range(4):  # let the woken tasks run their step at this instant
                await asyncio.sleep(0)
        self.advance_to(t_s)
        await asyncio.sleep(0)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock reaches now + `seconds`."""
        wake_at = self._now + max(0.0, seconds)
        if wake_at <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (wake_at, self._seq, fut))
        await fut


def local_datetime(t_s: float, tz: str | ZoneInfo) -> datetime:
    """Return the aware local datetime of UTC epoch seconds `t_s` in time zone `tz`."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    return datetime.fromtimestamp(t_s, tz=zone)
