"""Tests of alarm schedules: days, DST, several alarms, skip, one-off, the store and the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance import alarm_schedule as sched
from appliance.alarm_schedule import DAILY, WEEKDAYS, Alarm, AlarmInputError, next_ring
from appliance.cli import main
from appliance.store import Store

BERLIN = ZoneInfo("Europe/Berlin")


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0, fold: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN, fold=fold).timestamp()


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> float:
    return datetime(y, mo, d, h, mi, tzinfo=UTC).timestamp()


class TestParse:
    @pytest.mark.parametrize(
        ("text", "days"),
        [
            ("once", frozenset()),
            ("daily", DAILY),
            ("weekdays", WEEKDAYS),
            ("mon-fri", WEEKDAYS),
            ("MON,wed, fri", frozenset({0, 2, 4})),
            ("fri-mon", frozenset({4, 5, 6, 0})),
            ("mon-tue,sun", frozenset({0, 1, 6})),
            ("weekends", frozenset({5, 6})),
        ],
    )
    def test_days(self, text: str, days: frozenset[int]) -> None:
        assert sched.parse_days(text) == days

    @pytest.mark.parametrize("bad", ["funday", "mon-xyz", "", "mon,,fri"])
    def test_bad_days(self, bad: str) -> None:
        with pytest.raises(AlarmInputError):
            sched.parse_days(bad)

    def test_labels_round_trip(self) -> None:
        for text in ("once", "daily", "weekdays", "weekends", "mon,wed,fri"):
            assert sched.days_label(sched.parse_days(text)) == text

    def test_time_and_window(self) -> None:
        assert sched.parse_time("7:05") == "07:05"
        for bad in ("7", "24:00", "noon"):
            with pytest.raises(AlarmInputError):
                sched.parse_time(bad)
        assert sched.validate_window(0) == 0.0
        for bad in (-1.0, 45.5, float("nan")):
            with pytest.raises(AlarmInputError):
                sched.validate_window(bad)


class TestNextRing:
    def test_weekdays_skip_the_weekend(self) -> None:
        a = Alarm(id=1, time="07:00", days=WEEKDAYS)
        fri_evening = local(2024, 6, 14, 22, 0)  # a Friday
        assert sched.occurrence(a, BERLIN, fri_evening) == local(2024, 6, 17, 7, 0)  # Monday

    def test_custom_days(self) -> None:
        a = Alarm(id=1, time="06:15", days=frozenset({2}))  # Wednesdays
        assert sched.occurrence(a, BERLIN, local(2024, 6, 10, 12)) == local(2024, 6, 12, 6, 15)

    def test_several_alarms_earliest_wins_and_equal_times_ring_as_one(self) -> None:
        alarms = [
            Alarm(id=1, time="07:00"),
            Alarm(id=2, time="06:30", days=WEEKDAYS),
            Alarm(id=3, time="06:30"),
            Alarm(id=4, time="05:00", enabled=False),
        ]
        ring = next_ring(alarms, BERLIN, local(2024, 6, 10, 22, 0))  # Monday evening
        assert ring is not None
        assert ring.set_s == local(2024, 6, 11, 6, 30)
        assert ring.ids == (2, 3)
        sat = next_ring(alarms, BERLIN, local(2024, 6, 14, 22, 0))
        assert sat is not None and sat.ids == (3,)

    def test_window_of_a_shared_ring_is_the_widest(self) -> None:
        alarms = [Alarm(id=1, time="07:00", window_min=10), Alarm(id=2, time="07:00")]
        ring = next_ring(alarms, BERLIN, local(2024, 6, 10, 22))
        assert ring is not None and ring.window_s == 30 * 60

    def test_skip_next_skips_only_the_next(self) -> None:
        a = Alarm(id=1, time="07:00", skip_s=local(2024, 6, 11, 7, 0))
        after = local(2024, 6, 10, 22, 0)
        assert sched.occurrence(a, BERLIN, after) == local(2024, 6, 12, 7, 0)
        assert sched.occurrence(a, BERLIN, local(2024, 6, 12, 8)) == local(2024, 6, 13, 7, 0)

    def test_handled_occurrence_never_again(self) -> None:
        a = Alarm(id=1, time="07:00")
        set_s = local(2024, 6, 11, 7, 0)
        # Looking back (a restart just after 07:00): still pending unless handled.
        assert sched.occurrence(a, BERLIN, set_s - 60) == set_s
        assert sched.occurrence(a, BERLIN, set_s - 60, handled_s=set_s) == set_s + 86400

    def test_one_off_rings_once_after_it_was_set(self) -> None:
        set_at = local(2024, 6, 10, 22, 0)
        a = Alarm(id=1, time="06:00", days=frozenset(), created_s=set_at)
        first = local(2024, 6, 11, 6, 0)
        assert sched.occurrence(a, BERLIN, set_at) == first
        assert sched.occurrence(a, BERLIN, first - 1, handled_s=first) is None
        assert sched.occurrence(a, BERLIN, first + 1) is None  # gone, never tomorrow

    def test_recurring_alarm_never_rings_before_it_existed(self) -> None:
        created = local(2024, 6, 10, 7, 35)
        a = Alarm(id=1, time="07:30", created_s=created)
        # The task looks back ring_max (30 min): 07:30 today predates the alarm.
        assert sched.occurrence(a, BERLIN, created - 1800) == local(2024, 6, 11, 7, 30)

    def test_dst_gap_rings_at_the_first_valid_instant(self) -> None:
        a = Alarm(id=1, time="02:30", days=frozenset({6}))  # Sundays
        t = sched.occurrence(a, BERLIN, local(2024, 3, 30, 12))
        assert t == utc(2024, 3, 31, 1, 0)  # 03:00 CEST, the end of the gap
        assert datetime.fromtimestamp(t, BERLIN).strftime("%H:%M %a") == "03:00 Sun"

    def test_dst_repeated_time_rings_once_at_the_first(self) -> None:
        a = Alarm(id=1, time="02:30")
        first = sched.occurrence(a, BERLIN, local(2024, 10, 26, 12))
        assert first == utc(2024, 10, 27, 0, 30)  # 02:30 CEST
        # After it rang (handled), the repeated 02:30 CET an hour later does not ring.
        nxt = next_ring([a], BERLIN, first - 60, {1: first})
        assert nxt is not None and nxt.set_s == utc(2024, 10, 28, 1, 30)

    def test_weekday_is_the_local_date_across_dst(self) -> None:
        a = Alarm(id=1, time="07:00", days=frozenset({6}))  # Sunday, fall-back day
        t = sched.occurrence(a, BERLIN, local(2024, 10, 26, 23))
        assert t == utc(2024, 10, 27, 6, 0)


class TestStoreSchedule:
    def test_round_trip_and_edit(self, tmp_path: Path) -> None:
        now = local(2024, 6, 10, 22)
        with Store.open(tmp_path / "s.sqlite") as store:
            a = sched.set_alarm(store, now, "7:00", days="mon-fri", window_min=20)
            b = sched.set_alarm(store, now, "08:30", days="once")
            assert (a.id, b.id) == (1, 2)
            assert store.alarms() == [a, b]
            assert a.days == WEEKDAYS and a.window_min == 20
            c = sched.set_alarm(store, now, "06:45", days="daily", alarm_id=1)
            assert store.alarm(1) == c and c.window_min == 20  # the window is kept
            sched.set_enabled(store, 2, False)
            assert store.alarm(2) is not None and not store.alarm(2).enabled  # type: ignore[union-attr]
            alarm, t = sched.skip_next(store, BERLIN, now)
            assert alarm.id == 1 and t == local(2024, 6, 11, 6, 45)
            ring = next_ring(store.alarms(), BERLIN, now)
            assert ring is not None and ring.set_s == local(2024, 6, 12, 6, 45)
            sched.set_enabled(store, 1, True)  # on again clears the skip
            assert store.alarm(1).skip_s is None  # type: ignore[union-attr]
            sched.delete_alarm(store, 2)
            assert [x.id for x in store.alarms()] == [1]
            with pytest.raises(AlarmInputError):
                sched.delete_alarm(store, 2)
            with pytest.raises(AlarmInputError):
                sched.set_alarm(store, now, "07:00", alarm_id=0)
            with pytest.raises(AlarmInputError):
                sched.delete_alarm(store, 0)
            # Ids are never reused.
            assert sched.set_alarm(store, now, "09:00").id == 3

    def test_state_rows(self, tmp_path: Path) -> None:
        with Store.open(tmp_path / "s.sqlite") as store:
            store.set_alarm_state([1, 2], 100.0, "ringing", t_s=100.0, rang_at_s=100.0)
            st = store.alarm_states()
            assert set(st) == {1, 2} and st[1].status == "ringing" and not st[1].handled
            store.set_alarm_state([1], 100.0, "dismissed", t_s=160.0, rang_at_s=100.0)
            assert sched.handled_map(store) == {1: 100.0}
            with pytest.raises(ValueError):
                store.set_alarm_state([1], 100.0, "exploded", t_s=1.0)
            assert store.heartbeat() is None
            store.beat(5.0)
            assert store.heartbeat() == 5.0


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "a.sqlite")
    rc, out, _ = _cli(capsys, "alarm", "set", "07:00", "--days", "mon-fri", "--db", db)
    assert rc == 0 and out.startswith("alarm 1: 07:00 weekdays, next ")
    rc, out, _ = _cli(
        capsys,
        "alarm",
        "set",
        "6:30",
        "--days",
        "once",
        "--window",
        "20",
        "--sound",
        "bowl",
        "--db",
        db,
    )
    assert rc == 0 and "alarm 2: 06:30 once" in out
    assert _cli(capsys, "alarm", "skip", "1", "--db", db)[0] == 0
    assert _cli(capsys, "alarm", "off", "2", "--db", db)[0] == 0
    rc, out, _ = _cli(capsys, "alarm", "list", "--json", "--db", db)
    rows = json.loads(out)
    assert [(r["id"], r["time"], r["days"], r["enabled"]) for r in rows] == [
        (1, "07:00", "weekdays", True),
        (2, "06:30", "once", False),
    ]
    assert rows[0]["skip_next"] is not None and rows[1]["next_ring"] is None
    assert rows[1]["window_min"] == 20.0
    assert (rows[0]["sound"], rows[1]["sound"]) == ("", "bowl")
    rc, out, _ = _cli(capsys, "alarm", "list", "--db", db)
    assert rc == 0 and "skipping" in out and " default " in out and " bowl " in out
    assert _cli(capsys, "alarm", "delete", "2", "--db", db)[0] == 0
    assert [
        r["id"] for r in json.loads(_cli(capsys, "alarm", "list", "--json", "--db", db)[1])
    ] == [1]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["set", "25:00"], "HH:MM"),
        (["set", "07:00", "--days", "funday"], "--days"),
        (["set", "07:00", "--window", "50"], "--window"),
        (["set", "07:00", "--id", "7"], "no alarm with id 7"),
        (["set", "07:00", "--sound", "klaxon"], "unknown sound"),
        (["delete", "9"], "no alarm with id 9"),
        (["skip"], "nothing to skip"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    rc, _, err = _cli(capsys, "alarm", *argv, "--db", str(tmp_path / "a.sqlite"))
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("appliance: error:") and needle in lines[0]


def test_the_main_alarm_is_the_lowest_id_or_none() -> None:
    from appliance.alarm_schedule import main_alarm

    assert main_alarm([])["id"] is None and main_alarm([])["enabled"] is False
    row = {"time": "07:00", "enabled": True, "window_min": 30.0, "next_ring": None}
    rows = [{**row, "id": 3}, {**row, "id": 0, "time": "06:30"}, {**row, "id": 1}]
    assert main_alarm(rows) == {**row, "id": 0, "time": "06:30"}
