"""The A121 client against a fake exploration server replaying a recorded session byte for byte.

tests/hardware/data/a121_session.jsonl (written by tests/hardware/data/a121_make_session.py) holds
the exchange:
the commands the client must send, exactly, and the server's replies with their binary frames.
The fake server listens on 127.0.0.1 (a free port), checks every client line against the recording
and can cut, stall or corrupt the stream to test failure handling. Every socket read has a
timeout, so a failing test fails instead of hanging.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from appliance.config import parse_config
from appliance.errors import HardwareError, RadarUnavailable
from hardware.radar.a121 import A121Radar
from hardware.radar.a121_protocol import (
    ProtocolError,
    SparseIqSettings,
    command,
    parse_header,
    rss_version_at_least,
    setup_command,
)
from hardware.radar.source import RadarSource

SESSION = Path(__file__).parent / "data" / "a121_session.jsonl"
WAVELENGTH_M = 299_792_458.0 / 60.5e9


@dataclass
class Entry:
    sender: str
    line: bytes
    payload: bytes = b""


def load_session() -> tuple[dict[str, int | float], list[Entry]]:
    rows = [json.loads(x) for x in SESSION.read_text(encoding="utf-8").splitlines()]
    about = rows[0]["about"]
    entries = [
        Entry(r["from"], r["line"].encode("ascii"), base64.b64decode(r.get("payload_b64", "")))
        for r in rows[1:]
    ]
    return about, entries


ABOUT, ENTRIES = load_session()
N_FRAMES = int(ABOUT["frames"])


def is_frame(e: Entry) -> bool:
    return e.sender == "server" and b'"result_info"' in e.line


@dataclass
class FakeServer:
    """Replays the recorded session to each connection, in order.

    Args:
        script: The exchange (defaults to the recording).
        cut_after: Close the connection abruptly after this many frames.
        stall_after: Stop sending after this many frames (the socket stays open).
    """

    script: list[Entry] = field(default_factory=lambda: list(ENTRIES))
    cut_after: int | None = None
    stall_after: int | None = None
    received: list[bytes] = field(default_factory=list)
    mismatches: list[tuple[bytes, bytes]] = field(default_factory=list)
    connections: int = 0
    closed_by_client: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self._sock.close()

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(5.0)
                with contextlib.suppress(OSError):
                    self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        rfile = conn.makefile("rb")
        frames = 0
        for e in self.script:
            if e.sender == "client":
                got = rfile.readline()
                self.received.append(got)
                if got != e.line:
                    self.mismatches.append((got, e.line))
                    return
                continue
            if is_frame(e):
                if frames == self.cut_after:
                    conn.shutdown(socket.SHUT_RDWR)
                    return
                if frames == self.stall_after:
                    while not self._done.is_set() and rfile.readline():
                        pass  # keep the socket open, send nothing
                    return
                frames += 1
            conn.sendall(e.line + e.payload)
        # The session is over: wait until the client hangs up.
        if rfile.read() == b"":
            self.closed_by_client += 1


class StepClock:
    """A clock that moves 50 ms (plus jitter) every time it is read, like frames arriving."""

    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        self.t = start_s
        self.reads = 0

    def now(self) -> float:
        self.reads += 1
        self.t += 0.05 + (0.01 if self.reads % 2 else -0.01)
        return self.t

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - unused here
        self.t += seconds


def settings() -> SparseIqSettings:
    return SparseIqSettings.for_range(0.3, 2.0, 0.06, 20.0)


def radar(server: FakeServer, **kw: float) -> A121Radar:
    return A121Radar(settings(), StepClock(), port=server.port, connect_timeout_s=5.0, **kw)


@pytest.fixture
def server() -> Iterator[FakeServer]:
    s = FakeServer()
    yield s
    s.close()


def make_server(**kw: object) -> Callable[[], FakeServer]:
    def build() -> FakeServer:
        return FakeServer(**kw)  # type: ignore[arg-type]

    return build


def expected_iq() -> np.ndarray:
    """The recorded frames decoded independently of the client: (frames, sweeps, points)."""
    out = []
    for e in ENTRIES:
        if is_frame(e):
            pairs = np.frombuffer(e.payload, "<i2").reshape(
                int(ABOUT["sweeps"]), int(ABOUT["points"]), 2
            )
            out.append(pairs[..., 0].astype(np.float64) + 1j * pairs[..., 1])
    return np.asarray(out)


# ---------------------------------------------------------------------- protocol, offline


def test_settings_map_the_default_range_onto_the_point_grid() -> None:
    s = settings()
    assert (s.start_point, s.step_length, s.num_points) == (120, 24, 29)
    assert parse_config({"radar": {"type": "a121"}}).radar.n_bins == s.num_points
    fine = SparseIqSettings.for_range(0.3, 1.0, 0.02, 20.0)
    assert fine.step_length == 8  # 20 mm is not a valid step: the next finer one (8 x 2.5 mm)


def test_settings_reject_what_the_sensor_cannot_do() -> None:
    with pytest.raises(ValueError, match="frame buffer"):
        SparseIqSettings.for_range(0.3, 3.0, 0.005, 20.0, sweeps_per_frame=16)
    with pytest.raises(ValueError, match="step_length"):
        SparseIqSettings(120, 29, 5, 3, 32, 16, 20.0)
    with pytest.raises(ValueError, match="hwaas"):
        SparseIqSettings(120, 29, 24, 3, 0, 16, 20.0)


def test_config_names_a_range_the_a121_cannot_measure() -> None:
    from appliance.errors import ConfigError

    bad = {"radar": {"type": "a121", "range_step_m": 0.003, "range_end_m": 5.0}}
    with pytest.raises(ConfigError, match="frame buffer"):
        parse_config(bad)
    # The simulator has no such limit.
    assert parse_config({"radar": {"range_step_m": 0.003, "range_end_m": 5.0}}).radar.n_bins > 0


def test_commands_are_the_recorded_bytes() -> None:
    client_lines = [e.line for e in ENTRIES if e.sender == "client"]
    assert client_lines[0] == command("get_system_info") == b'{"cmd":"get_system_info"}\n'
    assert client_lines[2] == setup_command(settings(), iq_imbalance_key=True)
    old = json.loads(setup_command(settings(), iq_imbalance_key=False))
    assert "iq_imbalance_compensation" not in old["groups"][0][0]["config"]["subsweeps"][0]


def test_rss_versions() -> None:
    assert rss_version_at_least("a121-v1.10.0", (1, 9, 1))
    assert not rss_version_at_least("v1.9.0", (1, 9, 1))
    assert rss_version_at_least("v1.9.1.dev84", (1, 9, 1))
    assert rss_version_at_least("", (1, 9, 1))


def test_parse_header_recovers_a_header_run_into_by_garbage() -> None:
    good = b'{"status":"ok","result_info":[[{"tick":5}]],"payload_size":4}\n'
    assert parse_header(b"\x00\x9a{\x22zz" + good)["payload_size"] == 4
    with pytest.raises(ProtocolError):
        parse_header(b"\x00\x01\x02 not json\n")
    with pytest.raises(ProtocolError):
        parse_header(b"[1, 2]\n")


# ---------------------------------------------------------------------- against the fake server


def test_handshake_is_byte_exact_and_the_sensor_stops(server: FakeServer) -> None:
    r = radar(server)
    assert isinstance(r, RadarSource)
    r.start()
    assert r.running and r.server is not None
    assert r.server.rss_version == "a121-v1.10.0" and r.server.ticks_per_second == 1_000_000
    frames = r.read(10)
    assert frames is not None and frames.n_frames == 10
    r.stop()
    assert not r.running
    assert r.read(5) is None
    assert server.mismatches == []
    assert server.received == [e.line for e in ENTRIES if e.sender == "client"]
    assert server.received[-1] == b'{"cmd":"stop_streaming"}\n'
    server.close()  # join: the server has seen the client hang up after the stop reply
    assert server.closed_by_client == 1


def test_frames_decode_to_values_shapes_ranges_and_times(server: FakeServer) -> None:
    r = radar(server)
    r.start()
    a = r.read(12)
    b = r.read(N_FRAMES - 12)
    r.stop()
    assert a is not None and b is not None
    iq = np.concatenate([a.iq, b.iq])
    t = np.concatenate([a.t_s, b.t_s])
    assert iq.shape == (N_FRAMES, 29) and iq.dtype == np.complex64
    np.testing.assert_allclose(iq, expected_iq().mean(axis=1), rtol=0, atol=1e-3)
    assert a.range_start_m == pytest.approx(0.30) and a.range_step_m == pytest.approx(0.06)
    assert a.frame_rate_hz == 20.0 and a.radar == "A121"
    # The chest is where the recording put it, and its phase follows the 4-mm breath.
    dyn = np.abs(iq - iq.mean(axis=0)).mean(axis=0)
    assert int(np.argmax(dyn)) == ABOUT["chest_bin"]
    assert a.range_start_m + ABOUT["chest_bin"] * a.range_step_m == pytest.approx(0.90)
    phase = np.unwrap(np.angle(iq[:, int(ABOUT["chest_bin"])]))
    disp_mm = (phase - phase[0]) * WAVELENGTH_M / (4 * np.pi) * 1000
    k = np.arange(N_FRAMES) / 20.0
    truth_mm = 2.0 * np.sin(2 * np.pi * 0.25 * k)
    assert np.max(np.abs(disp_mm - truth_mm)) < 0.05
    # Capture times: the frame ticks (50 ms apart, across the uint32 wrap), not the jittery
    # arrival times, anchored on the injected clock's first reading.
    np.testing.assert_allclose(np.diff(t), 0.05, atol=1e-6)  # float64 ulp at 1.7e9 s
    assert t[0] == pytest.approx(1_700_000_000.0 + 0.06)


def test_keep_sweeps_returns_every_sweep(server: FakeServer) -> None:
    r = radar(server, keep_sweeps=True)  # type: ignore[arg-type]
    r.start()
    f = r.read(3)
    r.stop()
    assert f is not None and f.iq.shape == (3, 16, 29)
    np.testing.assert_array_equal(f.iq, expected_iq()[:3].astype(np.complex64))


def test_server_down_is_a_clear_hardware_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here once closed
    r = A121Radar(settings(), StepClock(), port=port, connect_timeout_s=2.0)
    with pytest.raises(RadarUnavailable, match="cannot connect") as e:
        r.start()
    assert isinstance(e.value, HardwareError)
    assert r.read(1) is None
    r.stop()  # harmless


def test_server_disappearing_mid_stream_then_reconnect() -> None:
    srv = FakeServer(cut_after=12)
    try:
        r = radar(srv)
        r.start()
        with pytest.raises(RadarUnavailable, match=r"closed the connection|connection lost"):
            r.read(20)  # 12 frames arrive, then the server is gone
        assert not r.running and r.read(1) is None
        r.start()  # the supervisor's retry: a fresh connection and handshake
        again = r.read(5)
        assert again is not None and again.n_frames == 5
        assert r.stats.connects == 2 and srv.connections == 2
        r.stop()
    finally:
        srv.close()


def test_a_stalled_server_times_out_instead_of_hanging() -> None:
    srv = FakeServer(stall_after=5)
    try:
        r = radar(srv, read_timeout_s=0.3)
        r.start()
        with pytest.raises(RadarUnavailable, match="no data"):
            r.read(10)
        r.stop()
    finally:
        srv.close()


def corrupted(k: int, how: str) -> list[Entry]:
    """The recording with frame k's header damaged."""
    script = []
    seen = 0
    for e in ENTRIES:
        if is_frame(e):
            if seen == k:
                if how == "garbage-header":
                    e = Entry("server", b'{"status":"ok","result_info":[[{"ti\xff\n', e.payload)
                elif how == "short-payload":
                    e = Entry(
                        "server",
                        e.line.replace(b'"payload_size":1856', b'"payload_size":1852'),
                        e.payload[:-4],
                    )
            seen += 1
        script.append(e)
    return script


@pytest.mark.parametrize("how", ["garbage-header", "short-payload"])
def test_a_malformed_reply_is_counted_skipped_and_the_stream_resyncs(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    srv = FakeServer(script=corrupted(4, how))
    try:
        r = radar(srv)
        r.start()
        f = r.read(N_FRAMES - 1)  # all the frames but the damaged one
        r.stop()
        assert f is not None and f.n_frames == N_FRAMES - 1
        exp = np.delete(expected_iq().mean(axis=1), 4, axis=0)
        np.testing.assert_allclose(f.iq, exp, atol=1e-3)
        assert r.stats.bad_replies >= 1 and r.errors.total >= 1
        assert any("A121" in m and "(1 so far)" in m for m in caplog.messages)
        assert srv.mismatches == []  # the stop still went through
    finally:
        srv.close()


def test_a_stream_of_garbage_ends_in_a_clean_error() -> None:
    frame = next(e for e in ENTRIES if is_frame(e))
    garbage = [Entry("server", b"\x00garbage %d\n" % i) for i in range(50)]
    script = [e for e in ENTRIES if not is_frame(e)]
    i = next(i for i, e in enumerate(script) if b'"status":"start"' in e.line)
    script = [*script[: i + 1], frame, *garbage, *script[i + 1 :]]
    srv = FakeServer(script=script)
    try:
        r = radar(srv, max_bad_replies=10)  # type: ignore[arg-type]
        r.start()
        with pytest.raises(RadarUnavailable, match="bad replies in a row"):
            r.read(5)
        assert r.stats.bad_replies == 10
    finally:
        srv.close()


def test_a_server_error_reply_is_reported() -> None:
    script = []
    for e in ENTRIES:
        if b'"metadata"' in e.line:
            e = Entry("server", b'{"status":"error","message":"Sensor calibration failed"}\n')
        script.append(e)
        if b'"status":"error"' in e.line:
            break
    srv = FakeServer(script=script)
    try:
        r = radar(srv)
        with pytest.raises(RadarUnavailable, match="Sensor calibration failed"):
            r.start()
        assert not r.running
    finally:
        srv.close()


def test_a_missing_sensor_is_reported() -> None:
    script = [
        Entry(
            "server",
            b'{"status":"ok","payload_size":0,"sensor_info":[{"connected":false}]}\n',
        )
        if b'"sensor_info"' in e.line
        else e
        for e in ENTRIES
    ]
    srv = FakeServer(script=script)
    try:
        with pytest.raises(RadarUnavailable, match="not connected"):
            radar(srv).start()
    finally:
        srv.close()


def test_calibration_request_restarts_the_session() -> None:
    script: list[Entry] = []
    seen = 0
    for e in ENTRIES:
        if is_frame(e):
            if seen == 2:
                e = Entry(
                    "server",
                    e.line.replace(b'"calibration_needed":false', b'"calibration_needed":true'),
                    e.payload,
                )
            seen += 1
            if seen == 4:
                # The client stops, sets up and starts again: the server answers as recorded.
                tail = [x for x in ENTRIES if not is_frame(x)]
                stop = [x for x in ENTRIES if b"stop_streaming" in x.line or b'"stop"' in x.line]
                setup_on = next(i for i, x in enumerate(tail) if b'"cmd":"setup"' in x.line)
                script += [*stop, *tail[setup_on : setup_on + 4]]
        script.append(e)
    srv = FakeServer(script=script)
    try:
        r = radar(srv)
        r.start()
        first = r.read(3)  # frame 2 asks for calibration: the session restarts after the batch
        assert first is not None and first.n_frames == 3
        assert r.stats.recalibrations == 1 and r.running
        more = r.read(5)
        assert more is not None and more.n_frames == 5
        r.stop()
        assert srv.mismatches == []
    finally:
        srv.close()


# ---------------------------------------------------------------------- wiring


def test_board_reports_the_a121_by_probing_its_server(server: FakeServer) -> None:
    from hardware.board import detect_board

    cfg = parse_config({"radar": {"type": "a121", "a121_port": server.port}})
    dev = next(d for d in detect_board(cfg).devices if d.role == "radar")
    assert dev.present and not dev.simulated and str(server.port) in dev.name
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    cfg = parse_config({"radar": {"type": "a121", "a121_port": free}})
    dev = next(d for d in detect_board(cfg).devices if d.role == "radar")
    assert not dev.present


def test_runtime_builds_the_a121_from_config() -> None:
    from appliance.runtime import check_simulator, radar_from_config

    cfg = parse_config({"radar": {"type": "a121", "a121_port": 7000, "a121_hwaas": 16}})
    r = radar_from_config(cfg, StepClock())
    assert isinstance(r, A121Radar)
    assert (r.port, r.settings.hwaas, r.settings.num_points) == (7000, 16, cfg.radar.n_bins)
    check_simulator(cfg)  # `appliance config check` accepts it
