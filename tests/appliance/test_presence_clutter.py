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
    assert all(p.present and p.state == "still" for p in out[45:])


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
