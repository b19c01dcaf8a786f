"""A model served by a command the loop starts: here `breakfix serve` on 127.0.0.1, a real HTTP
server in its own process."""

import socket
import sys
from pathlib import Path

import pytest

from breakfix.errors import TargetError
from breakfix.targets import load_target
from breakfix.targets.launched import LaunchedServer, served_name
from breakfix.types import GenerationConfig, Message

BREAKFIX = Path(sys.executable).parent / "breakfix"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_loop_serves_a_model_talks_to_it_and_stops_it(tmp_path):
    server = LaunchedServer(f"{BREAKFIX} serve --model {{model}} --served-name {{name}} --port {{port}}",
                            "openai:{name}@http://127.0.0.1:{port}/v1", free_port(), tmp_path / "serve.log", 60)
    spec = server.start("mock:refuse")
    try:
        assert spec.startswith("openai:breakfix-") and f":{server.port}/v1" in spec
        (reply,) = load_target(spec).chat([[Message(role="user", content="hello")]], GenerationConfig(max_new_tokens=8))
        assert reply.ok and reply.content
    finally:
        server.stop()
    assert server.process.poll() is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)


def test_a_serving_command_that_dies_is_reported_with_its_output(tmp_path):
    server = LaunchedServer(f"{BREAKFIX} serve --model nonsense:thing --port {{port}}", "openai:x@http://127.0.0.1:{port}/v1",
                            free_port(), tmp_path / "serve.log", 60)
    with pytest.raises(TargetError, match="exited with status") as info:
        server.start("mock:refuse")
    assert "nonsense" in str(info.value)


def test_served_names_change_with_the_weights(tmp_path):
    for name, sha in (("a", "1" * 64), ("b", "2" * 64)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "breakfix-checkpoint.json").write_text(f'{{"weights_sha256": "{sha}"}}')
    assert served_name(f"hf:{tmp_path / 'a'}") != served_name(f"hf:{tmp_path / 'b'}")
    assert served_name("mock:refuse") == served_name("mock:refuse")
