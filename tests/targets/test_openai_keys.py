"""Per-endpoint keys (`openai:MODEL@URL#key=VAR`) and `max_completion_tokens` for servers that
refuse `max_tokens`. Real HTTP on 127.0.0.1."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from breakfix.errors import TargetError
from breakfix.targets import load_target
from breakfix.targets.mock import MockTarget
from breakfix.targets.server import ServerSettings, running
from breakfix.types import GenerationConfig, user


def test_a_model_string_names_its_own_key_variable(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "the-openai-key")
    monkeypatch.setenv("THIRD_PARTY_KEY", "k3y")
    with running(MockTarget("echo"), ServerSettings(served_name="m", api_key="k3y")) as url:
        reply = load_target(f"openai:m@{url}#key=THIRD_PARTY_KEY").chat([user("hi")], GenerationConfig())[0]
        with pytest.raises(TargetError, match="check the API key"):  # the default variable holds another key
            load_target(f"openai:m@{url}").chat([user("hi")], GenerationConfig())
    assert reply.ok and reply.content == "hi"


@pytest.mark.parametrize("spec, says", [("openai:m@http://127.0.0.1:9/v1#key=UNSET_VAR_XYZ", "UNSET_VAR_XYZ is not set"),
                                        ("openai:m@http://127.0.0.1:9/v1#token=X", "key=ENV_VAR")])
def test_a_bad_key_variable_is_one_clear_error(spec, says):
    with pytest.raises(TargetError, match=says):
        load_target(spec)


class _NewStyle(BaseHTTPRequestHandler):
    """Answers like OpenAI's reasoning models: 400 for `max_tokens`."""

    bodies: list[dict] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        type(self).bodies.append(body)
        if "max_tokens" in body:
            status, out = 400, {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this "
                                                     "model. Use 'max_completion_tokens' instead.", "code": 400}}
        else:
            status, out = 200, {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}
        data = json.dumps(out).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_max_completion_tokens_is_sent_when_max_tokens_is_refused():
    server = HTTPServer(("127.0.0.1", 0), _NewStyle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = load_target(f"openai:o-mini@http://127.0.0.1:{server.server_port}/v1")
        first = target.chat([user("a")], GenerationConfig(max_new_tokens=7))[0]
        second = target.chat([user("b")], GenerationConfig(max_new_tokens=7))[0]
    finally:
        server.shutdown()
    assert first.ok and second.ok and first.content == "ok"
    sent = _NewStyle.bodies
    assert [("max_tokens" in b, b.get("max_completion_tokens")) for b in sent] == [(True, None), (False, 7), (False, 7)]
