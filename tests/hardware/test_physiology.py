import ast
import dataclasses
import inspect
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

import hardware.radar.physiology as physiology_module
from hardware.radar.night import Night, default_night_path, load_night
from hardware.radar.physiology import Physiology, clean_rr

FS = 20.0
# These tests were worked out on slp45 (its apnea, arousal and movement-time flags stand alone in
# their epochs); CI always has the shared nights beside the clone.
SLP45 = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "slpdb_slp45.npz"


@pytest.fixture(scope="module")
def night() -> Night:
    return load_night(SLP45)


@pytest.fixture(scope="module")
def partner() -> Night:
    return load_night(default_night_path("partner"))


@pytest.fixture(scope="module")
def phys(night: Night) -> Physiology:
    return Physiology(night, np.random.default_rng(7), frame_rate_hz=FS)


def _synthetic_night(
    hr_bpm: np.ndarray, fs_hr: float, *, events: np.ndarray | None = None, **kw: object
) -> Night:
    """A night whose beats follow a given instantaneous heart rate (sampled at fs_hr)."""
    t = np.arange(hr_bpm.size) / fs_hr
    phase = np.concatenate([[0.0], np.cumsum(hr_bpm[:-1] / 60.0) / fs_hr])
    beats = np.interp(np.arange(1, int(phase[-1])), phase, t)
    duration = float(t[-1])
    n_ep = int(duration // 30)
    return Night(
        record="synthetic",
        subject="synthetic",
        beat_t_s=beats,
        stages=np.zeros(n_ep, np.int8),
        events=np.zeros(n_ep, np.int16) if events is None else events,
        epoch0_offset_s=0.0,
        duration_s=duration,
        **kw,  # type: ignore[arg-type]
    )


def _epoch(x: np.ndarray, e: int | np.integer) -> np.ndarray:
    return x[int(e * 30 * FS) : int((e + 1) * 30 * FS)]


# ---------------------------------------------------------------- the leak test


def test_stage_labels_never_shape_the_signal(night: Night, phys: Physiology) -> None:
    rng = np.random.default_rng(123)
    fake = dataclasses.replace(night, stages=rng.integers(-1, 4, night.n_epochs).astype(np.int8))
    other = Physiology(fake, np.random.default_rng(7), frame_rate_hz=FS)
    for name in (
        "displacement_mm",
        "breath_waveform_mm",
        "heart_waveform_mm",
        "movement_mm",
        "leg_displacement_mm",
        "abdomen_breath_share",
        "amplitude_scale",
        "distance_offset_m",
        "movement_mask",
    ):
        assert np.array_equal(getattr(phys, name), getattr(other, name)), name
    starts = night.epoch_start_s()
    assert np.array_equal(phys.breath_rate_bpm(starts), other.breath_rate_bpm(starts))


def test_physiology_module_never_reads_stages() -> None:
    tree = ast.parse(inspect.getsource(physiology_module))
    reads = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and "stage" in n.attr]
    assert reads == []


# ---------------------------------------------------------------- grid, speed


def test_grid_and_arrays(night: Night, phys: Physiology) -> None:
    n = int(np.ceil(night.duration_s * FS))
    assert phys.t_s.shape == (n,)
    assert np.allclose(np.diff(phys.t_s[:100]), 1 / FS)
    for name in ("displacement_mm", "amplitude_scale", "distance_offset_m"):
        arr = getattr(phys, name)
        assert arr.shape == (n,) and arr.dtype == np.float64 and np.all(np.isfinite(arr))
        assert not arr.flags.writeable
    assert phys.movement_mask.dtype == bool
    assert np.all(np.abs(phys.distance_offset_m) <= 0.04 + 1e-9)
    assert phys.amplitude_scale.min() >= 0.3 and phys.amplitude_scale.max() <= 2.0
    recomposed = phys.breath_waveform_mm + phys.heart_waveform_mm + phys.movement_mm
    assert np.allclose(phys.displacement_mm, recomposed)
    assert 3.0 <= phys.breath_depth_mm <= 12.0


def test_a_whole_night_and_an_awake_body_build(night: Night) -> None:
    # the whole recorded night at 20 Hz, and an 8-h awake body (speed: benchmarks/, not here)
    p = Physiology(night, np.random.default_rng(1), frame_rate_hz=FS)
    q = Physiology(night, np.random.default_rng(1), mode="awake", duration_s=8 * 3600.0)
    assert p.displacement_mm.shape[0] >= int(night.duration_s * FS)
    assert q.displacement_mm.shape[0] >= int(8 * 3600.0 * FS)
    assert np.isfinite(p.displacement_mm).all() and np.isfinite(q.displacement_mm).all()


# ---------------------------------------------------------------- heartbeat


def test_heartbeat_pulses_at_the_beats(night: Night, phys: Physiology) -> None:
    h = phys.heart_waveform_mm
    assert 0.1 < np.percentile(h, 99.9) < 0.8  # a few tenths of a mm
    # the heart rate of the driving series is the recorded one
    _, rr = clean_rr(night.beat_t_s)
    ep = night.epoch_start_s()
    hr = phys.heart_rate_bpm(ep)
    assert np.nanmedian(hr) == pytest.approx(60.0 / np.median(rr), rel=0.05)
    # pulses line up with beats: the spectrum of the heart component peaks at the heart rate
    seg = h[int(3600 * FS) : int(3900 * FS)]
    f, p = signal.welch(seg - seg.mean(), fs=FS, nperseg=2048)
    band = (f > 0.6) & (f < 2.5)
    hr_seg = np.nanmedian(phys.heart_rate_bpm(np.arange(3600.0, 3900.0, 30.0)))
    assert f[band][np.argmax(p[band])] * 60 == pytest.approx(hr_seg, abs=4.0)


# ---------------------------------------------------------------- breathing from RSA


@pytest.mark.parametrize("role", ["sleeper", "partner"])
def test_derived_breathing_follows_rsa(role: str) -> None:
    night = load_night(default_night_path(role))  # type: ignore[arg-type]
    phys = Physiology(night, np.random.default_rng(3), frame_rate_hz=FS)
    br = phys.breath_rate_bpm(night.epoch_start_s())
    assert np.all(np.isfinite(br))
    assert br.min() >= 8.0 - 1e-6 and br.max() <= 24.0 + 1e-6
    # spectral peak of the RR series' respiratory band over the whole night
    t, rr = clean_rr(night.beat_t_s)
    t4 = np.arange(0, night.duration_s, 0.25)
    rr4 = np.interp(t4, t, rr)
    sos = signal.butter(3, (0.1, 0.5), btype="bandpass", fs=4.0, output="sos")
    bp = signal.sosfiltfilt(sos, rr4 - rr4.mean())
    f, p = signal.welch(bp, fs=4.0, nperseg=512)
    band = (f >= 8 / 60) & (f <= 24 / 60)
    peak_bpm = f[band][np.argmax(p[band])] * 60
    assert abs(np.median(br) - peak_bpm) < 2.0


def test_derived_breathing_tracks_a_known_rsa() -> None:
    fs_hr = 20.0
    t = np.arange(0, 3600.0, 1 / fs_hr)
    f_resp = np.where(t < 1800, 12.0, 18.0) / 60.0
    resp_phase = np.cumsum(f_resp) / fs_hr
    hr = 62.0 + 4.0 * np.sin(2 * np.pi * resp_phase)
    night = _synthetic_night(hr, fs_hr)
    phys = Physiology(night, np.random.default_rng(0), frame_rate_hz=FS)
    br = phys.breath_rate_bpm(np.arange(0.0, 3570.0, 30.0))
    first, second = br[5:55], br[65:115]
    assert np.median(first) == pytest.approx(12.0, abs=0.7)
    assert np.median(second) == pytest.approx(18.0, abs=0.7)
    # breath-to-breath variability but no runaway
    assert 0.0 < np.std(first) < 1.5


def test_breath_shape_is_asymmetric(phys: Physiology) -> None:
    # inspiration (chest toward the radar: displacement falling) is shorter than expiration
    b = phys.breath_waveform_mm[int(7200 * FS) : int(7800 * FS)]
    d = np.diff(b)
    falling = np.mean(d < 0)
    assert 0.25 < falling < 0.48


def test_breath_depth_is_stage_independent_and_varies(night: Night, phys: Physiology) -> None:
    ptp = np.array(
        [np.ptp(_epoch(phys.breath_waveform_mm, e)) for e in range(20, night.n_epochs - 5)]
    )
    assert 2.0 < np.median(ptp) < 20.0
    assert np.std(ptp) / np.mean(ptp) > 0.05


# ---------------------------------------------------------------- respiratory events


def test_apnea_flags_reduce_amplitude(night: Night) -> None:
    ev = np.zeros(night.n_epochs, np.int16)
    ev[2::12] = 1 << 2  # obstructive apnea
    ev[5::12] = 1 << 4  # central apnea
    ev[8::12] = 1 << 0  # hypopnea
    flagged = Physiology(
        dataclasses.replace(night, events=ev), np.random.default_rng(5), frame_rate_hz=FS
    )
    clean = Physiology(
        dataclasses.replace(night, events=np.zeros_like(ev)),
        np.random.default_rng(5),
        frame_rate_hz=FS,
    )
    a, r = flagged.breath_waveform_mm, clean.breath_waveform_mm
    assert np.allclose(a, r * flagged.breath_gain)
    for bit, (lo, hi), rms_max in (
        (1 << 2, (0.15, 0.35), 0.75),
        (1 << 4, (0.0, 0.05), 0.85),
        (1 << 0, (0.4, 0.6), 0.9),
    ):
        eps = np.flatnonzero(ev == bit)
        eps = eps[eps < night.n_epochs - 1]
        mins = np.array([_epoch(flagged.breath_gain, e).min() for e in eps])
        assert np.all((mins >= lo - 1e-9) & (mins <= hi + 1e-9)), bit
        rms = [np.std(_epoch(a, e)) / np.std(_epoch(r, e)) for e in eps]
        assert np.median(rms) < rms_max, bit
        # a larger recovery breath after the event
        after = [flagged.breath_gain[int(e * 30 * FS) : int((e + 3) * 30 * FS)].max() for e in eps]
        assert np.median(after) > 1.4
    far = [e for e in range(night.n_epochs) if e % 12 in (11, 0, 1)]
    assert all(np.array_equal(_epoch(a, e), _epoch(r, e)) for e in far)
    # obstructive apnea: thoraco-abdominal paradox
    e = int(np.flatnonzero(ev == 1 << 2)[3])
    assert _epoch(flagged.abdomen_breath_share, e).min() < 0


def test_event_movements(night: Night) -> None:
    ev = np.zeros(night.n_epochs, np.int16)
    mt = np.arange(10, night.n_epochs - 2, 25)
    ev[mt] = 1 << 9  # movement time
    ar = mt + 10
    ev[ar[ar < night.n_epochs]] = 1 << 8  # arousal
    phys = Physiology(
        dataclasses.replace(night, events=ev), np.random.default_rng(2), frame_rate_hz=FS
    )
    for e in mt:
        m = _epoch(phys.movement_mask, e)
        assert m.mean() >= 10 * FS / (30 * FS) - 1e-9  # 10–30 s of movement
        assert np.ptp(_epoch(phys.movement_mm, e)) > 10.0
    with_move = np.mean([_epoch(phys.movement_mask, e).any() for e in ar[ar < night.n_epochs]])
    assert 0.3 < with_move <= 1.0


def test_spontaneous_movements_follow_cardiac_accelerations() -> None:
    fs_hr = 4.0
    t = np.arange(0, 6 * 3600.0, 1 / fs_hr)
    rng = np.random.default_rng(0)
    hr = 58.0 + 1.5 * np.sin(2 * np.pi * 0.25 * t) + 0.5 * rng.standard_normal(t.size)
    surges = np.arange(300.0, t[-1] - 300.0, 600.0)
    for s in surges:
        hr += 15.0 * np.exp(-0.5 * ((t - s - 10.0) / 6.0) ** 2)
    night = _synthetic_night(hr, fs_hr)
    phys = Physiology(night, np.random.default_rng(1), frame_rate_hz=FS)
    m = phys.movement_mask.astype(np.int8)
    onsets = np.flatnonzero(np.diff(m) == 1) / FS
    assert onsets.size > 0
    near = np.array([np.any(np.abs(onsets - s - 10.0) < 25.0) for s in surges])
    assert near.mean() > 0.5
    from_surge = np.array([np.any(np.abs(o - surges - 10.0) < 25.0) for o in onsets])
    assert from_surge.mean() > 0.6


# ---------------------------------------------------------------- resp, synthetic modes


def test_recorded_resp_is_used_as_is() -> None:
    fs_hr = 4.0
    t = np.arange(0, 1800.0, 1 / fs_hr)
    night = _synthetic_night(np.full(t.size, 60.0), fs_hr)
    fs_resp = 25.0
    tr = np.arange(0, night.duration_s, 1 / fs_resp)
    resp = np.sin(2 * np.pi * 0.25 * tr) * (1.0 + 0.3 * np.sin(2 * np.pi * tr / 300.0))
    night = dataclasses.replace(night, resp=resp, fs_resp=fs_resp)
    phys = Physiology(night, np.random.default_rng(0), frame_rate_hz=FS)
    b = phys.breath_waveform_mm
    ref = np.interp(phys.t_s, tr, resp)
    sl = slice(int(60 * FS), int(1700 * FS))
    assert np.corrcoef(b[sl], -ref[sl])[0, 1] > 0.95  # inspiration toward the radar
    assert np.median(phys.breath_rate_bpm(np.arange(60.0, 1700.0, 30.0))) == pytest.approx(
        15.0, abs=0.5
    )


def test_awake_in_bed_mode(night: Night) -> None:
    dur = 3600.0
    awake = Physiology(night, np.random.default_rng(4), mode="awake", duration_s=dur)
    assert awake.t_s.size == int(dur * FS)
    ep = np.arange(0.0, dur - 30.0, 30.0)
    _, rr = clean_rr(night.beat_t_s[night.beat_t_s < 600.0])
    ref = 60.0 / rr.mean()
    hr = awake.heart_rate_bpm(ep)
    assert ref + 2.0 < np.mean(hr) < ref + 12.0
    assert np.std(hr) > 0.5  # variability
    br = awake.breath_rate_bpm(ep)
    assert 13.0 < np.median(br) < 21.0
    onsets = np.flatnonzero(np.diff(awake.movement_mask.astype(np.int8)) == 1)
    assert 40 < onsets.size < 220  # page turns every 20–60 s, posture shifts every 3–10 min
    assert np.ptp(awake.distance_offset_m) > 0.0


def test_pet_mode() -> None:
    cat = Physiology(None, np.random.default_rng(9), mode="pet", duration_s=1200.0)
    ep = np.arange(0.0, 1170.0, 30.0)
    assert 19.0 < np.median(cat.breath_rate_bpm(ep)) < 36.0
    assert 130.0 < np.median(cat.heart_rate_bpm(ep)) < 215.0
    assert np.percentile(cat.heart_waveform_mm, 99.9) < 0.1
    quiet = ~cat.movement_mask
    assert 0.5 < np.ptp(cat.breath_waveform_mm[quiet]) < 6.0
    assert cat.movement_mask.any()


def test_bad_arguments(night: Night) -> None:
    with pytest.raises(ValueError):
        Physiology(None, np.random.default_rng(0), mode="sleeper")
    with pytest.raises(ValueError):
        Physiology(None, np.random.default_rng(0), mode="awake")
    with pytest.raises(ValueError):
        Physiology(night, np.random.default_rng(0), frame_rate_hz=0.0)
