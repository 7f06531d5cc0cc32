"""The unit files in systemd/: required directives, `systemd-analyze verify`, security exposure."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.config import Config, default_toml, load_config

REPO = Path(__file__).resolve().parents[1]
UNITS = REPO / "systemd"
UNIT_FILES = (
    "appliance.service",
    "appliance-backstop.service",
    "appliance-backstop.timer",
    "appliance-tui@.service",
)
BIN = "/opt/appliance/venv/bin/appliance"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections → key → every value (keys such as DeviceAllow= repeat), as systemd reads them."""
    out: Unit = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"assignment outside a section: {line}"
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {line}"
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def unit(name: str) -> Unit:
    return parse_unit((UNITS / name).read_text(encoding="utf-8"))


def one(u: Unit, section: str, key: str) -> str:
    values = u[section].get(key, [])
    assert len(values) == 1, f"[{section}] {key}= set {len(values)} times"
    return values[0]


HARDENING = {
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "NoNewPrivileges": "yes",
    "PrivateTmp": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "LockPersonality": "yes",
    "RestrictSUIDSGID": "yes",
    "MemoryDenyWriteExecute": "yes",
    "DevicePolicy": "closed",
    "User": "appliance",
    "Group": "appliance",
}


@pytest.mark.parametrize("name", UNIT_FILES)
def test_every_unit_parses_and_is_documented(name: str) -> None:
    u = unit(name)
    assert "Unit" in u and "Description" in u["Unit"]
    assert one(u, "Unit", "Documentation").endswith("docs/SERVICE.md")
    assert (REPO / "docs" / "SERVICE.md").is_file()


def test_main_unit_is_a_notify_service_with_a_watchdog() -> None:
    u = unit("appliance.service")
    s = u["Service"]
    assert one(u, "Service", "Type") == "notify"
    assert one(u, "Service", "NotifyAccess") == "main"
    assert 10 <= int(one(u, "Service", "WatchdogSec")) <= 120
    assert one(u, "Service", "Restart") == "always"
    assert one(u, "Service", "RestartSec") == "5"
    assert one(u, "Unit", "StartLimitIntervalSec") == "0"  # an alarm clock never gives up
    assert one(u, "Service", "ExecStart") == f"{BIN} run --config /etc/appliance/config.toml"
    assert one(u, "Service", "StateDirectory") == "appliance"
    assert one(u, "Service", "RuntimeDirectory") == "appliance"
    assert one(u, "Service", "RuntimeDirectoryMode") == "0750"
    assert one(u, "Service", "ConfigurationDirectory") == "appliance"
    assert s.get("StandardError", ["journal"]) == ["journal"]
    assert one(u, "Install", "WantedBy") == "multi-user.target"
    # Never ordered after network time: a Pi without network must still ring.
    assert "time-sync.target" not in " ".join(u["Unit"].get("After", []))


@pytest.mark.parametrize("name", ["appliance.service", "appliance-backstop.service"])
def test_services_are_hardened(name: str) -> None:
    u = unit(name)
    for key, value in HARDENING.items():
        assert one(u, "Service", key) == value, key
    families = one(u, "Service", "RestrictAddressFamilies").split()
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_UNIX"]
    assert one(u, "Service", "CapabilityBoundingSet") == ""
    # Groups a system may lack would make the unit fail (216/GROUP): the user's own groups apply.
    assert "SupplementaryGroups" not in u["Service"]


def test_main_unit_reaches_exactly_the_appliance_buses() -> None:
    allowed = {v.split()[0] for v in unit("appliance.service")["Service"]["DeviceAllow"]}
    assert {"char-i2c", "char-spi", "char-gpiochip", "char-ttyAMA", "char-alsa"} <= allowed
    assert all(a.startswith("char-") for a in allowed)  # no block devices, no /dev/mem
    assert not any("mem" in a for a in allowed)


def test_backstop_runs_only_when_the_daemon_is_not_active() -> None:
    u = unit("appliance-backstop.service")
    assert one(u, "Service", "Type") == "oneshot"
    assert one(u, "Service", "ExecStart").startswith(f"{BIN} alarm backstop")
    assert "RuntimeDirectory" not in u["Service"]  # its removal would take the daemon's socket
    assert one(u, "Service", "StateDirectory") == "appliance"
    assert "Install" not in u  # started by the timer only


def _condition_argv() -> list[str]:
    cond = one(unit("appliance-backstop.service"), "Service", "ExecCondition")
    m = re.fullmatch(r"(/bin/sh) -c '([^']*)'", cond)
    assert m, cond
    return [m.group(1), "-c", m.group(2)]


@pytest.mark.parametrize(
    ("systemctl_rc", "expected"),
    [(0, 1), (3, 0), (1, 0), (None, 0)],
    ids=["daemon-active-skip", "daemon-inactive-run", "bus-error-run", "no-systemctl-run"],
)
def test_backstop_condition_against_a_fake_systemctl(
    tmp_path: Path, systemctl_rc: int | None, expected: int
) -> None:
    """ExecCondition: 0 runs the backstop, 1..254 skips it (not a failure); in doubt, ring."""
    argv = _condition_argv()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls"
    if systemctl_rc is not None:
        fake = bindir / "systemctl"
        fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit {systemctl_rc}\n', encoding="utf-8")
        fake.chmod(0o755)
    rc = subprocess.run(argv, env={"PATH": str(bindir)}, check=False).returncode
    assert rc == expected
    if systemctl_rc is not None:
        assert log.read_text(encoding="utf-8").split() == [
            "is-active",
            "--quiet",
            "appliance.service",
        ]


def test_backstop_timer_every_minute_to_the_second() -> None:
    u = unit("appliance-backstop.timer")
    assert one(u, "Timer", "OnCalendar") == "*-*-* *:*:00"
    assert one(u, "Timer", "AccuracySec") == "1s"  # the default (1 min) would ring late
    assert one(u, "Timer", "Unit") == "appliance-backstop.service"
    assert one(u, "Install", "WantedBy") == "timers.target"


@needs_analyze
def test_timer_calendar_elapses_every_60_s() -> None:
    assert ANALYZE is not None
    spec = one(unit("appliance-backstop.timer"), "Timer", "OnCalendar")
    out = subprocess.run(
        [ANALYZE, "calendar", "--iterations=3", spec],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, TZ="UTC", SYSTEMD_COLORS="0"),
    ).stdout
    times = re.findall(r"(\d\d):(\d\d):(\d\d) UTC", out)
    secs = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in times]
    assert len(secs) >= 3, out
    assert all(s % 60 == 0 for s in secs)
    assert {(b - a) % 86400 for a, b in itertools.pairwise(secs)} == {60}


def test_tui_unit_is_a_console_template() -> None:
    u = unit("appliance-tui@.service")
    assert one(u, "Service", "ExecStart") == f"{BIN} tui"
    assert one(u, "Service", "TTYPath") == "/dev/%I"
    assert one(u, "Service", "StandardInput") == "tty"
    assert "getty@%i.service" in one(u, "Unit", "Conflicts")
    assert one(u, "Install", "DefaultInstance") == "tty1"


# -- systemd-analyze ---------------------------------------------------------------------------


def _verifiable_copy(tmp_path: Path) -> Path:
    """The units with ExecStart= pointing at an executable that exists (verify checks it)."""
    d = tmp_path / "units"
    d.mkdir()
    stub = tmp_path / "appliance"
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    for name in UNIT_FILES:
        text = (UNITS / name).read_text(encoding="utf-8").replace(BIN, str(stub))
        (d / name).write_text(text, encoding="utf-8")
    return d


def _analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    env = dict(os.environ, SYSTEMD_COLORS="0", SYSTEMD_PAGER="")
    return subprocess.run(
        [ANALYZE, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )


@needs_analyze
@pytest.mark.parametrize("name", [*UNIT_FILES, "appliance-tui@tty1.service"])
def test_systemd_analyze_verify(tmp_path: Path, name: str) -> None:
    d = _verifiable_copy(tmp_path)
    r = _analyze("verify", f"./{name}", cwd=d)
    assert r.returncode == 0, r.stderr
    # verify exits 0 on an unknown key or a bad value too: it only warns, naming the file.
    ours = [ln for ln in (r.stdout + r.stderr).splitlines() if str(d) in ln or name in ln]
    assert ours == []


@needs_analyze
def test_systemd_analyze_verify_does_catch_a_bad_directive(tmp_path: Path) -> None:
    """The negative control: the check above would see a mistake."""
    d = _verifiable_copy(tmp_path)
    p = d / "appliance.service"
    p.write_text(p.read_text().replace("Restart=always", "Restart=sometimes"), encoding="utf-8")
    r = _analyze("verify", "./appliance.service", cwd=d)
    assert "restart specifier" in r.stderr


@needs_analyze
def test_security_exposure_is_low_and_reported_in_the_docs(tmp_path: Path) -> None:
    d = _verifiable_copy(tmp_path)
    doc = (REPO / "docs" / "SERVICE.md").read_text(encoding="utf-8")
    quoted = re.search(r"exposure level for appliance\.service: (\d+\.\d)", doc)
    assert quoted, "docs/SERVICE.md must quote the exposure level"
    assert float(quoted.group(1)) <= 2.0  # systemd calls < 2.0 "OK"; a plain service is 9.6
    r = _analyze("security", "--offline=yes", "./appliance.service", cwd=d)
    if r.returncode != 0 and "offline" in r.stderr:
        # An older systemd-analyze cannot score a unit file offline: the hardening the figure
        # stands for must at least all be in the unit.
        unit = (d / "appliance.service").read_text(encoding="utf-8")
        for directive in ("ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes"):
            assert directive in unit
        return
    m = re.search(r"Overall exposure level for appliance\.service: (\d+\.\d)", r.stdout)
    assert m, r.stdout + r.stderr
    assert m.group(1) == quoted.group(1)  # the docs quote what systemd measures


# -- the shipped default config ----------------------------------------------------------------


def test_shipped_config_is_valid_and_every_commented_value_is_the_default(tmp_path: Path) -> None:
    shipped = UNITS / "config.toml"
    # Regenerate with: .venv/bin/appliance config default > systemd/config.toml
    assert shipped.read_text(encoding="utf-8") == default_toml()
    assert load_config(shipped) == Config()
    lines = shipped.read_text(encoding="utf-8").splitlines()
    keys = re.compile(r"^# ([a-z_]+ = .*)$")
    uncommented = [keys.sub(r"\1", ln) for ln in lines]
    assert sum(1 for a, b in zip(lines, uncommented, strict=True) if a != b) >= 20
    p = tmp_path / "config.toml"
    p.write_text("\n".join(uncommented) + "\n", encoding="utf-8")
    assert load_config(p) == Config()  # the file documents the true defaults
