"""What hardware is present, from the config (and, with the hardware issues, from probing buses)."""

from __future__ import annotations

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


def detect_board(cfg: Config) -> Board:
    """Report the board and the devices the config selects (twins until drivers land)."""
    model = _pi_model()
    is_pi = model.startswith("Raspberry Pi")
    devices = (
        Device(
            "radar",
            f"{cfg.radar.type} radar ({cfg.radar.n_bins} bins, {cfg.radar.frame_rate_hz:g} Hz)",
            True,
            cfg.radar.type == "simulated",
        ),
        Device("speaker", "simulated speaker", True, True),
    )
    return Board(is_pi=is_pi, model=model or "not a Raspberry Pi", devices=devices)
