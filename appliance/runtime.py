"""Building a running appliance from a config: the pieces `appliance run` puts together.

This module picks the concrete devices for `appliance run`: the radar `radar.type` names (the
simulated scene, the A121 through its exploration server, or the MR60BHA2 module on the UART), the
ALSA speaker on a Pi (hardware/board.py reports what is present); `appliance simulate` always uses
the twins (appliance/simulation.py).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

from appliance.api_client import default_socket_path
from appliance.clock import Clock, RealClock, ScaledClock
from appliance.config import Config, LightConfig, load_config, parse_config, resolve_timezone
from appliance.daemon import Daemon
from appliance.environment import open_environment
from appliance.errors import ConfigError, HardwareError, StoreError
from appliance.staging import Stager
from appliance.store import Store
from hardware.board import Board, detect_board
from hardware.buttons import ButtonEvent, GpioButton
from hardware.environment.fakes import BedroomNight
from hardware.light import LightController, LightSettings
from hardware.light.ring import LedRing, SimulatedRing, SpiRing, Ws281xRing
from hardware.radar.a121 import A121Radar
from hardware.radar.mr60bha2 import Mr60Radar
from hardware.radar.night import Night, default_night_path, load_night
from hardware.radar.scene import SCENES, Scene, build_scene
from hardware.radar.simulated import SimulatedRadar
from hardware.radar.source import RadarSource
from hardware.speaker import Speaker, speaker_from_config

__all__ = [
    "STORE_FILE",
    "check_recordable",
    "check_simulator",
    "radar_from_config",
    "run_daemon",
    "simulated_scene",
    "with_overrides",
]

log = logging.getLogger(__name__)

STORE_FILE = "appliance.sqlite"


def with_overrides(
    cfg: Config,
    *,
    scene: str | None = None,
    night: Path | None = None,
    partner: Path | None = None,
    speed: float | None = None,
    seed: int | None = None,
    alarm: str | None = None,
) -> Config:
    """Apply command-line overrides (None = keep the config's), validated like the file.

    Raises:
        ConfigError: an overridden value is bad, named by its config key.
    """
    simulator = {"scene": scene, "night": night, "partner_night": partner, "speed": speed}
    simulator["seed"] = seed
    changes = {k: (str(v) if isinstance(v, Path) else v) for k, v in simulator.items()}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes and not alarm:
        return cfg
    data = cfg.model_dump()
    data["simulator"].update(changes)
    if alarm:
        data["alarm"]["time"] = alarm
    return parse_config(data)


def simulated_scene(cfg: Config) -> tuple[Scene, Night]:
    """The scene `[simulator]` describes, and the night that drives its sleeper.

    Raises:
        ConfigError: an unknown scene or a missing night file.
        DataError: a night file that is not in the documented format.
    """
    check_simulator(cfg)
    sim = cfg.simulator
    sleeper = load_night(Path(sim.night) if sim.night else default_night_path("sleeper"))
    partner = load_night(
        Path(sim.partner_night) if sim.partner_night else default_night_path("partner")
    )
    return build_scene(sim.scene, sleeper, partner, sim.seed), sleeper


def check_recordable(cfg: Config) -> None:
    """Refuse `appliance record` for a source that gives no IQ.

    Raises:
        ConfigError: `radar.type = "mr60bha2"`: the module reports phases and rates, not the IQ
            frames a recording (`hardware.radar.replay`) holds.
    """
    if cfg.radar.type == "mr60bha2":
        raise ConfigError(
            "radar.type",
            "the MR60BHA2 gives no IQ frames, so there is nothing to record or replay; "
            "recordings come from 'a121' or 'simulated'",
        )


def radar_from_config(cfg: Config, clock: Clock) -> A121Radar | Mr60Radar:
    """The radar driver `radar.type` names ("a121" or "mr60bha2"), not yet started.

    Raises:
        ValueError: `radar.type = "simulated"` (the scene twin is built by `run_daemon`).
    """
    if cfg.radar.type == "a121":
        log.info(
            "A121 radar via the exploration server %s:%d", cfg.radar.a121_host, cfg.radar.a121_port
        )
        return A121Radar.from_config(cfg.radar, clock)
    if cfg.radar.type == "mr60bha2":
        # pyserial is imported when the port is opened (the `pi` extra); a missing one, like a
        # missing port, is reported as the radar being unavailable, and retried.
        log.info("MR60BHA2 module on %s at %d baud", cfg.radar.serial_port, cfg.radar.serial_baud)
        return Mr60Radar(clock, port=cfg.radar.serial_port, baud=cfg.radar.serial_baud)
    raise ValueError(f"radar.type {cfg.radar.type!r} has no driver")


def check_simulator(cfg: Config) -> None:
    """The checks of `[simulator]` that need the simulator itself (run and config check share it).

    Raises:
        ConfigError: an unknown scene or a night file that does not exist.
    """
    sim = cfg.simulator
    if sim.scene not in SCENES:
        raise ConfigError(
            "simulator.scene", f"unknown scene {sim.scene!r}; known: {', '.join(SCENES)}"
        )
    for key in ("night", "partner_night"):
        value = getattr(sim, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"simulator.{key}", f"no such file {value}")


def _open_store(path: Path) -> tuple[Store, str | None]:
    """The store at `path`, or a temporary one if it cannot be used, and why (None if not).

    The alarm must ring whatever else fails, so an unusable state directory (full, read-only,
    corrupt) never keeps the daemon from starting: the night goes to a temporary store, and the
    log (and the store's health) says so.
    """
    try:
        store = Store.open(path)
    except StoreError as e:
        fallback = Path(tempfile.mkdtemp(prefix="appliance-store-")) / STORE_FILE
        log.error("store unavailable: %s; tonight is kept only in %s", e, fallback)
        return Store.open(fallback), f"{e}; tonight is kept only in {fallback} until a restart"
    log.info("store %s", path)
    return store, None


def _speaker(cfg: Config, board: Board, clock: Clock) -> Speaker:
    """The configured ALSA chain (device, fallback device, buzzer) on a Pi; the twin elsewhere."""

    def fell_back(failed: str, to: str, error: str) -> None:
        log.warning("speaker %s failed (%s); the alarm now rings on %s", failed, error, to)

    speaker = speaker_from_config(
        cfg.speaker, simulated=not board.is_pi, clock=clock, on_fallback=fell_back
    )
    if board.is_pi and not speaker.available():
        log.warning("speaker: no working output; the alarm has no sound (install alsa-utils)")
    log.info("speaker: %s", getattr(speaker, "name", type(speaker).__name__))
    return speaker


def _button(
    cfg: Config, board: Board, clock: Clock
) -> Callable[[Callable[[ButtonEvent], None]], object] | None:
    """The gpiozero button on a Pi (made by the daemon's button task); none elsewhere."""
    if not board.is_pi:
        return None

    def make(sink: Callable[[ButtonEvent], None]) -> object:
        return GpioButton(sink, clock, pin=cfg.buttons.pin, long_press_s=cfg.buttons.long_press_s)

    return make


def light_from_config(cfg: LightConfig, clock: Clock) -> LightController | None:
    """The LED ring's controller, or None (logged) when the driver cannot be used."""
    ring: LedRing
    try:
        if cfg.type == "simulated":
            ring = SimulatedRing(cfg.n_leds, clock)
        elif cfg.type == "ws281x":
            ring = Ws281xRing(cfg.n_leds, cfg.gpio_pin)
        else:
            ring = SpiRing(cfg.n_leds, bus=cfg.spi_bus, device=cfg.spi_device)
    except HardwareError as e:
        log.error("light: unavailable (%s); alarms still ring", e)
        return None
    settings = LightSettings(
        sunrise_s=cfg.sunrise_min * 60.0,
        max_brightness=cfg.max_brightness,
        reading_brightness=cfg.reading_brightness,
        night_brightness=cfg.night_brightness,
    )
    log.info("light: %s ring, %d LEDs", cfg.type, cfg.n_leds)
    return LightController(ring, settings)


def run_daemon(
    *,
    config_path: Path | None,
    data_dir: Path | None,
    default_data_dir: Path,
    scene: str | None = None,
    night: Path | None = None,
    speed: float | None = None,
    verbose: bool = False,
) -> int:
    """Load the config, build devices and stages, and run the daemon until SIGTERM/SIGINT.

    Raises:
        ApplianceError: a bad config, a missing night file or model (an unusable store is not
            one: the daemon then runs on a temporary store, so the alarm still rings).
    """
    import time

    cfg = with_overrides(load_config(config_path), scene=scene, night=night, speed=speed)
    if not verbose:
        logging.getLogger().setLevel(cfg.log_level)
    tz = resolve_timezone(cfg)
    board = detect_board(cfg)
    for dev in board.devices:
        log.info("device %s: %s (%s)", dev.role, dev.name, "present" if dev.present else "missing")
    # Everything that can fail on the user's input is checked before the store is touched.
    stager = Stager()
    radar: RadarSource | Mr60Radar
    if cfg.radar.type != "simulated":
        clock: Clock = RealClock()
        radar = radar_from_config(cfg, clock)
    else:
        the_scene, sleeper = simulated_scene(cfg)
        sim = cfg.simulator
        # At speed 1 the wall clock itself: a Pi without an RTC corrects its time after boot, and
        # the alarm must follow the corrected local time.
        clock = RealClock() if sim.speed == 1.0 else ScaledClock(time.time(), sim.speed)
        radar_start_s = clock.now()
        radar = SimulatedRadar(the_scene, cfg.radar, start_s=radar_start_s, seed=sim.seed)
        log.info(
            "simulated radar scene=%s night=%s speed=%gx bins=%d",
            sim.scene,
            sleeper.record,
            sim.speed,
            cfg.radar.n_bins,
        )
    speaker = _speaker(cfg, board, clock)
    light = light_from_config(cfg.light, clock)
    bedroom = BedroomNight(tz=tz)
    if cfg.radar.type == "simulated" and the_scene.light is not None:
        # The simulated sleeper's lamp and lights-out, so that sleep intent sees them.
        bedroom = BedroomNight(tz=tz, light=the_scene.light.lux_at, light_origin_s=radar_start_s)
    environment = open_environment(
        cfg.environment, simulated=not board.is_pi, clock=clock.now, night=bedroom
    )
    for sensor in environment.sensors if environment is not None else ():
        twin = " (simulated)" if not board.is_pi else ""
        log.info("device %s: %s at 0x%02x%s", sensor.role, sensor.name, sensor.address, twin)
    directory = data_dir or (Path(cfg.store.data_dir) if cfg.store.data_dir else default_data_dir)
    store, store_problem = _open_store(directory / STORE_FILE)
    socket_path = Path(cfg.api.socket_path) if cfg.api.socket_path else default_socket_path()
    daemon = Daemon(
        cfg,
        clock=clock,
        radar=radar,
        speaker=speaker,
        store=store,
        stager=stager,
        tz=tz,
        environment=environment,
        light=light,
        api_socket=socket_path,
    )
    if store_problem is not None:
        daemon.health.set("store", "failing", store_problem)
    try:
        asyncio.run(daemon.run())
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    return 0
