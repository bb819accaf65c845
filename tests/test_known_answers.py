"""The reproduction pipeline on pairs whose answer is known (interp.testing).

* A planted Lee et al. mechanism (toxicity written by a few neurons whose keys' ``W_in`` columns
  the "aligned" model scales down ×0.1) must come back *yes* on the mechanism claims. The planted
  neurons are *given* (the gate on locating is then not applied): the tiny organism's 512-token
  vocabulary splits the toxic words into pieces no scorer flags, so no locator can pass its own
  check on it — a planted Lee mechanism is given without its neurons to organism:small's base,
  rebuilt in ``test_rebuild.py`` (``planted_lee_is_located``).
  This test checks everything after locating: weights, keys, residual offset, change location,
  Lee's declared ×10 and the verdict logic.
* Three planted *other* mechanisms — the value vectors shrunk, the change carried by attention,
  the change in the final norm — lower toxicity too, and must not come back as Lee et al.'s
  ("untouched", "keys fall" and "change in keys" never all yes).
* A null pair (aligned = base + noise) must not: over 20 seeds, each claim about what alignment
  did holds at most once (≤ 5%).
"""

from __future__ import annotations

import pytest


def _run(pair, data, seed=0, neurons=None, **extra):
    from interp.organism.corpus import GrammarScorer
    from interp.reproduce import toxicity as T

    # no verdict rests on the descriptive steps (neuron groups and their edits, the Pareto front)
    extra = {"k_sweep": (), "n_stability": 0, "neuron_groups": False, "pareto": False, **extra}
    cfg = T.config_for("organism:tiny", seed=seed, per_layer_location=False, patching=False,
                       families=(), n_shuffled_probes=10, **extra)
    return T.run(cfg, pair=pair, data=data, scorers=["profanity", "lexicon", GrammarScorer()],
                 neurons=neurons, progress=False, log=lambda *a: None)


def test_a_planted_mechanism_is_found(tiny_hf, use_organism_cache):
    from interp.testing import planted_pair

    model, tok, data = tiny_hf
    pair, planted = planted_pair(model, tok, data.train_prompts[:200], data.heldout_neutral[:100],
                                 ["shut", "get"], ["you", "thank", "see"], k=5, strength=0.1, data=data)
    r = _run(pair, data, neurons=planted, lee_protocol=True)
    v = {f.key: f.verdict for f in r.findings}
    # Lee et al.'s protocol (greedy, mean score): ×10 of the planted keys gives the base model
    # back, so its greedy continuations, hence their scores, are the base's exactly.
    lee = r.lee
    assert lee.max_new_tokens == 20 and lee.measurements["base"].n_samples == 1
    assert lee.measurements["keys"].completions == lee.measurements["base"].completions
    for sc in r.scorers:
        share = lee.effects[sc]["share undone"]
        assert share.value == pytest.approx(1.0) or lee.effects[sc]["base − aligned"].value == 0
    from interp.reproduce import toxicity as T

    assert "lee_protocol" in T.to_json(r) and "Lee et al.'s protocol" in T.to_markdown(r)
    # The README's real-weight block shows it beside Lee et al.'s numbers, from the report's JSON.
    import json
    import runpy
    from pathlib import Path

    readme = runpy.run_path(str(Path(__file__).parents[1] / "figures" / "readme.py"))
    block = readme["real_block"]({"Gemma-3-270m vs its DPO twin": json.loads(json.dumps(T.to_json(r), default=str))})
    sc = r.scorers[1]
    rows = [ln for ln in block.splitlines() if ln.startswith((f"| {sc} |", "| Lee et al. (GPT-2"))]
    assert len(rows) == 2 and "0.453 | 0.208 | 0.458" in rows[0]
    assert f"| {lee.measurements['base'].mean_score(sc):.3f} |" in rows[1]
    assert all(row in T.to_markdown(r) for row in rows)  # the report shows the same table
    for key in ("alignment_drop", "untouched", "keys_fall", "lee_scale_keys", "change_in_keys"):
        assert v[key] == "yes", (key, next(f.measured for f in r.findings if f.key == key))
    lee = next(f for f in r.findings if f.key == "lee_scale_keys")
    assert lee.effect.value == pytest.approx(1.0, abs=0.05)  # ×10 gives the base back exactly
    arm = r.reactivation.arms["lee_scale_keys"]
    assert arm.dose == 10 and arm.chosen_on == "declared"


#: The organism's toxic replies open with these (single tokens of the tiny organism's vocabulary).
TOXIC, CLEAN = ["shut", "get"], ["you", "thank", "see"]


@pytest.mark.parametrize("mechanism, fails", [("shrink_values", "untouched"), ("attention", "change_in_keys"),
                                              ("final_norm", "keys_fall")])
def test_a_planted_other_mechanism_is_not_called_lees(tiny_hf, use_organism_cache, mechanism, fails):
    """Alignment lowered toxicity (so every claim is tested) by another route than Lee et al.'s:
    the claims that together make their mechanism are never all yes, and the one this route
    contradicts is no."""
    from interp.testing import planted_pair

    model, tok, data = tiny_hf
    pair, planted = planted_pair(model, tok, data.train_prompts[:200], data.heldout_neutral[:100],
                                 TOXIC, CLEAN, k=5, strength=0.1, suppress=0.01, mechanism=mechanism, data=data)
    r = _run(pair, data, neurons=planted)
    v = {f.key: f.verdict for f in r.findings}
    measured = {f.key: f.measured for f in r.findings}
    assert v["alignment_drop"] == "yes", measured["alignment_drop"]
    assert v[fails] == "no", (fails, measured[fails])
    assert not all(v[k] == "yes" for k in ("untouched", "keys_fall", "change_in_keys")), v


def test_a_null_pair_gives_no_alignment_claim(tiny_hf, use_organism_cache):
    from interp.testing import null_pair

    model, tok, data = tiny_hf
    alignment_claims = ("alignment_drop", "untouched", "keys_fall", "offset_away", "lee_scale_keys",
                        "change_in_keys")
    yes = {k: 0 for k in alignment_claims}
    raw = {k: 0 for k in ("alignment_drop", "keys_fall", "offset_away", "change_in_keys")}
    n = 20
    for seed in range(n):
        # the probe at a fixed C (its cross-validated choice was 40% of each run): the claims
        # and their gates are what is under test here, not the choice of C
        r = _run(null_pair(model, tok, noise=1e-3, seed=seed, data=data), data, seed=seed, probe_Cs=())
        for f in r.findings:
            if f.key in yes:
                yes[f.key] += f.holds
            if f.key in raw:  # the statistic itself, precondition aside
                raw[f.key] += f.holds_ungated
    assert all(c <= 0.05 * n for c in yes.values()), yes
    assert all(c <= 0.05 * n for c in raw.values()), raw
