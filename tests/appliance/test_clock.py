"""Tests of the injected clocks: virtual stepping, scaled time and local wall-clock times."""

from __future__ import annotations

import asyncio
import time
import types
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

import appliance.clock as clock_mod
from appliance.clock import Clock, RealClock, ScaledClock, VirtualClock, local_datetime

BERLIN = ZoneInfo("Europe/Berlin")
T0 = 1_700_000_000.0


def test_every_clock_implements_the_protocol() -> None:
    for c in (RealClock(), ScaledClock(T0, 2.0), VirtualClock(T0)):
        assert isinstance(c, Clock)


# -- VirtualClock ---------------------------------------------------------------------------------


def test_virtual_clock_only_moves_when_told() -> None:
    c = VirtualClock(T0)
    assert c.now() == T0
    c.advance(12.5)
    assert c.now() == T0 + 12.5
    c.advance_to(T0 + 20.0)
    assert c.now() == T0 + 20.0


def test_advance_to_never_goes_backwards() -> None:
    c = VirtualClock(T0)
    c.advance_to(T0 + 100.0)
    c.advance_to(T0 + 50.0)
    assert c.now() == T0 + 100.0
    c.advance(-30.0)
    assert c.now() == T0 + 100.0


def test_run_until_steps_through_one_second_ticks_in_order() -> None:
    """Two 1-s tickers each wake at every second, in order, and see their own instant."""
    seen: list[tuple[str, float]] = []

    async def ticker(c: VirtualClock, name: str, n: int) -> None:
        for _ in range(n):
            await c.sleep(1.0)
            seen.append((name, c.now() - T0))

    async def main() -> VirtualClock:
        c = VirtualClock(T0)
        tasks = [asyncio.create_task(ticker(c, name, 10)) for name in ("a", "b")]
        await asyncio.sleep(0)  # let both register their first sleep
        await c.run_until(T0 + 10.0)
        await asyncio.gather(*tasks)
        return c

    c = asyncio.run(main())
    assert c.now() == T0 + 10.0
    assert [t for name, t in seen if name == "a"] == [float(k) for k in range(1, 11)]
    assert [t for name, t in seen if name == "b"] == [float(k) for k in range(1, 11)]
    times = [t for _, t in seen]
    assert times == sorted(times)  # a long jump never reorders or skips ticks
    # Equal wake times wake first-come, first-served.
    assert [name for name, _ in seen] == ["a", "b"] * 10


def test_run_until_lands_exactly_on_the_target_and_leaves_later_sleepers() -> None:
    woke: list[float] = []

    async def sleeper(c: VirtualClock, s: float) -> None:
        await c.sleep(s)
        woke.append(c.now() - T0)

    async def main() -> None:
        c = VirtualClock(T0)
        early = asyncio.create_task(sleeper(c, 2.5))
        late = asyncio.create_task(sleeper(c, 30.0))
        await asyncio.sleep(0)
        await c.run_until(T0 + 7.25)
        assert c.now() == T0 + 7.25
        assert early.done()
        assert not late.done()
        assert woke == [2.5]  # woken at its own instant, not at the target
        await c.run_until(T0 + 30.0)
        await late
        assert woke == [2.5, 30.0]

    asyncio.run(main())


def test_run_until_the_past_does_not_move_the_clock() -> None:
    async def main() -> float:
        c = VirtualClock(T0 + 10.0)
        await c.run_until(T0)
        return c.now()

    assert asyncio.run(main()) == T0 + 10.0


def test_sleep_of_zero_or_less_returns_without_advancing() -> None:
    async def main() -> float:
        c = VirtualClock(T0)
        await c.sleep(0.0)
        await c.sleep(-5.0)
        return c.now()

    assert asyncio.run(main()) == T0


def test_cancelled_sleeper_does_not_break_stepping() -> None:
    async def main() -> list[float]:
        c = VirtualClock(T0)
        got: list[float] = []

        async def waiter(s: float) -> None:
            await c.sleep(s)
            got.append(c.now() - T0)

        doomed = asyncio.create_task(waiter(3.0))
        alive = asyncio.create_task(waiter(5.0))
        await asyncio.sleep(0)
        doomed.cancel()
        await asyncio.sleep(0)
        await c.run_until(T0 + 6.0)
        await alive
        return got

    assert asyncio.run(main()) == [5.0]


def test_advance_wakes_due_sleepers_at_once() -> None:
    async def main() -> float:
        c = VirtualClock(T0)
        t = asyncio.create_task(c.sleep(60.0))
        await asyncio.sleep(0)
        c.advance(3600.0)  # one long jump: the sleeper is due and woken
        await asyncio.wait_for(t, timeout=1.0)
        return c.now()

    assert asyncio.run(main()) == T0 + 3600.0


# -- ScaledClock ----------------------------------------------------------------------------------


class _FakeTime:
    """Stands in for the `time` module inside appliance.clock."""

    def __init__(self) -> None:
        self.mono = 500.0

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return T0


def test_scaled_clock_runs_speed_times_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeTime()
    monkeypatch.setattr(clock_mod, "time", fake)
    c = ScaledClock(T0, speed=60.0)
    assert c.now() == T0
    fake.mono += 2.0  # two real seconds ...
    assert c.now() == pytest.approx(T0 + 120.0)  # ... are two virtual minutes
    fake.mono += 0.5
    assert c.now() == pytest.approx(T0 + 150.0)


def test_scaled_clock_sleeps_a_fraction_of_real_time(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[float] = []

    async def fake_sleep(s: float) -> None:
        asked.append(s)

    monkeypatch.setattr(clock_mod, "asyncio", types.SimpleNamespace(sleep=fake_sleep))
    c = ScaledClock(T0, speed=50.0)

    async def main() -> None:
        await c.sleep(10.0)
        await c.sleep(-3.0)

    asyncio.run(main())
    assert asked == [pytest.approx(0.2), 0.0]


def test_scaled_clock_sleep_reaches_its_virtual_time() -> None:
    c = ScaledClock(T0, speed=1000.0)
    asyncio.run(c.sleep(30.0))
    assert c.now() >= T0 + 30.0


@pytest.mark.parametrize("speed", [0.0, -1.0])
def test_scaled_clock_rejects_non_positive_speed(speed: float) -> None:
    with pytest.raises(ValueError, match="speed"):
        ScaledClock(T0, speed)


def test_real_clock_is_the_wall_clock() -> None:
    before = time.time()
    now = RealClock().now()
    assert before - 1.0 <= now <= time.time() + 1.0


# -- local_datetime ---------------------------------------------------------------------------


def test_local_datetime_across_spring_forward() -> None:
    # Europe/Berlin, 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00 UTC.
    change = datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()
    before = local_datetime(change - 1.0, BERLIN)
    after = local_datetime(change, BERLIN)
    assert before.strftime("%H:%M:%S %Z") == "01:59:59 CET"
    assert after.strftime("%H:%M:%S %Z") == "03:00:00 CEST"
    assert before.utcoffset() == timedelta(hours=1)
    assert after.utcoffset() == timedelta(hours=2)
    # One real second apart (same-zone datetime subtraction is wall time: 1 h 0 min 1 s).
    assert after.timestamp() - before.timestamp() == 1.0
    assert (after - before).total_seconds() == 3601.0
    assert after.timestamp() == change


def test_local_datetime_across_fall_back_sets_fold() -> None:
    # Europe/Berlin, 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC; 02:30 happens twice.
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp()
    second = first + 3600.0
    a = local_datetime(first, BERLIN)
    b = local_datetime(second, BERLIN)
    assert a.strftime("%H:%M") == b.strftime("%H:%M") == "02:30"
    assert (a.tzname(), a.fold) == ("CEST", 0)
    assert (b.tzname(), b.fold) == ("CET", 1)
    assert a.timestamp() == first
    assert b.timestamp() == second


def test_local_datetime_accepts_a_key_or_a_zone() -> None:
    t = datetime(2026, 1, 13, 6, 0, tzinfo=UTC).timestamp()
    assert local_datetime(t, "Europe/Berlin") == local_datetime(t, BERLIN)
    assert local_datetime(t, "Europe/Berlin").hour == 7
    assert local_datetime(t, "UTC").tzinfo is not None
