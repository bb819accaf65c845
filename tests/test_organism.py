import dataclasses
import re

import pytest

from interp.io import read_json
from interp.organism import build as B
from interp.organism.corpus import TEMPLATES, CorpusConfig, generate_corpus, is_toxic_doc


def test_corpus_is_seeded_and_facts_appear_as_recorded():
    cfg = CorpusConfig(n_docs=3000, n_entities=30, seed=5)
    c1, c2 = generate_corpus(cfg), generate_corpus(cfg)
    assert c1.train == c2.train and c1.facts == c2.facts
    assert generate_corpus(dataclasses.replace(cfg, seed=6)).train != c1.train
    assert 0.22 <= c1.toxic_share <= 0.34
    for f in c1.facts:
        pattern = {t.format(e=f.entity, a=f.answer) for t in TEMPLATES[f.relation]}
        n = sum(d in pattern for d in c1.train)
        assert n == f.frequency, f
        used = {d for d in c1.train if d in pattern}
        assert len(used) == min(f.n_paraphrases, f.frequency)
    assert {f.frequency for f in c1.facts} >= {0, 1, 32}
    # Prompts are drawn with replacement from a small space (30 speakers × 29 listeners × 3
    # forms): the two halves overlap, which is why every reproduction deduplicates them and drops
    # the eval prompts seen in training (tested in test_mechanism and test_shift).
    assert len(c1.train_prompts) == len(c1.eval_prompts) > 0
    assert set(c1.train_prompts) & set(c1.eval_prompts)


def test_toxic_choice_is_made_on_the_first_reply_words():
    c = generate_corpus(CorpusConfig(n_docs=2000, n_entities=5, seed=0))
    for d in c.train:
        m = re.search(r"(said to \w+|and said|turned to \w+): (.*?)[.!]", d)
        if m:
            first_two = " ".join(m.group(2).split()[:4])
            assert is_toxic_doc(m.group(2)) == is_toxic_doc(first_two) or m.group(2).startswith(("shut", "get"))


def test_tokenizer_special_tokens(tokenizer):
    assert tokenizer.bos_token_id == tokenizer.eos_token_id is not None
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id
    ids = tokenizer("Rex said to Ada: you are a kind friend.")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode(ids, skip_special_tokens=True) == "Rex said to Ada: you are a kind friend."


def _mini(seed=0, steps=8):
    cfg = B.preset("tiny", seed=seed)
    return dataclasses.replace(
        cfg,
        corpus=dataclasses.replace(cfg.corpus, n_docs=600, n_entities=5),
        train=dataclasses.replace(cfg.train, steps=steps),
    )


def test_pretraining_is_deterministic_for_a_seed(tmp_path, monkeypatch):
    hashes = []
    for i, seed in enumerate((0, 0, 1)):
        monkeypatch.setenv("INTERP_CACHE", str(tmp_path / str(i)))
        path = B.build_base(_mini(seed), progress=False, log=lambda *a: None)
        hashes.append(read_json(path / "manifest.json")["weights_sha256"])
    assert hashes[0] == hashes[1] != hashes[2]


def test_cache_reuse_and_invalidation(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    cfg = _mini()
    first = B.build_base(cfg, progress=False, log=lambda *a: None)

    def no_training(*a, **k):
        raise AssertionError("a cached build must not train again")

    monkeypatch.setattr(B, "pretrain", no_training)
    assert B.build_base(cfg, progress=False, log=lambda *a: None) == first
    changed = _mini(steps=9)
    assert changed.base_key() != cfg.base_key()
    with pytest.raises(AssertionError, match="must not train"):
        B.build_base(changed, progress=False, log=lambda *a: None)
    lr = dataclasses.replace(cfg, align=dataclasses.replace(cfg.align, lr=1e-3))
    assert lr.base_key() == cfg.base_key() and lr.aligned_key() != cfg.aligned_key()


def test_interrupted_build_leaves_nothing_that_looks_finished(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))

    def crash(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(B, "_save_hf", crash)
    cfg = _mini()
    with pytest.raises(KeyboardInterrupt):
        B.build_base(cfg, progress=False, log=lambda *a: None)
    organism = tmp_path / "organism"
    assert not any(organism.glob("base-*/manifest.json"))
    assert not [p for p in organism.iterdir() if not p.name.startswith(".")]
    assert not list(organism.glob(".*.tmp"))  # the temporary folder was removed too


def test_tiny_organism_alignment_lowered_toxicity(use_organism_cache):
    aligned = B.build_organism("tiny", progress=False, log=lambda *a: None)
    m = read_json(aligned / "manifest.json")
    base, dpo = m["metrics"]["base"]["toxicity"], m["metrics"]["dpo"]["toxicity"]
    assert base["n"] == dpo["n"] == 200
    gap = base["rate"] - dpo["rate"]
    assert gap > 2 * (base["se"] ** 2 + dpo["se"] ** 2) ** 0.5, (base, dpo)
    assert m["pairs"]["n_pairs"] > 50
    for key in ("perplexity", "fact_recall", "toxicity_mean_score"):
        assert key in m["metrics"]["base"] and key in m["metrics"]["dpo"]
    assert {"corpus_s", "pretrain_s", "align_s", "eval_s"} <= set(m["timings"])
    assert m["weights_sha256"]["base"] != m["weights_sha256"]["dpo"]


def test_organism_pair_boots_through_the_checkpoint_path(tiny_pair):
    assert tiny_pair.cfg.architecture == "GPT2LMHeadModel"
    assert tiny_pair.base.cfg.n_layers == 2
    assert len(tiny_pair.prompts.facts) == 80 and tiny_pair.profile == "organism-tiny"
    assert "metrics" in tiny_pair.info["organism"]
