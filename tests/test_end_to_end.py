"""One whole simulated night, end to end: scene → radar → daemon → store → report, and the CLI.

The night runs once per session (~25 s); every test below reads the same result and database.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance.cli import main
from appliance.config import Config
from appliance.frames import EPOCH_S
from appliance.simulation import SimulationResult, simulate_night
from appliance.store import Store

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STAGES = {"wake", "light", "deep", "rem", "absent"}
METRIC_KEYS = {
    "tib_min",
    "tst_min",
    "se_pct",
    "sol_min",
    "waso_min",
    "light_min",
    "deep_min",
    "rem_min",
}

# The shipped default night (slp61) belongs to a subject the shipped model was NOT trained on
# (models/train_live.py, SHIPPED_RECORDS), so these are held-out floors: the first live stager
# measured accuracy 0.60, kappa 0.28 on its 720 scored epochs (reading-then-sleep, seed 0); the
# floors leave a margin for retraining and numeric drift. Raise them as the stager improves.
ACCURACY_FLOOR = 0.50
KAPPA_FLOOR = 0.18


@dataclass(frozen=True)
class Night:
    result: SimulationResult
    db: Path

    @property
    def data(self) -> dict[str, Any]:
        return self.result.data


@pytest.fixture(scope="session")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    db = tmp_path_factory.mktemp("night") / "night.sqlite"
    result = simulate_night(
        Config(),
        night=None,  # the shipped default night: held out from the shipped model
        scene="reading-then-sleep",
        alarm="07:00",
        db=db,
    )
    return Night(result, db)


def _sql(db: Path, query: str, *args: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(query, args).fetchall()
    finally:
        con.close()


# -- the store ---------------------------------------------------------------------------------


def test_store_has_exactly_one_closed_session_with_metrics(night: Night) -> None:
    rows = _sql(night.db, "SELECT id, started_s, ended_s, summary FROM sessions")
    assert len(rows) == 1
    sid, started, ended, summary = rows[0]
    assert ended is not None and ended > started
    s = json.loads(summary)
    assert set(s["metrics"]) >= METRIC_KEYS
    assert s["start_s"] == started and s["end_s"] == ended
    assert night.data["session"] == sid
    assert night.data["sessions"] == 1
    # The stored summary is the night the report shows.
    assert s["metrics"]["tib_min"] == pytest.approx(night.data["metrics"]["tib_min"])
    assert s["metrics"]["tst_min"] == pytest.approx(night.data["metrics"]["tst_min"])


def test_epochs_table_has_one_row_per_session_epoch(night: Night) -> None:
    ((sid,),) = _sql(night.db, "SELECT id FROM sessions")
    rows = _sql(
        night.db, "SELECT idx, t_s, stage FROM epochs WHERE session_id = ? ORDER BY idx", sid
    )
    assert len(rows) == len(night.data["epochs"])
    idx = [r[0] for r in rows]
    assert idx == list(range(idx[0], idx[0] + len(idx)))  # no gap, no duplicate
    t0 = rows[0][1]
    assert all(t == pytest.approx(t0 + EPOCH_S * (i - idx[0])) for i, t, _ in rows)
    assert {r[2] for r in rows} <= {0, 1, 2, 3, -2}
    (orphans,) = _sql(night.db, "SELECT COUNT(*) FROM epochs WHERE session_id != ?", sid)[0]
    assert orphans == 0
    # Roughly the whole night: 7 h 20 min in bed, plus at most a few epochs around it.
    assert 850 <= len(rows) <= 960


def test_no_stored_epoch_lies_after_the_session_end(night: Night) -> None:
    ((sid, started, ended),) = _sql(night.db, "SELECT id, started_s, ended_s FROM sessions")
    (n_after,) = _sql(
        night.db, "SELECT COUNT(*) FROM epochs WHERE session_id = ? AND t_s >= ?", sid, ended
    )[0]
    assert n_after == 0
    (n,) = _sql(night.db, "SELECT COUNT(*) FROM epochs WHERE session_id = ?", sid)[0]
    assert n == round((ended - started) / EPOCH_S)


def test_store_integrity(night: Night) -> None:
    with Store.open(night.db) as store:
        assert store.integrity_ok()
        assert store.open_session() is None
        kinds = {e.kind for s in store.sessions() for e in store.events(s.id)}
        assert {"in_bed", "session_closed", "alarm_ringing"} <= kinds


# -- the report data -------------------------------------------------------------------------


def test_report_data_shape(night: Night) -> None:
    d = night.data
    for key in ("epochs", "hypnogram", "metrics", "truth_metrics", "agreement", "alarm", "wall_s"):
        assert key in d, key
    assert set(d["hypnogram"]) <= STAGES
    assert set(d["truth_hypnogram"]) <= STAGES | {"unscored"}
    assert len(d["hypnogram"]) == len(d["truth_hypnogram"])
    assert {e["stage"] for e in d["epochs"]} <= STAGES
    assert set(d["metrics"]) >= METRIC_KEYS
    assert set(d["truth_metrics"]) >= METRIC_KEYS
    assert d["wall_s"] > 0
    json.dumps(d, allow_nan=False)  # strict JSON, as `simulate --json` writes it


def test_metrics_are_consistent(night: Night) -> None:
    for m in (night.data["metrics"], night.data["truth_metrics"]):
        assert 0 < m["tst_min"] <= m["tib_min"]
        assert m["light_min"] + m["deep_min"] + m["rem_min"] == pytest.approx(m["tst_min"])
        assert m["se_pct"] == pytest.approx(100.0 * m["tst_min"] / m["tib_min"])
        assert m["sol_min"] >= 0 and m["waso_min"] >= 0


def test_truth_and_device_time_in_bed_agree(night: Night) -> None:
    dev = night.data["metrics"]["tib_min"]
    tru = night.data["truth_metrics"]["tib_min"]
    assert abs(dev - tru) <= 15.0
    assert 380.0 <= tru <= 480.0  # slp61: 6 h 10 min recorded, plus the reading time


def test_agreement_with_the_experts(night: Night) -> None:
    a = night.data["agreement"]
    assert {"accuracy", "kappa", "confusion"} <= set(a)
    conf = a["confusion"]
    assert len(conf) == 4 and all(len(row) == 4 for row in conf)
    assert sum(map(sum, conf)) == a["n_epochs"] > 600
    assert night.data["night_in_training_set"] is False
    assert a["accuracy"] == pytest.approx(sum(conf[k][k] for k in range(4)) / a["n_epochs"])
    assert a["accuracy"] > ACCURACY_FLOOR
    assert -1.0 <= a["kappa"] <= 1.0
    assert a["kappa"] > KAPPA_FLOOR


def test_alarm_rang_in_the_window(night: Night) -> None:
    al = night.data["alarm"]
    assert al["set"] == "07:00"
    assert al["rang_at"] is not None
    set_local = datetime.fromisoformat(al["set_local"])
    rang = datetime.fromisoformat(al["rang_at"])
    assert set_local.strftime("%H:%M") == "07:00"
    window = timedelta(minutes=al["window_min"])
    assert window == timedelta(minutes=30)
    assert set_local - window <= rang <= set_local  # 06:30 .. 07:00 local
    assert "06:30" <= rang.strftime("%H:%M") <= "07:00"
    assert al["set_s"] - 1800.0 <= al["rang_at_s"] <= al["set_s"]
    assert al["reason"] in ("smart", "deadline")


def test_text_report(night: Night) -> None:
    text = night.result.text
    assert "Cohen's kappa" in text
    assert "Alarm" in text
    assert "07:00" in text
    assert "Night of slp61" in text
    assert "trained on" not in text  # a held-out night carries no training-set warning
    assert max(len(line) for line in text.splitlines()) <= 100


# -- the CLI on the same store -------------------------------------------------------------------


def test_cli_report_prints_the_night(night: Night, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(night.db)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    first = out.split("\n", 1)[0]
    assert first.startswith("Night of ") and first.endswith(f"(session {night.data['session']})")
    assert "Time in bed" in out and "Total sleep" in out
    assert "\nThe night\n  In bed" in out and "Trying to sleep" in out


def test_cli_report_json(night: Night, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", str(night.db), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    d = json.loads(out)
    assert d["session"] == night.data["session"]
    assert set(d["hypnogram"]) <= STAGES
    assert set(d["metrics"]) >= METRIC_KEYS
    # The morning report from the store alone matches what the simulation reported.
    for k in METRIC_KEYS:
        assert d["metrics"][k] == pytest.approx(night.data["metrics"][k]), k
    assert len(d["epochs"]) == len(night.data["epochs"])


def test_cli_report_by_night_date(night: Night, capsys: pytest.CaptureFixture[str]) -> None:
    # The night is placed on the evening of 2026-01-12 (appliance.simulation), local time.
    assert main(["report", "--db", str(night.db), "--night", "2026-01-12", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["session"] == night.data["session"]
    assert main(["report", "--db", str(night.db), "--night", "2026-01-11"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["appliance: error: no finished night in the store for 2026-01-11"]
