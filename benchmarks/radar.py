"""Radar DSP and presence against the simulator's truth: `python -m benchmarks.radar`.

For every night in `--nights` (default ../shared/data), an "asleep-at-once" scene is rendered
with that night (scene seed = the night's rank) and the DSP, presence detector and user tracker
run on the whole night as the daemon runs them: one chain started a minute before the sleeper
gets into bed, fed until 3 min after they get up. An "empty-room-fan" scene (fan + curtain) with
the same seed gives the false-presence figure. Figures (keys of `--json`):

- breath_rate_mae / breath_rate_p95: |DSP − truth| breath rate per 30-s epoch in bed (median /
  95th percentile), breaths/min, over the epochs where the DSP gives a rate;
  breath_rate_missing: share of in-bed epochs without one;
- waveform_corr: median per-epoch Pearson correlation, still epochs, of the 10-Hz waveform with
  the driving breath waveform passed through the same causal 0.1–0.7 Hz band-pass (so the
  filter's delay is not counted as error);
- hr_mae: median |DSP − truth| heart rate of still epochs, beats/min;
- distance_err_cm: median |DSP − truth| user distance, cm;
- presence_still_sensitivity: share of still minutes (both epochs without movement) with the
  user present in every second;
- presence_still_sensitivity_fresh_start: the same over `--windows` 10-min windows a night, each
  run by a chain started 2 min before it beside the sleeper already in bed, told nothing (a
  harder case than the daemon's: a daemon restarted in a night tells the chain where the user
  was, `PresenceDetector.expect`);
- presence_false_rate: share of empty-room minutes (fan + curtain) with presence in any second;
- enter_latency_s / leave_latency_s: median over nights of the delay from getting into bed to
  the first present second (a chain started at the scene's start, the room empty) / from
  leaving the bed to the first empty second (the whole night's chain; max in *_max);
- realtime_factor: simulated seconds / CPU seconds of DSP + presence over an 8-h night at 20 Hz
  on the A121 range points (a rendered 10-min block fed 48 times; rendering not timed);
- peak_rss_mb: peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import resource
import sys
import time
from pathlib import Path

import numpy as np
from scipy import signal

from appliance.config import Config
from appliance.dsp import RadarDsp
from appliance.frames import RadarFrames, TrackedSecond
from appliance.presence import PresenceDetector
from appliance.tracking import UserTracker
from hardware.radar.night import load_night
from hardware.radar.scene import build_scene
from hardware.radar.simulated import SceneTruth, SimulatedRadar

log = logging.getLogger("benchmarks.radar")

_EP = 30.0
_WARM_S = 120.0
_FS = 20.0


def _window(
    radar: SimulatedRadar,
    truth: SceneTruth,
    t0_s: float,
    t1_s: float,
    acc: dict[str, list[float]],
    warm_s: float = _WARM_S,
) -> list[tuple[float, bool]]:
    """Run a fresh chain from `t0_s` − `warm_s` to `t1_s`; add the figures of [t0_s, t1_s).

    Returns:
        (t_s, present) of every second the chain gave.
    """
    cfg = Config()
    dsp, det, trk = RadarDsp(), PresenceDetector(cfg.presence), UserTracker(cfg.bed)
    k0 = int(max(0.0, t0_s - warm_s) * _FS) // 20 * 20
    k1 = min(radar.n_frames, int(t1_s * _FS))
    secs: list[tuple[float, TrackedSecond, np.ndarray]] = []
    for k in range(k0, k1, 200):
        iq = radar.render(k, min(k + 200, k1))
        fr = RadarFrames(np.arange(k, k + iq.shape[0]) / _FS, iq, 0.3, 0.06, _FS)
        for sec in dsp.update(fr):
            ts = trk.update(sec, det.update(sec))
            secs.append((sec.t_s, ts, sec.resp_waveform_mm))
    sos = signal.butter(2, (0.1, 0.7), "bandpass", fs=10.0, output="sos")
    tw = truth.breath_waveform_mm
    e0 = int(math.ceil(t0_s / _EP))
    e1 = int(t1_s // _EP)
    by_ep: dict[int, list[tuple[TrackedSecond, np.ndarray, int]]] = {}
    for t_s, ts, w in secs:
        m = int(round(t_s + 1.0 / _FS - 1.0))  # second m covers scene time [m, m + 1)
        by_ep.setdefault(m // int(_EP), []).append((ts, w, m))
    for e in range(e0, e1):
        if not truth.user_present[e] or e not in by_ep:
            continue
        rows = by_ep[e]
        users = [r[0].user for r in rows if r[0].user is not None]
        still = truth.user_moving_fraction[e] == 0.0
        br = [u.breath_rate_bpm for u in users if u.breath_rate_bpm is not None]
        if br and np.isfinite(truth.breath_rate_bpm[e]):
            acc["br_err"].append(abs(float(np.median(br)) - float(truth.breath_rate_bpm[e])))
        elif np.isfinite(truth.breath_rate_bpm[e]):
            acc["br_err"].append(math.inf)
        if users and np.isfinite(truth.user_distance_m[e]):
            d = float(np.median([u.distance_m for u in users]))
            acc["dist_err"].append(abs(d - float(truth.user_distance_m[e])))
        if still:
            hr = [u.heart_rate_bpm for u in users if u.heart_rate_bpm is not None]
            if np.isfinite(truth.heart_rate_bpm[e]):
                acc["hr_err"].append(
                    abs(float(np.median(hr)) - float(truth.heart_rate_bpm[e])) if hr else math.inf
                )
            ok = all(len(r[1]) == 10 for r in rows) and len(rows) == int(_EP)
            m0 = rows[0][2]
            seg = tw[10 * (m0 - 60) : 10 * (m0 + len(rows))]
            if ok and np.all(np.isfinite(seg)) and seg.size == 10 * (60 + len(rows)):
                ref = signal.sosfilt(sos, seg - seg[0])[600:]
                est = np.concatenate([r[1] for r in rows]).astype(np.float64)
                if np.std(ref) > 0 and np.std(est) > 0:
                    acc["corr"].append(float(np.corrcoef(est, ref)[0, 1]))
    # Still minutes: both epochs still and present.
    for e in range(e0 - e0 % 2, e1 - 1, 2):
        if e < e0 or e + 1 >= e1:
            continue
        if not (truth.user_present[e] and truth.user_present[e + 1]):
            continue
        if truth.user_moving_fraction[e] > 0 or truth.user_moving_fraction[e + 1] > 0:
            continue
        rows = by_ep.get(e, []) + by_ep.get(e + 1, [])
        acc["still_min"].append(float(all(r[0].presence.present for r in rows)))
    return [(t_s, ts.presence.present) for t_s, ts, _ in secs]


def _presence_run(radar: SimulatedRadar, t0_s: float, t1_s: float) -> list[tuple[float, bool]]:
    cfg = Config()
    dsp, det = RadarDsp(), PresenceDetector(cfg.presence)
    k0 = int(max(0.0, t0_s) * _FS) // 20 * 20
    k1 = min(radar.n_frames, int(t1_s * _FS))
    out: list[tuple[float, bool]] = []
    for k in range(k0, k1, 200):
        iq = radar.render(k, min(k + 200, k1))
        fr = RadarFrames(np.arange(k, k + iq.shape[0]) / _FS, iq, 0.3, 0.06, _FS)
        for sec in dsp.update(fr):
            out.append((sec.t_s, det.update(sec).present))
    return out


def _speed(radar: SimulatedRadar, t0_s: float) -> float:
    k0 = int(t0_s * _FS)
    block = radar.render(k0, k0 + int(600 * _FS))
    dsp, det = RadarDsp(), PresenceDetector()
    n = 200
    cpu0 = time.process_time()
    for rep in range(48):
        for k in range(0, block.shape[0], n):
            base = rep * block.shape[0] + k
            fr = RadarFrames(np.arange(base, base + n) / _FS, block[k : k + n], 0.3, 0.06, _FS)
            for sec in dsp.update(fr):
                det.update(sec)
    cpu = time.process_time() - cpu0
    return 8 * 3600.0 / cpu


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the figures and optionally write them as JSON."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.radar", description=__doc__)
    here = Path(__file__).resolve().parent.parent
    ap.add_argument("--nights", type=Path, default=here / ".." / "shared" / "data")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--limit", "--nights-limit", type=int, default=None, dest="limit")
    ap.add_argument("--windows", type=int, default=3, help="10-min fresh-start windows per night")
    ap.add_argument("--empty-min", type=float, default=30.0, help="empty-room minutes per night")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    files = sorted(args.nights.glob("*.npz")) if args.nights.is_dir() else [args.nights]
    if args.limit:
        files = files[: args.limit]
    if not files:
        print(f"no nights in {args.nights}", file=sys.stderr)
        return 2
    cfg = Config()
    acc: dict[str, list[float]] = {
        k: [] for k in ("br_err", "hr_err", "dist_err", "corr", "still_min", "false_min")
    }
    fresh: dict[str, list[float]] = {k: [] for k in acc}
    enter: list[float] = []
    leave: list[float] = []
    speed = math.nan
    t_start = time.perf_counter()
    for i, f in enumerate(files):
        night = load_night(f)
        scene = build_scene("asleep-at-once", night, None, i)
        radar = SimulatedRadar(scene, cfg.radar, start_s=0.0, seed=i)
        truth = radar.truth
        rec0 = float(scene.recording_start_s or 0.0)
        assert truth.in_bed_s is not None and truth.out_of_bed_s is not None
        out_s = truth.out_of_bed_s
        # The whole night, and 3 min after getting up: the leave latency of the night's chain.
        pr = _window(radar, truth, truth.in_bed_s - 60.0, out_s + 180.0, acc, warm_s=0.0)
        gone = next((t for t, p in pr if t >= out_s and not p), math.inf)
        leave.append(gone - out_s)
        for w in range(args.windows):
            a = rec0 + (w + 1) / (args.windows + 1) * night.duration_s - 300.0
            _window(radar, truth, a, a + 600.0, fresh)
        pr = _presence_run(radar, 0.0, truth.in_bed_s + 60.0)
        first = next((t for t, p in pr if p), math.inf)
        enter.append(first - truth.in_bed_s)
        if i == 0:
            speed = _speed(radar, rec0 + 0.5 * night.duration_s)
        empty = build_scene("empty-room-fan", None, None, i, empty_duration_s=args.empty_min * 60)
        er = SimulatedRadar(empty, cfg.radar, start_s=0.0, seed=i)
        pr = _presence_run(er, 0.0, empty.duration_s)
        for m in range(len(pr) // 60):
            acc["false_min"].append(float(any(p for _, p in pr[60 * m : 60 * m + 60])))
        log.info(
            "%s: enter %.0f s, leave %.0f s, %d epochs so far (%.0f s)",
            f.name,
            enter[-1],
            leave[-1],
            len(acc["br_err"]),
            time.perf_counter() - t_start,
        )

    def med(k: str) -> float:
        return float(np.median(acc[k])) if acc[k] else math.nan

    br_all = np.asarray(acc["br_err"])
    br = br_all[np.isfinite(br_all)]  # epochs with a breath rate; the others are counted apart
    res = {
        "nights": len(files),
        "windows_per_night": args.windows,
        "epochs": int(br_all.size),
        "breath_rate_missing": float(np.mean(~np.isfinite(br_all))) if br_all.size else math.nan,
        "breath_rate_mae": float(np.median(br)) if br.size else math.nan,
        "breath_rate_p95": float(np.percentile(br, 95)) if br.size else math.nan,
        "waveform_corr": med("corr"),
        "hr_mae": med("hr_err"),
        "distance_err_cm": 100.0 * med("dist_err"),
        "presence_still_sensitivity": float(np.mean(acc["still_min"])),
        "still_minutes": len(acc["still_min"]),
        "presence_still_sensitivity_fresh_start": float(np.mean(fresh["still_min"]))
        if fresh["still_min"]
        else math.nan,
        "fresh_start_still_minutes": len(fresh["still_min"]),
        "presence_false_rate": float(np.mean(acc["false_min"])),
        "empty_minutes": len(acc["false_min"]),
        "enter_latency_s": float(np.median(enter)),
        "enter_latency_max_s": float(np.max(enter)),
        "leave_latency_s": float(np.median(leave)),
        "leave_latency_max_s": float(np.max(leave)),
        "realtime_factor": speed,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "wall_s": time.perf_counter() - t_start,
    }
    for k, v in res.items():
        print(f"{k:28s} {v:.4g}" if isinstance(v, float) else f"{k:28s} {v}")
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
