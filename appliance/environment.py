"""Sampling the bedroom's sensors: typed readings, and faults that never stop the daemon.

`probe_environment` finds the configured parts on the I2C bus; `EnvironmentMonitor.sample(now_s)`
reads them once per interval (the daemon calls it; nothing here sleeps or reads a clock). Per
sensor, a NACK, a CRC error, an implausible value or a stuck value marks that reading invalid
(None) and starts a fault episode:

- the episode is logged once when it starts, once when the sensor becomes unavailable (after
  `fail_after` consecutive failures) and once when it recovers, never once per sample;
- the sensor is retried with exponential back-off: after the k-th consecutive failure it is not
  read again for interval·2^(k−1) seconds (capped at `max_backoff_s`);
- its health is "ok", "failing" (fewer than `fail_after` failures) or "unavailable", with the
  last error;
- it recovers by itself the first time it answers plausibly again.

A stuck sensor is one whose raw ADC words stay identical for `stuck_after_s` (real sensors have a
few counts of noise; a light sensor reading zero counts in the dark is exempt).

The drivers block for their conversion (10 ms for climate, up to ~1.5 s for an auto-ranging light
sensor in the dark), so on real hardware the daemon runs `sample` in a worker thread
(`asyncio.to_thread`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from appliance.config import EnvironmentConfig
from appliance.errors import HardwareError
from hardware.environment import (
    Bme280,
    ClimateReading,
    I2CBus,
    LightReading,
    SensorError,
    Sht4x,
    Tsl2591,
    Veml7700,
    open_bus,
)

if TYPE_CHECKING:
    from hardware.environment.fakes import BedroomNight

__all__ = [
    "PLAUSIBLE",
    "EnvironmentMonitor",
    "EnvironmentReading",
    "EnvironmentSensor",
    "FoundSensor",
    "SensorHealth",
    "open_environment",
    "probe_environment",
]

log = logging.getLogger(__name__)

HealthState = Literal["ok", "failing", "unavailable"]

PLAUSIBLE: dict[str, tuple[float, float]] = {
    "temperature_c": (-10.0, 50.0),
    "humidity_pct": (0.0, 100.0),
    "pressure_hpa": (300.0, 1100.0),
    "lux": (0.0, 150000.0),
}
"""Values a bedroom can have; anything outside is a sensor fault, not weather."""


class EnvironmentSensor(Protocol):
    """What the monitor needs of a driver (`Sht4x`, `Bme280`, `Tsl2591`, `Veml7700`)."""

    @property
    def name(self) -> str:
        """The part ("sht4x")."""
        ...

    @property
    def role(self) -> str:
        """The role: "climate" or "light"."""
        ...

    @property
    def address(self) -> int:
        """7-bit I2C address."""
        ...

    def probe(self) -> str:
        """Identify the part; raise `SensorError` if it is absent or another part."""
        ...

    def read(self) -> ClimateReading | LightReading:
        """Measure once; raise `SensorError` on a fault."""
        ...


@dataclass(frozen=True, slots=True)
class SensorHealth:
    """How one sensor is doing.

    Attributes:
        sensor: The part ("sht4x").
        role: "climate" or "light".
        state: "ok", "failing" (a fault, fewer than `fail_after` in a row) or "unavailable".
        last_error: The latest fault, None if it never failed or has recovered.
        failures: Consecutive failures (0 when ok).
        retry_at_s: When it will be read again, UTC epoch seconds; None if at every sample.
    """

    sensor: str
    role: str
    state: HealthState
    last_error: str | None
    failures: int
    retry_at_s: float | None


@dataclass(frozen=True, slots=True)
class EnvironmentReading:
    """One sample of the bedroom; a value is None when no valid reading was had.

    Attributes:
        t_s: Time of the sample, UTC epoch seconds.
        temperature_c: Air temperature, °C.
        humidity_pct: Relative humidity, %.
        pressure_hpa: Barometric pressure, hPa (BME280 only).
        lux: Illuminance, lx.
        climate_sensor: The part that gave the climate values, None without one.
        light_sensor: The part that gave `lux`, None without one.
        health: Every configured sensor's health after this sample.
    """

    t_s: float
    temperature_c: float | None
    humidity_pct: float | None
    pressure_hpa: float | None
    lux: float | None
    climate_sensor: str | None
    light_sensor: str | None
    health: tuple[SensorHealth, ...]

    def rows(self) -> list[tuple[str, str, float, str]]:
        """The valid values as (sensor, quantity, value, unit), for `Store.add_environment`."""
        out: list[tuple[str, str, float, str]] = []
        if self.climate_sensor is not None:
            for quantity, value, unit in (
                ("temperature", self.temperature_c, "degC"),
                ("humidity", self.humidity_pct, "%RH"),
                ("pressure", self.pressure_hpa, "hPa"),
            ):
                if value is not None:
                    out.append((self.climate_sensor, quantity, value, unit))
        if self.light_sensor is not None and self.lux is not None:
            out.append((self.light_sensor, "illuminance", self.lux, "lx"))
        return out


class _Track:
    """The monitor's bookkeeping for one sensor."""

    def __init__(self, sensor: EnvironmentSensor) -> None:
        self.sensor = sensor
        self.state: HealthState = "ok"
        self.failures = 0
        self.last_error: str | None = None
        self.retry_at_s: float | None = None
        self.last_raw: tuple[int, ...] | None = None
        self.raw_since_s = 0.0

    def health(self) -> SensorHealth:
        return SensorHealth(
            self.sensor.name,
            self.sensor.role,
            self.state,
            self.last_error,
            self.failures,
            self.retry_at_s,
        )


def _implausible(reading: ClimateReading | LightReading) -> str | None:
    values: dict[str, float | None]
    if isinstance(reading, ClimateReading):
        values = {
            "temperature_c": reading.temperature_c,
            "humidity_pct": reading.humidity_pct,
            "pressure_hpa": reading.pressure_hpa,
        }
    else:
        values = {"lux": reading.lux}
    for key, value in values.items():
        if value is None:
            continue
        lo, hi = PLAUSIBLE[key]
        if not (math.isfinite(value) and lo <= value <= hi):
            return f"implausible {key} {value:g}"
    return None


class EnvironmentMonitor:
    """Samples the configured sensors once per call, with per-sensor fault handling.

    Args:
        sensors: At most one "climate" and one "light" sensor (the first of each role is used).
        cfg: The `[environment]` section (`interval_s`, `fail_after`, `stuck_after_s`).
        max_backoff_s: Longest pause between retries of a failing sensor, s; None = 10 intervals.
    """

    def __init__(
        self,
        sensors: Sequence[EnvironmentSensor],
        cfg: EnvironmentConfig | None = None,
        *,
        max_backoff_s: float | None = None,
    ) -> None:
        self.cfg = cfg or EnvironmentConfig()
        self.max_backoff_s = 10.0 * self.cfg.interval_s if max_backoff_s is None else max_backoff_s
        self._tracks: dict[str, _Track] = {}
        for s in sensors:
            if s.role in ("climate", "light") and s.role not in self._tracks:
                self._tracks[s.role] = _Track(s)

    @property
    def interval_s(self) -> float:
        """How often the daemon should call `sample`, s."""
        return self.cfg.interval_s

    @property
    def sensors(self) -> tuple[EnvironmentSensor, ...]:
        """The sensors sampled."""
        return tuple(t.sensor for t in self._tracks.values())

    def health(self) -> tuple[SensorHealth, ...]:
        """Every sensor's current health."""
        return tuple(t.health() for t in self._tracks.values())

    def sample(self, now_s: float) -> EnvironmentReading:
        """Read every sensor that is not backing off; never raises for a sensor fault.

        Args:
            now_s: Time of the sample, UTC epoch seconds (from the daemon's clock).
        """
        climate = self._sample_one(self._tracks.get("climate"), now_s)
        light = self._sample_one(self._tracks.get("light"), now_s)
        c = climate if isinstance(climate, ClimateReading) else None
        lr = light if isinstance(light, LightReading) else None
        return EnvironmentReading(
            t_s=now_s,
            temperature_c=c.temperature_c if c else None,
            humidity_pct=c.humidity_pct if c else None,
            pressure_hpa=c.pressure_hpa if c else None,
            lux=lr.lux if lr else None,
            climate_sensor=self._tracks["climate"].sensor.name if c else None,
            light_sensor=self._tracks["light"].sensor.name if lr else None,
            health=self.health(),
        )

    def _sample_one(
        self, track: _Track | None, now_s: float
    ) -> ClimateReading | LightReading | None:
        if track is None:
            return None
        if track.retry_at_s is not None and now_s < track.retry_at_s:
            return None
        try:
            reading = track.sensor.read()
        except SensorError as e:
            self._fail(track, now_s, e.reason)
            return None
        except Exception as e:  # a driver bug or an unexpected bus error must not stop sampling
            if track.failures == 0:
                log.debug("environment: %s raised", track.sensor.name, exc_info=True)
            self._fail(track, now_s, f"{e.__class__.__name__}: {e}")
            return None
        problem = _implausible(reading) or self._stuck(track, reading, now_s)
        if problem is not None:
            self._fail(track, now_s, problem)
            return None
        if track.state != "ok":
            log.info(
                "environment: %s recovered after %d failures (last: %s)",
                track.sensor.name,
                track.failures,
                track.last_error,
            )
        track.state, track.failures, track.last_error, track.retry_at_s = "ok", 0, None, None
        return reading

    def _stuck(
        self, track: _Track, reading: ClimateReading | LightReading, now_s: float
    ) -> str | None:
        raw = reading.raw
        if isinstance(reading, LightReading) and not any(raw):
            track.last_raw = None  # zero counts in a dark room is real, not a stuck part
            return None
        if raw != track.last_raw:
            track.last_raw, track.raw_since_s = raw, now_s
            return None
        if now_s - track.raw_since_s >= self.cfg.stuck_after_s:
            return f"stuck: raw {raw} unchanged for {now_s - track.raw_since_s:.0f} s"
        return None

    def _fail(self, track: _Track, now_s: float, reason: str) -> None:
        track.failures += 1
        track.last_error = reason
        name = track.sensor.name
        if track.failures == 1:
            log.warning("environment: %s reading invalid: %s", name, reason)
        if track.failures >= self.cfg.fail_after:
            if track.state != "unavailable":
                log.warning(
                    "environment: %s unavailable after %d failures (%s); retrying every %.0f s",
                    name,
                    track.failures,
                    reason,
                    self.max_backoff_s,
                )
            track.state = "unavailable"
        else:
            track.state = "failing"
        interval = self.cfg.interval_s
        backoff = min(interval * 2.0 ** (track.failures - 1), self.max_backoff_s)
        # Half an interval early, so a sample that arrives a little early is not skipped.
        track.retry_at_s = now_s + backoff - 0.5 * interval


@dataclass(frozen=True, slots=True)
class FoundSensor:
    """One configured part, as probed.

    Attributes:
        sensor: The driver.
        identity: What the part said it is ("SHT4x serial 0x..."), None if it did not answer.
        present: Whether it answered the probe.
    """

    sensor: EnvironmentSensor
    identity: str | None
    present: bool


_CANDIDATES: dict[str, tuple[tuple[str, int], ...]] = {
    "sht4x": (("sht4x", 0x44), ("sht4x", 0x45)),
    "bme280": (("bme280", 0x76), ("bme280", 0x77)),
    "tsl2591": (("tsl2591", 0x29),),
    "veml7700": (("veml7700", 0x10),),
}
_DRIVERS: dict[str, type[Sht4x] | type[Bme280] | type[Tsl2591] | type[Veml7700]] = {
    "sht4x": Sht4x,
    "bme280": Bme280,
    "tsl2591": Tsl2591,
    "veml7700": Veml7700,
}
_AUTO = {"climate": ("sht4x", "bme280"), "light": ("tsl2591", "veml7700")}


def probe_environment(
    bus: I2CBus, cfg: EnvironmentConfig, *, sleep: Callable[[float], None] = time.sleep
) -> list[FoundSensor]:
    """Find the configured sensors on `bus`.

    For each role ("climate", "light") the config names a part, "auto" or "none". "auto" tries
    the parts in order of preference (SHT4x then BME280; TSL2591 then VEML7700) at their
    addresses and keeps the first that identifies itself. A part named explicitly but not found
    is still returned (present=False) so that the monitor reports it unavailable and picks it up
    when it answers.

    Args:
        bus: The I2C bus.
        cfg: The `[environment]` section.
        sleep: The drivers' wait (time.sleep, or a fake bus's `sleep`).

    Returns:
        At most one sensor per role; empty if `cfg.enabled` is False. Never raises for a missing
        part.
    """
    if not cfg.enabled:
        return []
    found: list[FoundSensor] = []
    for role, choice in (("climate", cfg.climate), ("light", cfg.light)):
        if choice == "none":
            continue
        parts = _AUTO[role] if choice == "auto" else (choice,)
        hit: FoundSensor | None = None
        for part in parts:
            for name, address in _CANDIDATES[part]:
                sensor = _DRIVERS[name](bus, address, sleep=sleep)
                try:
                    identity = sensor.probe()
                except SensorError as e:
                    log.debug("environment: no %s at 0x%02x (%s)", name, address, e.reason)
                    continue
                hit = FoundSensor(sensor, identity, True)
                log.info("environment: %s at 0x%02x: %s", role, address, identity)
                break
            if hit:
                break
        if hit is None and choice != "auto":
            name, address = _CANDIDATES[choice][0]
            log.warning("environment: configured %s sensor %s not found", role, choice)
            hit = FoundSensor(_DRIVERS[name](bus, address, sleep=sleep), None, False)
        if hit is None:
            log.info("environment: no %s sensor found", role)
        else:
            found.append(hit)
    return found


def open_environment(
    cfg: EnvironmentConfig,
    *,
    simulated: bool,
    clock: Callable[[], float],
    night: BedroomNight | None = None,
) -> EnvironmentMonitor | None:
    """Build the monitor the daemon samples: real bus on the Pi, the simulated twin elsewhere.

    Args:
        cfg: The `[environment]` section.
        simulated: True for the simulated twin (fake devices driven by `clock`).
        clock: The daemon's clock's `now` (UTC epoch seconds); only the twin reads it.
        night: The twin's bedroom model, in local time (`BedroomNight(tz=...)`); None = UTC.

    Returns:
        The monitor, or None if the environment is disabled or the bus cannot be opened (logged
        once; the daemon runs without it).
    """
    if not cfg.enabled:
        return None
    sleep: Callable[[float], None]
    if simulated:
        from hardware.environment.fakes import simulated_bus

        parts = [
            _AUTO[role][0] if choice == "auto" else choice
            for role, choice in (("climate", cfg.climate), ("light", cfg.light))
            if choice != "none"
        ]
        fake = simulated_bus(clock, night, parts)
        bus: I2CBus = fake
        sleep = fake.sleep
    else:
        try:
            bus = open_bus(cfg.i2c_bus)
        except HardwareError as e:
            log.warning("environment: disabled: %s", e)
            return None
        sleep = time.sleep
    found = probe_environment(bus, cfg, sleep=sleep)
    return EnvironmentMonitor([f.sensor for f in found], cfg)
