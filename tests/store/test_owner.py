import os
import subprocess
import sys
import time

import pytest

from breakfix.store.owner import _started, alive, describe, this_process

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="start times and namespaces come from /proc")


def _as_owner(pid: int, started: str | None = None) -> str:
    host, space, _, _ = this_process().rsplit(":", 3)
    return f"{host}:{space}:{pid}:{started or _started(pid)}"


def test_this_process_is_alive_and_said_plainly():
    assert alive(this_process()) is True
    assert describe(this_process()) == f"pid {os.getpid()} on {this_process().split(':')[0]}"


def test_an_ended_process_is_gone_even_before_it_is_reaped():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owner = _as_owner(child.pid)
    assert alive(owner) is True
    child.kill()
    deadline = time.monotonic() + 10
    while alive(owner) and time.monotonic() < deadline:  # a zombie until waited for
        time.sleep(0.01)
    assert alive(owner) is False
    child.wait()
    assert alive(owner) is False


def test_a_pid_now_held_by_another_process_is_not_the_owner():
    assert alive(_as_owner(os.getpid(), started="1")) is False


@pytest.mark.parametrize("owner", [None, "", "old-style:123", "another-host:a.1:1:1", "HOST:other.namespace:1:1"])
def test_what_cannot_be_told_from_here_is_unknown(owner):
    host = this_process().split(":")[0]
    assert alive(owner.replace("HOST", host) if owner else owner) is None
