"""Tests of the asyncio daemon: finite sources, supervision, the fail-safe alarm, `run`."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import synthetic

from appliance.clock import ScaledClock, VirtualClock
from appliance.config import Config, parse_config
from appliance.daemon import Daemon
from appliance.frames import ABSENT, EPOCH_S, RadarFrames
from appliance.staging import Stager
from appliance.store import Store
from hardware.radar.source import RadarSource
from hardware.speaker import SimulatedSpeaker

REPO = Path(__file__).resolve().parents[2]
BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")
SET_S = datetime(2026, 1, 13, 7, 0, tzinfo=BERLIN).timestamp()
"""07:00 local in Berlin on a winter morning, the alarm time of the alarm tests."""


class FakeRadar:
    """A finite `RadarSource` over pre-rendered frames, with fault injection.

    Args:
        frames: What to deliver, in order.
        fail_reads: 1-based numbers of the `read` calls that raise (before delivering anything).
        always_fail: Every `read` raises.
        on_read: Called with the 1-based call number before each read is served.
    """

    frame_rate_hz = synthetic.FS_HZ

    def __init__(
        self,
        frames: RadarFrames | None,
        *,
        fail_reads: frozenset[int] = frozenset(),
        always_fail: bool = False,
        on_read: Callable[[int], None] | None = None,
    ) -> None:
        self.frames = frames
        self.fail_reads = fail_reads
        self.always_fail = always_fail
        self.on_read = on_read
        self.pos = 0
        self.reads = 0
        self.starts = 0
        self.stops = 0

    def start(self) -> None:
        self.starts += 1

    def stop(self) -> None:
        self.stops += 1

    def read(self, n_frames: int) -> RadarFrames | None:
        self.reads += 1
        if self.on_read is not None:
            self.on_read(self.reads)
        if self.always_fail or self.reads in self.fail_reads:
            raise OSError(f"radar read {self.reads} failed (injected)")
        fr = self.frames
        if fr is None or self.pos >= fr.n_frames:
            return None
        a, b = self.pos, min(self.pos + n_frames, fr.n_frames)
        self.pos = b
        return RadarFrames(
            fr.t_s[a:b], fr.iq[a:b], fr.range_start_m, fr.range_step_m, fr.frame_rate_hz
        )


@pytest.fixture(scope="module")
def stager() -> Stager:
    return Stager()


def _cfg(**alarm: object) -> Config:
    # 60 s of presence starts a session, so a few synthetic minutes make a night.
    return parse_config({"session": {"start_after_s": 60.0}, "alarm": dict(alarm)})


def _daemon(
    cfg: Config,
    clock: VirtualClock,
    radar: RadarSource,
    store: Store,
    stager: Stager,
    *,
    tz: ZoneInfo = UTC,
    finite_source: bool = True,
) -> tuple[Daemon, SimulatedSpeaker]:
    speaker = SimulatedSpeaker(clock)
    d = Daemon(
        cfg,
        clock=clock,
        radar=radar,
        speaker=speaker,
        store=store,
        stager=stager,
        tz=tz,
        finite_source=finite_source,
    )
    return d, speaker


async def _settle(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def _run_finite(
    fr: RadarFrames, store: Store, stager: Stager, cfg: Config | None = None
) -> tuple[Daemon, FakeRadar, VirtualClock]:
    clock = VirtualClock(float(fr.t_s[0]))
    radar = FakeRadar(fr)
    d, _ = _daemon(cfg or _cfg(), clock, radar, store, stager)
    asyncio.run(asyncio.wait_for(d.run(), timeout=60.0))
    return d, radar, clock


# -- finite sources ---------------------------------------------------------------------------


def test_daemon_stops_by_itself_at_the_end_of_a_finite_source(
    tmp_path: Path, stager: Stager
) -> None:
    fr = synthetic.frames(300.0)  # a still, breathing sleeper at 0.7 m for 5 min
    with Store.open(tmp_path / "s.sqlite") as store:
        d, radar, clock = _run_finite(fr, store, stager)
        # Virtual time ran to the last frame, the radar was powered down at the end.
        assert clock.now() == pytest.approx(float(fr.t_s[-1]))
        assert radar.starts == 1
        assert radar.stops == 1
        assert radar.pos == fr.n_frames
        assert d.status.radar_ok
        sessions = store.sessions()
        assert len(sessions) == 1
        s = sessions[0]
        assert not s.is_open
        assert s.source == "simulated"
        assert s.tz == "UTC"
        assert s.summary is not None and "metrics" in s.summary
        assert store.open_session() is None
        eps = store.epochs(s.id)
        assert len(eps) >= 6  # 5 min = 10 epochs; presence takes a little to rise
        idx = [e.idx for e in eps]
        assert idx == list(range(idx[0], idx[0] + len(idx)))
        assert all(e.t_s == pytest.approx(eps[0].t_s + EPOCH_S * (e.idx - idx[0])) for e in eps)
        assert eps[0].t_s == s.started_s
        assert fr.t_s[0] <= s.started_s and s.ended_s is not None
        assert s.ended_s <= fr.t_s[-1] + EPOCH_S
        assert all(e.stage in (0, 1, 2, 3, ABSENT) for e in eps)
        tib = s.summary["metrics"]["tib_min"]
        assert 3.0 <= tib <= 5.0
        assert len(d.summaries) == 1 and d.summaries[0][0] == s.id
        kinds = [e.kind for e in store.events(s.id)]
        assert kinds[0] == "in_bed"
        assert kinds[-1] == "session_closed"
        assert store.integrity_ok()


def test_empty_room_finite_source_ends_without_a_session(tmp_path: Path, stager: Stager) -> None:
    fr = synthetic.frames(120.0, people=())
    with Store.open(tmp_path / "s.sqlite") as store:
        d, radar, _ = _run_finite(fr, store, stager)
        assert radar.pos == fr.n_frames
        assert store.sessions() == []
        assert d.summaries == []
        assert d.status.session_id is None


def test_session_closes_at_the_last_epoch_in_bed(tmp_path: Path, stager: Stager) -> None:
    fr = synthetic.frames(300.0, absent=((180.0, 300.0),))  # gets up after 3 min
    with Store.open(tmp_path / "s.sqlite") as store:
        _run_finite(fr, store, stager)
        (s,) = store.sessions()
        assert s.ended_s is not None and s.summary is not None
        # The user left at 180 s; presence is held for hold_s (60 s) at most.
        assert fr.t_s[0] + 150.0 <= s.ended_s <= fr.t_s[0] + 240.0 + EPOCH_S
        assert s.summary["end_s"] == s.ended_s


def test_no_epoch_is_stored_after_the_session_end(tmp_path: Path, stager: Stager) -> None:
    fr = synthetic.frames(300.0, absent=((180.0, 300.0),))
    with Store.open(tmp_path / "s.sqlite") as store:
        _run_finite(fr, store, stager)
        (s,) = store.sessions()
        assert s.ended_s is not None
        after = [(e.idx, e.stage) for e in store.epochs(s.id) if e.t_s >= s.ended_s]
        assert after == []


# -- supervision ------------------------------------------------------------------------------


def test_failing_radar_task_is_restarted_and_the_night_goes_on(
    tmp_path: Path, stager: Stager, caplog: pytest.LogCaptureFixture
) -> None:
    """The 3rd read raises; the supervisor logs it, waits 1 s (real time) and restarts."""
    fr = synthetic.frames(240.0)
    clock = VirtualClock(float(fr.t_s[0]))
    radar = FakeRadar(fr, fail_reads=frozenset({3}))
    caplog.set_level(logging.INFO, logger="appliance.daemon")
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _ = _daemon(_cfg(), clock, radar, store, stager)
        asyncio.run(asyncio.wait_for(d.run(), timeout=30.0))
        assert radar.starts == 2  # started again by the supervisor
        assert radar.pos == fr.n_frames  # every frame was still delivered
        assert clock.now() == pytest.approx(float(fr.t_s[-1]))
        failed = [r for r in caplog.records if "task radar failed" in r.getMessage()]
        assert len(failed) == 1
        assert failed[0].exc_info is not None  # logged with its traceback, not swallowed
        assert "radar source ended" in caplog.text
        (s,) = store.sessions()
        assert not s.is_open
        assert len(store.epochs(s.id)) >= 4


def test_alarm_rings_at_the_set_time_while_the_radar_always_fails(
    tmp_path: Path, stager: Stager, caplog: pytest.LogCaptureFixture
) -> None:
    """Fail-safe: the deadline needs nothing but the clock and the speaker."""
    clock = VirtualClock(SET_S - 120.0)
    radar = FakeRadar(None, always_fail=True)
    caplog.set_level(logging.INFO, logger="appliance")
    with Store.open(tmp_path / "s.sqlite") as store:
        d, speaker = _daemon(
            _cfg(time="07:00"), clock, radar, store, stager, tz=BERLIN, finite_source=False
        )

        async def main() -> None:
            task = asyncio.create_task(d.run())
            await _settle()
            assert d.alarm.next_ring_s == SET_S
            await clock.run_until(SET_S - 1.0)
            assert speaker.plays == []
            await clock.run_until(SET_S + 10.0)
            d.stop()
            await asyncio.wait_for(task, timeout=10.0)

        asyncio.run(main())
        assert radar.reads >= 1
        assert "task radar failed" in caplog.text
        assert speaker.plays[:3] == [SET_S, SET_S + 4.0, SET_S + 8.0]
        assert speaker.events[-1][1] == "stop"  # silenced when the daemon stopped
        ringing = [e for e in d.alarm_events if e.kind == "alarm_ringing"]
        assert len(ringing) == 1
        assert ringing[0].t_s == SET_S
        assert json.loads(ringing[0].detail)["reason"] == "deadline"
        # No session (nobody seen): the event is stored outside any session.
        assert store.sessions() == []
        assert "alarm_ringing" in [e.kind for e in store.events(None)]


def test_alarm_deadline_rings_after_a_finite_source_ends(tmp_path: Path, stager: Stager) -> None:
    """An empty room until 06:57: the daemon lets the pending alarm ring, then stops itself."""
    fr = synthetic.frames(120.0, people=(), t0_s=SET_S - 300.0)
    clock = VirtualClock(float(fr.t_s[0]))
    with Store.open(tmp_path / "s.sqlite") as store:
        d, speaker = _daemon(_cfg(time="07:00"), clock, FakeRadar(fr), store, stager, tz=BERLIN)
        asyncio.run(asyncio.wait_for(d.run(), timeout=30.0))
        assert speaker.plays[0] == SET_S
        assert d.alarm.last_ring_s == SET_S
        assert SET_S <= clock.now() <= SET_S + 10.0


class _BlockingRadar(FakeRadar):
    """A driver whose first read blocks until released (a real HAT waiting for its frames)."""

    def __init__(self) -> None:
        super().__init__(None)
        self.release = threading.Event()
        self.released: list[bool] = []

    def read(self, n_frames: int) -> RadarFrames | None:
        self.reads += 1
        self.released.append(self.release.wait(timeout=3.0))
        return None


def test_alarm_rings_while_a_radar_read_blocks(tmp_path: Path, stager: Stager) -> None:
    """With a real-time clock a blocking driver read must not freeze the loop (and the alarm).

    A scaled clock (5x) starts 1 s before the alarm; the read blocks for up to 3 s real time.
    Bounds are generous: a frozen loop would ring ~14 virtual seconds late.
    """
    clock = ScaledClock(SET_S - 1.0, speed=5.0)
    radar = _BlockingRadar()
    with Store.open(tmp_path / "s.sqlite") as store:
        speaker = SimulatedSpeaker(clock)
        d = Daemon(
            _cfg(time="07:00"),
            clock=clock,
            radar=radar,
            speaker=speaker,
            store=store,
            stager=stager,
            tz=BERLIN,
        )

        async def main() -> list[float]:
            task = asyncio.create_task(d.run())
            await asyncio.sleep(1.0)  # real time: 5 virtual seconds, the radar still blocked
            rang = list(speaker.plays)
            radar.release.set()
            await asyncio.sleep(0.05)
            d.stop()
            await asyncio.wait_for(task, timeout=10.0)
            return rang

        rang = asyncio.run(main())
        assert radar.released == [True]  # the loop kept running while read() blocked
        assert rang, "the alarm did not ring while the radar read blocked"
        assert SET_S <= rang[0] < SET_S + 10.0  # frozen, it would ring ~14 virtual s late


# -- stop and restart -------------------------------------------------------------------------


def _stop_mid_session(
    fr: RadarFrames, store: Store, stager: Stager, stop_after_reads: int
) -> tuple[Daemon, FakeRadar]:
    holder: dict[str, Daemon] = {}

    def on_read(k: int) -> None:
        if k == stop_after_reads:
            holder["d"].stop()

    clock = VirtualClock(float(fr.t_s[0]))
    radar = FakeRadar(fr, on_read=on_read)
    d, _ = _daemon(_cfg(), clock, radar, store, stager, finite_source=False)
    holder["d"] = d
    asyncio.run(asyncio.wait_for(d.run(), timeout=30.0))
    return d, radar


def test_stop_mid_session_is_clean(tmp_path: Path, stager: Stager) -> None:
    fr = synthetic.frames(300.0)
    with Store.open(tmp_path / "s.sqlite") as store:
        d, radar = _stop_mid_session(fr, store, stager, stop_after_reads=15)  # at 150 s
        assert radar.stops == 1  # standby: the radar itself is switched off
        assert 0 < radar.pos < fr.n_frames
        (s,) = store.sessions()
        assert d.status.session_id == s.id  # stopped mid-night: the session was in progress
        assert len(store.epochs(s.id)) >= 2
        assert store.integrity_ok()


def test_restart_after_a_stop_leaves_no_session_open_forever(
    tmp_path: Path, stager: Stager
) -> None:
    fr = synthetic.frames(300.0)
    cut = 150 * int(synthetic.FS_HZ)
    first, rest = synthetic.split(fr, cut)
    with Store.open(tmp_path / "s.sqlite") as store:
        # Stopped (SIGTERM) at 150 s, on the read that delivers the last frames before the cut.
        _, radar = _stop_mid_session(first, store, stager, stop_after_reads=15)
        assert radar.pos == first.n_frames
        assert store.open_session() is not None
        _run_finite(rest, store, stager)  # restarted on the same store, to the morning
        assert store.open_session() is None
        assert all(not s.is_open for s in store.sessions())


# -- `appliance run` as a real process ----------------------------------------------------------


class _Lines:
    """Collects a pipe's lines in a thread; `wait_for(text)` waits until one contains it."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._stream = stream
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self._stream:  # type: ignore[attr-defined]
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: any(text in x for x in self.lines), timeout)

    def join(self, timeout: float) -> str:
        self._thread.join(timeout)
        return "".join(self.lines)


def _run_until_started(
    args: list[str], sig: signal.Signals = signal.SIGINT
) -> tuple[int, str, str]:
    """Start `appliance ARGS` for real, wait for "daemon starting", signal it; (rc, err, out)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("STATE_DIRECTORY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        err = _Lines(proc.stderr)
        assert err.wait_for("daemon starting", timeout=30.0), err.join(1.0)
        assert proc.poll() is None
        proc.send_signal(sig)
        rc = proc.wait(timeout=15.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5.0)
    stderr = err.join(5.0)
    stdout = proc.stdout.read() if proc.stdout else ""
    return rc, stderr, stdout


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_appliance_run_stops_cleanly_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[simulator]\nscene = "asleep-at-once"\n', encoding="utf-8")
    data = tmp_path / "data"
    args = ["run", "--config", str(cfg), "--data-dir", str(data), "--speed", "50"]
    rc, stderr, stdout = _run_until_started(args, sig)
    assert rc == 0, stderr
    assert "Traceback" not in stderr + stdout
    assert "daemon stopped" in stderr
    assert "device radar" in stderr
    assert "device speaker" in stderr
    assert "scene=asleep-at-once" in stderr
    assert "speed=50x" in stderr
    with Store.open(data / "appliance.sqlite") as store:
        assert store.integrity_ok()


def test_appliance_run_starts_on_an_unusable_store_so_the_alarm_can_ring(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("", encoding="utf-8")
    args = ["run", "--data-dir", str(not_a_dir), "--speed", "50", "--scene", "empty-room"]
    rc, stderr, _ = _run_until_started(args)
    assert rc == 0, stderr
    assert "store unavailable" in stderr and "tonight is kept only in" in stderr
    assert "Traceback" not in stderr


def test_a_restart_mid_night_resumes_the_same_session(tmp_path: Path, stager: Stager) -> None:
    """Stopped at 150 s and restarted at once: one night, with the epochs of both runs."""
    fr = synthetic.frames(300.0, t0_s=1_800_000_000.0)
    cut = 150 * int(synthetic.FS_HZ)
    first, rest = synthetic.split(fr, cut)
    with Store.open(tmp_path / "s.sqlite") as store:
        _stop_mid_session(first, store, stager, stop_after_reads=15)
        (before,) = store.sessions()
        assert before.is_open
        n_before = len(store.epochs(before.id))
        _run_finite(rest, store, stager)
        (after,) = store.sessions()  # still one session: the night was resumed, not restarted
        assert after.id == before.id and not after.is_open
        assert len(store.epochs(after.id)) > n_before
        kinds = [e.kind for e in store.events(after.id)]
        assert "session_resumed" in kinds and "session_interrupted" not in kinds
        idx = [e.idx for e in store.epochs(after.id)]
        assert idx == sorted(set(idx))  # no epoch written twice


def test_a_session_older_than_the_close_time_is_closed_not_resumed(
    tmp_path: Path, stager: Stager
) -> None:
    fr = synthetic.frames(300.0, t0_s=1_800_000_000.0)
    cut = 150 * int(synthetic.FS_HZ)
    first, _ = synthetic.split(fr, cut)
    later = synthetic.frames(200.0, t0_s=1_800_000_000.0 + 4 * 3600.0)
    with Store.open(tmp_path / "s.sqlite") as store:
        _stop_mid_session(first, store, stager, stop_after_reads=15)
        _run_finite(later, store, stager)
        rows = store.sessions()
        assert len(rows) == 2 and all(not r.is_open for r in rows)
        old = min(rows, key=lambda r: r.started_s)
        assert "session_interrupted" in [e.kind for e in store.events(old.id)]


def test_a_radar_outage_restarts_the_chain_on_a_fresh_dsp(tmp_path: Path, stager: Stager) -> None:
    # The DSP's filters and windows belong to before the outage: joined to the frames after it
    # they would read a breath across the gap.
    from appliance.errors import RadarUnavailable

    fr = synthetic.frames(120.0)
    clock = VirtualClock(float(fr.t_s[0]))
    chains: list[object] = []

    def on_read(k: int) -> None:
        chains.append(d.pipeline)
        if k == 4:
            raise RadarUnavailable("radar", "unplugged (injected)")

    radar = FakeRadar(fr, on_read=on_read)
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _ = _daemon(_cfg(), clock, radar, store, stager)
        asyncio.run(asyncio.wait_for(d.run(), timeout=60.0))
    assert radar.starts == 2 and chains[4] is not chains[3] and chains[3] is chains[0]


def test_a_live_radar_that_ends_by_itself_is_an_outage_and_retried(
    tmp_path: Path, stager: Stager
) -> None:
    # A radar driver only ends when the daemon stops it; one that returns None by itself (a
    # driver that gave up) is reported unavailable and started again, not shown as a quiet
    # "ok" radar for the rest of the night.
    from appliance.clock import RealClock

    radar = FakeRadar(synthetic.frames(20.0, t0_s=1.0e9))  # long past: no pacing waits

    def unavailable(d: Daemon) -> bool:
        health = d.health.get("radar")
        return health is not None and health.status == "unavailable"

    async def main(d: Daemon) -> None:
        run = asyncio.create_task(d.run())
        for _ in range(200):  # the retry comes after 1 s of back-off
            await asyncio.sleep(0.05)
            if radar.starts >= 2 and unavailable(d):
                break
        d.stop()
        await asyncio.wait_for(run, timeout=10.0)
        assert radar.starts >= 2 and unavailable(d)
        health = d.health.get("radar")
        assert health is not None and "stopped delivering frames" in health.detail

    cfg = parse_config({"radar": {"type": "a121"}})
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _ = _daemon(cfg, RealClock(), radar, store, stager, finite_source=False)
        asyncio.run(main(d))
