"""The CLI's clients of the daemon: status, standby, light, dismiss; report --png."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_api import N_NIGHTS, ServedDaemon, nights_db, short_dir, stager  # noqa: F401

from appliance.cli import EXIT_NO_DAEMON, EXIT_USAGE, main
from appliance.control import STATUS_FIELDS
from appliance.staging import Stager


@pytest.fixture
def served(short_dir: Path, nights_db: Path, stager: Stager) -> Iterator[ServedDaemon]:  # noqa: F811
    s = ServedDaemon(short_dir, nights_db, stager).start()
    yield s
    s.stop()


def test_status_json_has_the_documented_fields(
    served: ServedDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--json", "--socket", str(served.socket)]) == 0
    st = json.loads(capsys.readouterr().out)
    assert set(STATUS_FIELDS) <= set(st)
    assert set(st["environment"]) == {"temperature_c", "humidity_pct", "illuminance_lux"}
    assert st["standby"] is False and st["devices"]["radar"]["status"] == "ok"


def test_status_for_people(served: ServedDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--socket", str(served.socket)]) == 0
    out = capsys.readouterr().out
    assert "breath rate  15" in out or "breath rate  14" in out
    assert "standby      off" in out
    assert "next alarm   " in out and "07:00:00" in out
    assert "radar ok" in out and "api ok" in out


def test_standby_on_and_off(served: ServedDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["standby", "on", "--socket", str(served.socket)]) == 0
    assert capsys.readouterr().out.strip() == "standby on"
    assert served.on_loop(lambda: served.store.setting("standby")) is True
    assert main(["standby", "off", "--socket", str(served.socket)]) == 0
    assert served.on_loop(lambda: served.store.setting("standby")) is False


def test_a_refused_command_is_one_line_exit_2_and_the_light_switches(
    served: ServedDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dismiss", "--socket", str(served.socket)]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == "appliance: error: no alarm is ringing"
    assert main(["snooze", "--socket", str(served.socket)]) == EXIT_USAGE
    assert capsys.readouterr().err.strip() == "appliance: error: no alarm is ringing"
    assert main(["light", "reading", "--socket", str(served.socket)]) == 0
    capsys.readouterr()
    assert served.on_loop(lambda: served.daemon.snapshot()["light"]["mode"]) == "reading"


@pytest.mark.parametrize("argv", [["status"], ["standby", "on"], ["snooze"], ["light", "off"]])
def test_no_daemon_is_one_line_exit_3(
    short_dir: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    sock = short_dir / "api.sock"
    assert main([*argv, "--socket", str(sock)]) == EXIT_NO_DAEMON
    err = capsys.readouterr().err
    assert err == f"appliance: the appliance daemon is not running (no socket at {sock})\n"


def test_the_socket_comes_from_the_config(
    served: ServedDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[api]\nsocket_path = "{served.socket}"\n', encoding="utf-8")
    assert main(["status", "--json", "--config", str(cfg)]) == 0
    assert "standby" in json.loads(capsys.readouterr().out)


def test_report_png(nights_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    png = tmp_path / "night.png"
    assert main(["report", "--db", str(nights_db), "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    assert "(session " in capsys.readouterr().out


def test_report_png_without_matplotlib_is_one_line(
    nights_db: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    real = builtins.__import__

    def no_mpl(name: str, *a: object, **k: object) -> object:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    assert main(["report", "--db", str(nights_db), "--png", str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.strip() == (
        "appliance: error: --png needs matplotlib: pip install 'appliance[report]'"
    )
