"""Tests of the `appliance` command: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance import __version__
from appliance.cli import main
from appliance.config import Config, parse_config
from appliance.store import Store

REPO = Path(__file__).resolve().parents[2]
SCENES = ("reading-then-sleep", "empty-room", "bathroom-trip", "partner-late", "cat")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err: str) -> str:
    """Assert `err` is exactly one "appliance: error: ..." line and return it."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("appliance: error: "), err
    assert "Traceback" not in err
    return lines[0]


def _cli(*argv: str, stdout: int = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    """Run the real command in a fresh interpreter."""
    env = dict(os.environ)
    env.pop("STATE_DIRECTORY", None)
    return subprocess.run(
        [sys.executable, "-m", "appliance.cli", *argv],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
    )


WriteToml = Callable[[str], Path]


@pytest.fixture
def toml(tmp_path: Path) -> WriteToml:
    def write(text: str) -> Path:
        p = tmp_path / "config.toml"
        p.write_text(text, encoding="utf-8")
        return p

    return write


# -- version and help -------------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"appliance {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["run", "--help"],
        ["simulate", "--help"],
        ["report", "--help"],
        ["config", "--help"],
        ["config", "check", "--help"],
    ],
    ids=lambda a: " ".join(a),
)
def test_help_exits_0(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: appliance")


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys)
    assert rc == 2
    assert "run" in out and "simulate" in out and "report" in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bogus"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# -- config check -----------------------------------------------------------------------------


def test_config_check_prints_the_effective_config(
    capsys: pytest.CaptureFixture[str], toml: WriteToml
) -> None:
    p = toml('timezone = "Europe/Berlin"\n[alarm]\ntime = "6:45"\n')
    rc, out, err = _run(capsys, "config", "check", str(p))
    assert rc == 0, err
    assert err == ""
    assert out.splitlines()[0] == f"# {p}: valid"
    assert "[alarm]" in out
    assert 'time = "06:45"' in out  # normalised
    # The output is TOML that validates back to the same config, defaults included.
    doc = tomllib.loads(out)
    cfg = parse_config(doc)
    assert cfg.alarm.time == "06:45"
    assert cfg.timezone == "Europe/Berlin"
    assert cfg.model_dump(exclude={"alarm", "timezone"}) == Config().model_dump(
        exclude={"alarm", "timezone"}
    )


def test_config_check_round_trips_awkward_strings(
    capsys: pytest.CaptureFixture[str], toml: WriteToml
) -> None:
    p = toml('[store]\ndata_dir = "/srv/sl\\u00e4p \\"night\\"\\\\x"\n')
    rc, out, err = _run(capsys, "config", "check", str(p))
    assert rc == 0, err
    assert parse_config(tomllib.loads(out)).store.data_dir == '/srv/släp "night"\\x'


def test_config_check_of_an_empty_file_gives_the_defaults(
    capsys: pytest.CaptureFixture[str], toml: WriteToml
) -> None:
    rc, out, _ = _run(capsys, "config", "check", str(toml("")))
    assert rc == 0
    assert parse_config(tomllib.loads(out)) == Config()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[alarm]\ntim = "06:45"\n', "alarm.tim: unknown key"),
        ("bogus = 1\n", "bogus: unknown key"),
        ("[alarm]\nwindow_min = 99\n", "alarm.window_min"),
        ('[alarm]\ntime = "25:00"\n', "alarm.time"),
        ("[alarm]\ntime = 7\n", "alarm.time"),
        ('log_level = "verbose"\n', "log_level"),
        ("alarm = 5\n", "alarm"),
        ("[radar]\nrange_end_m = 0.31\n", "radar"),
        ("[simulator]\nspeed = nan\n", "simulator.speed"),
        ("[alarm\ntime =", "invalid TOML"),
        ('timezone = "Mars/Olympus"\n', "timezone: unknown time zone 'Mars/Olympus'"),
        ('timezone = "../../etc/passwd"\n', "timezone"),
        ('timezone = "/etc/localtime"\n', "timezone"),
        ('[light]\ntype = "ws281x"\ngpio_pin = 17\n', "light.gpio_pin"),
        ("[buttons]\npin = 18\n[speaker]\nbuzzer_pin = 18\n", "GPIO 18"),
        ('[mqtt]\nenabled = true\npassword = "x"\n', "mqtt"),
        ("[environment]\ninterval_s = 600\nstuck_after_s = 600\n", "environment"),
        ('[radar]\ntype = "a121"\na121_port = 70000\n', "radar.a121_port"),
    ],
    ids=[
        "unknown-key",
        "unknown-top-key",
        "out-of-range",
        "bad-time",
        "wrong-type",
        "bad-literal",
        "table-as-scalar",
        "cross-field",
        "nan",
        "invalid-toml",
        "bad-zone",
        "zone-path-escape",
        "zone-absolute-path",
        "bad-ws281x-pin",
        "pin-clash",
        "password-without-user",
        "stuck-shorter-than-intervals",
        "port-out-of-range",
    ],
)
def test_config_check_rejects_a_bad_file_with_one_line(
    capsys: pytest.CaptureFixture[str], toml: WriteToml, text: str, needle: str
) -> None:
    rc, out, err = _run(capsys, "config", "check", str(toml(text)))
    assert rc == 2
    assert out == ""
    line = _one_error_line(err)
    assert needle in line


def test_config_check_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    p = tmp_path / "nope.toml"
    rc, _, err = _run(capsys, "config", "check", str(p))
    assert rc == 2
    line = _one_error_line(err)
    assert str(p) in line and "no such file" in line


def test_config_check_unreadable_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b"\xff\xfe[alarm]\n")
    rc, _, err = _run(capsys, "config", "check", str(bad))
    assert rc == 2
    assert "cannot read" in _one_error_line(err)
    rc, _, err = _run(capsys, "config", "check", str(tmp_path))  # a directory
    assert rc == 2
    assert "cannot read" in _one_error_line(err)


# -- simulate (only the paths that stop before a night is rendered) -----------------------------


def test_simulate_lists_the_scenes(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "simulate", "--list-scenes")
    assert rc == 0, err
    names = out.split()
    for s in SCENES:
        assert s in names
    assert len(names) == len(set(names))


def test_simulate_unknown_scene(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "simulate", "--scene", "nope")
    assert rc == 2
    assert out == ""
    line = _one_error_line(err)
    assert "'nope'" in line and "reading-then-sleep" in line


def test_simulate_bad_alarm_names_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(capsys, "simulate", "--alarm", "7am")
    assert rc == 2
    assert "alarm.time" in _one_error_line(err)


def test_simulate_missing_night(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    p = tmp_path / "missing.npz"
    rc, _, err = _run(capsys, "simulate", "--night", str(p))
    assert rc == 2
    assert str(p) in _one_error_line(err)


def test_simulate_bad_config_file(capsys: pytest.CaptureFixture[str], toml: WriteToml) -> None:
    rc, _, err = _run(capsys, "simulate", "--config", str(toml("[session]\nstart_after_s = 1\n")))
    assert rc == 2
    assert "session.start_after_s" in _one_error_line(err)


# -- report -----------------------------------------------------------------------------------


def test_report_missing_db(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "none.sqlite"
    rc, out, err = _run(capsys, "report", "--db", str(db))
    assert rc == 2
    assert out == ""
    assert "no store at" in _one_error_line(err)
    assert not db.exists()


def test_report_missing_data_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, _, err = _run(capsys, "report", "--data-dir", str(tmp_path / "d"))
    assert rc == 2
    assert "appliance.sqlite" in _one_error_line(err)


def test_report_empty_db(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite"
    Store.open(db).close()
    rc, _, err = _run(capsys, "report", "--db", str(db))
    assert rc == 2
    assert "no finished night" in _one_error_line(err)


def test_report_zero_byte_db(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "zero.sqlite"
    db.touch()
    rc, _, err = _run(capsys, "report", "--db", str(db))
    assert rc == 2
    assert "no finished night" in _one_error_line(err)


def test_report_not_a_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "junk.sqlite"
    db.write_bytes(b"this is not sqlite\n" * 100)
    rc, _, err = _run(capsys, "report", "--db", str(db))
    assert rc == 2
    assert "not a database" in _one_error_line(err)


def test_report_with_only_an_open_session(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "open.sqlite"
    with Store.open(db) as store:
        store.start_session(1_768_000_000.0, tz="UTC", source="simulated")
    rc, _, err = _run(capsys, "report", "--db", str(db), "--json")
    assert rc == 2
    assert "no finished night" in _one_error_line(err)


@pytest.mark.parametrize("night", ["2026-13-45", "yesterday", "2026-02-30", "12/01/2026"])
def test_report_bad_night_date(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, night: str
) -> None:
    db = tmp_path / "s.sqlite"
    Store.open(db).close()
    rc, _, err = _run(capsys, "report", "--db", str(db), "--night", night)
    assert rc == 2
    line = _one_error_line(err)
    assert "--night" in line and night in line


def test_report_bad_config(
    capsys: pytest.CaptureFixture[str], toml: WriteToml, tmp_path: Path
) -> None:
    rc, _, err = _run(capsys, "report", "--config", str(toml("x = 1\n")), "--db", "x.sqlite")
    assert rc == 2
    assert "x: unknown key" in _one_error_line(err)


# -- real processes: nothing but one line, never a traceback ---------------------------------------


def test_subprocess_version_and_bad_config(tmp_path: Path) -> None:
    r = _cli("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"appliance {__version__}"
    bad = tmp_path / "bad.toml"
    bad.write_text("[alarm]\nwindow_min = -5\n", encoding="utf-8")
    r = _cli("config", "check", str(bad))
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        "appliance: error: alarm.window_min: Input should be greater than or equal to 0"
    ]


def test_subprocess_run_with_unusable_inputs_fails_in_one_line(tmp_path: Path) -> None:
    """`run` logs its start-up at INFO, but a user error still ends on one error line."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[alarm]\ntime = "noon"\n', encoding="utf-8")
    r = _cli("run", "--config", str(bad), "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["appliance: error: alarm.time: expected HH:MM, got 'noon'"]
    r = _cli("run", "--data-dir", str(tmp_path / "d"), "--speed", "0")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "appliance: error: simulator.speed: Input should be greater than 0"
    ]


def test_subprocess_report_errors(tmp_path: Path) -> None:
    r = _cli("report", "--db", str(tmp_path / "none.sqlite"))
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr
    r = _cli("simulate", "--scene", "nope")
    assert r.returncode == 2
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr


def test_closed_stdout_is_not_an_internal_error() -> None:
    r_fd, w_fd = os.pipe()
    os.close(r_fd)  # the reader has gone away, like `| head` after its lines
    try:
        r = _cli("simulate", "--list-scenes", stdout=w_fd)
    finally:
        os.close(w_fd)
    assert "Traceback" not in r.stderr
    assert "internal error" not in r.stderr
    assert r.returncode in (0, 141)  # quiet success, or 128 + SIGPIPE like C tools
