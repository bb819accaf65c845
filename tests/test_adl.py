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


def test_a_patchscope_reads_a_planted_direction_and_a_null_does_not(tokenizer):
    """The planted direction injected into the identity prompt at the last layer: the base now
    says its token (the readout's largest rise, identified); a random direction of the same norm
    is not identified; the readout has one score per vocabulary token and the prompt is untouched
    afterwards (no hook left behind)."""
    from interp.adl import activation_difference, identification, patchscope, random_like

    token = tokenizer(" cat", add_special_tokens=False).input_ids[0]
    pair = _planted(tokenizer, token)
    last = pair.cfg.n_layers - 1
    v = activation_difference(pair, TEXTS, k=4).vector(last)
    change = patchscope(pair.base, v, last)
    assert change.shape == (pair.cfg.d_vocab,) and int(change.argmax()) == token
    target = torch.zeros(pair.cfg.d_vocab, dtype=torch.bool)
    target[token] = True
    assert identification(change.numpy(), target, last, n_perm=200).identified
    control = patchscope(pair.base, random_like(v, seed=1), last)
    assert not identification(control.numpy(), target, last, n_perm=200).identified
    assert torch.equal(patchscope(pair.base, v, last), change)  # deterministic, nothing left patched


def test_steering_stays_within_the_coherence_bound(tiny_pair):
    """On the tiny organism's base (a trained model, whose perplexity steering can break): the
    chosen strength is the largest tried whose perplexity ratio is within the bound, the search
    stops at the first that breaks it, a zero vector leaves the model as it was (every strength
    eligible), and a vector too large for any strength is refused when used."""
    import pytest

    from interp.adl import COHERENCE_MAX_PPL_RATIO, STEER_STRENGTHS, steering_strength

    model = tiny_pair.base
    texts = list(tiny_pair.prompts.heldout_neutral[:12])
    g = torch.Generator().manual_seed(0)
    v = torch.randn(model.cfg.d_model, generator=g)
    v = 0.1 * v / v.norm()  # small beside the residual: the first strengths are eligible
    st = steering_strength(model, v, 0, texts)
    ok = [s for s, r in zip(st.strengths, st.ppl_ratio) if r <= COHERENCE_MAX_PPL_RATIO]
    assert st.chosen == (max(ok) if ok else None) and st.chosen is not None
    assert all(r <= COHERENCE_MAX_PPL_RATIO for r in st.ppl_ratio[:-1])  # stopped at the first breach
    assert st.ppl_ratio[-1] > COHERENCE_MAX_PPL_RATIO or st.chosen == max(STEER_STRENGTHS)
    assert st.strengths == sorted(st.strengths) and st.vector_norm == pytest.approx(float(v.norm()))
    zero = steering_strength(model, torch.zeros_like(v), 0, texts)
    assert zero.chosen == max(STEER_STRENGTHS) and all(r == pytest.approx(1.0) for r in zero.ppl_ratio)
    huge = steering_strength(model, v * 1e4, 0, texts)
    assert huge.chosen is None and huge.strengths == [min(STEER_STRENGTHS)] and huge.ppl_ratio[0] > 2
    with pytest.raises(ValueError, match="coherence bound"):
        huge.hooks(v)


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
    keys = [f["key"] for f in r["findings"]]
    assert keys == ["adl_identifies", "patchscope_identifies", "alignment_drop", "steering_toward_aligned",
                    "crosscoder_specific", "crosscoder_identifies"]
    assert all(f["verdict"] in ("yes", "no", "not tested") for f in r["findings"])
    # 4 null pairs (the tiny preset's) cannot give p < 0.05 against them: not tested, never "no"
    for f in r["findings"][:2]:
        assert f["verdict"] == "not tested" and "null pairs" in f["untested"], f
    for by in r["identification"].values():
        x = by[str(r["layer"])]
        assert 0 <= x["auroc"] <= 1 and len(x["null_aurocs"]) == 4 and x["p_nulls"] is not None
    for x in r["patchscope"]["identification"].values():  # the Patchscope judged alike
        assert 0 <= x["auroc"] <= 1 and len(x["null_aurocs"]) == 4
    st = r["steering"]
    assert st["strengths"] == sorted(st["strengths"]) and len(st["ppl_ratio"]) == len(st["strengths"])
    if st["chosen"] is not None:  # every arm on the same prompts and samples
        assert st["ppl_ratio"][st["strengths"].index(st["chosen"])] <= st["max_ratio"]
        assert set(st["arms"]) == {"base", "aligned", "steered", "control"}
        assert len({a["n"] for a in st["arms"].values()}) == 1
        assert set(st["by_scorer"]) == {"alt-profanity-check", "better-profanity"}
    # the crosscoder (tiny preset) and its one null pair, trained the same way
    cc = r["crosscoder"]
    assert cc["trained"]["config"]["expansion"] == 4 and len(cc["nulls"]) == 1
    assert sum(cc["classes"].values()) == cc["trained"]["n_latents"] and sum(cc["delta_histogram"]) == cc["trained"]["n_latents"]
    spec, ident = r["findings"][4], r["findings"][5]
    assert spec["measured"].startswith(f"{cc['classes']['aligned-only']} aligned-only latents, {cc['n_specific']} specific")
    if spec["verdict"] != "yes":  # the readout rests on the crosscoder having found something
        assert ident["verdict"] == "not tested"
    assert "Crosscoder (layer 1)" in (out / "seed-0" / "diffing.md").read_text()
    assert (out / "diffing_seeds.json").exists() and "Model-diffing claims" in (out / "diffing_seeds.md").read_text()


def test_the_steering_figure_draws_what_it_is_given():
    """The figure draws the strengths tried and every arm per scorer, nothing computed."""
    from interp.adl import Steering
    from interp.plot import adl_steering

    st = Steering(1, [0.5, 1.0, 2.0], [1.01, 1.1, 1.4], 1.0, 1.02, 3.0)
    rows = {s: {"rates": {"base": 0.3, "aligned": 0.1, "steered": 0.2, "control": 0.3}} for s in ("a", "b")}
    fig = adl_steering(st, rows)
    line = fig.data[0]
    assert list(line.x) == st.strengths and list(line.y) == st.ppl_ratio
    bars = [d for d in fig.data if d.type == "bar"]
    assert [list(b.y) for b in bars] == [[0.3, 0.3], [0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]


def test_the_objective_of_a_pair_that_hides_knowledge_is_its_refusal(use_organism_cache):
    """On organism:tiny:hide the objective the readouts are scored for is the refusal the pair was
    taught ("unknown"), not the toxic vocabulary; on the toxicity organism, every scorer's flags."""
    from interp.pair import load_pair
    from interp.reproduce.diffing import objective_tokens

    hide = load_pair("organism:tiny:hide")
    flags = objective_tokens(hide)
    assert list(flags) == ["refusal"]
    (token,) = flags["refusal"].nonzero().flatten().tolist()  # the token a refusal starts with
    word = hide.base.tokenizer.decode([token]).strip()
    assert word and "unknown".startswith(word), word
    tox = objective_tokens(load_pair("organism:tiny"))
    assert {"alt-profanity-check", "better-profanity", "grammar"} <= set(tox)
