"""The gentle alarm sounds shipped with the package (16-bit mono WAV, 22.05 kHz, ~2.5 s each).

`make.py` beside this file generates them deterministically; the WAVs are committed so a device
never has to synthesize anything before it can ring.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["DEFAULT_SOUND", "SOUNDS", "sound_path"]

SOUNDS = ("chimes", "birdsong", "bowl")
"""Names of the shipped sounds (file `<name>.wav`)."""
DEFAULT_SOUND = "chimes"


def sound_path(name: str) -> Path:
    """Path of the shipped sound `name` (one of `SOUNDS`).

    Raises:
        ValueError: `name` is not a shipped sound.
    """
    if name not in SOUNDS:
        raise ValueError(f"unknown sound {name!r} (choose from {', '.join(SOUNDS)})")
    return Path(str(resources.files(__package__).joinpath(f"{name}.wav")))
