"""The training data: every shared night as the device sees it (radar) and as the PSG recorded it.

Two views of each night, both turned into epoch features by the device's own
`appliance.epochs.EpochBuilder`:

- **radar**: the night drives the scene simulator's sleeper; the rendered frames go through the
  device's DSP → presence → tracking. The *tracked seconds* (not the epoch features) are cached,
  keyed by a hash of the code that produces them (simulator, DSP, presence, tracking, config), so
  a change of the feature code (epochs.py) re-runs only the cheap last step, and a change of the
  DSP re-renders the nights.
- **recorded** ("ECG"): `appliance.evaluate.recorded_night_features`: heart rate and beat-to-beat
  intervals from the ECG beats, breathing from the heartbeat's RSA; no movement channel.

Needs nothing beyond the base install; the training (models.train_live) needs the `train` extra.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from appliance.config import Config
from appliance.epochs import EpochBuilder
from appliance.frames import TrackedSecond
from appliance.pipeline import Pipeline

log = logging.getLogger(__name__)

SCENE = "reading-then-sleep"
"""The scene the training nights are rendered in: 30–60 min awake in bed (reading), then the
recording, so the model also sees the pre-sleep wake it will meet on the device."""
_T0_S = 1_700_000_000.0


def render_seconds(path: Path, seed: int = 0) -> dict[str, Any]:
    """Render one night through the radar simulator and the device's DSP, presence and tracking.

    Returns:
        ``seconds`` (the tracked seconds, oldest first), ``frame_rate_hz``, and per scene epoch
        ``stages`` (truth code), ``expert`` (an expert scored it), ``present`` (the user in bed),
        plus ``subject`` and ``record``.
    """
    from hardware.radar.night import load_night
    from hardware.radar.scene import build_scene
    from hardware.radar.simulated import SimulatedRadar

    night = load_night(path)
    cfg = Config()
    scene = build_scene(SCENE, night, None, seed)
    radar = SimulatedRadar(scene, cfg.radar, start_s=_T0_S, seed=seed)
    radar.start()
    pipe = Pipeline(cfg, stager=None)
    seconds: list[TrackedSecond] = []
    while (frames := radar.read(1200)) is not None:
        seconds.extend(pipe.features(frames)[0])
    truth = radar.truth
    return {
        "seconds": seconds,
        "frame_rate_hz": float(cfg.radar.frame_rate_hz),
        "stages": np.asarray(truth.stages, np.int8),
        "expert": np.asarray(truth.expert_scored, bool),
        "present": np.asarray(truth.user_present, bool),
        "subject": night.subject,
        "record": night.record,
    }


def seconds_version() -> str:
    """Hash of the code that turns a night into tracked seconds (simulator ... tracking).

    The seconds cache is keyed on it; epochs.py is deliberately not part of it.
    """
    import appliance
    import hardware

    h = hashlib.sha256(SCENE.encode())
    roots = (Path(appliance.__file__).parent, Path(hardware.__file__).parent)
    names = (
        "dsp.py",
        "spectrum.py",
        "heartbeat.py",
        "breath.py",
        "presence.py",
        "tracking.py",
        "pipeline.py",
        "config.py",
        "frames.py",
    )
    files = [roots[0] / n for n in names] + sorted(roots[1].glob("radar/*.py"))
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def load_seconds(data: Path, cache: Path, jobs: int) -> list[dict[str, Any]]:
    """Tracked seconds of every night in `data`, rendered once and cached under `cache`."""
    cache = cache / f"seconds-{SCENE}-{seconds_version()}"
    cache.mkdir(parents=True, exist_ok=True)
    paths = sorted(data.glob("*.npz"))
    todo = [p for p in paths if not (cache / f"{p.stem}.pkl").exists()]
    if todo:
        log.info("rendering %d nights through the radar chain (%d jobs)", len(todo), jobs)
        with ProcessPoolExecutor(max_workers=max(1, jobs)) as ex:
            for p, res in zip(todo, ex.map(render_seconds, todo), strict=True):
                tmp = cache / f"{p.stem}.pkl.tmp"
                tmp.write_bytes(pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL))
                tmp.replace(cache / f"{p.stem}.pkl")  # atomic: a killed run leaves no torn file
    out = []
    for p in paths:
        # Our own cache, written above by this code version: not untrusted input.
        out.append(pickle.loads((cache / f"{p.stem}.pkl").read_bytes()))
    return out


def radar_features(night: dict[str, Any]) -> dict[str, np.ndarray]:
    """Epoch features of one rendered night (the device's EpochBuilder over its seconds).

    Returns:
        x (n, n_features) float32; y (n,) int8 training label (expert stage, or WAKE in the
        scene's scripted awake time; -1 where none); expert (n,) bool, y is an expert's stage;
        subject and record names.
    """
    builder = EpochBuilder(float(night["frame_rate_hz"]))
    feats = []
    for sec in night["seconds"]:
        feats.extend(builder.update(sec, rr_s=sec.beat_intervals_s or None))
    feats.extend(builder.flush())
    stages, expert, present = night["stages"], night["expert"], night["present"]
    n = min(len(feats), stages.size)
    x = np.array([f.values for f in feats[:n]], np.float32)
    y = np.where(present[:n], stages[:n], -1).astype(np.int8)
    y[y < 0] = -1
    exp = expert[:n] & present[:n] & (y >= 0)
    return {
        "x": x,
        "y": y,
        "expert": exp,
        "subject": np.array(night["subject"]),
        "record": np.array(night["record"]),
    }


def recorded_features(path: Path) -> dict[str, np.ndarray]:
    """Epoch features of one night from its recorded channels (ECG beats; no radar)."""
    from appliance.evaluate import recorded_night_features
    from hardware.radar.night import load_night

    night = load_night(path)
    feats, stages = recorded_night_features(night)
    x = np.array([f.values for f in feats], np.float32)
    y = np.where(stages >= 0, stages, -1).astype(np.int8)
    return {
        "x": x,
        "y": y,
        "expert": y >= 0,
        "subject": np.array(night.subject),
        "record": np.array(night.record),
    }


def load_recorded(data: Path, jobs: int) -> list[dict[str, np.ndarray]]:
    """Recorded-channel features of every night in `data` (a few seconds a night)."""
    paths = sorted(data.glob("*.npz"))
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as ex:
        return list(ex.map(recorded_features, paths))


def load_radar(data: Path, cache: Path, jobs: int) -> list[dict[str, np.ndarray]]:
    """Radar epoch features of every night in `data` (seconds from the cache)."""
    nights = load_seconds(data, cache, jobs)
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as ex:
        return list(ex.map(radar_features, nights))
