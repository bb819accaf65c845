"""Pretraining-data experiments: the streams hold what their recipe says (fixed budget, nested
unique sets, equal mentions, fresh validation text), the claims' statistics find planted
effects and not their absence, and ``interp reproduce pretraining`` runs end to end on the tiny
preset."""

import json
from collections import Counter

import numpy as np
import pytest

from interp.organism.pretraining import (
    BIO_TEMPLATES,
    bio_prompts,
    bio_stream,
    data_preset,
    duplication_stream,
    first_biography,
    repetition_stream,
)
from interp.reproduce import get
from interp.reproduce import pretraining as P


@pytest.fixture(scope="module")
def presets():
    return data_preset("tiny", seed=3)


def test_repetition_streams_hold_the_same_budget_and_mentions_with_nested_unique_sets(presets):
    data, _, _ = presets
    streams = {e: repetition_stream(data, e) for e in (1, 2, 4, 8, 16)}
    uniques = {e: set(s.docs) for e, s in streams.items()}
    for e, s in streams.items():
        assert len(s.docs) == data.n_stream
        counts = Counter(s.docs)
        repeated = [d for d, c in counts.items() if c >= e]
        assert len(repeated) >= 0.95 * len(counts)  # a rare chance duplicate of the grammar aside
        for f in s.facts[:10]:  # every fact is mentioned `mentions` times, in mentions/E documents
            sentences = [d for d in s.docs if f.entity in d and d.endswith(f" {f.answer}.")]
            assert len(sentences) == data.mentions and len(set(sentences)) == data.mentions // e
            assert f.n_paraphrases == len(f.templates) == min(4, data.mentions // e)
    assert uniques[16] <= uniques[8] <= uniques[4] <= uniques[2] <= uniques[1]
    val = set(streams[1].val)
    assert len(val) == data.n_val and not val & uniques[1]
    assert all(s.val == streams[1].val for s in streams.values())  # every arm on the same documents
    dup = duplication_stream(data, 0.5, 10)
    assert len(dup.docs) == data.n_stream and not val & set(dup.docs)
    top = Counter(dup.docs).most_common(1)[0][1]
    assert top >= 10 and len(set(dup.docs)) < len(uniques[1])
    with pytest.raises(ValueError, match="divide"):
        repetition_stream(data, 3)


def test_biography_streams_differ_only_in_phrasing(presets):
    _, bio, _ = presets
    one, five = bio_stream(bio, 1), bio_stream(bio, 5)
    assert len(one.docs) == len(five.docs)
    assert [(f.entity, f.relation, f.answer) for f in one.facts] == [(f.entity, f.relation, f.answer) for f in five.facts]
    first = first_biography(bio)
    for e, b in list(first.items())[:5]:
        mine1 = [d for d in one.docs if e in d]
        assert len(mine1) == bio.exposures and set(mine1) == {b}
        mine5 = Counter(d for d in five.docs if e in d)
        assert b in mine5 and len(mine5) == 5 and set(mine5.values()) == {bio.exposures // 5}
    prefixes = bio_prompts(bio)
    for f in one.facts[:12]:
        p = prefixes[(f.entity, f.relation)]
        assert first[f.entity].startswith(p + " " + f.answer)
    assert all(len(v) == 5 for v in BIO_TEMPLATES.values())


def _planted(loss16=0.0, loss4=0.0, dup=0.0, extract_gain=0.0, stored=0.9, n=400, seed=0):
    rng = np.random.default_rng(seed)
    base = 2.0 + rng.normal(0, 0.3, n)
    noise = lambda: rng.normal(0, 0.01, n)  # noqa: E731
    pu = {"E=1: validation loss": base.tolist(),
          "E=4: validation loss": (base * (1 + loss4) + noise()).tolist(),
          "E=16: validation loss": (base * (1 + loss16) + noise()).tolist(),
          "duplicated: validation loss": (base * (1 + dup) + noise()).tolist()}
    facts = rng.random(300)
    pu["E=1: recall, every phrasing"] = (facts < 0.5).astype(float).tolist()
    pu["E=16: recall, every phrasing"] = (facts < 0.5 - extract_gain).astype(float).tolist()
    u = rng.random(300)
    pu["1 phrasing: stored (biography continued)"] = (u < stored).astype(int).tolist()
    pu["5 phrasings: stored (biography continued)"] = (u < stored).astype(int).tolist()
    pu["1 phrasing: extraction (QA, early-stopped)"] = (u < 0.1).astype(int).tolist()
    pu["5 phrasings: extraction (QA, early-stopped)"] = (u < 0.1 + extract_gain).astype(int).tolist()
    pu["1 phrasing: probe at the name"] = (u < 0.2).astype(int).tolist()
    pu["5 phrasings: probe at the name"] = (u < 0.2 + extract_gain).astype(int).tolist()
    return P.PretrainingReport(P.PretrainingConfig(size="tiny"), [], {}, per_unit=pu)


def test_the_claims_find_planted_effects_and_not_their_absence():
    got = {f.key: f for f in P.findings(_planted(loss16=0.05, loss4=0.005, dup=0.03, extract_gain=0.4))}
    for k in ("repeat_4", "repeat_16", "repeat_recall", "dedup", "memorised", "rephrase_extract",
              "stored_not_extractable", "probe_at_name"):
        assert got[k].verdict == "yes", (k, got[k].measured)
    null = {f.key: f for f in P.findings(_planted(stored=0.9, loss4=0.05))}
    for k in ("repeat_16", "repeat_recall", "dedup", "rephrase_extract", "probe_at_name", "repeat_4"):
        assert null[k].verdict == "no", (k, null[k].measured)
    assert null["repeat_recall"].mde is None or null["repeat_recall"].mde >= 0  # a "no" states its power
    assert null["stored_not_extractable"].verdict == "yes"  # stored 0.9, extracted 0.1: planted too
    forgot = {f.key: f for f in P.findings(_planted(stored=0.1, extract_gain=0.4))}
    assert forgot["memorised"].verdict == "no" and forgot["rephrase_extract"].verdict == "not tested"
    assert "does not hold" in forgot["rephrase_extract"].untested


def test_the_reproduction_runs_end_to_end_on_the_tiny_preset(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    cfg = P.config_for("tiny", repeats=(1, 4, 16), ft_epochs=2)
    reports = get("pretraining").run_seeds(cfg, [0], out=tmp_path / "out", figures=False, log=lambda *a: None)
    j = json.loads((tmp_path / "out" / "seed-0" / "pretraining.json").read_text())
    assert [a["arm"] for a in j["repetition"]] == ["E=1", "E=4", "E=16", "duplicated"]
    assert len({a["n_val"] for a in j["repetition"]}) == 1
    assert [a["unique_docs"] for a in j["repetition"]][:3] == sorted([a["unique_docs"] for a in j["repetition"]][:3],
                                                                      reverse=True)
    assert set(j["extraction"]) == {"1 phrasing", "5 phrasings"}
    assert all(len(e["curve"]["x"]) == 3 for e in j["extraction"].values())
    n_test = {len(v) for k, v in j["per_unit"].items() if "phrasing" in k and ":" in k and "recall" not in k}
    assert len(n_test) == 1  # the two arms on the same held-out facts
    keys = [f["key"] for f in j["findings"]]
    assert keys == ["repeat_4", "repeat_16", "repeat_recall", "dedup", "memorised", "rephrase_extract",
                    "stored_not_extractable", "probe_at_name"]
    s = json.loads((tmp_path / "out" / "pretraining_seeds.json").read_text())
    assert s["seeds"] == [0] and len(s["claims"]) == len(keys)
    assert reports[0].findings[0].criterion
    # a second run is read from the cache: no model is trained again
    again = P.run(cfg, log=lambda *a: None)
    assert again.per_unit == reports[0].per_unit
    # an interrupted multi-seed run resumes: a finished seed written for this config is read back
    logs = []
    back = get("pretraining").run_seeds(cfg, [0], out=tmp_path / "out", figures=False, log=logs.append)
    assert any("read back" in m for m in logs) and [f.key for f in back[0].findings] == keys
    other = get("pretraining").run_seeds(P.config_for("tiny", repeats=(1, 4, 16), ft_epochs=1), [0], out=tmp_path / "out",
                        figures=False, log=logs.append)
    assert len(other[0].extraction["1 phrasing"]["curve"]["x"]) == 2  # another config: run, not read back
