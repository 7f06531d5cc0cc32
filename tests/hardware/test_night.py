from pathlib import Path

import numpy as np
import pytest

from appliance.errors import DataError
from appliance.frames import UNSCORED, Stage
from hardware.radar.night import Night, default_night_path, load_night, map_stages

SHARED = Path("/work/shared/data")
SHARED_FILES = sorted(SHARED.glob("*.npz")) if SHARED.is_dir() else []

RAW_TO_PRODUCT = {
    0: Stage.WAKE,
    1: Stage.LIGHT,
    2: Stage.LIGHT,
    3: Stage.DEEP,
    4: Stage.REM,
    -1: UNSCORED,
}


def _check_against_raw(path: Path, night: Night) -> None:
    with np.load(path, allow_pickle=False) as z:
        raw_stages = z["stages"]
        beat_type = z["beat_type"]
        raw_beats = z["beat_t_s"]
        assert night.events.tolist() == z["events"].tolist()
        assert night.duration_s == pytest.approx(float(z["duration_s"]))
        assert night.epoch0_offset_s == pytest.approx(float(z["epoch0_offset_s"]))
    expected = np.array([RAW_TO_PRODUCT[int(s)] for s in raw_stages], dtype=np.int8)
    assert night.stages.dtype == np.int8
    assert np.array_equal(night.stages, expected)
    # every beat but the record-start marker (9)
    assert np.array_equal(night.beat_t_s, raw_beats[beat_type != 9])
    assert night.beat_t_s.dtype == np.float64
    assert np.all(np.diff(night.beat_t_s) >= 0)
    assert night.events.dtype == np.int16
    assert night.resp is None and night.fs_resp is None
    assert night.epoch0_offset_s + night.epoch_s * night.n_epochs <= night.duration_s + 1e-6


def test_shipped_sleeper_loads_and_maps() -> None:
    path = default_night_path("sleeper")
    night = load_night(path)
    assert night.record == "slp61"
    assert night.subject == "slp61"
    assert night.n_epochs == 720
    assert night.duration_s == pytest.approx(22200.0)
    assert night.epoch0_offset_s == pytest.approx(600.0)
    _check_against_raw(path, night)
    assert not night.beat_t_s.flags.writeable
    assert not night.stages.flags.writeable
    starts = night.epoch_start_s()
    assert starts[0] == night.epoch0_offset_s and starts[1] - starts[0] == 30.0


def test_shipped_partner_loads() -> None:
    night = load_night(default_night_path("partner"))
    assert night.record == "slp04"
    assert default_night_path("partner").name == "slpdb_slp04.npz"


@pytest.mark.skipif(not SHARED_FILES, reason="shared data folder not present")
@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.stem)
def test_every_shared_night_loads_and_maps(path: Path) -> None:
    _check_against_raw(path, load_night(path))


def test_map_stages_rejects_unknown_codes() -> None:
    assert map_stages(np.array([0, 1, 2, 3, 4, -1])).tolist() == [0, 1, 1, 2, 3, -1]
    with pytest.raises(ValueError):
        map_stages(np.array([0, 5]))


def test_missing_file_raises_data_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "nope.npz"
    with pytest.raises(DataError, match=r"nope\.npz"):
        load_night(bad)


def test_npz_without_keys_raises_data_error(tmp_path: Path) -> None:
    f = tmp_path / "other.npz"
    np.savez(f, x=np.arange(3))
    with pytest.raises(DataError, match=r"other\.npz.*missing keys"):
        load_night(f)


def test_garbage_file_raises_data_error(tmp_path: Path) -> None:
    f = tmp_path / "garbage.npz"
    f.write_bytes(b"this is not a zip archive")
    with pytest.raises(DataError, match=r"garbage\.npz"):
        load_night(f)


def test_inconsistent_arrays_raise_data_error(tmp_path: Path) -> None:
    f = tmp_path / "short.npz"
    np.savez(
        f,
        stages=np.zeros(4, np.int8),
        events=np.zeros(3, np.int16),
        epoch0_offset_s=np.float32(0),
        beat_t_s=np.array([0.0, 1.0, 2.0]),
        beat_type=np.zeros(3, np.int8),
        duration_s=np.float32(120),
    )
    with pytest.raises(DataError, match=r"short\.npz"):
        load_night(f)


def test_resp_is_kept_when_present(tmp_path: Path) -> None:
    f = tmp_path / "resp.npz"
    np.savez(
        f,
        stages=np.zeros(4, np.int8),
        events=np.zeros(4, np.int16),
        epoch0_offset_s=np.float32(0),
        beat_t_s=np.arange(0.0, 120.0, 1.0),
        beat_type=np.zeros(120, np.int8),
        duration_s=np.float32(120),
        resp=np.sin(np.arange(0, 120, 0.1)).astype(np.float32),
        fs_resp=np.float32(10.0),
    )
    night = load_night(f)
    assert night.resp is not None and night.resp.size == 1200
    assert night.fs_resp == 10.0
    assert night.record == "resp"


def test_unknown_role() -> None:
    with pytest.raises(ValueError):
        default_night_path("cat")  # type: ignore[arg-type]
