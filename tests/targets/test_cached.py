"""The reply cache: same weights + backend + input + config -> the same stored reply; bf16 and
fp32 replies of the same weights never stand in for each other."""

from breakfix.targets.cached import CachedTarget, reply_key
from breakfix.targets.mock import MockTarget
from breakfix.types import GenerationConfig, user


def test_the_key_differs_by_backend_and_stays_as_it_was_without_one():
    conv, config = user("hi"), GenerationConfig()
    bf16 = reply_key("sha256:w", conv, config, "torch:cpu:bfloat16")
    fp32 = reply_key("sha256:w", conv, config, "torch:cpu:float32")
    assert bf16 != fp32
    assert reply_key("sha256:w", conv, config) == reply_key("sha256:w", conv, config, "")  # remote/mock keys unchanged
    assert reply_key("sha256:w", conv, config) not in (bf16, fp32)


def _local(backend: str, behaviour: str) -> MockTarget:
    target = MockTarget(behaviour, name="same-weights")
    target.backend = backend
    return target


def test_a_bf16_target_does_not_get_fp32_replies_from_the_cache(store):
    config = GenerationConfig()
    fp32 = CachedTarget(_local("torch:cpu:float32", "comply"), store)
    first = fp32.chat([user("hello")], config)[0].content
    again = CachedTarget(_local("torch:cpu:float32", "refuse"), store).chat([user("hello")], config)[0].content
    bf16 = CachedTarget(_local("torch:cpu:bfloat16", "refuse"), store)
    other = bf16.chat([user("hello")], config)[0].content
    assert again == first  # same backend: served from the cache
    assert other != first and bf16.generated == 1 and bf16.cached == 0


class _Gated:
    """Weights that echo the request, and a gate that refuses requests containing "flag"."""

    backend = "torch:cpu:float32"

    def __init__(self, gate: bool):
        self.gate = object() if gate else None
        self.weights_fingerprint = "sha256:w"
        self.fingerprint = "sha256:w+gate:g" if gate else "sha256:w"
        self.name = "gated" if gate else "plain"
        self.asked: list[str] = []

    def gate_replies(self, conversations, config):
        from breakfix.types import Reply

        return [Reply(content="No.", finish_reason="stop") if self.gate and "flag" in c[-1].content else None
                for c in conversations]

    def chat(self, conversations, config, *, gated=True):
        from breakfix.types import Reply

        flagged = self.gate_replies(conversations, config) if gated else [None] * len(conversations)
        self.asked += [c[-1].content for c, f in zip(conversations, flagged) if f is None]
        return [f or Reply(content=f"echo {c[-1].content}", finish_reason="stop") for c, f in zip(conversations, flagged)]


def test_a_gated_model_reuses_its_weights_replies_and_generates_only_what_they_lack(store):
    config = GenerationConfig(max_new_tokens=8)
    plain = CachedTarget(_Gated(gate=False), store)
    assert [r.content for r in plain.chat([user("a"), user("b flag")], config)] == ["echo a", "echo b flag"]

    inner = _Gated(gate=True)
    gated = CachedTarget(inner, store)
    replies = gated.chat([user("a"), user("b flag"), user("c")], config)
    assert [r.content for r in replies] == ["echo a", "No.", "echo c"]
    assert inner.asked == ["c"]  # "a" came from the ungated weights' cache; "b flag" is the gate's
    assert (gated.generated, gated.cached) == (2, 1)

    again = _Gated(gate=False)
    assert CachedTarget(again, store).chat([user("c")], config)[0].content == "echo c" and again.asked == []
    assert [r.content for r in CachedTarget(_Gated(gate=True), store).chat([user("b flag")], config)] == ["No."]

    # The gate's refusal is never stored as the weights' reply, whichever model asks first.
    assert CachedTarget(_Gated(gate=True), store).chat([user("d flag")], config)[0].content == "No."
    weights = _Gated(gate=False)
    assert CachedTarget(weights, store).chat([user("d flag")], config)[0].content == "echo d flag"
    assert weights.asked == ["d flag"]
