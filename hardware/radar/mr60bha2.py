"""The Seeed MR60BHA2 60-GHz breathing and heartbeat module on the Pi's UART.

The module does its own DSP: it reports breath and heart phase, breath and heart rates, distance,
presence and target positions, not IQ. This module has three parts:

- `Mr60Decoder`, a streaming decoder of its "tiny frame" protocol (pure, no I/O);
- `Mr60Aggregator`, a pure stage turning stamped messages into one `ModuleSecond` per second;
- `Mr60Radar`, the source reading the serial port (pyserial, imported lazily: the `pi` extra);
- `Mr60Twin` and `TwinPort`, the simulated twin: a body's breathing, heartbeat and rates encoded
  as the module's frames, behind a serial port that can be unplugged (tests, no hardware).

`appliance.module_front` maps the readings onto the pipeline's per-second values.

Frame format (Seeed's MR60BHA2 Arduino library and ESPHome's `seeed_mr60bha2`), header fields big
endian, payload values little endian (the module's MCU):

| bytes | field | |
|---|---|---|
| 1 | SOF | 0x01 |
| 2 | ID | frame id |
| 2 | LEN | payload length |
| 2 | TYPE | message type |
| 1 | HEAD_CKSUM | ~(XOR of the 7 bytes before it) |
| LEN | DATA | payload |
| 1 | DATA_CKSUM | ~(XOR of DATA) |

Types decoded: 0x0A13 phases (3 × float32: total, breath, heart), 0x0A14 breath rate (float32,
/min), 0x0A15 heart rate (float32, /min), 0x0A16 distance (uint32 flag, non-zero = valid; float32
cm), 0x0F09 presence (uint8/uint16, non-zero = someone), 0x0A04 target positions (uint32 count,
then per target float32 x, float32 y in metres, int32 Doppler index, int32 cluster id).

Robustness: a frame is accepted only if its header checksum holds, its type is one of these with a
plausible length, and its data checksum holds. Anything else (garbage, a truncated frame, a
corrupt byte, a frame cut by the start of another) is counted and logged (sampled by
`ErrorCounter`), and decoding resumes at the next SOF after the rejected one, so a valid frame
that starts inside rejected bytes is still found. The pending buffer never exceeds one maximal
frame, `feed` never raises and never waits. Frame IDs are not used to reject frames (the vendor
documents no sequence rule); a jump is only counted in `stats.id_jumps`.

References:
    Seeed Studio (2024). MR60BHA2 60GHz mmWave Breathing and Heartbeat module, wiki and
    Seeed_Arduino_mmWave library (SEEED_MR60BHA2, SeeedmmWave frame handling).
    ESPHome: components/seeed_mr60bha2.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from appliance.clock import Clock
from appliance.errors import RadarUnavailable
from hardware.radar.counted_errors import ErrorCounter

__all__ = [
    "BreathRate",
    "Distance",
    "HeartRate",
    "ModuleSecond",
    "Mr60Aggregator",
    "Mr60Decoder",
    "Mr60Message",
    "Mr60Radar",
    "Mr60Stats",
    "Mr60Twin",
    "Phases",
    "Presence",
    "SerialPort",
    "TargetPoint",
    "Targets",
    "TwinPort",
    "checksum",
    "encode_frame",
    "open_serial",
]

log = logging.getLogger(__name__)

SOF = 0x01
HEADER_LEN = 8
TYPE_PHASES = 0x0A13
TYPE_BREATH_RATE = 0x0A14
TYPE_HEART_RATE = 0x0A15
TYPE_DISTANCE = 0x0A16
TYPE_PRESENCE = 0x0F09
TYPE_TARGETS = 0x0A04
_MAX_TARGETS = 8
_MAX_FRAME = HEADER_LEN + 4 + 16 * _MAX_TARGETS + 1


def _lengths_ok(frame_type: int, n: int) -> bool:
    if frame_type == TYPE_PHASES:
        return n == 12
    if frame_type in (TYPE_BREATH_RATE, TYPE_HEART_RATE):
        return n == 4
    if frame_type == TYPE_DISTANCE:
        return n == 8
    if frame_type == TYPE_PRESENCE:
        return 1 <= n <= 4
    if frame_type == TYPE_TARGETS:
        return n >= 4 and (n - 4) % 16 == 0 and (n - 4) // 16 <= _MAX_TARGETS
    return False


def checksum(data: bytes | bytearray | memoryview) -> int:
    """The module's checksum: the bitwise inverse of the XOR of all bytes, 0–255."""
    x = 0
    for b in bytes(data):
        x ^= b
    return (~x) & 0xFF


def encode_frame(frame_type: int, data: bytes, frame_id: int = 0) -> bytes:
    """Build one frame (for tests, and for commands to the module)."""
    head = struct.pack(">BHHH", SOF, frame_id & 0xFFFF, len(data), frame_type & 0xFFFF)
    return head + bytes([checksum(head)]) + data + bytes([checksum(data)])


# ---------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Phases:
    """0x0A13: the module's phase signals (radians, its own unwrapped scale).

    Attributes:
        total: Total chest phase (breath + heart + motion).
        breath: Breathing component.
        heart: Heartbeat component.
    """

    total: float
    breath: float
    heart: float


@dataclass(frozen=True, slots=True)
class BreathRate:
    """0x0A14: breathing rate, breaths/min (0 while the module has no estimate)."""

    rate_bpm: float


@dataclass(frozen=True, slots=True)
class HeartRate:
    """0x0A15: heart rate, beats/min (0 while the module has no estimate)."""

    rate_bpm: float


@dataclass(frozen=True, slots=True)
class Distance:
    """0x0A16: distance to the tracked chest.

    Attributes:
        valid: The module's flag (False: no target; `distance_m` is then meaningless).
        distance_m: Distance, metres (the module reports centimetres).
    """

    valid: bool
    distance_m: float


@dataclass(frozen=True, slots=True)
class Presence:
    """0x0F09: whether the module sees somebody."""

    present: bool


@dataclass(frozen=True, slots=True)
class TargetPoint:
    """One target of 0x0A04.

    Attributes:
        x_m: Lateral position, metres.
        y_m: Position along the boresight, metres.
        doppler_index: The module's Doppler bin (signed).
        cluster_id: The module's cluster id.
    """

    x_m: float
    y_m: float
    doppler_index: int
    cluster_id: int


@dataclass(frozen=True, slots=True)
class Targets:
    """0x0A04: the targets the module tracks."""

    targets: tuple[TargetPoint, ...]


Mr60Message = Phases | BreathRate | HeartRate | Distance | Presence | Targets


@dataclass(slots=True)
class Mr60Stats:
    """Decoder counters.

    Attributes:
        frames: Frames accepted.
        bytes_in: Bytes fed.
        garbage_bytes: Bytes skipped outside any accepted frame.
        rejected: Frames rejected (checksum, type, length, payload).
        id_jumps: Accepted frames whose id did not follow the previous one (counted only).
    """

    frames: int = 0
    bytes_in: int = 0
    garbage_bytes: int = 0
    rejected: int = 0
    id_jumps: int = 0


def _finite(*xs: float) -> bool:
    return all(math.isfinite(x) for x in xs)


def _parse(frame_type: int, data: bytes) -> Mr60Message | None:
    """The message of a frame whose checksums and length hold; None if its values are absurd."""
    if frame_type == TYPE_PHASES:
        total, breath, heart = struct.unpack("<3f", data)
        return Phases(total, breath, heart) if _finite(total, breath, heart) else None
    if frame_type in (TYPE_BREATH_RATE, TYPE_HEART_RATE):
        (rate,) = struct.unpack("<f", data)
        if not (_finite(rate) and 0.0 <= rate < 300.0):
            return None
        return BreathRate(rate) if frame_type == TYPE_BREATH_RATE else HeartRate(rate)
    if frame_type == TYPE_DISTANCE:
        flag, cm = struct.unpack("<If", data)
        if flag and not (_finite(cm) and 0.0 <= cm < 1000.0):
            return None
        return Distance(bool(flag), cm / 100.0 if flag else math.nan)
    if frame_type == TYPE_PRESENCE:
        return Presence(int.from_bytes(data, "little") != 0)
    if frame_type == TYPE_TARGETS:
        (count,) = struct.unpack_from("<I", data)
        if count != (len(data) - 4) // 16:
            return None
        pts = []
        for k in range(count):
            x, y, dop, cluster = struct.unpack_from("<ffii", data, 4 + 16 * k)
            if not _finite(x, y):
                return None
            pts.append(TargetPoint(x, y, dop, cluster))
        return Targets(tuple(pts))
    return None


_OK = "ok"
_SHORT_HEADER = "short header"
_SHORT_DATA = "short data"


def _check(buf: bytearray, j: int, n: int) -> tuple[str, int, int, int]:
    """Check the frame whose SOF is at `j` in buf[:n].

    Returns:
        (kind, frame_id, frame_type, end): kind is _OK, _SHORT_HEADER, _SHORT_DATA or the reason
        of a rejection; end is the index of the data checksum byte (-1 if the header is short,
        type -1 when unknown).
    """
    if n - j < HEADER_LEN:
        return _SHORT_HEADER, -1, -1, -1
    if checksum(buf[j : j + 7]) != buf[j + 7]:
        return "bad header checksum", -1, -1, -1
    frame_id, length, frame_type = struct.unpack_from(">HHH", buf, j + 1)
    if not _lengths_ok(frame_type, length):
        return "unknown type or bad length", frame_id, frame_type, -1
    end = j + HEADER_LEN + length
    if n <= end:
        return _SHORT_DATA, frame_id, frame_type, end
    if checksum(buf[j + HEADER_LEN : end]) != buf[end]:
        return "bad data checksum", frame_id, frame_type, end
    return _OK, frame_id, frame_type, end


def _holds_frame(buf: bytearray, j: int, last: int, n: int) -> bool:
    """Whether a complete valid frame starts in buf(j, last]."""
    p = buf.find(SOF, j + 1, last + 1)
    while p >= 0:
        if _check(buf, p, n)[0] == _OK:
            return True
        p = buf.find(SOF, p + 1, last + 1)
    return False


class Mr60Decoder:
    """Streaming decoder of the module's frames.

    `feed(chunk)` takes any slice of the byte stream (a byte, a frame, several, cut anywhere) and
    returns the messages completed by it, in stream order.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._last_id: int | None = None
        self.stats = Mr60Stats()
        self.errors = ErrorCounter(log, "MR60BHA2")

    def feed(self, chunk: bytes) -> list[Mr60Message]:
        """Decode what `chunk` completes; never raises, never blocks."""
        self.stats.bytes_in += len(chunk)
        buf = self._buf
        buf += chunk
        out: list[Mr60Message] = []
        i = 0
        n = len(buf)
        while i < n:
            j = buf.find(SOF, i)
            if j < 0:
                self._skip(n - i)
                i = n
                break
            if j > i:
                self._skip(j - i)
                i = j
            kind, frame_id, frame_type, end = _check(buf, j, n)
            if kind == _SHORT_HEADER:
                break  # wait for the rest of the header
            if kind not in (_OK, _SHORT_DATA):
                self._reject(kind, f"type 0x{frame_type:04X}" if frame_type >= 0 else "")
                i = j + 1
                continue
            # A complete, valid frame starting inside this one's span means this one was cut
            # short (its lost tail replaced by the next frame's bytes): trust the inner one. An
            # honest frame's payload holding a whole valid frame is vanishingly unlikely.
            if _holds_frame(buf, j, min(end, n - 1), n):
                self._reject("frame cut short by the next frame", f"type 0x{frame_type:04X}")
                i = j + 1
                continue
            if kind == _SHORT_DATA:
                break  # wait for the data and its checksum
            msg = _parse(frame_type, bytes(buf[j + HEADER_LEN : end]))
            if msg is None:
                self._reject("implausible values", f"type 0x{frame_type:04X}")
                i = j + 1
                continue
            if self._last_id is not None and frame_id != (self._last_id + 1) & 0xFFFF:
                self.stats.id_jumps += 1
            self._last_id = frame_id
            self.stats.frames += 1
            out.append(msg)
            i = end + 1
        del buf[:i]
        if len(buf) > _MAX_FRAME:  # cannot happen (a pending frame is bounded); belt and braces
            self._skip(len(buf))
            buf.clear()
        return out

    def _skip(self, n: int) -> None:
        if n > 0:
            self.stats.garbage_bytes += n
            self.errors.note("garbage bytes skipped", f"{n} bytes")

    def _reject(self, kind: str, detail: str = "") -> None:
        # The SOF byte of the rejected frame is skipped; what follows is scanned again.
        self.stats.rejected += 1
        self.stats.garbage_bytes += 1
        self.errors.note(kind, detail)


# ---------------------------------------------------------------------- one reading per second


@dataclass(frozen=True, slots=True)
class ModuleSecond:
    """What the module reported during one second.

    Attributes:
        t_s: End of the second, UTC epoch seconds.
        present: The module's last presence verdict (None until it gave one).
        breath_rate_bpm: Latest breathing rate if fresh (≤ `hold_s` old) and non-zero, else None.
        heart_rate_bpm: Latest heart rate if fresh and non-zero, else None.
        distance_m: Latest valid distance if fresh, metres, else None.
        breath_phase: (k,) float32 breathing-phase samples of this second, radians (module
            scale); never leaves the device.
        heart_phase: (k,) float32 heartbeat-phase samples of this second, radians.
        total_phase: (k,) float32 total-phase samples of this second, radians.
        n_targets: Targets in the latest target report (0 if none yet).
    """

    t_s: float
    present: bool | None
    breath_rate_bpm: float | None
    heart_rate_bpm: float | None
    distance_m: float | None
    breath_phase: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    heart_phase: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    total_phase: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    n_targets: int = 0


class Mr60Aggregator:
    """Collects stamped messages into one `ModuleSecond` per whole second of the clock.

    Args:
        hold_s: How long a rate or distance stays valid without a new report, s.
    """

    def __init__(self, hold_s: float = 5.0) -> None:
        self.hold_s = hold_s
        self._second: int | None = None
        self._phases: list[Phases] = []
        self._present: bool | None = None
        self._latest: dict[str, tuple[float, float]] = {}  # name -> (t_s, value)
        self._n_targets = 0

    def update(self, t_s: float, messages: Sequence[Mr60Message]) -> list[ModuleSecond]:
        """Add the messages that arrived at `t_s`; return the seconds completed before it."""
        out: list[ModuleSecond] = []
        sec = math.floor(t_s)
        if self._second is None:
            self._second = sec
        while self._second < sec:
            out.append(self._emit(float(self._second + 1)))
            self._second += 1
            if sec - self._second > 3600:  # a clock jump: do not emit an hour of empty seconds
                self._second = sec
        for m in messages:
            if isinstance(m, Phases):
                self._phases.append(m)
            elif isinstance(m, Presence):
                self._present = m.present
            elif isinstance(m, BreathRate):
                self._latest["breath"] = (t_s, m.rate_bpm)
            elif isinstance(m, HeartRate):
                self._latest["heart"] = (t_s, m.rate_bpm)
            elif isinstance(m, Distance):
                if m.valid:
                    self._latest["distance"] = (t_s, m.distance_m)
                else:
                    self._latest.pop("distance", None)
            elif isinstance(m, Targets):
                self._n_targets = len(m.targets)
        return out

    def _fresh(self, name: str, t_s: float) -> float | None:
        got = self._latest.get(name)
        if got is None or t_s - got[0] > self.hold_s or got[1] <= 0.0:
            return None
        return got[1]

    def _emit(self, t_end: float) -> ModuleSecond:
        ph = self._phases
        self._phases = []
        absent = self._present is False  # a latched rate must not outlive the person
        return ModuleSecond(
            t_s=t_end,
            present=self._present,
            breath_rate_bpm=None if absent else self._fresh("breath", t_end),
            heart_rate_bpm=None if absent else self._fresh("heart", t_end),
            distance_m=None if absent else self._fresh("distance", t_end),
            breath_phase=np.asarray([p.breath for p in ph], np.float32),
            heart_phase=np.asarray([p.heart for p in ph], np.float32),
            total_phase=np.asarray([p.total for p in ph], np.float32),
            n_targets=0 if absent else self._n_targets,
        )


# ---------------------------------------------------------------------- the serial source


class SerialPort(Protocol):
    """The part of a pyserial `Serial` the source uses (a fake in tests)."""

    def read(self, size: int = 1) -> bytes:
        """Up to `size` bytes; fewer (or none) when the port's timeout expires."""
        ...

    def close(self) -> None:
        """Release the port."""
        ...


def open_serial(port: str, baud: int, timeout_s: float) -> SerialPort:
    """Open a UART with pyserial (imported here: it is only in the `pi` extra).

    Raises:
        RadarUnavailable: pyserial is missing or the port cannot be opened.
    """
    try:
        import serial
    except ImportError:
        raise RadarUnavailable(
            f"MR60BHA2 on {port}", "pyserial is not installed (pip install 'appliance[pi]')"
        ) from None
    try:
        sp: SerialPort = serial.Serial(port, baudrate=baud, timeout=timeout_s)
    except (OSError, ValueError, serial.SerialException) as e:
        raise RadarUnavailable(f"MR60BHA2 on {port}", f"cannot open the port ({e})") from None
    return sp


class Mr60Radar:
    """The MR60BHA2 as a source of `ModuleSecond` readings.

    Args:
        clock: Time source for the readings.
        port: Serial device.
        baud: Baud rate.
        opener: Opens the port (`open_serial`; a fake in tests).
        read_timeout_s: Longest single wait on the port, s.
        silence_s: Clock seconds without a byte after which the module counts as gone, s.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        port: str = "/dev/serial0",
        baud: int = 115200,
        opener: Callable[[str, int, float], SerialPort] = open_serial,
        read_timeout_s: float = 0.2,
        silence_s: float = 10.0,
    ) -> None:
        self.clock = clock
        self.port = port
        self.baud = baud
        self.device = f"MR60BHA2 on {port}"
        self._opener = opener
        self.read_timeout_s = read_timeout_s
        self.silence_s = silence_s
        self.decoder = Mr60Decoder()
        self._agg = Mr60Aggregator()
        self._serial: SerialPort | None = None
        self._last_byte_s = 0.0

    @property
    def running(self) -> bool:
        """Whether the port is open."""
        return self._serial is not None

    def start(self) -> None:
        """Open the port (again); the decoder keeps its counters.

        Raises:
            RadarUnavailable: the port cannot be opened.
        """
        self.stop()
        self._serial = self._opener(self.port, self.baud, self.read_timeout_s)
        self._agg = Mr60Aggregator()
        self._last_byte_s = self.clock.now()
        log.info("MR60BHA2 reading %s at %d baud", self.port, self.baud)

    def stop(self) -> None:
        """Close the port; never raises.

        The module itself keeps measuring: it has no documented sleep command, so standby can
        only stop it by cutting its power.
        """
        if self._serial is not None:
            try:
                self._serial.close()
            except OSError as e:
                log.debug("closing %s: %s", self.port, e)
            self._serial = None

    def read(self, n_seconds: int) -> list[ModuleSecond] | None:
        """Block until `n_seconds` whole seconds have been reported.

        Returns:
            The readings, or None when the source is stopped.

        Raises:
            RadarUnavailable: the port failed, or no byte arrived for `silence_s`.
        """
        if n_seconds < 1:
            raise ValueError(f"n_seconds must be >= 1, got {n_seconds}")
        out: list[ModuleSecond] = []
        while len(out) < n_seconds:
            sp = self._serial
            if sp is None:
                return out or None
            try:
                chunk = sp.read(256)
            except (OSError, ValueError) as e:  # pyserial's SerialException is an OSError
                self.stop()
                raise RadarUnavailable(self.device, f"read failed ({e})") from None
            now = self.clock.now()
            if chunk:
                self._last_byte_s = now
            elif now - self._last_byte_s > self.silence_s:
                self.stop()
                raise RadarUnavailable(self.device, f"no data for {self.silence_s:g} s")
            out += self._agg.update(now, self.decoder.feed(chunk))
        return out


# ---------------------------------------------------------------------- the simulated twin


def _spans_hold(spans: Sequence[tuple[float, float]], t_s: float) -> bool:
    return any(a <= t_s < b for a, b in spans)


class Mr60Twin:
    """A simulated MR60BHA2: a body's displacement rendered as the module's byte stream.

    The twin reports what the module's UART carries, frame for frame (`encode_frame`): phases at
    `phase_rate_hz`, and once a second breath rate, heart rate, distance and presence. Its phases
    are the body's displacement in radians at 60 GHz (phase = displacement · 4π / λ), the reading
    `appliance.module_front` assumes; its rates are the body's true rates over the trailing 30 s
    (0 = no estimate, as the module sends before it has one).

    Args:
        t0_s: Clock time of sample 0 of the arrays, UTC epoch seconds.
        fs_hz: Rate of the arrays, Hz.
        breath_mm: (n,) breathing displacement, mm.
        heart_mm: (n,) heartbeat displacement, mm.
        total_mm: (n,) total displacement (breathing + heartbeat + movement), mm.
        breath_rate_bpm: (n_s,) breath rate of each whole second since t0_s, /min (NaN: none).
        heart_rate_bpm: (n_s,) heart rate likewise, /min (NaN: none).
        distance_m: Distance of the chest, m.
        absent: Spans (clock seconds) when nobody is there: the module says so and its phases
            are noise.
        flag_off: Spans when the body is there but the module's verdict says nobody (no rate,
            no distance): the known failure of mmWave presence on a still sleeper.
        phase_rate_hz: Phase reports per second (whole).
        seed: Seed of the empty-room noise.
    """

    def __init__(
        self,
        *,
        t0_s: float,
        fs_hz: float,
        breath_mm: np.ndarray,
        heart_mm: np.ndarray,
        total_mm: np.ndarray,
        breath_rate_bpm: np.ndarray,
        heart_rate_bpm: np.ndarray,
        distance_m: float = 0.8,
        absent: Sequence[tuple[float, float]] = (),
        flag_off: Sequence[tuple[float, float]] = (),
        phase_rate_hz: int = 10,
        seed: int = 0,
    ) -> None:
        self.t0_s = t0_s
        self.fs_hz = fs_hz
        rad_per_mm = 4.0 * math.pi * 60.0 / 299.792458
        self._breath = np.asarray(breath_mm, np.float64) * rad_per_mm
        self._heart = np.asarray(heart_mm, np.float64) * rad_per_mm
        self._total = np.asarray(total_mm, np.float64) * rad_per_mm
        self._br = np.asarray(breath_rate_bpm, np.float64)
        self._hr = np.asarray(heart_rate_bpm, np.float64)
        self.distance_m = distance_m
        self.absent = tuple(absent)
        self.flag_off = tuple(flag_off)
        self.phase_rate_hz = phase_rate_hz
        self._rng = np.random.default_rng(seed)
        self._id = 0
        self.end_s = t0_s + (self._breath.shape[0] - 1) / fs_hz

    @classmethod
    def from_physiology(cls, phys: _Body, t0_s: float, **kw: object) -> Mr60Twin:
        """A twin of a `hardware.radar.physiology.Physiology` whose time 0 is clock `t0_s`."""
        n_s = int(phys.duration_s)
        starts = np.arange(n_s, dtype=np.float64) - 30.0
        return cls(
            t0_s=t0_s,
            fs_hz=phys.frame_rate_hz,
            breath_mm=phys.breath_waveform_mm,
            heart_mm=phys.heart_waveform_mm,
            total_mm=phys.displacement_mm,
            breath_rate_bpm=phys.breath_rate_bpm(starts, 30.0),
            heart_rate_bpm=phys.heart_rate_bpm(starts, 30.0),
            **kw,  # type: ignore[arg-type]
        )

    def _frame(self, frame_type: int, data: bytes) -> bytes:
        self._id = (self._id + 1) & 0xFFFF
        return encode_frame(frame_type, data, self._id)

    def _at(self, x: np.ndarray, t_s: float) -> float:
        i = min(max((t_s - self.t0_s) * self.fs_hz, 0.0), x.shape[0] - 1.0)
        j = min(int(i), x.shape[0] - 2)
        return float(x[j] + (i - j) * (x[j + 1] - x[j]))

    def _second(self, t_s: float) -> bytes:
        k = int(round(t_s - self.t0_s))
        gone = _spans_hold(self.absent, t_s)
        unseen = gone or _spans_hold(self.flag_off, t_s)
        br = self._br[k] if 0 <= k < self._br.shape[0] else math.nan
        hr = self._hr[k] if 0 <= k < self._hr.shape[0] else math.nan
        br = 0.0 if unseen or not math.isfinite(br) else br
        hr = 0.0 if unseen or not math.isfinite(hr) else hr
        out = self._frame(TYPE_PRESENCE, struct.pack("<H", 0 if unseen else 1))
        out += self._frame(TYPE_BREATH_RATE, struct.pack("<f", br))
        out += self._frame(TYPE_HEART_RATE, struct.pack("<f", hr))
        flag = 0 if unseen else 1
        out += self._frame(TYPE_DISTANCE, struct.pack("<If", flag, self.distance_m * 100.0))
        return out

    def _phases(self, t_s: float) -> bytes:
        if _spans_hold(self.absent, t_s):
            # An empty room: the module's phases are noise of a few hundredths of a radian.
            tot, br, hr = (float(v) for v in self._rng.normal(0.0, 0.02, 3))
        else:
            tot, br, hr = (self._at(x, t_s) for x in (self._total, self._breath, self._heart))
        return self._frame(TYPE_PHASES, struct.pack("<3f", tot, br, hr))

    def stream(self, t_from_s: float, t_to_s: float) -> bytes:
        """The bytes the module sends in [t_from_s, t_to_s) (clock seconds), in order."""
        out = bytearray()
        per_s = self.phase_rate_hz
        k0 = math.ceil((t_from_s - self.t0_s) * per_s - 1e-9)
        k1 = math.ceil((t_to_s - self.t0_s) * per_s - 1e-9)
        for k in range(max(k0, 0), k1):
            t = self.t0_s + k / per_s
            if t > self.end_s:
                break
            if k % per_s == 0:  # the once-a-second reports lead each whole second
                out += self._second(t)
            out += self._phases(t)
        return bytes(out)


class _Body(Protocol):
    """What `Mr60Twin.from_physiology` reads of a `Physiology`."""

    frame_rate_hz: float
    duration_s: float
    breath_waveform_mm: np.ndarray
    heart_waveform_mm: np.ndarray
    displacement_mm: np.ndarray

    def breath_rate_bpm(self, t_epoch_starts: np.ndarray, epoch_s: float = 30.0) -> np.ndarray:
        """True breath rate per window, /min."""
        ...

    def heart_rate_bpm(self, t_epoch_starts: np.ndarray, epoch_s: float = 30.0) -> np.ndarray:
        """True heart rate per window, /min."""
        ...


class _SteppedClock(Protocol):
    def now(self) -> float: ...

    def advance_to(self, t_s: float) -> None: ...


class TwinPort:
    """A serial port wired to an `Mr60Twin`: each read takes `step_s` of a virtual clock.

    Args:
        twin: The module.
        clock: The virtual clock the port advances (the bytes of a read are those the module
            sent during it).
        step_s: Clock time one read takes, s.
        unplugged: Spans (clock seconds) when the cable is out: a read raises OSError.
    """

    def __init__(
        self,
        twin: Mr60Twin,
        clock: _SteppedClock,
        *,
        step_s: float = 0.1,
        unplugged: Sequence[tuple[float, float]] = (),
    ) -> None:
        self.twin = twin
        self.clock = clock
        self.step_s = step_s
        self.unplugged = tuple(unplugged)
        self._t = clock.now()
        self._pending = b""
        self.closed = False

    def read(self, size: int = 1) -> bytes:
        """The bytes of the next `step_s` (at most `size`; the rest waits for the next read)."""
        t = self.clock.now()
        if _spans_hold(self.unplugged, t):
            self.clock.advance_to(t + self.step_s)
            raise OSError(5, "Input/output error")
        if len(self._pending) < size:
            self._pending += self.twin.stream(self._t, t + self.step_s)
            self._t = t + self.step_s
            self.clock.advance_to(t + self.step_s)
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def close(self) -> None:
        """Release the port."""
        self.closed = True

    def opener(self) -> Callable[[str, int, float], SerialPort]:
        """An `open_serial` stand-in: this port, or RadarUnavailable while unplugged."""

        def open_(port: str, baud: int, timeout_s: float) -> SerialPort:
            t = self.clock.now()
            if _spans_hold(self.unplugged, t):
                raise RadarUnavailable(f"MR60BHA2 on {port}", "cannot open the port (unplugged)")
            self._t, self._pending, self.closed = t, b"", False
            return self

        return open_
