"""Render each shared night's live-stager output once, for the alarm benchmark (`benchmarks.alarm`).

The smart alarm is a pure consumer of staged epochs and tracked seconds, so the benchmark renders
every night through the whole simulated chain once (SimulatedRadar → DSP → presence → tracking →
epochs → the shipped ONNX stager, as the daemon runs it, in 10-s batches on the wall clock's grid)
and keeps, per night, what the alarm reads plus the truth to score against:

- `ep_t_s`, `ep_stage`, `ep_probs`: every staged epoch (start, UTC s; hypnogram code; (n, 4));
- `sec_t_s`, `sec_movement`: every tracked second (UTC s; the user's movement energy, mm/s, NaN
  when the user is not seen);
- `truth`: the scene truth per 30-s scene epoch from `start_s` (expert stage, scripted wake,
  `ABSENT` out of bed; `UNSCORED` where the experts gave no stage), `expert_scored`, `start_s`.

The result is cached as one `.npz` per night under `.cache/alarm/` keyed on the night, the scene,
the model and this module's render version; a cached night is read back in milliseconds.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.config import Config
from appliance.frames import ABSENT
from appliance.pipeline import Pipeline
from appliance.simulation import prepare_night
from appliance.staging import Stager, model_path
from hardware.radar.simulated import SimulatedRadar

__all__ = ["RenderedNight", "render_night"]

log = logging.getLogger(__name__)

_VERSION = "1"
_BATCH_S = 10.0
_REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class RenderedNight:
    """One night's live-stager stream and its truth (see the module docstring for the fields)."""

    record: str
    start_s: float
    ep_t_s: np.ndarray
    ep_stage: np.ndarray
    ep_probs: np.ndarray
    sec_t_s: np.ndarray
    sec_movement: np.ndarray
    truth: np.ndarray
    expert_scored: np.ndarray


def _key(path: Path, scene: str, model: Path) -> str:
    from models.dataset import seconds_version  # the DSP/tracking code: a change re-renders

    h = hashlib.sha256()
    code = (_VERSION + seconds_version()).encode()
    for part in (path.read_bytes(), model.read_bytes(), scene.encode(), code):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def render_night(
    path: Path, *, scene: str = "reading-then-sleep", cache: bool = True
) -> RenderedNight:
    """Render one night through the chain (or read it from the cache).

    Args:
        path: A night `.npz` (the ../shared/data format).
        scene: Scene name.
        cache: Read and write `.cache/alarm/`.

    Raises:
        ApplianceError: an unreadable night or a bad scene (as `prepare_night`).
    """
    out = _REPO / ".cache" / "alarm" / f"{path.stem}-{_key(path, scene, model_path('live'))}.npz"
    if cache and out.is_file():
        with np.load(out) as z:
            return RenderedNight(
                record=str(z["record"]),
                start_s=float(z["start_s"]),
                **{k: z[k] for k in RenderedNight.__slots__ if k not in ("record", "start_s")},
            )
    stager = Stager()
    prep = prepare_night(Config(), night=path, scene=scene, alarm="07:00", seed=0)
    radar = SimulatedRadar(prep.scene, prep.cfg.radar, start_s=prep.start_s, seed=0)
    pipe = Pipeline(prep.cfg, stager, wall_grid=True)
    ep_t: list[float] = []
    ep_stage: list[int] = []
    ep_probs: list[tuple[float, float, float, float]] = []
    sec_t: list[float] = []
    sec_mov: list[float] = []
    n = int(round(_BATCH_S * radar.frame_rate_hz))
    radar.start()
    while (frames := radar.read(n)) is not None:
        res = pipe.update(frames)
        for s in res.seconds:
            sec_t.append(s.t_s)
            sec_mov.append(np.nan if s.user is None else s.user.movement)
        for e in res.epochs:
            ep_t.append(e.t_s)
            ep_stage.append(int(e.stage))
            ep_probs.append(e.probs)
    for e in pipe.flush().epochs:
        ep_t.append(e.t_s)
        ep_stage.append(int(e.stage))
        ep_probs.append(e.probs)
    radar.stop()
    t = radar.truth
    truth = t.stages.astype(np.int8).copy()
    truth[~t.user_present] = ABSENT
    night = RenderedNight(
        record=prep.sleeper.record,
        start_s=float(prep.start_s),
        ep_t_s=np.asarray(ep_t, np.float64),
        ep_stage=np.asarray(ep_stage, np.int8),
        ep_probs=np.asarray(ep_probs, np.float32).reshape(-1, 4),
        sec_t_s=np.asarray(sec_t, np.float64),
        sec_movement=np.asarray(sec_mov, np.float32),
        truth=truth,
        expert_scored=np.asarray(t.expert_scored, bool),
    )
    if cache:
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            out,
            record=night.record,
            start_s=night.start_s,
            **{
                k: getattr(night, k)
                for k in RenderedNight.__slots__
                if k not in ("record", "start_s")
            },
        )
    return night


if __name__ == "__main__":
    import sys
    import time

    logging.basicConfig(level=logging.WARNING)
    for p in sorted((_REPO.parent / "shared" / "data").glob("*.npz")):
        t0 = time.perf_counter()
        r = render_night(p)
        print(
            f"{r.record}: {len(r.ep_t_s)} epochs in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
