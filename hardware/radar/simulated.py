"""The radar twin: renders Acconeer A121-like sparse IQ frames of a `Scene`.

Physics. The A121 is a pulsed coherent radar at 60.5 GHz (λ = c / f ≈ 4.96 mm). In sparse IQ
mode each frame holds one complex sample per range point ("bin"); a point scatterer at distance
d(t) with reflection amplitude a(t) adds, to the bin at range r,

    x_r(t) = a(t) · g(r − d(t)) · exp(j · 4π d(t) / λ),

where g is the range envelope of the transmitted pulse, here a Gaussian of 5 cm FWHM (like the
A121's profile 3), and the phase turns 2π for every λ/2 ≈ 2.5 mm of radial motion (1 mm of chest
motion ≈ 2.5 rad). Amplitude falls as 1/d² (received power ∝ 1/d⁴, radar equation), scaled so that
a person's chest at 0.7 m is ≈ 1.0, a partner at 1.5 m ≈ 0.2 and a cat at 1 m ≈ 0.1–0.2 (radar
units). A frame is the sum over scatterers, plus static clutter (a few furniture/wall reflectors of
amplitude 0.3–3, constant in time) and complex white Gaussian noise (σ = `scene.noise_sigma` per
component, 0.02 by default: a person at 0.7 m is ≈ 31 dB over the per-bin noise power 2σ², a
partner at 1.5 m ≈ 18 dB).

A person is three scatterers: the chest (breathing + heartbeat + movement), the abdomen 6 cm
farther (a person-specific breathing share, negative during obstructive paradox, 0.3 of the
heartbeat, movement) and the legs 40 cm farther (movement only, no breathing). A cat is two. People
walk in from beyond the last bin (and out) over a few seconds, with a gait sway.

Determinism. Frames are rendered in fixed 1024-frame blocks aligned to the absolute frame index,
from per-frame arrays precomputed at construction and a noise stream seeded by (seed, block). The
same frame is therefore byte-identical whichever way the reads are chunked. Frame i is captured at
scene time i / frame_rate_hz and stamped t_s = start_s + i / frame_rate_hz.

References:
    Acconeer AB (2023). A121 Pulsed Coherent Radar (PCR) datasheet; A121 sparse IQ service and
    "Profiles" in the Acconeer Exploration Tool handbook (docs.acconeer.com).
    Skolnik MI (2001). Introduction to Radar Systems, 3rd ed., McGraw-Hill (radar equation).
    Li C, Lubecke VM, Boric-Lubecke O, Lin J (2013). A review on recent advances in Doppler
    radar sensors for noncontact healthcare monitoring. IEEE Transactions on Microwave Theory
    and Techniques 61(5):2046–2060. doi:10.1109/TMTT.2013.2256924
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from appliance.config import RadarConfig
from appliance.frames import ABSENT, EPOCH_S, UNSCORED, RadarFrames, Stage
from hardware.radar.physiology import Physiology
from hardware.radar.scene import SETTLE_S, MovingClutter, Person, Pet, Scene

__all__ = [
    "ENVELOPE_FWHM_M",
    "WAVELENGTH_M",
    "SceneTruth",
    "SimulatedRadar",
]

logger = logging.getLogger(__name__)

WAVELENGTH_M = 299_792_458.0 / 60.5e9
"""Carrier wavelength of the A121 (60.5 GHz), metres (≈ 4.955 mm)."""
ENVELOPE_FWHM_M = 0.05
"""Full width at half maximum of the Gaussian range envelope, metres."""

_BLOCK = 1024
_NOISE_TAG = 0xA121
_SIGMA_ENV_M = ENVELOPE_FWHM_M / 2.3548
_K = 4.0 * np.pi / WAVELENGTH_M
_PERSON_PARTS = (("chest", 0.0, 1.0), ("abdomen", 0.06, 0.6), ("legs", 0.40, 0.25))
_PET_PARTS = (("chest", 0.0, 1.0), ("body", 0.08, 0.6))
_TRUTH_FS_HZ = 10.0


@dataclass(frozen=True)
class SceneTruth:
    """What really happened, per 30-s scene epoch from the scene start (scene seconds).

    Attributes:
        stages: (n_epochs,) int8: the expert's code (`Stage` or `UNSCORED`) where the user is in
            bed during the recording, `Stage.WAKE` during scripted awake-in-bed time, `ABSENT`
            where the user is not in bed (in bed = at least half of the epoch).
        expert_scored: (n_epochs,) bool: `stages` is an expert's stage.
        user_present: (n_epochs,) bool: the user is in bed.
        breath_rate_bpm: (n_epochs,) float64 true breathing rate, breaths/min; NaN when absent.
        heart_rate_bpm: (n_epochs,) float64 true heart rate, beats/min; NaN when absent.
        user_distance_m: (n_epochs,) float64 mean chest distance in bed, metres; NaN when absent.
        user_moving_fraction: (n_epochs,) float64 share of the in-bed time spent moving, [0, 1].
        partner_present: (n_epochs,) bool: a partner is in bed.
        pet_present: (n_epochs,) bool: a pet is on the bed.
        intent_s: Scene time the user starts trying to sleep, seconds, or None.
        in_bed_s: Scene time the user first gets into bed, seconds, or None.
        out_of_bed_s: Scene time of the user's final leaving of the bed, seconds, or None.
        absences: (start_s, end_s) of the user's absences from bed between in_bed_s and
            out_of_bed_s, scene seconds.
        recording_start_s: Scene time the user's recording starts, seconds, or None.
        breath_waveform_mm: (ceil(duration · 10),) float64 the user's breathing displacement at
            10 Hz on the scene timeline (sample k at k / 10 s), mm, positive = away from the radar;
            NaN where the user is not in bed.
        epoch_s: Epoch length, seconds (30).
        breath_waveform_fs_hz: Rate of `breath_waveform_mm`, Hz (10).
    """

    stages: np.ndarray
    expert_scored: np.ndarray
    user_present: np.ndarray
    breath_rate_bpm: np.ndarray
    heart_rate_bpm: np.ndarray
    user_distance_m: np.ndarray
    user_moving_fraction: np.ndarray
    partner_present: np.ndarray
    pet_present: np.ndarray
    intent_s: float | None
    in_bed_s: float | None
    out_of_bed_s: float | None
    absences: tuple[tuple[float, float], ...]
    recording_start_s: float | None
    breath_waveform_mm: np.ndarray
    epoch_s: float = EPOCH_S
    breath_waveform_fs_hz: float = _TRUTH_FS_HZ

    @property
    def n_epochs(self) -> int:
        """Number of scene epochs."""
        return int(self.stages.shape[0])


@dataclass
class _Track:
    """One scatterer over the frames [k0, k0 + len(d))."""

    k0: int
    d_m: np.ndarray
    a: np.ndarray

    @property
    def k1(self) -> int:
        return self.k0 + int(self.d_m.shape[0])


@dataclass
class _Body:
    """Per-frame state of one person or pet over its active frames (for rendering and truth)."""

    k0: int
    in_bed: np.ndarray
    chest_d_m: np.ndarray
    moving_in_bed: np.ndarray
    tracks: list[_Track]


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return np.asarray(u * u * (3.0 - 2.0 * u), dtype=np.float64)


def _in_intervals(t: np.ndarray, intervals: tuple[tuple[float, float], ...]) -> np.ndarray:
    m = np.zeros(t.shape, dtype=bool)
    for s, e in intervals:
        m |= (t >= s) & (t < e)
    return m


class SimulatedRadar:
    """A `RadarSource` that renders a scene's sparse IQ frames.

    Attributes:
        scene: The scene.
        frame_rate_hz: Frame rate, Hz.
        start_s: UTC epoch seconds of scene time 0 (stamp of frame 0).
        n_frames: Frames in the scene.
        range_start_m: Distance of bin 0, metres.
        range_step_m: Bin spacing, metres.
        n_bins: Number of bins.
    """

    def __init__(self, scene: Scene, radar: RadarConfig, start_s: float, seed: int = 0) -> None:
        """Precompute the scene's per-frame scatterer tracks.

        Args:
            scene: What to render.
            radar: Frame rate and range bins (bin k at range_start_m + k · range_step_m,
                k < n_bins).
            start_s: UTC epoch seconds stamped on frame 0.
            seed: Seed of the measurement noise (the scene has its own seed).

        Raises:
            ValueError: An actor is in range at a time no segment covers.
        """
        self.scene = scene
        self.frame_rate_hz = float(radar.frame_rate_hz)
        self.start_s = float(start_s)
        self.seed = int(seed)
        self.range_start_m = float(radar.range_start_m)
        self.range_step_m = float(radar.range_step_m)
        self.n_bins = int(radar.n_bins)
        self._r = self.range_start_m + self.range_step_m * np.arange(self.n_bins)
        self.n_frames = max(0, int(math.ceil(scene.duration_s * self.frame_rate_hz - 1e-9)))
        self._next = 0
        self._running = False
        self._warned_off = False
        self._power_log: list[tuple[float, bool]] = []
        self._cache: tuple[int, np.ndarray] | None = None
        self._truth: SceneTruth | None = None

        static = np.zeros(self.n_bins, dtype=np.complex128)
        for c in scene.clutter:
            env = np.exp(-0.5 * ((self._r - c.distance_m) / _SIGMA_ENV_M) ** 2)
            static += c.amplitude * env * np.exp(1j * (_K * c.distance_m + c.phase_rad))
        self._static = static.astype(np.complex64)

        self._tracks: list[_Track] = []
        self._bodies: dict[int, _Body] = {}
        self._phys: dict[tuple[int, int], Physiology] = {}
        for i, actor in enumerate(scene.actors):
            if isinstance(actor, (Person, Pet)):
                body = self._body(i, actor)
                if body is not None:
                    self._bodies[i] = body
                    self._tracks.extend(body.tracks)
            else:
                self._tracks.append(self._clutter_track(i, actor))
        logger.debug(
            "simulated radar scene=%s frames=%d bins=%d tracks=%d",
            scene.name,
            self.n_frames,
            self.n_bins,
            len(self._tracks),
        )

    # ------------------------------------------------------------------ RadarSource

    def start(self) -> None:
        """Power the (virtual) sensor; reads resume at the next unread frame."""
        if not self._running:
            self._running = True
            self._power_log.append((self.scene_time_s, True))
            logger.debug("simulated radar on at scene_t=%.2f", self.scene_time_s)

    def stop(self) -> None:
        """Power the sensor down: `read` returns None until `start` is called again."""
        if self._running:
            self._running = False
            self._power_log.append((self.scene_time_s, False))
            logger.debug("simulated radar off at scene_t=%.2f", self.scene_time_s)

    def read(self, n_frames: int) -> RadarFrames | None:
        """Return the next up to `n_frames` frames.

        Args:
            n_frames: How many frames, >= 1.

        Returns:
            Consecutive frames (fewer at the end of the scene), or None when the sensor is off or
            the scene is over.

        Raises:
            ValueError: n_frames < 1.
        """
        if n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {n_frames}")
        if not self._running:
            if not self._warned_off:
                logger.warning("read() while the simulated radar is off; returning None")
                self._warned_off = True
            return None
        k0 = self._next
        if k0 >= self.n_frames:
            return None
        k1 = min(self.n_frames, k0 + int(n_frames))
        iq = self.render(k0, k1)
        self._next = k1
        return RadarFrames(
            t_s=self.start_s + np.arange(k0, k1, dtype=np.float64) / self.frame_rate_hz,
            iq=iq,
            range_start_m=self.range_start_m,
            range_step_m=self.range_step_m,
            frame_rate_hz=self.frame_rate_hz,
            radar="simulated",
        )

    # ------------------------------------------------------------------ extras

    @property
    def running(self) -> bool:
        """Whether the sensor is on."""
        return self._running

    @property
    def power_log(self) -> tuple[tuple[float, bool], ...]:
        """(scene time s, on?) at every start/stop: when the sensor was switched on and off."""
        return tuple(self._power_log)

    @property
    def scene_time_s(self) -> float:
        """Scene time of the next frame `read` returns, seconds."""
        return self._next / self.frame_rate_hz

    def seek(self, t_s: float) -> None:
        """Make the next read start at the first frame stamped at or after `t_s`.

        Args:
            t_s: UTC epoch seconds (e.g. the clock after a standby).
        """
        k = math.ceil((t_s - self.start_s) * self.frame_rate_hz - 1e-6)
        self._next = int(min(max(k, 0), self.n_frames))

    def render(self, k0: int, k1: int) -> np.ndarray:
        """Render frames [k0, k1) without moving the read position.

        Args:
            k0: First frame index, >= 0.
            k1: End frame index (exclusive), <= n_frames.

        Returns:
            (k1 - k0, n_bins) complex64 sparse IQ.
        """
        k0, k1 = max(0, k0), min(self.n_frames, k1)
        out = np.empty((max(0, k1 - k0), self.n_bins), dtype=np.complex64)
        k = k0
        while k < k1:
            b = k // _BLOCK
            blk = self._block(b)
            lo = k - b * _BLOCK
            hi = min(k1 - b * _BLOCK, _BLOCK)
            out[k - k0 : k - k0 + hi - lo] = blk[lo:hi]
            k += hi - lo
        return out

    # ------------------------------------------------------------------ rendering

    def _block(self, b: int) -> np.ndarray:
        if self._cache is not None and self._cache[0] == b:
            return self._cache[1]
        f0 = b * _BLOCK
        f1 = f0 + _BLOCK
        rng = np.random.default_rng([self.seed, b, _NOISE_TAG])
        noise = rng.standard_normal((_BLOCK, self.n_bins, 2), dtype=np.float32)
        noise *= np.float32(self.scene.noise_sigma)
        iq = np.empty((_BLOCK, self.n_bins), dtype=np.complex64)
        iq.real = noise[..., 0]
        iq.imag = noise[..., 1]
        iq += self._static
        span = 4.0 * _SIGMA_ENV_M
        for tr in self._tracks:
            lo, hi = max(f0, tr.k0), min(f1, tr.k1)
            if hi <= lo:
                continue
            a = tr.a[lo - tr.k0 : hi - tr.k0]
            on = a > 0
            if not on.any():
                continue
            d = tr.d_m[lo - tr.k0 : hi - tr.k0]
            d_on = d[on]
            j0 = int(np.searchsorted(self._r, float(d_on.min()) - span))
            j1 = int(np.searchsorted(self._r, float(d_on.max()) + span))
            if j1 <= j0:
                continue
            ph = np.mod(_K * d, 2 * np.pi)
            amp = (a * np.exp(1j * ph)).astype(np.complex64)
            env = np.exp(
                (-0.5 / _SIGMA_ENV_M**2) * (self._r[None, j0:j1] - d[:, None]) ** 2
            ).astype(np.float32)
            iq[lo - f0 : hi - f0, j0:j1] += amp[:, None] * env
        self._cache = (b, iq)
        return iq

    def _frames_t(self, k0: int, k1: int) -> np.ndarray:
        return np.arange(k0, k1, dtype=np.float64) / self.frame_rate_hz

    def _physiology(self, actor_i: int, seg_i: int, actor: Person | Pet) -> Physiology:
        key = (actor_i, seg_i)
        if key not in self._phys:
            self._phys[key] = actor.segments[seg_i].driver.build(self.frame_rate_hz)
        return self._phys[key]

    def _body(self, actor_i: int, actor: Person | Pet) -> _Body | None:
        fs = self.frame_rate_hz
        if not actor.presence:
            return None
        w = actor.walk_s
        t_first = min(s for s, _ in actor.presence) - w
        t_last = max(e for _, e in actor.presence) + w
        k0 = max(0, int(math.ceil(t_first * fs - 1e-9)))
        k1 = min(self.n_frames, int(math.ceil(t_last * fs - 1e-9)))
        if k1 <= k0:
            return None
        t = self._frames_t(k0, k1)
        n = t.size
        in_bed = _in_intervals(t, actor.presence)
        walk_extra = np.zeros(n)
        walk_amp = np.ones(n)
        walking = np.zeros(n, dtype=bool)
        rng = np.random.default_rng([self.scene.seed, actor_i, 0x3A1C])
        gait_m = 0.015 if isinstance(actor, Person) else 0.005
        for s, e in actor.presence:
            for t0, inward in ((s - w, True), (e, False)):
                m = (t >= t0) & (t < t0 + w)
                if not m.any():
                    continue
                u = (t[m] - t0) / w
                near = _smoothstep(u) if inward else 1.0 - _smoothstep(u)  # 1 at the bed
                walk_extra[m] = actor.approach_m * (1.0 - near)
                step_hz = rng.uniform(1.6, 2.0)
                walk_extra[m] += gait_m * np.sin(2 * np.pi * step_hz * (t[m] - t0))
                walk_amp[m] = _smoothstep(np.minimum(1.0, 3.0 * near)) * (
                    0.8 + 0.2 * np.sin(2 * np.pi * 0.5 * step_hz * (t[m] - t0))
                )
                walking |= m
        in_range = in_bed | walking

        names = (
            "displacement_mm",
            "breath_waveform_mm",
            "heart_waveform_mm",
            "movement_mm",
            "leg_displacement_mm",
            "abdomen_breath_share",
            "amplitude_scale",
            "distance_offset_m",
        )
        vals = {k: np.zeros(n) for k in names}
        vals["amplitude_scale"][:] = 1.0
        moving = np.zeros(n, dtype=bool)
        covered = np.zeros(n, dtype=bool)
        for si, seg in enumerate(actor.segments):
            m = (t >= seg.start_s) & (t < seg.end_s) & in_range & ~covered
            if not m.any():
                continue
            phys = self._physiology(actor_i, si, actor)
            tp = seg.to_source(t[m])
            for k in names:
                vals[k][m] = np.interp(tp, phys.t_s, getattr(phys, k))
            moving[m] = np.interp(tp, phys.t_s, phys.movement_mask.astype(np.float64)) > 0.5
            covered |= m
        self._settle(actor_i, actor, t, in_range, vals, moving, rng)
        if np.any(in_range & ~covered):
            gap = float(t[np.flatnonzero(in_range & ~covered)[0]])
            raise ValueError(f"actor {actor.name!r} is in range at t={gap:.1f} s with no segment")
        moving |= walking

        base = actor.distance_m + vals["distance_offset_m"] + walk_extra
        amp_common = actor.reflectivity * vals["amplitude_scale"] * walk_amp * in_range
        disp = vals["displacement_mm"]
        second = (
            vals["abdomen_breath_share"] * vals["breath_waveform_mm"]
            + 0.3 * vals["heart_waveform_mm"]
            + vals["movement_mm"]
        )
        parts = _PERSON_PARTS if isinstance(actor, Person) else _PET_PARTS
        tracks = []
        chest_d = base + disp / 1000.0
        for name, off_m, rel in parts:
            if name == "chest":
                d = chest_d
            elif name == "legs":
                d = base + off_m + (0.5 * vals["movement_mm"] + vals["leg_displacement_mm"]) / 1e3
            else:
                d = base + off_m + second / 1000.0
            a = (rel * amp_common / np.maximum(d, 0.05) ** 2).astype(np.float32)
            tracks.append(_Track(k0, d, a))
        return _Body(
            k0=k0, in_bed=in_bed, chest_d_m=chest_d, moving_in_bed=moving & in_bed, tracks=tracks
        )

    def _settle(
        self,
        actor_i: int,
        actor: Person | Pet,
        t: np.ndarray,
        in_range: np.ndarray,
        vals: dict[str, np.ndarray],
        moving: np.ndarray,
        rng: np.random.Generator,
    ) -> None:
        """Cross-fade contiguous segments over `SETTLE_S` and add a settling movement.

        At a hand-over inside the bed (e.g. reading → trying to sleep) the body would otherwise
        jump from one driver's breath phase and posture to the other's. The earlier driver runs
        on for `SETTLE_S` (its driver lasts that much longer), both are blended with a smoothstep,
        and the person moves (turns off the light, lies down): a 10–30-mm excursion.
        """
        fs = self.frame_rate_hz
        for si in range(1, len(actor.segments)):
            prev, seg = actor.segments[si - 1], actor.segments[si]
            tb = seg.start_s
            if abs(prev.end_s - tb) > 1e-6:
                continue
            m = (t >= tb) & (t < tb + SETTLE_S) & in_range
            if not m.any():
                continue
            phys = self._physiology(actor_i, si - 1, actor)
            tp = prev.to_source(t[m])
            ok = tp <= phys.t_s[-1]
            if not ok.any():
                continue
            idx = np.flatnonzero(m)[ok]
            w = _smoothstep((t[idx] - tb) / SETTLE_S)
            for k, arr in vals.items():
                old = np.interp(tp[ok], phys.t_s, getattr(phys, k))
                arr[idx] = (1.0 - w) * old + w * arr[idx]
            k0 = int(np.flatnonzero(m)[0])
            k1 = min(t.size, k0 + int(round(SETTLE_S * fs)))
            span = k1 - k0
            if span > 2:
                x = np.cumsum(rng.standard_normal(span))
                x -= np.linspace(x[0], x[-1], span)
                x /= max(float(np.max(np.abs(x))), 1e-9)
                bump = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(span) / (span - 1))
                vals["displacement_mm"][k0:k1] += rng.uniform(10.0, 30.0) * x * bump
                moving[k0:k1] = True

    def _clutter_track(self, actor_i: int, c: MovingClutter) -> _Track:
        t = self._frames_t(0, self.n_frames)
        rng = np.random.default_rng([self.scene.seed, actor_i, 0xC1])
        w1 = _slow_walk(rng, t, tau_s=4.0 * c.sway_period_s)
        w2 = _slow_walk(rng, t, tau_s=4.0 * c.sway_period_s)
        phase = 2 * np.pi * t / c.sway_period_s + rng.uniform(0, 2 * np.pi) + c.irregularity * w2
        if c.damping > 0:
            sway = _driven_oscillator(rng, t.size, self.frame_rate_hz, c.sway_period_s, c.damping)
            d = c.distance_m + c.sway_mm / 1000.0 * sway
            # The reflection follows the cloth's angle, i.e. its displacement.
            phase = np.arcsin(np.clip(sway / 3.0, -1.0, 1.0)) + np.pi / 2
        else:
            d = c.distance_m + c.sway_mm / 1000.0 * (1.0 + 0.3 * c.irregularity * w1) * np.sin(
                phase
            )
        if c.vibration_mm > 0:
            d = d + c.vibration_mm / 1000.0 * np.sin(
                2 * np.pi * c.vibration_hz * t + rng.uniform(0, 2 * np.pi)
            )
        mod = 1.0 - c.amplitude_mod * (0.5 + 0.5 * np.cos(phase))
        a = (c.reflectivity * mod / d**2).astype(np.float32)
        return _Track(0, d, a)

    # ------------------------------------------------------------------ truth

    @property
    def truth(self) -> SceneTruth:
        """The scene's ground truth (computed once)."""
        if self._truth is None:
            self._truth = self._compute_truth()
        return self._truth

    def _epoch_frames(self, n_ep: int) -> np.ndarray:
        edges = np.ceil(np.arange(n_ep + 1) * EPOCH_S * self.frame_rate_hz - 1e-9).astype(np.int64)
        return np.asarray(np.minimum(edges, self.n_frames), dtype=np.int64)

    def _fraction(self, body: _Body | None, mask_name: str, edges: np.ndarray) -> np.ndarray:
        """Per-epoch share of frames where body.<mask_name> is set."""
        n_ep = edges.size - 1
        if body is None:
            return np.zeros(n_ep)
        full = np.zeros(self.n_frames, dtype=np.float64)
        arr = getattr(body, mask_name)
        full[body.k0 : body.k0 + arr.size] = arr
        cs = np.concatenate([[0.0], np.cumsum(full)])
        cnt = np.maximum(edges[1:] - edges[:-1], 1)
        return np.asarray((cs[edges[1:]] - cs[edges[:-1]]) / cnt, dtype=np.float64)

    def _compute_truth(self) -> SceneTruth:
        scene = self.scene
        n_ep = int(math.ceil(scene.duration_s / EPOCH_S - 1e-9))
        edges = self._epoch_frames(n_ep)
        ep_t0 = np.arange(n_ep) * EPOCH_S
        stages = np.full(n_ep, ABSENT, dtype=np.int8)
        scored = np.zeros(n_ep, dtype=bool)
        br = np.full(n_ep, np.nan)
        hr = np.full(n_ep, np.nan)
        dist = np.full(n_ep, np.nan)
        moving = np.zeros(n_ep)
        n10 = int(math.ceil(scene.duration_s * _TRUTH_FS_HZ - 1e-9))
        wave = np.full(n10, np.nan)
        partner_p = np.zeros(n_ep, dtype=bool)
        pet_p = np.zeros(n_ep, dtype=bool)
        user = scene.user
        in_bed_s = out_s = None
        absences: tuple[tuple[float, float], ...] = ()

        for i, actor in enumerate(scene.actors):
            if isinstance(actor, Person) and actor.role == "partner":
                partner_p |= self._fraction(self._bodies.get(i), "in_bed", edges) >= 0.5
            elif isinstance(actor, Pet):
                pet_p |= self._fraction(self._bodies.get(i), "in_bed", edges) >= 0.5

        if user is not None and user.presence:
            ui = scene.actors.index(user)
            body = self._bodies.get(ui)
            frac = self._fraction(body, "in_bed", edges)
            present = frac >= 0.5
            if body is not None:
                moving = self._fraction(body, "moving_in_bed", edges) / np.maximum(frac, 1e-9)
                full_d = np.zeros(self.n_frames)
                full_d[body.k0 : body.k0 + body.chest_d_m.size] = body.chest_d_m * body.in_bed
                cs = np.concatenate([[0.0], np.cumsum(full_d)])
                cnt = np.maximum(edges[1:] - edges[:-1], 1) * np.maximum(frac, 1e-9)
                dist = np.where(present, (cs[edges[1:]] - cs[edges[:-1]]) / cnt, np.nan)
            mid = ep_t0 + EPOCH_S / 2
            t10 = np.arange(n10) / _TRUTH_FS_HZ
            bed10 = _in_intervals(t10, user.presence)
            for si, seg in enumerate(user.segments):
                sel = present & (mid >= seg.start_s) & (mid < seg.end_s)
                phys = self._physiology(ui, si, user)
                if sel.any():
                    src0 = seg.to_source(ep_t0[sel])
                    br[sel] = phys.breath_rate_bpm(src0, EPOCH_S)
                    hr[sel] = phys.heart_rate_bpm(src0, EPOCH_S)
                    if seg.driver.mode == "sleeper" and seg.driver.night is not None:
                        night = seg.driver.night
                        j = np.floor(
                            (seg.to_source(mid[sel]) - night.epoch0_offset_s) / night.epoch_s
                        ).astype(np.int64)
                        ok = (j >= 0) & (j < night.n_epochs)
                        st = np.full(j.size, UNSCORED, dtype=np.int8)
                        st[ok] = night.stages[j[ok]]
                        stages[sel] = st
                        scored[sel] = st != UNSCORED
                    else:
                        stages[sel] = Stage.WAKE
                m10 = bed10 & (t10 >= seg.start_s) & (t10 < seg.end_s)
                if m10.any():
                    wave[m10] = np.interp(
                        seg.to_source(t10[m10]), phys.t_s, phys.breath_waveform_mm
                    )
            br[~present] = np.nan
            hr[~present] = np.nan
            stages[~present] = ABSENT
            scored[~present] = False
            in_bed_s = float(user.presence[0][0])
            out_s = float(user.presence[-1][1])
            absences = tuple(
                (float(user.presence[k][1]), float(user.presence[k + 1][0]))
                for k in range(len(user.presence) - 1)
            )
        ro = _readonly
        return SceneTruth(
            stages=ro(stages),
            expert_scored=ro(scored),
            user_present=ro(stages != ABSENT),
            breath_rate_bpm=ro(br),
            heart_rate_bpm=ro(hr),
            user_distance_m=ro(dist),
            user_moving_fraction=ro(np.asarray(moving, dtype=np.float64)),
            partner_present=ro(partner_p),
            pet_present=ro(pet_p),
            intent_s=scene.intent_s,
            in_bed_s=in_bed_s,
            out_of_bed_s=out_s,
            absences=absences,
            recording_start_s=scene.recording_start_s,
            breath_waveform_mm=ro(wave),
        )


def _driven_oscillator(
    rng: np.random.Generator, n: int, fs_hz: float, period_s: float, damping: float
) -> np.ndarray:
    """A damped oscillator (natural period `period_s`, damping ratio) driven by white noise.

    Discretised as a two-pole resonator at the frame rate; normalised to an RMS of 1/√2 (the RMS
    of a unit sine), after a burn-in of ten decay times so the start is stationary.
    """
    w0 = 2 * np.pi / period_s / fs_hz
    r = math.exp(-damping * w0)
    wd = w0 * math.sqrt(max(1.0 - damping * damping, 1e-6))
    burn = int(10.0 / max(damping * w0, 1e-6))
    e = rng.standard_normal(n + burn)
    x = signal.lfilter([1.0], [1.0, -2.0 * r * math.cos(wd), r * r], e)[burn:]
    return np.asarray(x / (math.sqrt(2.0) * max(float(np.std(x)), 1e-12)), dtype=np.float64)


def _slow_walk(rng: np.random.Generator, t: np.ndarray, tau_s: float) -> np.ndarray:
    """A unit-variance smooth random process on `t` (1-Hz AR(1), interpolated)."""
    n1 = int(math.ceil(float(t[-1]) if t.size else 0.0)) + 2
    a = math.exp(-1.0 / max(tau_s, 1.0))
    e = rng.standard_normal(n1) * math.sqrt(1 - a * a)
    x0 = rng.standard_normal()
    x, _ = signal.lfilter([1.0], [1.0, -a], e, zi=[a * x0])
    return np.asarray(np.interp(t, np.arange(n1, dtype=np.float64), x), dtype=np.float64)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a
