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
