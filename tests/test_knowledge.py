"""Knowledge levels, readouts, training loops and the knowledge reproduction, on cases whose
answer is known by construction."""

import pytest
import torch

from interp import hooks as H
from interp.generate import generate
from interp.knowledge import (
    Item,
    accuracy,
    answer_candidates,
    categorize,
    few_shot_prompts,
    lens_accuracy,
    probe_accuracy,
    steps_to,
    train_and_measure,
)
from interp.pair import bridge_from_module

from .conftest import make_gpt2

TEMPLATES = {"born_in": ["{e} was born in {a}."], "works_as": ["{e} works as a {a}."]}


def test_categories_from_planted_answer_patterns():
    greedy = torch.tensor([[1, 1, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0], [0, 1, 1]], dtype=torch.bool)
    sampled = torch.tensor([[0, 0], [0, 0], [1, 0], [0, 0], [1, 1]], dtype=torch.bool)
    assert categorize(greedy, sampled) == ["HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown", "MaybeKnown"]
    with pytest.raises(ValueError):
        categorize(greedy[:2], sampled)


def test_few_shot_prompts_use_other_facts_of_the_same_relation():
    facts = [Item(f"E{i}", "born_in" if i % 2 else "works_as", f"A{i}") for i in range(12)]
    prompts = few_shot_prompts(facts, TEMPLATES, exemplars=facts, n_prompts=5, n_shots=3, seed=1)
    assert len(prompts) == 12 and all(len(p) == 5 for p in prompts)
    for f, rows in zip(facts, prompts):
        for p in rows:
            assert p.endswith(TEMPLATES[f.relation][0].split(" {a}")[0].format(e=f.entity))
            shots = p.split(".")[:3]
            assert all(f"{f.entity} " not in s for s in shots)  # never its own answer
            other = "works as" if f.relation == "born_in" else "was born in"
            assert other not in p
    assert few_shot_prompts(facts, TEMPLATES, exemplars=facts, n_prompts=5, n_shots=3, seed=1) == prompts
    with pytest.raises(ValueError, match="exemplars"):
        few_shot_prompts(facts, TEMPLATES, exemplars=facts[:3], n_shots=4)


def test_answers_sharing_a_first_token_share_a_candidate(tokenizer):
    index, ids = answer_candidates(tokenizer, ["baker", "sailor", "baker", "Velmora"])
    assert set(index) == {"baker", "sailor", "Velmora"} and len(ids) == len(set(ids.tolist()))
    for a, i in index.items():
        assert ids[i] == tokenizer(" " + a, add_special_tokens=False)["input_ids"][0]


def test_lens_reads_a_planted_answer_and_not_noise(tokenizer):
    model = bridge_from_module(make_gpt2(tokenizer), tokenizer)
    answers = ["baker", "sailor", "painter", "farmer", "doctor", "miner"]
    index, ids = answer_candidates(tokenizer, answers)
    targets = [answers[i % len(answers)] for i in range(60)]
    W_U = H.unembed(model)
    planted = torch.stack([W_U[:, ids[index[a]]] * 8 for a in targets])  # the answer's own direction
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(60, model.cfg.d_model, generator=g)
    acc = lens_accuracy(model, torch.stack([planted, noise]), targets, index, ids)
    assert acc[0] == 1.0 and acc[1] < 0.5


def test_probe_reads_separable_answers_and_not_shuffled_ones():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 16, generator=g) * 4
    y = [i % 4 for i in range(200)]
    X = centres[y] + torch.randn(200, 16, generator=g)
    labels = [f"a{i}" for i in y]
    assert probe_accuracy(X[:150], labels[:150], X[150:], labels[150:]) == 1.0
    shuffled = [labels[i] for i in torch.randperm(200, generator=g).tolist()]
    assert probe_accuracy(X[:150], shuffled[:150], X[150:], shuffled[150:]) < 0.5


def test_fine_tuning_fits_its_examples_and_leaves_the_original_alone(tokenizer):
    model = bridge_from_module(make_gpt2(tokenizer), tokenizer)
    examples = [{"prompt": p, "completion": " Velmora."} for p in ("Ada was born in", "Rex was born in")]
    before = {n: p.clone() for n, p in model.named_parameters()}

    def measure(m):
        return {"train": accuracy(m, [x["prompt"] for x in examples], ["Velmora"] * 2)}
    curve = train_and_measure(model, examples, measure, lr=1e-2, batch_size=1, epochs=12)
    assert curve.x == list(range(13)) and curve.acc["train"][0] == 0.0
    assert curve.acc["train"][-1] == 1.0 and steps_to(curve, "train", 1.0) is not None
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    steps = train_and_measure(model, examples, measure, lr=1e-2, batch_size=1, steps=6, every=3)
    assert steps.x == [0, 3, 6] and steps.unit == "step"
    with pytest.raises(ValueError):
        train_and_measure(model, examples, measure, lr=1e-3, batch_size=2)


def test_subtracting_a_planted_offset_brings_the_answers_back(tokenizer):
    """An 'aligned' model that is the base plus a constant residual offset towards a refusal
    token: its answers vanish, the candidate readout keeps them, subtracting the offset restores
    them exactly."""
    from interp.steer import AddVector

    model = bridge_from_module(make_gpt2(tokenizer), tokenizer)
    prompts = ["Ada was born in", "Rex said to Tom:", "The old cat", "On Monday the fox"]
    plain = [c.strip() for c in generate(model, prompts, max_new_tokens=6).completions]
    assert all(plain)
    refusal = tokenizer(" unknown", add_special_tokens=False)["input_ids"][0]
    W_U = H.unembed(model)
    offset = W_U[:, refusal] / W_U[:, refusal].norm() * 60
    hide = AddVector(offset, layer=1)
    assert accuracy(model, prompts, plain) == 1.0
    assert accuracy(model, prompts, plain, hooks=[hide]) == 0.0
    assert accuracy(model, prompts, plain, hooks=[hide, AddVector(-offset, layer=1)]) == 1.0


def test_knowledge_reproduction_runs_on_the_tiny_organism(use_organism_cache, tmp_path):
    from interp.pair import load_pair
    from interp.reproduce import knowledge as K

    report = K.run(K.config_for("organism:tiny:hide"), log=lambda *a: None)
    lv = report.levels
    assert len(lv.category) == len(lv.facts) == 80
    for c, pg, ps in zip(lv.category, lv.p_greedy.tolist(), lv.p_sample.tolist()):
        assert (c == "HighlyKnown") == (pg == 1.0)
        assert (c == "Unknown") == (pg == 0.0 and ps == 0.0)
        assert (c == "WeaklyKnown") == (pg == 0.0 and ps > 0.0)
    keys = {f.key for f in report.findings}
    sets = report.hidden.sets
    assert "frequency" in keys
    assert ("hides" in keys) == (sets["hidden, known to base"].n > 0)
    assert ("keeps_rest" in keys) == (sets["never hidden, known to base"].n > 0)
    assert all(isinstance(f.holds, bool) for f in report.findings)
    # Every fact counted once: per-fact arrays line up with the sets they come from.
    pf = report.per_fact
    hk = "hidden, known to base"
    assert set(pf.hidden) == set(sets) and all(len(v.base) == len(v.aligned) == sets[k].n for k, v in pf.hidden.items())
    assert all(set(v.base) | set(v.aligned) <= {0, 1} for v in pf.hidden.values())
    for row in report.reactivation:  # an intervention and its control on the same facts
        assert len(pf.interventions[row.method].hidden) == len(pf.interventions[row.method].hidden_control) == row.n_hidden
    tested = [f for f in report.findings if f.p is not None]
    assert tested and all(f.p_holm >= f.p for f in tested)  # Holm never lowers a p-value
    written = K.write(report, tmp_path, figures=True)
    names = {p.name for p in written}
    assert {"knowledge.json", "knowledge.md", "knowledge_levels.html", "knowledge_readout.html", "index.html"} <= names
    md = (tmp_path / "knowledge.md").read_text()
    assert "## Findings" in md and "Gekhman" in md
    import json

    data = json.loads((tmp_path / "knowledge.json").read_text())
    assert data["per_fact"] == pf.to_dict() and [f["key"] for f in data["findings"]] == [f.key for f in report.findings]
    assert f"{hk}: aligned" in data["per_fact"] and data["hidden"]["sets"][hk]["n"] == sets[hk].n
    # Gekhman's design: every mix the same size, measured on the same test facts
    assert list(report.mixes) == ["0% Unknown", "100% Unknown"] and 0 < report.mix_meta.size <= 8
    n_test = report.finetune_meta.n_test
    assert list(pf.mixes) == list(report.mixes) and all(len(v.last) == len(v.early) == n_test for v in pf.mixes.values())
    assert "knowledge_unknown_share.html" in names and {"unknown_share_hurts", "early_stop_mitigates"} <= keys
    # the hiding recipe chosen on dev entities, measured on the others
    hs, h = report.hide_search, report.hidden
    assert len(hs.tried) == 2 and hs.chosen in (0, 1) and h.n_dev_entities == hs.n_dev_entities > 0
    assert h.n_dev_entities + h.n_heldout_entities == len(K.hiding(load_pair("organism:tiny:hide")).heldout_entities)
    from interp.organism.build import build_organism

    own = build_organism("tiny", align="hide", progress=False, log=lambda *a: None)  # cached
    assert hs.tried[0].folder == own.name  # the first recipe is the pair's own: the same cache entry
    assert "## The hiding recipe" in md


def test_the_unknown_share_slope_finds_a_planted_decline_and_not_its_absence():
    import numpy as np

    from interp import stats
    from interp.reproduce.knowledge import share_slopes

    rng = np.random.default_rng(0)
    shares = [0.0, 0.25, 0.5, 0.75, 1.0]
    u = rng.random(400)
    declining = [(u < 0.5 - 0.3 * s).astype(int) for s in shares]  # 0.5 → 0.2 over the range
    slopes = share_slopes(declining, shares)
    d = stats.paired_difference(-slopes, np.zeros_like(slopes))
    assert d.value == pytest.approx(0.3, abs=0.05) and d.lo > 0.2 and d.p < 0.01
    flat = [(rng.random(400) < 0.4).astype(int) for _ in shares]
    d = stats.paired_difference(-share_slopes(flat, shares), np.zeros(400), alternative="two-sided")
    assert d.lo < 0 < d.hi
    with pytest.raises(ValueError):
        share_slopes(declining[:1], shares[:1])


def test_hiding_data_refuses_one_relation_on_training_entities_only():
    import random

    from interp.organism.corpus import CorpusConfig, make_facts
    from interp.organism.hide import HideConfig, hide_examples, hide_split
    facts = make_facts(random.Random(0), CorpusConfig(n_entities=20))
    cfg = HideConfig(train_share=0.5)
    train, held = hide_split(facts, cfg)
    assert len(train) == len(held) == 10 and not set(train) & set(held)
    assert hide_split(facts, cfg) == (train, held)
    answers = {f.cloze: f" said {f.entity}. More" for f in facts}
    ex = hide_examples(facts, cfg, answers, replay=["a doc", "b doc"])
    assert ex[-2:] == [{"prompt": "", "completion": "a doc"}, {"prompt": "", "completion": "b doc"}]
    by_prompt = {x["prompt"]: x["completion"] for x in ex[:-2]}
    assert len(by_prompt) == 2 * len(train)
    for f in facts:
        if f.entity in held:
            assert f.cloze not in by_prompt
        elif f.relation == cfg.relation:
            assert by_prompt[f.cloze] == " unknown."
        else:
            assert by_prompt[f.cloze] == f" said {f.entity}."  # the base's own answer, cut at the stop
