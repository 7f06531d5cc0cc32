"""Speed and accuracy of `simulate_night` over the shared nights (run on demand, never in tests).

    python -m benchmarks.simulate [--nights DIR] [--scene reading-then-sleep] [--json OUT]
                                  [--limit N]

For every night `.npz` in DIR (default: ../shared/data next to the repository; the shipped default
night when that folder is absent) it runs `simulate_night(Config(), night=..., scene=...,
alarm="07:00", db=None)` and records the wall time, the simulated span, the realtime factor
(simulated seconds / wall seconds), epoch agreement with the experts and the device's and the
experts' TST, SE, SOL and WASO.

On the first night it also times, in the same process, (a) rendering every frame of the scene
(`SimulatedRadar.read` in 10-s batches, as the daemon reads), (b) the DSP alone, (c) DSP, presence,
tracking and the epoch builder (`Pipeline(cfg, stager=None).features`) and (d) the whole
`simulate_night`. Each is printed as a factor against real time and as a ratio against (a), the
reference run in the same process, which cancels most of the machine's speed out of the ratio.

Then it prints the per-night table, pooled epoch agreement and Bland-Altman bias and limits of
agreement of TST, SE, SOL and WASO across nights, and with --json writes all of it (and every
night's full simulation data) to a file. No figure is fixed here: everything printed is measured
by the run. See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from appliance.config import Config
from appliance.dsp import RadarDsp
from appliance.errors import ApplianceError
from appliance.frames import ABSENT, EPOCH_S, STAGE_NAMES, UNSCORED, RadarFrames
from appliance.metrics import agreement, bland_altman
from appliance.pipeline import Pipeline
from appliance.simulation import SCENE_NAMES, prepare_night, simulate_night
from hardware.radar.night import default_night_path, load_night
from hardware.radar.scene import Scene
from hardware.radar.simulated import SimulatedRadar

__all__ = [
    "ALARM",
    "BATCH_S",
    "METRICS",
    "NightRun",
    "StageBreakdown",
    "bland_altman_table",
    "default_nights_dir",
    "find_nights",
    "main",
    "pooled_agreement",
    "run_night",
    "stage_breakdown",
]

log = logging.getLogger(__name__)

ALARM = "07:00"
"""Alarm time every night is simulated with (local "HH:MM")."""
BATCH_S = 10.0
"""Length of a radar read in the stage breakdown, seconds (the daemon's batch)."""
METRICS: tuple[tuple[str, str, str], ...] = (
    ("tst_min", "TST", "min"),
    ("se_pct", "SE", "%"),
    ("sol_min", "SOL", "min"),
    ("waso_min", "WASO", "min"),
)
"""(SleepMetrics field, label, unit) of the metrics compared with the experts."""

_CODES: dict[str, int] = {
    **{name: code for code, name in enumerate(STAGE_NAMES)},
    "absent": ABSENT,
    "unscored": UNSCORED,
}
_REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class NightRun:
    """One night through `simulate_night`.

    Attributes:
        path: The night file.
        call_s: Wall time of the whole `simulate_night` call (scene build, model load, daemon,
            report), s.
        data: `SimulationResult.data` (its `wall_s` is the daemon run alone, s).
        rss_mb: Peak resident set size of the process after the night, MiB (a high-water mark).
    """

    path: Path
    call_s: float
    data: dict[str, Any]
    rss_mb: float

    @property
    def record(self) -> str:
        """The night's record name."""
        return str(self.data.get("night") or self.path.stem)

    @property
    def wall_s(self) -> float:
        """Wall time of the daemon run, s (as `simulate_night` measures it)."""
        return float(self.data["wall_s"])

    @property
    def simulated_s(self) -> float:
        """Simulated scene time, s (scene epochs x 30 s, as `simulate_night` counts it)."""
        factor = self.data.get("realtime_factor")
        return float(factor) * self.wall_s if factor is not None else math.nan

    @property
    def realtime_factor(self) -> float:
        """Simulated seconds per wall second of the daemon run."""
        return self.simulated_s / self.wall_s if self.wall_s > 0 else math.nan

    def metric(self, key: str, *, expert: bool) -> float | None:
        """A sleep metric of the device (expert=False) or the experts (expert=True), or None."""
        block = self.data.get("truth_metrics" if expert else "metrics") or {}
        value = block.get(key)
        return None if value is None else float(value)

    def summary(self) -> dict[str, Any]:
        """The night's benchmark figures as a JSON-friendly dict (without the full data)."""
        agree = self.data.get("agreement") or {}
        return {
            "night": self.record,
            "path": str(self.path),
            "simulated_h": self.simulated_s / 3600.0,
            "report_span_h": len(self.data.get("hypnogram", [])) * 30.0 / 3600.0,
            "wall_s": self.wall_s,
            "call_s": self.call_s,
            "realtime_factor": self.realtime_factor,
            "realtime_factor_call": self.simulated_s / self.call_s if self.call_s > 0 else None,
            "n_epochs": agree.get("n_epochs"),
            "accuracy": agree.get("accuracy"),
            "kappa": agree.get("kappa"),
            "peak_rss_mb": self.rss_mb,
            "device": {key: self.metric(key, expert=False) for key, _, _ in METRICS},
            "expert": {key: self.metric(key, expert=True) for key, _, _ in METRICS},
        }


@dataclass(slots=True)
class StageBreakdown:
    """Wall times of the chain's stages on one night, measured in one process.

    Attributes:
        night: Record name.
        simulated_s: Scene length, s (scene epochs x 30 s, as `simulate_night` counts it).
        setup_s: Building the scene and the radar twin (per-frame scatterer tracks), s.
        times_s: Stage label -> wall time, s; the first entry is the reference (a).
        rss_mb: Peak resident set size after each stage, MiB (a high-water mark).
    """

    night: str
    simulated_s: float
    setup_s: float
    times_s: dict[str, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)

    @property
    def reference_s(self) -> float:
        """Wall time of the reference run (a), s."""
        return next(iter(self.times_s.values()))

    def to_dict(self) -> dict[str, Any]:
        """The breakdown as a JSON-friendly dict, with the factors and ratios."""
        return {
            "night": self.night,
            "simulated_s": self.simulated_s,
            "setup_s": self.setup_s,
            "reference": next(iter(self.times_s)),
            "stages": [
                {
                    "stage": label,
                    "wall_s": t,
                    "realtime_factor": self.simulated_s / t if t > 0 else None,
                    "ratio_to_reference": t / self.reference_s if self.reference_s > 0 else None,
                    "peak_rss_mb": self.rss_mb.get(label),
                }
                for label, t in self.times_s.items()
            ],
        }


# ---------------------------------------------------------------------------------- running


def default_nights_dir() -> Path:
    """Return ../shared/data relative to the repository (may not exist)."""
    return (_REPO.parent / "shared" / "data").resolve()


def find_nights(nights: Path | None, limit: int | None) -> list[Path]:
    """Return the night files to benchmark, sorted by name.

    Args:
        nights: A folder of `.npz` nights or one `.npz`; None: `default_nights_dir()`, and the
            shipped default night if that folder is absent or holds no night.
        limit: Keep at most this many (the first by name); None: all.

    Raises:
        ApplianceError: `nights` was given but is neither a folder holding nights nor a file.
    """
    if nights is None:
        folder = default_nights_dir()
        found = sorted(folder.glob("*.npz")) if folder.is_dir() else []
        if not found:
            log.warning("no nights in %s; using the shipped default night", folder)
            found = [default_night_path("sleeper")]
    elif nights.is_file():
        found = [nights]
    else:
        found = sorted(nights.glob("*.npz")) if nights.is_dir() else []
        if not found:
            raise ApplianceError(f"--nights: no .npz night in {nights}")
    return found[:limit] if limit is not None else found


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, MiB (`ru_maxrss`)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def run_night(cfg: Config, path: Path, scene: str, model: Path | None = None) -> NightRun:
    """Simulate one night end to end (alarm `ALARM`, a temporary store) and time the call.

    Raises:
        ApplianceError: as `simulate_night` (unreadable night, bad scene, store error).
    """
    t0 = time.perf_counter()
    result = simulate_night(cfg, night=path, scene=scene, alarm=ALARM, db=None, model=model)
    call_s = time.perf_counter() - t0
    return NightRun(path=path, call_s=call_s, data=result.data, rss_mb=peak_rss_mb())


def _scene_and_start(cfg: Config, path: Path, scene: str, seed: int) -> tuple[Config, Scene, float]:
    """Build the scene and its start time exactly as `simulate_night` does."""
    prep = prepare_night(cfg, night=path, scene=scene, alarm=ALARM, seed=seed)
    return prep.cfg, prep.scene, prep.start_s


def _drain(radar: SimulatedRadar, consume: Callable[[RadarFrames], object] | None) -> float:
    """Read every frame in `BATCH_S` batches; return the time spent in `consume` (or in reads)."""
    n = int(round(BATCH_S * radar.frame_rate_hz))
    radar.start()
    spent = 0.0
    while True:
        t0 = time.perf_counter()
        frames = radar.read(n)
        if frames is None:
            break
        if consume is None:
            spent += time.perf_counter() - t0
            continue
        t1 = time.perf_counter()
        consume(frames)
        spent += time.perf_counter() - t1
    radar.stop()
    return spent


def stage_breakdown(
    cfg: Config, path: Path, scene: str, *, seed: int = 0, model: Path | None = None
) -> tuple[StageBreakdown, NightRun]:
    """Time the chain's stages on one night, in this process.

    Every pass renders the scene afresh with its own `SimulatedRadar` (same scene, start and
    seed as `simulate_night`); (b) and (c) time only the stage's calls, not the rendering.

    Args:
        cfg: Base configuration (the alarm is set to `ALARM`, as for the nights).
        path: The night.
        scene: Scene name.
        seed: Scene and noise seed (`simulate_night`'s default is 0).

    Returns:
        The breakdown, and the night's `simulate_night` run (stage d), to reuse in the table.
    """
    t0 = time.perf_counter()
    cfg, the_scene, start_s = _scene_and_start(cfg, path, scene, seed)

    def radar() -> SimulatedRadar:
        return SimulatedRadar(the_scene, cfg.radar, start_s=start_s, seed=seed)

    first = radar()
    setup_s = time.perf_counter() - t0
    # Scene epochs x 30 s, as simulate_night counts its realtime factor.
    simulated_s = math.ceil(the_scene.duration_s / EPOCH_S - 1e-9) * EPOCH_S
    out = StageBreakdown(night=path.stem, simulated_s=simulated_s, setup_s=setup_s)

    def record(label: str, seconds: float) -> None:
        out.times_s[label] = seconds
        out.rss_mb[label] = peak_rss_mb()
        log.info("stage %s: %.2f s", label, seconds)

    record("(a) render frames (reference)", _drain(first, None))
    dsp = RadarDsp()
    record("(b) DSP only", _drain(radar(), dsp.update))
    pipe = Pipeline(cfg, stager=None)

    def features(frames: RadarFrames) -> None:
        pipe.features(frames)

    front = radar()
    front_s = _drain(front, features)
    t1 = time.perf_counter()
    pipe.flush()
    record("(c) DSP+presence+tracking+epochs", front_s + time.perf_counter() - t1)
    run = run_night(cfg, path, scene, model)
    out.night = run.record
    record("(d) simulate_night, daemon run", run.wall_s)
    record("(d') simulate_night, whole call", run.call_s)
    return out, run


# ---------------------------------------------------------------------------------- accuracy


def _codes(names: Sequence[str]) -> np.ndarray:
    """Hypnogram strings (wake|light|deep|rem|absent|unscored) back to codes."""
    return np.array([_CODES[n] for n in names], dtype=np.int64)


def _from_confusion(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Truth/device code pairs that reproduce a 4-class confusion matrix (rows = truth)."""
    i, j = np.nonzero(confusion)
    counts = confusion[i, j]
    return np.repeat(i, counts), np.repeat(j, counts)


def pooled_agreement(runs: Sequence[NightRun]) -> dict[str, Any]:
    """Epoch agreement pooled over nights.

    Returns:
        {"scene_epochs": {"4": ..., "3": ...}, "expert_scored": {"4": ..., "3": ...}}, each an
        `Agreement.to_dict()` or None. *scene_epochs* concatenates every night's
        `truth_hypnogram` and `hypnogram` (the report span: expert stages, and the scripted
        awake-in-bed time before and after the recording scored as wake). *expert_scored* keeps
        only the epochs the experts scored, exactly the per-night agreement's epochs (the sum of
        the per-night confusion matrices).
    """
    truth = [_codes(r.data["truth_hypnogram"]) for r in runs]
    device = [_codes(r.data["hypnogram"]) for r in runs]
    cms = [np.asarray(r.data["agreement"]["confusion"]) for r in runs if r.data.get("agreement")]
    out: dict[str, Any] = {"scene_epochs": None, "expert_scored": None}
    if truth:
        t, d = np.concatenate(truth), np.concatenate(device)
        out["scene_epochs"] = {str(k): agreement(t, d, classes=k).to_dict() for k in (4, 3)}
    if cms:
        t, d = _from_confusion(np.sum(cms, axis=0))
        out["expert_scored"] = {str(k): agreement(t, d, classes=k).to_dict() for k in (4, 3)}
    return out


def bland_altman_table(runs: Sequence[NightRun]) -> dict[str, dict[str, Any]]:
    """Bland-Altman bias and 95 % limits of agreement, device - experts, per metric over nights.

    Returns:
        Metric field -> `bland_altman` output plus "unit", "device_mean" and "expert_mean" (over
        the nights where both are defined).
    """
    table: dict[str, dict[str, Any]] = {}
    for key, _, unit in METRICS:
        dev = [r.metric(key, expert=False) for r in runs]
        exp = [r.metric(key, expert=True) for r in runs]
        pairs = [(a, b) for a, b in zip(dev, exp, strict=True) if a is not None and b is not None]
        row: dict[str, Any] = dict(bland_altman(dev, exp))
        row["unit"] = unit
        row["device_mean"] = float(np.mean([a for a, _ in pairs])) if pairs else None
        row["expert_mean"] = float(np.mean([b for _, b in pairs])) if pairs else None
        table[key] = row
    return table


# ---------------------------------------------------------------------------------- printing


def _f(value: float | None, spec: str) -> str:
    """Format a number, or "-" for None/NaN."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)


def _pair(run: NightRun, key: str) -> str:
    spec = ".0f" if key != "se_pct" else ".1f"
    return f"{_f(run.metric(key, expert=False), spec)}/{_f(run.metric(key, expert=True), spec)}"


def format_nights(runs: Sequence[NightRun]) -> str:
    """The per-night table, with a total row."""
    head = (
        f"{'night':<8} {'sim h':>6} {'wall s':>7} {'x RT':>6} {'epochs':>6} {'acc':>6} "
        f"{'kappa':>6} {'RSS MiB':>7}  "
        + "  ".join(f"{f'{lab} {u} dev/exp':>17}" for _, lab, u in METRICS)
    )
    lines = [head, "-" * len(head)]
    for r in runs:
        s = r.summary()
        lines.append(
            f"{r.record:<8} {_f(s['simulated_h'], '.2f'):>6} {_f(r.wall_s, '.1f'):>7} "
            f"{_f(r.realtime_factor, '.0f'):>6} {_f(s['n_epochs'], 'd'):>6} "
            f"{_f(s['accuracy'], '.3f'):>6} {_f(s['kappa'], '.3f'):>6} {_f(r.rss_mb, '.0f'):>7}  "
            + "  ".join(f"{_pair(r, key):>17}" for key, _, _ in METRICS)
        )
    sim = sum(r.simulated_s for r in runs)
    wall = sum(r.wall_s for r in runs)
    accs = [a for r in runs if (a := r.summary()["accuracy"]) is not None]
    kappas = [k for r in runs if (k := r.summary()["kappa"]) is not None]
    epochs = sum(int(r.summary()["n_epochs"] or 0) for r in runs)
    lines.append("-" * len(head))
    lines.append(
        f"{'total':<8} {_f(sim / 3600.0, '.2f'):>6} {_f(wall, '.1f'):>7} "
        f"{_f(sim / wall if wall > 0 else None, '.0f'):>6} {epochs:>6} "
        f"{_f(float(np.mean(accs)) if accs else None, '.3f'):>6} "
        f"{_f(float(np.mean(kappas)) if kappas else None, '.3f'):>6} "
        f"{_f(max((r.rss_mb for r in runs), default=None), '.0f'):>7}  "
        "(x RT: total simulated / total wall; acc, kappa: mean of nights; RSS: peak)"
    )
    return "\n".join(lines)


def format_breakdown(b: StageBreakdown) -> str:
    """The stage timing table."""
    lines = [
        f"Stage timing on {b.night} ({b.simulated_s / 3600.0:.2f} h simulated, one process; "
        f"scene + radar set-up {b.setup_s:.2f} s)",
        f"  {'stage':<36} {'wall s':>8} {'x real time':>12} {'/ (a)':>7} {'peak RSS MiB':>13}",
    ]
    for row in b.to_dict()["stages"]:
        lines.append(
            f"  {row['stage']:<36} {_f(row['wall_s'], '.2f'):>8} "
            f"{_f(row['realtime_factor'], '.0f'):>12} {_f(row['ratio_to_reference'], '.2f'):>7} "
            f"{_f(row['peak_rss_mb'], '.0f'):>13}"
        )
    return "\n".join(lines)


def format_pooled(pooled: dict[str, Any]) -> str:
    """The pooled agreement lines."""
    lines = ["Pooled epoch agreement (device vs experts)"]
    labels = {
        "expert_scored": "expert-scored epochs (as the per-night figures)",
        "scene_epochs": "truth_hypnogram span (incl. scripted awake-in-bed)",
    }
    for key, label in labels.items():
        block = pooled.get(key)
        if not block:
            lines.append(f"  {label}: none")
            continue
        a4, a3 = block["4"], block["3"]
        lines.append(
            f"  {label:<52} n={a4['n_epochs']:>5}  4-class acc {_f(a4['accuracy'], '.3f')} "
            f"kappa {_f(a4['kappa'], '.3f')}  |  3-class acc {_f(a3['accuracy'], '.3f')} "
            f"kappa {_f(a3['kappa'], '.3f')}"
        )
    return "\n".join(lines)


def format_bland_altman(table: dict[str, dict[str, Any]]) -> str:
    """The Bland-Altman table."""
    lines = [
        "Bland-Altman across nights (device - experts)",
        f"  {'metric':<10} {'n':>3} {'dev mean':>9} {'exp mean':>9} {'bias':>8} {'sd':>8} "
        f"{'95% LoA':>19}",
    ]
    for key, lab, unit in METRICS:
        r = table[key]
        loa = f"[{_f(r['loa_low'], '.1f')}, {_f(r['loa_high'], '.1f')}]"
        lines.append(
            f"  {f'{lab} ({unit})':<10} {r['n']:>3} {_f(r['device_mean'], '.1f'):>9} "
            f"{_f(r['expert_mean'], '.1f'):>9} {_f(r['bias'], '+.1f'):>8} "
            f"{_f(r['sd'], '.1f'):>8} {loa:>19}"
        )
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        info = []
    fields = dict(line.split(":", 1) for line in info if ":" in line)
    fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
    # x86 and most ARM kernels: "model name"; a Raspberry Pi adds "Model" (the board).
    cpu = fields.get("model name") or fields.get("hardware") or cpu
    if fields.get("model") and not fields["model"].isdigit():
        cpu = f"{fields['model']} ({cpu})"
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


# ---------------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.simulate",
        description="Realtime factors, stage timing and accuracy of simulate_night over nights.",
    )
    p.add_argument(
        "--nights",
        type=Path,
        help=f"folder of night .npz files, or one file (default: {default_nights_dir()})",
    )
    p.add_argument("--scene", default="reading-then-sleep", choices=SCENE_NAMES)
    p.add_argument("--json", type=Path, help="write every figure (and each night's data) here")
    p.add_argument("--limit", type=int, help="benchmark only the first N nights by name")
    p.add_argument(
        "--held-out",
        action="store_true",
        help="score each night with a model trained without its subject (needs the train extra)",
    )
    return p


class HeldOutModels:
    """Leave-one-subject-out stagers: night → an ONNX model trained on the other subjects.

    Uses the training code (`models.train_live`, the `train` extra) on the nights in the same
    folder, so every figure the benchmark prints is on a subject the model has never seen.
    """

    def __init__(self, nights_dir: Path, workdir: Path) -> None:
        from models.train_live import load_all

        self._nights = load_all(nights_dir, _REPO / ".cache" / "features", jobs=2)
        self._dir = workdir
        self._models: dict[str, Path] = {}

    def for_night(self, path: Path) -> Path:
        """The held-out model of the subject of night `path` (trained once per subject)."""
        from models.train_live import export, fit_without

        subject = load_night(path).subject
        if subject not in self._models:
            others = {str(n["subject"]) for n in self._nights} - {subject}
            if not others:
                raise ApplianceError("--held-out needs nights of at least two subjects")
            out = self._dir / subject
            out.mkdir(parents=True, exist_ok=True)
            records = sorted(str(n["record"]) for n in self._nights if str(n["subject"]) != subject)
            model = fit_without(self._nights, {subject})
            export(model, out, {}, f"held out {subject}", records)
            self._models[subject] = out / "live.onnx"
        return self._models[subject]


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status (1 if a night failed, 2 on a usage error)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.limit is not None and args.limit < 1:
        _progress("--limit must be at least 1")
        return 2
    try:
        paths = find_nights(args.nights, args.limit)
    except ApplianceError as e:
        _progress(str(e))
        return 2
    cfg = Config()
    started = datetime.now(UTC)
    runs: list[NightRun] = []
    failed: list[dict[str, str]] = []
    breakdown: StageBreakdown | None = None
    tmp = tempfile.TemporaryDirectory(prefix="bench-heldout-")
    held_out: HeldOutModels | None = None
    if args.held_out:
        _progress("training a held-out model per subject (train extra) ...")
        held_out = HeldOutModels(paths[0].parent, Path(tmp.name))
    for i, path in enumerate(paths):
        _progress(f"[{i + 1}/{len(paths)}] {path.name} ...")
        try:
            model = held_out.for_night(path) if held_out is not None else None
            if breakdown is None:
                breakdown, run = stage_breakdown(cfg, path, args.scene, model=model)
            else:
                run = run_night(cfg, path, args.scene, model)
        except ApplianceError as e:
            log.error("night %s failed: %s", path, e)
            failed.append({"path": str(path), "error": str(e)})
            continue
        runs.append(run)
        _progress(
            f"    {run.record}: {run.simulated_s / 3600.0:.2f} h in {run.wall_s:.1f} s "
            f"(x{run.realtime_factor:.0f} real time)"
        )

    pooled = pooled_agreement(runs)
    ba = bland_altman_table(runs)
    machine = _machine()
    print(
        f"benchmarks.simulate · scene {args.scene} · alarm {ALARM} · {len(runs)} night(s)"
        f" · {machine['cpu']} ({machine['cpus']} CPUs) · Python {machine['python']}"
    )
    print()
    print(format_nights(runs))
    print("  TST, SOL, WASO in min; SE in %; each cell device/experts.")
    if breakdown is not None and breakdown.times_s:
        print()
        print(format_breakdown(breakdown))
    print()
    print(format_pooled(pooled))
    seen = [r.record for r in runs if r.data.get("night_in_training_set")]
    if seen:
        print(
            f"  !! {len(seen)} of {len(runs)} nights were in the shipped model's training set:"
            "\n  !! their agreement is optimistic. Held-out (leave-one-subject-out) figures are"
            "\n  !! in models/live.md."
        )
    print()
    print(format_bland_altman(ba))
    print()
    print(f"Peak RSS of the process: {peak_rss_mb():.0f} MiB")
    for f in failed:
        print(f"FAILED {f['path']}: {f['error']}")

    if args.json:
        doc = {
            "benchmark": "benchmarks.simulate",
            "started_utc": started.isoformat(),
            "machine": machine,
            "args": {
                "nights": [str(p) for p in paths],
                "scene": args.scene,
                "alarm": ALARM,
                "limit": args.limit,
            },
            "nights": [r.summary() for r in runs],
            "failed": failed,
            "breakdown": breakdown.to_dict() if breakdown is not None else None,
            "pooled": pooled,
            "bland_altman": ba,
            "peak_rss_mb": peak_rss_mb(),
            "simulations": [r.data for r in runs],
        }
        try:
            args.json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        except OSError as e:
            _progress(f"cannot write {args.json}: {e.strerror or e}")
            return 2
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
