"""The smart alarm over every shared night, against two naive policies (on demand, not in tests).

    python -m benchmarks.alarm [--nights DIR] [--json OUT] [--limit N] [--held-out]
                               [--print-model]

Every night (`../shared/data/*.npz`) is rendered once through the whole simulated chain
(`benchmarks.alarm_render`: radar twin → DSP → presence → tracking → epochs → the ONNX stager,
cached), and the alarm — a pure consumer of staged epochs and radar seconds — is then replayed on
that stream at `SET_OFFSETS_MIN` set times before the end of the experts' scoring (16 set times,
every 10 min over the last ~3 h of each night: 240 alarms on the 15 shared nights, enough that
a share's 95 % interval is ±4 %, not ±10 %), window `WINDOW_MIN`. The replay drives the real
`SmartAlarm` exactly as the daemon does: `update_time` every second, `update_epoch` with each
staged epoch when it completes (all night long: the policy filters the whole night),
`update_second` with each radar second.

The stager: by default the shipped `live.onnx`, which saw most of these nights in training (an
optimistic stream); `--held-out` stages each night with a model trained without its subject
(leave-one-subject-out, the shipped training code; `benchmarks.alarm_render.HeldOutStagers`).

The policy's model (`SleeperModel`: the chain of expert stage and stager output) of a night is
counted on the nights of the *other* subjects in the same run (`fit_sleeper_models`): in-sample
renders for the default run, held-out renders for `--held-out` — never on the night scored.
`--print-model` prints the model counted on all the nights of the run (from a `--held-out` run:
the source of `appliance.wake_policy.STAGER_PAIR_COUNTS`).

Policies:

- `smart`: `SmartAlarm` with `LatestSafePolicy` (its default penalty) on the night's counted
  model, with movement bursts: the daemon's policy, measured without the scored night;
- `smart_epochs_only`: the same without the radar seconds (what movement adds);
- `smart_shipped_model`: `LatestSafePolicy()` exactly as shipped (`SleeperModel.default()`,
  counted on the held-out renders of all 15 nights, the scored one included);
- `smart_penalty_60min`, `smart_penalty_960min`: the one free parameter, `bad_wake_min`, at a
  quarter and 4× the default (the trade-off curve);
- `first_light`: ring at the first light or wake epoch in the window (`FirstWakeablePolicy`);
- `classic`: ring at the window start (a plain alarm set `WINDOW_MIN` earlier).

Figures per policy: `alarms`; `late` (rang after the set time: must be 0); `in_window` (share
within [set − window, set]); `in_light_or_wake` (among alarms whose truth has a light or wake
epoch in the window, the share that rang in light sleep or wake by the truth);
`sleep_kept_min_median` (median of ring time − window start, minutes); `rang_in_deep_or_rem`
(share of all alarms ringing in deep or REM by the truth); `reasons` (smart/deadline counts).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from appliance.alarm import SmartAlarm
from appliance.frames import EPOCH_S, EpochFeatures, Stage, StagedEpoch
from appliance.wake_policy import (
    FirstWakeablePolicy,
    LatestSafePolicy,
    SleeperModel,
    WakePolicy,
)
from benchmarks.alarm_render import HeldOutStagers, RenderedNight, render_night
from benchmarks.simulate import _machine, find_nights
from hardware.radar.night import load_night

__all__ = ["POLICIES", "SET_OFFSETS_MIN", "WINDOW_MIN", "evaluate", "main", "replay_alarm"]

log = logging.getLogger(__name__)

WINDOW_MIN = 30.0
SET_OFFSETS_MIN: tuple[float, ...] = tuple(5.0 + 10.0 * k for k in range(16))
"""Set times, minutes before the end of the experts' scoring of the night (5, 15 … 155; the
windows overlap, so neighbouring alarms of a night are not independent)."""
_WAKEABLE = (int(Stage.WAKE), int(Stage.LIGHT))
_BAD = (int(Stage.DEEP), int(Stage.REM))
_NO_FEATURES = EpochFeatures(0.0, 0, 1.0, (), None, None, None, 0.0, 1.0)

PolicyFactory = Callable[[SleeperModel], WakePolicy | None]


POLICIES: dict[str, tuple[PolicyFactory | None, bool]] = {
    "smart": (lambda m: LatestSafePolicy(model=m), True),
    "smart_epochs_only": (lambda m: LatestSafePolicy(model=m), False),
    "smart_shipped_model": (lambda m: LatestSafePolicy(), True),
    "smart_penalty_60min": (lambda m: LatestSafePolicy(60.0, model=m), True),
    "smart_penalty_960min": (lambda m: LatestSafePolicy(960.0, model=m), True),
    "first_light": (lambda m: FirstWakeablePolicy(), False),
    "classic": (None, False),
}
"""Name → (policy factory given the night's `SleeperModel`, None = ring at the window start;
feed the radar seconds)."""


def _staged(night: RenderedNight) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, stager stage, stager probabilities) per scene epoch (stage -2 where none)."""
    truth = np.where(night.expert_scored, night.truth, -1).astype(int)
    stage = np.full(len(truth), -2, int)
    probs = np.zeros((len(truth), 4))
    k = np.rint((night.ep_t_s - night.start_s) / EPOCH_S).astype(int)
    inside = (k >= 0) & (k < len(truth))
    stage[k[inside]] = night.ep_stage[inside]
    probs[k[inside]] = night.ep_probs[inside]
    return truth, stage, probs


def fit_sleeper_models(
    nights: Sequence[RenderedNight], subjects: Sequence[str]
) -> dict[str, SleeperModel]:
    """Per subject, the policy's model counted on the other subjects' nights (never its own).

    The pairs (expert stage, the rendered stager's symbol) of the last hours of each night
    (`SleeperModel.pair_counts`), counted once per night: counts add up over nights.
    """
    counts = [SleeperModel.pair_counts([_staged(n)]) for n in nights]
    return {
        subject: SleeperModel.from_counts(
            np.sum([c for c, s in zip(counts, subjects, strict=True) if s != subject], axis=0)
        )
        for subject in dict.fromkeys(subjects)
    }


def _epochs(night: RenderedNight) -> list[StagedEpoch]:
    out = []
    for t, s, p in zip(night.ep_t_s, night.ep_stage, night.ep_probs, strict=True):
        probs = (float(p[0]), float(p[1]), float(p[2]), float(p[3]))
        conf = max(probs)
        out.append(StagedEpoch(float(t), int(t // EPOCH_S), int(s), probs, conf, _NO_FEATURES))
    return out


def replay_alarm(
    night: RenderedNight,
    epochs: Sequence[StagedEpoch],
    set_s: float,
    window_s: float,
    policy: WakePolicy | None,
    seconds: bool,
) -> tuple[float, str]:
    """Replay one alarm on a rendered night as the daemon would; return (ring time, reason)."""
    alarm = SmartAlarm(set_s, window_s, policy=policy)
    start = alarm.window_start_s
    i = 0
    # The night before the window: the policy learns tonight's transitions.
    while i < len(epochs) and epochs[i].t_s + EPOCH_S < start:
        alarm.update_epoch(epochs[i], epochs[i].t_s + EPOCH_S)
        i += 1
    sec_t, sec_m = night.sec_t_s, night.sec_movement
    j = int(np.searchsorted(sec_t, start - 10.0))
    t = float(np.floor(start)) - 1.0
    while alarm.rang_at_s is None and t <= set_s + 2.0:
        alarm.update_time(t)
        while alarm.rang_at_s is None and i < len(epochs) and epochs[i].t_s + EPOCH_S <= t:
            alarm.update_epoch(epochs[i], t)
            i += 1
        while alarm.rang_at_s is None and j < len(sec_t) and sec_t[j] <= t:
            if seconds:
                m = float(sec_m[j])
                alarm.update_second(float(sec_t[j]), m if np.isfinite(m) else None, t)
            j += 1
        t += 1.0
    if alarm.rang_at_s is None:
        raise RuntimeError("the alarm did not ring: a bug")  # the deadline always rings
    return alarm.rang_at_s, str(alarm.reason)


def _truth_at(night: RenderedNight, t_s: float) -> int:
    k = int((t_s - night.start_s) // EPOCH_S)
    return int(night.truth[min(max(k, 0), len(night.truth) - 1)])


def _truth_has_wakeable(night: RenderedNight, start_s: float, set_s: float) -> bool:
    k0 = int((start_s - night.start_s) // EPOCH_S)
    k1 = int(np.ceil((set_s - night.start_s) / EPOCH_S))
    return bool(np.isin(night.truth[max(k0, 0) : k1], _WAKEABLE).any())


def set_times(night: RenderedNight) -> list[float]:
    """The night's set times: `SET_OFFSETS_MIN` before the end of scoring, on whole minutes."""
    scored = np.flatnonzero(night.expert_scored)
    end = night.start_s + (int(scored[-1]) + 1) * EPOCH_S
    return [float(np.floor((end - m * 60.0) / 60.0) * 60.0) for m in SET_OFFSETS_MIN]


def evaluate(
    nights: Sequence[RenderedNight],
    window_min: float = WINDOW_MIN,
    subjects: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Replay every policy at every set time of every night; return the figures (module doc).

    Args:
        nights: The rendered nights.
        window_min: The smart window, minutes.
        subjects: Each night's subject (same order); `smart`'s model for a night is
            fitted on the nights of the other subjects. None = each night its own subject.
    """
    window_s = window_min * 60.0
    subj = list(subjects) if subjects is not None else [n.record for n in nights]
    if len(subj) != len(nights):
        raise ValueError("one subject per night")
    per: dict[str, list[dict[str, Any]]] = {name: [] for name in POLICIES}
    models = fit_sleeper_models(nights, subj)
    for night, subject in zip(nights, subj, strict=True):
        model = models[subject]
        epochs = _epochs(night)
        for set_s in set_times(night):
            start = set_s - window_s
            has = _truth_has_wakeable(night, start, set_s)
            for name, (factory, seconds) in POLICIES.items():
                if factory is None:
                    ring, reason = start, "classic"
                else:
                    policy = factory(model)
                    ring, reason = replay_alarm(night, epochs, set_s, window_s, policy, seconds)
                stage = _truth_at(night, ring)
                per[name].append(
                    {
                        "night": night.record,
                        "set_s": set_s,
                        "ring_s": ring,
                        "reason": reason,
                        "truth_stage": stage,
                        "truth_had_wakeable": has,
                        "late": ring > set_s,
                        "in_window": start <= ring <= set_s,
                        "kept_min": (ring - start) / 60.0,
                    }
                )
    out: dict[str, Any] = {"nights": len(nights), "window_min": window_min, "policies": {}}
    for name, rows in per.items():
        with_wake = [r for r in rows if r["truth_had_wakeable"]]
        reasons: dict[str, int] = {}
        for r in rows:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
        out["policies"][name] = {
            "alarms": len(rows),
            "late": sum(r["late"] for r in rows),
            "in_window": _share([r["in_window"] for r in rows]),
            "alarms_truth_had_wakeable": len(with_wake),
            "in_light_or_wake": _share([r["truth_stage"] in _WAKEABLE for r in with_wake]),
            "in_light_or_wake_ci95": _wilson([r["truth_stage"] in _WAKEABLE for r in with_wake]),
            "rang_in_deep_or_rem": _share([r["truth_stage"] in _BAD for r in rows]),
            "sleep_kept_min_median": float(np.median([r["kept_min"] for r in rows]))
            if rows
            else None,
            "sleep_kept_min_mean": float(np.mean([r["kept_min"] for r in rows])) if rows else None,
            "reasons": reasons,
            "rows": rows,
        }
    smart = out["policies"]["smart"]
    for key in ("alarms", "late", "in_window", "in_light_or_wake", "sleep_kept_min_median"):
        out[key] = smart[key]
    out["classic"] = _summary(out["policies"]["classic"])
    out["first_light"] = _summary(out["policies"]["first_light"])
    return out


def _counts_repr(c: np.ndarray) -> str:
    """Pair counts as the source of `STAGER_PAIR_COUNTS` (each row as two lines of 16)."""
    lines = []
    for row in np.rint(c).astype(int):
        for half in (row[:16], row[16:]):
            lines.append(f'    "{" ".join(str(x) for x in half)}",')
    return "(\n" + "\n".join(lines) + "\n)"


def _summary(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if k != "rows"}


def _wilson(flags: Sequence[bool], z: float = 1.96) -> list[float] | None:
    """The Wilson score 95 % interval of a share (Wilson 1927, doi:10.1080/01621459.1927.10502953):
    with 240 alarms one alarm is 0.004, and two policies a few alarms apart are not different."""
    n = len(flags)
    if n == 0:
        return None
    p = float(np.mean(flags))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 3), round(centre + half, 3)]


def _share(flags: Sequence[bool]) -> float | None:
    return float(np.mean(flags)) if flags else None


def _f(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _ci(ci: list[float] | None) -> str:
    return "-" if ci is None else f"{ci[0]:.2f}-{ci[1]:.2f}"


def format_table(res: dict[str, Any]) -> str:
    """The policies side by side."""
    head = (
        f"{'policy':23} {'alarms':>6} {'late':>4} {'in_window':>9} {'light/wake':>10} "
        f"{'95% CI':>13} "
        f"{'deep/REM':>8} {'kept median':>11} {'kept mean':>9}  reasons"
    )
    lines = [f"{res['nights']} nights, window {res['window_min']:g} min", head]
    for name, p in res["policies"].items():
        lines.append(
            f"{name:23} {p['alarms']:>6} {p['late']:>4} {_f(p['in_window'], '.3f'):>9} "
            f"{_f(p['in_light_or_wake'], '.3f'):>10} {_ci(p['in_light_or_wake_ci95']):>13} "
            f"{_f(p['rang_in_deep_or_rem'], '.3f'):>8} "
            f"{_f(p['sleep_kept_min_median'], '.1f'):>11} {_f(p['sleep_kept_min_mean'], '.1f'):>9}"
            f"  {p['reasons']}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 on success, 1 if an alarm rang late, 2 on a usage error."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.alarm", description=__doc__)
    p.add_argument("--nights", type=Path, help="folder of night .npz files (../shared/data)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the figures as JSON")
    p.add_argument("--limit", type=int, help="only the first N nights")
    p.add_argument("--no-cache", action="store_true", help="re-render every night")
    p.add_argument(
        "--held-out",
        action="store_true",
        help="stage each night with a model trained without its subject (LOSO; train extra)",
    )
    p.add_argument(
        "--print-model",
        action="store_true",
        help="print the policy's model counted on all the nights of this run (the shipped "
        "constants of appliance.wake_policy come from a --held-out run)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        paths = find_nights(args.nights, args.limit)
    except Exception as e:
        print(str(e), file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    nights = []
    with tempfile.TemporaryDirectory(prefix="alarm-heldout-") as tmp:
        held = HeldOutStagers(paths[0].parent, Path(tmp)) if args.held_out else None
        for k, path in enumerate(paths):
            print(f"[{k + 1}/{len(paths)}] {path.name} ...", file=sys.stderr, flush=True)
            nights.append(render_night(path, cache=not args.no_cache, held_out=held))
    t1 = time.perf_counter()
    res = evaluate(nights, subjects=[load_night(p).subject for p in paths])
    res["held_out"] = bool(args.held_out)
    res["machine"] = _machine()
    res["measured_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    res["render_s"] = round(t1 - t0, 1)
    res["evaluate_s"] = round(time.perf_counter() - t1, 1)
    if args.print_model:
        counts = SleeperModel.pair_counts([_staged(n) for n in nights])
        print(f"STAGER_PAIR_COUNTS: tuple[str, ...] = {_counts_repr(counts)}")
    stager = "held-out (LOSO) stagers" if args.held_out else "the shipped stager (in-sample)"
    print(f"{stager} · {res['machine']['cpu']} ({res['machine']['cpus']} CPUs)")
    print(format_table(res))
    print(f"render {res['render_s']} s (cached nights are read back), replay {res['evaluate_s']} s")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 1 if any(p["late"] for p in res["policies"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
