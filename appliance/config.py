"""The configuration: one TOML file, validated at start into frozen models.

Every key has a default, so a missing file (or an empty one) runs the simulator. An unknown key or
a bad value raises `ConfigError` naming the dotted key path; the CLI prints it on one line and
exits with code 2. Validators are pure: no I/O.
"""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from appliance.alarm_schedule import parse_hhmm
from appliance.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AlarmConfig",
    "ApiConfig",
    "BedConfig",
    "ButtonsConfig",
    "Config",
    "EnvironmentConfig",
    "LightConfig",
    "MqttConfig",
    "PresenceConfig",
    "RadarConfig",
    "SessionConfig",
    "SimulatorConfig",
    "SpeakerConfig",
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

    type: Literal["simulated", "a121", "mr60bha2"] = Field(
        "simulated",
        description=(
            "Radar source: 'simulated' (the scene twin), 'a121' (Acconeer XE121 HAT through its"
            " exploration server) or 'mr60bha2' (Seeed 60-GHz module on the UART)."
        ),
    )
    frame_rate_hz: float = Field(20.0, ge=10.0, le=100.0, description="Frame rate, Hz.")
    range_start_m: float = Field(0.3, ge=0.1, le=3.0, description="Nearest range bin, metres.")
    range_end_m: float = Field(2.0, ge=0.3, le=5.0, description="Farthest range bin, metres.")
    range_step_m: float = Field(0.06, gt=0.0025, le=0.3, description="Bin spacing, metres.")
    a121_host: str = Field(
        "127.0.0.1", min_length=1, description="Host of the A121 exploration server."
    )
    a121_port: int = Field(6110, ge=1, le=65535, description="TCP port of the exploration server.")
    a121_profile: int = Field(
        3, ge=1, le=5, description="A121 pulse profile 1-5 (3: ~5-cm envelope, for breathing)."
    )
    a121_hwaas: int = Field(
        32, ge=1, le=511, description="A121 hardware-averaged samples per point (SNR vs power)."
    )
    a121_sweeps_per_frame: int = Field(
        16, ge=1, le=64, description="A121 sweeps per frame, averaged into one sample per bin."
    )
    serial_port: str = Field(
        "/dev/serial0", min_length=1, description="UART of the MR60BHA2 module."
    )
    serial_baud: Literal[9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600] = Field(
        115200, description="Baud rate of the MR60BHA2 UART (the module's default is 115200)."
    )

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
        if self.type == "a121":
            # Local import: the pure mapping of metres onto the sensor's point grid.
            from hardware.radar.a121_protocol import SparseIqSettings

            try:
                SparseIqSettings.for_range(
                    self.range_start_m,
                    self.range_end_m,
                    self.range_step_m,
                    self.frame_rate_hz,
                    profile=self.a121_profile,
                    hwaas=self.a121_hwaas,
                    sweeps_per_frame=self.a121_sweeps_per_frame,
                )
            except ValueError as e:
                raise ValueError(f"the A121 cannot measure this range: {e}") from None
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
    """Where the bed and the user's side of it are, seen from the device (`appliance calibrate`).

    The radar sees one dimension, distance: "near" means the user sleeps on the device's side
    of the bed (the nearest sleeper is the user), "far" that the user sleeps beyond the middle.
    The user's zone is [near_edge_m - 0.15, middle_m + 0.10] on the near side and
    [middle_m - 0.10, middle_m + (middle_m - near_edge_m) + 0.15] on the far side, clipped to
    [user_min_m, user_max_m].
    """

    side: Literal["near", "far"] = Field(
        "near", description="The user's side: 'near' (the device's side) or 'far'."
    )
    near_edge_m: float = Field(
        0.35, ge=0.0, le=4.0, description="Distance from the device to the bed's near edge, metres."
    )
    middle_m: float = Field(
        1.1, ge=0.1, le=5.0, description="Distance from the device to the bed's middle, metres."
    )
    user_min_m: float = Field(
        0.3, ge=0.0, le=5.0, description="Nearest distance a user target may have, metres."
    )
    user_max_m: float = Field(
        1.25, ge=0.1, le=5.0, description="Farthest distance a user target may have, metres."
    )

    @model_validator(mode="after")
    def _order(self) -> BedConfig:
        if self.user_max_m <= self.user_min_m:
            raise ValueError("user_max_m must be greater than user_min_m")
        if self.middle_m <= self.near_edge_m:
            raise ValueError("middle_m must be greater than near_edge_m")
        return self

    def user_zone_m(self) -> tuple[float, float]:
        """Return (nearest, farthest) distance of the user's side of the bed, metres."""
        if self.side == "near":
            lo, hi = self.near_edge_m - 0.15, self.middle_m + 0.10
        else:
            lo = self.middle_m - 0.10
            hi = self.middle_m + (self.middle_m - self.near_edge_m) + 0.15
        lo, hi = max(lo, self.user_min_m), min(hi, self.user_max_m)
        return (lo, hi) if hi > lo else (self.user_min_m, self.user_max_m)


class SessionConfig(_Section):
    """Session life cycle."""

    start_after_s: float = Field(
        300.0, ge=30.0, le=3600.0, description="Presence that starts a session, s."
    )
    close_after_absent_s: float = Field(
        1800.0, ge=60.0, le=6 * 3600.0, description="Absence that closes a session, s."
    )
    latest_close: str = Field(
        "",
        pattern=r"^$|^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="Local time HH:MM at which an open session is closed anyway; '' = never.",
    )
    nap_max_s: float = Field(
        3.0 * 3600.0,
        ge=600.0,
        le=12 * 3600.0,
        description="A session shorter than this that starts in the day is flagged a nap, s.",
    )
    night_start_h: float = Field(
        18.0, ge=0.0, lt=24.0, description="Local hour from which a session is a night, h."
    )
    night_end_h: float = Field(
        6.0, ge=0.0, lt=24.0, description="Local hour until which a session start is a night, h."
    )


class AlarmConfig(_Section):
    """The alarm: the config's own daily alarm (alarm 0) and how every alarm rings.

    More alarms (one-off, weekdays, custom days) live in the store: `appliance alarm set`.
    """

    time: str = Field("", description="Local wake-up time HH:MM of the daily alarm 0, '' for none.")
    window_min: float = Field(
        30.0, ge=0.0, le=45.0, description="Smart window before the set time, minutes."
    )
    sunrise_min: float = Field(
        30.0, ge=0.0, le=60.0, description="Sunrise light before the set time, minutes."
    )
    ring_max_min: float = Field(
        30.0, ge=1.0, le=120.0, description="An unstopped alarm ends after this, minutes."
    )
    snooze_min: float = Field(9.0, gt=0.0, le=60.0, description="Snooze length, minutes.")
    volume_ramp_s: float = Field(
        60.0, ge=0.0, le=600.0, description="Volume ramp from volume_start to full, seconds."
    )
    volume_start: float = Field(
        0.2, ge=0.0, le=1.0, description="Volume the ring starts at, fraction of full."
    )

    @field_validator("time")
    @classmethod
    def _hhmm(cls, v: str) -> str:
        if v == "":
            return v
        h, m = parse_hhmm(v)
        return f"{h:02d}:{m:02d}"


# Pins rpi-ws281x can drive: PWM0 (12, 18), PWM1 (13, 19), PCM (21), SPI (10).
_WS281X_PINS = (10, 12, 13, 18, 19, 21)
# The shipped sounds (hardware/sounds; a test keeps the two lists equal).
SOUND_NAMES = ("chimes", "birdsong", "bowl")


class LightConfig(_Section):
    """The LED ring: the sunrise, the reading light and the night light."""

    type: Literal["simulated", "ws281x", "spi"] = Field(
        "simulated",
        description="Ring driver: 'simulated', 'ws281x' (rpi-ws281x, Pi 1–4) or 'spi' (Pi 5).",
    )
    n_leds: int = Field(24, ge=1, le=450, description="Number of LEDs on the ring.")
    gpio_pin: int = Field(
        18, description="Data pin of the ws281x driver, BCM: 18, 12, 13, 19, 21 or 10."
    )
    spi_bus: int = Field(0, ge=0, le=6, description="SPI bus of the spi driver (MOSI to DIN).")
    spi_device: int = Field(0, ge=0, le=3, description="SPI chip select of the spi driver.")
    max_brightness: float = Field(
        0.8, gt=0.0, le=1.0, description="Brightest channel at the end of the sunrise, 0–1."
    )
    sunrise_min: float = Field(
        30.0, ge=0.0, le=90.0, description="Sunrise before the set time, minutes (0 = none)."
    )
    reading_brightness: float = Field(
        0.6, gt=0.0, le=1.0, description="Brightness of the reading light (3000 K), 0–1."
    )
    night_brightness: float = Field(
        0.02, gt=0.0, le=0.2, description="Brightness of the red night light, 0–0.2."
    )

    @field_validator("gpio_pin")
    @classmethod
    def _pin(cls, v: int, info: ValidationInfo) -> int:
        if info.data.get("type") == "ws281x" and v not in _WS281X_PINS:
            raise ValueError(f"GPIO {v} cannot drive ws281x LEDs (use 18, 12, 13, 19, 21 or 10)")
        return v


class ButtonsConfig(_Section):
    """The device's button (short press: snooze / light; long press: dismiss / standby)."""

    pin: int = Field(
        17, ge=2, le=27, description="BCM pin of the button (to ground; internal pull-up)."
    )
    long_press_s: float = Field(
        2.0, ge=0.5, le=10.0, description="Hold this long for a long press, seconds."
    )


class SpeakerConfig(_Section):
    """The alarm's sound: ALSA device, fallbacks, sound and volume ramp."""

    device: str = Field("default", min_length=1, description="ALSA PCM to play on (aplay -L).")
    fallback_device: str = Field(
        "", description="Second ALSA PCM tried if the first fails; '' = none."
    )
    buzzer_pin: int = Field(
        -1, ge=-1, le=27, description="BCM pin of an active buzzer, last resort; -1 = none."
    )
    volume_ramp_s: float = Field(
        60.0, ge=0.0, le=600.0, description="Volume rises from -30 dB to full over this, s."
    )
    sound: Literal["chimes", "birdsong", "bowl"] = Field(
        "chimes", description="Shipped sound: chimes, birdsong or bowl."
    )

    @model_validator(mode="after")
    def _distinct(self) -> SpeakerConfig:
        if self.fallback_device and self.fallback_device == self.device:
            raise ValueError("fallback_device must differ from device")
        return self


class StoreConfig(_Section):
    """Where the SQLite store lives."""

    data_dir: str = Field("", description="Directory of the store; '' = the state directory.")


class EnvironmentConfig(_Section):
    """The bedroom's temperature, humidity and light sensors on I2C."""

    enabled: bool = Field(True, description="Sample the environment sensors at all.")
    i2c_bus: int = Field(1, ge=0, le=255, description="I2C bus number (/dev/i2c-N; 1 on a Pi).")
    climate: Literal["auto", "sht4x", "bme280", "none"] = Field(
        "auto", description="Climate sensor: 'auto' probes SHT4x then BME280; 'none' for none."
    )
    light: Literal["auto", "tsl2591", "veml7700", "none"] = Field(
        "auto", description="Light sensor: 'auto' probes TSL2591 then VEML7700; 'none' for none."
    )
    interval_s: float = Field(30.0, ge=5.0, le=600.0, description="Sampling interval, s.")
    fail_after: int = Field(
        3, ge=1, le=100, description="Consecutive failures after which a sensor is unavailable."
    )
    stuck_after_s: float = Field(
        1800.0, ge=60.0, le=86400.0, description="Identical raw values this long mean stuck, s."
    )

    @model_validator(mode="after")
    def _stuck_after_interval(self) -> EnvironmentConfig:
        if self.stuck_after_s < 3 * self.interval_s:
            raise ValueError("stuck_after_s must be at least 3 sampling intervals")
        return self


class ApiConfig(_Section):
    """The local control API (a Unix socket; docs/API.md)."""

    socket_path: str = Field(
        "",
        description="Socket of the control API; '' = the runtime directory's api.sock "
        "($RUNTIME_DIRECTORY, /run/appliance, else $XDG_RUNTIME_DIR/appliance or /tmp).",
    )

    @field_validator("socket_path")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if v and not Path(v).is_absolute():
            raise ValueError("must be an absolute path (or '' for the default)")
        if len(v.encode()) > 100:
            # sockaddr_un holds 108 bytes; keep a margin for the temporary name of a rebind.
            raise ValueError("too long for a Unix socket (at most 100 bytes)")
        return v


class MqttConfig(_Section):
    """The MQTT bridge to Home Assistant (off until configured: nothing leaves the device)."""

    enabled: bool = Field(False, description="Publish to an MQTT broker (Home Assistant).")
    host: str = Field("localhost", description="Broker host name or address.")
    port: int = Field(1883, ge=1, le=65535, description="Broker TCP port.")
    username: str = Field("", description="Broker user name; '' = anonymous.")
    password: str = Field("", description="Broker password (needs a username).")
    tls: bool = Field(False, description="Connect with TLS (system CA certificates).")
    discovery_prefix: str = Field(
        "homeassistant", description="Home Assistant's discovery prefix (and status topic)."
    )
    base_topic: str = Field("appliance", description="Topic under which states and commands live.")
    client_id: str = Field("", description="MQTT client id; '' = derived from the device id.")

    @field_validator("discovery_prefix", "base_topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        # A wildcard or an empty level would subscribe to (or publish on) topics that are not ours.
        if not v or v.startswith("/") or v.endswith("/") or "//" in v:
            raise ValueError("must be a topic like 'appliance' or 'home/bedroom', no empty level")
        if any(c in v for c in "+#\0") or any(c.isspace() for c in v):
            raise ValueError("must not contain wildcards (+ #), NUL or spaces")
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not v.strip() or any(c.isspace() for c in v):
            raise ValueError("must be a host name or address")
        return v

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, v: str) -> str:
        if len(v) > 128 or any(not c.isprintable() or c.isspace() for c in v):
            raise ValueError("must be at most 128 printable characters without spaces")
        return v

    @model_validator(mode="after")
    def _credentials(self) -> MqttConfig:
        if self.password and not self.username:
            raise ValueError("password needs a username")
        return self


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
    environment: EnvironmentConfig = Field(default_factory=EnvironmentConfig)
    light: LightConfig = Field(default_factory=LightConfig)
    buttons: ButtonsConfig = Field(default_factory=ButtonsConfig)
    speaker: SpeakerConfig = Field(default_factory=SpeakerConfig)

    @model_validator(mode="after")
    def _pins_distinct(self) -> Config:
        used = {"buttons.pin": self.buttons.pin}
        if self.speaker.buzzer_pin >= 0:
            used["speaker.buzzer_pin"] = self.speaker.buzzer_pin
        if self.light.type == "ws281x":
            used["light.gpio_pin"] = self.light.gpio_pin
        seen: dict[int, str] = {}
        for key, pin in used.items():
            if pin in seen:
                raise ValueError(f"{key} uses GPIO {pin}, already used by {seen[pin]}")
            seen[pin] = key
        return self

    api: ApiConfig = Field(default_factory=ApiConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)

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


_HEADER = """\
# /etc/appliance/config.toml: the bedside sleep appliance's configuration.
#
# install.sh puts this file here once and never overwrites it. Every key has a default: a key left
# commented out (as all are below) takes the value shown. Uncomment a line and change its value;
# an unknown key or a bad value stops the start with one line naming the key.
# Check a change before restarting:  appliance config check /etc/appliance/config.toml
# Apply it:                          sudo systemctl restart appliance
#
# Written by `appliance config default` from the code's own defaults and descriptions.
"""


def _toml_value(v: object) -> str:
    return json.dumps(v) if not isinstance(v, bool) else ("true" if v else "false")


def default_toml() -> str:
    """The documented default config: every section and key, commented out at its default."""
    lines = [_HEADER]
    cfg = Config()

    def keys(model: BaseModel) -> list[str]:
        out: list[str] = []
        for name, field in type(model).model_fields.items():
            value = getattr(model, name)
            if isinstance(value, BaseModel):
                continue
            if field.description:
                out.append(f"# {field.description}")
            out.append(f"# {name} = {_toml_value(value)}")
        return out

    lines += keys(cfg)
    for name in type(cfg).model_fields:
        section = getattr(cfg, name)
        if isinstance(section, BaseModel):
            doc = (type(section).__doc__ or "").strip().splitlines()
            lines += ["", f"[{name}]", *(f"# {d.strip()}" for d in doc[:1]), *keys(section)]
    return "\n".join(lines) + "\n"
