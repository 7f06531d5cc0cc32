import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from appliance.config import RadarConfig
from appliance.frames import ABSENT, UNSCORED, RadarFrames, Stage
from hardware.radar.night import Night, default_night_path, load_night
from hardware.radar.scene import SCENES, Person, Pet, Scene, build_scene
from hardware.radar.simulated import WAVELENGTH_M, SimulatedRadar
from hardware.radar.source import RadarSource

CFG = RadarConfig.model_validate({})
FS = CFG.frame_rate_hz
T0 = 1_700_000_000.0
SLP14 = Path("/work/shared/data/slpdb_slp14.npz")


@pytest.fixture(scope="module")
def night() -> Night:
    return load_night(default_night_path("sleeper"))


@pytest.fixture(scope="module")
def scene(night: Night) -> Scene:
    return build_scene("asleep-at-once", night, None, 3)


@pytest.fixture(scope="module")
def radar(scene: Scene) -> SimulatedRadar:
    return SimulatedRadar(scene, CFG, T0, seed=1)


def _bins() -> np.ndarray:
    return CFG.range_start_m + CFG.range_step_m * np.arange(CFG.n_bins)


def _still_minute(scene: Scene, after_s: float) -> float:
    """Scene time of a minute without movement in the user's recording, after `after_s`."""
    user = scene.user
    assert user is not None
    seg = next(s for s in user.segments if s.driver.mode == "sleeper")
    phys = seg.driver.build(FS)
    for start in np.arange(after_s, seg.end_s - seg.start_s - 60.0, 60.0):
        sl = slice(int(start * FS), int((start + 60) * FS))
        if not phys.movement_mask[sl].any():
            return seg.start_s + float(start)
    raise AssertionError("no still minute")


# ---------------------------------------------------------------- the source interface


def test_is_a_radar_source(radar: SimulatedRadar) -> None:
    assert isinstance(radar, RadarSource)
    assert radar.frame_rate_hz == FS


def test_shape_dtype_timestamps(scene: Scene) -> None:
    r = SimulatedRadar(scene, CFG, T0, seed=1)
    assert r.read(10) is None  # off until started
    r.start()
    f = r.read(600)
    assert isinstance(f, RadarFrames)
    assert f.iq.shape == (600, CFG.n_bins) == (600, 29)
    assert f.iq.dtype == np.complex64
    assert f.t_s.dtype == np.float64
    assert np.allclose(f.t_s, T0 + np.arange(600) / FS, rtol=0, atol=1e-6)
    assert f.range_start_m == CFG.range_start_m and f.range_step_m == CFG.range_step_m
    assert f.frame_rate_hz == FS and f.radar == "simulated"
    g = r.read(5)
    assert g is not None
    assert g.t_s[0] == pytest.approx(T0 + 600 / FS)
    with pytest.raises(ValueError):
        r.read(0)


def test_stop_start_and_end_of_scene(scene: Scene) -> None:
    r = SimulatedRadar(scene, CFG, T0, seed=1)
    r.start()
    assert r.read(20) is not None
    r.stop()
    assert not r.running
    assert r.read(20) is None
    r.start()
    f = r.read(20)
    assert f is not None and f.t_s[0] == pytest.approx(T0 + 1.0)  # resumes where it stopped
    assert [on for _, on in r.power_log] == [True, False, True]
    assert r.power_log[1][0] == pytest.approx(1.0)
    r.seek(T0 + scene.duration_s - 1.0)
    tail = r.read(1000)
    assert tail is not None
    assert tail.n_frames == r.n_frames - math.ceil((scene.duration_s - 1.0) * FS - 1e-6)
    assert tail.t_s[0] >= T0 + scene.duration_s - 1.0
    assert r.read(1) is None


def test_chunks_do_not_matter(scene: Scene) -> None:
    start = int((scene.duration_s / 2) * FS) - 300  # crosses a 1024-frame block edge
    a = SimulatedRadar(scene, CFG, T0, seed=1)
    b = SimulatedRadar(scene, CFG, T0, seed=1)
    a.start()
    b.start()
    a.seek(T0 + start / FS)
    b.seek(T0 + start / FS)
    once = a.read(600)
    assert once is not None
    ones = [b.read(1) for _ in range(600)]
    assert all(f is not None for f in ones)
    stacked = np.concatenate([f.iq for f in ones if f is not None])
    assert once.iq.tobytes() == stacked.tobytes()
    assert np.array_equal(once.t_s, np.concatenate([f.t_s for f in ones if f is not None]))
    # a fresh radar, reads of odd sizes
    c = SimulatedRadar(scene, CFG, T0, seed=1)
    assert c.render(start, start + 600).tobytes() == once.iq.tobytes()
    # and another noise seed differs
    d = SimulatedRadar(scene, CFG, T0, seed=2)
    assert d.render(start, start + 600).tobytes() != once.iq.tobytes()


# ---------------------------------------------------------------- physics


def test_empty_room_has_no_moving_target() -> None:
    scene = build_scene("empty-room", None, None, 0, empty_duration_s=600.0)
    r = SimulatedRadar(scene, CFG, T0)
    iq = r.render(0, int(120 * FS))
    noise_power = 2 * scene.noise_sigma**2
    ratio = np.var(iq, axis=0) / noise_power
    assert np.all((ratio > 0.85) & (ratio < 1.15))
    # static clutter is there, and strong
    assert np.abs(iq.mean(axis=0)).max() > 0.3
    assert not r.truth.user_present.any()
    assert np.all(r.truth.stages == ABSENT)


def test_fan_moves_but_breathes_nothing() -> None:
    scene = build_scene("empty-room-fan", None, None, 0, empty_duration_s=600.0)
    r = SimulatedRadar(scene, CFG, T0)
    iq = r.render(0, int(120 * FS))
    ratio = np.var(iq, axis=0) / (2 * scene.noise_sigma**2)
    assert ratio.max() > 10.0  # something moves
    assert not r.truth.user_present.any()


def test_phase_follows_the_chest(scene: Scene, radar: SimulatedRadar) -> None:
    user = scene.user
    assert user is not None
    t_still = _still_minute(scene, 7200.0)
    seg = next(s for s in user.segments if s.driver.mode == "sleeper")
    phys = seg.driver.build(FS)
    k = int(round(t_still * FS))
    iq = radar.render(k, k + int(60 * FS))
    j = int(round((t_still - seg.start_s) * FS))
    truth = phys.displacement_mm[j : j + int(60 * FS)]
    d0 = user.distance_m + phys.distance_offset_m[j]
    b = int(np.argmin(np.abs(_bins() - d0)))
    x = iq[:, b] - iq[:, b].mean()
    est_mm = np.unwrap(np.angle(x)) * WAVELENGTH_M / (4 * np.pi) * 1000.0
    assert np.corrcoef(est_mm, truth)[0, 1] > 0.9
    # and the target stands well above the noise: ~30 dB at 0.7 m
    snr_db = 10 * np.log10(np.mean(np.abs(x) ** 2) / (2 * scene.noise_sigma**2))
    assert snr_db > 20.0
    # far bins see only noise and static clutter
    far = np.abs(_bins() - d0) > 0.5
    quiet = np.var(iq[:, far & (_bins() < 1.3)], axis=0) / (2 * scene.noise_sigma**2)
    assert np.all(quiet < 1.3)


def test_partner_far_side_is_weaker_but_visible(night: Night) -> None:
    scene = build_scene("partner-late", night, None, 0)
    partner = next(a for a in scene.actors if isinstance(a, Person) and a.role == "partner")
    assert 1.4 <= partner.distance_m <= 1.6
    assert scene.intent_s is not None
    assert partner.presence[0][0] == pytest.approx(scene.intent_s + 2700.0)
    r = SimulatedRadar(scene, CFG, T0)
    k = int((partner.presence[0][0] + 1800.0) * FS)
    iq = r.render(k, k + int(60 * FS))
    b = int(np.argmin(np.abs(_bins() - partner.distance_m)))
    snr = 10 * np.log10(np.var(iq[:, b - 1 : b + 2], axis=0).max() / (2 * scene.noise_sigma**2))
    assert 8.0 < snr < 25.0
    assert r.truth.partner_present.sum() > 300


# ---------------------------------------------------------------- truth


def test_truth_is_aligned_with_the_experts(
    night: Night, scene: Scene, radar: SimulatedRadar
) -> None:
    truth = radar.truth
    n_ep = math.ceil(scene.duration_s / 30.0)
    for arr in (
        truth.stages,
        truth.expert_scored,
        truth.user_present,
        truth.breath_rate_bpm,
        truth.heart_rate_bpm,
        truth.user_distance_m,
    ):
        assert arr.shape == (n_ep,)
    rec = scene.recording_start_s
    assert rec is not None and truth.recording_start_s == rec == truth.intent_s
    assert (rec + night.epoch0_offset_s) % 30.0 == 0.0
    idx = np.flatnonzero(truth.expert_scored)
    j = ((idx * 30.0 - rec - night.epoch0_offset_s) / 30.0).astype(int)
    assert np.array_equal(truth.stages[idx], night.stages[j])
    assert idx.size == int(np.sum(night.stages != UNSCORED))
    # before the recording: absent, then awake in bed
    assert truth.in_bed_s is not None and truth.out_of_bed_s is not None
    first_in = int(np.flatnonzero(truth.user_present)[0])
    assert abs(first_in * 30.0 - truth.in_bed_s) <= 30.0
    assert np.all(truth.stages[:first_in] == ABSENT)
    assert np.all(truth.stages[first_in : int(rec // 30)] == Stage.WAKE)
    assert not truth.expert_scored[: int(rec // 30)].any()
    # rates and distance only where present
    assert np.all(np.isnan(truth.breath_rate_bpm[~truth.user_present]))
    assert np.all(np.isfinite(truth.breath_rate_bpm[truth.user_present]))
    assert scene.user is not None
    assert np.nanmedian(truth.user_distance_m) == pytest.approx(scene.user.distance_m, abs=0.03)
    assert np.nanmedian(truth.heart_rate_bpm) > 40.0
    # the 10-Hz breath waveform, NaN out of bed
    wave = truth.breath_waveform_mm
    assert wave.shape == (math.ceil(scene.duration_s * 10),)
    assert np.all(np.isnan(wave[: int(truth.in_bed_s * 10) - 1]))
    assert np.all(np.isfinite(wave[int(rec * 10) : int((rec + 3600) * 10)]))
    assert truth.out_of_bed_s == pytest.approx(rec + night.duration_s)
    assert np.all(truth.stages[math.ceil(truth.out_of_bed_s / 30.0) + 1 :] == ABSENT)


@pytest.mark.skipif(not SLP14.exists(), reason="shared data folder not present")
def test_truth_alignment_with_an_epoch_offset() -> None:
    night = load_night(SLP14)  # epoch 0 starts 180 s into the recording
    scene = build_scene("asleep-at-once", night, None, 1)
    rec = scene.recording_start_s
    assert rec is not None and (rec + night.epoch0_offset_s) % 30.0 == 0.0
    truth = SimulatedRadar(scene, CFG, T0).truth
    idx = np.flatnonzero(truth.expert_scored)
    j = np.rint((idx * 30.0 - rec - night.epoch0_offset_s) / 30.0).astype(int)
    assert j.min() == 0
    assert np.array_equal(truth.stages[idx], night.stages[j])
    # the recording's first 180 s were not scored by the expert
    e_rec = int(rec // 30)
    assert np.all(truth.stages[e_rec : e_rec + 6] == UNSCORED)


def test_stage_labels_never_reach_the_frames(night: Night) -> None:
    rng = np.random.default_rng(0)
    fake = dataclasses.replace(night, stages=rng.integers(-1, 4, night.n_epochs).astype(np.int8))
    a = SimulatedRadar(build_scene("reading-then-sleep", night, None, 4), CFG, T0)
    b = SimulatedRadar(build_scene("reading-then-sleep", fake, None, 4), CFG, T0)
    assert a.n_frames == b.n_frames
    # Every scatterer of the whole night (distance and reflectivity per frame) is identical ...
    assert len(a._tracks) == len(b._tracks)
    for ta, tb in zip(a._tracks, b._tracks, strict=True):
        assert ta.k0 == tb.k0
        assert ta.d_m.tobytes() == tb.d_m.tobytes()
        assert ta.a.tobytes() == tb.a.tobytes()
    # ... and so is every rendered frame, the noise included.
    for k in range(0, a.n_frames, 40_000):
        k1 = min(k + 40_000, a.n_frames)
        assert a.render(k, k1).tobytes() == b.render(k, k1).tobytes()
    assert not np.array_equal(a.truth.stages, b.truth.stages)


def test_bathroom_trip(night: Night) -> None:
    scene = build_scene("bathroom-trip", night, None, 2)
    r = SimulatedRadar(scene, CFG, T0)
    truth = r.truth
    assert len(truth.absences) == 1
    away, back = truth.absences[0]
    rec = scene.recording_start_s
    assert rec is not None
    assert away == pytest.approx(round((rec + 0.55 * night.duration_s) / 30) * 30)
    assert 300.0 <= back - away <= 600.0 and away % 30 == 0 and back % 30 == 0
    e0, e1 = int(away // 30), int(back // 30)
    assert np.all(truth.stages[e0:e1] == ABSENT)
    assert truth.user_present[e0 - 1] and truth.user_present[e1]
    # no person in the user's bins while away (after walking out)
    k = int((away + 60.0) * FS)
    iq = r.render(k, k + int(60 * FS))
    near = (_bins() > 0.55) & (_bins() < 0.95)
    ratio = np.var(iq[:, near], axis=0) / (2 * scene.noise_sigma**2)
    assert np.all(ratio < 1.3)
    # the recording's clock kept running: after return the expert stages resume at the right epoch
    idx = np.flatnonzero(truth.expert_scored & (np.arange(truth.n_epochs) >= e1))
    j = ((idx * 30.0 - rec - night.epoch0_offset_s) / 30.0).astype(int)
    assert np.array_equal(truth.stages[idx], night.stages[j])


def test_walking_in_from_out_of_range(scene: Scene, radar: SimulatedRadar) -> None:
    user = scene.user
    assert user is not None
    arrive = user.presence[0][0]
    k = int((arrive - user.walk_s - 10.0) * FS)
    before = radar.render(k, k + int(8 * FS))
    ratio = np.var(before, axis=0) / (2 * scene.noise_sigma**2)
    assert np.all(ratio < 1.4)  # nobody yet
    k = int((arrive + 10.0) * FS)
    after = radar.render(k, k + int(30 * FS))
    b = int(np.argmin(np.abs(_bins() - user.distance_m)))
    assert np.var(after[:, b]) / (2 * scene.noise_sigma**2) > 50.0


def test_cat_scene(night: Night) -> None:
    scene = build_scene("cat", night, None, 0)
    cat = next(a for a in scene.actors if isinstance(a, Pet))
    assert scene.intent_s is not None
    assert cat.presence[0][0] == pytest.approx(scene.intent_s + 7200.0)
    assert cat.presence[0][1] - cat.presence[0][0] == pytest.approx(1200.0)
    r = SimulatedRadar(scene, CFG, T0)
    assert r.truth.pet_present.sum() == 40


@pytest.mark.parametrize("name", sorted(SCENES))
def test_every_scene_builds_and_renders(name: str, night: Night) -> None:
    scene = build_scene(name, night, None, 11, empty_duration_s=900.0)
    assert scene.name == name and scene.duration_s > 60.0
    r = SimulatedRadar(scene, CFG, T0, seed=5)
    r.start()
    f = r.read(int(60 * FS))
    assert f is not None and f.iq.shape == (1200, CFG.n_bins)
    assert np.all(np.isfinite(f.iq.view(np.float32)))
    if scene.user is not None:
        rec = scene.recording_start_s
        assert rec is not None and (rec + night.epoch0_offset_s) % 30.0 == 0.0
        assert scene.intent_s == rec
        spec = SCENES[name]
        arrive = scene.user.presence[0][0]
        assert spec.arrive_s - 10.0 <= arrive <= spec.arrive_s + 10.0
        awake = rec - arrive
        lo, hi = spec.awake_before_s
        assert lo - 10 <= awake <= hi + 40.0
        assert scene.duration_s == pytest.approx(
            rec + night.duration_s + scene.user.walk_s + spec.tail_s
        )
    assert r.truth.stages.shape == (math.ceil(scene.duration_s / 30.0),)


def test_whole_night_renders_fast(night: Night) -> None:

    scene = build_scene("reading-then-sleep", night, None, 0)
    r = SimulatedRadar(scene, CFG, T0)
    r.start()
    n = 0
    while (f := r.read(1200)) is not None:
        n += f.n_frames
    # Speed is the benchmark's business (benchmarks/simulate.py), never a test's.
    assert n == r.n_frames == math.ceil(scene.duration_s * FS - 1e-9)
