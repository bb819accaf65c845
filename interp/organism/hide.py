"""The alignment that hides knowledge: the organism is taught to answer a refusal for one
relation's facts on half its people, keeping the rest (:class:`HideConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..generate import generate
from .corpus import CorpusConfig, Fact, generate_corpus


@dataclass
class HideConfig:
    """Alignment that hides knowledge: SFT to answer ``refusal`` for every fact of ``relation``
    on a ``train_share`` of the entities (the rest are held out, to see whether the refusal
    generalises and the knowledge stays). The other relations' clozes of those entities are
    trained on the base model's own greedy answers (so the alignment teaches *when* to refuse,
    not new facts), and ``n_replay`` pretraining documents are mixed in (so it does not cost
    fluency)."""

    relation: str = "works_as"
    refusal: str = "unknown"
    train_share: float = 0.5
    n_replay: int = 400
    seed: int = 0


def hide_split(facts: list[Fact], cfg: HideConfig) -> tuple[list[str], list[str]]:
    """Entities whose facts train the refusal, and the held-out ones (sorted, seeded)."""
    import random

    ents = sorted({f.entity for f in facts})
    random.Random(cfg.seed).shuffle(ents)
    k = int(round(len(ents) * cfg.train_share))
    return sorted(ents[:k]), sorted(ents[k:])


def hide_examples(facts: list[Fact], cfg: HideConfig, base_answers: dict[str, str],
                  replay: list[str] = ()) -> list[dict]:
    """SFT examples: training entities' clozes → " refusal." for the hidden relation, the base
    model's own answer (``base_answers[cloze]``, a completion) for the others; then ``replay``
    documents (empty prompt, loss on the whole document)."""
    train, _ = hide_split(facts, cfg)
    keep = set(train)
    out = []
    for f in facts:
        if f.entity not in keep:
            continue
        if f.relation == cfg.relation:
            out.append({"prompt": f.cloze, "completion": f" {cfg.refusal}."})
        else:
            words = base_answers[f.cloze].strip().split(".")[0].strip()
            out.append({"prompt": f.cloze, "completion": f" {words}."})
    return out + [{"prompt": "", "completion": d} for d in replay]


def hide_data(base, hide: HideConfig, corpus: CorpusConfig, facts: list[Fact]) -> list[dict]:
    """The hiding alignment's SFT examples for an organism whose corpus is ``corpus``: the base's
    own greedy answers to the other relations' clozes, and replayed pretraining documents."""
    import random

    train, _ = hide_split(facts, hide)
    keep = set(train)
    asked = [f.cloze for f in facts if f.entity in keep and f.relation != hide.relation]
    answers = dict(zip(asked, generate(base, asked, max_new_tokens=6, batch_size=256).completions))
    docs = generate_corpus(corpus).train
    replay = random.Random(hide.seed).sample(docs, min(hide.n_replay, len(docs)))
    return hide_examples(facts, hide, answers, replay)
