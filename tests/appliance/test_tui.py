"""The TUI against a real daemon (simulated radar, virtual time) over its API socket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from test_api import N_NIGHTS, ServedDaemon, nights_db, short_dir, stager  # noqa: F401
from textual.pilot import Pilot
from textual.widgets import DataTable, Digits, Static

from appliance.staging import Stager
from appliance.tui.app import ApplianceApp
from appliance.tui.screens.night import NightScreen, out_of_bed
from appliance.tui.widgets.hypnogram import resample

UTC = ZoneInfo("UTC")
FIXED_NOW = datetime(2026, 1, 4, 2, 37, tzinfo=UTC).timestamp()


@pytest.fixture
def served(short_dir: Path, nights_db: Path, stager: Stager) -> Iterator[ServedDaemon]:  # noqa: F811
    s = ServedDaemon(short_dir, nights_db, stager).start()
    yield s
    s.stop()


def _app(path: Path) -> ApplianceApp:
    return ApplianceApp(path, now=lambda: FIXED_NOW, tz=UTC, poll_s=0.2, retry_s=0.2)


async def _until(
    pilot: Pilot[Any],
    cond: Callable[[], bool],
    timeout_s: float = 10.0,
    msg: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached" + (f": {msg()}" if msg else ""))
        await pilot.pause(0.02)


def _text(app: ApplianceApp, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


# -- pure helpers -----------------------------------------------------------------------------


def test_resample_keeps_a_short_awakening_visible() -> None:
    stages = ["light"] * 50 + ["wake"] + ["deep"] * 49
    cols = resample(stages, 10)
    assert len(cols) == 10 and "wake" in cols
    assert resample(["rem", "deep"], 4) == ["rem", "rem", "deep", "deep"]
    assert resample([], 10) == []


def test_out_of_bed_runs_between_the_first_and_last_presence() -> None:
    st = ["absent", "wake", "absent", "absent", "light", "absent", "wake", "absent"]
    assert out_of_bed(st) == [(2, 2), (5, 1)]
    assert out_of_bed(["absent"] * 3) == []


# -- behaviour against the daemon -------------------------------------------------------------


def test_now_screen_shows_the_daemons_status(served: ServedDaemon) -> None:
    async def go() -> None:
        app = _app(served.socket)
        async with app.run_test(size=(80, 24)) as pilot:
            await _until(pilot, lambda: app.status is not None)
            await pilot.pause()
            assert app.connected
            assert "next alarm  Sun 07:00" in _text(app, "#alarm")
            person = _text(app, "#person")
            assert "breath 15" in person or "breath 14" in person
            assert "standby off" in _text(app, "#room")
            assert app.screen.query_one("#clock", Digits).value == "02:37"

    asyncio.run(go())


def test_toggle_standby_from_controls_reaches_the_store(served: ServedDaemon) -> None:
    async def go() -> None:
        app = _app(served.socket)
        async with app.run_test(size=(80, 24)) as pilot:
            await _until(pilot, lambda: app.status is not None)
            await pilot.press("4")
            await pilot.press("s")
            await _until(pilot, lambda: bool(app.status and app.status["standby"]))
            assert served.on_loop(lambda: served.store.setting("standby")) is True
            assert "standby ON" in _text(app, "#standby-state")
            await pilot.press("s")
            await _until(pilot, lambda: bool(app.status and not app.status["standby"]))
            assert served.on_loop(lambda: served.store.setting("standby")) is False
            await pilot.press("d")  # nothing rings: the daemon's refusal, shown on one line
            await pilot.pause()
            assert "could not: no alarm is ringing" in _text(app, "#outcome")

    asyncio.run(go())


def test_page_through_the_nights(served: ServedDaemon) -> None:
    async def go() -> None:
        app = _app(served.socket)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("2")
            screen = app.screen
            assert isinstance(screen, NightScreen)
            await _until(pilot, lambda: screen.shown is not None)
            assert len(screen.nights) == N_NIGHTS
            seen = [screen.shown["session"] if screen.shown else None]
            for _ in range(N_NIGHTS):  # one more than there is: stays on the oldest
                await pilot.press("left")
                await pilot.pause()
                seen.append(screen.shown["session"] if screen.shown else None)
            assert seen == [3, 2, 1, 1]
            assert _text(app, "#night-title").startswith(f"night {N_NIGHTS}/{N_NIGHTS}")
            await pilot.press("right")
            await pilot.pause()
            assert screen.shown is not None and screen.shown["session"] == 2
            assert "asleep" in _text(app, "#metrics")

    asyncio.run(go())


def test_an_alarm_set_from_the_tui_is_in_the_store(served: ServedDaemon) -> None:
    async def go() -> None:
        app = _app(served.socket)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("3")
            await _until(pilot, lambda: "alarm" in _text(app, "#alarm-note"))
            await pilot.press("a")  # the form opens with 07:00 every day
            await pilot.pause()
            await pilot.press("enter")
            # The config's alarm (id 0) and the new one.
            await _until(pilot, lambda: "2 alarm(s)" in _text(app, "#alarm-note"))
            table = app.screen.query_one("#alarms", DataTable)
            table.focus()
            table.move_cursor(row=1)
            await pilot.press("space")  # the new one, off
            await _until(pilot, lambda: not served.store.alarms()[-1].enabled)

    asyncio.run(go())
    new = [a for a in served.store.alarms() if a.id != 0]
    assert [(a.time, a.enabled, a.window_min) for a in new] == [("07:00", False, 30.0)]


def test_reconnects_when_the_daemon_restarts(
    short_dir: Path,  # noqa: F811
    nights_db: Path,  # noqa: F811
    stager: Stager,  # noqa: F811
) -> None:
    async def go() -> None:
        app = _app(short_dir / "api.sock")
        async with app.run_test(size=(80, 24)) as pilot:
            await _until(pilot, lambda: app.link_text == "daemon not running — retrying")
            assert "daemon not running — retrying" in _text(app, "#link")
            s = await asyncio.to_thread(lambda: ServedDaemon(short_dir, nights_db, stager).start())
            try:
                await _until(pilot, lambda: app.connected and app.status is not None)
                assert "connected" in _text(app, "#link")
                await asyncio.to_thread(s.stop)
                await _until(pilot, lambda: not app.connected)
                assert "retrying" in _text(app, "#link")
            finally:
                await asyncio.to_thread(s.stop)

    asyncio.run(go())


# -- snapshots --------------------------------------------------------------------------------


def _ready(screen_key: str) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, ApplianceApp)
        await _until(pilot, lambda: app.status is not None)
        if screen_key != "1":
            await pilot.press(screen_key)
        if screen_key == "2":
            screen = app.screen
            assert isinstance(screen, NightScreen)
            await _until(pilot, lambda: screen.shown is not None)
        if screen_key == "3":
            await _until(pilot, lambda: "alarm" in _text(app, "#alarm-note"))
        app.poll_s = 3600.0  # no refresh while the picture is taken
        await pilot.pause(0.1)

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (50, 16)], ids=["80x24", "50x16"])
@pytest.mark.parametrize("key", ["1", "2", "3", "4"], ids=["now", "night", "alarms", "controls"])
def test_snapshots(
    served: ServedDaemon, snap_compare: Any, size: tuple[int, int], key: str
) -> None:
    app = _app(served.socket)
    assert snap_compare(app, terminal_size=size, run_before=_ready(key))
