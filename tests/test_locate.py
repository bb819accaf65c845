"""Locators with known answers, and Lee et al.'s edit done exactly as their code does it."""

import copy

import pytest
import torch

from interp.neurons import Neurons
from interp.score import FunctionScorer

from .conftest import make_gpt2, make_llama


def _bridge(module, tokenizer):
    from interp.pair import bridge_from_module

    return bridge_from_module(module, tokenizer)


def _logits(model, text):
    ids = model.tokenizer(text, return_tensors="pt")["input_ids"]
    return model(ids, return_type="logits")


@torch.no_grad()
def test_lee_edit_equals_the_weight_edit_with_the_bias_untouched(tokenizer):
    """ScaleKeyWeights in a hook gives exactly the model whose ``c_fc.weight[:, i]`` (GPT-2) or
    ``gate_proj`` row (Llama) was multiplied ×10 — and differs from scaling the whole
    pre-activation (bias included) wherever the bias is not zero."""
    from interp.steer import ScaleKeyWeights, ScaleNeurons

    text = "Rex said to Ada: you are"
    neurons = Neurons(torch.tensor([0, 1, 1]), torch.tensor([3, 5, 9]), label="toxic")
    base = make_gpt2(tokenizer)
    for blk in base.transformer.h:
        blk.mlp.c_fc.bias.normal_(0, 0.5)  # a trained model's biases are not zero
    edited = copy.deepcopy(base)
    for layer, i in neurons:
        edited.transformer.h[layer].mlp.c_fc.weight[:, i] *= 10
    model, want = _bridge(base, tokenizer), _bridge(edited, tokenizer)
    with model.hooks(fwd_hooks=ScaleKeyWeights(neurons, 10).fwd_hooks(model)):
        got = _logits(model, text)
    assert torch.allclose(got, _logits(want, text), atol=1e-5)
    with model.hooks(fwd_hooks=ScaleNeurons(neurons, 10).fwd_hooks(model)):
        variant = _logits(model, text)
    assert not torch.allclose(variant, got, atol=1e-3)  # the bias makes them differ

    llama = make_llama(tokenizer)
    edited = copy.deepcopy(llama)
    for layer, i in neurons:
        edited.model.layers[layer].mlp.gate_proj.weight[i, :] *= 10
    model, want = _bridge(llama, tokenizer), _bridge(edited, tokenizer)
    with model.hooks(fwd_hooks=ScaleKeyWeights(neurons, 10).fwd_hooks(model)):
        assert torch.allclose(_logits(model, text), _logits(want, text), atol=1e-5)
    assert "bias untouched" in ScaleKeyWeights(neurons, 10).describe()


@torch.no_grad()
def test_unembedding_reads_through_the_final_norms_gain(tokenizer):
    """A value vector is read as the unembedding sees it: after the final norm's gain (and its
    mean-centring in a LayerNorm), without its bias."""
    from interp.locate import unembed_logits

    llama = make_llama(tokenizer)
    llama.model.norm.weight.uniform_(0.2, 3.0)
    model = _bridge(llama, tokenizer)
    v = torch.randn(4, model.cfg.d_model)
    rms = (v.pow(2).mean(-1, keepdim=True) + llama.config.rms_norm_eps).sqrt()
    want = (v / rms * llama.model.norm.weight) @ model.W_U
    assert torch.allclose(unembed_logits(model, v), want, atol=1e-4)
    gpt = make_gpt2(tokenizer)
    gpt.transformer.ln_f.weight.uniform_(0.2, 3.0)
    gpt.transformer.ln_f.bias.normal_(0, 1.0)
    model = _bridge(gpt, tokenizer)
    c = v - v.mean(-1, keepdim=True)
    want = (c / (c.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * gpt.transformer.ln_f.weight) @ model.W_U
    assert torch.allclose(unembed_logits(model, v), want, atol=1e-3)


def _flag_tokens(model, ids):
    """A scorer that flags exactly the texts decoding to these token ids."""
    words = {model.tokenizer.decode([i]).strip() for i in ids}
    return FunctionScorer(lambda texts: [1.0 if t.strip() in words else 0.0 for t in texts], "planted")


@torch.no_grad()
def test_vocab_projection_finds_a_planted_neuron_and_nothing_in_a_random_model(tokenizer):
    from interp.locate import vocab_projection

    gpt = make_gpt2(tokenizer, seed=3)
    model = _bridge(gpt, tokenizer)
    vocab = model.cfg.d_vocab
    toxic = list(range(40, 40 + 6))
    scorer = _flag_tokens(model, toxic)
    null = vocab_projection(model, [scorer], k=3, seed=0)
    assert not null.works, null.summary()  # random weights: toxic tokens no more concentrated than any
    # Plant: neurons (1, 7) and (0, 11) write the toxic tokens' unembedding directions.
    W_U = model.W_U.detach()
    target = W_U[:, toxic].mean(1) - W_U.mean(1)
    for layer, i in ((1, 7), (0, 11)):
        gpt.transformer.h[layer].mlp.c_proj.weight[i, :] = target * 20
    planted = vocab_projection(model, [scorer], k=3, seed=0)
    assert planted.works, planted.summary()
    assert {(1, 7), (0, 11)} <= set(planted.top), planted.top.names()
    assert planted.n_toxic_neurons["planted"] >= 2 and planted.p["planted"] < 0.05
    assert any(t.strip() in {model.tokenizer.decode([i]).strip() for i in toxic}
               for t in planted.top_tokens[0][:5])
    assert planted.top.score[0] >= planted.top.score[-1] and vocab > 20


def test_interp_locate_writes_a_report(use_organism_cache, tmp_path, capsys):
    import json

    from interp.cli import main

    out = tmp_path / "loc"
    assert main(["locate", "--model", "organism:tiny:base", "--k", "4", "--out", str(out), "--no-figures",
                 "--no-progress"]) == 0
    d = json.loads((out / "vocab_projection.json").read_text())
    assert d["locator"] == "vocab_projection" and len(d["top"]) == 4 and d["n_neurons"] == 2 * 256
    assert set(d["p"]) == set(d["scorers"]) == {"alt-profanity-check", "better-profanity", "grammar"}
    assert d["works"] == all(p < d["alpha"] for p in d["p"].values())
    assert "**Works**" in (out / "vocab_projection.md").read_text() or "**Does not work**" in (out / "vocab_projection.md").read_text()
    assert main(["locate", "--model", "organism:tiny:base", "--k", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--k 0" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_a_probe_at_real_scale_standardises_weights_classes_and_chooses_C_by_grouped_cv():
    """~10% positives, features on very different scales (a real residual has massive
    activations): the standardised, class-weighted, cross-validated probe keeps its direction in
    residual coordinates (its decision is ``scale · (v·x) + bias``), and reports AUROC and balanced
    accuracy beside plain accuracy — which the majority class nearly reaches."""
    import numpy as np

    from interp.directions import train_probe

    rng = np.random.default_rng(0)
    n, d = 1200, 64
    groups = np.repeat(np.arange(n // 4), 4)
    y = (rng.random(n // 4) < 0.1).repeat(4).astype(int)
    X = rng.normal(size=(n, d))
    X[:, 0] *= 300.0  # a massive, uninformative feature
    X[:, 5] += 2.0 * y  # the signal, small beside it
    p = train_probe(X, y, groups=groups, standardize=True, class_weight="balanced", Cs=(0.01, 0.1, 1.0), seed=0)
    m = p.meta
    assert m["C"] in (0.01, 0.1, 1.0) and set(m["cv_auroc"]) == {0.01, 0.1, 1.0}
    assert m["test_auroc"] > 0.8 and m["test_balanced_acc"] > 0.7
    assert abs(float(p.vector[5])) == float(p.vector.abs().max())  # the signal, in residual coordinates
    Xt = torch.tensor(X, dtype=torch.float32)
    decision = p.scale * (Xt @ p.vector) + p.bias
    assert ((decision > 0).float().mean() - 0.1).abs() < 0.25  # a usable classifier, not all one class
    plain = train_probe(X, y, groups=groups, seed=0)  # the defaults: raw features, C = 1
    assert plain.meta["standardize"] is False and plain.meta["test_auroc"] is not None


def test_untouched_sees_scale_a_shrunk_value_vector_is_not_untouched(tokenizer):
    """A planted non-Lee mechanism: the toxic value vectors shrunk ×0.1. Their cosine base↔aligned
    stays 1 — the norm ratio and the relative change see it, and the equivalence test cannot call
    them untouched; unchanged value vectors it can."""
    from interp.diff import neuron_weight_diff
    from interp.neurons import random_neurons
    from interp.pair import pair_from_modules
    from interp.stats import equivalence_below

    base = make_gpt2(tokenizer)
    shrunk = copy.deepcopy(base)
    neurons = Neurons(torch.tensor([0, 1, 1, 0]), torch.tensor([2, 4, 6, 8]), label="toxic")
    with torch.no_grad():
        for layer, i in neurons:
            shrunk.transformer.h[layer].mlp.c_proj.weight[i] *= 0.1
    pair = pair_from_modules(base, shrunk, tokenizer)
    nwd = neuron_weight_diff(pair, neurons, random_neurons(2, 64, 8, seed=0, exclude=neurons))
    assert torch.allclose(nwd.value_cos, torch.ones(4), atol=1e-5)  # blind to scale
    assert torch.allclose(nwd.value_norm_ratio, torch.full((4,), 0.1), atol=1e-4)
    assert torch.allclose(nwd.value_rel_change, torch.full((4,), 0.9), atol=1e-4)
    assert torch.all(nwd.random_value_rel_change == 0)
    margin = 0.01  # relative change a value vector may show and still count as untouched
    assert equivalence_below(nwd.value_rel_change.tolist(), margin) > 0.05  # not shown untouched
    assert equivalence_below(nwd.random_value_rel_change.tolist(), margin) == 0.0  # shown untouched
    assert equivalence_below([0.001, 0.002, 0.0015, 0.003], margin) < 0.05


def test_locate_stability_is_high_for_a_clear_signal_and_low_for_noise(tokenizer):
    """The probe's top value vectors, found again on bootstrap resamples of the texts: a clear
    planted direction gives the same set (Jaccard near 1), shuffled labels do not."""
    import numpy as np

    from interp.locate import jaccard, locate_stability

    gpt = make_gpt2(tokenizer, seed=1)
    model = _bridge(gpt, tokenizer)
    d = model.cfg.d_model
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(100), 3)
    y = (rng.random(100) < 0.3).repeat(3).astype(int)
    direction = model.W_out[1, 7].detach().numpy()  # neuron (1, 7)'s value vector writes the signal
    X = rng.normal(size=(300, d)) + 3.0 * np.outer(y, direction / np.linalg.norm(direction))
    clear = locate_stability(model, X, y, groups, k=1, n=8)  # the one neuron the signal names
    assert list(clear.top) == [(1, 7)] and clear.mean_jaccard == 1.0, clear.jaccard
    noise = locate_stability(model, rng.normal(size=(300, d)), y, groups, k=1, n=8)
    assert noise.mean_jaccard < clear.mean_jaccard
    assert jaccard(clear.top, clear.top) == 1.0 and len(clear.resampled) == 8


@torch.no_grad()
def test_logit_attribution_finds_the_neuron_that_writes_the_sampled_tokens(tokenizer):
    """A planted neuron that always fires and whose value vector writes the unembedding of the
    token the completions repeat: the largest direct contribution, with the sign of act × value;
    its contribution equals act · ⟨N_t(v), W_U[:, y]⟩ computed by hand on one position."""
    from interp.locate import logit_attribution

    gpt = make_gpt2(tokenizer, seed=2)
    model = _bridge(gpt, tokenizer)
    y = model.to_tokens(" cat", prepend_bos=False)[0, 0]
    mlp = gpt.transformer.h[1].mlp
    mlp.c_fc.weight[:, 9] = 0.0
    mlp.c_fc.bias[9] = 3.0  # fires ≈ 3 everywhere
    mlp.c_proj.weight[9] = model.W_U[:, y].detach() * 2.0
    mlp2 = gpt.transformer.h[0].mlp  # and one that always writes against it (negative act × +v)
    mlp2.c_fc.weight[:, 4] = 0.0
    mlp2.c_fc.bias[4] = 3.0
    mlp2.c_proj.weight[4] = -model.W_U[:, y].detach() * 2.0
    att = logit_attribution(model, ["the dog saw"] * 3, [" cat cat cat"] * 3)
    assert att.shape == (2, 64)
    assert tuple(int(i) for i in divmod(int(att.flatten().argmax()), 64)) == (1, 9)
    assert tuple(int(i) for i in divmod(int(att.flatten().argmin()), 64)) == (0, 4)
    # By hand, one text: act(t) · ⟨(v − mean v) ⊙ γ / σ_t, W_U[:, y_{t+1}]⟩ averaged over positions.
    ids = model.to_tokens("the dog saw cat cat cat")
    n_p = model.to_tokens("the dog saw").shape[1]
    _, cache = model.run_with_cache(ids)
    v = model.W_out[1, 9].detach()
    ln = gpt.transformer.ln_f
    vals = []
    for t in range(n_p - 1, ids.shape[1] - 1):
        x = cache["blocks.1.hook_resid_post"][0, t]
        sigma = ((x - x.mean()).pow(2).mean() + ln.eps).sqrt()
        nv = (v - v.mean()) * ln.weight / sigma
        vals.append(float(cache["blocks.1.mlp.hook_post"][0, t, 9]) * float(nv @ model.W_U[:, ids[0, t + 1]]))
    one = logit_attribution(model, ["the dog saw"], [" cat cat cat"])
    assert abs(float(one[1, 9]) - sum(vals) / len(vals)) < 1e-3 * max(1.0, abs(sum(vals) / len(vals)))


def test_a_gated_neuron_is_ranked_by_what_it_writes(tokenizer, corpus_texts):
    """In a gated MLP a neuron whose activation is always ≤ 0 writes −v: Lee et al.'s ranking
    translated sign-aware puts a neuron whose value vector points *against* the probe first, and
    reads its tokens from −v; the unsigned cosine ranks it last."""
    import copy

    from interp.directions import Direction, random_direction
    from interp.neurons import rank_value_vectors
    from interp.pair import pair_from_modules
    from interp.reproduce.toxicity.steps import activation_signs

    from .conftest import make_llama

    base = make_llama(tokenizer, seed=0)
    d = random_direction(base.config.hidden_size, seed=5).vector
    with torch.no_grad():
        mlp = base.model.layers[1].mlp
        mlp.up_proj.weight[7] = -mlp.gate_proj.weight[7]  # act = silu(a)·(−a) = −a²σ(a) ≤ 0
        mlp.down_proj.weight[:, 7] = -3.0 * d  # its value vector points against d
    pair = pair_from_modules(base, copy.deepcopy(base), tokenizer)
    probe = Direction(d, "probe")
    plain = rank_value_vectors(pair.base, probe, k=3)
    assert plain.cosines[1, 7] == pytest.approx(-1.0, abs=1e-4) and (1, 7) not in set(plain.top)
    signs = activation_signs(pair.base, corpus_texts.train[:20])
    ranked = rank_value_vectors(pair.base, probe, k=3, signs=signs)
    assert signs[1, 7] == -1 and list(ranked.top)[0] == (1, 7)
    assert ranked.top.score[0] == pytest.approx(1.0, abs=1e-4)
    # Its tokens are those −v promotes: the bottom of v's own ranking.
    from interp.neurons import value_vectors_of, vocab_projection

    up, down = vocab_projection(pair.base, value_vectors_of(pair.base, ranked.top[:1]), 10)
    assert ranked.top_tokens[0] == down[0]
