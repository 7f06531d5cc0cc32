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
