"""Per-endpoint keys (`openai:MODEL@URL#key=VAR`) and `max_completion_tokens` for servers that
refuse `max_tokens`. Real HTTP on 127.0.0.1."""

import pytest

from breakfix.errors import TargetError
from breakfix.targets import load_target
from breakfix.targets.mock import MockTarget
from breakfix.targets.server import ServerSettings, running
from breakfix.types import GenerationConfig, user
from tests.stubs import stub


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


def _new_style(body):
    """Answers like OpenAI's reasoning models: 400 for `max_tokens`."""
    if "max_tokens" in body:
        return 400, {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this "
                                          "model. Use 'max_completion_tokens' instead.", "code": 400}}
    return 200, {"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]}


def test_max_completion_tokens_is_sent_when_max_tokens_is_refused():
    with stub(_new_style) as (url, sent):
        target = load_target(f"openai:o-mini@{url}")
        first = target.chat([user("a")], GenerationConfig(max_new_tokens=7))[0]
        second = target.chat([user("b")], GenerationConfig(max_new_tokens=7))[0]
    assert first.ok and second.ok and first.content == "ok"
    assert [("max_tokens" in b, b.get("max_completion_tokens")) for b in sent] == [(True, None), (False, 7), (False, 7)]
