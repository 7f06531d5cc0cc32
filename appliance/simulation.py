"""`appliance simulate`: one whole night in virtual time through the real daemon and store.

A scene (hardware.radar.scene) whose sleeper is driven by a recorded night renders radar frames;
the daemon runs DSP → presence → tracking → epochs → staging → session → store and the alarm on
them with a `VirtualClock` that the radar drives, as fast as the machine allows. The morning
report compares the device's night with the experts' scoring of the same night.

The night is placed on the calendar so that the result does not depend on when it is run: with an
alarm, the recording ends 10 minutes after the alarm time on the morning of 2026-01-13 (so the
smart window falls inside the recorded night); without one, the recording starts at 23:00 on
2026-01-12, local time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from appliance.alarm import next_occurrence
from appliance.clock import VirtualClock, local_datetime
from appliance.config import Config, resolve_timezone
from appliance.daemon import Daemon
from appliance.environment import open_environment
from appliance.frames import ABSENT, EPOCH_S, UNSCORED, stage_name
from appliance.metrics import agreement, sleep_metrics
from appliance.report import format_report
from appliance.report_data import epoch_rows, session_hypnogram
from appliance.runtime import light_from_config, simulated_scene, with_overrides
from appliance.staging import Stager
from appliance.store import Store
from hardware.environment.fakes import BedroomNight
from hardware.radar.night import Night
from hardware.radar.scene import SCENES, Scene
from hardware.radar.simulated import SceneTruth, SimulatedRadar
from hardware.speaker import SimulatedSpeaker

__all__ = [
    "SCENE_NAMES",
    "PreparedNight",
    "SimulationResult",
    "place_night",
    "prepare_night",
    "simulate_night",
]

log = logging.getLogger(__name__)

SCENE_NAMES: tuple[str, ...] = tuple(SCENES)
_EVENING = (2026, 1, 12, 23, 0)
_AFTER_ALARM_S = 600.0
_CHECK_S = 5.0
_DISMISS_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """The morning report of a simulated night.

    Attributes:
        text: The report for the terminal.
        data: The same as a JSON-friendly dict (see `appliance simulate --json`).
    """

    text: str
    data: dict[str, Any]


def place_night(recording_start_s: float | None, recording_s: float, alarm: str, tz: Any) -> float:
    """Return the scene's start, UTC epoch seconds, for a reproducible calendar placement.

    Args:
        recording_start_s: Scene time of the recording's start, s (None: an empty room).
        recording_s: Length of the recording, s.
        alarm: Local alarm "HH:MM" or "".
        tz: The local ZoneInfo.
    """
    evening = datetime(*_EVENING, tzinfo=tz).timestamp()
    rec0 = recording_start_s or 0.0
    if alarm:
        ring = next_occurrence(alarm, tz, evening)
        start = ring + _AFTER_ALARM_S - (rec0 + recording_s)
    else:
        start = evening - rec0
    # On the wall clock's 30-s grid, where the daemon's epochs fall: device epoch k is then
    # scene epoch k, and the experts' epochs line up with both.
    return math.floor(start / EPOCH_S) * EPOCH_S


async def _night_with_a_sleeper(daemon: Daemon, clock: VirtualClock) -> None:
    """Run the daemon; the simulated sleeper dismisses a ringing alarm after a minute."""
    run = asyncio.create_task(daemon.run())
    while True:
        nap = asyncio.create_task(clock.sleep(_CHECK_S))
        done, _ = await asyncio.wait({run, nap}, return_when=asyncio.FIRST_COMPLETED)
        if run in done:
            nap.cancel()
            run.result()
            return
        alarm, rang = daemon.alarm.alarm, daemon.alarm.last_ring_s
        ringing = alarm is not None and alarm.state == "ringing" and rang is not None
        if ringing and rang is not None and clock.now() - rang >= _DISMISS_AFTER_S:
            daemon.alarm.stop()


def _truth_hypnogram(truth: SceneTruth) -> np.ndarray:
    """Scene truth as hypnogram codes: expert stages, scripted wake, ABSENT when out of bed."""
    hyp = truth.stages.astype(np.int8).copy()
    hyp[~truth.user_present] = ABSENT
    return hyp


def _span(*hyps: np.ndarray) -> tuple[int, int]:
    present = np.zeros(hyps[0].shape[0], bool)
    for h in hyps:
        present |= h != ABSENT
    idx = np.flatnonzero(present)
    return (int(idx[0]), int(idx[-1]) + 1) if idx.size else (0, 0)


@dataclass(frozen=True, slots=True)
class PreparedNight:
    """Everything a simulated night starts from.

    Attributes:
        cfg: The configuration with the command's overrides applied.
        tz: Local time zone.
        scene: The scene to render.
        sleeper: The recorded night driving the user.
        start_s: Scene start, UTC epoch seconds (`place_night`).
    """

    cfg: Config
    tz: ZoneInfo
    scene: Scene
    sleeper: Night
    start_s: float


def _bedroom(prep: PreparedNight) -> BedroomNight:
    """The simulated bedroom: the scene's own light (lamp, TV, lights out) where it has one."""
    light = prep.scene.light
    if light is None:
        return BedroomNight(tz=prep.tz)
    return BedroomNight(tz=prep.tz, light=light.lux_at, light_origin_s=prep.start_s)


def prepare_night(
    cfg: Config,
    *,
    night: Path | None = None,
    partner: Path | None = None,
    scene: str | None = None,
    alarm: str = "",
    seed: int | None = None,
) -> PreparedNight:
    """Apply the overrides, build the scene and place it on the calendar.

    Raises:
        ConfigError: a bad alarm time, scene or seed; a missing night file.
        DataError: an unreadable night.
    """
    cfg = with_overrides(cfg, scene=scene, night=night, partner=partner, seed=seed, alarm=alarm)
    tz = resolve_timezone(cfg)
    the_scene, sleeper = simulated_scene(cfg)
    start_s = place_night(the_scene.recording_start_s, sleeper.duration_s, cfg.alarm.time, tz)
    return PreparedNight(cfg, tz, the_scene, sleeper, start_s)


def simulate_night(
    cfg: Config,
    *,
    night: Path | None,
    partner: Path | None = None,
    scene: str | None = None,
    alarm: str = "",
    db: Path | None = None,
    seed: int | None = None,
    model: Path | None = None,
) -> SimulationResult:
    """Simulate one night end to end and build its morning report.

    `scene` and `seed` default to the config's `[simulator]` values; `model` is an ONNX stager
    other than the shipped one (e.g. a cross-validation fold's model that never saw this night's
    subject).

    Raises:
        DataError: an unreadable night.
        ConfigError: a bad alarm time, scene or seed.
        StoreError: the store cannot be written.
    """
    prep = prepare_night(cfg, night=night, partner=partner, scene=scene, alarm=alarm, seed=seed)
    clock = VirtualClock(prep.start_s)
    radar = SimulatedRadar(
        prep.scene, prep.cfg.radar, start_s=prep.start_s, seed=prep.cfg.simulator.seed
    )
    speaker = SimulatedSpeaker(clock)

    stager = Stager(model)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if db is None:
        tmp = tempfile.TemporaryDirectory(prefix="appliance-sim-")
        db = Path(tmp.name) / "night.sqlite"
    try:
        with Store.open(db) as store:
            daemon = Daemon(
                prep.cfg,
                clock=clock,
                radar=radar,
                speaker=speaker,
                store=store,
                stager=stager,
                tz=prep.tz,
                finite_source=True,
                environment=open_environment(
                    prep.cfg.environment,
                    simulated=True,
                    clock=clock.now,
                    night=_bedroom(prep),
                ),
                light=light_from_config(prep.cfg.light, clock),
            )
            t0 = time.perf_counter()
            asyncio.run(_night_with_a_sleeper(daemon, clock))
            wall_s = time.perf_counter() - t0
            seen = prep.sleeper.record in stager.card.training_records
            return _report(daemon, store, radar.truth, prep, wall_s, seen)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _report(
    daemon: Daemon,
    store: Store,
    truth: SceneTruth,
    prep: PreparedNight,
    wall_s: float,
    seen_in_training: bool,
) -> SimulationResult:
    cfg, tz, start_s = prep.cfg, prep.tz, prep.start_s
    record, scene = prep.sleeper.record, cfg.simulator.scene
    n = truth.n_epochs
    truth_hyp = _truth_hypnogram(truth)
    device = np.full(n, ABSENT, np.int8)
    rows = [r for r in store.sessions(limit=100) if r.summary is not None]
    main = max(rows, key=lambda r: (r.ended_s or r.started_s) - r.started_s, default=None)
    epochs: list[dict[str, Any]] = []
    device_intent: int | None = None
    if main is not None:
        t0, hyp = session_hypnogram(store, main)
        first = int(round((t0 - start_s) / EPOCH_S))
        k = min(len(hyp), n - first)
        device[first : first + k] = hyp[:k]
        epochs = epoch_rows(store, main)
        if (i := (main.summary or {}).get("intent_index")) is not None:
            device_intent = first + int(i)
    lo, hi = _span(truth_hyp, device)
    dev = device[lo:hi]
    tru = truth_hyp[lo:hi]
    scored = np.where(truth.expert_scored[lo:hi], tru, UNSCORED)
    t_lo = start_s + lo * EPOCH_S

    def on_span(i: int | None) -> int | None:
        return i - lo if i is not None and lo <= i < hi else None

    # Both nights on the same epochs, so that every clock time in the report lines up.
    device_metrics = sleep_metrics(dev, intent_index=on_span(device_intent))
    truth_intent = None if truth.intent_s is None else int(truth.intent_s // EPOCH_S)
    truth_metrics = (
        sleep_metrics(tru, intent_index=on_span(truth_intent)) if np.any(tru != ABSENT) else None
    )
    agree = agreement(scored, dev) if np.any(truth.expert_scored) else None
    ring = next((e for e in daemon.alarm_events if e.kind == "alarm_ringing"), None)
    ring_detail = json.loads(ring.detail) if ring and ring.detail else {}
    alarm: dict[str, Any] | None = None
    if cfg.alarm.time:
        set_s = ring_detail.get("set_s")
        if set_s is None:
            set_s = next_occurrence(cfg.alarm.time, tz, start_s)
        alarm = {
            "set": cfg.alarm.time,
            "set_s": set_s,
            "set_local": local_datetime(set_s, tz).isoformat(),
            "window_min": cfg.alarm.window_min,
            "rang_at_s": ring.t_s if ring else None,
            "rang_at": local_datetime(ring.t_s, tz).isoformat() if ring else None,
            "reason": ring_detail.get("reason"),
        }
    title = f"Night of {record} · scene {scene} · simulated in {wall_s:.1f} s"
    text = format_report(
        device_hyp=dev,
        truth_hyp=tru,
        t0_s=t_lo,
        tz=tz,
        metrics=device_metrics,
        truth_metrics=truth_metrics,
        agreement=agree,
        alarm=alarm,
        title=title,
        story=main.summary if main is not None else None,
    )
    if seen_in_training and agree is not None:
        text += (
            f"\nNote: {record} is one of the nights the shipped model was trained on, so this"
            "\nagreement is optimistic. Held-out (leave-one-subject-out) figures: models/live.md."
        )
    sim_s = truth.n_epochs * EPOCH_S
    data: dict[str, Any] = {
        "night": record,
        "scene": scene,
        "session": main.id if main else None,
        "start_s": t_lo,
        "epochs": epochs,
        "hypnogram": [stage_name(int(c)) for c in dev],
        "truth_hypnogram": [stage_name(int(c)) for c in tru],
        "metrics": device_metrics.to_dict(),
        "truth_metrics": truth_metrics.to_dict() if truth_metrics else None,
        "agreement": agree.to_dict() if agree else None,
        "night_in_training_set": seen_in_training,
        "alarm": alarm,
        "sessions": len(rows),
        "wall_s": wall_s,
        "realtime_factor": sim_s / wall_s if wall_s > 0 else None,
    }
    return SimulationResult(text=text, data=data)
