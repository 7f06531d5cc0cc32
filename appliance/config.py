"""The configuration: one TOML file, validated at start into frozen models.

Every key has a default, so a missing file (or an empty one) runs the simulator. An unknown key or
a bad value raises `ConfigError` naming the dotted key path; the CLI prints it on one line and
exits with code 2. Validators are pure: no I/O.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from appliance.alarm import parse_hhmm
from appliance.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AlarmConfig",
    "BedConfig",
    "Config",
    "PresenceConfig",
    "RadarConfig",
    "SessionConfig",
    "SimulatorConfig",
    "StoreConfig",
    "load_config",
    "parse_config",
    "resolve_timezone",
]

DEFAULT_CONFIG_PATH = Path("/etc/appliance/config.toml")


class _Section(BaseModel):
    # strict: TOML has real types, so "20" or true for a number is a mistake worth naming.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class RadarConfig(_Section):
    """Which radar, and the range it looks at."""

    type: Literal["simulated"] = Field(
        "simulated", description="Radar source: 'simulated' (the scene twin); drivers come later."
    )
    frame_rate_hz: float = Field(20.0, ge=10.0, le=100.0, description="Frame rate, Hz.")
    range_start_m: float = Field(0.3, ge=0.1, le=3.0, description="Nearest range bin, metres.")
    range_end_m: float = Field(2.0, ge=0.3, le=5.0, description="Farthest range bin, metres.")
    range_step_m: float = Field(0.06, gt=0.0025, le=0.3, description="Bin spacing, metres.")

    @field_validator("frame_rate_hz")
    @classmethod
    def _whole_tens(cls, v: float) -> float:
        # The DSP decimates to 10 Hz and works in whole seconds of frames.
        if abs(v / 10.0 - round(v / 10.0)) > 1e-9:
            raise ValueError("must be a multiple of 10 Hz (10, 20, 30, ...)")
        return v

    @model_validator(mode="after")
    def _range_order(self) -> RadarConfig:
        if self.range_end_m <= self.range_start_m + self.range_step_m:
            raise ValueError("range_end_m must exceed range_start_m by at least one range_step_m")
        return self

    @property
    def n_bins(self) -> int:
        """Number of range bins."""
        return int(round((self.range_end_m - self.range_start_m) / self.range_step_m)) + 1


class SimulatorConfig(_Section):
    """The simulated bedroom used when `radar.type = "simulated"`."""

    scene: str = Field(
        "reading-then-sleep", description="Scene name (see `appliance simulate --help`)."
    )
    night: str = Field(
        "", description="Recorded night (.npz) driving the sleeper; '' = shipped default."
    )
    partner_night: str = Field(
        "", description="Recorded night driving a partner; '' = shipped default."
    )
    seed: int = Field(0, ge=0, description="Random seed of the scene (noise, movements, depths).")
    speed: float = Field(
        1.0, gt=0.0, le=100000.0, description="Virtual clock speed over real time."
    )


class PresenceConfig(_Section):
    """Presence detection."""

    threshold: float = Field(
        0.5, gt=0.0, lt=1.0, description="Confidence above which someone is present."
    )
    hysteresis: float = Field(
        0.15, ge=0.0, lt=0.5, description="Confidence band below threshold kept present."
    )
    hold_s: float = Field(
        40.0, ge=0.0, le=600.0, description="Seconds presence is held after confidence drops."
    )


class BedConfig(_Section):
    """Where the user's side of the bed is, seen from the device."""

    user_min_m: float = Field(
        0.3, ge=0.0, le=5.0, description="Nearest distance of the user's side, metres."
    )
    user_max_m: float = Field(
        1.25, ge=0.1, le=5.0, description="Farthest distance of the user's side, metres."
    )

    @model_validator(mode="after")
    def _order(self) -> BedConfig:
        if self.user_max_m <= self.user_min_m:
            raise ValueError("user_max_m must be greater than user_min_m")
        return self


class SessionConfig(_Section):
    """Session life cycle."""

    start_after_s: float = Field(
        300.0, ge=30.0, le=3600.0, description="Presence that starts a session, s."
    )
    close_after_absent_s: float = Field(
        1800.0, ge=60.0, le=6 * 3600.0, description="Absence that closes a session, s."
    )


class AlarmConfig(_Section):
    """The alarm (schedules arrive with the alarm issue; one daily time for now)."""

    time: str = Field("", description="Local wake-up time HH:MM, '' for no alarm.")
    window_min: float = Field(
        30.0, ge=0.0, le=45.0, description="Smart window before the set time, minutes."
    )
    ring_max_min: float = Field(
        30.0, ge=1.0, le=120.0, description="An unstopped alarm ends after this, minutes."
    )

    @field_validator("time")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if v == "":
            return v
        h, m = parse_hhmm(v)
        return f"{h:02d}:{m:02d}"


class StoreConfig(_Section):
    """Where the SQLite store lives."""

    data_dir: str = Field("", description="Directory of the store; '' = the state directory.")


class Config(_Section):
    """The whole configuration."""

    timezone: str = Field(
        "", description="IANA time zone of alarms and reports; '' = the system's."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    radar: RadarConfig = Field(default_factory=RadarConfig)
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    presence: PresenceConfig = Field(default_factory=PresenceConfig)
    bed: BedConfig = Field(default_factory=BedConfig)
    session: SessionConfig = Field(default_factory=SessionConfig)
    alarm: AlarmConfig = Field(default_factory=AlarmConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if v:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as e:
                raise ValueError(f"unknown time zone {v!r}") from e
        return v


def _first_error(err: ValidationError) -> ConfigError:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return ConfigError(key, msg)


def parse_config(data: dict[str, Any]) -> Config:
    """Validate a parsed TOML document into a `Config`.

    Raises:
        ConfigError: naming the first bad key.
    """
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise _first_error(e) from None


def load_config(path: Path | None, *, must_exist: bool = False) -> Config:
    """Read and validate the TOML file at `path`.

    Args:
        path: The file; None means `DEFAULT_CONFIG_PATH`.
        must_exist: If False, a missing file gives the defaults (an empty config runs).

    Raises:
        ConfigError: unreadable file, invalid TOML, unknown key or bad value.
    """
    p = path or DEFAULT_CONFIG_PATH
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        if must_exist or path is not None:
            raise ConfigError("", f"{p}: no such file") from None
        return Config()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("", f"{p}: cannot read ({e.__class__.__name__}: {e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("", f"{p}: invalid TOML ({e})") from None
    return parse_config(data)


def resolve_timezone(cfg: Config) -> ZoneInfo:
    """Return the configured zone, else the system's (TZ, /etc/timezone, /etc/localtime) or UTC."""
    if cfg.timezone:
        return ZoneInfo(cfg.timezone)
    candidates: list[str] = []
    if os.environ.get("TZ"):
        candidates.append(os.environ["TZ"].lstrip(":"))
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
    return ZoneInfo("UTC")
