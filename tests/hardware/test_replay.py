import json
from pathlib import Path

import numpy as np
import pytest
import synthetic

from appliance.cli import main
from appliance.config import Config
from appliance.errors import DataError
from appliance.replay import replay_recording
from hardware.radar.replay import RecordingWriter, ReplayRadar
from hardware.radar.resample import supported_rate, uniform_frames


def _write(path: Path, seconds: float = 120.0, **frames_kw: object) -> np.ndarray:
    fr = synthetic.frames(seconds, **frames_kw)  # type: ignore[arg-type]
    w = RecordingWriter("simulated A121", {"scene": "test"})
    for part in synthetic.split(fr, 333):
        w.add(part)
    assert w.write(path) == fr.n_frames
    return fr.iq


def test_round_trip_is_exact_in_any_batch_size(tmp_path: Path) -> None:
    iq = _write(tmp_path / "r.npz")
    r = ReplayRadar(tmp_path / "r.npz")
    assert r.radar == "simulated A121" and r.meta == {"scene": "test"}
    assert r.frame_rate_hz == synthetic.FS_HZ and r.range_step_m == synthetic.RANGE_STEP_M
    r.start()
    got = []
    while (f := r.read(777)) is not None:
        got.append(f.iq)
    assert np.array_equal(np.concatenate(got), iq)


def test_sweeps_are_averaged_and_other_keys_ignored(tmp_path: Path) -> None:
    iq = (np.arange(24).reshape(3, 2, 4) * (1 + 1j)).astype(np.complex64)
    np.savez(
        tmp_path / "s.npz",
        iq=iq,
        t_s=np.array([0.0, 0.05, 0.1]),
        range_start_m=0.3,
        range_step_m=0.06,
        frame_rate_hz=20.0,
        radar="A121",
        extra=np.zeros(3),
    )
    r = ReplayRadar(tmp_path / "s.npz")
    r.start()
    f = r.read(10)
    assert f is not None and f.iq.shape == (3, 4)
    assert np.allclose(f.iq, iq.mean(axis=1))
    assert r.read(10) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"iq": np.zeros((3, 4), np.complex64)}, "missing"),
        ({"iq": np.zeros((3, 4)), "t_s": np.arange(3.0)}, "complex"),
        ({"iq": np.zeros((3, 4), np.complex64), "t_s": np.array([0.0, 0.0, 1.0])}, "increase"),
    ],
)
def test_bad_recordings_are_one_line_data_errors(tmp_path: Path, content, message) -> None:
    base = {"range_start_m": 0.3, "range_step_m": 0.06, "frame_rate_hz": 20.0, "radar": "x"}
    if "t_s" not in content and message != "missing":
        content["t_s"] = np.arange(3.0)
    data = content if message == "missing" else {**base, **content}
    np.savez(tmp_path / "b.npz", **data)
    with pytest.raises(DataError, match=message):
        ReplayRadar(tmp_path / "b.npz")


def test_garbage_file_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "g.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        ReplayRadar(tmp_path / "g.npz")


def test_replay_rows_per_epoch_with_nulls_where_nothing_exists(tmp_path: Path) -> None:
    _write(tmp_path / "r.npz", 150.0, absent=((0.0, 60.0),))
    out = replay_recording(Config(), tmp_path / "r.npz")
    eps = out["epochs"]
    assert len(eps) == 5
    keys = {"t_s", "presence", "presence_confidence", "breath_rate", "heart_rate", "distance_m"}
    assert all(keys | {"movement", "stage"} <= set(e) for e in eps)
    assert eps[0]["breath_rate"] is None and eps[0]["presence"] is False
    assert eps[0]["stage"] == "absent"
    assert eps[-1]["presence"] is True and eps[-1]["breath_rate"] == pytest.approx(15.0, abs=1.0)
    assert eps[-1]["stage"] in ("wake", "light", "deep", "rem")
    assert out["wall_s"] > 0
    json.dumps(out, allow_nan=False)


def test_cli_record_then_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = tmp_path / "night.npz"
    assert main(["record", "--out", str(rec), "--duration-s", "90", "--scene", "empty-room"]) == 0
    assert ReplayRadar(rec).n_frames == 90 * 20
    out = tmp_path / "out.json"
    assert main(["replay", str(rec), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert len(data["epochs"]) == 3 and all(e["stage"] == "absent" for e in data["epochs"])
    assert main(["replay", str(tmp_path / "missing.npz")]) == 2
    assert "appliance: error:" in capsys.readouterr().err


def test_a_uniform_recording_is_played_bit_for_bit() -> None:
    t = 1000.0 + np.arange(200) / 20.0 + np.random.default_rng(0).normal(0, 0.002, 200)
    iq = (np.arange(400).reshape(200, 2) * (1 - 2j)).astype(np.complex64)
    u = uniform_frames(t, iq, 20.0)
    assert not u.resampled and u.rate_hz == 20.0
    assert np.array_equal(u.t_s, t) and np.array_equal(u.iq, iq)


@pytest.mark.parametrize(("rate", "to"), [(17.0, 20.0), (25.0, 20.0), (13.0, 10.0), (34.0, 30.0)])
def test_other_frame_rates_go_on_the_nearest_supported_grid(rate: float, to: float) -> None:
    t = 50.0 + np.arange(int(60 * rate)) / rate
    # A 0.25-Hz phase rotation (breathing) with a static offset (clutter) on two points.
    x = 3.0 + np.exp(2j * np.pi * 0.25 * t)
    iq = np.stack([x, 2 * x], axis=1).astype(np.complex64)
    u = uniform_frames(t, iq, rate)
    assert u.resampled and u.rate_hz == to == supported_rate(rate)
    assert np.allclose(np.diff(u.t_s), 1.0 / to) and u.t_s[0] == t[0] and u.t_s[-1] <= t[-1]
    want = 3.0 + np.exp(2j * np.pi * 0.25 * u.t_s)
    assert np.max(np.abs(u.iq[:, 0] - want)) < 0.02 and np.allclose(u.iq[:, 1], 2 * u.iq[:, 0])


def test_a_long_hole_is_held_not_bridged() -> None:
    t = np.concatenate([np.arange(0, 10, 0.05), np.arange(15, 20, 0.05)])
    iq = np.where(t < 12, 1.0 + 0j, 5.0 + 0j).astype(np.complex64)[:, None]
    u = uniform_frames(t + 0.01 * np.sin(t), iq, 20.0)  # jittered: resampled
    assert u.resampled and u.held_gaps == 1
    inside = (u.t_s > 10.0) & (u.t_s < 15.0)
    assert np.all(u.iq[inside, 0] == 1.0)  # the last frame before the hole, not a ramp to 5


def test_a_bad_frame_rate_is_a_data_error(tmp_path: Path) -> None:
    base = {"range_start_m": 0.3, "range_step_m": 0.06, "radar": "x", "t_s": np.arange(3.0)}
    np.savez(tmp_path / "r.npz", iq=np.zeros((3, 2), np.complex64), frame_rate_hz=0.0, **base)
    with pytest.raises(DataError, match="frame rate"):
        ReplayRadar(tmp_path / "r.npz")


def test_a_recording_from_another_radar_rate_with_lost_frames_replays(tmp_path: Path) -> None:
    # A recording not made by our twin: 17 Hz, timestamps jittered by 4 ms, 3 % of frames lost.
    fr = synthetic.frames(150.0)
    rng = np.random.default_rng(3)
    t17 = fr.t_s[0] + np.arange(0.0, 149.5, 1 / 17.0)
    t17 = np.sort(rng.choice(t17, int(t17.size * 0.97), replace=False))
    t17 += rng.normal(0, 0.004, t17.size)
    iq17 = np.stack(
        [
            np.interp(t17, fr.t_s, fr.iq[:, j].real) + 1j * np.interp(t17, fr.t_s, fr.iq[:, j].imag)
            for j in range(fr.n_bins)
        ],
        axis=1,
    ).astype(np.complex64)
    geometry = {"range_start_m": fr.range_start_m, "range_step_m": fr.range_step_m}
    np.savez(tmp_path / "r.npz", iq=iq17, t_s=t17, frame_rate_hz=17.0, radar="other", **geometry)
    assert ReplayRadar(tmp_path / "r.npz").frame_rate_hz == 20.0
    eps = replay_recording(Config(), tmp_path / "r.npz")["epochs"]
    # A chain told nothing confirms the sleeper within its first minute (no start priming: it
    # would let a curtain that breathes like a sleeper for seconds be confirmed).
    assert len(eps) == 5 and all(e["presence"] for e in eps[2:])
    assert eps[-1]["breath_rate"] == pytest.approx(15.0, abs=1.0)
    assert eps[-1]["distance_m"] == pytest.approx(0.7, abs=0.05)
