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

Held out (`render_night(..., held_out=HeldOutStagers(...))`, `python -m benchmarks.alarm
--held-out`): the shipped stager saw most of these nights in training (all but those of the
subjects of `models.train_live.SHIPPED_RECORDS`), so its stream is optimistic. A held-out night is
rendered with a stager trained without that night's subject (leave-one-subject-out), trained by
`benchmarks.simulate.HeldOutModels` (the shipped training code, `models.train_live`; the `train`
extra). Those renders are cached as `<night>-heldout-<key>.npz`, the key hashing the night, the
scene, the render version, the training code and the training nights, so a cached held-out run
trains nothing; a missing render trains its subject's model once (~1 min of CPU each).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from appliance.config import Config
from appliance.frames import ABSENT
from appliance.pipeline import Pipeline
from appliance.simulation import prepare_night
from appliance.staging import Stager, model_path
from hardware.radar.night import load_night
from hardware.radar.simulated import SimulatedRadar

if TYPE_CHECKING:
    from benchmarks.simulate import HeldOutModels

__all__ = ["HeldOutStagers", "RenderedNight", "render_night"]

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


def _key(path: Path, scene: str, model: bytes) -> str:
    from models.dataset import seconds_version  # the DSP/tracking code: a change re-renders

    h = hashlib.sha256()
    code = (_VERSION + seconds_version()).encode()
    for part in (path.read_bytes(), model, scene.encode(), code):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


class HeldOutStagers:
    """Leave-one-subject-out stagers for the nights of one folder, trained only when needed.

    The models come from `benchmarks.simulate.HeldOutModels` (the shipped training code), built
    lazily: a run whose held-out renders are all cached never imports the `train` extra.

    Args:
        nights_dir: The folder of nights: each held-out model is trained on its other subjects.
        workdir: Where the models are written (a temporary folder).
    """

    def __init__(self, nights_dir: Path, workdir: Path) -> None:
        self._nights_dir = nights_dir
        self._workdir = workdir
        self._models: HeldOutModels | None = None

    def recipe(self, path: Path) -> bytes:
        """What the held-out model of night `path` is a function of (for the cache key).

        The training code and the training nights (every night of the folder not of this
        night's subject), not the model's bytes: the key is known before anything is trained.
        """
        import benchmarks.simulate
        import models.dataset
        import models.train_live

        subject = load_night(path).subject
        h = hashlib.sha256(b"heldout-loso-v1")
        for mod in (models.train_live, models.dataset, benchmarks.simulate):
            h.update(Path(str(mod.__file__)).read_bytes())
        for other in sorted(self._nights_dir.glob("*.npz")):
            if load_night(other).subject != subject:
                h.update(other.name.encode())
                h.update(hashlib.sha256(other.read_bytes()).digest())
        return h.digest()

    def model_for(self, path: Path) -> Path:
        """Train (once per subject) and return the held-out ONNX model of night `path`."""
        from benchmarks.simulate import HeldOutModels

        if self._models is None:
            self._models = HeldOutModels(self._nights_dir, self._workdir)
        return self._models.for_night(path)


def render_night(
    path: Path,
    *,
    scene: str = "reading-then-sleep",
    cache: bool = True,
    held_out: HeldOutStagers | None = None,
) -> RenderedNight:
    """Render one night through the chain (or read it from the cache).

    Args:
        path: A night `.npz` (the ../shared/data format).
        scene: Scene name.
        cache: Read and write `.cache/alarm/`.
        held_out: Stage with a model trained without this night's subject (module docstring);
            None = the shipped `live.onnx`.

    Raises:
        ApplianceError: an unreadable night or a bad scene (as `prepare_night`).
    """
    if held_out is None:
        name = f"{path.stem}-{_key(path, scene, model_path('live').read_bytes())}.npz"
    else:
        name = f"{path.stem}-heldout-{_key(path, scene, held_out.recipe(path))}.npz"
    out = _REPO / ".cache" / "alarm" / name
    if cache and out.is_file():
        with np.load(out) as z:
            return RenderedNight(
                record=str(z["record"]),
                start_s=float(z["start_s"]),
                **{k: z[k] for k in RenderedNight.__slots__ if k not in ("record", "start_s")},
            )
    stager = Stager() if held_out is None else Stager(held_out.model_for(path))
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
