"""The internal bus, the health registry, standby and the controller's commands."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import pytest
import synthetic
from test_daemon import BERLIN, SET_S, UTC, FakeRadar, _cfg, _daemon, _run_finite, _settle

from appliance.bus import Bus
from appliance.clock import VirtualClock
from appliance.control import STATUS_FIELDS, CommandError, Controller
from appliance.epochs import FEATURE_NAMES
from appliance.health import Health
from appliance.staging import Stager
from appliance.store import Store


@pytest.fixture(scope="module")
def stager() -> Stager:
    return Stager()


# -- the bus ----------------------------------------------------------------------------------


def test_bus_delivers_by_topic_and_drops_the_oldest_for_a_slow_reader() -> None:
    async def go() -> None:
        bus = Bus()
        everything = bus.subscribe()
        events = bus.subscribe(["event"], maxsize=2)
        for i in range(3):
            bus.publish("event", float(i), {"kind": f"k{i}"})
        bus.publish("second", 9.0, {"presence": True})
        # The slow reader kept the newest two events and counted the loss.
        assert events.dropped == 1
        assert [(await events.get()).data["kind"] for _ in range(2)] == ["k1", "k2"]
        assert events.get_nowait() is None
        topics = [m.topic for m in iter(everything.get_nowait, None)]
        assert topics == ["event", "event", "event", "second"]
        everything.close()
        events.close()
        assert bus.subscribers == 0
        bus.publish("event", 10.0, {})  # nobody listening: nothing happens

    asyncio.run(go())


def test_bus_rejects_unknown_topics() -> None:
    bus = Bus()
    with pytest.raises(ValueError, match="unknown bus topic"):
        bus.publish("nonsense", 0.0, {})
    with pytest.raises(ValueError, match="unknown bus topics"):
        bus.subscribe(["second", "nonsense"])


def test_health_logs_a_change_once_and_keeps_its_start_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = VirtualClock(100.0)
    h = Health(clock)
    h.set("radar", "ok")
    clock.advance(100.0)
    with caplog.at_level("WARNING"):
        for _ in range(5):
            h.set("radar", "failing", "OSError: gone")
    assert len([r for r in caplog.records if "radar: failing" in r.message]) == 1
    entry = h.get("radar")
    assert entry is not None and entry.status == "failing" and entry.since_s == 200.0
    assert h.to_dict()["radar"]["detail"] == "OSError: gone"


# -- the daemon publishes ---------------------------------------------------------------------


def test_a_night_reaches_the_bus_seconds_epochs_events_and_the_summary(
    tmp_path: Path, stager: Stager
) -> None:
    fr = synthetic.frames(300.0, absent=((200.0, 300.0),))
    clock = VirtualClock(float(fr.t_s[0]))
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _ = _daemon(_cfg(), clock, FakeRadar(fr), store, stager)
        sub = d.bus.subscribe(maxsize=10_000)
        asyncio.run(asyncio.wait_for(d.run(), timeout=60.0))
        msgs = list(iter(sub.get_nowait, None))
    by_topic: dict[str, list[dict[str, object]]] = {}
    for m in msgs:
        json.dumps(m.data)  # every payload is JSON-ready
        by_topic.setdefault(m.topic, []).append(dict(m.data))
    assert 290 <= len(by_topic["second"]) <= 300
    assert any(s["presence"] and s["breath_rate"] for s in by_topic["second"])
    # The user's 10-Hz breathing trace, for the device's own display.
    waves = [s["waveform_mm"] for s in by_topic["second"] if s["waveform_mm"]]
    assert len(waves) > 100 and all(len(w) == 10 for w in waves)
    assert max(max(w) - min(w) for w in waves) > 0.5  # a chest moving by millimetres
    assert by_topic["second"][-1]["presence"] is False
    assert len(by_topic["epoch"]) >= 8
    assert {e["stage"] for e in by_topic["epoch"]} <= {
        "wake",
        "light",
        "deep",
        "rem",
        "absent",
        "unscored",
    }
    kinds = [e["kind"] for e in by_topic["event"]]
    assert kinds[0] == "in_bed" and "session_closed" in kinds
    states = [s["state"] for s in by_topic["session"]]
    assert states[0] == "in_bed" and states[-1] == "monitoring"
    (night,) = by_topic["night"]
    assert night["session_id"] == d.summaries[0][0]


def test_snapshot_has_the_documented_fields(tmp_path: Path, stager: Stager) -> None:
    fr = synthetic.frames(120.0)
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _, _ = _run_finite(fr, store, stager, _cfg(time="07:00"))
        snap = d.snapshot()
    json.dumps(snap)
    assert set(STATUS_FIELDS) <= set(snap)
    assert snap["presence"] is True
    assert snap["breath_rate"] == pytest.approx(15.0, abs=1.0)
    assert set(snap["environment"]) == {"temperature_c", "humidity_pct", "illuminance_lux"}
    assert snap["standby"] is False
    assert snap["devices"]["radar"]["status"] == "ok"
    assert snap["devices"]["store"]["status"] == "ok"


# -- standby ----------------------------------------------------------------------------------


def test_standby_reads_no_frame_writes_no_epoch_and_the_alarm_still_rings(
    tmp_path: Path, stager: Stager
) -> None:
    fr = synthetic.frames(600.0, t0_s=SET_S - 300.0)
    clock = VirtualClock(SET_S - 300.0)
    radar = FakeRadar(fr)
    with Store.open(tmp_path / "s.sqlite") as store:
        store.set_setting("standby", True)  # left in standby by the previous run
        d, speaker = _daemon(_cfg(time="07:00"), clock, radar, store, stager, tz=BERLIN)

        async def go() -> None:
            task = asyncio.create_task(d.run())
            await _settle()
            await clock.run_until(SET_S + 5.0)
            d.stop()
            await asyncio.wait_for(task, 10.0)

        asyncio.run(go())
        assert radar.reads == 0 and radar.starts == 0
        assert store.sessions() == []
        assert speaker.plays and speaker.plays[0] == pytest.approx(SET_S, abs=1.0)
        assert d.snapshot()["devices"]["radar"]["status"] == "off"


def test_standby_switches_the_radar_off_and_back_on_and_survives_a_restart(
    tmp_path: Path, stager: Stager
) -> None:
    fr = synthetic.frames(400.0)
    clock = VirtualClock(float(fr.t_s[0]))
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _ = _daemon(_cfg(), clock, FakeRadar(fr), store, stager)
        radar = d.radar
        assert isinstance(radar, FakeRadar)
        ctl = Controller(d)
        seen: list[int] = []
        radar.on_read = lambda k: (seen.append(k), k == 25 and ctl.set_standby(True))

        async def go() -> None:
            task = asyncio.create_task(d.run())
            for _ in range(200):
                await _settle()
            reads_in_standby = radar.reads
            for _ in range(200):
                await _settle()
            assert radar.reads == reads_in_standby  # not one read while in standby
            assert radar.stops == 1
            assert ctl.status()["standby"] is True
            assert store.setting("standby") is True
            (s,) = store.sessions()
            assert not s.is_open  # the night was closed when standby went on
            n_epochs = len(store.epochs(s.id))
            ctl.set_standby(False)
            await asyncio.wait_for(task, 30.0)
            assert radar.starts == 2
            assert store.setting("standby") is False
            assert all(len(store.epochs(x.id)) for x in store.sessions())
            assert len(store.epochs(s.id)) == n_epochs

        asyncio.run(go())
        assert seen[-1] > 25


def test_controller_rejects_bad_input_with_one_line(tmp_path: Path, stager: Stager) -> None:
    fr = synthetic.frames(60.0, people=())  # an empty room: no night yet, however fast presence
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _, _ = _run_finite(fr, store, stager)
        ctl = Controller(d)
        for bad in ("on", 1, None):
            with pytest.raises(CommandError, match="true or false"):
                ctl.set_standby(bad)  # type: ignore[arg-type]
        with pytest.raises(CommandError, match="no alarm is ringing"):
            ctl.dismiss()
        with pytest.raises(CommandError, match="limit"):
            ctl.nights(0)
        with pytest.raises(CommandError, match="no night yet"):
            ctl.night()
        with pytest.raises(CommandError, match="no such night"):
            ctl.night(42)
        assert ctl.nights() == []


def test_controller_reports_the_last_nights(tmp_path: Path, stager: Stager) -> None:
    fr = synthetic.frames(300.0)
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _, _ = _run_finite(fr, store, stager)
        ctl = Controller(d)
        (n,) = ctl.nights()
        assert n["summary"]["metrics"]["tib_min"] > 3.0
        rep = ctl.night()
        json.dumps(rep)
        assert rep == ctl.night(n["session_id"])
    assert datetime.fromtimestamp(n["started_s"], UTC).year >= 2023


# -- the button -------------------------------------------------------------------------------


def test_button_presses_snooze_dismiss_toggle_the_light_and_standby(
    tmp_path: Path, stager: Stager
) -> None:
    from appliance.config import LightConfig
    from appliance.runtime import light_from_config
    from hardware.buttons import ButtonEvent

    clock = VirtualClock(SET_S - 3600.0)  # before the sunrise
    sinks: list[object] = []
    with Store.open(tmp_path / "s.sqlite") as store:
        d, speaker = _daemon(
            _cfg(time="07:00", window_min=0.0),
            clock,
            FakeRadar(None),
            store,
            stager,
            tz=BERLIN,
            finite_source=False,
        )
        d.light = light_from_config(LightConfig(), clock)
        d._button_factory = lambda sink: sinks.append(sink) or object()

        async def go() -> None:
            task = asyncio.create_task(d.run())
            await _settle(50)
            (press,) = sinks
            press(ButtonEvent("short", clock.now(), 0.2))  # not ringing: the reading light
            await _settle(50)
            assert d.snapshot()["light"]["mode"] == "reading"
            press(ButtonEvent("short", clock.now(), 0.2))  # and off again
            await _settle(50)
            assert d.snapshot()["light"]["mode"] == "off"
            await clock.run_until(SET_S + 2.0)
            assert speaker.plays  # ringing
            press(ButtonEvent("short", clock.now(), 0.2))  # snooze
            await _settle(50)
            assert d.alarm.alarm is not None and d.alarm.alarm.state == "snoozed"
            press(ButtonEvent("long", clock.now(), 2.0))  # dismiss
            await _settle(50)
            assert d.alarm.alarm is None or d.alarm.alarm.state == "dismissed"
            press(ButtonEvent("long", clock.now(), 2.0))  # not ringing: standby
            await _settle(50)
            assert d.standby and store.setting("standby") is True
            d.stop()
            await asyncio.wait_for(task, 10.0)

        asyncio.run(go())


# -- a store that fails (disk full, read-only) --------------------------------------------------


def test_a_failing_store_costs_data_not_sensing_or_the_alarm_and_recovers(
    tmp_path: Path, stager: Stager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.errors import StoreError

    fr = synthetic.frames(600.0, t0_s=SET_S - 400.0)
    clock = VirtualClock(SET_S - 400.0)
    full = {"on": True}
    health: list[str] = []
    with Store.open(tmp_path / "s.sqlite") as store:

        def on_read(k: int) -> None:
            if k == 35:  # 340 s in: the disk has been full since the start
                health.append(str(d.snapshot()["devices"]["store"]["status"]))
                full["on"] = False  # space is back

        radar = FakeRadar(fr, on_read=on_read)
        d, speaker = _daemon(
            _cfg(time="07:00", window_min=0.0), clock, radar, store, stager, tz=BERLIN
        )
        real_add_epoch = store.add_epoch

        def add_epoch(*args: object, **kwargs: object) -> None:
            if full["on"]:
                raise StoreError("database or disk is full")
            real_add_epoch(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(store, "add_epoch", add_epoch)
        seconds = d.bus.subscribe(["second"], maxsize=10_000)
        asyncio.run(asyncio.wait_for(d.run(), timeout=60.0))
        assert health == ["unavailable"]
        assert d.snapshot()["devices"]["store"]["status"] == "ok"
        assert speaker.plays and speaker.plays[0] == pytest.approx(SET_S, abs=1.0)
        assert len(list(iter(seconds.get_nowait, None))) >= 590  # sensing went on throughout
        (s,) = store.sessions()
        assert len(store.epochs(s.id)) >= 5  # the epochs after the recovery are kept


def test_the_rest_of_a_flushed_epoch_is_not_a_clock_step(tmp_path: Path, stager: Stager) -> None:
    # Standby (or a radar outage) flushes the epoch in progress; back on within the same 30 s,
    # the fresh chain completes that epoch again. It is dropped quietly; only an epoch before
    # the last recorded one means the clock went back.
    fr = synthetic.frames(120.0)
    with Store.open(tmp_path / "s.sqlite") as store:
        d, _, _ = _run_finite(fr, store, stager)
        last = d._last_epoch_idx
        assert last is not None
        again = next(e for s in store.sessions() for e in store.epochs(s.id) if e.idx == last)
        assert d._on_the_grid(again.to_staged(FEATURE_NAMES)) is False
        assert d.snapshot()["devices"].get("clock", {"status": "ok"})["status"] == "ok"
        earlier = next(e for s in store.sessions() for e in store.epochs(s.id) if e.idx < last)
        assert d._on_the_grid(earlier.to_staged(FEATURE_NAMES)) is False
        assert d.snapshot()["devices"]["clock"]["status"] == "failing"
