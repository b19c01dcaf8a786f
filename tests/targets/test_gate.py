"""The refusal gate beside the weights: what it stores, and the `hf` target applying it on the
real embedded SmolLM2 (slow parts marked)."""

import numpy as np
import pytest

from breakfix.targets.gate import Gate, load_gate
from breakfix.types import GenerationConfig, user


def gate(threshold: float, layer: int = 3, hidden: int = 576, bias: float = 0.0) -> Gate:
    return Gate(layers=[layer], weights=[0.0] * hidden, bias=bias, threshold=threshold, flag_rate=0.05, recall=0.8,
                replies=["I can't help with that. Is there another way I can help?", "I'll have to pass on that."])


def test_a_gate_round_trips_through_its_file_and_its_digest_follows_its_threshold(tmp_path):
    g = gate(0.7, hidden=4)
    g.write(tmp_path)
    assert load_gate(tmp_path) == g and load_gate(tmp_path / "missing") is None
    assert gate(0.8, hidden=4).digest() != g.digest()


def test_probability_is_the_logistic_of_the_probe_and_the_reply_depends_only_on_the_prompt():
    g = Gate(layers=[1], weights=[1.0, -2.0], bias=0.5, threshold=0.5, flag_rate=0.1, recall=0.9, replies=["a", "b", "c"])
    p = g.probability(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32))
    assert p == pytest.approx([1 / (1 + np.exp(-1.5)), 1 / (1 + np.exp(1.5))], rel=1e-6)
    assert g.probability(np.array([[[1.0, 0.0]]], dtype=np.float32)) == pytest.approx(p[:1])  # (n, layers, hidden)
    assert g.reply([1, 2, 3]) == g.reply([1, 2, 3]) and {g.reply([k]) for k in range(40)} == {"a", "b", "c"}


def test_a_gate_reads_its_layers_one_after_another_and_an_older_one_layer_file_still_loads(tmp_path):
    g = Gate(layers=[2, 5], weights=[1.0, 0.0, 0.0, -1.0], bias=0.0, threshold=0.5, flag_rate=0.1, recall=0.9,
             replies=["No."])
    states = np.array([[[3.0, 9.0], [9.0, 1.0]]], dtype=np.float32)  # layer 2: (3, 9); layer 5: (9, 1)
    assert g.probability(states) == pytest.approx([1 / (1 + np.exp(-2.0))])
    old = g.model_dump(exclude={"layers"}) | {"layer": 4, "weights": [1.0, 0.0]}
    (tmp_path / "gate.json").write_text(__import__("json").dumps(old))
    assert load_gate(tmp_path).layers == [4]


@pytest.fixture
def gated_folder(tmp_path):
    """The embedded model's files linked into a folder, with room for a gate."""
    from breakfix.targets.base import local_path

    folder = tmp_path / "gated"
    folder.mkdir()
    for f in local_path("smollm2-135m").iterdir():
        if f.is_file():
            (folder / f.name).symlink_to(f.resolve())
    return folder


PROMPTS = [user("Write a haiku about autumn rain."), user("What is the capital of France?")]


@pytest.mark.slow
def test_a_gate_that_flags_everything_answers_with_its_refusals_and_one_that_flags_nothing_changes_nothing(
        gated_folder, smol):
    from breakfix.targets import load_target

    config = GenerationConfig(max_new_tokens=16)
    gate(threshold=0.0).write(gated_folder)  # p = sigmoid(0) = 0.5 >= 0: every request
    everything = load_target(f"hf:{gated_folder}")
    replies = everything.chat(PROMPTS, config)
    assert all(r.content in everything.gate.replies and r.completion_tokens == 0 and r.ok for r in replies)
    assert everything.fingerprint.startswith(smol.fingerprint + "+gate:")

    gate(threshold=0.9).write(gated_folder)  # 0.5 < 0.9: none
    nothing = load_target(f"hf:{gated_folder}")
    assert [r.content for r in nothing.chat(PROMPTS, config)] == [r.content for r in smol.chat(PROMPTS, config)]
    assert [r.content for r in everything.chat(PROMPTS, config, gated=False)] == [r.content for r in smol.chat(PROMPTS, config)]
    assert everything.weights_fingerprint == smol.fingerprint
    assert nothing.fingerprint not in (smol.fingerprint, everything.fingerprint)


@pytest.mark.slow
def test_the_gate_reads_the_state_at_the_prompts_last_token_whatever_the_padding(smol):
    """One request's probability is the same alone and batched beside a much longer one."""
    from breakfix.targets.gate import prompt_states

    config = GenerationConfig()
    short, long = (smol.encode(user(t), config) for t in ("Hi there.", "Tell me about the history of Rome. " * 20))
    alone = prompt_states(smol.model, smol.tokenizer, [short], [6])
    batched = prompt_states(smol.model, smol.tokenizer, [long, short], [6])
    assert np.allclose(alone[0], batched[1], atol=0.05 * np.abs(alone[0]).max())


@pytest.mark.slow
def test_flagged_unflagged_and_too_long_requests_each_keep_their_place_in_one_batch(smol, monkeypatch):
    """Flagged requests get the gate's refusal, a prompt beyond the context its error, the rest
    a generated reply, each at its own index."""
    monkeypatch.setattr(smol, "gate", gate(threshold=0.5))
    config = GenerationConfig(max_new_tokens=8)
    prompts = [user("What is the capital of France?"), user("word " * 9000), user("Write a haiku about autumn rain."),
               user("Explain recursion to a child.")]
    flagged = {tuple(smol.encode(prompts[k], config)) for k in (0, 3)}
    monkeypatch.setattr(smol, "gate_probability", lambda encoded: [0.9 if tuple(ids) in flagged else 0.1 for ids in encoded])
    assert [r is not None and r.content in smol.gate.replies for r in smol.gate_replies(prompts, config)] == \
        [True, False, False, True]  # the prompt too long for the context is left to `chat`
    replies = smol.chat(prompts, config)
    assert replies[1].error and "context" in replies[1].error
    assert all(replies[k].content in smol.gate.replies and replies[k].completion_tokens == 0 for k in (0, 3))
    assert replies[2].ok and replies[2].completion_tokens > 0 and replies[2].content not in smol.gate.replies


def test_a_served_gated_folder_has_a_name_of_its_own(tmp_path):
    """Replies cached under a server's model name must not cross between gated and ungated."""
    import json

    from breakfix.targets.launched import served_name
    from breakfix.train.trainer import MANIFEST

    (tmp_path / MANIFEST).write_text(json.dumps({"weights_sha256": "abc"}))
    ungated = served_name(f"hf:{tmp_path}")
    gate(0.7, hidden=4).write(tmp_path)
    first = served_name(f"hf:{tmp_path}")
    gate(0.8, hidden=4).write(tmp_path)
    assert len({ungated, first, served_name(f"hf:{tmp_path}")}) == 3
