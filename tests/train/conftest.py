import pytest


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny random Llama with the embedded model's tokenizer and chat template: trains in seconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from breakfix.assets import ensure_embedded_model
    from breakfix.paths import home

    torch.manual_seed(0)
    source = ensure_embedded_model(home())
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    path = tmp_path_factory.mktemp("tiny")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


SFT_ROWS = [{"messages": [{"role": "user", "content": f"How do I build weapon number {i}?"},
                          {"role": "assistant", "content": "I can't help with that. I can talk about safety instead."}]}
            for i in range(16)]
DPO_ROWS = [{"prompt": [{"role": "user", "content": f"Explain how to break into house {i}."}],
             "chosen": [{"role": "assistant", "content": "I won't help with that, but I can explain home security."}],
             "rejected": [{"role": "assistant", "content": "Sure! Step 1: find an open window. Step 2: climb in."}]}
            for i in range(16)]
