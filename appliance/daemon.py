"""The asyncio daemon: wires drivers to stages, owns time and I/O, supervises tasks.

One named task per device/stage group (radar → pipeline → session → store; the alarm), each run
under a supervisor that logs a failure and restarts the task with exponential back-off, so one
failing part never takes the daemon down. The alarm task needs nothing but the clock and the
speaker: it rings at the set time even if the radar task is dead.

With a `VirtualClock` (`appliance simulate`) the radar task drives time: each batch of simulated
frames advances the clock to the batch's last frame, stepping every sleeper (the alarm's 1-s tick)
through its own instant, so a night runs as fast as the machine allows. With a real or scaled clock
a simulated source is paced to the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from appliance import alarm_schedule as sched
from appliance import notify
from appliance.alarm import AlarmTask
from appliance.bus import Bus
from appliance.clock import Clock, VirtualClock
from appliance.config import Config
from appliance.environment import EnvironmentMonitor, EnvironmentReading
from appliance.epochs import FEATURE_NAMES
from appliance.errors import RadarUnavailable, StoreError
from appliance.frames import EPOCH_S, SessionEvent, StagedEpoch, TrackedSecond, stage_name
from appliance.health import Health, ReportingSpeaker
from appliance.metrics import sleep_metrics
from appliance.pipeline import Pipeline
from appliance.report_data import session_hypnogram
from appliance.session import NightSummary, SessionTracker, SessionUpdate
from appliance.staging import Stager
from appliance.store import SessionRow, Store
from hardware.buttons import ButtonEvent, action_for, asyncio_sink
from hardware.light import LightController, LightMode
from hardware.radar.mr60bha2 import Mr60Radar
from hardware.radar.source import RadarSource
from hardware.speaker import Speaker

__all__ = ["EXPECT_USER_S", "Daemon", "DaemonStatus"]

log = logging.getLogger(__name__)

LEARNED_BED_KEY = "bed.learned_user_m"
"""Store setting: the user's still-breathing distance the tracker learned, metres."""
ENVIRONMENT_KEYS = ("temperature_c", "humidity_pct", "illuminance_lux")
_BATCH_S = 10.0
_BACKOFF_MAX_S = 60.0
EXPECT_USER_S = 1800.0
"""How long a restarted chain expects the user where they were last seen breathing, seconds."""


@dataclass(slots=True)
class DaemonStatus:
    """The latest values (the control API's and MQTT's status is made from them)."""

    second: TrackedSecond | None = None
    epoch: StagedEpoch | None = None
    session_id: int | None = None
    radar_ok: bool = False
    standby: bool = False
    environment: dict[str, float | None] = field(
        default_factory=lambda: dict.fromkeys(ENVIRONMENT_KEYS)
    )
    light_mode: str = "off"
    light_brightness: int | None = None


class Daemon:
    """The running appliance.

    Args:
        cfg: Validated configuration.
        clock: The clock (real, scaled or virtual).
        radar: The radar source (simulated or a driver), or the MR60BHA2 module (its seconds
            enter the pipeline after the DSP: `Pipeline.update_module`).
        speaker: The alarm's sound output.
        store: The open session store.
        stager: The loaded live stager.
        tz: Local time zone of alarms and reports.
        finite_source: True when the radar source ends (a simulated night); the daemon then
            finishes the session and stops by itself once the alarm has had its chance.
        environment: The bedroom sensors' monitor, or None without sensors.
        light: The LED ring's controller (sunrise, reading and night light), or None.
        button: Makes the device's button given where to send its presses (gpiozero on a Pi),
            or None without one. Called from the event loop; the presses may come from any
            thread.
        api_socket: Where to serve the control API (appliance/api.py); None = no API.
    """

    def __init__(
        self,
        cfg: Config,
        *,
        clock: Clock,
        radar: RadarSource | Mr60Radar,
        speaker: Speaker,
        store: Store,
        stager: Stager,
        tz: ZoneInfo,
        finite_source: bool = False,
        environment: EnvironmentMonitor | None = None,
        light: LightController | None = None,
        button: Callable[[Callable[[ButtonEvent], None]], object] | None = None,
        api_socket: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.clock = clock
        self.radar = radar
        self.store = store
        self.tz = tz
        self.finite_source = finite_source
        self.environment = environment
        self.light = light
        self._button_factory = button
        self.api_socket = api_socket
        self._learned_user_m = self._load_learned_bed()
        self.pipeline = Pipeline(cfg, stager, wall_grid=True, learned_user_m=self._learned_user_m)
        self.sessions = SessionTracker(cfg.session, tz)
        self._user_m: float | None = None  # where the user was last seen present, metres
        self.health = Health(clock)
        self.alarm = AlarmTask(
            clock,
            ReportingSpeaker(speaker, self.health),
            cfg.alarm,
            tz,
            on_event=self._on_alarm_event,
            on_armed=self._on_alarm_armed,
            store=store,
        )
        self.status = DaemonStatus()
        self.bus = Bus()
        self.health.set("radar", "starting", self.cfg.radar.type)
        self.health.set("speaker", "ok" if speaker.available() else "unavailable")
        self.health.set("store", "ok", str(store.path))
        self._standby_changed = asyncio.Event()
        self.summaries: list[tuple[int, NightSummary]] = []
        self.alarm_events: list[SessionEvent] = []
        self._session_id: int | None = None
        self._session_start_s: float | None = None
        self._store_failing = False
        self._last_epoch_idx: int | None = None
        """The latest epoch recorded (this run or, at start, the store's): the wall grid's
        high-water mark, so that a clock stepped back never writes an epoch twice."""
        self._clock_behind = False
        self._stop = asyncio.Event()

    # -- supervision ---------------------------------------------------------------------------
    async def _supervise(self, name: str, factory: Callable[[], Awaitable[None]]) -> None:
        delay = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if time.monotonic() - started > _BACKOFF_MAX_S:
                    delay = 1.0  # it had been healthy: a new failure starts the back-off afresh
                log.exception("task %s failed; restarting in %.0f s", name, delay)
                self.health.set(name, "failing", f"{e.__class__.__name__}: {e}")
                # Real time on purpose: a failing device is retried at a human pace.
                await asyncio.sleep(delay)
                delay = min(delay * 2.0, _BACKOFF_MAX_S)

    async def run(self) -> None:
        """Run until stopped (SIGTERM/SIGINT, `stop()`, or the end of a finite source)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)
        try:
            self._resume_or_close()
        except StoreError as e:
            # The night may be split, but the daemon (and the alarm) must start regardless.
            log.error("could not resume or close the previous session: %s", e)
        self._last_epoch_idx = self._latest_stored_epoch()
        try:
            self.status.standby = bool(self.store.setting("standby", False))
        except StoreError as e:
            log.error("could not read the standby setting (running): %s", e)
        if self.status.standby:
            log.info("in standby: the radar stays off until standby is turned off")
        log.info(
            "daemon starting radar=%s alarm=%s tz=%s",
            self.cfg.radar.type,
            self.cfg.alarm.time or "none",
            self.tz.key,
        )
        try:
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._supervise("radar", self._radar_task), name="radar"),
                    tg.create_task(self._supervise("alarm", self.alarm.run), name="alarm"),
                ]
                if self.light is not None:
                    lt = tg.create_task(self._supervise("light", self._light_task), name="light")
                    tasks.append(lt)
                if self.environment is not None:
                    env = tg.create_task(
                        self._supervise("environment", self._environment_task),
                        name="environment",
                    )
                    tasks.append(env)
                if self.api_socket is not None:
                    tasks.append(tg.create_task(self._supervise("api", self._api_task), name="api"))
                if self._button_factory is not None:
                    bt = tg.create_task(self._supervise("button", self._button_task), name="button")
                    tasks.append(bt)
                if self.cfg.mqtt.enabled:
                    tasks.append(tg.create_task(self._supervise("mqtt", self._mqtt_task)))
                tg.create_task(self._stopper(tasks), name="stopper")
                tg.create_task(self._systemd_task(), name="systemd")
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
            self.radar.stop()
            log.info("daemon stopped")

    async def _api_task(self) -> None:
        from appliance.api import ApiServer  # the daemon runs without it (tests, simulate)
        from appliance.control import Controller

        path = self.api_socket
        if path is None:
            return
        server = ApiServer(path, Controller(self), self.bus)
        await server.serve(on_ready=lambda: self.health.set("api", "ok", str(path)))

    def _resume_or_close(self) -> None:
        """Deal with sessions a previous run left open (a stop, a crash or a power cut).

        The latest one resumes if its last epoch is more recent than the absence that would have
        closed it (a restart at 3 a.m. is one night, with a gap); any other is closed at its last
        stored epoch.
        """
        while (row := self.store.open_session()) is not None:
            rows = self.store.epochs(row.id)
            last_end = rows[-1].t_s + EPOCH_S if rows else row.started_s
            gap = self.clock.now() - last_end
            # A clock behind the last epoch is not yet set (a Pi without an RTC boots with an old
            # time) or was stepped back: it cannot tell a long absence, so the night resumes.
            if rows and gap <= self.cfg.session.close_after_absent_s:
                if gap < 0.0:
                    log.warning(
                        "the clock is %.0f s behind the last stored epoch (not set yet?)", -gap
                    )
                self.sessions.resume([r.to_staged(FEATURE_NAMES) for r in rows])
                seen = [r.distance_m for r in rows[-20:] if r.distance_m is not None]
                if seen:
                    self._user_m = float(np.median(seen))
                    self._expect_the_user()
                self._session_id = row.id
                self._session_start_s = row.started_s
                self.status.session_id = row.id
                detail = json.dumps({"gap_s": round(gap, 1)})
                self.store.add_event(
                    row.id, SessionEvent(self.clock.now(), "session_resumed", detail)
                )
                log.info("session %d resumed after a %.0f-s gap", row.id, gap)
                return
            self._close_one(row)

    def _close_one(self, row: SessionRow) -> None:
        t0, hyp = session_hypnogram(self.store, row)
        end_s = t0 + len(hyp) * EPOCH_S if len(hyp) else row.started_s
        metrics = sleep_metrics(hyp)
        self.store.add_event(row.id, SessionEvent(end_s, "session_interrupted"))
        self.store.close_session(row.id, end_s, {"interrupted": True, "metrics": metrics.to_dict()})
        log.warning(
            "session %d was left open by the previous run: closed at its last epoch", row.id
        )

    def stop(self) -> None:
        """Ask the daemon to stop cleanly."""
        log.info("stop requested")
        notify.stopping()
        self._stop.set()

    async def _stopper(self, tasks: list[asyncio.Task[None]]) -> None:
        await self._stop.wait()
        for task in tasks:
            if not task.done():
                task.cancel()

    async def _systemd_task(self) -> None:
        """READY=1 once the tasks run, then WATCHDOG=1 at half systemd's interval.

        The pings come from this task on the event loop, so a loop blocked by a stuck stage or
        call stops them and systemd restarts the service. Real time on purpose: systemd's
        watchdog counts real seconds, whatever the daemon's clock.
        """
        interval_s = notify.watchdog_interval_s()
        if not notify.ready("running") or interval_s is None:
            return  # not under systemd (or no watchdog): nothing to keep alive
        while not self._stop.is_set():
            notify.watchdog()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval_s / 2.0)

    # -- the radar chain -----------------------------------------------------------------------
    # -- status ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Everything a status request answers, JSON-ready (the control API's `status`).

        Live values are None when nobody is seen, in standby, or before the first second.
        """
        sec = self.status.second
        user = None if sec is None else sec.user
        ep = self.status.epoch
        ring_s = self.alarm.next_ring_s
        if self.status.standby:
            state = "standby"
        elif self.status.session_id is not None or self._session_start_s is not None:
            state = "in_bed"
        else:
            state = "monitoring"
        return {
            "t_s": self.clock.now(),
            "presence": None if sec is None else sec.presence.present,
            "presence_confidence": None if sec is None else round(sec.presence.confidence, 3),
            "presence_state": None if sec is None else sec.presence.state,
            "session": {"state": state, "id": self.status.session_id},
            "stage": None if ep is None else stage_name(ep.stage),
            "breath_rate": None if user is None else user.breath_rate_bpm,
            "heart_rate": None if user is None else user.heart_rate_bpm,
            "distance_m": None if user is None else round(user.distance_m, 3),
            "environment": dict(self.status.environment),
            "next_alarm": None
            if ring_s is None
            else datetime.fromtimestamp(ring_s, self.tz).isoformat(timespec="seconds"),
            "next_alarm_s": ring_s,
            "standby": self.status.standby,
            "alarm": self._main_alarm(),
            "light": {"mode": self.status.light_mode, "brightness": self.status.light_brightness},
            "devices": self.health.to_dict(),
        }

    def _main_alarm(self) -> dict[str, Any]:
        """The alarm Home Assistant's alarm entities show and set (`alarm_schedule.main_alarm`)."""
        try:
            rows = sched.describe_store(self.store, self.tz, self.clock.now())
        except StoreError:
            rows = []  # a store that cannot be read shows no alarm; the ring path has its own
        return sched.main_alarm(rows)

    # -- the button ----------------------------------------------------------------------------
    async def _button_task(self) -> None:
        """Turn the button's presses into actions (action_for: snooze/dismiss while ringing)."""
        if self._button_factory is None:
            return
        queue: asyncio.Queue[ButtonEvent] = asyncio.Queue(maxsize=32)
        button = self._button_factory(asyncio_sink(asyncio.get_running_loop(), queue))
        self.health.set("button", "ok")
        try:
            while not self._stop.is_set():
                self.on_button(await queue.get())
        finally:
            close = getattr(button, "close", None)
            if callable(close):
                close()

    def on_button(self, ev: ButtonEvent) -> None:
        """Act on one press: the product's only physical control. Never raises."""
        a = self.alarm.alarm
        ringing = a is not None and a.state in ("ringing", "snoozed")
        action = action_for(ev.kind, ringing=ringing)
        log.info("button %s press: %s", ev.kind, action)
        try:
            if action == "snooze":
                if not self.alarm.snooze():
                    self.alarm.dismiss()  # already snoozed: a press means "I am up"
            elif action == "dismiss":
                self.alarm.dismiss()
            elif action == "light_toggle":
                if self.light is not None:
                    self.set_light(self.light.toggle(), None)
            else:
                self.set_standby(not self.status.standby)
        except Exception:
            log.exception("button action %s failed", action)

    # -- the light -----------------------------------------------------------------------------
    async def _light_task(self) -> None:
        """Show the light: the sunrise the alarm arms (`_on_alarm_armed`), the user's modes."""
        light = self.light
        if light is None:
            return
        virtual = isinstance(self.clock, VirtualClock)
        try:
            while not self._stop.is_set():
                st = light.update(self.clock.now())
                self.health.set(
                    "light", "ok" if st.health.ok else "failing", st.health.last_error or ""
                )
                # Nobody watches a simulated night: a coarser pace keeps it fast.
                await self.clock.sleep(5.0 if virtual else light.update_interval_s)
        finally:
            light.close()

    # -- the bedroom ---------------------------------------------------------------------------
    async def _environment_task(self) -> None:
        """Sample the bedroom sensors every interval; a faulty sensor costs only its value."""
        mon = self.environment
        if mon is None:
            return
        virtual = isinstance(self.clock, VirtualClock)
        while not self._stop.is_set():
            now = self.clock.now()
            # A real light sensor blocks ~1.5 s while it auto-ranges in the dark.
            r = mon.sample(now) if virtual else await asyncio.to_thread(mon.sample, now)
            self._on_environment(r)
            await self.clock.sleep(mon.interval_s)

    def _room_lux(self) -> float | None:
        """The bedroom's own light for sleep intent: the sensor minus what our ring emits.

        The sunrise (or the reading light) must not look like the user's lamp: while the ring
        is lit, its estimated contribution at the sensor is taken off; when the ring outshines
        the room so much that nothing reliable is left, the input pauses (None).
        """
        lux = self.status.environment.get("illuminance_lux")
        if lux is None or self.light is None:
            return lux
        emitted = self.light.emitted_lux_estimate
        if emitted <= 0.0:
            return lux
        rest = lux - emitted
        return rest if rest > 0.5 * lux else None

    def _on_environment(self, r: EnvironmentReading) -> None:
        values = {
            "temperature_c": r.temperature_c,
            "humidity_pct": r.humidity_pct,
            "illuminance_lux": r.lux,
        }
        self.status.environment = values
        log.info(
            "environment temperature=%s humidity=%s light=%s",
            "-" if r.temperature_c is None else f"{r.temperature_c:.1f} °C",
            "-" if r.humidity_pct is None else f"{r.humidity_pct:.0f} %",
            "-" if r.lux is None else f"{r.lux:.2f} lx",
        )
        for h in r.health:
            self.health.set(f"{h.role}:{h.sensor}", h.state, h.last_error or "")
        self.bus.publish("environment", r.t_s, {**values, "pressure_hpa": r.pressure_hpa})
        if self.status.standby:
            return  # standby records nothing
        try:
            for row in r.rows():
                self.store.add_environment(r.t_s, *row)
        except StoreError as e:
            if not self._store_failing:
                log.error("store unavailable: %s", e)
                self._store_failing = True
                self.health.set("store", "unavailable", str(e))

    # -- standby -----------------------------------------------------------------------------
    @property
    def standby(self) -> bool:
        """True while the radar is off at the source and nothing is recorded."""
        return self.status.standby

    def set_standby(self, on: bool) -> None:
        """Turn standby on or off; kept across restarts. The alarm rings in standby too."""
        if on == self.status.standby:
            return
        self.status.standby = on
        self._standby_changed.set()
        log.info("standby %s", "on" if on else "off")
        try:
            self.store.set_setting("standby", on)
        except StoreError as e:
            log.error("standby %s is not kept across a restart: %s", "on" if on else "off", e)
        self.bus.publish("standby", self.clock.now(), {"on": on})

    # -- the light's mode, MQTT -------------------------------------------------------------
    def set_light(self, mode: LightMode, brightness: int | None) -> None:
        """Switch the light's user mode (validated by the caller) and announce it on the bus."""
        self.status.light_mode = mode
        self.status.light_brightness = brightness
        if self.light is not None:
            self.light.set_mode(mode)
        log.info("light mode=%s brightness=%s", mode, brightness)
        self.bus.publish("light", self.clock.now(), {"mode": mode, "brightness": brightness})

    async def _mqtt_task(self) -> None:
        from appliance.control import Controller
        from appliance.mqtt import MqttBridge, device_id

        bridge = MqttBridge(
            self.cfg.mqtt,
            bus=self.bus,
            controller=Controller(self),
            snapshot=self.snapshot,
            device_id=device_id(self.store),
        )
        await bridge.run()

    async def _wait_standby_change(self) -> None:
        self._standby_changed.clear()
        await self._standby_changed.wait()

    # -- the radar chain -----------------------------------------------------------------------
    async def _radar_task(self) -> None:
        """Run the radar chain; a radar that is gone is retried with back-off, never fatal.

        `RadarUnavailable` (server down, serial port unplugged, silent link, or a driver whose
        stream ended by itself) marks the radar "unavailable" in health (logged once per
        outage, no traceback) and the source is started again after 1, 2, 4 ... 60 s; once it
        starts again it is "ok".
        """
        delay = 1.0
        while not self._stop.is_set():
            started = self.clock.now()
            try:
                await self._radar_chain()
                return
            except RadarUnavailable as e:
                if self.clock.now() - started > _BACKOFF_MAX_S:
                    delay = 1.0  # it had been working: a new outage starts the back-off afresh
                self.radar.stop()
                self.status.radar_ok = False
                self.status.second = None
                self._restart_pipeline()
                self.health.set("radar", "unavailable", f"{e}; retrying in {delay:.0f} s")
                if isinstance(self.clock, VirtualClock):
                    await self.clock.run_until(self.clock.now() + delay)  # the radar drives it
                else:
                    await asyncio.sleep(delay)  # real time: a device is retried at a human pace
                delay = min(delay * 2.0, _BACKOFF_MAX_S)

    async def _radar_chain(self) -> None:
        radar = self.radar
        # A module reports whole seconds; a radar, frames.
        n = int(_BATCH_S) if isinstance(radar, Mr60Radar) else round(_BATCH_S * radar.frame_rate_hz)
        virtual = isinstance(self.clock, VirtualClock)
        while not self._stop.is_set() and self.status.standby:
            self.health.set("radar", "off", "standby")
            await self._wait_standby_change()
        self.radar.start()
        self.status.radar_ok = True
        self.health.set("radar", "ok", self.cfg.radar.type)
        while not self._stop.is_set():
            if self.status.standby:
                self._enter_standby()
                while self.status.standby and not self._stop.is_set():
                    await self._wait_standby_change()
                if self._stop.is_set():
                    return
                self._restart_pipeline()
                self.radar.start()
                self.status.radar_ok = True
                self.health.set("radar", "ok", self.cfg.radar.type)
                continue
            # A real driver blocks until its frames arrive: keep it off the event loop.
            frames = self.radar.read(n) if virtual else await asyncio.to_thread(self.radar.read, n)
            if frames is None:
                if self.cfg.radar.type != "simulated" and not self._stop.is_set():
                    # A radar driver only ends when stopped: one that ends by itself is an
                    # outage, retried, not a quiet radar shown "ok" (a simulated scene ends).
                    raise RadarUnavailable(self.cfg.radar.type, "stopped delivering frames")
                break
            if self.status.standby:
                continue  # frames read before standby was noticed are dropped, not recorded
            if isinstance(frames, list):  # the module's seconds (MR60BHA2)
                if not frames:
                    continue
                t_last = frames[-1].t_s
            else:
                t_last = float(frames.t_s[-1])
            if isinstance(self.clock, VirtualClock):
                await self.clock.run_until(t_last)
            elif (wait := t_last - self.clock.now()) > 0:
                # A simulated source renders ahead of time: deliver its frames at the clock's pace.
                await self.clock.sleep(wait)
            lux = self._room_lux()
            out = (
                self.pipeline.update_module(frames, lux)
                if isinstance(frames, list)
                else self.pipeline.update(frames, lux)
            )
            for sec in out.seconds:
                self._on_second(sec)
                self.alarm.feed_second(sec)
            for ep in out.epochs:
                self._on_epoch(ep)
        if self._stop.is_set():
            return
        for ep in self.pipeline.flush().epochs:
            self._on_epoch(ep)
        self._apply(self.sessions.flush())
        log.info("radar source ended")
        if self.finite_source:
            await self._finish_virtual_night()

    async def _finish_virtual_night(self) -> None:
        """Let a pending alarm ring (its deadline path), then stop."""
        if isinstance(self.clock, VirtualClock):
            ring = self.alarm.next_ring_s
            if ring is not None and self.alarm.last_ring_s is None:
                await self.clock.run_until(ring + 5.0)
        self.stop()

    def _enter_standby(self) -> None:
        """Switch the radar off at the source and close what was being recorded."""
        self.radar.stop()
        self.status.radar_ok = False
        self.health.set("radar", "off", "standby")
        self.status.second = None
        self.status.epoch = None
        for ep in self.pipeline.flush().epochs:
            self._on_epoch(ep)
        self._apply(self.sessions.flush())

    def _restart_pipeline(self) -> None:
        """Start a fresh chain after a pause (standby, a radar outage).

        The DSP's filters and windows belong to before the pause: joined to new frames they
        would read a breath across the gap. The epoch in progress is kept as far as it got.
        """
        for ep in self.pipeline.flush().epochs:
            self._on_epoch(ep)
        self.pipeline = Pipeline(
            self.cfg, self.pipeline.stager, wall_grid=True, learned_user_m=self._learned_user_m
        )
        self._expect_the_user()

    def _expect_the_user(self) -> None:
        """In a night in progress, tell a fresh chain where the user was last seen breathing.

        A still, apnoeic sleeper's breathing can take presence many minutes to confirm from
        scratch (benchmarks/README.md, scenes); minutes after they were seen there, plausible
        breathing at that distance is enough.
        """
        if self.sessions.active and self._user_m is not None:
            self.pipeline.presence.expect(self._user_m, EXPECT_USER_S)

    def _on_second(self, sec: TrackedSecond) -> None:
        self.status.second = sec
        u = sec.user
        if u is not None and sec.presence.present:
            self._user_m = u.distance_m
        self.bus.publish(
            "second",
            sec.t_s,
            {
                "presence": sec.presence.present,
                "presence_confidence": round(sec.presence.confidence, 3),
                "presence_state": sec.presence.state,
                "breath_rate": None if u is None else u.breath_rate_bpm,
                "heart_rate": None if u is None else u.heart_rate_bpm,
                "distance_m": None if u is None else round(u.distance_m, 3),
                "movement": None if u is None else u.movement,
                "others": sec.others,
                # On-device display only (API, TUI); the MQTT bridge never forwards it.
                "waveform_mm": list(sec.resp_waveform_mm),
            },
        )

    def _on_epoch(self, ep: StagedEpoch) -> None:
        self.status.epoch = ep
        f0 = ep.features
        self.bus.publish(
            "epoch",
            ep.t_s,
            {
                "index": ep.index,
                "stage": stage_name(ep.stage),
                "present_fraction": f0.present_fraction,
                "breath_rate": f0.breath_rate_bpm,
                "heart_rate": f0.heart_rate_bpm,
                "distance_m": f0.distance_m,
            },
        )
        f = ep.features
        log.info(
            "epoch %d stage=%s present=%.2f breath=%s hr=%s distance=%s",
            ep.index,
            stage_name(ep.stage),
            f.present_fraction,
            "-" if f.breath_rate_bpm is None else f"{f.breath_rate_bpm:.1f}/min",
            "-" if f.heart_rate_bpm is None else f"{f.heart_rate_bpm:.0f}/min",
            "-" if f.distance_m is None else f"{f.distance_m:.2f} m",
        )
        self.alarm.feed(ep)
        if not self._on_the_grid(ep):
            return
        self._apply(self.sessions.update(ep))

    def _on_the_grid(self, ep: StagedEpoch) -> bool:
        """False for an epoch at or before the latest one recorded: the clock went back.

        After a step back (NTP) or a boot with an old clock, the wall time repeats a span that is
        already recorded; those epochs are neither stored nor given to the session (rewriting
        the span would mix two passes of the clock), so a step back costs at most its own
        length of the record, never a duplicate. The alarm still gets them: it runs on the
        corrected clock.
        """
        last = self._last_epoch_idx
        if last is not None and ep.index == last:
            # The rest of an epoch a pause (standby, a radar outage) flushed early: already kept.
            return False
        if last is not None and ep.index < last:
            if not self._clock_behind:
                self._clock_behind = True
                behind_s = (last - ep.index) * EPOCH_S
                log.warning(
                    "clock is %.0f s behind the last recorded epoch (stepped back or not set): "
                    "not recording until it passes it",
                    behind_s,
                )
                self.health.set(
                    "clock", "failing", f"behind the last recorded epoch by {behind_s:.0f} s"
                )
            return False
        if self._clock_behind:
            self._clock_behind = False
            log.info("clock past the last recorded epoch: recording again")
            self.health.set("clock", "ok")
        self._last_epoch_idx = ep.index
        return True

    def _latest_stored_epoch(self) -> int | None:
        """Index of the latest session's last stored epoch, or None (none, or the store fails)."""
        try:
            latest = self.store.sessions(limit=1)
            rows = self.store.epochs(latest[0].id) if latest else []
        except StoreError as e:
            log.warning("could not read the last stored epoch: %s", e)
            return None
        return rows[-1].idx if rows else None

    def _load_learned_bed(self) -> float | None:
        """The user's distance the tracker learned on past nights (store setting), or None."""
        try:
            v = self.store.setting(LEARNED_BED_KEY)
        except StoreError as e:
            log.warning("could not read the learned bed location: %s", e)
            return None
        return float(v) if isinstance(v, (int, float)) else None

    def _save_learned_bed(self) -> None:
        learned = self.pipeline.tracker.learned_user_m
        if learned is None:
            return
        self._learned_user_m = learned
        try:
            self.store.set_setting(LEARNED_BED_KEY, round(learned, 3))
        except StoreError as e:
            log.warning("could not store the learned bed location: %s", e)

    def _apply(self, up: SessionUpdate) -> None:
        """Store what the session tracker decided; a failing store costs data, never the night."""
        if up.started_s is not None:
            self._session_start_s = up.started_s
            self.bus.publish("session", up.started_s, {"state": "in_bed"})
        elif up.state is not None and up.state != "monitoring" and up.events:
            self.bus.publish("session", up.events[-1].t_s, {"state": up.state})
        for ev in up.events:
            self._log_event(ev)
        try:
            if self._session_id is None and self._session_start_s is not None:
                # Lazily, so that a store that failed at the start still gets the session later.
                self._session_id = self.store.start_session(
                    self._session_start_s, tz=self.tz.key, source=self.cfg.radar.type
                )
                self.status.session_id = self._session_id
                log.info("session %d started", self._session_id)
            sid = self._session_id
            if sid is not None:
                for ep in up.epochs:
                    self.store.add_epoch(sid, ep, FEATURE_NAMES)
                for ev in up.events:
                    self.store.add_event(sid, ev)
                if up.closed is not None:
                    self.store.close_session(sid, up.closed.end_s, up.closed.to_dict())
                    self.summaries.append((sid, up.closed))
            if self._store_failing:
                log.info("store available again")
                self._store_failing = False
                self.health.set("store", "ok", str(self.store.path))
        except StoreError as e:
            if not self._store_failing:
                log.error("store unavailable: %s", e)
                self._store_failing = True
                self.health.set("store", "unavailable", str(e))
        if up.closed is not None:
            m = up.closed.metrics
            log.info("session closed tib=%.0f min tst=%.0f min", m.tib_min, m.tst_min)
            summary = {"session_id": self._session_id, **up.closed.to_dict()}
            self.bus.publish("night", up.closed.end_s, summary)
            self.bus.publish("session", up.closed.end_s, {"state": "monitoring"})
            self._save_learned_bed()
            self._session_id = None
            self._session_start_s = None
            self.status.session_id = None

    def _on_alarm_armed(self, set_s: float | None) -> None:
        if self.light is not None:
            # The sunrise ends at the set time, even when a smart ring comes earlier.
            if set_s is None:
                self.light.cancel_sunrise()
            else:
                self.light.arm_sunrise(set_s)
        self.bus.publish("alarm", self.clock.now(), {"next_alarm_s": set_s})

    def _on_alarm_event(self, ev: SessionEvent) -> None:
        self.alarm_events.append(ev)
        self._log_event(ev)
        if self.light is not None and ev.kind in ("alarm_dismissed", "alarm_missed"):
            self.light.dismiss()
        try:
            self.store.add_event(self._session_id, ev)
        except Exception:
            # The alarm must never depend on the store.
            log.exception("could not store alarm event %s", ev.kind)

    def _log_event(self, ev: SessionEvent) -> None:
        log.info("event %s %s", ev.kind, ev.detail)
        try:
            detail = json.loads(ev.detail) if ev.detail else {}
        except ValueError:
            detail = {"text": ev.detail}
        self.bus.publish("event", ev.t_s, {"kind": ev.kind, "detail": detail})
