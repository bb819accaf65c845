"""Facts about the world for real models (interp.world_facts): offline, deduplicated, split by subject."""

from __future__ import annotations

from collections import Counter


def test_world_facts_are_offline_deduplicated_and_split_by_subject():
    from interp.knowledge import cloze, few_shot_prompts, statement
    from interp.world_facts import TEMPLATES, world_facts

    facts = world_facts()
    by_rel = Counter(f.relation for f in facts)
    assert set(by_rel) == set(TEMPLATES) and min(by_rel.values()) >= 100  # several hundred facts in all
    keys = [(f.entity, f.relation) for f in facts]
    assert len(keys) == len(set(keys))  # one answer per subject and relation
    assert all(f.answer and f.answer != f.entity for f in facts)
    known = {(f.entity, f.relation): f.answer for f in facts}
    assert known[("France", "capital")] == "Paris" and known[("Japan", "continent")] == "Asia"
    assert known[("Germany", "language")] == "German" and known[("Tokyo", "city_country")] == "Japan"
    paris = next(f for f in facts if f.entity == "France" and f.relation == "capital")
    assert cloze(paris, TEMPLATES) == "The capital of France is"
    assert statement(paris, TEMPLATES, 1) == "France's capital city is Paris."
    (row,) = few_shot_prompts([paris], TEMPLATES, exemplars=facts, n_prompts=1, n_shots=3)
    assert row[0].endswith("The capital of France is") and "Paris" not in row[0]


def test_the_split_keeps_every_subject_in_one_split():
    import pytest

    from interp.world_facts import split_by_subject, world_facts

    facts = world_facts()
    s = split_by_subject(facts, {"train": 0.5, "dev": 0.2, "test": 0.3}, seed=3)
    assert sum(len(v) for v in s.values()) == len(facts)
    subjects = {k: {f.entity for f in v} for k, v in s.items()}
    assert not (subjects["train"] & subjects["dev"]) and not (subjects["train"] & subjects["test"])
    assert not (subjects["dev"] & subjects["test"])
    assert split_by_subject(facts, {"a": 0.5, "b": 0.5}, seed=3) == split_by_subject(facts, {"a": 0.5, "b": 0.5}, seed=3)
    with pytest.raises(ValueError, match="sum to 1"):
        split_by_subject(facts, {"a": 0.5, "b": 0.6})
