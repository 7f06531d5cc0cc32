"""Building a running appliance from a config: the pieces `appliance run` puts together.

This is the only module that picks concrete devices: the simulated twins off the Pi now, the real
drivers as the hardware issues add them (hardware/board.py reports what is present).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from appliance.clock import ScaledClock
from appliance.config import Config, load_config, resolve_timezone
from appliance.daemon import Daemon
from appliance.errors import ApplianceError, DataError
from appliance.staging import Stager
from appliance.store import Store
from hardware.board import detect_board
from hardware.speaker import SimulatedSpeaker

__all__ = ["STORE_FILE", "run_daemon"]

log = logging.getLogger(__name__)

STORE_FILE = "appliance.sqlite"


def _override(cfg: Config, scene: str | None, night: Path | None, speed: float | None) -> Config:
    """Apply command-line overrides for the simulator, validated like the file."""
    from appliance.config import parse_config

    if scene is None and night is None and speed is None:
        return cfg
    data = cfg.model_dump()
    if scene is not None:
        data["simulator"]["scene"] = scene
    if night is not None:
        data["simulator"]["night"] = str(night)
    if speed is not None:
        data["simulator"]["speed"] = speed
    return parse_config(data)


def run_daemon(
    *,
    config_path: Path | None,
    data_dir: Path | None,
    default_data_dir: Path,
    scene: str | None = None,
    night: Path | None = None,
    speed: float | None = None,
) -> int:
    """Load the config, build devices and stages, and run the daemon until SIGTERM/SIGINT.

    Raises:
        ApplianceError: a bad config, an unusable store, a missing night file or model.
    """
    import time

    from hardware.radar.simulated import SimulatedRadar

    from hardware.radar.night import default_night_path, load_night
    from hardware.radar.scene import build_scene

    cfg = _override(load_config(config_path), scene, night, speed)
    logging.getLogger().setLevel(cfg.log_level)
    tz = resolve_timezone(cfg)
    board = detect_board(cfg)
    for dev in board.devices:
        log.info("device %s: %s (%s)", dev.role, dev.name, "present" if dev.present else "missing")
    directory = data_dir or (Path(cfg.store.data_dir) if cfg.store.data_dir else default_data_dir)
    store = Store.open(directory / STORE_FILE)
    log.info("store %s", directory / STORE_FILE)
    stager = Stager()
    sim = cfg.simulator
    sleeper = load_night(Path(sim.night) if sim.night else default_night_path("sleeper"))
    partner = load_night(
        Path(sim.partner_night) if sim.partner_night else default_night_path("partner")
    )
    try:
        the_scene = build_scene(sim.scene, sleeper, partner, sim.seed)
    except KeyError:
        raise DataError(f"simulator.scene: unknown scene {sim.scene!r}") from None
    clock = ScaledClock(time.time(), sim.speed)
    radar = SimulatedRadar(the_scene, cfg.radar, start_s=clock.now(), seed=sim.seed)
    log.info(
        "simulated radar scene=%s night=%s speed=%gx bins=%d",
        sim.scene,
        sleeper.record,
        sim.speed,
        cfg.radar.n_bins,
    )
    daemon = Daemon(
        cfg, clock=clock, radar=radar, speaker=SimulatedSpeaker(), store=store, stager=stager, tz=tz
    )
    try:
        asyncio.run(daemon.run())
    except KeyboardInterrupt:
        pass
    except ApplianceError:
        raise
    finally:
        store.close()
    return 0
