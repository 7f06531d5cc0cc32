"""Soak: a simulated week through the real daemon, with random faults every night.

    python -m benchmarks.soak [--days 7] [--seed 1] [--bed 23:00] [--up 07:30] [--json OUT]

The real `Daemon` (DSP, presence, tracking, epochs, the ONNX stager, sessions, the SQLite store,
the alarm task, the environment task) runs in virtual time on a `VirtualClock`, one day after the
other: standby through the day (the radar off at the source), a sleeper in bed from `--bed` to
`--up` with a bathroom trip, and the daily 07:00 smart alarm (30-min window), dismissed a minute
after it rings. Each night, with a seeded random generator, it injects:

- a radar dropout (one read raises `RadarUnavailable`; the radar task marks it unavailable and
  starts it again with back-off),
- an I2C outage (every environment sensor NACKs for 90 min),
- a read-only store for an hour (the store's connection is swapped for SQLite's own read-only
  one on the same file: every write fails inside SQLite, as on a file system gone read-only),
- every other morning (the first, third, ...) a dead primary speaker (the ring goes to the
  fallback output).

The radar is a light scene rendered here (one breathing sleeper at 0.7 m over static clutter and
noise, the physics of tests/synthetic.py), not the full scene simulator, so that a week runs in
minutes; every frame still goes through the real DSP. The store lives on /dev/shm when there is
one (the fsync of every write would otherwise dominate the run, and a soak measures memory, not
the disk).

It prints, for every day, when the alarm rang against its set time (late = after the set time,
missed = no ring), the faults injected, the resident memory (RSS from /proc/self/statm after a
`gc.collect()`) and the memory blocks Python's allocator holds (`sys.getallocatedblocks()`, which
counts every object, tracked by the garbage collector or not), then RSS at the start, after day 1
and after the last day, and the growth.
Nothing is fixed here: every figure is measured by the run (benchmarks/README.md, "Soak").
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from appliance.alarm_schedule import parse_hhmm
from appliance.clock import VirtualClock
from appliance.config import Config, EnvironmentConfig, parse_config
from appliance.control import Controller
from appliance.daemon import Daemon
from appliance.dsp import WAVELENGTH_MM
from appliance.environment import EnvironmentMonitor, probe_environment
from appliance.errors import HardwareError, RadarUnavailable
from appliance.frames import RadarFrames
from appliance.staging import Stager
from appliance.store import Store
from hardware.environment.fakes import BedroomNight, FakeI2CBus, simulated_bus
from hardware.speaker import FallbackSpeaker, SimulatedSpeaker

__all__ = ["DayResult", "SoakResult", "rss_mb", "run_soak"]

log = logging.getLogger(__name__)

TZ = ZoneInfo("Europe/Berlin")
FIRST_DAY = (2026, 1, 12)
"""The week starts on this date at 18:00 local time (fixed: results never depend on today)."""
ALARM = "07:00"
DISMISS_AFTER_S = 60.0
SLEEPER_M = 0.7


def rss_mb() -> float:
    """Resident memory of this process now, MiB (Linux /proc; else the peak from getrusage)."""
    try:
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _local(day: int, hh: int, mm: int) -> float:
    d = datetime(*FIRST_DAY, tzinfo=TZ) + timedelta(days=day)
    return d.replace(hour=hh, minute=mm).timestamp()


@dataclass
class NightPlan:
    """One night's schedule and faults, UTC epoch seconds."""

    bed_s: float
    up_s: float
    away: tuple[float, float]
    dropout_s: float
    nack: tuple[float, float]
    read_only: tuple[float, float]
    speaker_dead: bool

    def faults(self) -> list[str]:
        """The faults of this night, as words."""
        out = ["radar dropout", "I2C NACKs 90 min", "read-only store 60 min"]
        return out + (["primary speaker dead"] if self.speaker_dead else [])


class SoakRadar:
    """A light radar scene, stamped on the clock as the A121 driver stamps its frames.

    One breathing sleeper at `SLEEPER_M` (chest excursion ~6 mm at ~14 breaths/min with slow
    rate wander, a 0.25-mm heartbeat), static clutter and white noise; nobody while away. The
    night's `plan` says when the sleeper is away and which read raises; `on_read` runs before
    each read (the soak's hook: faults, the user's dismiss, the morning).
    """

    def __init__(self, cfg: Config, clock: VirtualClock, seed: int) -> None:
        r = cfg.radar
        self.frame_rate_hz = r.frame_rate_hz
        self._clock = clock
        self._start_m = r.range_start_m
        self._step_m = r.range_step_m
        self._ranges = r.range_start_m + r.range_step_m * np.arange(r.n_bins)
        self._rng = np.random.default_rng(seed)
        self._clutter = (
            self._rng.normal(size=r.n_bins) + 1j * self._rng.normal(size=r.n_bins)
        ) * 0.5
        self._phase = 0.0
        self._wobble = 1.0
        self.plan: NightPlan | None = None
        self.on_read: Any = None
        self.dropped = False
        self.frames = 0

    def start(self) -> None:
        """Nothing to power here."""

    def stop(self) -> None:
        """Nothing to power down."""

    def read(self, n_frames: int) -> RadarFrames | None:
        """The next `n_frames` frames from now; raises once per night (the planned dropout)."""
        if self.on_read is not None:
            self.on_read()
        now = self._clock.now()
        plan = self.plan
        if plan is not None and not self.dropped and now >= plan.dropout_s:
            self.dropped = True
            raise RadarUnavailable("soak radar", "injected dropout")
        fs = self.frame_rate_hz
        t = now + (np.arange(n_frames) + 1.0) / fs
        # Breath-to-breath variability (~8 %, a new rate every batch, ramped): a perfectly
        # regular oscillation is what a fan looks like, and presence rejects it.
        wobble = self._rng.normal(1.0, 0.08)
        ramp = np.linspace(self._wobble, wobble, n_frames)
        self._wobble = wobble
        rate_hz = 14.0 / 60.0 * ramp * (1.0 + 0.04 * np.sin(2 * np.pi * t / 37.0))
        phase = self._phase + 2 * np.pi * np.cumsum(rate_hz) / fs
        self._phase = float(phase[-1]) % (2 * np.pi)
        # A chest rises faster than it falls: 3 mm of excursion with a second harmonic.
        shape = (np.sin(phase) + 0.4 * np.sin(2 * phase)) / 1.26
        chest_mm = 3.0 * shape + 0.25 * np.sin(2 * np.pi * 1.05 * t)
        here = np.ones(n_frames, bool)
        if plan is not None:
            here &= ~((t >= plan.away[0]) & (t < plan.away[1]))
        dist_m = SLEEPER_M + chest_mm / 1000.0
        env = np.exp(-0.5 * ((self._ranges[None, :] - dist_m[:, None]) / 0.04) ** 2)
        echo = env * np.exp(1j * 4 * np.pi * dist_m[:, None] * 1000.0 / WAVELENGTH_MM)
        noise = self._rng.normal(size=(n_frames, self._ranges.size, 2)) @ np.array([1.0, 1j])
        iq = self._clutter[None, :] + here[:, None] * echo + 0.02 * noise
        self.frames += n_frames
        return RadarFrames(t, iq.astype(np.complex64), self._start_m, self._step_m, fs)


class FlakyOutput(SimulatedSpeaker):
    """The primary speaker; while `dead`, every play fails like a vanished ALSA card."""

    dead = False

    @property
    def name(self) -> str:
        """The output's name in the fallback chain."""
        return "soak primary"

    def play(self, t_s: float) -> None:
        """Play, or fail while dead.

        Raises:
            HardwareError: the output is dead.
        """
        if self.dead:
            raise HardwareError("soak primary: audio open error: No such device")
        super().play(t_s)


class ReadOnlyStore:
    """Swaps the store's connection for SQLite's read-only one on the same file, and back."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._rw: sqlite3.Connection | None = None

    @property
    def on(self) -> bool:
        """True while the store is read-only."""
        return self._rw is not None

    def set(self, on: bool) -> None:
        """Make the store read-only (True) or writable again (False)."""
        if on and self._rw is None:
            self._rw = self._store._conn
            self._store._conn = sqlite3.connect(
                f"file:{self._store.path}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
            )
        elif not on and self._rw is not None:
            ro, self._store._conn = self._store._conn, self._rw
            self._rw = None
            if ro is not None:
                ro.close()


@dataclass
class DayResult:
    """One simulated day (18:00 to 18:00)."""

    day: int
    date: str
    set_s: float
    rang_s: float | None
    early_min: float | None
    late: bool
    missed: bool
    reason: str | None
    output: str | None
    faults: list[str]
    epochs: int
    rss_mb: float
    blocks: int


@dataclass
class SoakResult:
    """What the soak measured."""

    days: list[DayResult] = field(default_factory=list)
    rss_start_mb: float = 0.0
    blocks_start: int = 0
    wall_s: float = 0.0
    frames: int = 0
    sessions: int = 0
    epochs: int = 0
    integrity_ok: bool = False
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def rang(self) -> int:
        """Mornings the alarm rang."""
        return sum(1 for d in self.days if d.rang_s is not None)

    @property
    def late(self) -> int:
        """Mornings it rang after the set time."""
        return sum(1 for d in self.days if d.late)

    @property
    def missed(self) -> int:
        """Mornings it did not ring."""
        return sum(1 for d in self.days if d.missed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out.update(rang=self.rang, late=self.late, missed=self.missed)
        return out


def _plan(day: int, bed: tuple[int, int], up: tuple[int, int], rng: random.Random) -> NightPlan:
    bed_s = _local(day if bed[0] >= 12 else day + 1, *bed)
    up_s = _local(day + 1, *up)
    span = up_s - bed_s

    def window(length_s: float) -> tuple[float, float]:
        a = bed_s + rng.uniform(0.0, max(0.0, span - length_s))
        return a, a + length_s

    away_a = bed_s + rng.uniform(0.3, 0.6) * span
    return NightPlan(
        bed_s=bed_s,
        up_s=up_s,
        away=(away_a, away_a + 300.0) if span > 3 * 3600 else (up_s, up_s),
        dropout_s=bed_s + rng.uniform(0.1, 0.9) * span,
        nack=window(min(5400.0, span / 2)),
        read_only=window(min(3600.0, span / 3)),
        speaker_dead=day % 2 == 0,  # every other morning, from the first
    )


def _played_on(
    rang_s: float | None, primary: SimulatedSpeaker, fallback: SimulatedSpeaker
) -> str | None:
    """Which output sounded the ring that started at `rang_s` (from what each one played)."""
    if rang_s is None:
        return None
    until = rang_s + DISMISS_AFTER_S + 5.0
    used = [
        name
        for name, out in (("primary", primary), ("fallback", fallback))
        if any(rang_s <= t <= until for t in out.plays)
    ]
    return "+".join(used) or "none"


def _environment(clock: VirtualClock) -> tuple[EnvironmentMonitor, FakeI2CBus]:
    cfg = EnvironmentConfig(climate="sht4x", light="tsl2591")
    bus = simulated_bus(clock.now, BedroomNight(tz=TZ), ("sht4x", "tsl2591"))
    found = probe_environment(bus, cfg, sleep=bus.sleep)
    return EnvironmentMonitor([f.sensor for f in found], cfg), bus


async def _soak(
    days: int, seed: int, bed: tuple[int, int], up: tuple[int, int], store_dir: Path
) -> SoakResult:
    rng = random.Random(seed)
    cfg = parse_config({"alarm": {"time": ALARM, "window_min": 30.0}})
    clock = VirtualClock(_local(0, 18, 0))
    store = Store.open(store_dir / "soak.sqlite")
    store.set_setting("standby", True)  # the day starts in standby: the radar is off
    radar = SoakRadar(cfg, clock, seed)
    primary = FlakyOutput(clock)
    fallback = SimulatedSpeaker(clock)
    environment, bus = _environment(clock)
    d = Daemon(
        cfg,
        clock=clock,
        radar=radar,
        speaker=FallbackSpeaker([primary, fallback]),
        store=store,
        stager=Stager(),
        tz=TZ,
        environment=environment,
    )
    ro = ReadOnlyStore(store)
    morning = asyncio.Event()
    result = SoakResult()
    control = Controller(d)

    def hook() -> None:
        """Before each radar read: the night's faults, the user's dismiss, the morning."""
        now = clock.now()
        plan = radar.plan
        if plan is None:
            return
        for dev in bus.devices.values():
            dev.nack = plan.nack[0] <= now < plan.nack[1]
        ro.set(plan.read_only[0] <= now < plan.read_only[1])
        a = d.alarm.alarm
        ringing = a is not None and a.state == "ringing" and a.rang_at_s is not None
        if ringing and a is not None and now - (a.rang_at_s or now) >= DISMISS_AFTER_S:
            control.dismiss()
        if now >= plan.up_s:
            ro.set(False)
            for dev in bus.devices.values():
                dev.nack = False
            d.set_standby(True)
            morning.set()

    radar.on_read = hook
    task = asyncio.create_task(d.run(), name="daemon")
    for _ in range(20):
        await asyncio.sleep(0)
    gc.collect()
    result.rss_start_mb = rss_mb()
    result.blocks_start = sys.getallocatedblocks()
    t0 = time.perf_counter()
    try:
        for day in range(days):
            plan = _plan(day, bed, up, rng)
            await clock.run_until(plan.bed_s)
            radar.plan, radar.dropped = plan, False
            primary.dead = plan.speaker_dead
            morning.clear()
            d.set_standby(False)
            # The radar task drives the clock through the night; the hook ends it.
            await morning.wait()
            radar.plan = None
            primary.dead = False
            await clock.run_until(_local(day + 1, 18, 0))
            gc.collect()
            set_s = _local(day + 1, *parse_hhmm(ALARM))
            rings = [
                e
                for e in d.alarm_events
                if e.kind == "alarm_ringing" and json.loads(e.detail).get("set_s") == set_s
            ]
            rang = rings[0].t_s if rings else None
            sessions = store.sessions(limit=1)
            n_epochs = len(store.epochs(sessions[0].id)) if sessions else 0
            day_result = DayResult(
                day=day + 1,
                date=datetime.fromtimestamp(set_s, TZ).date().isoformat(),
                set_s=set_s,
                rang_s=rang,
                early_min=None if rang is None else round((set_s - rang) / 60.0, 1),
                late=rang is not None and rang > set_s + 1.0,
                missed=rang is None,
                reason=json.loads(rings[0].detail).get("reason") if rings else None,
                output=_played_on(rang, primary, fallback),
                faults=plan.faults(),
                epochs=n_epochs,
                rss_mb=round(rss_mb(), 1),
                blocks=sys.getallocatedblocks(),
            )
            result.days.append(day_result)
            log.info("day %d: %s", day + 1, day_result)
    finally:
        d.stop()
        await asyncio.wait_for(task, 60.0)
    result.wall_s = time.perf_counter() - t0
    result.frames = radar.frames
    rows = store.sessions(limit=10 * days)
    result.sessions = len(rows)
    result.epochs = sum(len(store.epochs(s.id)) for s in rows)
    result.integrity_ok = store.integrity_ok()
    result.health = {k: v["status"] for k, v in d.health.to_dict().items()}
    store.close()
    return result


def run_soak(
    days: int = 7,
    *,
    seed: int = 1,
    bed: str = "23:00",
    up: str = "07:30",
    store_dir: Path | None = None,
) -> SoakResult:
    """Run the soak (see the module docstring) and return what it measured.

    Args:
        days: Simulated days, ≥ 1.
        seed: Seed of the faults and the radar noise.
        bed: Local time HH:MM the sleeper goes to bed (before noon: the next morning).
        up: Local time HH:MM the sleeper gets up, after the 07:00 alarm.
        store_dir: Where the store goes; None = a temporary directory on /dev/shm if present.
    """
    if store_dir is not None:
        return asyncio.run(_soak(days, seed, parse_hhmm(bed), parse_hhmm(up), store_dir))
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as tmp:
        return asyncio.run(_soak(days, seed, parse_hhmm(bed), parse_hhmm(up), Path(tmp)))


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--bed", default="23:00")
    ap.add_argument("--up", default="07:30")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.CRITICAL + 1)
    res = run_soak(args.days, seed=args.seed, bed=args.bed, up=args.up)
    out = sys.stdout
    out.write(f"soak: {args.days} simulated days, seed {args.seed}, in bed {args.bed}-{args.up}\n")
    out.write(
        "day  date        rang          vs 07:00  reason    output    epochs  RSS MiB   blocks\n"
    )
    for r in res.days:
        rang = (
            "-" if r.rang_s is None else datetime.fromtimestamp(r.rang_s, TZ).strftime("%H:%M:%S")
        )
        vs = "MISSED" if r.missed else ("LATE" if r.late else f"{r.early_min:.1f} min early")
        out.write(
            f"{r.day:>3}  {r.date}  {rang:>8}  {vs:>14}  {r.reason or '-':<8}  "
            f"{r.output or '-':<8}  {r.epochs:>6}  {r.rss_mb:7.1f}  {r.blocks:>7}\n"
        )
    first, last = res.days[0].rss_mb, res.days[-1].rss_mb
    out.write(
        f"alarms: {res.rang} rang, {res.late} late, {res.missed} missed of {len(res.days)}\n"
        f"RSS: start {res.rss_start_mb:.1f} MiB, after day 1 {first:.1f} MiB, "
        f"after day {len(res.days)} {last:.1f} MiB; growth day 1 -> {len(res.days)}: "
        f"{last - first:+.1f} MiB ({(last - first) / max(1, len(res.days) - 1):+.2f} MiB/day)\n"
        f"stored: {res.sessions} sessions, {res.epochs} epochs, integrity "
        f"{'ok' if res.integrity_ok else 'FAILED'}\n"
        f"Python memory blocks: start {res.blocks_start}, after day 1 {res.days[0].blocks}, "
        f"after day {len(res.days)} {res.days[-1].blocks} "
        f"({(res.days[-1].blocks - res.days[0].blocks) / max(1, len(res.days) - 1):+.0f}/day)\n"
        f"{res.frames} radar frames ({res.frames / 20.0 / 3600.0:.1f} h) and "
        f"{len(res.days)} days in {res.wall_s:.0f} s wall "
        f"({len(res.days) * 86400.0 / res.wall_s:.0f}x real time)\n"
    )
    out.write(f"health at the end: {res.health}\n")
    if args.json is not None:
        args.json.write_text(json.dumps(res.to_dict(), indent=2), encoding="utf-8")
    return 0 if res.missed == 0 and res.late == 0 and res.integrity_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
