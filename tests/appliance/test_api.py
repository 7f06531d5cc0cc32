"""The control API on a real daemon (simulated radar, virtual time) serving a Unix socket.

`ServedDaemon` runs the daemon in a thread of its own with its own event loop, as the service
runs in its own process: clients (sync, async, the TUI) reach it only through the socket.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import synthetic
from test_daemon import UTC, FakeRadar, _cfg, _daemon, _run_finite

from appliance.api import METHODS, ApiServer, MethodSpec
from appliance.api_client import (
    MAX_LINE_BYTES,
    ApiError,
    AsyncClient,
    Client,
    DaemonNotRunning,
)
from appliance.clock import VirtualClock
from appliance.control import STATUS_FIELDS, Controller
from appliance.daemon import Daemon
from appliance.staging import Stager
from appliance.store import Store

T = TypeVar("T")
DAY_S = 86400.0
T0_S = 1_767_222_000.0  # 2025-12-31 23:00 UTC: the first stored night's start
N_NIGHTS = 3


@pytest.fixture(scope="session")
def stager() -> Stager:
    return Stager()


@pytest.fixture(scope="session")
def nights_db(tmp_path_factory: pytest.TempPathFactory, stager: Stager) -> Path:
    """A store holding `N_NIGHTS` short synthetic nights, one a day (made once per session)."""
    path = tmp_path_factory.mktemp("nights") / "nights.sqlite"
    with Store.open(path) as store:
        for k in range(N_NIGHTS):
            # Each a little longer than the one before, so the nights differ.
            fr = synthetic.frames(180.0 + 60.0 * k, t0_s=T0_S + k * DAY_S, seed=k)
            _run_finite(fr, store, stager)
    return path


class ServedDaemon:
    """A daemon serving its API on `socket`, in a thread with its own event loop.

    The radar delivers `live_s` seconds of a synthetic sleeper after the stored nights, then
    ends; the daemon keeps running (the alarm, the API) until `stop()`.
    """

    def __init__(self, root: Path, db: Path, stager: Stager, *, live_s: float = 60.0) -> None:
        self.root = root
        self.socket = root / "api.sock"
        shutil.copy(db, root / "s.sqlite")
        self.store = Store.open(root / "s.sqlite")
        t0 = T0_S + N_NIGHTS * DAY_S
        fr = synthetic.frames(live_s, t0_s=t0) if live_s > 0 else None
        self.clock = VirtualClock(t0)
        self.daemon: Daemon
        self.daemon, _ = _daemon(
            _cfg(time="07:00"),
            self.clock,
            FakeRadar(fr),
            self.store,
            stager,
            tz=UTC,
            finite_source=False,
        )
        self.daemon.api_socket = self.socket
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.daemon.run())

    def start(self) -> ServedDaemon:
        self._thread.start()
        deadline = time.monotonic() + 20.0
        while not (self.socket.exists() and self._radar_done()):
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the daemon did not start serving")
            time.sleep(0.01)
        return self

    def _radar_done(self) -> bool:
        fut = asyncio.run_coroutine_threadsafe(self._status(), self.loop)
        return fut.result(5.0)

    async def _status(self) -> bool:
        radar = self.daemon.radar
        return (
            isinstance(radar, FakeRadar)
            and (radar.frames is None or radar.pos >= radar.frames.n_frames)
            and self.daemon.health.get("api") is not None
        )

    def on_loop(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the daemon's loop and return its result."""

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10.0)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.daemon.stop)
            self._thread.join(20.0)
        self.loop.close()
        self.store.close()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # sockaddr_un holds 108 bytes: pytest's tmp_path can be longer than that.
    d = Path(tempfile.mkdtemp(prefix="ap-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def served(short_dir: Path, nights_db: Path, stager: Stager) -> Iterator[ServedDaemon]:
    s = ServedDaemon(short_dir, nights_db, stager).start()
    yield s
    s.stop()


def _raw(sock_path: Path, data: bytes, *, lines: int = 1, timeout_s: float = 5.0) -> list[Any]:
    """Send raw bytes and read `lines` JSON replies."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(sock_path))
        s.sendall(data)
        buf = b""
        while buf.count(b"\n") < lines:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return [json.loads(x) for x in buf.splitlines()]


# -- the protocol ---------------------------------------------------------------------------------


def test_status_has_the_documented_fields_and_the_socket_is_group_only(
    served: ServedDaemon,
) -> None:
    mode = stat.S_IMODE(served.socket.stat().st_mode)
    assert mode == 0o660
    with Client(served.socket) as c:
        st = c.call("status")
    assert set(STATUS_FIELDS) <= set(st)
    assert set(st["environment"]) == {"temperature_c", "humidity_pct", "illuminance_lux"}
    assert st["standby"] is False
    assert st["breath_rate"] == pytest.approx(15.0, abs=1.5)
    assert st["devices"]["api"]["status"] == "ok"
    assert st["devices"]["radar"]["status"] == "ok"
    assert st["next_alarm"].endswith("07:00:00+00:00")


def test_standby_round_trip_reaches_the_store(served: ServedDaemon) -> None:
    with Client(served.socket) as c:
        assert c.call("set_standby", on=True) == {"standby": True}
        assert c.call("status")["standby"] is True
        assert served.on_loop(lambda: served.store.setting("standby")) is True
        assert c.call("set_standby", on=False) == {"standby": False}
        assert served.on_loop(lambda: served.store.setting("standby")) is False


def test_nights_and_one_night(served: ServedDaemon) -> None:
    with Client(served.socket) as c:
        nights = c.call("nights", limit=14)
        assert len(nights) == N_NIGHTS  # the live minute is too short to start a night
        assert [n["started_s"] for n in nights] == sorted(
            (n["started_s"] for n in nights), reverse=True
        )
        rep = c.call("night", session_id=nights[-1]["session_id"])
        assert rep["session"] == nights[-1]["session_id"]
        assert set(rep["hypnogram"]) <= {"wake", "light", "deep", "rem", "absent"}
        with pytest.raises(ApiError) as e:
            c.call("night", session_id=999)
        assert e.value.code == "failed" and "no such night" in e.value.message


def test_methods_lists_what_this_daemon_supports(served: ServedDaemon) -> None:
    with Client(served.socket) as c:
        methods = c.call("methods")["methods"]
        assert {"status", "set_standby", "nights", "night", "dismiss", "subscribe"} <= set(methods)
        for name in METHODS:
            if name not in methods:
                with pytest.raises(ApiError) as e:
                    c.call(name)
                assert e.value.code in ("not_supported", "bad_request")


def test_a_method_the_controller_lacks_is_not_supported(
    served: ServedDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A newer client asking an older daemon: the table names it, the controller lacks it.
    monkeypatch.setitem(METHODS, "future_method", MethodSpec("future_method"))
    assert not hasattr(Controller, "future_method")
    with Client(served.socket) as c:
        with pytest.raises(ApiError) as e:
            c.call("future_method")
        assert e.value.code == "not_supported"
        assert e.value.message == "future_method: not supported by this daemon"


@pytest.mark.parametrize(
    ("line", "code", "text"),
    [
        (b"{not json\n", "bad_request", "not valid JSON"),
        (b"[1, 2]\n", "bad_request", "JSON object"),
        (b'{"id": 1, "method": 5}\n', "bad_request", "method must be a string"),
        (b'{"id": 1, "method": "status", "params": []}\n', "bad_request", "params must be"),
        (b'{"id": 1, "method": "status", "extra": 1}\n', "bad_request", "unknown key"),
        (b'{"id": 1, "method": "launch"}\n', "unknown_method", "unknown method 'launch'"),
        (b'{"id": 1, "method": "set_standby"}\n', "bad_request", "missing parameter 'on'"),
        (b'{"id": 1, "method": "set_standby", "params": {"on": "yes"}}\n', "bad_request", "bool"),
        (b'{"id": 1, "method": "nights", "params": {"limit": true}}\n', "bad_request", "int"),
        (b'{"id": 1, "method": "nights", "params": {"limit": 0}}\n', "failed", "limit"),
        (b'{"id": 1, "method": "status", "params": {"x": 1}}\n', "bad_request", "unknown param"),
        (b'{"id": 1, "method": "dismiss"}\n', "failed", "no alarm is ringing"),
        (
            b'{"id": 1, "method": "subscribe", "params": {"topics": ["x"]}}\n',
            "bad_request",
            "unknown topic",
        ),
    ],
)
def test_bad_requests_get_an_error_reply_and_the_connection_goes_on(
    served: ServedDaemon, line: bytes, code: str, text: str
) -> None:
    bad, ok = _raw(served.socket, line + b'{"id": 2, "method": "status"}\n', lines=2)
    assert bad["error"]["code"] == code and text in bad["error"]["message"]
    assert ok["id"] == 2 and "standby" in ok["result"]


def test_an_oversized_line_is_refused_and_the_daemon_serves_on(served: ServedDaemon) -> None:
    huge = b'{"id": 1, "method": "status", "params": {"x": "' + b"a" * MAX_LINE_BYTES + b'"}}\n'
    (reply,) = _raw(served.socket, huge)
    assert reply["error"]["code"] == "too_large"
    with Client(served.socket) as c:
        assert "standby" in c.call("status")


def test_a_client_that_leaves_mid_reply_is_harmless(served: ServedDaemon) -> None:
    for _ in range(20):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(str(served.socket))
            s.sendall(b'{"id": 1, "method": "night"}\n' * 50)
            s.recv(10)  # the start of a long reply, then gone
    with Client(served.socket) as c:
        assert c.call("status")["devices"]["api"]["status"] == "ok"
    assert served.on_loop(lambda: served.daemon.health.get("api")).status == "ok"  # type: ignore[union-attr]


def test_twenty_clients_at_once(served: ServedDaemon) -> None:
    def one(k: int) -> tuple[bool, int]:
        with Client(served.socket) as c:
            for _ in range(5):
                c.call("status")
            return c.call("status")["standby"], len(c.call("nights", limit=2))

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    assert results == [(False, 2)] * 20


def test_subscribe_streams_bus_events(served: ServedDaemon) -> None:
    async def go() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = []
        stream = AsyncClient.subscribe(served.socket, ["standby"])
        first = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.2)  # subscribed before the change
        client = await AsyncClient.connect(served.socket)
        await client.call("set_standby", on=True)
        got.append(await asyncio.wait_for(first, 5.0))
        await client.call("set_standby", on=False)
        got.append(await asyncio.wait_for(stream.__anext__(), 5.0))
        await client.close()
        await stream.aclose()
        return got

    got = asyncio.run(go())
    assert [(m["event"], m["data"]) for m in got] == [
        ("standby", {"on": True}),
        ("standby", {"on": False}),
    ]
    assert all(isinstance(m["t_s"], float) for m in got)


def test_a_stuck_subscriber_never_blocks_the_daemon(served: ServedDaemon) -> None:
    # A second server on the same daemon with a short write timeout (the default is 5 s).
    server = ApiServer(
        served.root / "stuck.sock",
        Controller(served.daemon),
        served.daemon.bus,
        write_timeout_s=0.3,
    )
    task = served.on_loop(lambda: served.loop.create_task(server.serve()))
    deadline = time.monotonic() + 5.0
    while not (served.root / "stuck.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(str(served.root / "stuck.sock"))
    stuck.sendall(b'{"id": 1, "method": "subscribe"}\n')  # and never reads a byte
    time.sleep(0.2)
    big = {"kind": "test", "detail": {"text": "x" * 2000}}

    def flood() -> float:
        t = time.monotonic()
        for _ in range(2000):  # ~4 MB: far more than any socket buffer
            served.daemon.bus.publish("event", served.clock.now(), big)
        return time.monotonic() - t

    elapsed = served.on_loop(flood)
    assert elapsed < 2.0  # publishing never waited for the reader
    with Client(served.socket, timeout_s=5.0) as c:
        assert "standby" in c.call("status")  # the daemon answers others meanwhile
    deadline = time.monotonic() + 10.0
    while server.dropped_clients == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.dropped_clients == 1
    stuck.close()
    served.on_loop(task.cancel)
    deadline = time.monotonic() + 5.0
    while not task.done() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert task.cancelled()


def test_no_daemon_raises_daemon_not_running(short_dir: Path) -> None:
    with pytest.raises(DaemonNotRunning, match="not running \\(no socket at"):
        Client(short_dir / "api.sock")

    async def go() -> None:
        with pytest.raises(DaemonNotRunning):
            await AsyncClient.connect(short_dir / "api.sock")

    asyncio.run(go())


def test_a_stale_socket_file_is_replaced(short_dir: Path, nights_db: Path, stager: Stager) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(short_dir / "api.sock"))
    stale.close()  # a socket file nobody listens on: a daemon that died
    s = ServedDaemon(short_dir, nights_db, stager, live_s=0).start()
    try:
        with Client(s.socket) as c:
            assert c.call("status")["presence"] is None
    finally:
        s.stop()
    assert not s.socket.exists()  # removed on the way out
