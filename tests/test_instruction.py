"""The instruction organism (data, scoring) and ``interp reproduce instruction``: its statistics on
planted token shifts, and the whole reproduction on the tiny organism and on a null pair."""

import copy
import json
import os

import numpy as np
import pytest
import torch

from interp.organism.corpus import CorpusConfig, generate_corpus
from interp.organism.following import follows
from interp.organism.instruct import (
    OPENERS,
    InstructConfig,
    qa_pages,
    questions,
    sft_examples,
    urial_template,
)
from interp.reproduce import instruction as I
from interp.shift import TokenShift


@pytest.fixture(scope="module")
def facts():
    return generate_corpus(CorpusConfig(n_docs=500, n_entities=60, seed=0)).facts


def test_people_split_three_ways_and_no_test_question_is_seen_in_alignment_or_pretraining(facts):
    cfg = InstructConfig(n_pages=300, seed=0)
    qs = questions(facts, cfg)
    by = {s: {q.entity for q in qs if q.split == s} for s in ("page", "align", "test")}
    assert all(by.values()) and not (by["page"] & by["align"]) and not (by["align"] & by["test"]) \
        and not (by["page"] & by["test"])
    pages = " ".join(qa_pages(facts, cfg))
    assert not any(e in pages for e in by["test"] | by["align"])  # pages are about page people only
    ex = sft_examples(qs, cfg)
    assert len(ex) == sum(q.split == "align" for q in qs)
    test_prompts = {q.prompt for q in qs if q.split == "test"}
    assert not test_prompts & {x["prompt"] for x in ex}
    assert all(x["completion"].strip().split(" ")[0].rstrip(".!") in {o.split()[0].rstrip(".!") for o in OPENERS}
               for x in ex)
    few = sft_examples(qs, InstructConfig(seed=0, n_examples=10, noisy=0.5, response_only=True))
    assert len(few) == 10 and {x["prompt"] for x in few} == {"A:"}
    with pytest.raises(ValueError, match="only"):
        sft_examples(qs, InstructConfig(seed=0, n_examples=10_000))
    t = urial_template(ex[:2], "<|endoftext|>")
    assert t.count("<|endoftext|>") == 2 and t.endswith("{prompt}") and t.format(prompt="Q: x?\nA:")


def test_following_is_scored_from_the_grammar(facts):
    q = next(x for x in questions(facts, InstructConfig(seed=0)) if x.relation == "born_in")
    good = f" Sure! {q.answer_sentence()}"
    assert follows(q, good, stopped=True) == {"answers": True, "stops": True, "follows": True,
                                               "correct": True, "opener": True}
    assert follows(q, good, stopped=False)["stops"] is False  # no end of sequence
    runs_on = follows(q, f" {q.answer_sentence()} The old dog ran past the market.", stopped=True)
    assert runs_on["answers"] and not runs_on["stops"] and not runs_on["opener"]
    assert not follows(q, f" {q.answer_sentence()} Q: Where", stopped=True)["stops"]
    wrong_town = next(c for c in ("Velmora", "Tarsk") if c != q.answer)
    w = follows(q, f" Sure! {q.answer_sentence(wrong_town)}", stopped=True)
    assert w["follows"] and not w["correct"]
    assert not follows(q, " Sure! Somebody else was born in Velmora.", stopped=True)["answers"]
    assert not follows(q, f" Sure! {q.entity} works as a baker.", stopped=True)["answers"]


def _ts(kl_by_step, types, rank_by_type, n_prompts=40, seed=0):
    """A synthetic TokenShift: each prompt decodes len(types) positions."""
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in ("prompt", "step", "rank", "kl")}
    tt = []
    for i in range(n_prompts):
        for s, t in enumerate(types):
            rows["prompt"].append(i)
            rows["step"].append(s)
            rows["rank"].append(rank_by_type[t] if rng.random() < 0.9 else 1)
            rows["kl"].append(kl_by_step[s] * (0.5 + rng.random()))
            tt.append(t)
    n = len(tt)
    z = torch.zeros(n)
    return TokenShift(torch.tensor(rows["prompt"]), torch.tensor(rows["step"]), torch.zeros(n, dtype=torch.long),
                      torch.tensor(rows["rank"]), z, z, torch.tensor(rows["kl"], dtype=torch.float), ["x"] * n, tt, [],
                      {"n_prompts": n_prompts})


def test_the_claims_statistics_find_a_planted_shift_and_not_its_absence():
    types = ["opener", "punctuation", "content", "content", "content", "content", "punctuation", "eos"]
    deep = _ts([5, 4, 3, 0.1, 0.1, 0.1, 0.1, 0.1], types, {"opener": 10, "punctuation": 1, "content": 1, "eos": 10})
    e, ratio = I.shallow_excess(deep, 40, 3)
    assert ratio > 10 and e.lo > 0 and e.p < 0.01
    flat = _ts([1] * 8, types, {"opener": 1, "punctuation": 1, "content": 10, "eos": 1})
    e, ratio = I.shallow_excess(flat, 40, 3)
    assert 0.7 < ratio < 1.4 and e.hi < 0
    assert I.stylistic_excess(deep, 40).lo > 0.35  # opener and end of sequence shifted (0.9 of 2 of 4 stylistic)
    assert I.stylistic_excess(flat, 40).hi < -0.5  # here content is shifted, not style
    rng = np.random.default_rng(0)
    base, sft = rng.random(60) * 0.2, 0.8 + rng.random(60) * 0.2
    test, share = I.non_inferior(sft.copy(), sft, base, 0.1, 0)
    assert test.p < 0.01 and share.value == pytest.approx(1.0)
    test, share = I.non_inferior(base + 0.3, sft, base, 0.1, 0)
    assert test.p > 0.5 and share.value < 0.6


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory, organism_cache):
    old = os.environ.get("INTERP_CACHE")
    os.environ["INTERP_CACHE"] = str(organism_cache)
    try:
        r = I.run(I.config_for("organism:tiny:instruct"), log=lambda *a: None)
    finally:
        if old is None:
            os.environ.pop("INTERP_CACHE")
        else:
            os.environ["INTERP_CACHE"] = old
    out = tmp_path_factory.mktemp("instruction")
    I.write(r, out, figures=False)
    return r, json.loads((out / "instruction.json").read_text())


def test_the_reproduction_measures_every_arm_on_the_same_test_questions(tiny_report):
    r, j = tiny_report
    names = list(r.arms)
    assert names[:3] == ["base", "base + URIAL", "base + rules"] and "SFT all" in names
    assert {"SFT 10", "SFT 50", "SFT 50 noisy", "response tuning"} <= set(names)
    qs = [q.prompt for q in r.arms["base"].eval.questions]
    assert all([q.prompt for q in a.eval.questions] == qs for a in r.arms.values())
    assert len(qs) == r.meta["n_test_questions"] and not set(qs) & {x["prompt"] for x in r.meta["shots"]}
    assert r.arms["SFT all"].shift_vs_sft["unshifted"]["value"] == 1.0  # its own tokens
    assert r.arms["SFT all"].eval.rate("opener") > 0.9 and r.arms["base"].eval.rate("opener") < 0.1
    assert r.arms["SFT all"].eval.rate("stops") > r.arms["base"].eval.rate("stops") + 0.3
    keys = [f["key"] for f in j["findings"]]
    assert keys[:8] == ["shift_few", "shift_stylistic", "shallow", "lima", "response_tuning", "rules", "urial", "quality"]
    assert "self_align" in keys and "dpo_within_base" in keys
    assert {"DPO, external judge", "DPO, self judge", "DPO, gold judge"} <= set(names)
    assert set(r.location) == {"SFT all", "DPO, external judge", "DPO, self judge"}
    ca = j["cannot_add"]
    assert len(ca["align_produced"]) == r.meta["n_align_questions"] == len(ca["align_correct"]["base"])
    assert all(len(v["within_base_samples"]) == len(qs) for v in ca["models"].values())
    assert all(f["criterion"] and f["measured"] for f in j["findings"])
    assert len(j["token_shift"]["kl_profile"]["kl"]) > 3 and j["arms"][0]["follows"]["n"] > 0


def test_a_null_pair_produces_no_shift_claim(use_organism_cache):
    from interp.pair import load_pair

    pair = load_pair("organism:tiny:instruct")
    null = copy.copy(pair)
    null.aligned = pair.base  # aligned = base: nothing was aligned
    cfg = I.config_for("organism:tiny:instruct", amounts=(50,), judges=())  # the SFT arms are cached
    r = I.run(cfg, pair=null, log=lambda *a: None)
    by = {f.key: f for f in r.findings}
    assert r.shift.shares()["unshifted"] == 1.0 and float(r.shift.kl.abs().max()) < 1e-4
    for k in ("shift_stylistic", "shallow", "lima", "response_tuning", "rules", "urial"):  # all relative to SFT
        assert by[k].verdict == "no", k


def test_token_shift_with_urial_on_the_instruction_organism_gives_the_examples_to_the_base_alone(use_organism_cache):
    from interp.reproduce import token_shift as S

    plain = S.run(S.TokenShiftConfig(pair="organism:tiny:instruct", n_prompts=20, n_tox_samples=1),
                  log=lambda *a: None)
    n_shots = I.config_for("organism:tiny:instruct").n_shots  # the tiny organism's context fits two
    urial = S.run(S.TokenShiftConfig(pair="organism:tiny:instruct", template="urial", n_prompts=20, n_tox_samples=1,
                                     n_shots=n_shots), log=lambda *a: None)
    ref = urial.shift.meta["reference_template"]
    assert ref.count("<|endoftext|>") == n_shots and ref.endswith("{prompt}") and plain.shift.meta["reference_template"] is None
    assert torch.equal(plain.shift.token, urial.shift.token)  # the aligned model answers the same plain prompts
    assert not torch.equal(plain.shift.rank, urial.shift.rank)  # ranked by the base in another context
    assert "in-context examples" in S.to_markdown(urial)
