"""The `hf` target on the real embedded SmolLM2 (slow: seconds per test), in the dtype this
machine's probe chooses (the fast path) and in fp32: both keep the same contract."""

import pytest

from breakfix.types import GenerationConfig, Message, user

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["auto", "float32"])
def model(request, smol):
    """The session's model as it loads by default (the probed dtype), and an fp32 one, unless
    the probe already chose fp32 here."""
    if request.param == "auto":
        return smol
    if smol.dtype == request.param:
        pytest.skip(f"the probe chose {request.param} here: the auto run covers it")
    from breakfix.targets import load_target

    return load_target("smollm2-135m", dtype=request.param)

QUESTIONS = ["What is the capital of France?", "What is the capital of Germany?", "Explain recursion to a child.",
             "Write a haiku about autumn rain.", "What is the capital of Japan?"]


def test_answers_factual_questions(model):
    replies = model.chat([user(q) for q in QUESTIONS[:2]], GenerationConfig(max_new_tokens=24))
    assert "Paris" in replies[0].content and "Berlin" in replies[1].content
    assert all(r.ok and r.finish_reason == "stop" and r.completion_tokens > 0 for r in replies)


def test_batched_greedy_replies_equal_one_at_a_time(model):
    config = GenerationConfig(max_new_tokens=32)
    batched = model.chat([user(q) for q in QUESTIONS], config)
    single = [model.chat([user(q)], config)[0] for q in QUESTIONS]
    assert [r.content for r in batched] == [r.content for r in single]


def test_replies_come_back_in_input_order_across_batches(model):
    model.batch_size, saved = 2, model.batch_size
    try:
        replies = model.chat([user(q) for q in QUESTIONS], GenerationConfig(max_new_tokens=16))
    finally:
        model.batch_size = saved
    assert "Paris" in replies[0].content and "Tokyo" in replies[4].content


def test_max_new_tokens_is_respected(model):
    reply = model.chat([user("Write a long story about a dragon.")], GenerationConfig(max_new_tokens=5))[0]
    assert reply.finish_reason == "length" and reply.completion_tokens == 5


def test_stop_strings_end_the_reply(model):
    reply = model.chat([user("What is the capital of France?")], GenerationConfig(max_new_tokens=24, stop=(" is",)))[0]
    assert reply.content == "The capital of France" and reply.finish_reason == "stop"


def test_sampling_is_reproducible_by_seed(model):
    convs = [user("Tell me a short story about a cat.")] * 2

    def sample(seed):
        return [r.content for r in model.chat(convs, GenerationConfig(max_new_tokens=20, temperature=1.0, seed=seed))]

    first, again, other = sample(1), sample(1), sample(2)
    assert first == again
    assert first != other


def test_system_prompt_and_history_are_in_the_rendered_prompt(model):
    history = [Message(role="user", content="My name is Zorblax."), Message(role="assistant", content="Nice to meet you, Zorblax!"),
               Message(role="user", content="What is my name?")]
    ids = model.encode(history, GenerationConfig(system_prompt="You are terse."))
    text = model.tokenizer.decode(ids)
    assert "You are terse." in text and "Zorblax" in text and text.rstrip().endswith("assistant")
    reply = model.chat([history], GenerationConfig(max_new_tokens=20))[0]
    assert "Zorblax" in reply.content


def test_a_prompt_too_long_for_the_context_is_an_errored_reply_not_a_crash(model):
    long = user("word " * 9000)
    replies = model.chat([long, user("What is the capital of France?")], GenerationConfig(max_new_tokens=16))
    assert not replies[0].ok and "does not fit" in replies[0].error
    assert "Paris" in replies[1].content


def test_the_dtype_is_the_models_and_names_the_backend(model):
    assert str(model.model.dtype) == f"torch.{model.dtype}"
    assert model.backend == f"torch:{model.device}:{model.dtype}" and model.dtype_reason


def test_loglikelihood_prefers_the_true_statement(model):
    true, false = model.loglikelihood(["The capital of Japan is Tokyo.", "The capital of Japan is Cairo."])
    assert true > false
