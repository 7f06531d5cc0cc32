"""sd_notify without systemd: a real AF_UNIX datagram socket stands in for the service manager."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import synthetic

from appliance import notify
from appliance.clock import VirtualClock
from appliance.config import parse_config
from appliance.daemon import Daemon
from appliance.frames import RadarFrames
from appliance.staging import Stager
from appliance.store import Store
from hardware.speaker import SimulatedSpeaker


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
    d = Path(tempfile.mkdtemp(prefix="ntf-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def manager(short_dir: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket, as systemd's notify socket, and its NOTIFY_SOCKET value."""
    path = short_dir / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    yield sock, str(path)
    sock.close()


def _recv(sock: socket.socket, timeout_s: float) -> str | None:
    sock.settimeout(timeout_s)
    try:
        return sock.recv(4096).decode()
    except TimeoutError:
        return None


def _drain(sock: socket.socket) -> list[str]:
    out = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return out


def test_everything_is_a_no_op_without_a_notify_socket() -> None:
    env: dict[str, str] = {}
    assert notify.ready("x", env=env) is False
    assert notify.watchdog(env=env) is False
    assert notify.status("x", env=env) is False
    assert notify.stopping(env=env) is False
    assert notify.watchdog_interval_s(env=env) is None


def test_datagrams_reach_a_path_socket(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    env = {"NOTIFY_SOCKET": path}
    assert notify.ready("started", env=env)
    assert _recv(sock, 2.0) == "READY=1\nSTATUS=started"
    assert notify.watchdog(env=env)
    assert _recv(sock, 2.0) == "WATCHDOG=1"
    assert notify.status("session 3\nwith a newline", env=env)
    assert _recv(sock, 2.0) == "STATUS=session 3 with a newline"  # one assignment, one line
    assert notify.stopping(env=env)
    assert _recv(sock, 2.0) == "STOPPING=1"


def test_abstract_namespace_address() -> None:
    name = f"appliance-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    try:
        assert notify.ready(env={"NOTIFY_SOCKET": "@" + name})
        assert _recv(sock, 2.0) == "READY=1"
    finally:
        sock.close()


def test_a_missing_or_foreign_socket_never_raises(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="appliance.notify")
    gone = str(short_dir / "nobody-listens")
    assert notify.watchdog(env={"NOTIFY_SOCKET": gone}) is False
    assert notify.watchdog(env={"NOTIFY_SOCKET": gone}) is False
    assert caplog.text.count("cannot notify systemd") == 1  # logged once, not per ping
    assert notify.ready(env={"NOTIFY_SOCKET": "vsock:2:1234"}) is False
    assert "unsupported NOTIFY_SOCKET" in caplog.text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert notify.watchdog_interval_s(env=env) == expected


# -- the daemon ----------------------------------------------------------------------------------


class _StallingRadar:
    """A virtual-clock source (read on the event loop) whose read number `stall_at` blocks.

    Reads are slowed to 20 ms of real time each so the night does not race past the test.
    """

    def __init__(self, fr: RadarFrames, stall_at: int) -> None:
        self.frame_rate_hz = fr.frame_rate_hz
        self.batches = synthetic.split(fr, int(10 * fr.frame_rate_hz))
        self.stall_at = stall_at
        self.reads = 0
        self.stalled = threading.Event()
        self.release = threading.Event()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.release.set()

    def read(self, n_frames: int) -> RadarFrames | None:
        self.reads += 1
        if self.reads == self.stall_at:
            self.stalled.set()
            self.release.wait(timeout=20.0)  # the whole event loop is stuck in here
        time.sleep(0.02)
        return self.batches[self.reads - 1] if self.reads <= len(self.batches) else None


def test_daemon_sends_ready_then_watchdog_and_a_stuck_loop_stops_the_pings(
    manager: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sock, path = manager
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # 0.2 s: pings every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    fr = synthetic.frames(3600.0)
    radar = _StallingRadar(fr, stall_at=60)
    clock = VirtualClock(float(fr.t_s[0]))
    cfg = parse_config({"session": {"start_after_s": 60.0}})
    loop_box: list[asyncio.AbstractEventLoop] = []
    with Store.open(tmp_path / "s.sqlite") as store:
        d = Daemon(
            cfg,
            clock=clock,
            radar=radar,
            speaker=SimulatedSpeaker(clock),
            store=store,
            stager=Stager(),
            tz=ZoneInfo("UTC"),
        )

        async def main() -> None:
            loop_box.append(asyncio.get_running_loop())
            await d.run()

        th = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        th.start()
        try:
            first = _recv(sock, 30.0)
            assert first is not None and first.startswith("READY=1")
            pings = [_recv(sock, 5.0) for _ in range(3)]
            assert pings == ["WATCHDOG=1"] * 3

            assert radar.stalled.wait(timeout=30.0)
            _drain(sock)  # pings sent before the loop got stuck
            assert _recv(sock, 1.0) is None  # 1 s stuck = 10 missed pings: systemd restarts it

            radar.release.set()
            assert _recv(sock, 5.0) == "WATCHDOG=1"  # the loop runs again: so do the pings
            deadline = time.monotonic() + 10.0
            while radar.reads <= radar.stall_at and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            radar.release.set()
            if loop_box:
                loop_box[0].call_soon_threadsafe(d.stop)
            th.join(timeout=30.0)
        assert not th.is_alive()
        rest = _drain(sock)
        assert rest and rest[-1] == "STOPPING=1"
        assert radar.reads > radar.stall_at  # the night went on after the stall


def test_daemon_without_systemd_sends_nothing_and_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # no socket: the interval alone does nothing
    fr = synthetic.frames(120.0)
    clock = VirtualClock(float(fr.t_s[0]))
    radar = _StallingRadar(fr, stall_at=10**9)
    with Store.open(tmp_path / "s.sqlite") as store:
        d = Daemon(
            parse_config({}),
            clock=clock,
            radar=radar,
            speaker=SimulatedSpeaker(clock),
            store=store,
            stager=Stager(),
            tz=ZoneInfo("UTC"),
            finite_source=True,
        )
        asyncio.run(asyncio.wait_for(d.run(), timeout=30.0))
    assert radar.reads == len(radar.batches) + 1
