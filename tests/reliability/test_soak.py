"""The soak, short: two simulated days with every night's faults (benchmarks/soak.py runs the
week). Every alarm rings on time, each night is one session, the store stays sound, and memory
does not grow from one day to the next."""

from __future__ import annotations

import pytest

from benchmarks.soak import run_soak

RSS_GROWTH_MAX_MB = 3.0
"""Resident memory a day may add, MiB: +0.1 measured (a night's radar frames kept would be ~7 MiB
for a 30-min night; the twin I2C bus's unbounded transaction log was 2.5 MiB a day)."""
BLOCKS_GROWTH_MAX = 10_000
"""Memory blocks of Python's allocator a day may add (a few events and a summary a night); an
unbounded log of the twin I2C bus's transactions alone added ~60 000 a day."""


@pytest.fixture(scope="module")
def soak() -> object:
    return run_soak(2, seed=3, bed="06:35", up="07:05")


def test_every_alarm_rang_on_time_through_the_faults(soak: object) -> None:
    from benchmarks.soak import SoakResult

    assert isinstance(soak, SoakResult)
    assert [d.missed for d in soak.days] == [False, False]
    assert [d.late for d in soak.days] == [False, False]
    for d in soak.days:
        assert d.rang_s is not None and d.set_s - 30 * 60.0 <= d.rang_s <= d.set_s
        assert "radar dropout" in d.faults and "read-only store 60 min" in d.faults
        # A dead primary speaker hands the ring to the fallback output.
        assert d.output == ("fallback" if "primary speaker dead" in d.faults else "primary")


def test_each_night_is_one_session_and_the_store_stays_sound(soak: object) -> None:
    from benchmarks.soak import SoakResult

    assert isinstance(soak, SoakResult)
    assert soak.sessions == 2  # neither the dropout nor the read-only hour split a night
    assert all(d.epochs >= 20 for d in soak.days)  # recorded despite the faults
    assert soak.integrity_ok
    assert soak.health["store"] == "ok" and soak.health["radar"] == "off"  # standby by day
    assert soak.health["climate:sht4x"] == "ok" and soak.health["light:tsl2591"] == "ok"


def test_memory_does_not_grow_from_day_to_day(soak: object) -> None:
    from benchmarks.soak import SoakResult

    assert isinstance(soak, SoakResult)
    day1, day2 = soak.days
    assert day2.rss_mb - day1.rss_mb < RSS_GROWTH_MAX_MB, (day1.rss_mb, day2.rss_mb)
    assert day2.blocks - day1.blocks < BLOCKS_GROWTH_MAX, (day1.blocks, day2.blocks)
