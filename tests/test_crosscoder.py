"""Crosscoders (interp.crosscoder) on paired activations whose answer is known: a feature only the
aligned model has is found as an aligned-only latent that latent scaling calls its own; a null
pair (aligned = base) has no model-specific latent; a feature both models share, only stronger in
the aligned one, is not mistaken for an aligned-only latent; latent scaling's β is the exact
least-squares scale."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from interp.crosscoder import ORGANISM

D, N_FEATURES, N = 32, 64, 40_000
#: small and quick: 256 latents, ~600 steps of 512 tokens (a higher learning rate than ORGANISM for so few steps)
CFG = dataclasses.replace(ORGANISM, expansion=8, k=4, n_tokens=300_000, batch_size=512, lr=3e-3, warmup_steps=50,
                          threshold_start_step=100, dead_after_tokens=50_000)


def _paired(seed: int = 0, *, planted: float = 1.0, boost: float = 1.0):
    """Sparse features with unit directions in R^D, the same in both models, plus noise; the
    aligned model adds ``planted`` × a direction ``v`` of its own on 5% of tokens, and writes
    feature 0 ``boost`` times as strongly as the base."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(N_FEATURES, D, generator=g)
    dirs /= dirs.norm(dim=-1, keepdim=True)
    v = torch.randn(D, generator=g)
    v /= v.norm()
    act = (torch.rand(N, N_FEATURES, generator=g) < 0.05) * (1 + 2 * torch.rand(N, N_FEATURES, generator=g))
    base = act @ dirs + 0.05 * torch.randn(N, D, generator=g)
    aligned = base + (boost - 1) * act[:, :1] * dirs[0]
    on = (torch.rand(N, generator=g) < 0.05) * (1 + 2 * torch.rand(N, generator=g))
    aligned = aligned + planted * on[:, None] * v
    return torch.stack([base, aligned], 1), v, dirs[0]


def _best(cc, direction, model: int = 1):
    cos = torch.nn.functional.cosine_similarity(cc.W_dec[:, model].detach(), direction[None], dim=-1)
    j = int(cos.argmax())
    return j, float(cos[j])


@pytest.fixture(scope="module")
def planted():
    from interp.crosscoder import train_crosscoder

    x, v, shared = _paired(planted=1.0, boost=1.5)
    return x, v, shared, train_crosscoder(x, CFG)


def test_a_planted_aligned_only_feature_is_found_and_called_specific(planted):
    from interp.crosscoder import latent_classes, latent_scaling, relative_norm

    x, v, _, trained = planted
    cc = trained.model
    assert min(trained.explained_variance) > 0.7, trained.explained_variance
    j, cos = _best(cc, v)
    delta = relative_norm(cc)
    assert cos > 0.95 and delta[j] > 0.9, (cos, float(delta[j]))
    assert latent_classes(delta)[j] == "aligned-only"
    scaling = latent_scaling(cc, x)
    assert abs(scaling.nu_eps[j]) < 0.3 and abs(scaling.nu_r[j]) < 0.3, (scaling.nu_eps[j], scaling.nu_r[j])
    assert 0.02 < scaling.freq[j] < 0.1  # it fires where v was planted (5% of tokens)
    # the only aligned-only latents are v's (no artefacts beside it)
    aligned_only = [i for i, c in enumerate(latent_classes(delta)) if c == "aligned-only" and scaling.freq[i] > 0.001]
    assert all(float(torch.nn.functional.cosine_similarity(cc.W_dec[i, 1].detach(), v, dim=0)) > 0.9 for i in aligned_only)


def test_a_shared_feature_written_more_strongly_is_not_aligned_only(planted):
    """Feature 0 is in both models, 1.5× as strong in the aligned one: its latent's Δ is near
    ½((1.5 − 1)/1.5 + 1) = 0.67, not aligned-only, and its decoders point the same way."""
    from interp.crosscoder import decoder_cosine, relative_norm

    _, _, shared, trained = planted
    cc = trained.model
    j, cos = _best(cc, shared, model=0)
    assert cos > 0.9
    assert 0.55 < relative_norm(cc)[j] < 0.8 and decoder_cosine(cc)[j] > 0.9, float(relative_norm(cc)[j])


def test_latent_scaling_beta_is_the_least_squares_scale(planted):
    from interp.crosscoder import latent_scaling

    x, v, _, trained = planted
    cc = trained.model
    j, _ = _best(cc, v)
    s = latent_scaling(cc, x)
    with torch.no_grad():
        xs = x / cc.scale
        f = cc.select(cc.pre(xs), batch_topk=False)
        rec = cc.decode_scaled(f)
        fj, u = f[:, j:j + 1], cc.W_dec[j, 1]
        for m in (0, 1):
            a = (fj * u).reshape(-1, 1).double()
            y_eps = (xs[:, m] - rec[:, m] + fj * cc.W_dec[j, m]).reshape(-1, 1).double()
            y_r = rec[:, m].reshape(-1, 1).double()
            assert torch.linalg.lstsq(a, y_eps).solution.item() == pytest.approx(float(s.beta_eps[m, j]), rel=1e-4, abs=1e-6)
            assert torch.linalg.lstsq(a, y_r).solution.item() == pytest.approx(float(s.beta_r[m, j]), rel=1e-4, abs=1e-6)


def test_a_null_pair_has_no_model_specific_latent():
    from interp.crosscoder import latent_classes, relative_norm, train_crosscoder

    x, _, _ = _paired(seed=1, planted=0.0)
    trained = train_crosscoder(x, CFG)
    classes = latent_classes(relative_norm(trained.model))
    assert not {"aligned-only", "base-only"} & set(classes), sorted(set(classes))


def test_bad_inputs_are_refused_with_the_reason():
    from interp.crosscoder import PairedActivations, train_crosscoder

    with pytest.raises(ValueError, match="n_tokens, n_models, d_model"):
        train_crosscoder(torch.zeros(100, 32), CFG)
    x = torch.randn(2000, 2, 8)
    x[3, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train_crosscoder(x, CFG)
    with pytest.raises(ValueError, match="fewer than one batch"):
        train_crosscoder(torch.randn(300, 2, 8), CFG)
    with pytest.raises(ValueError, match=r"\[n_tokens, 2, d_model\]"):
        PairedActivations(torch.zeros(10, 3, 4), torch.zeros(10, 2, dtype=torch.long), "h", 1)


def test_the_planted_latent_reads_as_its_direction_tokens(planted, tokenizer):
    """The planted crosscoder read through a model of the same width: the specific aligned-only
    latent is v's, its logit-lens tokens are v's, the identification score of v's top tokens in
    the specific latents' readout is identified, its contexts come from the texts it was
    recorded on, the analysis serialises to JSON and the figure draws."""
    import json

    from interp.crosscoder import PairedActivations, analyse
    from interp.locate import unembed_logits
    from interp.pair import pair_from_modules
    from interp.plot import crosscoder_latents

    from .conftest import make_gpt2

    x, v, _, trained = planted
    model = pair_from_modules(make_gpt2(tokenizer), make_gpt2(tokenizer), tokenizer, name="readout").base
    texts = ["the cat sat on the mat", "a dog ran in the park", "thank you kindly", "see you soon"]
    spots = [(t, p) for t, text in enumerate(texts) for p in range(len(tokenizer(text)["input_ids"]))]
    index = torch.tensor([spots[i % len(spots)] for i in range(len(x))])
    target = torch.zeros(model.cfg.d_vocab, dtype=torch.bool)
    target[unembed_logits(model, v[None])[0].topk(10).indices] = True
    a = analyse(trained, PairedActivations(x, index, "synthetic", len(texts)), model, texts=texts,
                targets={"v's tokens": target}, n_perm=200)
    j, _ = _best(trained.model, v)
    assert [lat.index for lat in a.specific] == [j]
    assert len(a.leaning) == 10 and a.leaning[0].index == j  # and it leans furthest toward the aligned model
    assert all(x.delta >= y.delta for x, y in zip(a.leaning, a.leaning[1:]))
    lat = a.specific[0]
    assert set(lat.promotes[:10]) == {tokenizer.decode([i]) for i in target.nonzero().flatten().tolist()}
    assert len(lat.contexts) == 5 and all("⟦" in c for c in lat.contexts)
    ident = a.identification["v's tokens"]
    assert ident.auroc > 0.95 and ident.identified, ident.to_dict()
    assert sum(a.classes.values()) == trained.model.n_latents
    json.dumps(a.to_dict())
    assert len(crosscoder_latents(a).data) >= 2
    # the figure draws from a report's JSON alike
    drawn = crosscoder_latents(json.loads(json.dumps(a.to_dict())))
    assert sum(drawn.data[0].y) == trained.model.n_latents and list(drawn.data[1].x) == [lat.nu_eps for lat in a.aligned_only]


def test_paired_activations_of_a_model_pair_and_a_constant_shift_goes_to_the_bias(tokenizer):
    """On two small models whose last MLP's output bias differs by a vector s (every token's last
    residual moves by exactly s): both residuals are recorded per real token, and the crosscoder
    puts s in its decoder bias, not in an aligned-only latent."""
    import copy

    from interp.crosscoder import (
        latent_classes,
        paired_activations,
        relative_norm,
        train_crosscoder,
    )
    from interp.pair import pair_from_modules

    from .conftest import make_gpt2

    base = make_gpt2(tokenizer)
    aligned = copy.deepcopy(base)
    shift = torch.randn(base.config.n_embd, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        aligned.transformer.h[-1].mlp.c_proj.bias.add_(shift)
    pair = pair_from_modules(base, aligned, tokenizer, name="crosscoder-shift")
    texts = ["the cat sat on the mat", "a dog ran in the park", "thank you kindly", "see you soon"] * 40
    last = pair.cfg.n_layers - 1
    acts = paired_activations(pair, texts, last)
    assert acts.x.shape[1:] == (2, pair.cfg.d_model) and len(acts.x) == len(acts.token_index)
    torch.testing.assert_close(acts.x[:, 1] - acts.x[:, 0], shift.expand(len(acts.x), -1), atol=1e-4, rtol=1e-4)
    cfg = dataclasses.replace(CFG, expansion=4, n_tokens=40_000, batch_size=256, threshold_start_step=10,
                              dead_after_tokens=5_000)
    trained = train_crosscoder(acts, cfg)
    assert trained.hook == acts.hook and trained.losses[-1] < trained.losses[0]
    cc = trained.model
    bias_shift = (cc.b_dec[1] - cc.b_dec[0]).detach() * cc.scale
    assert float(torch.nn.functional.cosine_similarity(bias_shift, shift, dim=0)) > 0.9
    assert 0.8 < float(bias_shift.norm() / shift.norm()) < 1.25  # its size too, not only its direction
    assert "aligned-only" not in set(latent_classes(relative_norm(cc)))
    with pytest.raises(ValueError, match="outside the pair's"):
        paired_activations(pair, texts, pair.cfg.n_layers)
