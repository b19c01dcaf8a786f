"""Training changes behaviour: parameters move and the loss on the training examples falls."""

import json

import pytest
import torch

from breakfix.config import TrainConfig
from breakfix.errors import InputError
from breakfix.train import MANIFEST, complete, dpo, sft
from tests.train.conftest import DPO_ROWS, SFT_ROWS

FAST = TrainConfig(sft_epochs=3, dpo_epochs=2, batch_size=4, sft_learning_rate=5e-3, dpo_learning_rate=5e-3,
                   max_length=96, save_steps=5)


def completion_nll(path, rows):
    """Mean loss on the assistant replies, as the model at `path` sees them."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    losses = []
    for row in rows:
        prompt = tok.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        full = tok.apply_chat_template(row["messages"], tokenize=True, return_dict=True)["input_ids"]
        ids = torch.tensor([full])
        labels = ids.clone()
        labels[0, : len(prompt)] = -100
        with torch.no_grad():
            losses.append(model(input_ids=ids, labels=labels).loss.item())
    return sum(losses) / len(losses)


def weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


@pytest.mark.parametrize("lora", [True, False])
def test_sft_changes_the_weights_and_lowers_the_loss_on_its_examples(tiny, tmp_path, lora):
    before = completion_nll(tiny, SFT_ROWS)
    result = sft(tiny, SFT_ROWS, tmp_path / "sft", FAST.model_copy(update={"lora": lora}))
    after = completion_nll(tmp_path / "sft" / "model", SFT_ROWS)
    assert after < before - 0.5, (before, after)
    old, new = weights(tiny), weights(tmp_path / "sft" / "model")
    assert any(not torch.equal(old[k], new[k]) for k in old)
    assert result.steps == 12 and result.examples == 16 and result.losses[-1] < result.losses[0]
    assert complete(tmp_path / "sft" / "model") and (tmp_path / "sft" / "adapter").exists() == lora
    manifest = json.loads((tmp_path / "sft" / "model" / MANIFEST).read_text())
    assert manifest["parent"] == str(tiny) and manifest["weights_sha256"] == result.weights_sha256


def test_dpo_prefers_chosen_over_rejected_after_training(tiny, tmp_path):
    def margin(path):
        rows = [{"messages": [*r["prompt"], *r["chosen"]]} for r in DPO_ROWS]
        bad = [{"messages": [*r["prompt"], *r["rejected"]]} for r in DPO_ROWS]
        return completion_nll(path, bad) - completion_nll(path, rows)

    before = margin(tiny)
    result = dpo(tiny, DPO_ROWS, tmp_path / "dpo", FAST)
    assert margin(tmp_path / "dpo" / "model") > before + 0.2
    assert result.steps == 8 and result.losses[-1] < result.losses[0]


def test_long_prompts_are_cut_from_the_oldest_side_and_counted(tiny, tmp_path):
    long = [{"messages": [{"role": "user", "content": "old turn " * 200}, {"role": "assistant", "content": "ok"},
                          {"role": "user", "content": "the real question?"},
                          {"role": "assistant", "content": "I can't help with that."}]}] * 4
    result = sft(tiny, long, tmp_path / "long", FAST.model_copy(update={"sft_epochs": 1}))
    assert result.truncated == 4


def test_a_model_without_a_chat_template_is_refused(tiny, tmp_path):
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(tiny, plain)
    for name in ("chat_template.jinja",):
        (plain / name).unlink(missing_ok=True)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="no chat template"):
        sft(plain, SFT_ROWS, tmp_path / "x", FAST)


def test_a_checkpoint_cut_off_mid_save_is_dropped_for_the_one_before_it(tmp_path):
    from breakfix.train.trainer import _last_checkpoint

    trainer = tmp_path / "trainer"
    for step, files in ((2, {"trainer_state.json": "{}", "adapter_model.safetensors": "w"}),
                        (10, {"adapter_model.safetensors": "w"}),            # killed before its state was written
                        (4, {"trainer_state.json": "{\"glob", "model.safetensors": "w"})):  # state half written
        folder = trainer / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text)
    assert _last_checkpoint(tmp_path) == str(trainer / "checkpoint-2")
    assert sorted(p.name for p in trainer.iterdir()) == ["checkpoint-2"]
    assert _last_checkpoint(tmp_path / "nothing") is None
