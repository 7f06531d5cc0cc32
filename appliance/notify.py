"""systemd service notifications (sd_notify) without a dependency.

Under `Type=notify` systemd passes `NOTIFY_SOCKET`, the address of an AF_UNIX datagram socket; the
service sends newline-separated `KEY=VALUE` assignments to it: `READY=1` once started, `STATUS=...`
as free text for `systemctl status`, `WATCHDOG=1` at least once per `WATCHDOG_USEC` microseconds
(when `WatchdogSec=` is set), `STOPPING=1` when it begins to stop. An address starting with `@`
is in the Linux abstract namespace (the `@` stands for a leading NUL byte).

Every function here is a no-op returning False when `NOTIFY_SOCKET` is unset (a run by hand, the
tests, the simulator) and never raises: a notification that cannot be sent is logged once, and the
appliance goes on (systemd will then restart it, which is the right outcome for a lost watchdog).

References:
    sd_notify(3) and sd_watchdog_enabled(3), systemd 252 manual pages; the datagram protocol is
    documented as stable there ("the protocol is simple: ... a single datagram").
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

__all__ = ["notify", "ready", "status", "stopping", "watchdog", "watchdog_interval_s"]

log = logging.getLogger(__name__)

_warned: set[str] = set()


def _address(value: str) -> str | bytes | None:
    """The `sendto` address of a `NOTIFY_SOCKET` value, or None if it is not AF_UNIX."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # e.g. "vsock:CID:PORT" (a VM's host manager): not used on a Pi


def notify(*assignments: str, env: Mapping[str, str] | None = None, wait_s: float = 0.5) -> bool:
    """Send `KEY=VALUE` assignments to systemd in one datagram.

    Args:
        assignments: e.g. "READY=1", "STATUS=running"; a value must not contain a newline.
        env: The environment to read `NOTIFY_SOCKET` from (default `os.environ`).
        wait_s: Longest wait for room in the manager's queue (10 datagrams by default), s; 0 =
            never wait (a watchdog ping: one lost is harmless, a blocked event loop is not).

    Returns:
        True if the datagram was sent; False without a notify socket or on an error (logged once).
    """
    value = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if not value or not assignments:
        return False
    addr = _address(value)
    if addr is None:
        _warn_once(value, "unsupported NOTIFY_SOCKET address %r: notifications are off", value)
        return False
    payload = "\n".join(a.replace("\n", " ") for a in assignments).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            # Bounded: a manager that does not read must never hold up the event loop (and with
            # it the alarm) for long.
            sock.settimeout(wait_s if wait_s > 0 else 0.0)
            sock.sendto(payload, addr)
    except OSError as e:
        _warn_once(value, "cannot notify systemd at %s: %s", value, e)
        return False
    return True


def _warn_once(key: str, msg: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(msg, *args)


def ready(status_text: str | None = None, *, env: Mapping[str, str] | None = None) -> bool:
    """Tell systemd start-up is complete (`READY=1`), with an optional status line."""
    extra = () if status_text is None else (f"STATUS={status_text}",)
    return notify("READY=1", *extra, env=env)


def watchdog(*, env: Mapping[str, str] | None = None) -> bool:
    """Keep the service watchdog from firing (`WATCHDOG=1`)."""
    return notify("WATCHDOG=1", env=env, wait_s=0.0)


def status(text: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Set the free-text status line `systemctl status` shows (`STATUS=...`)."""
    return notify(f"STATUS={text}", env=env)


def stopping(*, env: Mapping[str, str] | None = None) -> bool:
    """Tell systemd the service is stopping (`STOPPING=1`)."""
    return notify("STOPPING=1", env=env)


def watchdog_interval_s(*, env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout systemd expects pings within, seconds; None if there is none.

    As sd_watchdog_enabled(3): `WATCHDOG_USEC` (a positive integer, microseconds) is the timeout,
    and `WATCHDOG_PID`, when set, names the process it is meant for (a child that inherited the
    environment must not take it for its own). Ping at half this interval.
    """
    e = os.environ if env is None else env
    try:
        usec = int(e.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = e.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1e6
