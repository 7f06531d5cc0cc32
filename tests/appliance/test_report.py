"""The text morning report: hypnogram chart layout, axis ticks and report contents."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from appliance.frames import ABSENT, UNSCORED
from appliance.metrics import agreement, sleep_metrics
from appliance.report import LINE_MAX, format_report, text_hypnogram

W, L, D, R, U, A = 0, 1, 2, 3, UNSCORED, ABSENT
BERLIN = ZoneInfo("Europe/Berlin")
ROWS = ("Wake", "REM", "Light", "Deep", "Away")
PREFIX = 7  # "Light " + "│"


def _t(year: int, month: int, day: int, hour: int, minute: int) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN).timestamp()


def _row(chart: str, name: str) -> str:
    (line,) = [ln for ln in chart.split("\n") if ln.startswith(f"{name:<6}│")]
    return line[PREFIX:]


def _night() -> np.ndarray:
    """8 h (960 epochs) of 10-epoch blocks cycling wake, light, deep, light, rem, then away."""
    blocks = [W, L, D, L, R] * 19 + [A]
    return np.repeat(np.array(blocks), 10)


def test_chart_has_a_row_per_stage_and_the_requested_width() -> None:
    chart = text_hypnogram(_night(), t0_s=_t(2024, 5, 1, 23, 10), tz=BERLIN, width=96)
    lines = chart.split("\n")
    assert len(lines) == 1 + len(ROWS) + 2  # header, rows, axis, labels
    assert lines[0].startswith("device: 23:10–07:10 (8 h 00 min)")
    assert [ln[:PREFIX].rstrip("│ ") for ln in lines[1:6]] == list(ROWS)
    assert all(len(ln) == PREFIX + 96 for ln in lines[1:7])
    # 960 epochs / 96 columns = 10 epochs = one block per column, one row lit per column
    assert _row(chart, "Wake")[:5] == "█    "
    assert _row(chart, "Light")[:5] == " █ █ "
    assert _row(chart, "Deep")[:5] == "  █  "
    assert _row(chart, "REM")[:5] == "    █"
    assert _row(chart, "Away") == " " * 95 + "█"
    for col in range(96):
        assert sum(_row(chart, name)[col] == "█" for name in ROWS) == 1


def test_chart_hour_ticks_and_labels() -> None:
    chart = text_hypnogram(_night(), t0_s=_t(2024, 5, 1, 23, 10), tz=BERLIN, width=96)
    axis, labels = chart.split("\n")[-2:]
    assert axis.startswith(" " * 6 + "└")
    # full hours 00:00..07:00; 00:00 is 50 min = 100 epochs = column 10 after the start
    tick_cols = [i - PREFIX for i, c in enumerate(axis) if c == "┬"]
    assert tick_cols == [10 + 12 * h for h in range(8)]
    assert labels.split() == [f"{h:02d}:00" for h in range(8)]
    for h, col in enumerate(tick_cols[:-1]):  # centred under the tick
        assert labels[PREFIX + col - 2 : PREFIX + col + 3] == f"{h:02d}:00"
    assert labels.endswith("07:00") and len(labels) == PREFIX + 96  # the last is kept inside


def test_chart_ticks_across_daylight_saving_change() -> None:
    # Europe/Berlin springs forward at 02:00 on 2024-03-31: 01:00 is followed by 03:00
    chart = text_hypnogram([L] * 360, t0_s=_t(2024, 3, 31, 0, 30), tz=BERLIN, width=90)
    labels = chart.split("\n")[-1]
    assert [s for s in labels.split() if ":" in s] == ["01:00", "03:00", "04:00"]


def test_chart_downsamples_by_majority_and_keeps_short_nights() -> None:
    chart = text_hypnogram([W, W, L, L, L, W], t0_s=0.0, tz=ZoneInfo("UTC"), width=2)
    assert _row(chart, "Wake") == "█ "
    assert _row(chart, "Light") == " █"
    assert "00:00" in chart  # t0 on a full hour gets a tick in the first column
    short = text_hypnogram([W, L, U, R], t0_s=0.0, tz=ZoneInfo("UTC"), width=96)
    assert len(_row(short, "REM")) == 4  # never more columns than epochs
    assert all(_row(short, name)[2] == " " for name in ROWS)  # unscored is blank
    with pytest.raises(ValueError):
        text_hypnogram([W], t0_s=0.0, tz=BERLIN, width=0)


def test_chart_label_and_empty_hypnogram() -> None:
    assert text_hypnogram([], t0_s=0.0, tz=BERLIN, label="experts") == "experts: no epochs"
    chart = text_hypnogram([W, L], t0_s=0.0, tz=BERLIN, label="experts")
    assert chart.startswith("experts: ")


def _report(**overrides: object) -> str:
    t0 = _t(2024, 5, 1, 23, 10)
    device = _night()
    truth = device.copy()
    truth[:4] = U
    truth[20:30] = W  # experts see deep as wake in the third block
    kwargs: dict[str, object] = {
        "device_hyp": device,
        "truth_hyp": truth,
        "t0_s": t0,
        "tz": BERLIN,
        "metrics": sleep_metrics(device),
        "truth_metrics": sleep_metrics(truth),
        "agreement": agreement(truth, device),
        "alarm": {"set": "07:00", "window_min": 30, "rang_s": _t(2024, 5, 2, 6, 42)},
        "title": "Night of 1 May 2024",
    }
    kwargs.update(overrides)
    return format_report(**kwargs)  # type: ignore[arg-type]


def test_report_sections_labels_and_numbers() -> None:
    text = _report()
    lines = text.split("\n")
    assert lines[0] == "Night of 1 May 2024"
    assert max(len(ln) for ln in lines) <= LINE_MAX
    device_at = next(i for i, ln in enumerate(lines) if ln.startswith("device: 23:10"))
    experts_at = next(i for i, ln in enumerate(lines) if ln.startswith("experts: 23:10"))
    assert experts_at == device_at + 9  # header, 5 rows, axis, labels, blank
    assert lines[device_at + 1][:PREFIX] == lines[experts_at + 1][:PREFIX] == "Wake  │"
    assert len(lines[device_at + 1]) == len(lines[experts_at + 1]) == LINE_MAX

    # device: 19 wake blocks (190 epochs) in 950 in-bed epochs; total sleep 760 epochs = 380 min
    (tst,) = [ln for ln in lines if ln.strip().startswith("Total sleep")]
    assert tst.split()[2:] == ["380.0", "min", "375.0", "min"]
    (se,) = [ln for ln in lines if ln.strip().startswith("Sleep efficiency")]
    assert se.split()[2:] == ["80.0", "%", "78.9", "%"]  # 380/475 and 375/475
    (tib,) = [ln for ln in lines if ln.strip().startswith("Time in bed")]
    assert tib.split()[3:] == ["475.0", "min", "475.0", "min"]  # unscored epochs are in bed
    (deep,) = [ln for ln in lines if ln.strip().startswith("Deep sleep")]
    assert deep.split()[2:] == ["95.0", "min", "90.0", "min"]
    for label in (
        "Sleep metrics",
        "device",
        "experts",
        "Sleep latency",
        "WASO",
        "Awakenings",
        "Out of bed",
        "Light sleep",
        "REM sleep",
        "% of total sleep",
        "Deep latency",
        "REM latency",
        "Final wake",
    ):
        assert label in text, label
    (final,) = [ln for ln in lines if ln.strip().startswith("Final wake")]
    assert final.split()[2:] == ["07:05", "07:05"]  # away from epoch 950 = 23:10 + 475 min


def test_report_agreement_and_confusion_matrix() -> None:
    text = _report()
    # 960 epochs less 4 unscored and 10 away in the experts' scoring; 10 disagree
    assert "Agreement, device vs experts (946 epochs, 4 classes)" in text
    (acc,) = [ln for ln in text.split("\n") if ln.strip().startswith("Accuracy")]
    assert acc.split()[1:] == [f"{100 * 936 / 946:.1f}", "%"]
    assert "Cohen's kappa" in text
    assert "sensitivity" in text and "precision" in text
    assert "Confusion matrix, epochs (rows = experts, columns = device)" in text
    lines = text.split("\n")
    header = next(ln for ln in lines if "experts \\ device" in ln)
    assert header.split()[3:] == ["wake", "light", "deep", "rem"]
    at = lines.index(header)
    # experts' wake row: 186 agreed wake epochs + 10 that the device scored deep
    assert lines[at + 1].split() == ["wake", "186", "0", "10", "0"]
    assert lines[at + 3].split() == ["deep", "0", "0", "180", "0"]


def test_report_alarm_lines() -> None:
    assert "Alarm: set 07:00, smart window 30 min, rang at 06:42" in _report()
    assert _report(alarm={"set_s": _t(2024, 5, 2, 7, 0)}).endswith("Alarm: set 07:00, did not ring")
    assert _report(alarm=None).endswith("Alarm: none set")


def test_report_without_experts() -> None:
    text = _report(truth_hyp=None, truth_metrics=None, agreement=None)
    assert "experts" not in text
    assert "device: 23:10" in text
    assert "Agreement" not in text
    (tst,) = [ln for ln in text.split("\n") if ln.strip().startswith("Total sleep")]
    assert tst.split()[2:] == ["380.0", "min"]


def test_report_kappa_value_and_aligned_charts_of_unequal_length() -> None:
    device = _night()[:900]
    truth = _night()
    a = agreement(truth[:900], device)
    text = _report(device_hyp=device, truth_hyp=truth, metrics=sleep_metrics(device), agreement=a)
    (kappa,) = [ln for ln in text.split("\n") if ln.strip().startswith("Cohen's kappa")]
    assert kappa.split()[-1] == "1.000"
    rows = [ln for ln in text.split("\n") if ln.startswith("Away  │")]
    assert len(rows) == 2
    assert len(rows[0]) == len(rows[1]) == LINE_MAX
    assert rows[0].rstrip().endswith("│") and rows[1].endswith("█")  # device padded, blank


def test_report_alarm_with_smart_alarm_names() -> None:
    alarm = {
        "set_s": _t(2024, 5, 2, 7, 0),
        "window_s": 1800.0,
        "rang_at_s": _t(2024, 5, 2, 6, 51),
        "reason": "smart",
    }
    assert _report(alarm=alarm).endswith(
        "Alarm: set 07:00, smart window 30 min, rang at 06:51 (smart)"
    )


def test_report_tells_the_night_from_the_session_summary() -> None:
    t0 = _t(2024, 5, 1, 23, 10)
    story = {
        "start_s": t0,
        "intent_s": t0 + 20 * 60,
        "sleep_latency_min": 12.5,
        "persistent_sleep_latency_min": 18.0,
        "out_of_bed_episodes": [{"start_s": _t(2024, 5, 2, 3, 5), "duration_min": 7.5}],
        "wake_up_s": _t(2024, 5, 2, 6, 40),
        "end_s": _t(2024, 5, 2, 6, 52),
        "other_epochs": 40,
        "nap": False,
    }
    text = _report(story=story)
    lines = text.split("\n")
    first = lines.index("The night")
    assert lines.index("Sleep metrics".ljust(28) + "device".rjust(12) + "experts".rjust(12)) > first
    block = "\n".join(lines[first : first + 9])
    assert "In bed                    23:10" in block
    assert "Trying to sleep           23:30" in block
    assert "after 12.5 min; 10 min unbroken after 18.0 min" in block
    assert "Out of bed                03:05 for 7.5 min" in block
    assert "Final wake                06:40" in block
    assert "Left the bed              06:52" in block
    assert "20.0 min (partner or pet, not scored)" in block
    assert all(len(line) <= LINE_MAX for line in lines)
    nap = _report(story={**story, "nap": True, "out_of_bed_episodes": [], "other_epochs": 0})
    assert "The night (a nap)" in nap and "Out of bed  " not in nap and "Someone" not in nap
    assert "The night" not in _report()
