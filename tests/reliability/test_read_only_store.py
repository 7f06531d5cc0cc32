"""A read-only state directory: the daemon keeps sensing and ringing, reports the store
unavailable, and writes again once the store is writable.

Two real read-only stores, no mocked exceptions:

- mid-night, the store's connection is replaced by SQLite's own read-only connection on the same
  file (`mode=ro`): every write fails inside SQLite with "attempt to write a readonly database",
  what the daemon sees when the state directory's file system goes read-only under it (a remount
  itself is refused while the database is open for writing, EBUSY); then the writable connection
  comes back;
- at start, the state directory is a read-only file system (a tmpfs mounted `ro` when the tests
  run as root and may mount; `chmod 0555` otherwise, which binds every user but root).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import synthetic
from test_daemon import BERLIN, SET_S, FakeRadar, _cfg, _daemon

from appliance.clock import VirtualClock
from appliance.errors import StoreError
from appliance.frames import SessionEvent
from appliance.runtime import _open_store
from appliance.staging import Stager
from appliance.store import Store


@pytest.fixture(scope="module")
def stager() -> Stager:
    return Stager()


class ReadOnlySwitch:
    """Makes `store` see its database as read-only (SQLite's mode=ro), and writable again."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rw: sqlite3.Connection | None = None

    def read_only(self) -> None:
        assert self._rw is None
        self._rw = self.store._conn
        self.store._conn = sqlite3.connect(
            f"file:{self.store.path}?mode=ro",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
        )

    def writable(self) -> None:
        ro, self.store._conn = self.store._conn, self._rw
        self._rw = None
        if ro is not None:
            ro.close()


def test_a_store_that_turns_read_only_costs_data_not_sensing_or_the_alarm(
    tmp_path: Path, stager: Stager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fr = synthetic.frames(600.0, t0_s=SET_S - 400.0)
    clock = VirtualClock(SET_S - 400.0)
    seen: dict[str, object] = {}
    with Store.open(tmp_path / "s.sqlite") as store:
        switch = ReadOnlySwitch(store)

        def on_read(k: int) -> None:
            if k == 5:  # 40 s in, before the session starts (60 s of presence)
                switch.read_only()
            elif k == 35:  # 340 s in: writable again
                seen["status"] = d.snapshot()["devices"]["store"]
                seen["sessions"] = store.sessions()
                switch.writable()

        d, speaker = _daemon(
            _cfg(time="07:00", window_min=0.0),
            clock,
            FakeRadar(fr, on_read=on_read),
            store,
            stager,
            tz=BERLIN,
        )
        seconds = d.bus.subscribe(["second"], maxsize=10_000)
        asyncio.run(asyncio.wait_for(d.run(), timeout=60.0))

        status = seen["status"]
        assert isinstance(status, dict) and status["status"] == "unavailable"
        assert "readonly database" in str(status["detail"])
        assert seen["sessions"] == []  # nothing could be written meanwhile
        assert d.snapshot()["devices"]["store"]["status"] == "ok"  # recovered by itself
        assert "store available again" in caplog.text
        # Sensing went on throughout, and the alarm rang at its time.
        assert len(list(iter(seconds.get_nowait, None))) >= 590
        assert speaker.plays and speaker.plays[0] == SET_S
        assert [e.t_s for e in d.alarm_events if e.kind == "alarm_ringing"] == [SET_S]
        # Once writable, the night was recorded: its session (started lazily) and epochs.
        (s,) = store.sessions()
        eps = store.epochs(s.id)
        assert len(eps) >= 5 and eps[0].t_s >= SET_S - 400.0 + 300.0  # none from the read-only span
        assert store.integrity_ok()


def test_every_write_fails_with_one_line_naming_read_only_and_nothing_half_written(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path / "s.sqlite") as store:
        sid = store.start_session(SET_S, tz="UTC", source="test")
        switch = ReadOnlySwitch(store)
        switch.read_only()
        writes = {
            "start_session": lambda: store.start_session(SET_S, tz="UTC", source="test"),
            "add_event": lambda: store.add_event(sid, SessionEvent(SET_S, "in_bed")),
            "add_environment": lambda: store.add_environment(SET_S, "sht4x", "t", 20.0, "°C"),
            "set_setting": lambda: store.set_setting("standby", True),
            "beat": lambda: store.beat(SET_S),
            "close_session": lambda: store.close_session(sid, SET_S + 60.0, {}),
        }
        for name, write in writes.items():
            with pytest.raises(StoreError) as info:
                write()
            msg = str(info.value)
            assert "readonly" in msg and "\n" not in msg, (name, msg)
        assert [s.id for s in store.sessions()] == [sid]  # reads still work
        switch.writable()
        store.set_setting("standby", True)
        assert store.setting("standby") is True
        assert store.integrity_ok()


@contextlib.contextmanager
def _read_only_dir(path: Path) -> Iterator[str]:
    """`path` as a read-only directory, the most real way this machine allows."""
    path.mkdir()
    if os.geteuid() == 0:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        )
        if r.returncode == 0:
            try:
                yield "read-only tmpfs"
            finally:
                subprocess.run(["umount", str(path)], check=True)
            return
    path.chmod(0o555)
    try:
        yield "chmod 0555"
    finally:
        path.chmod(0o755)


def test_a_read_only_state_directory_at_start_still_rings(
    tmp_path: Path, stager: Stager, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    with _read_only_dir(state) as how:
        if how == "chmod 0555" and os.geteuid() == 0:
            # Root ignores mode bits and may not mount here: the store's file is made read-only
            # to SQLite itself from the start instead.
            with Store.open(tmp_path / "s.sqlite") as store:
                ReadOnlySwitch(store).read_only()
                clock = VirtualClock(SET_S - 60.0)
                fr = synthetic.frames(120.0, t0_s=SET_S - 60.0)
                d, speaker = _daemon(
                    _cfg(time="07:00", window_min=0.0),
                    clock,
                    FakeRadar(fr),
                    store,
                    stager,
                    tz=BERLIN,
                )
                asyncio.run(asyncio.wait_for(d.run(), timeout=30.0))
                assert speaker.plays[0] == SET_S
                assert d.snapshot()["devices"]["store"]["status"] == "unavailable"
            return
        with pytest.raises(StoreError) as info:
            Store.open(state / "appliance.sqlite")
        assert "\n" not in str(info.value), how
        # `appliance run` falls back to a temporary store so that tonight's alarm rings.
        caplog.set_level(logging.ERROR)
        store, problem = _open_store(state / "appliance.sqlite")
        try:
            assert "store unavailable" in caplog.text and "tonight is kept only in" in caplog.text
            assert store.path.parent != state
            assert problem is not None and str(store.path) in problem
            clock = VirtualClock(SET_S - 60.0)
            fr = synthetic.frames(120.0, t0_s=SET_S - 60.0)
            d, speaker = _daemon(
                _cfg(time="07:00", window_min=0.0), clock, FakeRadar(fr), store, stager, tz=BERLIN
            )
            asyncio.run(asyncio.wait_for(d.run(), timeout=30.0))
            assert speaker.plays[0] == SET_S
            assert store.sessions(), "the fallback store keeps tonight"
        finally:
            store.close()
