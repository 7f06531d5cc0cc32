"""The night's story, scene by scene: attribution, session start/end, intent, out-of-bed episodes.

`python -m benchmarks.scenes --json OUT [--nights DIR] [--per-scene N]` runs every scene of
`hardware.radar.scene.SCENES` over the shared nights (the user's night; the partner is driven by
the next night in the list) through DSP → presence → tracking → epochs → stager → intent →
session, with the light sensor following the scene's light (`BedroomNight(light=...)`, sampled
every 30 s as the daemon does), and scores the session against the scene truth.

To stay within ~10 minutes on 2 cores, each (scene, night) run renders only windows of the scene
around what is measured, not the whole night: the head (arrival → intent + 40 min), the tail
(final leave − 30 min → scene end), each absence ± 20 min, the partner's and the cat's arrival
− 10 / + 30 min; and `--per-scene` nights per scene (default 2, rotating through the nights so
that all are used). Each window is a fresh pipeline and session: in a window that starts with the
user in bed the session starts at the window (that window gives no start figure), and the chain is
told where the user lies, as the daemon tells a chain it restarts in a night
(`PresenceDetector.expect`): a window stands for the daemon's continuous chain, not for a first
start beside a sleeper (`benchmarks.radar` measures that case).

Figures per scene (median over runs): `attribution` (share of epochs with somebody in bed whose
device verdict, user in bed or not, equals the truth; epochs next to a truth transition of the user
are left out, and so are the first two epochs of a window that starts mid-scene, the DSP's
warm-up), `start_err_min`, `end_err_min` (device − truth), `intent_err_min` (|device −
truth|), `latency_err_min` (sleep onset latency, device − truth from the truth hypnogram),
`out_of_bed_found` (share of truth absences found, start within 3 min), `out_of_bed_err_min`
(largest |duration error| of the found ones), `sessions` (sessions per run; 1 = one night).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from appliance.config import Config
from appliance.daemon import EXPECT_USER_S
from appliance.frames import ABSENT, EPOCH_S
from appliance.metrics import sleep_metrics
from appliance.pipeline import Pipeline
from appliance.session import NightSummary, SessionTracker
from appliance.staging import Stager
from hardware.environment.fakes import BedroomNight
from hardware.radar.night import Night, load_night
from hardware.radar.scene import SCENES, Scene, build_scene
from hardware.radar.simulated import SceneTruth, SimulatedRadar

__all__ = ["T0_S", "WindowRun", "crop_night", "main", "run_window", "scene_figures"]

log = logging.getLogger(__name__)

T0_S = 1_768_258_800.0
"""UTC epoch seconds of scene time 0 (2026-01-12 23:00 UTC)."""
_BATCH_S = 10.0
_LUX_EVERY_S = 30.0


def crop_night(night: Night, start_s: float, duration_s: float) -> Night:
    """A slice of a recorded night, as a shorter night (for fast tests).

    Args:
        night: The recording.
        start_s: Start of the slice, record seconds (rounded down to an expert epoch).
        duration_s: Length, seconds.

    Returns:
        The slice: beats, stages, events and respiration of [start, start + duration).
    """
    e0 = max(0, int((start_s - night.epoch0_offset_s) // night.epoch_s))
    a = night.epoch0_offset_s + e0 * night.epoch_s
    n = int(duration_s // night.epoch_s)
    b = a + n * night.epoch_s
    beats = night.beat_t_s[(night.beat_t_s >= a) & (night.beat_t_s < b)] - a
    resp = None
    if night.resp is not None and night.fs_resp is not None:
        resp = night.resp[int(a * night.fs_resp) : int(b * night.fs_resp)]
    return dataclasses.replace(
        night,
        beat_t_s=beats,
        stages=night.stages[e0 : e0 + n],
        events=night.events[e0 : e0 + n],
        epoch0_offset_s=0.0,
        duration_s=b - a,
        resp=resp,
    )


@dataclass(slots=True)
class WindowRun:
    """One window of a scene through the chain.

    Attributes:
        from_s: Scene time of the window's first frame, seconds (a multiple of 30).
        dev_user: (n,) bool: the device scored the epoch as the user's (not ABSENT).
        other: (n,) float: share of each epoch's seconds attributed to someone else.
        stages: (n,) int8 device codes.
        nights: The closed sessions.
        events: (t_s, kind) of every session event.
    """

    from_s: float
    dev_user: np.ndarray
    other: np.ndarray
    stages: np.ndarray
    nights: list[NightSummary] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)


def run_window(
    scene: Scene, cfg: Config, stager: Stager, from_s: float, to_s: float, seed: int = 0
) -> WindowRun:
    """Run scene time [from_s, to_s) through the chain with the scene's light.

    Args:
        scene: The scene.
        cfg: The configuration (bed, presence, session).
        stager: The loaded stager.
        from_s: Start, scene seconds (rounded down to 30 s).
        to_s: End, scene seconds.
        seed: Radar noise seed.

    Returns:
        The window's epochs and sessions.
    """
    from_s = math.floor(max(from_s, 0.0) / EPOCH_S) * EPOCH_S
    to_s = min(to_s, scene.duration_s)
    radar = SimulatedRadar(scene, cfg.radar, T0_S, seed)
    room = BedroomNight(
        light=None if scene.light is None else scene.light.lux_at, light_origin_s=T0_S
    )
    radar.start()
    radar.seek(T0_S + from_s)
    pipe = Pipeline(cfg, stager)
    k = int(from_s // EPOCH_S)
    truth = radar.truth
    if from_s > 0.0 and k < truth.user_present.size and truth.user_present[k]:
        pipe.presence.expect(float(truth.user_distance_m[k]), EXPECT_USER_S)
    sessions = SessionTracker(cfg.session)
    n = int(round(_BATCH_S * radar.frame_rate_hz))
    lux: float | None = None
    next_lux = -math.inf
    staged = []
    run = WindowRun(from_s, np.zeros(0, bool), np.zeros(0), np.zeros(0, np.int8))
    while radar.scene_time_s < to_s:
        left = int(round((to_s - radar.scene_time_s) * radar.frame_rate_hz))
        frames = radar.read(min(n, left)) if left > 0 else None
        if frames is None or frames.n_frames == 0:
            break
        t = float(frames.t_s[-1])
        if t >= next_lux:
            lux, next_lux = room.at(t).lux, t + _LUX_EVERY_S
        out = pipe.update(frames, lux)
        for ep in out.epochs:
            staged.append(ep)
            up = sessions.update(ep)
            run.events += [(e.t_s, e.kind) for e in up.events]
            if up.closed is not None:
                run.nights.append(up.closed)
    for ep in pipe.flush().epochs:
        staged.append(ep)
        up = sessions.update(ep)
        run.events += [(e.t_s, e.kind) for e in up.events]
        if up.closed is not None:
            run.nights.append(up.closed)
    up = sessions.flush()
    run.events += [(e.t_s, e.kind) for e in up.events]
    if up.closed is not None:
        run.nights.append(up.closed)
    run.stages = np.array([e.stage for e in staged], np.int8)
    run.dev_user = run.stages != ABSENT
    run.other = np.array([e.features.other_fraction for e in staged])
    return run


def _windows(scene: Scene, truth: SceneTruth) -> list[tuple[float, float]]:
    if truth.in_bed_s is None or truth.out_of_bed_s is None or truth.intent_s is None:
        return [(0.0, min(scene.duration_s, 3600.0))]
    w = [(0.0, truth.intent_s + 2400.0), (truth.out_of_bed_s - 1800.0, scene.duration_s)]
    w += [(a - 1200.0, b + 1200.0) for a, b in truth.absences]
    for actor in scene.actors:
        pres = getattr(actor, "presence", None)
        if pres and actor is not scene.user:
            w.append((pres[0][0] - 600.0, pres[0][0] + 1800.0))
    return w


def _near_transition(present: np.ndarray) -> np.ndarray:
    edge = np.zeros(present.size, bool)
    ch = np.flatnonzero(present[1:] != present[:-1])
    for i in ch:
        edge[max(i - 1, 0) : i + 3] = True
    return edge


def scene_figures(
    scene: Scene, cfg: Config, stager: Stager, windows: Sequence[tuple[float, float]] | None = None
) -> dict[str, Any]:
    """Run a scene's windows and score them against its truth (see the module docstring).

    Args:
        scene: The scene.
        cfg: The configuration.
        stager: The stager.
        windows: Scene-time windows to run; None = the module's default windows.

    Returns:
        The figures of the scene (None where a figure does not apply).
    """
    truth = SimulatedRadar(scene, cfg.radar, T0_S).truth
    wins = list(windows) if windows is not None else _windows(scene, truth)
    agree = total = 0
    start_err = end_err = intent_err = latency_err = None
    found = n_abs = 0
    oob_err: list[float] = []
    sessions: list[int] = []
    anyone = truth.user_present | truth.partner_present | truth.pet_present
    edge = _near_transition(np.asarray(truth.user_present))
    for a, b in wins:
        run = run_window(scene, cfg, stager, a, b)
        e0 = int(run.from_s // EPOCH_S)
        idx = e0 + np.arange(run.dev_user.size)
        ok = idx < truth.n_epochs
        idx, dev = idx[ok], run.dev_user[ok]
        # Epochs with somebody in bed, plus any the device gave the user (false presence); in an
        # empty room, every epoch.
        sel = (anyone[idx] | dev | (not anyone.any())) & ~edge[idx]
        sel[: min(2, sel.size)] &= a <= 0.0  # a fresh pipeline's DSP warms up for ~30 s
        agree += int(np.sum(dev[sel] == truth.user_present[idx][sel]))
        total += int(sel.sum())
        sessions.append(len(run.nights))
        main = max(run.nights, key=lambda s: s.end_s - s.start_s, default=None)
        if main is None:
            continue
        if truth.in_bed_s is not None and a < truth.in_bed_s:
            start_err = (main.start_s - (T0_S + truth.in_bed_s)) / 60.0
        if truth.out_of_bed_s is not None and b >= scene.duration_s - 1.0:
            end_err = (main.end_s - (T0_S + truth.out_of_bed_s)) / 60.0
        it = main.time_of(main.intent.intent_index)
        if truth.intent_s is not None and a < truth.intent_s and it is not None:
            intent_err = abs(it - (T0_S + truth.intent_s)) / 60.0
            i0 = int((main.start_s - T0_S) // EPOCH_S)
            th = np.asarray(truth.stages[i0 : i0 + main.hypnogram.size]).copy()
            ti = int(round((truth.intent_s - (main.start_s - T0_S)) / EPOCH_S))
            tm = sleep_metrics(th, epoch_s=EPOCH_S, intent_index=max(ti, 0))
            if tm.sol_min is not None and main.metrics.sol_min is not None:
                latency_err = main.metrics.sol_min - tm.sol_min
        for ta, tb in truth.absences:
            if not a < ta < tb < b:
                continue
            n_abs += 1
            hits = [e for e in main.out_of_bed if abs(e.start_s - (T0_S + ta)) <= 180.0]
            if hits:
                found += 1
                oob_err.append(abs(hits[0].duration_min - (tb - ta) / 60.0))
    return {
        "attribution": agree / total if total else None,
        "start_err_min": start_err,
        "end_err_min": end_err,
        "intent_err_min": intent_err,
        "latency_err_min": latency_err,
        "out_of_bed_found": found / n_abs if n_abs else None,
        "out_of_bed_err_min": max(oob_err) if oob_err else None,
        "sessions": max(sessions) if sessions else 0,
        "windows": len(wins),
    }


_KEYS = (
    "attribution",
    "start_err_min",
    "end_err_min",
    "intent_err_min",
    "latency_err_min",
    "out_of_bed_found",
    "out_of_bed_err_min",
    "sessions",
)


def _median(xs: list[Any]) -> float | None:
    v = [float(x) for x in xs if x is not None]
    return statistics.median(v) if v else None


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scene benchmark; print the table, write the JSON."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.scenes", description=__doc__)
    p.add_argument("--json", type=Path, required=True, help="where to write the figures")
    p.add_argument(
        "--nights", type=Path, default=Path(__file__).parents[1] / ".." / "shared" / "data"
    )
    p.add_argument("--per-scene", type=int, default=2, help="nights per scene (subsample)")
    p.add_argument("--scenes", nargs="*", default=list(SCENES), help="scene names")
    args = p.parse_args(argv)
    paths = sorted(args.nights.glob("*.npz")) if args.nights.is_dir() else [args.nights]
    if not paths:
        print(f"no nights in {args.nights}", file=sys.stderr)
        return 2
    cfg = Config()
    stager = Stager()
    t_start = time.monotonic()
    out: dict[str, Any] = {"scenes": {}, "per_scene_nights": args.per_scene}
    k = 0
    for name in args.scenes:
        runs = []
        for _ in range(min(args.per_scene, len(paths))):
            night = load_night(paths[k % len(paths)])
            partner = load_night(paths[(k + 1) % len(paths)])
            k += 1
            scene = build_scene(name, night, partner, 0, empty_duration_s=3600.0)
            fig = scene_figures(scene, cfg, stager)
            fig["night"] = night.record
            runs.append(fig)
            print(
                f"{name:18s} {night.record:8s} "
                + " ".join(f"{key}={_fmt(fig[key])}" for key in _KEYS),
                file=sys.stderr,
            )
            if not SCENES[name].occupied:
                break
        out["scenes"][name] = {
            **{key: _median([r[key] for r in runs]) for key in _KEYS},
            "runs": runs,
        }
    out["wall_s"] = time.monotonic() - t_start
    header = f"{'scene':18s} " + " ".join(f"{k[:14]:>14s}" for k in _KEYS)
    print(header)
    for name, f in out["scenes"].items():
        print(f"{name:18s} " + " ".join(f"{_fmt(f[k]):>14s}" for k in _KEYS))
    print(f"wall {out['wall_s']:.0f} s")
    args.json.write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
