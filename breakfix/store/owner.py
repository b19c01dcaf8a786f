"""Which process owns a running run, and whether it still runs.

A run records its owner when it starts or resumes, so a run whose process ended without saying
so (`kill -9`, a crash, the OOM killer) can be told from one another process is running now.
An owner names the machine, the boot and PID namespace (where Linux says), the pid and the
process's start time: a pid reused after a reboot or by another process, or a pid of another
container that shares the hostname, never passes for the owner.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

_UNKNOWN = "-"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None where unknown or gone."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rpartition(")")[2].split()  # the command name, in parentheses, may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]  # a zombie has ended


def _space() -> str:
    """This boot and PID namespace (Linux), or `-`."""
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return _UNKNOWN
    return f"{(boot or _UNKNOWN)[:8]}.{namespace}"


def this_process() -> str:
    """This process as a run's owner: host, boot and PID namespace, pid, start time."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{_space()}:{pid}:{_started(pid) or _UNKNOWN}"


def alive(owner: str | None) -> bool | None:
    """Whether a run's owner still runs: None where this process cannot tell (no owner, another
    machine, boot or PID namespace, not a POSIX system), False when its pid is gone, a zombie,
    or now another process's."""
    parts = (owner or "").rsplit(":", 3)
    if len(parts) != 4 or os.name != "posix" or not parts[2].isdigit():
        return None
    host, space, pid, started = parts
    if host != socket.gethostname() or space != _space():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    if started == _UNKNOWN or not Path("/proc").is_dir():
        return True
    return _started(int(pid)) == started


def describe(owner: str | None) -> str:
    """An owner for people: its pid and host."""
    parts = (owner or "").rsplit(":", 3)
    return f"pid {parts[2]} on {parts[0]}" if len(parts) == 4 else str(owner)
