"""What hardware is present, from the config (and, with the hardware issues, from probing buses)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from appliance.config import Config

__all__ = ["Board", "Device", "detect_board"]


@dataclass(frozen=True, slots=True)
class Device:
    """One device the appliance can use.

    Attributes:
        role: What it is for: "radar", "speaker", "light", "button", "climate", "light_sensor".
        name: The part or twin ("simulated A121", "aplay default").
        present: Whether it answered (a twin always does).
        simulated: True for a simulated twin.
    """

    role: str
    name: str
    present: bool
    simulated: bool


@dataclass(frozen=True, slots=True)
class Board:
    """The devices found, and whether this is a Raspberry Pi."""

    is_pi: bool
    model: str
    devices: tuple[Device, ...]


def _pi_model() -> str:
    try:
        with open("/proc/device-tree/model", encoding="utf-8", errors="replace") as f:
            return f.read().strip("\x00\n ")
    except OSError:
        return ""


def _server_listening(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections at host:port (connect, then hang up)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _radar(cfg: Config) -> Device:
    """The radar `radar.type` selects, probed where probing is cheap and harmless."""
    r = cfg.radar
    if r.type == "a121":
        # The HAT is reached only through its exploration server: if nothing listens, the radar
        # is not usable (the daemon still starts and retries; see hardware/radar/a121.py).
        name = f"A121 via exploration server {r.a121_host}:{r.a121_port}"
        return Device("radar", name, _server_listening(r.a121_host, r.a121_port), False)
    if r.type == "mr60bha2":
        name = f"MR60BHA2 on {r.serial_port} at {r.serial_baud} baud"
        return Device("radar", name, os.path.exists(r.serial_port), False)
    name = f"simulated A121 ({r.n_bins} bins, {r.frame_rate_hz:g} Hz)"
    return Device("radar", name, True, True)


def detect_board(cfg: Config) -> Board:
    """Report the board and the devices the config selects (the radar is probed, not opened)."""
    model = _pi_model()
    is_pi = model.startswith("Raspberry Pi")
    devices = (
        _radar(cfg),
        Device("speaker", "simulated speaker", True, True),
    )
    return Board(is_pi=is_pi, model=model or "not a Raspberry Pi", devices=devices)
