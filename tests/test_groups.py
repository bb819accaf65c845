"""Where DPO's effect lives (interp.groups): the exact split of the toxic projection's change into
neurons, attention and the rest, and the neuron groups, on planted pairs whose answer is known."""

from __future__ import annotations

import pytest
import torch

TOXIC, CLEAN = ["shut", "get"], ["you", "thank", "see"]


def _groups(tiny_hf, mechanism):
    _, test, g = _planted_groups(tiny_hf, mechanism)
    return test, g


def _planted_groups(tiny_hf, mechanism):
    """The planted pair, the test texts' contributions and the groups formed on dev."""
    from interp import hooks as H
    from interp.groups import contributions, neuron_groups
    from interp.testing import planted_pair

    model, tok, data = tiny_hf
    pair, planted = planted_pair(model, tok, data.train_prompts[:200], data.heldout_neutral[:100], TOXIC, CLEAN,
                                 k=5, strength=0.1, suppress=0.01, mechanism=mechanism, data=data)
    d = H.values(pair.base)[planted.layer[0], planted.index[0]]  # the planted neurons' toxic direction
    dev = contributions(pair, data.train_prompts[:80], d)
    test = contributions(pair, data.eval_prompts[:80], d)
    return pair, test, neuron_groups(dev, test, located=planted)


def test_the_split_is_exact_and_a_planted_lee_mechanism_is_its_toxic_neurons_firing_less(tiny_hf, use_organism_cache):
    """Lee's mechanism planted (the keys' W_in columns ×0.01 in the last MLP): nothing upstream of
    that MLP changed, so attention and the rest carry exactly nothing; the planted neurons' firing
    less carries the whole change, and they are in the group "toxic, fires less"."""
    test, g = _groups(tiny_hf, "lee")
    parts = test.neurons_act.sum((1, 2)) + test.neurons_value.sum((1, 2)) + test.attn.sum(1) + test.rest
    assert torch.allclose(parts, test.total)
    assert g.total.value < 0 and g.total.hi < 0  # the aligned model writes less along the toxic direction
    assert abs(g.shares["attention"].value) < 1e-4 and abs(g.shares["rest"].value) < 1e-3
    assert abs(g.shares["value vectors"].value) < 1e-4  # W_out untouched
    assert g.shares["located (activation part)"].value > 0.9
    assert g.shares["toxic, fires less"].value > 0.9 and g.shares["toxic, fires less"].lo > 0.8
    assert sum(s.value for k, s in g.shares.items() if k != "located (activation part)") == pytest.approx(1.0, abs=1e-6)


def test_planted_shrunk_values_are_the_value_part_not_neurons_firing_less(tiny_hf, use_organism_cache):
    """The opposite story (the value vectors ×0.01, keys untouched): the change is the value part;
    no group of neurons firing less carries it."""
    _, g = _groups(tiny_hf, "shrink_values")
    assert g.shares["value vectors"].value > 0.9
    assert abs(g.shares["toxic, fires less"].value) < 0.1 and abs(g.shares["located (activation part)"].value) < 0.1


def test_a_planted_attention_mechanism_is_attention_not_lees_neurons(tiny_hf, use_organism_cache):
    """The change carried by the last block's attention bias (the MLP untouched): its direct
    write is most of the change; the planted neurons' firing less is a minority."""
    _, g = _groups(tiny_hf, "attention")
    assert g.shares["attention"].value > 0.5 and g.shares["attention"].lo > 0.5
    assert g.shares["located (activation part)"].value < 0.5 and abs(g.shares["value vectors"].value) < 1e-4


def _tiny_gemma3(tokenizer, seed=0):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    cfg = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=64,
                           sliding_window=16, layer_types=["sliding_attention", "full_attention"],
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.pad_token_id)
    m = Gemma3ForCausalLM(cfg).eval()
    with torch.no_grad():  # norms away from their identity initialisation, as in a trained model
        for layer in m.model.layers:
            for norm in (layer.post_feedforward_layernorm, layer.post_attention_layernorm):
                norm.weight.normal_(0, 0.5)
    return m


def test_gemmas_post_mlp_norm_is_part_of_what_a_neuron_writes_and_the_split_stays_exact(tokenizer):
    """Gemma 2/3 pass each MLP's output through an RMSNorm before the residual: a neuron writes
    (1 + w) ⊙ v / rms. interp.hooks.values holds that direction, and the split of a change is
    exact per token there too (the activations divided by the norm's rms before averaging)."""
    import copy

    from interp import hooks as H
    from interp.groups import contributions
    from interp.pair import Pair, bridge_from_module

    base_hf = _tiny_gemma3(tokenizer)
    aligned_hf = copy.deepcopy(base_hf)
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for layer in aligned_hf.model.layers:
            for p in (layer.mlp.down_proj.weight, layer.mlp.up_proj.weight, layer.post_feedforward_layernorm.weight,
                      layer.self_attn.o_proj.weight):
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    base = bridge_from_module(base_hf, tokenizer, name="tiny-gemma3")
    aligned = bridge_from_module(aligned_hf, tokenizer, name="tiny-gemma3-aligned")
    gain = torch.stack([1 + layer.post_feedforward_layernorm.weight for layer in base_hf.model.layers])
    want = torch.stack([layer.mlp.down_proj.weight.T for layer in base_hf.model.layers]) * gain[:, None, :]
    assert torch.allclose(H.values(base), want, atol=1e-5)
    pair = Pair(base, aligned, name="tiny-gemma3 pair")
    d = torch.randn(32, generator=torch.Generator().manual_seed(2))
    texts = ["the cat sat on the mat", "you are a stupid idiot", "thank you kindly", "a b c"]
    c = contributions(pair, texts, d, batch_size=3)
    parts = c.neurons_act.sum((1, 2)) + c.neurons_value.sum((1, 2)) + c.attn.sum(1)
    assert torch.allclose(parts, c.total, atol=1e-4), (parts, c.total)  # no biases, same embeddings: rest = 0
    assert c.total.abs().max() > 1e-2  # and there was a change to split


def _edits(tiny_hf, mechanism):
    from interp.groups import group_edits
    from interp.measure import MeasureSpec
    from interp.organism.corpus import GrammarScorer

    pair, _, g = _planted_groups(tiny_hf, mechanism)
    _, _, data = tiny_hf
    spec = MeasureSpec(tuple(data.eval_prompts[:40]), tuple(data.heldout_neutral[:20]), n_samples=2, seed=3)
    return g, group_edits(pair, spec, g, [GrammarScorer()], names=("toxic, fires less", "located (activation part)"))


def test_editing_the_planted_group_gives_back_the_base_and_applying_it_aligns_the_base(tiny_hf, use_organism_cache):
    """Lee's mechanism planted: its neurons are the group "toxic, fires less", and nothing else
    changed — so the aligned model with that group's activations taken from the base *is* the
    base (the same samples, token for token, on the same seeds), and the base with the aligned
    model's activations there is the aligned model."""
    g, e = _edits(tiny_hf, "lee")
    assert set(e.reverted) == {"toxic, fires less", "located (activation part)"}
    for name in e.reverted:
        assert e.reverted[name].completions == e.base.completions
        assert e.applied[name].completions == e.aligned.completions
    rows = e.rows(["grammar"])
    x = rows["toxic, fires less"]["by_scorer"]["grammar"]
    if e.base.rate("grammar") != e.aligned.rate("grammar"):
        assert x["share_undone"].value == pytest.approx(1.0) and x["share_reproduced"].value == pytest.approx(1.0)
    assert rows["toxic, fires less"]["ppl_ratio_reverted"] == pytest.approx(e.base.perplexity / e.aligned.perplexity)


def test_editing_activations_cannot_undo_a_change_in_the_value_vectors(tiny_hf, use_organism_cache):
    """The other story planted (the value vectors ×0.01, keys untouched): activations are the same
    in both models, so patching any group's activations changes nothing — the edit is not
    mistaken for Lee's mechanism."""
    g, e = _edits(tiny_hf, "shrink_values")
    for name in e.reverted:
        assert e.reverted[name].completions == e.aligned.completions
        assert e.applied[name].completions == e.base.completions
