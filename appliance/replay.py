"""`appliance replay`: the live pipeline on a radar recording, as fast as it can run.

One row per 30-s epoch from the recording's first frame: what the device saw and staged. Values
that do not exist (no breath rate in an empty room) are None (JSON null).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from appliance.config import Config
from appliance.frames import EPOCH_S, EpochFeatures, TrackedSecond, stage_name
from appliance.pipeline import Pipeline
from appliance.staging import Stager
from hardware.radar.replay import ReplayRadar

__all__ = ["replay_recording"]

_BATCH_FRAMES = 1200


def _round(v: float | None, nd: int = 3) -> float | None:
    return None if v is None or v != v else round(float(v), nd)


def replay_recording(cfg: Config, path: Path, *, model: Path | None = None) -> dict[str, Any]:
    """Run DSP → presence → tracking → epochs → staging over a recording.

    Returns:
        {"recording", "radar", "frames", "epochs": [{"t_s", "presence", "presence_confidence",
        "breath_rate", "heart_rate", "distance_m", "movement", "stage"}, ...], "wall_s"}.

    Raises:
        DataError: the recording is unreadable or not in the format (hardware.radar.replay).
        ModelMismatch: the model does not match the code's features.
    """
    radar = ReplayRadar(path)
    stager = Stager(model)
    # The recording's geometry, not the config's: it was made on whatever radar made it.
    radar_cfg = cfg.radar.model_copy(update={"frame_rate_hz": radar.frame_rate_hz})
    pipe = Pipeline(cfg.model_copy(update={"radar": radar_cfg}), stager)
    present_secs: dict[int, list[bool]] = {}
    rows: list[dict[str, Any]] = []

    def on_seconds(seconds: list[TrackedSecond]) -> None:
        for s in seconds:
            present_secs.setdefault(pipe.epochs.epoch_index(s.t_s), []).append(s.presence.present)

    def row(f: EpochFeatures, stage: int) -> dict[str, Any]:
        seen = present_secs.pop(f.index, [])
        return {
            "t_s": f.t_s,
            "presence": bool(seen) and sum(seen) * 2 >= len(seen),
            "presence_confidence": _round(f.presence_confidence),
            "breath_rate": _round(f.breath_rate_bpm, 2),
            "heart_rate": _round(f.heart_rate_bpm, 1),
            "distance_m": _round(f.distance_m),
            "movement": _round(f.movement),
            "stage": stage_name(stage),
        }

    t0 = time.perf_counter()
    radar.start()
    while (frames := radar.read(_BATCH_FRAMES)) is not None:
        out = pipe.update(frames)
        on_seconds(out.seconds)
        rows.extend(row(e.features, e.stage) for e in out.epochs)
    rows.extend(row(e.features, e.stage) for e in pipe.flush().epochs)
    wall_s = time.perf_counter() - t0
    return {
        "recording": str(path),
        "radar": radar.radar,
        "frames": radar.n_frames,
        "epoch_s": EPOCH_S,
        "epochs": rows,
        "wall_s": wall_s,
    }
