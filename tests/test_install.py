"""install.sh: the Pi path and the uninstall in --dry-run print every step and change nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "install.sh"
# Every command that could change the machine is replaced by a recorder on PATH.
MUTATORS = (
    "apt-get",
    "useradd",
    "usermod",
    "userdel",
    "groupadd",
    "raspi-config",
    "systemctl",
    "install",
    "rm",
    "cp",
    "mv",
    "ln",
    "mkdir",
    "chown",
    "chmod",
)


def _fake_bin(tmp_path: Path) -> tuple[Path, Path]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls"
    log.touch()
    for name in MUTATORS:
        # `systemctl is-active` answers "inactive" (3); the others just record their call.
        rc = 3 if name == "systemctl" else 0
        p = bindir / name
        p.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit {rc}\n', encoding="utf-8")
        p.chmod(0o755)
    return bindir, log


def _state() -> dict[str, object]:
    """What an install would change, read without changing it."""
    unit_dir = Path("/etc/systemd/system")
    git = subprocess.run(
        ["git", "status", "--porcelain", "--ignored"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {
        "units": sorted(p.name for p in unit_dir.glob("appliance*")) if unit_dir.is_dir() else [],
        "opt": Path("/opt/appliance").exists(),
        "etc": Path("/etc/appliance").exists(),
        "user": subprocess.run(["getent", "passwd", "appliance"], capture_output=True).returncode,
        "git": git,
        "venv": (REPO / ".venv").stat().st_mtime_ns if (REPO / ".venv").exists() else None,
    }


def _run(
    tmp_path: Path, *args: str, model: str | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bindir, log = _fake_bin(tmp_path)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    if model is not None:  # the board install.sh sees, whatever this machine is
        (tmp_path / "model").write_text(model + "\0", encoding="utf-8")
        env["APPLIANCE_DEVICE_MODEL"] = str(tmp_path / "model")
    before = _state()
    r = subprocess.run(
        ["bash", str(SCRIPT), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert _state() == before, "a dry run changed the machine"
    calls = log.read_text(encoding="utf-8").splitlines()
    # Only read-only queries may reach the real tools in a dry run.
    assert [c for c in calls if not c.startswith("systemctl is-active")] == []
    return r, r.stdout.splitlines()


def _would(lines: list[str]) -> list[str]:
    return [ln.split("would run: ", 1)[1] for ln in lines if "would run: " in ln]


def test_bash_syntax() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean() -> None:
    r = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout


def test_pi_dry_run_prints_every_step_and_changes_nothing(tmp_path: Path) -> None:
    r, lines = _run(tmp_path, "--pi", "--dry-run")
    assert r.returncode == 0, r.stderr
    steps = _would(lines)
    text = "\n".join(lines)
    assert "Raspberry Pi set-up" in text
    # Debian packages: whatever is missing is installed, or all are there already.
    apt = [s for s in steps if s.startswith("env DEBIAN_FRONTEND=noninteractive apt-get install")]
    if apt:
        assert all(
            p in {"python3-venv", "python3-dev", "gcc", "python3-lgpio", "alsa-utils", "i2c-tools"}
            for p in apt[0].split()[8:]
        )
    # The system user, then only the groups that exist on this machine.
    if subprocess.run(["getent", "passwd", "appliance"], capture_output=True).returncode != 0:
        (useradd,) = [s for s in steps if s.startswith("useradd")]
        assert "--system" in useradd and useradd.endswith(" appliance")
        assert "--shell /usr/sbin/nologin" in useradd
    for g in ("gpio", "i2c", "spi", "audio", "dialout"):
        exists = subprocess.run(["getent", "group", g], capture_output=True).returncode == 0
        assert (f"usermod -a -G {g} appliance" in steps) == exists
        assert (f"group {g} does not exist here" in text) == (not exists)
    # raspi-config (our recorder stands in for it) enables the buses.
    assert "raspi-config nonint do_i2c 0" in steps
    assert "raspi-config nonint do_spi 0" in steps
    assert "raspi-config nonint do_serial_hw 0" in steps
    # The venv with the system site packages (python3-lgpio), the project with its pi extra.
    assert (
        any(s.endswith("-m venv --system-site-packages /opt/appliance/venv") for s in steps)
        or "reusing /opt/appliance/venv" in text
    )
    pip = [s for s in steps if s.startswith("/opt/appliance/venv/bin/python -m pip install")]
    assert pip and pip[-1].endswith(r"\[pi\]")
    # The config is installed only when absent; every unit file; enabled (and started).
    if Path("/etc/appliance/config.toml").exists():
        assert "never overwritten" in text
    else:
        assert (
            "install -m 0640 -o root -g appliance systemd/config.toml "
            "/etc/appliance/config.toml" in steps
        )
    for u in (
        "appliance.service",
        "appliance-backstop.service",
        "appliance-backstop.timer",
        "appliance-tui@.service",
    ):
        assert f"install -m 0644 systemd/{u} /etc/systemd/system/{u}" in steps
    enable = [s for s in steps if s.startswith("systemctl enable")]
    assert enable and enable[0].endswith("appliance.service appliance-backstop.timer")


def test_pi_dry_run_without_raspi_config_says_what_to_enable(tmp_path: Path) -> None:
    bindir, log = _fake_bin(tmp_path)
    (bindir / "raspi-config").unlink()
    # Hide a real raspi-config too: the system's commands, but that one, behind the recorders.
    sysbin = tmp_path / "sysbin"
    sysbin.mkdir()
    for d in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        for exe in Path(d).iterdir() if Path(d).is_dir() else ():
            link = sysbin / exe.name
            if exe.name != "raspi-config" and not link.exists() and os.access(exe, os.X_OK):
                link.symlink_to(exe)
    env = dict(os.environ, PATH=f"{bindir}:{sysbin}")
    assert shutil.which("raspi-config", path=env["PATH"]) is None
    env["PYTHON"] = shutil.which("python3") or "python3"
    r = subprocess.run(
        ["bash", str(SCRIPT), "--pi", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "dtparam=i2c_arm=on" in r.stdout and "enable_uart=1" in r.stdout
    assert "raspi-config nonint" not in r.stdout
    assert [c for c in log.read_text().splitlines() if not c.startswith("systemctl is-")] == []


def test_uninstall_dry_run_keeps_data_and_config(tmp_path: Path) -> None:
    r, lines = _run(tmp_path, "--uninstall", "--dry-run")
    assert r.returncode == 0, r.stderr
    steps = _would(lines)
    assert any(
        s.startswith("systemctl disable") and "appliance.service appliance-backstop.timer" in s
        for s in steps
    )
    for u in (
        "appliance.service",
        "appliance-backstop.service",
        "appliance-backstop.timer",
        "appliance-tui@.service",
    ):
        assert f"rm -f /etc/systemd/system/{u}" in steps
    assert "rm -rf /opt/appliance" in steps
    assert not any("/var/lib/appliance" in s or "/etc/appliance" in s for s in steps)
    assert "kept /var/lib/appliance" in r.stdout and "/etc/appliance (the config)" in r.stdout


def test_developer_dry_run_off_a_pi(tmp_path: Path) -> None:
    r, lines = _run(tmp_path, "--dry-run", model="Generic x86 PC")
    assert r.returncode == 0, r.stderr
    assert "developer / simulator set-up" in r.stdout
    steps = _would(lines)
    assert not any(s.startswith(("useradd", "systemctl enable")) for s in steps)
    assert any(s.endswith("-e .\\[dev\\]") for s in steps)


def test_bad_option_and_help() -> None:
    r = subprocess.run(["bash", str(SCRIPT), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "unknown option --bogus" in r.stderr
    h = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True)
    assert h.returncode == 0 and "--uninstall" in h.stdout and "--dry-run" in h.stdout
