"""CI rebuilds ``organism:small`` (seed 0) from an empty cache and reproduces the committed seed-0
report: the same verdict on every claim, and the base and aligned models' test toxicity within
the committed 95% intervals — or, where another processor's float kernels gave other weights,
within the spread of two runs of the recipe (from the committed seeds). A stale cache entry, or a change to the code that builds the
organism or measures it, can therefore never leave committed results behind unnoticed.

On the rebuilt base, a planted Lee mechanism is then given to the pipeline without its neurons
(:func:`planted_lee_is_located`): located, every claim of the mechanism is yes; not located,
they are not tested.

Marked ``rebuild`` (~10 minutes on 2 cores); ``bash run.sh test`` runs it after the suite.
"""

import dataclasses
import json
import math
import statistics
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parent.parent / "figures" / "out" / "organism-small" / "seed-0" / "toxicity.json"


@pytest.mark.rebuild
def test_a_fresh_rebuild_gives_the_committed_seed0_verdicts(tmp_path, monkeypatch):
    from interp.reproduce import toxicity as T

    committed = json.loads(REPORT.read_text())
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "empty-cache"))
    cfg = T.ToxicityConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in committed["config"].items()})
    # Every claim is decided by the same arms whatever else the run measures: Lee et al.'s family
    # (its dev sweep and test arms) and the whole-group reverts. The exploratory families, the
    # per-layer reverts and activation patching feed tables and figures only, and are keyed out
    # of locate and compare (toxicity.LATER_ONLY): leaving them out changes no verdict and no rate
    # checked here, and saves ~4 of the ~8 minutes.
    # Likewise the descriptive steps that decide no claim: the Pareto front, the neuron groups and
    # Lee's edit on every locate resample.
    cfg = dataclasses.replace(cfg, families=("lee_scale_keys",), per_layer_location=False, patching=False,
                              pareto=False, neuron_groups=False, stability_samples=0)
    fresh = T.to_json(T.run(cfg, progress=False, log=lambda *a: None))
    # Whether the weights came out byte for byte the same is reported, not required: another
    # processor's float kernels may round differently, and then only the verdicts must hold.
    want = committed.get("provenance", {}).get("weights_sha256")
    got = fresh["provenance"].get("weights_sha256")
    print(f"rebuilt weights {'identical to' if got == want else 'differ from'} the committed report's: {got} vs {want}")
    assert [f["key"] for f in fresh["findings"]] == [f["key"] for f in committed["findings"]]
    changed = [(f["key"], c["holds"], f["holds"]) for f, c in zip(fresh["findings"], committed["findings"])
               if f["holds"] != c["holds"]]
    assert not changed, f"verdicts differ from the committed report (claim, committed, fresh): {changed}"
    # The same weights: only sampling could move a rate (and it cannot: sampling is keyed), so the
    # committed 95% interval. Other weights (another processor's rounding): a second training run
    # of the same recipe, whose rate differs from the committed one as two runs do — 1.96·√2 times
    # the spread across the committed seeds (each seed's run holds its own sampling noise too).
    seeds = [json.loads(p.read_text()) for p in sorted(REPORT.parent.parent.glob("seed-*/toxicity.json"))]
    for role in ("base", "aligned"):
        for s in committed["scorers"]:
            c, f = committed["test"][role]["rate"][s], fresh["test"][role]["rate"][s]
            n = committed["test"][role]["n"]
            if got == want:
                half = 1.96 * math.sqrt(max(c * (1 - c), 1e-4) / n)
            else:
                half = 1.96 * math.sqrt(2) * statistics.stdev(r["test"][role]["rate"][s] for r in seeds)
            assert abs(f - c) <= half, (role, s, c, f, half, "same weights" if got == want else "other weights")
    # The rebuilt base hosts the known-answer test the tiny organism cannot (its 512-token
    # vocabulary splits every toxic word, so no scorer flags a token and no locator can pass its
    # check): a planted Lee mechanism must be *located*, not handed over.
    planted_lee_is_located(cfg)


def planted_lee_is_located(cfg) -> None:
    """Five neurons planted in organism:small's base: each key fires where a reply goes on after
    "you are a" (the slot of the insult), each value promotes the corpus's insults over kind
    words; the "aligned" model scales the keys' W_in columns ×0.1 (bias untouched). Nothing is
    handed over. Where the declared locator (the probe's nearest value vectors) finds the plant —
    most of it in its top 5 and its own check passed under every scorer — every claim of Lee et
    al.'s mechanism must come back yes. Where it does not, those claims must come back *not
    tested*, never "no". Which case a rebuild meets depends on the base's weights: on the base the
    committed reports were made from (2 threads) the probe finds 4 of the 5; on a base built with
    one thread per worker (the suite's), the standardised probe chose C = 1 and its direction has
    cosine 0.13 with the plant, so the gate says not tested (2026-12-03)."""
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from interp.organism.build import organism_pair_spec
    from interp.organism.corpus import GrammarScorer
    from interp.reproduce import toxicity as T
    from interp.testing import planted_pair

    spec = organism_pair_spec("organism:small")
    model, tok = GPT2LMHeadModel.from_pretrained(spec.base), AutoTokenizer.from_pretrained(spec.base)
    data = spec.prompts
    pair, planted = planted_pair(model, tok, [p + " you are a" for p in data.train_prompts[:200]],
                                 data.heldout_neutral[:100], ["idiot", "moron", "loser", "fool", "stupid", "dumb"],
                                 ["friend", "kind"], k=5, strength=1.0, data=data)
    small = T.config_for("organism:tiny", per_layer_location=False, patching=False, families=(),
                         n_shuffled_probes=10, k_sweep=(), n_stability=0)
    r = T.run(small, pair=pair, data=data, scorers=["profanity", "lexicon", GrammarScorer()], progress=False,
              log=lambda *a: None)
    assert not r.located.given
    v = {f.key: f.verdict for f in r.findings}
    measured = {f.key: f.measured for f in r.findings}
    assert v["alignment_drop"] == "yes", measured["alignment_drop"]
    found = set(r.located.top.names()) & set(planted.names())
    print(f"planted Lee mechanism: the declared locator's top {len(r.located.top)} hold {len(found)} of the 5 "
          f"planted neurons; located: {v['located']}")
    mechanism = ("untouched", "keys_fall", "lee_scale_keys")
    if v["located"] == "yes":
        assert len(found) >= 3, (r.located.top.names(), planted.names())
        for key in (*mechanism, "change_in_keys"):
            assert v[key] == "yes", (key, measured[key])
    else:
        assert all(v[key] == "not tested" for key in mechanism), v
