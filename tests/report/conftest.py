"""Headless Chromium for the report tests (Debian's `chromium` package; `make test` installs it
when it can). Missing, the tests skip on a developer's machine and fail in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parents[2] / "build" / "test-artifacts"


def chromium() -> str:
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("headless Chromium is needed for the report tests: apt-get install chromium")
        pytest.skip("no Chromium here (apt-get install chromium)")
    return exe


def open_in_chromium(html: Path, screenshot: Path) -> tuple[str, list[str]]:
    """Load the file headless: its DOM after scripts ran, and any console messages; also
    write a screenshot."""
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
             "--window-size=1200,3200"]
    url = html.resolve().as_uri()
    dom = subprocess.run([chromium(), *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    shot = subprocess.run([chromium(), *flags, f"--screenshot={screenshot}", url], capture_output=True, text=True,
                          timeout=120)
    console = [line for line in (dom.stderr + shot.stderr).splitlines() if ":CONSOLE" in line]
    return dom.stdout, console
