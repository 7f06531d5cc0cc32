"""The MR60BHA2 as a pipeline input: twin bytes → decoder → front → presence → epochs → daemon.

The sleeper is the demo night's (hardware/radar/nights), rendered by the radar simulator's body
model (`Physiology`) and encoded by `Mr60Twin` into the module's literal frames; `TwinPort` serves
them as a serial port on a virtual clock, and can be unplugged. The stage labels of the night play
no part.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from scipy import signal as sps

from appliance.cli import main
from appliance.clock import VirtualClock
from appliance.config import Config, parse_config
from appliance.daemon import Daemon
from appliance.epochs import FEATURE_NAMES
from appliance.frames import ABSENT, EpochFeatures, RadarSecond, TrackedSecond
from appliance.module_front import MM_PER_RAD_60GHZ, ModuleFront
from appliance.pipeline import Pipeline
from appliance.runtime import check_simulator, radar_from_config
from appliance.staging import Stager
from appliance.store import Store
from hardware.radar.mr60bha2 import ModuleSecond, Mr60Radar, Mr60Twin, TwinPort
from hardware.radar.night import default_night_path, load_night
from hardware.radar.physiology import Physiology
from hardware.speaker import SimulatedSpeaker

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0
DURATION_S = 1500.0
FLAG_OFF = (T0 + 400.0, T0 + 600.0)
"""The module stops flagging the still sleeper (its known failure); the body stays."""
AWAY = (T0 + 900.0, T0 + 1100.0)
"""The sleeper is out of bed: the module says nobody and its phases are noise."""


@dataclass(frozen=True)
class Run:
    phys: Physiology
    readings: list[ModuleSecond]
    seconds: list[TrackedSecond]
    feats: list[EpochFeatures]


def _body(duration_s: float = DURATION_S, seed: int = 1) -> Physiology:
    night = load_night(default_night_path("sleeper"))
    return Physiology(night, np.random.default_rng(seed), frame_rate_hz=10.0, duration_s=duration_s)


@pytest.fixture(scope="module")
def run() -> Run:
    phys = _body()
    twin = Mr60Twin.from_physiology(phys, T0, distance_m=0.8, absent=(AWAY,), flag_off=(FLAG_OFF,))
    clock = VirtualClock(T0)
    port = TwinPort(twin, clock)
    src = Mr60Radar(clock, opener=port.opener())
    src.start()
    pipe = Pipeline(Config(), None)
    readings: list[ModuleSecond] = []
    seconds: list[TrackedSecond] = []
    feats: list[EpochFeatures] = []
    while clock.now() < T0 + DURATION_S - 20.0:
        got = src.read(10)
        assert got is not None
        readings += got
        s, f = pipe.features_from_module(got)
        seconds += s
        feats += f
    assert src.decoder.stats.rejected == 0 and src.decoder.stats.frames > 10 * len(readings)
    return Run(phys, readings, seconds, feats)


def _rel(s: TrackedSecond) -> float:
    return s.t_s - T0


def test_still_sleeper_stays_present_even_when_the_module_stops_flagging_him(run: Run) -> None:
    still = [s for s in run.seconds if 60.0 <= _rel(s) < AWAY[0] - T0]
    assert len(still) > 800
    share = sum(s.presence.present and s.user is not None for s in still) / len(still)
    assert share >= 0.995, share
    # While the module says nobody, presence rests on the breathing test alone.
    lost = [s for s in still if FLAG_OFF[0] - T0 <= _rel(s) < FLAG_OFF[1] - T0]
    assert len(lost) == 200
    assert all(s.presence.present and 0.5 <= s.presence.confidence <= 1.0 for s in lost)
    assert all(s.presence.state in ("still", "moving") for s in still)


def test_an_empty_room_shows_no_one_and_no_breathing_and_a_return_is_seen(run: Run) -> None:
    after = [s for s in run.seconds if _rel(s) >= AWAY[0] - T0]
    left_s = next(_rel(s) for s in after if not s.presence.present) - (AWAY[0] - T0)
    assert left_s <= 60.0, left_s  # held for the detector's hold time, then dropped
    empty = [s for s in after if AWAY[0] - T0 + 60.0 <= _rel(s) < AWAY[1] - T0]
    assert empty and not any(s.presence.present or s.user is not None for s in empty)
    back_s = next(_rel(s) for s in after if _rel(s) >= AWAY[1] - T0 and s.presence.present)
    # No entry movement in the twin: presence waits for the breathing test (its 30-s window).
    assert back_s - (AWAY[1] - T0) <= 45.0
    away_epochs = [f for f in run.feats if AWAY[0] + 60.0 <= f.t_s and f.t_s + 30.0 <= AWAY[1]]
    assert away_epochs and all(f.breath_rate_bpm is None for f in away_epochs)
    assert all(f.present_fraction == 0.0 for f in away_epochs)


def test_epochs_carry_the_modules_rates_and_distance(run: Run) -> None:
    full = [f for f in run.feats if f.present_fraction >= 0.9]
    assert len(full) >= 35
    t = np.array([f.t_s - T0 for f in full])
    br = np.array([f.breath_rate_bpm for f in full], float)
    hr = np.array([np.nan if f.heart_rate_bpm is None else f.heart_rate_bpm for f in full])
    br_err = np.abs(br - run.phys.breath_rate_bpm(t))
    hr_err = np.abs(hr - run.phys.heart_rate_bpm(t))
    assert np.nanmedian(br_err) < 1.0 and np.nanpercentile(br_err, 95) < 3.0
    # The module's heart rate reaches the epochs; no beat intervals exist, so no HRV.
    assert np.isfinite(hr).mean() >= 0.75 and np.nanmedian(hr_err) < 3.0
    assert all(f.distance_m == pytest.approx(0.8, abs=1e-6) for f in full)
    rr = [FEATURE_NAMES.index(k) for k in ("rr_sdnn_ms", "rr_rmssd_ms", "rr_dfa_a1")]
    assert all(math.isnan(f.values[i]) for f in run.feats for i in rr)
    assert all(s.beat_intervals_s == () for s in run.seconds)


def test_without_the_modules_rates_the_front_measures_breathing_itself() -> None:
    """The module's rates withheld (it sends 0 = no estimate): our spectrum and breaths."""
    phys = _body(900.0, seed=2)
    n_s = int(phys.duration_s)
    twin = Mr60Twin(
        t0_s=T0,
        fs_hz=phys.frame_rate_hz,
        breath_mm=phys.breath_waveform_mm,
        heart_mm=phys.heart_waveform_mm,
        total_mm=phys.displacement_mm,
        breath_rate_bpm=np.full(n_s, np.nan),
        heart_rate_bpm=np.full(n_s, np.nan),
    )
    clock = VirtualClock(T0)
    src = Mr60Radar(clock, opener=TwinPort(twin, clock).opener())
    src.start()
    front, pipe = ModuleFront(), Pipeline(Config(), None)
    feats: list[EpochFeatures] = []
    breaths = []
    while clock.now() < T0 + 880.0:
        rs = front.update(src.read(10) or [])
        breaths += [b for r in rs for b in r.breaths]
        feats += pipe.features_from_seconds(rs)[1]
    full = [f for f in feats if f.present_fraction >= 0.9 and f.breath_rate_bpm is not None]
    assert len(full) >= 25
    t = np.array([f.t_s - T0 for f in full])
    err = np.abs(np.array([f.breath_rate_bpm for f in full]) - phys.breath_rate_bpm(t))
    assert np.nanmedian(err) < 1.0 and np.nanpercentile(err, 95) < 3.0
    assert all(f.heart_rate_bpm is None for f in feats)  # nothing to make one from
    # Breath by breath: each interval against the true rate around it.
    on = np.array([b.onset_s - T0 for b in breaths])
    per = 60.0 / np.array([b.interval_s for b in breaths])
    assert len(breaths) > 100
    assert np.nanmedian(np.abs(per - phys.breath_rate_bpm(on - 15.0))) < 1.0


def test_the_10hz_waveform_follows_the_driving_breathing(run: Run) -> None:
    t: list[float] = []
    w: list[float] = []
    for s in run.seconds:
        if 60.0 <= _rel(s) < AWAY[0] - T0 and len(s.resp_waveform_mm) == 10:
            t += list(_rel(s) - 1.0 + np.arange(1, 11) / 10.0)
            w += list(s.resp_waveform_mm)
    assert len(w) > 8000
    # The same causal band-pass applied to the truth: what the front adds is resampling, units
    # and alignment, which must not cost correlation.
    sos = sps.butter(2, (0.1, 0.7), "bandpass", fs=10.0, output="sos")
    truth = np.interp(t, run.phys.t_s, sps.sosfilt(sos, run.phys.breath_waveform_mm))
    assert np.corrcoef(w, truth)[0, 1] >= 0.95
    raw = np.interp(t, run.phys.t_s, run.phys.breath_waveform_mm)
    assert np.corrcoef(w, raw)[0, 1] >= 0.85  # the filter's phase lag, no look-ahead


def _readings(n_s: int, *, rate_hz: int = 10, amp_rad: float = 5.0) -> list[ModuleSecond]:
    """A regular 15/min breathing phase with a 20 % longer expiration, for unit tests."""
    out = []
    for k in range(n_s):
        t = (np.arange(rate_hz) + 1) / rate_hz + k
        ph = amp_rad * np.sin(2 * np.pi * 0.25 * t + 0.3 * np.sin(2 * np.pi * 0.25 * t))
        z = np.zeros(rate_hz, np.float32)
        out.append(
            ModuleSecond(
                T0 + k + 1.0, True, 15.0, 60.0, 0.9, ph.astype(np.float32), z, ph.astype(np.float32)
            )
        )
    return out


def test_phase_is_converted_to_millimetres_at_60_ghz() -> None:
    out = ModuleFront().update(_readings(120))
    amp = out[-1].targets[0].resp_amp_mm
    # ~5 rad × λ/4π ≈ 2 mm amplitude, ≈ 1.4 mm RMS (the band-pass passes 0.25 Hz nearly whole).
    assert amp == pytest.approx(5.0 * MM_PER_RAD_60GHZ / math.sqrt(2.0), rel=0.1)
    assert out[-1].targets[0].breath_rate_bpm == 15.0  # the module's own rate when it has one
    assert out[-1].targets[0].breath_amp_mm == pytest.approx(2 * 5.0 * MM_PER_RAD_60GHZ, rel=0.1)


def test_output_is_the_same_whatever_the_chunking() -> None:
    rd = _readings(90)
    whole = ModuleFront().update(rd)
    front = ModuleFront()
    parts: list[RadarSecond] = []
    for a, b in ((0, 1), (1, 8), (8, 45), (45, 90)):
        parts += front.update(rd[a:b])
    assert len(parts) == len(whole) == 90
    for x, y in zip(whole, parts, strict=True):
        assert x.targets == y.targets and x.breaths == y.breaths
        np.testing.assert_array_equal(x.resp_waveform_mm, y.resp_waveform_mm)


def test_a_gap_restarts_the_stream_and_few_samples_still_work() -> None:
    rd = _readings(60, rate_hz=3)
    later = [
        ModuleSecond(r.t_s + 600.0, r.present, r.breath_rate_bpm, None, 0.9, r.breath_phase)
        for r in _readings(40, rate_hz=3)
    ]
    front = ModuleFront()
    out = front.update(rd)
    assert out[-1].targets[0].resp_quality > 0.5  # 3 phases a second carry a 15/min breath
    after = front.update(later)
    assert len(after) == 40
    # The 30-s window starts afresh after the gap: no stale breath statistics.
    assert math.isnan(after[5].targets[0].breath_interval_cv)
    assert after[5].targets[0].resp_quality == 0.0
    # No phase samples at all: a flat, breath-less second, and no crash.
    empty = ModuleSecond(T0 + 700.0, True, None, None, 0.9)
    (sec,) = front.update([empty])
    assert sec.targets[0].movement == 0.0


def test_no_distance_means_no_target() -> None:
    r = _readings(5)
    rd = [ModuleSecond(x.t_s, None, None, None, None, x.breath_phase) for x in r]
    assert all(s.targets == () for s in ModuleFront().update(rd))


# -- the pipeline entry and the stager --------------------------------------------------------
@pytest.fixture(scope="module")
def stager() -> Stager:
    return Stager()


def test_pipeline_stages_module_seconds_like_dsp_seconds(run: Run, stager: Stager) -> None:
    with pytest.raises(RuntimeError):
        Pipeline(Config(), None).update_module(run.readings[:5])
    pipe = Pipeline(Config(), stager)
    out = pipe.update_module(run.readings[:600])
    assert len(out.seconds) == 600
    staged = [e for e in out.epochs if e.features.present_fraction >= 0.9]
    assert staged and all(e.stage != ABSENT and sum(e.probs) > 0.99 for e in staged)
    # update_seconds is the same path for seconds a front already made.
    again = Pipeline(Config(), stager)
    front = ModuleFront()
    out2 = again.update_seconds(front.update(run.readings[:600]))
    assert [e.stage for e in out2.epochs] == [e.stage for e in out.epochs]
    np.testing.assert_array_equal(  # NaN where a feature is missing, in both
        [e.features.values for e in out2.epochs], [e.features.values for e in out.epochs]
    )


# -- the daemon, the runtime and the CLI ------------------------------------------------------
def test_daemon_runs_the_module_and_survives_an_unplugged_cable(
    tmp_path: Path, stager: Stager, caplog: pytest.LogCaptureFixture
) -> None:
    phys = _body(900.0)
    twin = Mr60Twin.from_physiology(phys, T0, distance_m=0.8)
    clock = VirtualClock(T0)
    unplugged = (T0 + 400.0, T0 + 430.0)
    port = TwinPort(twin, clock, unplugged=(unplugged,))
    cfg = parse_config({"radar": {"type": "mr60bha2"}, "session": {"start_after_s": 60.0}})
    radar = Mr60Radar(clock, opener=port.opener(), port=cfg.radar.serial_port)
    caplog.set_level(logging.INFO)
    health: list[tuple[float, str, str]] = []
    seconds: list[dict[str, Any]] = []
    with Store.open(tmp_path / "s.sqlite") as store:
        d = Daemon(
            cfg,
            clock=clock,
            radar=radar,
            speaker=SimulatedSpeaker(clock),
            store=store,
            stager=stager,
            tz=ZoneInfo("UTC"),
        )
        set_health = d.health.set

        def spy(part: str, status: Any, detail: str = "") -> None:
            if part == "radar":
                health.append((clock.now(), status, detail))
            set_health(part, status, detail)

        d.health.set = spy  # type: ignore[method-assign]

        async def main() -> None:
            sub = d.bus.subscribe({"second"}, maxsize=5000)
            task = asyncio.create_task(d.run())
            while clock.now() < T0 + 850.0 and not task.done():
                await asyncio.sleep(0)
                while (msg := sub.get_nowait()) is not None:
                    seconds.append({"t_s": msg.t_s, **msg.data})
            d.stop()
            await asyncio.wait_for(task, timeout=30.0)

        asyncio.run(main())
        sessions = store.sessions()
        epochs = store.epochs(sessions[0].id) if sessions else []
    statuses = [h[1] for h in health]
    assert "unavailable" in statuses, health
    first_bad = statuses.index("unavailable")
    assert "ok" in statuses[first_bad:], health  # it came back
    t_bad = health[first_bad][0]
    assert unplugged[0] <= t_bad <= unplugged[0] + 15.0
    assert "MR60BHA2 on /dev/serial0" in health[first_bad][2]
    t_ok = next(h[0] for h in health[first_bad:] if h[1] == "ok")
    assert unplugged[1] <= t_ok <= unplugged[1] + 70.0  # back-off 1, 2, 4 ... s
    assert not any(r.exc_info for r in caplog.records), "a traceback was logged"
    warnings = [r for r in caplog.records if "radar: unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one line per outage, not one per retry
    # Tracked seconds and presence before and after the outage, with the module's values.
    assert len(seconds) > 700
    before = [s for s in seconds if T0 + 90.0 <= s["t_s"] < unplugged[0]]
    after = [s for s in seconds if t_ok + 90.0 <= s["t_s"]]
    for part in (before, after):
        assert part and sum(s["presence"] for s in part) / len(part) >= 0.99
        assert all(s["distance_m"] == pytest.approx(0.8) for s in part if s["presence"])
        assert all(len(s["waveform_mm"]) == 10 for s in part if s["presence"])
    # Epochs in the store, staged, with a breath rate close to the driven one.
    assert sessions and sessions[0].source == "mr60bha2"
    scored = [e for e in epochs if e.present_fraction >= 0.9 and e.breath_rate_bpm is not None]
    assert len(scored) >= 10
    truth = run_truth(phys, [e.t_s - T0 for e in scored])
    err = np.abs(np.array([e.breath_rate_bpm for e in scored]) - truth)
    assert np.nanmedian(err) < 1.0
    assert all(e.stage != ABSENT for e in scored)


def run_truth(phys: Physiology, t: list[float]) -> np.ndarray:
    return np.asarray(phys.breath_rate_bpm(np.asarray(t, float)))


def test_runtime_opens_the_module_on_the_configured_port_and_config_check_accepts_it() -> None:
    cfg = parse_config(
        {"radar": {"type": "mr60bha2", "serial_port": "/dev/ttyAMA3", "serial_baud": 57600}}
    )
    check_simulator(cfg)  # `appliance config check` runs this: no refusal any more
    r = radar_from_config(cfg, VirtualClock(T0))
    assert isinstance(r, Mr60Radar)
    assert (r.port, r.baud, r.running) == ("/dev/ttyAMA3", 57600, False)


def test_config_check_accepts_and_record_refuses_the_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[radar]\ntype = "mr60bha2"\nserial_port = "/dev/ttyUSB0"\n')
    assert main(["config", "check", str(conf)]) == 0
    assert 'type = "mr60bha2"' in capsys.readouterr().out
    out = tmp_path / "x.npz"
    code = main(["record", "--config", str(conf), "--out", str(out), "--duration-s", "5"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "radar.type" in err and "MR60BHA2 gives no IQ" in err
    assert not out.exists()


def test_appliance_run_with_the_module_unplugged_reports_it_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    """The real command, on a port that does not exist: retried, reported, never a traceback."""
    conf = tmp_path / "config.toml"
    conf.write_text(
        '[radar]\ntype = "mr60bha2"\nserial_port = "/dev/does-not-exist-mr60"\n', encoding="utf-8"
    )
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("STATE_DIRECTORY", None)
    args = ["run", "--config", str(conf), "--data-dir", str(tmp_path / "data")]
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    watchdog = threading.Timer(60.0, proc.kill)  # a hung daemon ends the read loop below
    watchdog.start()
    try:
        assert proc.stderr is not None
        for line in proc.stderr:  # blocks line by line; the daemon logs as it goes
            lines.append(line)
            if "radar: unavailable" in line:
                break
        assert proc.poll() is None, "".join(lines)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20.0)
        lines += proc.stderr.readlines()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5.0)
    stderr = "".join(lines)
    assert rc == 0, stderr
    assert "MR60BHA2 on /dev/does-not-exist-mr60" in stderr
    assert "Traceback" not in stderr and "daemon stopped" in stderr
