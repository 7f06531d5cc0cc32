"""Scenes are data: who is in the bedroom, where, when, and which recorded night drives them.

A `Scene` lists its actors on a scene timeline (seconds from the scene start):

- `Person`: a body at `distance_m` from the radar (the chest; the abdomen and legs follow), in bed
  during its `presence` intervals [arrive_s, leave_s). It walks in from out of range over the
  `walk_s` seconds before each arrival and out over the `walk_s` after each leave. Its signal on
  each stretch of scene time comes from a `Segment`: a `Driver` (a recorded night, or the
  synthetic awake-in-bed body) and which part of that driver's own time maps to the stretch.
  While a person is away the recording's clock keeps running.
- `Pet`: the same for a cat (synthetic "pet" body).
- `MovingClutter`: a fan or curtain: a reflector with periodic displacement, no breathing.
- `StaticReflector`: furniture and walls.
- `SceneLight`: the bedroom's light over the scene (lamp, TV flicker, dark), which the simulated
  light sensor follows (`hardware.environment.fakes.BedroomNight`). Like the bodies, it is scripted
  from the scene's times, never from the expert stage labels.

`build_scene(name, ...)` makes the named scenes of `SCENES`. The sleeper's recording starts at a
scene time chosen so that `recording_start_s + night.epoch0_offset_s` is a multiple of 30 s: the
device's 30-s epochs from the scene start then coincide with the experts' epochs. The recording's
start is the scene's intent time ("trying to sleep"). Scene construction never reads the expert
stage labels (they are truth only; `SimulatedRadar.truth` reads them).

References:
    Acconeer AB (2023). A121 Pulsed Coherent Radar datasheet, and the A121 sparse IQ service
    documentation (Acconeer Exploration Tool handbook): range bins ("points"), profiles.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hardware.radar.night import Night, default_night_path, load_night
from hardware.radar.physiology import Mode, Physiology

__all__ = [
    "LIGHT_LUX",
    "SCENES",
    "SETTLE_S",
    "Actor",
    "Driver",
    "MovingClutter",
    "Person",
    "Pet",
    "Scene",
    "SceneLight",
    "SceneSpec",
    "Segment",
    "StaticReflector",
    "build_scene",
]

logger = logging.getLogger(__name__)

_EPOCH_S = 30.0
SETTLE_S = 6.0
"""Seconds over which a person's hand-over between drivers (awake → recording) is blended."""


@dataclass(frozen=True)
class Driver:
    """How to build a body's `Physiology`; built lazily at the radar's frame rate.

    Attributes:
        mode: "sleeper" (driven by `night`), "awake" (awake in bed; `night`, if given, is the
            heart-rate reference) or "pet".
        seed: Seed words of the physiology's random generator.
        night: The recorded night, or None.
        duration_s: Length of a synthetic body, seconds (None for a sleeper: its night's length).
    """

    mode: Mode
    seed: tuple[int, ...]
    night: Night | None = None
    duration_s: float | None = None

    def build(self, frame_rate_hz: float) -> Physiology:
        """Return the physiology on a grid at `frame_rate_hz` (cached per driver and rate).

        Args:
            frame_rate_hz: Radar frame rate, Hz.

        Returns:
            The physiology.
        """
        return _build_physiology(self, float(frame_rate_hz))


# Small: one 8-h body model is ~50 MB; the cache only spares re-building the same scene twice.
@functools.lru_cache(maxsize=2)
def _build_physiology(driver: Driver, frame_rate_hz: float) -> Physiology:
    return Physiology(
        driver.night,
        np.random.default_rng(list(driver.seed)),
        frame_rate_hz=frame_rate_hz,
        mode=driver.mode,
        duration_s=driver.duration_s,
    )


@dataclass(frozen=True)
class Segment:
    """A stretch [start_s, end_s) of scene time driven by one `Driver`.

    Scene time t maps to driver time t - start_s + source_start_s.

    Attributes:
        start_s: Scene time where the stretch starts, seconds.
        end_s: Scene time where it ends (exclusive), seconds.
        driver: The body model.
        source_start_s: Driver time at `start_s`, seconds (0 = start of the recording).
    """

    start_s: float
    end_s: float
    driver: Driver
    source_start_s: float = 0.0

    def to_source(self, t_s: np.ndarray | float) -> np.ndarray:
        """Map scene times to driver times, seconds."""
        return np.asarray(t_s, dtype=np.float64) - self.start_s + self.source_start_s


@dataclass(frozen=True)
class Person:
    """A person in (or walking to and from) the bed.

    Attributes:
        name: "user" or "partner".
        role: "user" (the primary user, scored) or "partner".
        distance_m: Chest distance from the radar while in bed, metres.
        presence: In-bed intervals [arrive_s, leave_s) in scene time, sorted, disjoint.
        segments: Contiguous stretches covering presence ± walk_s.
        walk_s: Duration of walking in/out of range, seconds.
        reflectivity: Chest reflection amplitude at 1 m (amplitude ∝ 1/d²), radar units.
        approach_m: How much farther the body starts (ends) a walk in (out), metres.
        night: The recorded night driving the person, or None.
        recording_start_s: Scene time of the recording's start, seconds, or None.
    """

    name: str
    role: Literal["user", "partner"]
    distance_m: float
    presence: tuple[tuple[float, float], ...]
    segments: tuple[Segment, ...]
    walk_s: float = 4.0
    reflectivity: float = 0.49
    approach_m: float = 1.9
    night: Night | None = None
    recording_start_s: float | None = None


@dataclass(frozen=True)
class Pet:
    """A cat on the bed.

    Attributes:
        name: "cat".
        distance_m: Distance from the radar, metres.
        presence: On-bed intervals [arrive_s, leave_s), scene seconds.
        segments: Stretches covering presence ± walk_s (mode "pet").
        walk_s: Jump on/off duration, seconds.
        reflectivity: Reflection amplitude at 1 m, radar units.
        approach_m: Extra distance at the start of a jump on, metres.
    """

    name: str
    distance_m: float
    presence: tuple[tuple[float, float], ...]
    segments: tuple[Segment, ...]
    walk_s: float = 1.5
    reflectivity: float = 0.15
    approach_m: float = 0.3


@dataclass(frozen=True)
class MovingClutter:
    """A non-living moving reflector (fan, curtain), present for the whole scene.

    Displacement (m) = sway_mm/1000 · (1 + 0.3·irregularity·w1(t)) · sin(2π t/sway_period_s +
    irregularity·w2(t)) + vibration_mm/1000 · sin(2π vibration_hz t), with w1, w2 slow random
    walks; amplitude = reflectivity/d² · (1 − amplitude_mod · (0.5 + 0.5 cos(2π t/sway_period_s))).

    Attributes:
        name: "fan" or "curtain".
        distance_m: Mean distance, metres.
        reflectivity: Reflection amplitude at 1 m, radar units.
        sway_mm: Peak slow displacement, mm.
        sway_period_s: Period of the slow motion, seconds.
        irregularity: 0 (strictly periodic) … 1 (wandering phase and amplitude).
        amplitude_mod: Depth of the periodic reflection change, 0–1.
        vibration_mm: Peak fast vibration (blades), mm.
        vibration_hz: Vibration frequency, Hz (may alias at the frame rate, as on the real radar).
        damping: 0: the slow motion is the (quasi-)periodic sway above (a fan's oscillating
            head, driven by a crank). > 0: it is a damped oscillator at 1/sway_period_s with this
            damping ratio, driven by random air flow (a curtain: a cloth pendulum pushed by a
            draught), whose RMS is sway_mm/√2; `irregularity` is then unused.
    """

    name: str
    distance_m: float
    reflectivity: float
    sway_mm: float
    sway_period_s: float
    irregularity: float = 0.0
    amplitude_mod: float = 0.0
    vibration_mm: float = 0.0
    vibration_hz: float = 0.0
    damping: float = 0.0


@dataclass(frozen=True)
class StaticReflector:
    """A still reflector (furniture, wall).

    Attributes:
        distance_m: Distance, metres.
        amplitude: Reflection amplitude at that distance, radar units (0.3–3).
        phase_rad: Extra phase (surface), radians.
    """

    distance_m: float
    amplitude: float
    phase_rad: float = 0.0


Actor = Person | Pet | MovingClutter

LightKind = Literal["lamp", "tv", "dark", "hall"]
LIGHT_LUX: dict[str, float] = {"lamp": 150.0, "dark": 0.02, "hall": 15.0, "tv": 20.0}
"""Typical illuminance at the device of each light, lx ("tv" is the mean of its flicker)."""


@dataclass(frozen=True)
class SceneLight:
    """The bedroom light over a scene: intervals of lamp, TV, dark or hall light.

    A bedside lamp gives ~150 lx at the device; a TV in a dark room flickers between ~5 and
    ~50 lx with the picture (a new level every 1–4 s); the dark room is ~0.02 lx (a standby LED,
    street light through curtains); a hall or bathroom light through the door ~15 lx.

    Attributes:
        intervals: (start_s, end_s, kind) in scene time, sorted and disjoint.
        default: The light outside every interval.
        seed: Seed of the TV's flicker.
    """

    intervals: tuple[tuple[float, float, LightKind], ...]
    default: LightKind = "lamp"
    seed: int = 0

    def kind_at(self, t_s: float) -> LightKind:
        """Return which light is on at scene time `t_s`, seconds."""
        for a, b, kind in self.intervals:
            if a <= t_s < b:
                return kind
        return self.default

    def lux_at(self, t_s: float) -> float:
        """Return the illuminance at the device at scene time `t_s`, lx (deterministic)."""
        kind = self.kind_at(t_s)
        if kind != "tv":
            return LIGHT_LUX[kind]
        # A scene cut every ~2.5 s: a log-uniform level in [5, 50] lx, fixed per cut.
        slot = int(math.floor(t_s / 2.5))
        u = np.random.default_rng([self.seed, slot & 0x7FFFFFFF]).uniform()
        return float(5.0 * 10.0**u)


@dataclass(frozen=True)
class Scene:
    """A scripted bedroom.

    Attributes:
        name: Scene name (a key of `SCENES`, or custom).
        duration_s: Length, seconds.
        actors: People, pets and moving clutter.
        clutter: Static reflectors.
        noise_sigma: Standard deviation of the complex white noise per component, radar units.
        seed: Seed of the scene's own randomness (gait, clutter motion).
        recording_start_s: Scene time where the user's recording starts, seconds, or None.
        intent_s: Scene time where the user starts trying to sleep, seconds, or None.
        description: What happens.
        light: The bedroom light over the scene, or None (the clock-hour bedroom model).
    """

    name: str
    duration_s: float
    actors: tuple[Actor, ...]
    clutter: tuple[StaticReflector, ...]
    noise_sigma: float = 0.02
    seed: int = 0
    recording_start_s: float | None = None
    intent_s: float | None = None
    description: str = ""
    light: SceneLight | None = None

    @property
    def user(self) -> Person | None:
        """The primary user, or None (empty room)."""
        for a in self.actors:
            if isinstance(a, Person) and a.role == "user":
                return a
        return None


@dataclass(frozen=True)
class SceneSpec:
    """The recipe of a named scene.

    Attributes:
        description: What happens.
        occupied: Whether the user is in the scene at all.
        fan: Add a fan and a moving curtain.
        arrive_s: Scene time the user gets into bed, seconds.
        awake_before_s: Range of awake-in-bed time before the recording starts, seconds.
        bathroom: Whether the user leaves for 5–10 min at 55 % of the recording.
        partner_after_intent_s: Partner gets into bed this long after the user's intent, or None.
        cat_after_intent_s: A cat jumps on the bed this long after the intent, or None.
        cat_duration_s: How long the cat stays, seconds.
        tail_s: How long the scene lasts after the user's final leave, seconds.
        pre_sleep_light: The light while awake in bed before the intent: a lamp (reading), the
            TV with the lights off, or dark.
        partner_arrive_s: Scene time the partner gets into bed (overrides
            `partner_after_intent_s`), or None.
        partner_leave_after_user_s: The partner leaves this long after the user's final leave
            (negative: before), seconds; None = at the end of the partner's recording.
    """

    description: str
    occupied: bool = True
    fan: bool = False
    arrive_s: float = 60.0
    awake_before_s: tuple[float, float] = (1800.0, 3600.0)
    bathroom: bool = False
    partner_after_intent_s: float | None = None
    cat_after_intent_s: float | None = None
    cat_duration_s: float = 1200.0
    tail_s: float = 600.0
    pre_sleep_light: LightKind = "lamp"
    partner_arrive_s: float | None = None
    partner_leave_after_user_s: float | None = None


SCENES: dict[str, SceneSpec] = {
    "empty-room": SceneSpec("Nobody: static furniture, walls and noise.", occupied=False),
    "empty-room-fan": SceneSpec(
        "Nobody, but an oscillating fan and a curtain it moves.", occupied=False, fan=True
    ),
    "reading-then-sleep": SceneSpec(
        "Walks in at ~60 s, reads awake in bed 30–60 min, then the recorded night (trying to sleep"
        " at its start); gets up at its end; the scene ends 10 min later."
    ),
    "asleep-at-once": SceneSpec(
        "Walks in at ~60 s and the recorded night starts about a minute later.",
        awake_before_s=(45.0, 75.0),
    ),
    "bathroom-trip": SceneSpec(
        "reading-then-sleep, plus 5–10 min away from bed from 55 % of the recording.",
        bathroom=True,
    ),
    "partner-late": SceneSpec(
        "reading-then-sleep, plus a partner (another recorded night) at ~1.5 m who comes to bed"
        " 45 min after the user's intent time.",
        partner_after_intent_s=2700.0,
    ),
    "cat": SceneSpec(
        "reading-then-sleep, plus a cat on the bed at ~1.0 m for 20 min from 2 h after intent.",
        cat_after_intent_s=7200.0,
    ),
    "reading-20": SceneSpec(
        "Reads 20 min in bed with the lamp on, then lights out and the recorded night.",
        awake_before_s=(1200.0, 1200.0),
    ),
    "reading-45": SceneSpec(
        "Reads 45 min in bed with the lamp on, then lights out and the recorded night.",
        awake_before_s=(2700.0, 2700.0),
    ),
    "reading-90": SceneSpec(
        "Reads 90 min in bed with the lamp on, then lights out and the recorded night.",
        awake_before_s=(5400.0, 5400.0),
    ),
    "tv-in-bed": SceneSpec(
        "Watches TV in bed 40–60 min with the lights off (5–50 lx flicker), then the TV goes off"
        " and the recorded night starts.",
        awake_before_s=(2400.0, 3600.0),
        pre_sleep_light="tv",
    ),
    "partner-first": SceneSpec(
        "A partner (another recorded night) at ~1.5 m goes to bed at ~1 min and falls asleep in"
        " the dark; the user comes at ~30 min, reads 10–20 min, then the recorded night.",
        arrive_s=1800.0,
        awake_before_s=(600.0, 1200.0),
        partner_arrive_s=60.0,
    ),
    "user-leaves-first": SceneSpec(
        "reading-then-sleep with a partner from 10 min after the intent who stays in bed 20 min"
        " after the user gets up.",
        partner_after_intent_s=600.0,
        partner_leave_after_user_s=1200.0,
        tail_s=1800.0,
    ),
    "user-leaves-last": SceneSpec(
        "reading-then-sleep with a partner from 5 min after the intent who gets up 30 min before"
        " the user.",
        partner_after_intent_s=300.0,
        partner_leave_after_user_s=-1800.0,
    ),
    "fan": SceneSpec(
        "reading-then-sleep with an oscillating fan and a curtain moving in the room.", fan=True
    ),
}


def _align(t_s: float, epoch0_offset_s: float) -> float:
    """Smallest time >= t_s with t + epoch0_offset_s a multiple of 30 s."""
    return math.ceil((t_s + epoch0_offset_s) / _EPOCH_S - 1e-9) * _EPOCH_S - epoch0_offset_s


def _round30(t_s: float) -> float:
    return round(t_s / _EPOCH_S) * _EPOCH_S


def _room_clutter(rng: np.random.Generator) -> tuple[StaticReflector, ...]:
    """Nightstand edge and lamp near the radar, bed frame, wardrobe and wall far away."""
    two_pi = 2 * np.pi
    return (
        StaticReflector(rng.uniform(0.32, 0.40), rng.uniform(1.0, 3.0), rng.uniform(0, two_pi)),
        StaticReflector(rng.uniform(0.44, 0.52), rng.uniform(0.3, 0.8), rng.uniform(0, two_pi)),
        StaticReflector(rng.uniform(1.05, 1.20), rng.uniform(0.3, 0.6), rng.uniform(0, two_pi)),
        StaticReflector(rng.uniform(1.70, 1.80), rng.uniform(0.8, 2.0), rng.uniform(0, two_pi)),
        StaticReflector(rng.uniform(1.90, 2.00), rng.uniform(1.5, 3.0), rng.uniform(0, two_pi)),
    )


def _fan_and_curtain(rng: np.random.Generator) -> tuple[MovingClutter, ...]:
    """An oscillating fan and a curtain in its draught.

    The fan's head sweeps with a crank (0.05–0.2 Hz, strictly periodic, its reflection changing
    as it turns) and its blades spin at 5–20 rev/s with a few blades, vibrating the housing; the
    blade line aliases at the 20-Hz frame rate, as it does on the real radar. The curtain is a
    cloth pendulum (period 2–5 s, damping ratio 0.1–0.3) driven by the random draught.
    """
    return (
        MovingClutter(
            "fan",
            distance_m=rng.uniform(1.25, 1.40),
            reflectivity=rng.uniform(0.25, 0.4),
            sway_mm=rng.uniform(10.0, 25.0),
            sway_period_s=rng.uniform(5.0, 20.0),
            irregularity=0.02,
            amplitude_mod=rng.uniform(0.5, 0.8),
            vibration_mm=rng.uniform(0.1, 0.4),
            vibration_hz=rng.uniform(5.0, 20.0) * rng.integers(1, 4),
        ),
        MovingClutter(
            "curtain",
            distance_m=rng.uniform(1.55, 1.68),
            reflectivity=rng.uniform(0.4, 0.8),
            sway_mm=rng.uniform(3.0, 10.0),
            sway_period_s=rng.uniform(2.0, 5.0),
            amplitude_mod=0.2,
            damping=rng.uniform(0.1, 0.3),
        ),
    )


def _sleeper_segments(
    night: Night,
    seed: tuple[int, ...],
    *,
    first_s: float,
    rec_start_s: float,
    scene_end_s: float,
    walk_s: float,
    last_leave_s: float | None = None,
) -> tuple[Segment, ...]:
    """Awake in bed from `first_s`, the recording from `rec_start_s`, awake again after it."""
    segs = []
    if rec_start_s > first_s:
        awake = Driver("awake", (*seed, 1), night, rec_start_s - first_s + SETTLE_S)
        segs.append(Segment(first_s, rec_start_s, awake))
    rec_end = rec_start_s + night.duration_s
    segs.append(
        Segment(rec_start_s, min(rec_end, scene_end_s), Driver("sleeper", (*seed, 2), night))
    )
    if rec_end < scene_end_s:
        tail = walk_s + 2.0
        if last_leave_s is not None:
            tail = max(tail, last_leave_s - rec_end + walk_s + 2.0)
        segs.append(Segment(rec_end, rec_end + tail, Driver("awake", (*seed, 3), night, tail)))
    return tuple(segs)


def _sleeper_person(
    role: Literal["user", "partner"],
    night: Night,
    seed: tuple[int, ...],
    *,
    distance_m: float,
    presence: tuple[tuple[float, float], ...],
    arrive_s: float,
    rec_start_s: float,
    walk_s: float,
    scene_end_s: float,
    reflectivity: float,
    last_leave_s: float | None = None,
) -> Person:
    """A person in bed driven by a recorded night (the user, or a partner)."""
    return Person(
        name=role,
        role=role,
        distance_m=distance_m,
        presence=presence,
        segments=_sleeper_segments(
            night,
            seed,
            first_s=arrive_s - walk_s - 1.0,
            rec_start_s=rec_start_s,
            scene_end_s=scene_end_s,
            walk_s=walk_s,
            last_leave_s=last_leave_s,
        ),
        walk_s=walk_s,
        reflectivity=reflectivity,
        night=night,
        recording_start_s=rec_start_s,
    )


def _scene_light(
    spec: SceneSpec,
    presence: tuple[tuple[float, float], ...],
    arrive_s: float,
    rec_start_s: float,
    rec_end_s: float,
    seed: tuple[int, ...],
) -> SceneLight:
    """Script the scene's light from its times.

    Lamp (or TV, or dark) from getting into bed to the intent, dark for the night, the hall light
    during an absence, the lamp again from the final getting-up.
    """
    before: LightKind = "dark" if spec.partner_arrive_s is not None else "lamp"
    pre = spec.pre_sleep_light
    ivs: list[tuple[float, float, LightKind]] = [(0.0, arrive_s, before)]
    ivs.append((arrive_s, rec_start_s, pre))
    night_ivs: list[tuple[float, float, LightKind]] = []
    t = rec_start_s
    for (_, leave), (back, _) in itertools.pairwise(presence):
        night_ivs += [(t, leave, "dark"), (leave, back, "hall")]
        t = back
    night_ivs.append((t, rec_end_s, "dark"))
    ivs.extend(iv for iv in night_ivs if iv[1] > iv[0])
    kept = tuple(iv for iv in ivs if iv[1] > iv[0])
    return SceneLight(kept, "lamp", zlib.crc32(repr(seed).encode()))


def build_scene(
    name: str,
    sleeper: Night | None,
    partner: Night | None,
    seed: int,
    *,
    empty_duration_s: float = 8 * 3600.0,
    spec: SceneSpec | None = None,
) -> Scene:
    """Build a named scene.

    Args:
        name: A key of `SCENES`.
        sleeper: The user's recorded night; None = the shipped default (slpdb slp61).
        partner: The partner's recorded night; None = the shipped default (slpdb slp04).
        seed: Scene seed (times, distances, bodies), >= 0.
        empty_duration_s: Length of the empty-room scenes, seconds.
        spec: A recipe to use instead of `SCENES[name]` (a variant of a named scene, e.g. with
            shorter delays for a test); `name` still seeds the scene.

    Returns:
        The scene.

    Raises:
        KeyError: Unknown scene name.
        DataError: A default night file cannot be loaded.
    """
    if spec is None:
        if name not in SCENES:
            raise KeyError(f"unknown scene {name!r}; known: {', '.join(SCENES)}")
        spec = SCENES[name]
    base = (int(seed), zlib.crc32(name.encode()))
    rng = np.random.default_rng(list(base))
    clutter = _room_clutter(rng)
    moving: tuple[MovingClutter, ...] = _fan_and_curtain(rng) if spec.fan else ()

    if not spec.occupied:
        return Scene(
            name=name,
            duration_s=float(empty_duration_s),
            actors=moving,
            clutter=clutter,
            seed=int(seed),
            description=spec.description,
        )

    night = sleeper if sleeper is not None else load_night(default_night_path("sleeper"))
    walk = rng.uniform(3.0, 6.0)
    arrive = spec.arrive_s + rng.uniform(-5.0, 5.0)
    rec_start = _align(arrive + rng.uniform(*spec.awake_before_s), night.epoch0_offset_s)
    rec_end = rec_start + night.duration_s
    duration = rec_end + walk + spec.tail_s
    presence: list[tuple[float, float]] = [(arrive, rec_end)]
    if spec.bathroom:
        away = _round30(rec_start + 0.55 * night.duration_s)
        back = away + _round30(rng.uniform(300.0, 600.0))
        presence = [(arrive, away), (back, rec_end)]
    user = _sleeper_person(
        "user",
        night,
        (*base, 1),
        distance_m=rng.uniform(0.65, 0.75),
        presence=tuple(presence),
        arrive_s=arrive,
        rec_start_s=rec_start,
        walk_s=walk,
        scene_end_s=duration,
        reflectivity=rng.uniform(0.42, 0.56),
    )
    actors: list[Actor] = [user]

    if spec.partner_after_intent_s is not None:
        pnight = partner if partner is not None else load_night(default_night_path("partner"))
        p_walk = rng.uniform(3.0, 6.0)
        p_arrive = rec_start + spec.partner_after_intent_s
        if spec.partner_arrive_s is not None:
            p_arrive = spec.partner_arrive_s
        p_rec = _align(p_arrive + rng.uniform(30.0, 120.0), pnight.epoch0_offset_s)
        p_leave = min(p_rec + pnight.duration_s, duration)
        p_last: float | None = None
        if spec.partner_leave_after_user_s is not None:
            # Awake in bed after their own recording if need be (the user's night is longer).
            p_leave = min(max(rec_end + spec.partner_leave_after_user_s, p_arrive + 60.0), duration)
            p_last = p_leave
        actors.append(
            _sleeper_person(
                "partner",
                pnight,
                (*base, 2),
                distance_m=rng.uniform(1.4, 1.6),
                presence=((p_arrive, p_leave),),
                arrive_s=p_arrive,
                rec_start_s=p_rec,
                walk_s=p_walk,
                scene_end_s=duration,
                reflectivity=rng.uniform(0.42, 0.56),
                last_leave_s=p_last,
            )
        )

    if spec.cat_after_intent_s is not None:
        c_arrive = rec_start + spec.cat_after_intent_s
        c_leave = min(c_arrive + spec.cat_duration_s, duration)
        c_walk = 1.5
        first = c_arrive - c_walk - 1.0
        last = c_leave + c_walk + 1.0
        actors.append(
            Pet(
                name="cat",
                distance_m=rng.uniform(0.95, 1.05),
                presence=((c_arrive, c_leave),),
                segments=(Segment(first, last, Driver("pet", (*base, 3), None, last - first)),),
                walk_s=c_walk,
                reflectivity=rng.uniform(0.10, 0.20),
            )
        )

    actors.extend(moving)
    scene = Scene(
        name=name,
        duration_s=float(duration),
        actors=tuple(actors),
        clutter=clutter,
        seed=int(seed),
        recording_start_s=rec_start,
        intent_s=rec_start,
        description=spec.description,
        light=_scene_light(spec, tuple(presence), arrive, rec_start, rec_end, (*base, 4)),
    )
    logger.debug(
        "built scene name=%s duration_s=%.0f recording_start_s=%.0f actors=%d",
        name,
        duration,
        rec_start,
        len(actors),
    )
    return scene
