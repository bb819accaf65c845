"""The activation-difference lens (interp.adl) on pairs whose answer is known: a fine-tune that
adds a known direction on every token reads as that direction's tokens; null pairs read as
nothing more often than the test's level."""

from __future__ import annotations

import copy

import torch

TEXTS = ["the cat sat on the mat", "a dog ran in the park", "thank you kindly", "see you soon",
         "the weather is fine today", "we went to the market"] * 3


def _planted(tokenizer, token: int, strength: float = 3.0):
    """Aligned = base with the last MLP's output bias moved along the target token's unembedding:
    every position of the last residual gains that vector."""
    from interp.pair import pair_from_modules

    from .conftest import make_gpt2

    base = make_gpt2(tokenizer)
    aligned = copy.deepcopy(base)
    with torch.no_grad():
        u = base.lm_head.weight[token]
        aligned.transformer.h[-1].mlp.c_proj.bias.add_(strength * u / u.norm())
    return pair_from_modules(base, aligned, tokenizer, name="planted-adl")


def test_a_planted_direction_is_read_as_its_tokens(tokenizer):
    from interp.adl import activation_difference, identify, readout

    token = tokenizer(" cat", add_special_tokens=False).input_ids[0]
    pair = _planted(tokenizer, token)
    adl = activation_difference(pair, TEXTS, k=4)
    last = pair.cfg.n_layers - 1
    assert adl.diff.shape == (pair.cfg.n_layers, 4, pair.cfg.d_model)
    assert adl.norms()[:last].max() < 1e-5 and adl.norms()[last].min() > 0  # only the last layer changed
    assert readout(pair.base, adl.vector(last), n=3)["promotes"][0] == tokenizer.decode([token])
    target = torch.zeros(pair.cfg.d_vocab, dtype=torch.bool)
    target[token] = True
    found = identify(pair.base, adl, target, last, n_perm=200)
    assert found.auroc > 0.99 and found.identified, found.to_dict()
    # the opposite fine-tune (the direction removed) reads as the same tokens, suppressed
    against = _planted(tokenizer, token, strength=-3.0)
    opp = identify(against.base, activation_difference(against, TEXTS, k=4), target, last, n_perm=200)
    assert opp.auroc < 0.01 and opp.identified


def test_null_pairs_are_not_identified_beyond_the_tests_level(tokenizer):
    """Twenty null pairs (aligned = base + noise), a fixed random target of 10 tokens: identified
    at most once (≤ 5%); their readouts are also the null a real pair is judged against."""
    from interp.adl import activation_difference, identify
    from interp.testing import null_pair

    from .conftest import make_gpt2

    base = make_gpt2(tokenizer)
    g = torch.Generator().manual_seed(7)
    target = torch.zeros(len(tokenizer), dtype=torch.bool)
    target[torch.randperm(len(tokenizer), generator=g)[:10]] = True
    pairs = [null_pair(base, tokenizer, noise=1e-2, seed=s) for s in range(20)]
    adls = [activation_difference(p, TEXTS[:6], k=3) for p in pairs]
    last = base.config.n_layer - 1
    hits = [identify(p.base, a, target, last, n_perm=200, seed=i).identified for i, (p, a) in enumerate(zip(pairs, adls))]
    assert sum(hits) <= 1, hits
    # against the other nulls, one null pair is exchangeable with them: its p is not small
    first = identify(pairs[0].base, adls[0], target, last, n_perm=200, nulls=adls[1:])
    assert first.p_nulls is not None and first.p_nulls > 0.05


def test_the_diffing_reproduction_writes_its_report(use_organism_cache, tmp_path):
    """`interp reproduce diffing` on the tiny organism: per-layer sizes and readouts, the
    identification score at the declared (middle) layer with random sets and null pairs, a claim
    whose verdict is yes, no or — where no scorer flags a token of this vocabulary — not tested."""
    import json

    from interp.cli import main

    out = tmp_path / "diff"
    assert main(["reproduce", "diffing", "--pair", "organism:tiny", "--seeds", "0", "--out", str(out),
                 "--no-figures"]) == 0
    r = json.loads((out / "seed-0" / "diffing.json").read_text())
    assert r["layer"] == 1  # the middle of the tiny organism's two layers
    assert len(r["relative_norm"]) == 2 and all(len(v) == r["k"] for v in r["relative_norm"].values())
    assert set(r["readouts"]) == {"0", "1"}
    (f,) = r["findings"]
    assert f["key"] == "adl_identifies" and f["verdict"] in ("yes", "no", "not tested")
    for by in r["identification"].values():
        x = by[str(r["layer"])]
        assert 0 <= x["auroc"] <= 1 and len(x["null_aurocs"]) == 4 and x["p_nulls"] is not None
    assert (out / "diffing_seeds.json").exists() and "Model-diffing claims" in (out / "diffing_seeds.md").read_text()
