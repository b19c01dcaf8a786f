"""A model served by a command the loop starts itself — vLLM, llama.cpp's server, Ollama's
OpenAI-compatible API or `breakfix serve` — for as long as it works with that model, then
stops, so each round's checkpoint can be served in turn and the GPU is free for training.

The command and the model string are templates: `{path}` (the checkpoint's directory), `{model}`
(the loop's model string), `{name}` (a served name unique to those weights, so cached replies of
one checkpoint never stand in for another's) and `{port}`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from breakfix.errors import TargetError


class LaunchedServer:
    def __init__(self, command: str, model: str, port: int, log: Path, startup_timeout: float = 900):
        self.command, self.model, self.port, self.log, self.timeout = command, model, port, log, startup_timeout
        self.process: subprocess.Popen | None = None

    def start(self, spec: str) -> str:
        """Serve the model `spec`; returns the model string to reach it once it answers."""
        fields = {"model": spec, "port": self.port, "name": served_name(spec)}
        if "{path}" in self.command:
            from breakfix.targets.base import local_path

            fields["path"] = str(local_path(spec))
        argv = shlex.split(self.command.format(**fields))
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{self.port}/v1/models"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TargetError(f"the serving command exited with status {self.process.returncode} before answering: "
                                  f"{' '.join(argv)}\n{self._tail()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    json.load(response)
                return self.model.format(**fields)
            except (OSError, ValueError):
                time.sleep(0.5)
        self.stop()
        raise TargetError(f"{' '.join(argv)} did not answer {url} within {self.timeout:.0f} s\n{self._tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def _tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def served_name(spec: str) -> str:
    """A name that changes with the weights (a checkpoint's manifest hash, else the spec) and
    with a refusal gate beside them: replies cached under one are never the other's. Whether the
    server applies the gate is the server's: `breakfix serve` does, vLLM or Ollama do not."""
    from breakfix.targets.base import recorded_manifest
    from breakfix.targets.gate import load_gate

    folder = spec.removeprefix("hf:")
    identity = (recorded_manifest(folder) or {}).get("weights_sha256") or spec
    gate = load_gate(folder) if Path(folder).is_dir() else None
    if gate is not None:
        identity += f"+gate:{gate.digest()}"
    return "breakfix-" + hashlib.sha256(identity.encode()).hexdigest()[:12]
