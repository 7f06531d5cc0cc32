r"""Acconeer's A121 exploration protocol: commands, replies and sparse-IQ payloads (no I/O).

The exploration server (`acc_exploration_server_a121`, TCP port 6110 on the XE121 Raspberry Pi
HAT) speaks a line protocol:

- The client sends one JSON object per line, terminated by `\\n`: `{"cmd":"get_system_info"}`,
  `{"cmd":"get_sensor_info"}`, `{"groups":[[{"sensor_id":1,"config":{...}}]],"cmd":"setup"}`,
  `{"cmd":"start_streaming"}`, `{"cmd":"stop_streaming"}`.
- The server answers with one JSON header per line; a header with `"payload_size": n > 0` is
  followed by exactly n binary bytes. Replies are told apart by their keys: `system_info`,
  `sensor_info`, `metadata` (setup), `"status": "start"` / `"stop"`, `"status": "error"` with a
  `message`, `"status": "log"` (server log lines, interleaved at any time), and, while
  streaming, one result per frame: `result_info` (per group, per sensor: `tick`,
  `data_saturated`, `frame_delayed`, `calibration_needed`, `temperature`) with the frame as
  payload.
- A frame's payload is `frame_data_length` complex samples (from the setup reply's metadata),
  each an int16 real part then an int16 imaginary part, little endian, sweep-major: shape
  (sweeps_per_frame, sweep_data_length).

Sparse IQ geometry: range points lie on a grid of `base_step_length_m` (≈ 2.5 mm; the setup reply
gives the exact value); point k of a subsweep is at (start_point + k · step_length) · base step.
`step_length` must divide 24 or be a multiple of it (the sensor processes 24 points per chunk),
HWAAS is 1–511, and num_points · sweeps_per_frame must fit the 4095-sample frame buffer.

References:
    Acconeer AB. Acconeer Exploration Tool (acconeer-python-exploration, v7), the a121
    exploration protocol and the sparse IQ service's configuration reference; A121 datasheet.
    https://docs.acconeer.com
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "BASE_STEP_M",
    "DEFAULT_PORT",
    "FRAME_BUFFER_SAMPLES",
    "VALID_STEP_LENGTHS",
    "FrameInfo",
    "ProtocolError",
    "SessionMetadata",
    "SparseIqSettings",
    "command",
    "decode_frame",
    "parse_header",
    "parse_metadata",
    "parse_result_info",
    "rss_version_at_least",
    "setup_command",
]

DEFAULT_PORT = 6110
"""TCP port of the exploration server."""
BASE_STEP_M = 0.0025
"""Approximate sparse-IQ point spacing at step_length 1, metres (the server gives it exactly)."""
VALID_STEP_LENGTHS = (1, 2, 3, 4, 6, 8, 12, 24)
"""Step lengths below 24 (divisors of 24); any multiple of 24 is valid too."""
FRAME_BUFFER_SAMPLES = 4095
"""Complex samples a frame may hold (num_points · sweeps_per_frame)."""
_PRF = "15_6_MHz"  # the server's default PRF; its 5.1-m unambiguous range covers any bedroom
_MAX_HEADER_KEYS = 64
_INT16_COMPLEX = np.dtype([("re", "<i2"), ("im", "<i2")])


class ProtocolError(ValueError):
    """A reply that is not what the protocol says (bad JSON, missing keys, wrong sizes)."""


@dataclass(frozen=True, slots=True)
class SparseIqSettings:
    """One sensor's sparse-IQ configuration, in the server's units.

    Attributes:
        start_point: First range point, in base steps (≈ 2.5 mm).
        num_points: Range points per sweep, >= 1.
        step_length: Distance between points, in base steps (a divisor or multiple of 24).
        profile: Pulse profile 1–5 (3: ≈ 5-cm envelope, the breathing reference's choice).
        hwaas: Hardware-accelerated averaged samples per point, 1–511.
        sweeps_per_frame: Sweeps in each frame, >= 1.
        frame_rate_hz: Frames per second.
        sensor_id: Sensor on the board (the XE121 has sensor 1).
    """

    start_point: int
    num_points: int
    step_length: int
    profile: int
    hwaas: int
    sweeps_per_frame: int
    frame_rate_hz: float
    sensor_id: int = 1

    def __post_init__(self) -> None:
        if self.num_points < 1 or self.sweeps_per_frame < 1:
            raise ValueError("num_points and sweeps_per_frame must be >= 1")
        if not (self.step_length in VALID_STEP_LENGTHS or self.step_length % 24 == 0):
            raise ValueError(f"step_length {self.step_length} must divide 24 or be a multiple")
        if not 1 <= self.profile <= 5:
            raise ValueError(f"profile must be 1-5, got {self.profile}")
        if not 1 <= self.hwaas <= 511:
            raise ValueError(f"hwaas must be 1-511, got {self.hwaas}")
        if self.num_points * self.sweeps_per_frame > FRAME_BUFFER_SAMPLES:
            raise ValueError(
                f"num_points x sweeps_per_frame = {self.num_points * self.sweeps_per_frame}"
                f" exceeds the sensor's {FRAME_BUFFER_SAMPLES}-sample frame buffer"
            )
        if not self.frame_rate_hz > 0:
            raise ValueError("frame_rate_hz must be > 0")

    @classmethod
    def for_range(
        cls,
        range_start_m: float,
        range_end_m: float,
        range_step_m: float,
        frame_rate_hz: float,
        *,
        profile: int = 3,
        hwaas: int = 32,
        sweeps_per_frame: int = 16,
    ) -> SparseIqSettings:
        """Map a range in metres onto the sensor's point grid.

        The step is the largest valid step length not longer than `range_step_m` (at least 1);
        the points then cover [range_start_m, range_end_m] as the simulator's bins do
        (round((end - start) / step) + 1 of them).

        Args:
            range_start_m: Nearest point, metres (> 0).
            range_end_m: Farthest point, metres.
            range_step_m: Wanted point spacing, metres.
            frame_rate_hz: Frames per second.
            profile: Pulse profile 1–5.
            hwaas: Averaged samples per point, 1–511.
            sweeps_per_frame: Sweeps per frame (averaged into one sample per point downstream).

        Raises:
            ValueError: the range does not fit the sensor (order, buffer, step).
        """
        if range_end_m <= range_start_m:
            raise ValueError("range_end_m must be greater than range_start_m")
        wanted = max(1, int(math.floor(range_step_m / BASE_STEP_M + 1e-9)))
        if wanted >= 24:
            step = (wanted // 24) * 24
        else:
            step = max(s for s in VALID_STEP_LENGTHS if s <= wanted)
        step_m = step * BASE_STEP_M
        start = int(round(range_start_m / BASE_STEP_M))
        num = int(round((range_end_m - range_start_m) / step_m)) + 1
        return cls(
            start_point=start,
            num_points=num,
            step_length=step,
            profile=profile,
            hwaas=hwaas,
            sweeps_per_frame=sweeps_per_frame,
            frame_rate_hz=float(frame_rate_hz),
        )


@dataclass(frozen=True, slots=True)
class SessionMetadata:
    """What the setup reply says about the frames to come.

    Attributes:
        frame_data_length: Complex samples per frame.
        sweep_data_length: Complex samples per sweep (= num_points with one subsweep).
        base_step_length_m: Exact point spacing at step_length 1, metres.
        tick_period: Server ticks between frames (informative).
    """

    frame_data_length: int
    sweep_data_length: int
    base_step_length_m: float
    tick_period: int


@dataclass(frozen=True, slots=True)
class FrameInfo:
    """The per-frame flags of one result.

    Attributes:
        tick: Server tick of the frame (uint32, wraps at 2**32).
        data_saturated: The receiver saturated (too much gain or a reflector too close).
        frame_delayed: The server could not keep up; frames were lost before this one.
        calibration_needed: The sensor asks to be recalibrated (temperature drift).
        temperature: Sensor temperature, °C (relative, per the datasheet).
    """

    tick: int
    data_saturated: bool
    frame_delayed: bool
    calibration_needed: bool
    temperature: int


def command(cmd: str) -> bytes:
    """Encode a parameterless command line, e.g. `command("start_streaming")`."""
    return json.dumps({"cmd": cmd}, separators=(",", ":")).encode("ascii") + b"\n"


def setup_command(s: SparseIqSettings, *, iq_imbalance_key: bool = True) -> bytes:
    r"""Encode the `setup` command for one sensor with one subsweep.

    Args:
        s: The settings.
        iq_imbalance_key: Send `iq_imbalance_compensation` (servers from RSS 1.9.1 know it;
            older ones reject an unknown key).

    Returns:
        One ASCII JSON line ending in `\\n`.
    """
    subsweep: dict[str, Any] = {
        "start_point": s.start_point,
        "num_points": s.num_points,
        "step_length": s.step_length,
        "profile": s.profile,
        "hwaas": s.hwaas,
        "receiver_gain": 16,
        "enable_tx": True,
        "enable_loopback": False,
        "phase_enhancement": False,
        "prf": _PRF,
    }
    if iq_imbalance_key:
        subsweep["iq_imbalance_compensation"] = False
    config = {
        "sweep_rate": 0.0,  # 0 = as fast as possible within a frame
        "frame_rate": float(s.frame_rate_hz),
        "continuous_sweep_mode": False,
        "double_buffering": False,
        # Deep sleep between frames: the sensor draws least power and still makes 20 Hz.
        "inter_frame_idle_state": "deep_sleep",
        "inter_sweep_idle_state": "ready",
        "sweeps_per_frame": s.sweeps_per_frame,
        "subsweeps": [subsweep],
    }
    msg = {"groups": [[{"sensor_id": s.sensor_id, "config": config}]], "cmd": "setup"}
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=True).encode("ascii") + b"\n"


def parse_header(line: bytes) -> dict[str, Any]:
    r"""Parse one header line (without or with its `\\n`) into a dict.

    A line that is not JSON may still end in a good header when a lost payload ran into it
    (a header cut mid-way, binary bytes without a newline): the last `{"` from which the rest
    parses as an object is taken.

    Raises:
        ProtocolError: no JSON object can be read from the line.
    """
    text = line.rstrip(b"\r\n")
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):  # corrupt "[[[[…" nests too deep
        obj = None
        starts = [i for i in range(len(text) - 1) if text[i : i + 2] == b'{"']
        for i in reversed(starts[-8:]):  # bounded: never quadratic on a long garbage line
            try:
                obj = json.loads(text[i:])
                break
            except (ValueError, UnicodeDecodeError, RecursionError):
                continue
        if obj is None:
            raise ProtocolError(f"not a JSON header ({len(text)} bytes)") from None
    if not isinstance(obj, dict) or len(obj) > _MAX_HEADER_KEYS:
        raise ProtocolError("header is not a JSON object")
    return obj


def _int(d: dict[str, Any], key: str) -> int:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise ProtocolError(f"{key!r} missing or not an integer")
    return v


def parse_metadata(header: dict[str, Any]) -> SessionMetadata:
    """Read the setup reply's metadata for the single configured sensor.

    Raises:
        ProtocolError: the reply has no usable metadata.
    """
    try:
        md = header["metadata"][0][0]
        base = float(md["base_step_length_m"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise ProtocolError("setup reply without metadata for group 1, sensor 1") from None
    if not isinstance(md, dict) or not 0.001 < base < 0.005:
        raise ProtocolError("setup reply with an implausible base step")
    tick_period = header.get("tick_period", 0)
    return SessionMetadata(
        frame_data_length=_int(md, "frame_data_length"),
        sweep_data_length=_int(md, "sweep_data_length"),
        base_step_length_m=base,
        tick_period=int(tick_period) if isinstance(tick_period, int) else 0,
    )


def parse_result_info(header: dict[str, Any]) -> FrameInfo:
    """Read the flags of a result header (one group, one sensor).

    Raises:
        ProtocolError: no result info for group 1, sensor 1.
    """
    try:
        ri = header["result_info"][0][0]
    except (KeyError, IndexError, TypeError):
        raise ProtocolError("result without result_info for group 1, sensor 1") from None
    if not isinstance(ri, dict):
        raise ProtocolError("result_info is not an object")
    tick = _int(ri, "tick")
    if not 0 <= tick < 2**32:
        raise ProtocolError(f"tick {tick} out of range")
    temp = ri.get("temperature", 0)
    return FrameInfo(
        tick=tick,
        data_saturated=bool(ri.get("data_saturated", False)),
        frame_delayed=bool(ri.get("frame_delayed", False)),
        calibration_needed=bool(ri.get("calibration_needed", False)),
        temperature=int(temp) if isinstance(temp, int) else 0,
    )


def decode_frame(payload: bytes, sweeps: int, points: int) -> np.ndarray:
    """Decode one frame's payload into complex samples.

    Args:
        payload: sweeps · points · 4 bytes of little-endian int16 (real, imaginary) pairs.
        sweeps: Sweeps per frame.
        points: Points per sweep.

    Returns:
        (sweeps, points) complex64, in the sensor's raw units (int16 counts).

    Raises:
        ProtocolError: the payload has the wrong size.
    """
    if len(payload) != sweeps * points * 4:
        raise ProtocolError(f"payload of {len(payload)} bytes, expected {sweeps * points * 4}")
    raw = np.frombuffer(payload, dtype=_INT16_COMPLEX).reshape(sweeps, points)
    out = np.empty((sweeps, points), dtype=np.complex64)
    out.real = raw["re"]
    out.imag = raw["im"]
    return out


def rss_version_at_least(version: str, minimum: tuple[int, int, int]) -> bool:
    """Compare an RSS version string ("v2.9.0", "a121-v1.9.1", "1.4.3.dev12") with a minimum.

    Unparseable versions count as new (the server is most likely recent).
    """
    digits = version.rsplit("v", 1)[-1]
    parts: list[int] = []
    for p in digits.split(".")[:3]:
        num = "".join(c for c in p if c.isdigit()) if p[:1].isdigit() else ""
        if not num:
            break
        parts.append(int(num))
    if not parts:
        return True
    while len(parts) < 3:
        parts.append(0)
    return tuple(parts) >= minimum
