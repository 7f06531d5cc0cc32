"""The Acconeer A121 (XE121 Raspberry Pi HAT) as a `RadarSource`, through the exploration server.

`A121Radar` is a small client of `acc_exploration_server_a121` (TCP 127.0.0.1:6110 on the Pi;
hardware/radar/a121_protocol.py describes the protocol). `start()` connects, checks that the server
drives an A121 with its sensor attached, configures sparse IQ for breathing and starts streaming;
`read(n)` blocks until n frames have arrived (the daemon runs it in a thread); `stop()` sends
`stop_streaming`, waits for the server to confirm and closes the connection, so the sensor itself
stops measuring (standby really switches the radar off).

Failure handling: a server that is down, a connection that drops, or no frame within
`read_timeout_s` raise `RadarUnavailable`; the daemon's supervisor retries the radar task with
back-off and the next `start()` reconnects. A malformed reply (a header that is not JSON, a result
whose payload has the wrong size) is counted and logged (sampled, not once per frame), skipped,
and the stream resyncs on the next header line; `max_bad_replies` bad replies in a row mean the
link cannot be trusted and raise `RadarUnavailable` too. No call ever waits without a timeout.

Capture times come from the injected clock, refined by the server's frame ticks: the first frame
is stamped with `clock.now()` at its arrival and later ones at that anchor plus their tick offset,
so network jitter does not reach the DSP; a drift of more than `resync_s` from the clock (a clock
step, lost frames) re-anchors on the clock.

Frames are (sweeps_per_frame, num_points) int16-count IQ; by default the sweeps of a frame are
averaged (coherently: at 20 Hz and 16 sweeps a frame spans a few ms, far shorter than a breath), so
`read` returns complex64 [frames, points] like the simulator; `keep_sweeps=True` keeps
[frames, sweeps, points] for recordings.

References:
    Acconeer AB. Acconeer Exploration Tool (acconeer-python-exploration), a121 exploration
    protocol; sparse IQ service and breathing reference application (profile 3, HWAAS 32,
    16 sweeps per frame, 20 Hz). https://docs.acconeer.com
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from appliance.clock import Clock
from appliance.config import RadarConfig
from appliance.errors import RadarUnavailable
from appliance.frames import RadarFrames
from hardware.radar.a121_protocol import (
    DEFAULT_PORT,
    ProtocolError,
    SessionMetadata,
    SparseIqSettings,
    command,
    decode_frame,
    parse_header,
    parse_metadata,
    parse_result_info,
    rss_version_at_least,
    setup_command,
)
from hardware.radar.counted_errors import ErrorCounter

__all__ = ["A121Radar", "A121Stats", "ServerInfo"]

log = logging.getLogger(__name__)

_MAX_LINE = 64 * 1024  # a header is a few hundred bytes; more is a lost payload or garbage
_MAX_PAYLOAD = 1 << 20  # a full 4095-sample frame is 16 kB
_MAX_SKIPPED = 2000  # messages tolerated while waiting for one reply (logs, in-flight frames)
_TICK_WRAP = 2**32
_LOG_LEVELS = {"ERROR": logging.WARNING, "WARNING": logging.INFO}


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What the server said about itself.

    Attributes:
        rss_version: Acconeer's radar system software version ("v1.9.0").
        ticks_per_second: Rate of the frame ticks, Hz.
        hw: Board name, if the server gives one ("xe121").
    """

    rss_version: str
    ticks_per_second: int
    hw: str


@dataclass(slots=True)
class A121Stats:
    """Counters of one source's life (across reconnects).

    Attributes:
        connects: Successful handshakes.
        frames: Frames delivered.
        bad_replies: Malformed or unexpected replies skipped.
        saturated: Frames the sensor flagged as saturated.
        delayed: Frames the server flagged as delayed (frames were lost).
        recalibrations: Sessions restarted because the sensor asked for calibration.
    """

    connects: int = 0
    frames: int = 0
    bad_replies: int = 0
    saturated: int = 0
    delayed: int = 0
    recalibrations: int = 0


class _Link:
    """One TCP connection with line and exact-size reads, every read under a timeout."""

    def __init__(self, sock: socket.socket, device: str, timeout_s: float) -> None:
        self._sock = sock
        self._device = device
        self._timeout_s = timeout_s
        self._buf = bytearray()
        sock.settimeout(timeout_s)

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as e:
            raise RadarUnavailable(self._device, f"send failed ({e})") from None

    def _fill(self) -> None:
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise RadarUnavailable(
                self._device, f"no data from the server for {self._timeout_s:g} s"
            ) from None
        except OSError as e:
            raise RadarUnavailable(self._device, f"connection lost ({e})") from None
        if not chunk:
            raise RadarUnavailable(self._device, "the server closed the connection")
        self._buf += chunk

    def read_line(self) -> bytes:
        """Return the next line including its newline.

        Raises:
            ProtocolError: more than _MAX_LINE bytes without a newline (they are dropped).
            RadarUnavailable: timeout or lost connection.
        """
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[: i + 1])
                del self._buf[: i + 1]
                return line
            if len(self._buf) > _MAX_LINE:
                self._buf.clear()
                raise ProtocolError("no newline within 64 kB")
            self._fill()

    def read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            self._fill()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class A121Radar:
    """A `RadarSource` reading A121 sparse IQ from the exploration server.

    Args:
        settings: The sparse-IQ configuration (`SparseIqSettings.for_range`).
        clock: Time source for capture times.
        host: Server address (the HAT's server listens on 127.0.0.1).
        port: Server TCP port.
        connect_timeout_s: Limit for connecting and for each handshake reply, s.
        read_timeout_s: Longest wait for data while streaming, s; default max(2, 3 frames).
        keep_sweeps: Return [frames, sweeps, points] instead of averaging the sweeps.
        max_bad_replies: Bad replies in a row after which the link counts as lost.
        resync_s: Largest tolerated gap between tick time and the clock before re-anchoring, s.
    """

    def __init__(
        self,
        settings: SparseIqSettings,
        clock: Clock,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float | None = None,
        keep_sweeps: bool = False,
        max_bad_replies: int = 20,
        resync_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.frame_rate_hz = float(settings.frame_rate_hz)
        self.clock = clock
        self.host = host
        self.port = int(port)
        self.device = f"A121 at {host}:{self.port}"
        self.connect_timeout_s = float(connect_timeout_s)
        self.read_timeout_s = (
            float(read_timeout_s)
            if read_timeout_s is not None
            else max(2.0, 3.0 / self.frame_rate_hz)
        )
        self.keep_sweeps = keep_sweeps
        self.max_bad_replies = int(max_bad_replies)
        self.resync_s = float(resync_s)
        self.stats = A121Stats()
        self.errors = ErrorCounter(log, self.device)
        self.server: ServerInfo | None = None
        self.metadata: SessionMetadata | None = None
        self._link: _Link | None = None
        self._io = threading.Lock()
        self._stopping = threading.Event()
        self._streaming = False
        self._bad_in_row = 0
        self._recalibrate = False
        self._anchor: tuple[float, int] | None = None  # (clock s, unwrapped tick)
        self._tick: tuple[int, int] | None = None  # (last raw tick, unwrapped)
        self._last_t = -np.inf

    @classmethod
    def from_config(cls, radar: RadarConfig, clock: Clock) -> A121Radar:
        """The source `[radar]` describes (type "a121").

        Raises:
            ValueError: the range does not fit the sensor (the config validator checks it first).
        """
        settings = SparseIqSettings.for_range(
            radar.range_start_m,
            radar.range_end_m,
            radar.range_step_m,
            radar.frame_rate_hz,
            profile=radar.a121_profile,
            hwaas=radar.a121_hwaas,
            sweeps_per_frame=radar.a121_sweeps_per_frame,
        )
        return cls(settings, clock, host=radar.a121_host, port=radar.a121_port)

    # ------------------------------------------------------------------ geometry

    @property
    def range_start_m(self) -> float:
        """Distance of point 0, metres (exact once connected)."""
        return self.settings.start_point * self._base_step_m

    @property
    def range_step_m(self) -> float:
        """Spacing of points, metres (exact once connected)."""
        return self.settings.step_length * self._base_step_m

    @property
    def _base_step_m(self) -> float:
        return self.metadata.base_step_length_m if self.metadata else 0.0025

    @property
    def running(self) -> bool:
        """Whether the sensor is streaming."""
        return self._streaming

    # ------------------------------------------------------------------ RadarSource

    def start(self) -> None:
        """Connect (again), configure the sensor and start streaming.

        Raises:
            RadarUnavailable: the server is down, refuses, has no A121 or no sensor attached.
        """
        with self._io:
            self._close()
            self._stopping.clear()
            try:
                sock = socket.create_connection(
                    (self.host, self.port), timeout=self.connect_timeout_s
                )
            except OSError as e:
                raise RadarUnavailable(self.device, f"cannot connect ({e})") from None
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._link = _Link(sock, self.device, self.connect_timeout_s)
            try:
                self._handshake(self._link)
                self._link._sock.settimeout(self.read_timeout_s)
                self._link._timeout_s = self.read_timeout_s
            except ProtocolError as e:
                self._close()
                raise RadarUnavailable(self.device, f"bad handshake reply ({e})") from None
            except RadarUnavailable:
                self._close()
                raise
            self.stats.connects += 1
            self._bad_in_row = 0
            self._anchor = None
            self._tick = None
            log.info(
                "A121 streaming: rss=%s points=%d from %.3f m step %.4f m, %d sweeps, %g Hz",
                self.server.rss_version if self.server else "?",
                self.settings.num_points,
                self.range_start_m,
                self.range_step_m,
                self.settings.sweeps_per_frame,
                self.frame_rate_hz,
            )

    def stop(self) -> None:
        """Stop streaming (the sensor stops measuring) and disconnect; never raises.

        Safe to call from another thread while `read` blocks: the reader returns after its
        current frame.
        """
        self._stopping.set()
        got = self._io.acquire(timeout=self.read_timeout_s + 1.0)
        try:
            link = self._link
            if link is None:
                return
            if not got:
                log.warning("%s: reader did not yield; dropping the connection", self.device)
                link.shutdown()
                return
            if self._streaming:
                try:
                    link.send(command("stop_streaming"))
                    self._await(link, lambda h: h.get("status") == "stop", "stop_streaming")
                    log.info("A121 stopped (%d frames so far)", self.stats.frames)
                except (RadarUnavailable, ProtocolError) as e:
                    log.warning("%s: stop not confirmed (%s); disconnecting", self.device, e)
            self._close()
        finally:
            if got:
                self._io.release()

    def read(self, n_frames: int) -> RadarFrames | None:
        """Block until `n_frames` frames have arrived and return them.

        Returns:
            The frames, or None when the source is stopped (fewer frames if `stop` was called
            meanwhile).

        Raises:
            ValueError: n_frames < 1.
            RadarUnavailable: the link was lost, timed out or stayed corrupt (the connection is
                closed; `start` reconnects).
        """
        if n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        with self._io:
            if self._link is None or not self._streaming:
                return None
            try:
                return self._read_locked(self._link, n_frames)
            except RadarUnavailable:
                self._close()
                raise

    # ------------------------------------------------------------------ internals

    def _read_locked(self, link: _Link, n: int) -> RadarFrames | None:
        s = self.settings
        frames: list[np.ndarray] = []
        times: list[float] = []
        while len(frames) < n and not self._stopping.is_set():
            header, payload = self._next(link)
            if "result_info" not in header:
                if header.get("status") == "stop":
                    self._streaming = False
                    break
                self._bad("unexpected reply while streaming", _keys(header))
                continue
            try:
                info = parse_result_info(header)
                iq = decode_frame(payload, s.sweeps_per_frame, s.num_points)
            except ProtocolError as e:
                self._bad("bad frame", str(e))
                continue
            self._bad_in_row = 0
            if info.data_saturated:
                self.stats.saturated += 1
                self.errors.note("saturated frame", "lower a121_hwaas or move the device")
            if info.frame_delayed:
                self.stats.delayed += 1
                self.errors.note("delayed frame", "the server dropped frames")
            if info.calibration_needed:
                self._recalibrate = True
            frames.append(iq if self.keep_sweeps else iq.mean(axis=0, dtype=np.complex64))
            times.append(self._stamp(info.tick))
        if self._recalibrate and self._streaming and not self._stopping.is_set():
            self._restart_session(link)
        if not frames:
            return None
        self.stats.frames += len(frames)
        return RadarFrames(
            t_s=np.asarray(times, np.float64),
            iq=np.stack(frames).astype(np.complex64, copy=False),
            range_start_m=self.range_start_m,
            range_step_m=self.range_step_m,
            frame_rate_hz=self.frame_rate_hz,
            radar="A121",
        )

    def _stamp(self, tick: int) -> float:
        now = self.clock.now()
        tps = self.server.ticks_per_second if self.server else 0
        if self._tick is None:
            unwrapped = tick
        else:
            raw, acc = self._tick
            unwrapped = acc + (tick - raw) % _TICK_WRAP
        self._tick = (tick, unwrapped)
        if tps <= 0:
            t = now
        else:
            if self._anchor is None:
                self._anchor = (now, unwrapped)
            t0, k0 = self._anchor
            t = t0 + (unwrapped - k0) / tps
            if abs(t - now) > self.resync_s:
                log.info("%s: frame time %.2f s off the clock; re-anchored", self.device, t - now)
                self._anchor = (now, unwrapped)
                t = now
        if t <= self._last_t:  # a clock step backwards: keep the batch increasing
            t = self._last_t + 1e-6
        self._last_t = t
        return t

    def _handshake(self, link: _Link) -> None:
        link.send(command("get_system_info"))
        h = self._await(link, lambda h: "system_info" in h, "get_system_info")
        si = h["system_info"]
        if not isinstance(si, dict):
            raise ProtocolError("system_info is not an object")
        if si.get("sensor") != "a121":
            raise RadarUnavailable(
                self.device, f"the server drives {si.get('sensor')!r}, not an A121"
            )
        tps = si.get("ticks_per_second", 0)
        self.server = ServerInfo(
            rss_version=str(si.get("rss_version", "")),
            ticks_per_second=tps if isinstance(tps, int) and tps > 0 else 0,
            hw=str(si.get("hw", "")),
        )
        link.send(command("get_sensor_info"))
        h = self._await(link, lambda h: "sensor_info" in h, "get_sensor_info")
        infos = h["sensor_info"]
        sid = self.settings.sensor_id
        if not isinstance(infos, list) or len(infos) < sid or not isinstance(infos[sid - 1], dict):
            raise ProtocolError("sensor_info does not list the sensor")
        if not infos[sid - 1].get("connected", False):
            raise RadarUnavailable(self.device, f"sensor {sid} is not connected to the board")
        self._setup(link)

    def _setup(self, link: _Link) -> None:
        s = self.settings
        new_key = rss_version_at_least(self.server.rss_version if self.server else "", (1, 9, 1))
        link.send(setup_command(s, iq_imbalance_key=new_key))
        md = parse_metadata(self._await(link, lambda h: "metadata" in h, "setup"))
        if md.sweep_data_length != s.num_points or md.frame_data_length != (
            s.num_points * s.sweeps_per_frame
        ):
            raise RadarUnavailable(
                self.device,
                f"the server set up {md.frame_data_length} samples per frame"
                f" ({md.sweep_data_length} per sweep), expected"
                f" {s.num_points * s.sweeps_per_frame} ({s.num_points})",
            )
        self.metadata = md
        link.send(command("start_streaming"))
        self._await(link, lambda h: h.get("status") == "start", "start_streaming")
        self._streaming = True

    def _restart_session(self, link: _Link) -> None:
        """Stop, set up again (the server recalibrates the sensor) and restart streaming."""
        self._recalibrate = False
        self.stats.recalibrations += 1
        log.info("%s: the sensor asks for calibration; restarting the session", self.device)
        link.send(command("stop_streaming"))
        self._await(link, lambda h: h.get("status") == "stop", "stop_streaming")
        self._streaming = False
        try:
            self._setup(link)
        except ProtocolError as e:
            raise RadarUnavailable(self.device, f"bad reply while recalibrating ({e})") from None

    def _await(self, link: _Link, want: Any, what: str) -> dict[str, Any]:
        """Read replies until one satisfies `want`; results and logs in between are skipped."""
        for _ in range(_MAX_SKIPPED):
            header, _payload = self._next(link)
            if want(header):
                return header
        raise RadarUnavailable(self.device, f"no reply to {what}")

    def _next(self, link: _Link) -> tuple[dict[str, Any], bytes]:
        """The next well-formed message (header, payload); log lines are logged and skipped.

        Raises:
            RadarUnavailable: link lost, timeout, a server error, or too many bad replies.
        """
        while True:
            try:
                header = parse_header(link.read_line())
            except ProtocolError as e:
                self._bad("malformed header", str(e))
                continue
            size = header.get("payload_size", 0)
            bad_size = isinstance(size, bool) or not isinstance(size, int)
            if bad_size or not 0 <= size <= _MAX_PAYLOAD:
                # The length cannot be trusted: resync on the next line instead.
                self._bad("bad payload_size", repr(size)[:40])
                continue
            payload = link.read_exact(size) if size else b""
            status = header.get("status")
            if status == "log":
                level = _LOG_LEVELS.get(str(header.get("level", "")), logging.DEBUG)
                log.log(level, "A121 server [%s] %s", header.get("module", ""), header.get("log"))
                continue
            if status == "error":
                raise RadarUnavailable(
                    self.device, f"server error: {str(header.get('message', ''))[:200]}"
                )
            return header, payload

    def _bad(self, kind: str, detail: str) -> None:
        self.stats.bad_replies += 1
        self._bad_in_row += 1
        self.errors.note(kind, detail)
        if self._bad_in_row >= self.max_bad_replies:
            raise RadarUnavailable(
                self.device, f"{self._bad_in_row} bad replies in a row; reconnecting"
            )

    def _close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
        self._streaming = False


def _keys(header: dict[str, Any]) -> str:
    return ",".join(sorted(str(k) for k in header)[:8])
