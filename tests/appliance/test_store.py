"""Tests of the session store against real SQLite files in tmp_path."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import appliance.store as store_mod
from appliance.errors import ApplianceError, StoreError
from appliance.frames import ABSENT, EpochFeatures, SessionEvent, Stage, StagedEpoch
from appliance.store import SCHEMA_VERSION, EpochRow, Store

NAMES = ("resp_rate", "resp_var", "movement", "hr")
T0 = 1_700_000_000.0
REPO = Path(__file__).resolve().parents[2]


def staged(
    idx: int,
    stage: int = Stage.LIGHT,
    *,
    values: tuple[float, ...] = (14.0, 0.5, 0.1, 60.0),
    heart: float | None = 58.0,
    movement: float = 0.2,
) -> StagedEpoch:
    probs = (0.0, 0.0, 0.0, 0.0) if stage == ABSENT else (0.1, 0.6, 0.2, 0.1)
    feats = EpochFeatures(
        t_s=T0 + 30.0 * idx,
        index=idx,
        present_fraction=1.0,
        values=values,
        breath_rate_bpm=14.5,
        heart_rate_bpm=heart,
        distance_m=0.8,
        movement=movement,
        presence_confidence=0.95,
    )
    return StagedEpoch(
        t_s=T0 + 30.0 * idx,
        index=idx,
        stage=int(stage),
        probs=probs,
        confidence=max(probs),
        features=feats,
    )


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(tmp_path / "store.db") as s:
        yield s


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path))


# ---- opening and schema ---------------------------------------------------------------------


def test_open_creates_parent_dirs_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.db"
    with Store.open(path) as s:
        assert path.is_file()
        conn = s._conn
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    # WAL mode is persistent in the file, not just the connection.
    with raw(path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_empty_db_migrates_to_latest_and_reopen_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with raw(path) as c:  # an existing, empty (v0) file
        assert c.execute("PRAGMA user_version").fetchone()[0] == 0
    with Store.open(path) as s:
        sid = s.start_session(T0, tz="UTC", source="test")
    c = raw(path)
    assert (
        c.execute("PRAGMA user_version").fetchone()[0]
        == SCHEMA_VERSION
        == len(store_mod.MIGRATIONS)
    )
    schema = c.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    tables = {name for typ, name, _ in schema if typ == "table"}
    assert {"sessions", "epochs", "events", "environment"} <= tables
    c.close()
    for _ in range(2):
        with Store.open(path) as s:
            assert [r.id for r in s.sessions()] == [sid]
    c = raw(path)
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert c.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
    c.close()


def test_new_migration_applies_on_reopen_and_keeps_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.db"
    with Store.open(path) as s:
        sid = s.start_session(T0, tz="UTC", source="test")
    extra = (*store_mod.MIGRATIONS, ("ALTER TABLE sessions ADD COLUMN label TEXT",))
    monkeypatch.setattr(store_mod, "MIGRATIONS", extra)
    with Store.open(path) as s:
        assert s.session(sid) is not None
    with raw(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == len(extra)
        cols = [r[1] for r in c.execute("PRAGMA table_info(sessions)")]
        assert "label" in cols


def test_failed_migration_rolls_back_whole_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.db"
    Store.open(path).close()
    bad = (
        *store_mod.MIGRATIONS,
        ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL"),
    )
    monkeypatch.setattr(store_mod, "MIGRATIONS", bad)
    with pytest.raises(StoreError, match="migrate"):
        Store.open(path)
    with raw(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        names = {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
        assert "half_done" not in names


def test_newer_schema_version_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    Store.open(path).close()
    with raw(path) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer") as info:
        Store.open(path)
    assert not isinstance(info.value, sqlite3.Error)
    assert "\n" not in str(info.value)


def test_parent_is_a_regular_file_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("I am a file")
    with pytest.raises(StoreError, match="not a directory") as info:
        Store.open(blocker / "store.db")
    assert isinstance(info.value, ApplianceError)
    assert not isinstance(info.value, sqlite3.Error)
    assert "\n" not in str(info.value)


def test_path_is_a_directory_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store.open(tmp_path)


def test_garbage_file_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert not isinstance(info.value, sqlite3.Error)
    assert "not a database" in str(info.value)
    assert "\n" not in str(info.value)


def test_disk_full_raises_store_error_and_keeps_earlier_epochs(store: Store) -> None:
    sid = store.start_session(T0, tz="UTC", source="test")
    store.add_epoch(sid, staged(0), NAMES)
    assert store._conn is not None
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the "disk" is now full
    wide = tuple(float(i) for i in range(2000))
    names = tuple(f"f{i}" for i in range(2000))
    stored = 1
    with pytest.raises(StoreError, match="full") as info:
        for i in range(1, 50):
            store.add_epoch(sid, staged(i, values=wide), names)
            stored += 1
    assert not isinstance(info.value, sqlite3.Error)
    # The failed write was rolled back whole; everything committed before it is still there.
    assert [e.idx for e in store.epochs(sid)] == list(range(stored))
    assert store._conn is not None and not store._conn.in_transaction
    assert store.integrity_ok()


def test_closed_store_raises_store_error(tmp_path: Path) -> None:
    s = Store.open(tmp_path / "store.db")
    s.close()
    s.close()  # idempotent
    assert s.closed
    with pytest.raises(StoreError, match="closed"):
        s.sessions()
    with pytest.raises(StoreError, match="closed"):
        s.start_session(T0, tz="UTC", source="test")


# ---- round trips ----------------------------------------------------------------------------


def test_session_round_trip_with_epochs_events_and_summary(store: Store) -> None:
    sid = store.start_session(
        T0, tz="Europe/Berlin", source="simulated", meta={"model": "live-v1", "seed": 7}
    )
    stages = [Stage.WAKE, Stage.LIGHT, Stage.DEEP, Stage.REM, ABSENT]
    for i, st in enumerate(stages):
        store.add_epoch(sid, staged(i, st, values=(14.0, math.nan, 0.1, 60.0 + i)), NAMES)
    store.add_event(sid, SessionEvent(T0 + 5.0, "in_bed"))
    store.add_event(sid, SessionEvent(T0 + 60.0, "asleep", '{"latency_min": 1}'))
    store.add_event(None, SessionEvent(T0 + 70.0, "alarm_ringing"))
    summary = {"tst_min": 2.0, "efficiency": 0.8, "latency_to_rem_min": None, "waso_min": 0}
    store.close_session(sid, T0 + 150.0, summary)

    row = store.session(sid)
    assert row is not None
    assert row.id == sid
    assert row.started_s == T0
    assert row.ended_s == T0 + 150.0
    assert not row.is_open
    assert (row.tz, row.source, row.nap) == ("Europe/Berlin", "simulated", False)
    assert row.meta == {"model": "live-v1", "seed": 7}
    assert row.summary == summary

    epochs = store.epochs(sid)
    assert [e.idx for e in epochs] == [0, 1, 2, 3, 4]
    assert [e.stage for e in epochs] == [int(s) for s in stages]
    e1 = epochs[1]
    assert isinstance(e1, EpochRow)
    assert e1.session_id == sid
    assert e1.t_s == T0 + 30.0
    assert e1.probs == (0.1, 0.6, 0.2, 0.1)
    assert isinstance(e1.probs, tuple)
    assert e1.confidence == 0.6
    assert list(e1.features) == list(NAMES)
    assert e1.features["resp_rate"] == 14.0
    assert math.isnan(e1.features["resp_var"])  # NaN → null → NaN
    assert e1.features["hr"] == 61.0
    assert (e1.breath_rate_bpm, e1.heart_rate_bpm, e1.distance_m) == (14.5, 58.0, 0.8)
    assert (e1.movement, e1.presence_confidence, e1.present_fraction) == (0.2, 0.95, 1.0)
    assert epochs[4].probs == (0.0, 0.0, 0.0, 0.0)

    events = store.events(sid)
    assert [(e.kind, e.t_s) for e in events] == [("in_bed", T0 + 5.0), ("asleep", T0 + 60.0)]
    assert events[1].detail == '{"latency_min": 1}'
    assert events[1].to_event() == SessionEvent(T0 + 60.0, "asleep", '{"latency_min": 1}')
    assert [e.kind for e in store.events(None)] == ["alarm_ringing"]
    assert store.integrity_ok()


def test_features_stored_as_strict_json_with_null_for_nan(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path) as s:
        sid = s.start_session(T0, tz="UTC", source="test")
        s.add_epoch(sid, staged(0, values=(1.0, math.nan, math.inf, 2.0), heart=None), NAMES)
    with raw(path) as c:
        features, probs, hr = c.execute("SELECT features, probs, heart_rate FROM epochs").fetchone()
    assert features == (
        '{"resp_rate":1.0,"resp_var":null,"movement":null,"hr":2.0,'
        '"illuminance_lux":null,"other_fraction":0.0}'
    )
    assert probs == "[0.1,0.6,0.2,0.1]"
    assert hr is None


def test_json_handles_numpy_scalars_arrays_and_nan(store: Store) -> None:
    meta = {
        "f32": np.float32(0.5),
        "i64": np.int64(3),
        "flag": np.bool_(True),
        "arr": np.array([1.0, np.nan]),
        "nested": {"t": (1, 2), "nan": float("nan")},
    }
    sid = store.start_session(T0, tz="UTC", source="test", meta=meta, nap=True)
    store.close_session(sid, T0 + 10.0, {"tst_min": np.float64(7.5), "n": np.int32(2)})
    row = store.session(sid)
    assert row is not None
    assert row.nap is True
    assert row.meta == {
        "f32": 0.5,
        "i64": 3,
        "flag": True,
        "arr": [1.0, None],
        "nested": {"t": [1, 2], "nan": None},
    }
    assert row.summary == {"tst_min": 7.5, "n": 2}


def test_numpy_values_in_epoch_are_stored(store: Store) -> None:
    sid = store.start_session(T0, tz="UTC", source="test")
    ep = staged(0)
    feats = EpochFeatures(
        t_s=np.float64(T0),
        index=0,
        present_fraction=np.float32(0.5),
        values=tuple(np.float32(v) for v in (1.0, 2.0, 3.0, 4.0)),
        breath_rate_bpm=np.float32(12.0),
        heart_rate_bpm=None,
        distance_m=np.float64(1.25),
        movement=np.float32(0.25),
        presence_confidence=np.float32(0.75),
    )
    ep = StagedEpoch(
        t_s=np.float64(T0),
        index=np.int64(0),
        stage=np.int64(2),
        probs=tuple(np.float32(p) for p in (0.0, 0.25, 0.75, 0.0)),
        confidence=np.float32(0.75),
        features=feats,
    )
    store.add_epoch(sid, ep, NAMES)
    (row,) = store.epochs(sid)
    assert row.stage == 2
    assert row.probs == (0.0, 0.25, 0.75, 0.0)
    assert row.features == {"resp_rate": 1.0, "resp_var": 2.0, "movement": 3.0, "hr": 4.0}
    assert (row.breath_rate_bpm, row.heart_rate_bpm, row.distance_m) == (12.0, None, 1.25)
    assert (row.movement, row.presence_confidence, row.present_fraction) == (0.25, 0.75, 0.5)


def test_an_epoch_reads_back_with_its_light_level_and_owner(store: Store) -> None:
    # A resumed session re-scores its intent from stored epochs: the lux and the share of
    # someone else's seconds must come back, or a restart changes the night's story.
    sid = store.start_session(T0, tz="UTC", source="test")
    f = staged(0).features
    lit = replace(f, illuminance_lux=42.5, other_fraction=0.75)
    store.add_epoch(sid, replace(staged(0), features=lit), NAMES)
    store.add_epoch(sid, staged(1), NAMES)
    back = [r.to_staged(NAMES).features for r in store.epochs(sid)]
    assert (back[0].illuminance_lux, back[0].other_fraction) == (42.5, 0.75)
    assert (back[1].illuminance_lux, back[1].other_fraction) == (f.illuminance_lux, 0.0)
    assert back[0].values == f.values


def test_add_epoch_is_idempotent_per_index(store: Store) -> None:
    sid = store.start_session(T0, tz="UTC", source="test")
    store.add_epoch(sid, staged(0), NAMES)
    store.add_epoch(sid, staged(1, Stage.LIGHT, movement=0.2), NAMES)
    store.add_epoch(sid, staged(1, Stage.DEEP, movement=0.7), NAMES)  # the resumed re-send
    epochs = store.epochs(sid)
    assert [e.idx for e in epochs] == [0, 1]
    assert epochs[1].stage == Stage.DEEP
    assert epochs[1].movement == 0.7
    assert store._conn is not None
    (n,) = store._conn.execute("SELECT count(*) FROM epochs WHERE idx = 1").fetchone()
    assert n == 1


def test_same_index_in_two_sessions_is_two_rows(store: Store) -> None:
    a = store.start_session(T0, tz="UTC", source="test")
    b = store.start_session(T0 + 100, tz="UTC", source="test")
    store.add_epoch(a, staged(0, Stage.WAKE), NAMES)
    store.add_epoch(b, staged(0, Stage.REM), NAMES)
    assert [e.stage for e in store.epochs(a)] == [Stage.WAKE]
    assert [e.stage for e in store.epochs(b)] == [Stage.REM]


def test_epochs_come_back_ordered_by_index(store: Store) -> None:
    sid = store.start_session(T0, tz="UTC", source="test")
    for i in (3, 0, 2, 1):
        store.add_epoch(sid, staged(i), NAMES)
    assert [e.idx for e in store.epochs(sid)] == [0, 1, 2, 3]


def test_add_epoch_rejects_bad_arguments_without_writing(store: Store) -> None:
    sid = store.start_session(T0, tz="UTC", source="test")
    with pytest.raises(ValueError, match="feature names"):
        store.add_epoch(sid, staged(0), NAMES[:3])
    with pytest.raises(ValueError, match="duplicate"):
        store.add_epoch(sid, staged(0), ("a", "a", "b", "c"))
    with pytest.raises(ValueError, match="stage"):
        store.add_epoch(sid, staged(0, stage=7), NAMES)
    assert store.epochs(sid) == []


def test_epoch_for_unknown_session_raises_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        store.add_epoch(12345, staged(0), NAMES)
    with pytest.raises(StoreError):
        store.add_event(12345, SessionEvent(T0, "in_bed"))
    with pytest.raises(StoreError, match="no such session"):
        store.close_session(12345, T0, {})


# ---- sessions -------------------------------------------------------------------------------


def test_open_session_finds_the_unclosed_one_not_a_closed_one(store: Store) -> None:
    assert store.open_session() is None
    closed = store.start_session(T0, tz="UTC", source="test")
    store.close_session(closed, T0 + 3600, {"tst_min": 50})
    assert store.open_session() is None
    unclosed = store.start_session(T0 + 86_400, tz="UTC", source="test")
    found = store.open_session()
    assert found is not None
    assert found.id == unclosed
    assert found.is_open
    assert found.summary is None
    store.close_session(unclosed, T0 + 90_000, {})
    assert store.open_session() is None


def test_open_session_is_the_latest_of_several_unclosed(store: Store) -> None:
    store.start_session(T0, tz="UTC", source="test")
    latest = store.start_session(T0 + 1000, tz="UTC", source="test")
    store.start_session(T0 + 500, tz="UTC", source="test")  # inserted later, started earlier
    found = store.open_session()
    assert found is not None and found.id == latest


def test_sessions_newest_first_with_limit(store: Store) -> None:
    ids = [store.start_session(T0 + 86_400 * d, tz="UTC", source="test") for d in range(5)]
    assert [r.id for r in store.sessions()] == ids[::-1]
    assert [r.id for r in store.sessions(limit=2)] == [ids[4], ids[3]]
    assert store.sessions(limit=0) == []
    assert store.session(999) is None
    with pytest.raises(ValueError):
        store.sessions(limit=-1)


def test_environment_window_is_half_open_and_time_ordered(store: Store) -> None:
    store.add_environment(T0 + 20, "sht4x", "humidity", 45.0, "%RH")
    store.add_environment(T0 + 10, "sht4x", "temperature", np.float32(19.5), "degC")
    store.add_environment(T0 + 30, "tsl2591", "illuminance", 0.01, "lx")
    store.add_environment(T0 + 15, "tsl2591", "illuminance", math.nan, "lx")
    rows = store.environment(T0 + 10, T0 + 30)
    assert [(r.t_s, r.quantity) for r in rows] == [
        (T0 + 10, "temperature"),
        (T0 + 15, "illuminance"),
        (T0 + 20, "humidity"),
    ]
    assert rows[0].value == 19.5 and rows[0].sensor == "sht4x" and rows[0].unit == "degC"
    assert math.isnan(rows[1].value)


def test_integrity_ok_reports_corruption(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path) as s:
        sid = s.start_session(T0, tz="UTC", source="test")
        for i in range(200):
            s.add_epoch(sid, staged(i), NAMES)
        assert s.integrity_ok()
    size = path.stat().st_size
    with path.open("r+b") as f:  # scribble over the middle of the file, not the header
        f.seek(size // 2)
        f.write(b"\xff" * 4096)
    with Store.open(path) as s:  # the header is intact, so it opens; the check must see it
        assert not s.integrity_ok()


def test_second_connection_reads_while_first_keeps_writing(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with Store.open(path) as daemon, Store.open(path) as cli:
        sid = daemon.start_session(T0, tz="UTC", source="test")
        daemon.add_epoch(sid, staged(0), NAMES)
        assert [e.idx for e in cli.epochs(sid)] == [0]
        daemon.add_epoch(sid, staged(1), NAMES)
        assert [e.idx for e in cli.epochs(sid)] == [0, 1]
        cli.add_event(sid, SessionEvent(T0 + 1, "alarm_stopped"))
        assert [e.kind for e in daemon.events(sid)] == ["alarm_stopped"]


# ---- crash safety ---------------------------------------------------------------------------

_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from appliance.frames import EpochFeatures, SessionEvent, StagedEpoch
    from appliance.store import Store

    T0 = {t0!r}
    store = Store.open(Path({path!r}))
    sid = store.start_session(T0, tz="UTC", source="crash-test")
    store.add_event(sid, SessionEvent(T0, "in_bed"))
    for i in range({n}):
        t = T0 + 30.0 * i
        f = EpochFeatures(t, i, 1.0, (14.0, 0.5, 0.1, 60.0), 14.5, 58.0, 0.8, 0.2, 0.95)
        store.add_epoch(sid, StagedEpoch(t, i, 1, (0.1, 0.6, 0.2, 0.1), 0.6, f), {names!r})
    print("ok", sid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def test_epochs_survive_sigkill_right_after_add_epoch(tmp_path: Path) -> None:
    path = tmp_path / "night" / "store.db"
    n = 25
    script = _CRASH_SCRIPT.format(repo=str(REPO), path=str(path), n=n, t0=T0, names=NAMES)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=str(REPO),
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.startswith("ok"), proc.stderr
    sid = int(proc.stdout.split()[1])
    # The process died without closing: the WAL still holds the writes.
    assert (path.parent / (path.name + "-wal")).exists()

    with Store.open(path) as s:
        assert s.integrity_ok()
        epochs = s.epochs(sid)
        assert [e.idx for e in epochs] == list(range(n))
        assert all(e.stage == Stage.LIGHT for e in epochs)
        assert [e.kind for e in s.events(sid)] == ["in_bed"]
        resumed = s.open_session()
        assert resumed is not None and resumed.id == sid
        # Resuming re-sends the last epoch: still n rows.
        s.add_epoch(sid, staged(n - 1, Stage.REM), NAMES)
        assert len(s.epochs(sid)) == n
        assert s.epochs(sid)[-1].stage == Stage.REM


def test_v4_alarms_that_had_the_old_default_sound_ring_the_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before v4 no alarm's own sound was rung: 'chimes' was only the column's default.
    path = tmp_path / "store.db"
    monkeypatch.setattr(store_mod, "MIGRATIONS", store_mod.MIGRATIONS[:3])
    with Store.open(path):
        pass
    with raw(path) as c:
        for t, sound in (("06:00", "chimes"), ("07:00", "bowl")):
            c.execute(
                "INSERT INTO alarms (time, days, sound, created_s) VALUES (?, 127, ?, 0)",
                (t, sound),
            )
    monkeypatch.undo()
    with Store.open(path) as s:
        assert [(a.time, a.sound) for a in s.alarms()] == [("06:00", ""), ("07:00", "bowl")]
