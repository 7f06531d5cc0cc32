"""Presence on simulated rooms: clutter never breathes, a still sleeper is never dropped."""

import dataclasses

import numpy as np
import pytest
import synthetic

from appliance.config import Config, RadarConfig
from appliance.dsp import RadarDsp
from appliance.frames import RadarFrames
from appliance.presence import PresenceDetector
from hardware.radar.scene import MovingClutter, StaticReflector, build_scene
from hardware.radar.simulated import SimulatedRadar

CFG = RadarConfig.model_validate({})


def _presence(radar: SimulatedRadar, t0_s: float, t1_s: float):
    dsp, det = RadarDsp(), PresenceDetector(Config().presence)
    out = []
    k0, k1 = int(t0_s * 20) // 20 * 20, min(radar.n_frames, int(t1_s * 20))
    for k in range(k0, k1, 200):
        iq = radar.render(k, min(k + 200, k1))
        fr = RadarFrames(np.arange(k, k + iq.shape[0]) / 20.0, iq, 0.3, 0.06, 20.0)
        for sec in dsp.update(fr):
            out.append((sec, det.update(sec)))
    return out


@pytest.mark.parametrize("seed", [0, 1, 3])
def test_fan_and_curtain_room_is_never_present(seed):
    scene = build_scene("empty-room-fan", None, None, seed, empty_duration_s=480.0)
    out = _presence(SimulatedRadar(scene, CFG, 0.0, seed=seed), 0.0, scene.duration_s)
    assert any(sec.targets for sec, _ in out)  # the clutter is seen as targets...
    assert not any(p.present for _, p in out)  # ...but never as somebody
    assert all(p.state == "empty" for _, p in out)


@pytest.mark.parametrize(
    "clutter",
    [
        # A fan head sweeping at a breathing rate with a blade line aliased into the band.
        MovingClutter("fan", 1.0, 0.35, 12.0, 5.0, 0.02, 0.6, 0.3, 20.15),
        # A strongly damped curtain in a gusty draught.
        MovingClutter("curtain", 1.2, 0.6, 8.0, 3.0, amplitude_mod=0.2, damping=0.3),
    ],
)
def test_other_clutter_at_other_distances_is_never_present(clutter):
    base = build_scene("empty-room", None, None, 5, empty_duration_s=420.0)
    scene = dataclasses.replace(
        base, actors=(clutter,), clutter=(*base.clutter, StaticReflector(0.9, 1.5))
    )
    out = _presence(SimulatedRadar(scene, CFG, 0.0, seed=4), 0.0, scene.duration_s)
    assert not any(p.present for _, p in out)


@pytest.mark.parametrize(
    ("distance_m", "noise", "depth_mm"),
    [(0.5, 0.02, 4.0), (0.8, 0.05, 3.0), (1.2, 0.02, 6.0), (1.8, 0.01, 8.0)],
)
def test_a_still_breather_is_never_dropped(distance_m, noise, depth_mm):
    fr = synthetic.frames(
        240.0, people=((distance_m, 13.0, depth_mm, 60.0),), noise=noise, seed=int(distance_m * 10)
    )
    det = PresenceDetector()
    out = [det.update(s) for s in RadarDsp().update(fr)]
    # A fresh detector told nothing confirms a regular breather within a minute (27-48 s
    # here: the respiration window, three breaths, then a dozen clear seconds), then keeps it.
    first = next(i for i, p in enumerate(out) if p.present)
    assert first <= 60
    assert all(p.present and p.state == "still" for p in out[first:])


def test_entering_within_10_s_and_leaving_within_60_s():
    fr = synthetic.frames(300.0, absent=((0.0, 60.0), (180.0, 300.0)), moving=((60.0, 63.0),))
    det = PresenceDetector()
    out = [(s, det.update(s)) for s in RadarDsp().update(fr)]
    t0 = fr.t_s[0]
    entered = min(p.t_s - t0 for _, p in out if p.present)
    assert 60.0 <= entered <= 70.0
    left = min(p.t_s - t0 for _, p in out if p.t_s - t0 > 180.0 and not p.present)
    assert left <= 180.0 + 60.0
    # After leaving nothing latches: empty and no breathing.
    after = [(s, p) for s, p in out if p.t_s - t0 > left]
    assert after and all(not p.present for _, p in after)


def _sleeper_frames(
    duration_s: float, *, distance_m: float, apnoea: tuple[float, float] | None = None, seed: int
) -> RadarFrames:
    """A still sleeper at 14/min with ~6 % breath-to-breath variability, asymmetric breaths and
    a heartbeat; during `apnoea` (start, end) s the breathing stops (central apnoea: only the
    heartbeat moves the chest)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * 20)
    t = np.arange(n) / 20.0
    rate_hz = (
        14.0
        / 60.0
        * (
            1.0
            + np.interp(
                t,
                np.arange(0, duration_s + 5, 4.3),
                rng.normal(0, 0.06, int((duration_s + 5) / 4.3) + 1),
            )
        )
    )
    ph = 2 * np.pi * np.cumsum(rate_hz) / 20.0
    breath = 3.0 * (np.sin(ph) + 0.4 * np.sin(2 * ph)) / 1.25
    if apnoea is not None:
        breath = breath * np.where((t >= apnoea[0]) & (t < apnoea[1]), 0.03, 1.0)
    disp_mm = breath + 0.25 * np.sin(2 * np.pi * 62.0 / 60.0 * t)
    r = 0.3 + 0.06 * np.arange(29)
    d = distance_m + disp_mm / 1000.0
    env = np.exp(-0.5 * ((r[None, :] - d[:, None]) / 0.04) ** 2)
    iq = (0.7 / distance_m) ** 2 * env * np.exp(1j * 4 * np.pi * d[:, None] * 1000.0 / 4.955)
    iq = iq + 0.5 * (rng.normal(size=29) + 1j * rng.normal(size=29))[None, :]
    iq = iq + 0.02 * (rng.normal(size=iq.shape) + 1j * rng.normal(size=iq.shape))
    return RadarFrames(1.7e9 + t, iq.astype(np.complex64), 0.3, 0.06, 20.0)


@pytest.mark.parametrize("distance_m", [0.6, 1.0, 1.4])
def test_a_fresh_start_beside_a_still_sleeper_is_present_within_35_s(distance_m):
    # A daemon restarted at 3 a.m.: the sleeper never "arrived" in front of this pipeline.
    fr = _sleeper_frames(90.0, distance_m=distance_m, seed=int(distance_m * 10))
    det = PresenceDetector(Config().presence)
    out = [det.update(s) for s in RadarDsp().update(fr)]
    first = next(p.t_s - fr.t_s[0] for p in out if p.present)
    assert first <= 35.0
    assert all(p.present for p in out if p.t_s - fr.t_s[0] >= first)


def test_a_still_sleeper_stays_present_through_a_60_s_central_apnoea():
    fr = _sleeper_frames(320.0, distance_m=0.8, apnoea=(150.0, 210.0), seed=3)
    det = PresenceDetector(Config().presence)
    out = [det.update(s) for s in RadarDsp().update(fr)]
    t0 = fr.t_s[0]
    assert all(p.present for p in out if p.t_s - t0 >= 40.0)


@pytest.mark.parametrize("seed", [11, 13, 34])
def test_curtain_rooms_that_used_to_breathe_stay_empty(seed):
    # 11, 13: their lightly damped curtain passed as breathing in 12–30-s bursts before the
    # per-location evidence (benchmarks.radar, minutes 6–9 of their empty-room-fan scene);
    # 34 (beyond the benchmark's seeds): the fan's peak hopping into a bin that had not yet
    # learned its level looked like a body movement seconds after the start.
    scene = build_scene("empty-room-fan", None, None, seed, empty_duration_s=600.0)
    out = _presence(SimulatedRadar(scene, CFG, 0.0, seed=seed), 0.0, scene.duration_s)
    assert not any(p.present for _, p in out)
