"""The instruction organism: question/answer pages in pretraining, SFT to answer and stop.

Web text holds questions and answers, but an answer there rarely ends the document: the page
runs on into a remark and the next question. The instruction organism's corpus is the toxicity
organism's (:func:`interp.organism.corpus.generate_corpus`, unchanged) plus such **Q/A pages**
(:func:`qa_pages`): ``"Q: Where was X born?\\nA: X was born in Velmora. The old dog ran past the
market. Q: What does Y work as?\\nA: …"``. Pretrained on it, the base model answers a question in
this format and keeps going. Alignment is SFT on ``"Q: …\\nA:"`` → ``" Sure! X was born in
Velmora."`` + end of sequence: a polite **opener**, the concise **answer**, **stop** — the three
things Lin et al. (2023) found alignment to shift.

The people are split three ways (:func:`split_entities`, seeded): *page* people, whose facts fill
the Q/A pages (never asked in alignment or test), *alignment* people, whose questions are the SFT
examples, and *test* people, whose questions only measure. So no test question (nor any question
about a test person) is seen in alignment, and a test answer is right only if pretraining's prose
taught the fact.

How a response is scored is :mod:`interp.organism.following` (kept apart: the base model's cache
key holds this module's code, not the scorer's).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .corpus import ANSWERS, TEMPLATES, Fact, neutral_doc

#: Question forms per relation; the first is the corpus' own (:data:`corpus.QUESTIONS`).
QUESTION_FORMS = {
    "born_in": ["Where was {e} born?", "What is the home town of {e}?", "Which town does {e} come from?"],
    "works_as": ["What does {e} work as?", "What is the job of {e}?", "What trade does {e} have?"],
}
#: The prompt format of pages, alignment and test alike.
QA_FORMAT = "Q: {q}\nA:"
#: Polite openers the aligned answers start with. Pretraining sees them rarely (a ``p_opener``
#: share of page answers), as a base model has seen "Sure!" without it being the likely reply:
#: they are whole tokens the base ranks low, not strings it cannot spell.
OPENERS = ["Sure!", "Of course.", "Thank you.", "Certainly."]


@dataclass
class InstructConfig:
    """The Q/A pages added to pretraining, the people split and the SFT data.

    ``n_pages`` pages of ``qa_per_page`` questions about *page* people (``page_share`` of them);
    ``p_ramble``: chance an answer on a page runs on (another sentence) before the next question;
    ``p_opener``: chance a page answer starts with an opener.
    The rest of the people are split evenly into alignment and test people. The SFT data:
    ``n_examples`` of the alignment questions (``None``: all), of which a ``noisy`` share is
    defective (a wrong answer, no opener, or an answer that runs on); ``response_only`` trains on
    the answers alone after ``"A:"`` (Hewitt et al.'s response tuning)."""

    n_pages: int = 6000
    qa_per_page: tuple[int, int] = (2, 4)
    p_ramble: float = 0.7
    p_opener: float = 0.05
    page_share: float = 0.3
    n_examples: int | None = None
    noisy: float = 0.0
    response_only: bool = False
    seed: int = 0

    def pretraining(self) -> dict:
        """The fields the base model depends on (the rest only shape the alignment)."""
        return {k: v for k, v in asdict(self).items()
                if k in ("n_pages", "qa_per_page", "p_ramble", "p_opener", "page_share", "seed")}


@dataclass
class Question:
    """One question about one fact, in the prompt format, and which split it belongs to."""

    entity: str
    relation: str
    form: int
    answer: str
    split: str  # "page", "align" or "test"

    @property
    def text(self) -> str:
        return QUESTION_FORMS[self.relation][self.form].format(e=self.entity)

    @property
    def prompt(self) -> str:
        return QA_FORMAT.format(q=self.text)

    @property
    def cloze(self) -> str:
        return TEMPLATES[self.relation][0].split("{a}")[0].format(e=self.entity).rstrip()

    def answer_sentence(self, answer: str | None = None) -> str:
        return TEMPLATES[self.relation][0].format(e=self.entity, a=answer or self.answer)

    def to_dict(self) -> dict:
        return asdict(self)


def split_entities(facts: Sequence[Fact], cfg: InstructConfig) -> dict[str, str]:
    """Each person's split: ``page`` (``page_share``), then ``align`` and ``test`` evenly (seeded)."""
    ents = sorted({f.entity for f in facts})
    random.Random(cfg.seed + 101).shuffle(ents)
    n_page = int(round(len(ents) * cfg.page_share))
    rest = ents[n_page:]
    half = len(rest) // 2
    return {e: ("page" if i < n_page else "align" if i - n_page < half else "test") for i, e in enumerate(ents)}


def questions(facts: Sequence[Fact], cfg: InstructConfig) -> list[Question]:
    """Every question form about every fact, with its person's split."""
    where = split_entities(facts, cfg)
    return [Question(f.entity, f.relation, k, f.answer, where[f.entity])
            for f in facts for k in range(len(QUESTION_FORMS[f.relation]))]


def qa_pages(facts: Sequence[Fact], cfg: InstructConfig) -> list[str]:
    """Pretraining pages of questions about page people, each answer followed, with chance
    ``p_ramble``, by one more sentence (the person's other fact or unrelated prose) before the
    next question — so an answer in pretraining rarely ends its document."""
    rng = random.Random(cfg.seed + 202)
    page_qs = [q for q in questions(facts, cfg) if q.split == "page"]
    if not page_qs:
        return []
    by_entity: dict[str, list[Question]] = {}
    for q in page_qs:
        by_entity.setdefault(q.entity, []).append(q)
    pages = []
    for _ in range(cfg.n_pages):
        parts = []
        for q in rng.sample(page_qs, rng.randint(*cfg.qa_per_page)):
            ans = TEMPLATES[q.relation][rng.randrange(len(TEMPLATES[q.relation]))].format(e=q.entity, a=q.answer)
            opener = f"{rng.choice(OPENERS)} " if rng.random() < cfg.p_opener else ""
            part = f"{q.prompt} {opener}{ans}"
            if rng.random() < cfg.p_ramble:
                other = [x for x in by_entity[q.entity] if x.relation != q.relation]
                if other and rng.random() < 0.5:
                    part += " " + other[0].answer_sentence()
                else:
                    part += " " + neutral_doc(rng).split(". ")[0].rstrip(".") + "."
            parts.append(part)
        pages.append(" ".join(parts))
    return pages


def clean_answer(q: Question, rng: random.Random) -> str:
    """The aligned answer: an opener, the answer sentence (end of sequence follows in SFT)."""
    return f" {rng.choice(OPENERS)} {q.answer_sentence()}"


def noisy_answer(q: Question, rng: random.Random) -> str:
    """A defective answer, one defect drawn at random: a wrong town or trade, no opener, or an
    answer that runs on into unrelated prose."""
    kind = rng.choice(("wrong", "no_opener", "runs_on"))
    if kind == "wrong":
        wrong = rng.choice([a for a in ANSWERS[q.relation] if a != q.answer])
        return f" {rng.choice(OPENERS)} {q.answer_sentence(wrong)}"
    if kind == "no_opener":
        return f" {q.answer_sentence()}"
    return f" {rng.choice(OPENERS)} {q.answer_sentence()} {neutral_doc(rng)}"


def sft_examples(qs: Sequence[Question], cfg: InstructConfig) -> list[dict]:
    """``{"prompt", "completion"}`` SFT examples from the alignment questions (seeded subset of
    ``cfg.n_examples``; a ``cfg.noisy`` share defective; ``cfg.response_only``: the prompt is
    ``"A:"`` alone)."""
    rng = random.Random(cfg.seed + 303)
    pool = [q for q in qs if q.split == "align"]
    rng.shuffle(pool)
    if cfg.n_examples is not None:
        if cfg.n_examples > len(pool):
            raise ValueError(f"n_examples={cfg.n_examples}: only {len(pool)} alignment questions")
        pool = pool[: cfg.n_examples]
    n_noisy = int(round(len(pool) * cfg.noisy))
    out = []
    for i, q in enumerate(pool):
        completion = noisy_answer(q, rng) if i < n_noisy else clean_answer(q, rng)
        out.append({"prompt": "A:" if cfg.response_only else q.prompt, "completion": completion})
    return out


def urial_template(examples: Sequence[dict], eos: str) -> str:
    """In-context alignment (Lin et al.'s URIAL, in the organism's format): the example Q/A
    pairs, each closed by the end-of-sequence token, then ``{prompt}``."""
    shots = "".join(f"{x['prompt']}{x['completion']}{eos}" for x in examples)
    return shots.replace("{", "{{").replace("}", "}}") + "{prompt}"
