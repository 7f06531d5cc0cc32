"""The appliance's exception tree: one root, builtin bases where they fit."""

from __future__ import annotations

__all__ = [
    "ApplianceError",
    "ConfigError",
    "DataError",
    "HardwareError",
    "ModelMismatch",
    "RadarUnavailable",
    "StoreError",
]


class ApplianceError(Exception):
    """Root of every error the appliance raises on purpose."""


class ConfigError(ApplianceError, ValueError):
    """A configuration file is unreadable, malformed or holds a bad value.

    Attributes:
        key: Dotted path of the offending key ("alarm.window_min"), or "" for the whole file.
        reason: What is wrong, in a few words.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason)


class DataError(ApplianceError, ValueError):
    """An input file (a recorded night, a recording) is missing or not in the documented format."""


class HardwareError(ApplianceError, OSError):
    """A device did not answer, or answered nonsense."""


class RadarUnavailable(HardwareError):
    """A radar source cannot be reached or stopped answering sensibly.

    The exploration server is down, the link dropped mid-stream, the serial port vanished, or the
    stream stayed corrupt. The daemon's supervisor retries the radar task with back-off; the
    source reconnects on its next `start()`.

    Attributes:
        device: The source ("A121 at 127.0.0.1:6110", "MR60BHA2 on /dev/serial0").
        reason: What went wrong, in a few words.
    """

    def __init__(self, device: str, reason: str) -> None:
        self.device = device
        self.reason = reason
        super().__init__(f"{device}: {reason}")


class StoreError(ApplianceError):
    """The session store cannot be opened, migrated or written."""


class ModelMismatch(ApplianceError):
    """A model file does not match the features the code computes (names, shape or classes)."""
