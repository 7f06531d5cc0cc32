"""Writes tests/hardware/data/a121_session.jsonl: one exploration-server session, byte for byte.

Run from the repository root: `python tests/hardware/data/a121_make_session.py`. The recording is
what the fake server in tests/hardware/test_a121.py replays and checks the client against.

Format: one JSON object per line, in the order the bytes cross the socket.
- `{"from": "client", "line": "..."}`: a command line the client must send, exactly (with `\\n`).
- `{"from": "server", "line": "...", "payload_b64": "..."}`: a header line the server sends
  (with `\\n`), then the payload bytes (base64; omitted when empty).
- The first object is `{"about": {...}}`: what the frames contain (for the tests' checks).

The session follows Acconeer's a121 exploration protocol (acconeer-python-exploration v7): a log
line, get_system_info, get_sensor_info, setup (sparse IQ, profile 3, HWAAS 32, 16 sweeps, 20 Hz,
points 120 + 24·k for k < 29, i.e. 0.30–1.98 m in 6-cm steps), start_streaming, 30 frames and
stop_streaming. Frame ticks (1 MHz) start 0.5 s before the uint32 wrap, so the client's tick
unwrapping is exercised. Frame content: a static reflector at 0.48 m (bin 3) and a breathing chest
at 0.90 m (bin 10, 4 mm peak-to-peak at 15 breaths/min), int16 counts with a little noise.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("a121_session.jsonl")
FPS = 20.0
SWEEPS = 16
POINTS = 29
FRAMES = 30
TPS = 1_000_000
TICK0 = 2**32 - 500_000
WAVELENGTH_M = 299_792_458.0 / 60.5e9


def _line(obj: dict[str, object]) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


def _frames() -> list[bytes]:
    rng = np.random.default_rng(121)
    out = []
    for k in range(FRAMES):
        t = k / FPS
        d = 0.90 + 0.002 * np.sin(2 * np.pi * 0.25 * t)
        iq = np.zeros((SWEEPS, POINTS), np.complex128)
        iq[:, 3] += 1500 * np.exp(1j * 0.7)
        iq[:, 10] += 2000 * np.exp(1j * 4 * np.pi * d / WAVELENGTH_M)
        iq += rng.normal(0, 8, (SWEEPS, POINTS)) + 1j * rng.normal(0, 8, (SWEEPS, POINTS))
        pairs = np.empty((SWEEPS, POINTS, 2), "<i2")
        pairs[..., 0] = np.round(iq.real)
        pairs[..., 1] = np.round(iq.imag)
        out.append(pairs.tobytes())
    return out


def main() -> None:
    setup = {
        "groups": [
            [
                {
                    "sensor_id": 1,
                    "config": {
                        "sweep_rate": 0.0,
                        "frame_rate": FPS,
                        "continuous_sweep_mode": False,
                        "double_buffering": False,
                        "inter_frame_idle_state": "deep_sleep",
                        "inter_sweep_idle_state": "ready",
                        "sweeps_per_frame": SWEEPS,
                        "subsweeps": [
                            {
                                "start_point": 120,
                                "num_points": POINTS,
                                "step_length": 24,
                                "profile": 3,
                                "hwaas": 32,
                                "receiver_gain": 16,
                                "enable_tx": True,
                                "enable_loopback": False,
                                "phase_enhancement": False,
                                "prf": "15_6_MHz",
                                "iq_imbalance_compensation": False,
                            }
                        ],
                    },
                }
            ]
        ],
        "cmd": "setup",
    }
    rows: list[dict[str, object]] = [
        {
            "about": {
                "frames": FRAMES,
                "sweeps": SWEEPS,
                "points": POINTS,
                "ticks_per_second": TPS,
                "tick0": TICK0,
                "static_bin": 3,
                "chest_bin": 10,
                "chest_m": 0.90,
            }
        },
        {
            "from": "server",
            "line": _line(
                {
                    "status": "log",
                    "level": "INFO",
                    "timestamp": 1021,
                    "module": "exploration_server",
                    "log": "Client connected",
                }
            ),
        },
        {"from": "client", "line": _line({"cmd": "get_system_info"})},
        {
            "from": "server",
            "line": _line(
                {
                    "status": "ok",
                    "system_info": {
                        "rss_version": "a121-v1.10.0",
                        "sensor": "a121",
                        "sensor_count": 1,
                        "ticks_per_second": TPS,
                        "hw": "xe121",
                    },
                }
            ),
        },
        {"from": "client", "line": _line({"cmd": "get_sensor_info"})},
        {
            "from": "server",
            "line": _line(
                {
                    "status": "ok",
                    "payload_size": 0,
                    "sensor_info": [{"connected": True, "serial": "XE121-0042"}],
                }
            ),
        },
        {"from": "client", "line": _line(setup)},
        {
            "from": "server",
            "line": _line(
                {
                    "status": "ok",
                    "tick_period": 50_000,
                    "payload_size": 0,
                    "metadata": [
                        [
                            {
                                "frame_data_length": SWEEPS * POINTS,
                                "sweep_data_length": POINTS,
                                "subsweep_data_offset": [0],
                                "subsweep_data_length": [POINTS],
                                "calibration_temperature": 27,
                                "base_step_length_m": 0.0025,
                                "max_sweep_rate": 7310.0,
                                "high_speed_mode": True,
                            }
                        ]
                    ],
                    "calibration_info": [{"sensor_id": 1, "temperature": 27, "data": "q83v"}],
                }
            ),
        },
        {"from": "client", "line": _line({"cmd": "start_streaming"})},
        {
            "from": "server",
            "line": _line({"status": "start", "payload_size": 0, "message": "Start streaming."}),
        },
    ]
    for k, payload in enumerate(_frames()):
        header = {
            "status": "ok",
            "result_info": [
                [
                    {
                        "tick": (TICK0 + k * 50_000) % 2**32,
                        "data_saturated": False,
                        "frame_delayed": False,
                        "calibration_needed": False,
                        "temperature": 27,
                    }
                ]
            ],
            "payload_size": len(payload),
        }
        rows.append(
            {
                "from": "server",
                "line": _line(header),
                "payload_b64": base64.b64encode(payload).decode("ascii"),
            }
        )
    rows.append({"from": "client", "line": _line({"cmd": "stop_streaming"})})
    rows.append(
        {
            "from": "server",
            "line": _line({"status": "stop", "payload_size": 0, "message": "Stop streaming."}),
        }
    )
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


if __name__ == "__main__":
    main()
