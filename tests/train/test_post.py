"""post_train, the one training entry point: SFT then DPO, candidates saved along training as
merged loadable models, a finished run read back, and a NaN loss recorded rather than raised."""

import json

from breakfix.config import TrainConfig
from breakfix.train import MANIFEST, complete, post_train
from tests.train.conftest import DPO_ROWS, SFT_ROWS

FAST = TrainConfig(sft_epochs=2, dpo_epochs=1, batch_size=8, sft_learning_rate=5e-3, dpo_learning_rate=5e-3,
                   max_length=96, save_steps=50, candidates="epochs")


def test_candidates_are_saved_along_training_as_loadable_models(tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    seen = []
    result = post_train(tiny, SFT_ROWS, DPO_ROWS, tmp_path, FAST, lambda stage, step, total, loss: seen.append(stage))
    assert [c.name for c in result.candidates] == ["sft@2", "sft", "dpo"]
    assert result.model == str(tmp_path / "dpo" / "model") and not result.failures and set(seen) == {"sft", "dpo"}
    assert len({c.weights_sha256 for c in result.candidates}) == 3  # three different models
    early = result.candidates[0]
    assert complete(early.path) and json.loads((tmp_path / "sft" / "candidates" / "step-2" / "model" / MANIFEST).read_text())["step"] == 2
    AutoModelForCausalLM.from_pretrained(early.path)  # merged: loads as a plain model, no adapter needed
    assert not (tmp_path / "sft" / "candidates" / "step-2" / "weights").exists()  # the raw adapter is gone once merged
    again = post_train(tiny, SFT_ROWS, DPO_ROWS, tmp_path, FAST)  # finished: read back, not retrained
    assert [c.weights_sha256 for c in again.candidates] == [c.weights_sha256 for c in result.candidates]


def test_a_loss_that_turns_nan_is_recorded_and_the_later_stages_skipped(tmp_path, monkeypatch):
    import breakfix.train.post as post
    from breakfix.train import NonFiniteLoss

    def diverge(base, rows, out, config, progress=None):
        raise NonFiniteLoss("sft: the loss became nan at step 3; training stopped (try a lower learning rate)")

    monkeypatch.setattr(post, "sft", diverge)
    monkeypatch.setattr(post, "dpo", lambda *a, **k: (_ for _ in ()).throw(AssertionError("DPO must not run")))
    result = post_train(tmp_path / "base", SFT_ROWS, DPO_ROWS, tmp_path / "out", FAST)
    assert result.model is None and result.candidates == [] and "loss became nan" in result.failures[0]


def test_blends_lie_between_the_sft_and_dpo_ends_tensor_by_tensor(tiny, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    settings = FAST.model_copy(update={"candidates": "final", "blends": [0.25, 0.5]})
    result = post_train(tiny, SFT_ROWS, DPO_ROWS, tmp_path, settings)
    assert [c.name for c in result.candidates] == ["sft", "dpo", "blend@0.25", "blend@0.5"]
    assert result.model == str(tmp_path / "dpo" / "model")  # a blend is a candidate, not the training's result
    ends = {c.name: load_file(f"{c.path}/model.safetensors") for c in result.candidates}
    for name, w in (("blend@0.25", 0.25), ("blend@0.5", 0.5)):
        mixed = ends[name]
        assert mixed.keys() == ends["sft"].keys()
        for key in mixed:
            expected = (1 - w) * ends["sft"][key].float() + w * ends["dpo"][key].float()
            assert (mixed[key].float() - expected).abs().max() < 1e-6
    changed = [k for k in ends["sft"] if not (ends["sft"][k] == ends["dpo"][k]).all()]
    assert changed and not (ends["blend@0.5"][changed[0]] == ends["sft"][changed[0]]).all()
    blended = result.candidates[-1]
    manifest = json.loads((tmp_path / "blend-0.5" / MANIFEST).read_text())
    assert complete(blended.path) and manifest["stage"] == "blend" and manifest["blend"]["weight"] == 0.5
    assert manifest["blend"]["ends"]["first"]["weights_sha256"] == result.candidates[0].weights_sha256
    AutoModelForCausalLM.from_pretrained(blended.path)  # a plain model (tied embeddings and all)


def test_scaled_updates_lie_between_the_start_and_the_end_of_training(tiny, tmp_path):
    from safetensors.torch import load_file

    settings = FAST.model_copy(update={"candidates": "final", "scales": [0.5]})
    result = post_train(tiny, SFT_ROWS, DPO_ROWS, tmp_path, settings)
    assert [c.name for c in result.candidates] == ["sft", "dpo", "scaled@0.5"]
    start, end = load_file(f"{tiny}/model.safetensors"), load_file(f"{result.candidates[1].path}/model.safetensors")
    half = load_file(f"{result.candidates[2].path}/model.safetensors")
    assert all((half[k].float() - (start[k].float() + end[k].float()) / 2).abs().max() < 1e-6 for k in half)
    manifest = json.loads((tmp_path / "scaled-0.5" / MANIFEST).read_text())
    assert manifest["stage"] == "scaled" and manifest["blend"]["ends"]["first"]["stage"] == "start"


def test_a_blend_is_read_back_unless_its_ends_changed(tiny, tmp_path, monkeypatch):
    import pytest
    import safetensors.torch

    from breakfix.train.post import End, blend

    settings = FAST.model_copy(update={"candidates": "final", "blends": [0.5]})
    result = post_train(tiny, SFT_ROWS, DPO_ROWS, tmp_path, settings)
    sft, dpo = End.of(result.stages["sft"]), End.of(result.stages["dpo"])

    def refuse(*args, **kwargs):
        raise AssertionError("blended again")

    monkeypatch.setattr(safetensors.torch, "save_file", refuse)
    assert blend(sft, dpo, 0.5, tmp_path / "blend-0.5").weights_sha256 == result.candidates[-1].weights_sha256
    retrained = dpo.model_copy(update={"weights_sha256": "0" * 64})  # DPO trained again since
    with pytest.raises(AssertionError, match="blended again"):
        blend(sft, retrained, 0.5, tmp_path / "blend-0.5")


def test_blend_weights_lie_strictly_between_the_ends():
    import pytest
    from pydantic import ValidationError

    assert TrainConfig(blends=[0.5, 0.25, 0.5, 0.50001]).blends == [0.25, 0.5]  # rounded: names carry the weight
    for bad in ([0.0], [1.0], [1.5]):
        with pytest.raises(ValidationError, match="strictly between"):
            TrainConfig(blends=bad)
    with pytest.raises(ValidationError, match="that end"):
        TrainConfig(blends=[0.9999])


def test_refresh_adds_pairs_made_from_the_sft_end_before_dpo(tiny, tmp_path):
    asked = []

    def refresh(sft):
        asked.append(sft)
        return DPO_ROWS[:8]  # e.g. the SFT model's own mistakes on the probes

    result = post_train(tiny, SFT_ROWS, DPO_ROWS, tmp_path, FAST, refresh=refresh)
    assert [s.path for s in asked] == [result.stages["sft"].path]
    assert result.stages["dpo"].steps == 3  # 24 pairs at batch 8, one epoch: its own 16 and the 8 refreshed
    post_train(tiny, SFT_ROWS, DPO_ROWS, tmp_path, FAST, refresh=refresh)  # read back: still asked, for the record
    assert len(asked) == 2
    post_train(tiny, [], DPO_ROWS, tmp_path / "dpo-only", FAST, refresh=refresh)  # no SFT end: nothing to ask
    assert len(asked) == 2
