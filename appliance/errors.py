"""The appliance's exception tree: one root, builtin bases where they fit."""

from __future__ import annotations

__all__ = [
    "ApplianceError",
    "ConfigError",
    "DataError",
    "HardwareError",
    "ModelMismatch",
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


class StoreError(ApplianceError):
    """The session store cannot be opened, migrated or written."""


class ModelMismatch(ApplianceError):
    """A model file does not match the features the code computes (names, shape or classes)."""
