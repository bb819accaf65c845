import copy

import pytest
import torch

from interp import hooks as H
from interp.generate import generate, sample_keys, sample_next
from interp.pair import bridge_from_module

from .conftest import make_gpt2, make_llama

PROMPTS = ["Rex said to Ada:", "The old cat", "On Monday the fox and the owl waited in the", "Ada"]


@pytest.mark.parametrize("maker", [make_gpt2, make_llama], ids=["gpt2", "llama"])
def test_greedy_equals_hugging_face_token_for_token(tokenizer, maker):
    module = maker(tokenizer)
    ref = copy.deepcopy(module)
    bridge = bridge_from_module(module, tokenizer)
    tokenizer.padding_side = "left"
    enc = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    tokenizer.padding_side = "right"
    with torch.no_grad():
        hf = ref.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    for use_cache in (False, True):  # the hooked (recompute) path and the KV-cached twin
        ours = generate(bridge, PROMPTS, max_new_tokens=12, batch_size=4, stop_at_eos=False,
                        use_cache=use_cache)
        assert torch.equal(ours.tokens, hf[:, enc.input_ids.shape[1]:]), use_cache
        # Batch composition does not change a greedy result.
        single = generate(bridge, PROMPTS[2:3], max_new_tokens=12, stop_at_eos=False,
                          use_cache=use_cache)
        assert torch.equal(single.tokens[0], ours.tokens[2])


def test_cached_twin_shares_the_bridges_weights(tokenizer):
    from interp.attribution import swapped_weights
    from interp.pair import pair_from_modules

    pair = pair_from_modules(make_gpt2(tokenizer, seed=0), make_gpt2(tokenizer, seed=1), tokenizer)
    kw = dict(max_new_tokens=8, stop_at_eos=False)
    before = generate(pair.aligned, PROMPTS, **kw).tokens
    with swapped_weights(pair.aligned, pair.base):
        swapped = generate(pair.aligned, PROMPTS, **kw).tokens
        slow = generate(pair.aligned, PROMPTS, use_cache=False, **kw).tokens
    assert torch.equal(swapped, generate(pair.base, PROMPTS, **kw).tokens)
    assert torch.equal(swapped, slow) and not torch.equal(swapped, before)
    assert torch.equal(generate(pair.aligned, PROMPTS, **kw).tokens, before)


@pytest.mark.parametrize("use_cache", [False, True])
def test_sampling_is_seeded(gpt2, use_cache):
    a = generate(gpt2, PROMPTS, do_sample=True, seed=3, max_new_tokens=8, use_cache=use_cache)
    b = generate(gpt2, PROMPTS, do_sample=True, seed=3, max_new_tokens=8, use_cache=use_cache)
    c = generate(gpt2, PROMPTS, do_sample=True, seed=4, max_new_tokens=8, use_cache=use_cache)
    assert a.completions == b.completions
    assert not torch.equal(a.tokens, c.tokens)


@pytest.mark.parametrize("maker", [make_gpt2, make_llama], ids=["gpt2", "llama"])
def test_samples_do_not_depend_on_batch_order_or_path(tokenizer, maker):
    """A prompt's j-th sample is keyed by (seed, text, j): batch size 7 or 64, the prompts in
    another order, the KV-cached or the recomputing path, and a shard of the list given its keys
    all draw the same tokens; top-k, top-p and temperature too."""
    bridge = bridge_from_module(maker(tokenizer), tokenizer)
    prompts = [p for p in PROMPTS * 5 for _ in range(3)]  # repeated prompts, three samples each
    for kw in (dict(), dict(temperature=0.7, top_k=20, top_p=0.9)):
        kw = dict(do_sample=True, seed=11, max_new_tokens=10, **kw)
        ref = generate(bridge, prompts, batch_size=64, **kw)
        assert len(set(ref.completions)) > len(prompts) // 3  # samples, not copies
        assert ref.completions == generate(bridge, prompts, batch_size=7, **kw).completions
        assert ref.completions == generate(bridge, prompts, batch_size=7, use_cache=False, **kw).completions
        order = list(reversed(range(len(prompts))))
        rev = generate(bridge, [prompts[i] for i in order], batch_size=16, **kw)
        # Reversal also reverses which occurrence of a text comes first: key the shard explicitly.
        keys = sample_keys(prompts, 11)
        shard = generate(bridge, prompts[5:23], keys=keys[5:23], batch_size=4, **kw)
        assert shard.completions == ref.completions[5:23]
        assert sorted(rev.completions) == sorted(ref.completions)
    with pytest.raises(ValueError, match="keys: 2 for 3"):
        generate(bridge, PROMPTS[:3], do_sample=True, keys=[1, 2])


def test_keyed_sampling_draws_from_the_softmax():
    """Inverse-CDF sampling at keyed uniforms: frequencies match the distribution (χ² test) and
    a token with probability 0 (filtered) is never drawn."""
    from scipy.stats import chisquare

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, float("-inf")]]).repeat(20_000, 1)
    keys = sample_keys([str(i) for i in range(20_000)], 5)
    got = sample_next(logits, keys, step=3)
    counts = torch.bincount(got, minlength=5)
    assert counts[4] == 0
    p = logits[0, :4].double().softmax(-1)
    assert chisquare(counts[:4].double().numpy(), (p * counts[:4].sum()).numpy()).pvalue > 1e-3
    top2 = sample_next(logits[:2000], keys[:2000], step=0, top_k=2)
    assert set(top2.tolist()) == {0, 1}


def test_hooks_are_active_during_generation(gpt2):
    calls = []

    def spy(act, hook):
        calls.append(act.shape[1])

    generate(gpt2, PROMPTS[:1], max_new_tokens=5, stop_at_eos=False, hooks=[(H.mlp_post(0), spy)],
             use_cache=False)
    assert len(calls) == 5 and calls == sorted(calls)  # every step sees the whole, growing sequence
    calls.clear()
    generate(gpt2, PROMPTS[:1], max_new_tokens=5, stop_at_eos=False, hooks=[(H.mlp_post(0), spy)])
    assert len(calls) == 5 and calls[1:] == [1, 1, 1, 1]  # the cached twin: the prompt, then one new token

    eos = gpt2.tokenizer.eos_token_id
    W_U = H.unembed(gpt2)
    target = 7
    direction = W_U[:, target] / W_U[:, target].norm() * 200

    def push(act, hook):
        return act + direction

    out = generate(gpt2, PROMPTS, max_new_tokens=3, hooks=[(H.resid(1), push)])
    assert (out.tokens[:, 0] == target).all() and target != eos


def test_stops_at_eos(gpt2):
    eos = gpt2.tokenizer.eos_token_id
    W_U = H.unembed(gpt2)
    direction = W_U[:, eos] / W_U[:, eos].norm() * 200
    out = generate(gpt2, PROMPTS, max_new_tokens=6, hooks=[(H.resid(1), lambda a, hook: a + direction)])
    assert out.tokens.shape[1] == 1 and all(c == "" for c in out.completions)


@pytest.mark.parametrize("maker", [make_gpt2, make_llama], ids=["gpt2", "llama"])
def test_hooks_on_the_cached_twin_equal_the_recomputed_bridge(tokenizer, maker):
    """Every hook the twin maps gives the same greedy tokens as the bridge recomputing each step."""
    from interp.generate import twin_hook_sites
    from interp.neurons import Neurons
    from interp.steer import AblateDirection, AddVector, ScaleNeurons

    bridge = bridge_from_module(maker(tokenizer), tokenizer)
    g = torch.Generator().manual_seed(0)
    d = bridge.cfg.d_model
    W_U = H.unembed(bridge)
    push = W_U[:, 11] / W_U[:, 11].norm()
    interventions = [
        [ScaleNeurons(Neurons(torch.tensor([0, 0, 1]), torch.tensor([1, 5, 3])), 30.0)],
        [ScaleNeurons(Neurons(torch.tensor([1]), torch.tensor([2])), -20.0, point="pre")],
        [AddVector(push * 3, layer=0)],
        [AddVector(push * 2, layer=1, where="pre")],
        [AblateDirection(torch.randn(d, generator=g))],
        [("blocks.0.hook_mlp_out", lambda a, hook: a * 3), ("blocks.1.hook_attn_out", lambda a, hook: -a)],
    ]
    for hooks in interventions:
        fwd = [h for x in hooks for h in (x.fwd_hooks(bridge) if hasattr(x, "fwd_hooks") else [x])]
        assert twin_hook_sites(bridge, fwd) is not None
        kw = dict(max_new_tokens=10, batch_size=4, stop_at_eos=False, hooks=hooks)
        slow = generate(bridge, PROMPTS, use_cache=False, **kw).tokens
        fast = generate(bridge, PROMPTS, use_cache=True, **kw).tokens
        plain = generate(bridge, PROMPTS, max_new_tokens=10, stop_at_eos=False).tokens
        assert torch.equal(slow, fast), hooks
        assert not torch.equal(fast, plain), hooks  # the intervention did something
    assert twin_hook_sites(bridge, [("blocks.0.attn.hook_pattern", lambda a, hook: a)]) is None


@pytest.mark.parametrize("maker", [make_gpt2, make_llama], ids=["gpt2", "llama"])
def test_logits_processors_on_the_cached_twin_equal_the_recomputed_bridge(tokenizer, maker):
    from interp.shift import RuleAdapter

    bridge = bridge_from_module(maker(tokenizer), tokenizer)
    plain = generate(bridge, PROMPTS, max_new_tokens=10, stop_at_eos=False).tokens
    boost = [int(t) for t in plain[:, :3].flatten().unique()[:4]]
    rules = RuleAdapter(tokenizer.eos_token_id, eos_slope=0.5, boost_tokens=[5, 9], boost=4.0,
                        repeat_penalty=3.0)
    ban = lambda seq, logits: logits.index_fill(1, torch.tensor(boost), float("-inf"))  # noqa: E731
    outs = []
    for proc in (rules, ban):
        kw = dict(max_new_tokens=10, batch_size=4, stop_at_eos=False, logits_processor=proc)
        slow = generate(bridge, PROMPTS, use_cache=False, **kw).tokens
        fast = generate(bridge, PROMPTS, use_cache=True, **kw).tokens
        assert torch.equal(slow, fast)
        outs.append(fast)
    assert not torch.equal(outs[0], plain)  # the rules changed the text
    assert not any(t in boost for t in outs[1].flatten().tolist())  # banned tokens never chosen
