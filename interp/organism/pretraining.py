"""Pretraining-data experiments on the organism: what a fixed budget of tokens buys when its
documents are repeated, duplicated or rephrased.

Every corpus here is a **stream** of documents trained on exactly once, in a seeded shuffled
order, so the arms of a comparison see the same number of documents and (up to the length of
the documents drawn) the same number of tokens:

* **repetition** (Muennighoff et al. 2023): ``U`` unique documents each repeated ``E`` times,
  ``U·E`` fixed. The documents are the organism's neutral and dialogue prose plus mentions of
  facts: every fact is mentioned ``mentions`` times in the stream whatever ``E`` is, in
  ``mentions / E`` distinct documents (each its own phrasing and context), so repetition trades
  distinct mentions for copies. The unique sets are nested: the documents of ``E = 16`` are
  among those of ``E = 8``, and so on.
* **duplication** (Lee et al. 2022): the same budget with ``dup_share`` of the prose made of
  copies of a few documents (``dup_copies`` copies each); its deduplicated twin is the
  repetition stream at ``E = 1``.
* **biographies** (Allen-Zhu & Li 2023): every person has a birth town, a trade and a home
  town, told in a short biography seen ``exposures`` times — as one fixed text
  (``phrasings = 1``) or as ``phrasings`` texts whose sentences take different templates in a
  permuted order (knowledge augmentation). The one-phrasing biography is the first of the
  five, so the two corpora hold the same people, facts and exposures.

All arms of one seed share a tokenizer trained on the union of their texts, so validation
losses compare token for token. Built models are cached like the organism's
(``<cache>/organism/data-<kind>-<hash>/``: ``model/``, ``data.json``, ``manifest.json``),
written under a temporary name and renamed when whole.
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..io import atomic_dir, code_hash, hash_texts, read_json, stable_hash, write_json
from .corpus import ANSWERS, CITIES, JOBS, TEMPLATES, Fact, _entities, dialogue_doc, neutral_doc
from .train import ModelConfig, TrainConfig, gpt2_model, lr_at, pack

#: Modules whose code makes a data-experiment model (in its cache key).
DATA_CODE = ("interp.organism.pretraining", "interp.organism.corpus", "interp.organism.tokenizer",
             "interp.organism.train")

#: Biography sentences per attribute; ``{s}`` is the subject (the full name in a biography's
#: first sentence, "this person" after it), ``{a}`` the answer.
BIO_TEMPLATES = {
    "born_in": ["{s} was born in {a}.", "{s} came into the world in {a}.", "The birthplace of {s} is {a}.",
                "{s} spent the first years of life in {a}.", "It was in {a} that {s} was born."],
    "works_as": ["{s} works as a {a}.", "By trade, {s} is a {a}.", "The job of {s} is {a}.",
                 "{s} earns a living as a {a}.", "Every day {s} goes to work as a {a}."],
    "lives_in": ["{s} lives in {a}.", "The home of {s} is in {a}.", "{s} now makes a home in {a}.",
                 "These days {s} can be found in {a}.", "{s} settled down in {a}."],
}
#: Questions the extraction fine-tuning asks (never seen in pretraining).
BIO_QUESTIONS = {"born_in": "Where was {e} born?", "works_as": "What does {e} work as?",
                 "lives_in": "Where does {e} live?"}
BIO_ANSWERS = {"born_in": CITIES, "works_as": JOBS, "lives_in": CITIES}
LATER_SUBJECT = "this person"


@dataclass
class Stream:
    """One arm's training stream (``docs``, in training order), the facts it mentions (each with
    how often and in which phrasings), fresh validation documents no arm trains on, and what
    made it (``info``)."""

    docs: list[str]
    facts: list[Fact]
    val: list[str]
    info: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- repetition


@dataclass
class DataConfig:
    """The repetition and duplication streams: ``n_stream`` documents, of which every one of
    ``n_people × 2`` facts takes ``mentions``; the rest is the organism's prose."""

    n_stream: int = 96_000
    n_people: int = 300
    mentions: int = 32
    p_dialogue: float = 0.65
    n_val: int = 2000
    seed: int = 0

    @property
    def n_prose(self) -> int:
        return self.n_stream - 2 * self.n_people * self.mentions


def _prose(rng: random.Random, n: int, p_dialogue: float) -> list[str]:
    return [dialogue_doc(rng) if rng.random() < p_dialogue else neutral_doc(rng) for _ in range(n)]


def _fresh_prose(seed: int, n: int, p_dialogue: float, avoid) -> list[str]:
    """``n`` distinct prose documents from their own seeded stream, none of them in ``avoid``
    (validation text no arm trains on)."""
    rng, seen, out = random.Random(seed), set(avoid), []
    while len(out) < n:
        d = _prose(rng, 1, p_dialogue)[0]
        if d not in seen:
            out.append(d)
            seen.add(d)
    return out


def _master(cfg: DataConfig):
    """The seed's master lists: ``n_prose`` prose documents, each fact's ``mentions`` distinct
    mention documents (a prose sentence, then the fact in the next of its four phrasings,
    starting from a random one), and the validation documents (fresh prose, none in the master
    list)."""
    if cfg.n_prose <= 0:
        raise ValueError(f"{cfg.n_stream} documents cannot hold {cfg.n_people} people × 2 facts × "
                         f"{cfg.mentions} mentions")
    rng = random.Random(cfg.seed)
    facts = []
    for e in _entities(rng, cfg.n_people):
        for rel in TEMPLATES:
            facts.append(Fact(e, rel, rng.choice(ANSWERS[rel]), cfg.mentions, 0, []))
    mentions = {}
    for f in facts:
        t0 = rng.randrange(len(TEMPLATES[f.relation]))
        rows = []
        for j in range(cfg.mentions):
            t = (t0 + j) % len(TEMPLATES[f.relation])
            context = neutral_doc(rng).split(". ")[0].rstrip(".") + "."
            rows.append((t, f"{context} {TEMPLATES[f.relation][t].format(e=f.entity, a=f.answer)}"))
        mentions[(f.entity, f.relation)] = rows
    prose = _prose(rng, cfg.n_prose, cfg.p_dialogue)
    return facts, mentions, prose, _fresh_prose(cfg.seed + 7919, cfg.n_val, cfg.p_dialogue, prose)


def _repeat(docs: list[str], times: int) -> list[str]:
    return [d for d in docs for _ in range(times)]


def repetition_stream(cfg: DataConfig, repeats: int) -> Stream:
    """``U`` unique documents each ``repeats`` times (``U · repeats`` = ``cfg.n_stream``): the
    first ``n_prose / repeats`` prose documents and each fact's first ``mentions / repeats``
    mentions."""
    if repeats < 1 or cfg.mentions % repeats or cfg.n_prose % repeats:
        raise ValueError(f"repeats={repeats} must divide mentions ({cfg.mentions}) and the prose "
                         f"documents ({cfg.n_prose})")
    facts, mentions, prose, val = _master(cfg)
    docs = _repeat(prose[: cfg.n_prose // repeats], repeats)
    out = []
    for f in facts:
        rows = mentions[(f.entity, f.relation)][: cfg.mentions // repeats]
        docs += _repeat([d for _, d in rows], repeats)
        seen = sorted({t for t, _ in rows})
        out.append(Fact(f.entity, f.relation, f.answer, cfg.mentions, len(seen), seen))
    random.Random(cfg.seed + 1).shuffle(docs)
    return Stream(docs, out, val, {"kind": "repetition", "repeats": repeats,
                                   "unique_docs": len(set(docs)), **asdict(cfg)})


def duplication_stream(cfg: DataConfig, dup_share: float = 0.5, dup_copies: int = 100) -> Stream:
    """The repetition stream at ``E = 1`` with ``dup_share`` of its prose replaced by
    ``dup_copies`` copies each of a few other prose documents (the facts' mentions unchanged)."""
    facts, mentions, prose, val = _master(cfg)
    n_dup_docs = max(1, round(cfg.n_prose * dup_share / dup_copies))
    n_unique = cfg.n_prose - n_dup_docs * dup_copies
    if n_unique <= 0:
        raise ValueError(f"dup_share={dup_share} with {dup_copies} copies leaves no unique prose")
    docs = prose[:n_unique] + _repeat(prose[n_unique: n_unique + n_dup_docs], dup_copies)
    out = []
    for f in facts:
        rows = mentions[(f.entity, f.relation)]
        docs += [d for _, d in rows]
        seen = sorted({t for t, _ in rows})
        out.append(Fact(f.entity, f.relation, f.answer, cfg.mentions, len(seen), seen))
    random.Random(cfg.seed + 1).shuffle(docs)
    return Stream(docs, out, val, {"kind": "duplication", "dup_share": dup_share, "dup_copies": dup_copies,
                                   "dup_docs": n_dup_docs, "unique_docs": len(set(docs)), **asdict(cfg)})


def repetition_tokenizer_texts(cfg: DataConfig) -> list[str]:
    """Every text any arm of the seed can hold (the ``E = 1`` stream): the shared tokenizer's data."""
    return repetition_stream(cfg, 1).docs


# ----------------------------------------------------------------------------- biographies


@dataclass
class BioConfig:
    """The biography streams: ``n_people`` people, each biography seen ``exposures`` times
    (``exposures / phrasings`` copies of each phrasing), among ``n_prose`` prose documents."""

    n_people: int = 600
    exposures: int = 40
    n_prose: int = 16_000
    p_dialogue: float = 0.65
    max_phrasings: int = 5
    n_val: int = 500
    seed: int = 0


def _sentence(rel: str, template: int, subject: str, answer: str) -> str:
    s = BIO_TEMPLATES[rel][template].format(s=subject, a=answer)
    return s[0].upper() + s[1:]


def biography(entity: str, answers: dict[str, str], order: list[str], templates: dict[str, int]) -> str:
    """One biography: the attributes in ``order``, each in its template; the first sentence
    names the person, the others say "this person"."""
    return " ".join(_sentence(rel, templates[rel], entity if i == 0 else LATER_SUBJECT, answers[rel])
                    for i, rel in enumerate(order))


def _people(cfg: BioConfig, *, plans: bool = False):
    """Per person: answers, and ``max_phrasings`` biographies (random templates, permuted order);
    with ``plans`` each biography's ``(order, templates)`` instead of its text."""
    rng = random.Random(cfg.seed)
    rels = list(BIO_TEMPLATES)
    people = []
    for e in _entities(rng, cfg.n_people):
        answers = {r: rng.choice(BIO_ANSWERS[r]) for r in rels}
        bios, made = [], []
        while len(bios) < cfg.max_phrasings:
            order = rng.sample(rels, len(rels))
            tpl = {r: rng.randrange(len(BIO_TEMPLATES[r])) for r in rels}
            b = biography(e, answers, order, tpl)
            if b not in bios:
                bios.append(b)
                made.append((order, tpl))
        people.append((e, answers, made if plans else bios))
    return people


def bio_prompts(cfg: BioConfig) -> dict[tuple[str, str], str]:
    """Per ``(entity, relation)``: the person's first biography up to that attribute's answer,
    e.g. ``"Zorvan Dundra spent the first years of life in Oberlin. This person earns a living
    as a"`` — where a model that stored the biography says the answer."""
    out = {}
    for e, answers, plans in _people(cfg, plans=True):
        order, tpl = plans[0]
        for i, rel in enumerate(order):
            before = biography(e, answers, order[:i], tpl) if i else ""
            head = _sentence(rel, tpl[rel], e if i == 0 else LATER_SUBJECT, "\x00").split("\x00")[0].rstrip()
            out[(e, rel)] = f"{before} {head}".strip()
    return out


def bio_stream(cfg: BioConfig, phrasings: int) -> Stream:
    """Each person's first ``phrasings`` biographies, ``exposures / phrasings`` copies each,
    among the prose; facts: three per person."""
    if phrasings < 1 or phrasings > cfg.max_phrasings or cfg.exposures % phrasings:
        raise ValueError(f"phrasings={phrasings} must be in 1..{cfg.max_phrasings} and divide "
                         f"exposures ({cfg.exposures})")
    people = _people(cfg)
    rng = random.Random(cfg.seed + 1)
    docs = _prose(rng, cfg.n_prose, cfg.p_dialogue)
    facts = []
    for e, answers, bios in people:
        docs += _repeat(bios[:phrasings], cfg.exposures // phrasings)
        facts += [Fact(e, r, a, cfg.exposures, phrasings, []) for r, a in answers.items()]
    val = _fresh_prose(cfg.seed + 7919, cfg.n_val, cfg.p_dialogue, docs)
    random.Random(cfg.seed + 2).shuffle(docs)
    return Stream(docs, facts, val, {"kind": "biographies", "phrasings": phrasings,
                                     "unique_docs": len(set(docs)), **asdict(cfg)})


def bio_tokenizer_texts(cfg: BioConfig) -> list[str]:
    """The prose and every phrasing of every biography: the shared tokenizer's data."""
    people = _people(cfg)
    rng = random.Random(cfg.seed + 1)
    return _prose(rng, cfg.n_prose, cfg.p_dialogue) + [b for _, _, bios in people for b in bios]


def first_biography(cfg: BioConfig) -> dict[str, str]:
    """Each person's first biography (the one the one-phrasing stream holds)."""
    return {e: bios[0] for e, _, bios in _people(cfg)}


# ----------------------------------------------------------------------------- training


def pretrain_once(model, rows: torch.Tensor, cfg: TrainConfig, *, progress: bool = True):
    """One pass over ``rows`` ``[n_rows n_ctx]`` in a seeded random order, batches of
    ``cfg.batch_size`` (``cfg.steps`` is ignored: the pass sets the step count), AdamW with the
    organism's warm-up and cosine schedule. Returns the loss curve ``[(step, loss)]`` and seconds."""
    steps = len(rows) // cfg.batch_size
    if steps < 1:
        raise ValueError(f"{len(rows)} rows make no batch of {cfg.batch_size}")
    sched = TrainConfig(**{**asdict(cfg), "steps": steps})
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(cfg.seed))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    model.train()
    curve, t0 = [], time.time()
    for step in tqdm(range(steps), desc="pretrain (one pass)", disable=not progress):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, sched)
        batch = rows[order[step * cfg.batch_size: (step + 1) * cfg.batch_size]]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 10 == 0 or step == steps - 1:
            curve.append((step, round(loss.item(), 4)))
    model.eval()
    return curve, time.time() - t0


@dataclass
class DataTrainConfig:
    """Architecture and optimiser of every data-experiment model (the small organism's)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    vocab_size: int = 1024
    batch_size: int = 32
    lr: float = 2e-3
    warmup: int = 30
    seed: int = 0


#: Per size: the repetition/duplication streams, the biography streams, the training. small: 96k
#: documents per repetition stream (≈ 3M tokens), 300 people × 2 facts mentioned 64 times each;
#: 400 people whose biography is seen 200 times (a pilot on seed 99 with 40 exposures left the
#: one-phrasing organism completing only 19% of its own biographies, so nothing could be asked of
#: extraction; at 200, 98%).
DATA_PRESETS = {
    "tiny": (dict(n_stream=4800, n_people=20, mentions=16, n_val=200),
             dict(n_people=40, exposures=20, n_prose=1000, n_val=100),
             dict(model=ModelConfig(n_layer=2, n_embd=64, n_head=2, n_inner=256), vocab_size=512,
                  lr=3e-3, warmup=10)),
    "small": (dict(mentions=64), dict(n_people=400, exposures=200), dict()),
}


def data_preset(size: str, seed: int = 0) -> tuple[DataConfig, BioConfig, DataTrainConfig]:
    if size not in DATA_PRESETS:
        raise ValueError(f"no pretraining-data preset {size!r}; use one of {sorted(DATA_PRESETS)}")
    d, b, t = DATA_PRESETS[size]
    return DataConfig(**d, seed=seed), BioConfig(**b, seed=seed), DataTrainConfig(**t, seed=seed)


def _root() -> Path:
    from ..io import cache_dir

    return cache_dir() / "organism"


def build_stream_model(name: str, stream: Stream, tokenizer_texts: list[str], train: DataTrainConfig, *,
                       progress: bool = True, log=print) -> Path:
    """Train a fresh organism on one pass over ``stream`` (tokenizer trained on
    ``tokenizer_texts``); cached by the stream's recipe (``stream.info``), the tokenizer's data,
    the training config and this code. Returns the folder (``model/``, ``data.json``,
    ``manifest.json``)."""
    from .build import _entry_ok, _save_hf, weights_hash
    from .tokenizer import train_tokenizer

    key = stable_hash({"info": stream.info, "tok": hash_texts(tokenizer_texts), "train": asdict(train),
                       "code": code_hash(DATA_CODE)}, 12)
    final = _root() / f"data-{name}-{key}"
    if _entry_ok(final, log):
        return final
    t = time.time()
    tok = train_tokenizer(tokenizer_texts, train.vocab_size)
    rows = pack(tok, stream.docs, train.model.n_ctx)
    tok_s = time.time() - t
    log(f"[pretraining:{name}] {len(stream.docs)} documents ({stream.info.get('unique_docs')} unique), "
        f"{rows.numel()} tokens, one pass of {len(rows) // train.batch_size} steps")
    model = gpt2_model(train.model, tok, train.seed)
    tc = TrainConfig(steps=0, batch_size=train.batch_size, lr=train.lr, warmup=train.warmup, seed=train.seed)
    curve, pre_s = pretrain_once(model, rows, tc, progress=progress)
    with atomic_dir(final) as tmp:
        _save_hf(model, tok, tmp / "model")
        write_json(tmp / "data.json", {"facts": [f.to_dict() for f in stream.facts], "val": stream.val})
        write_json(tmp / "manifest.json", {
            "name": name, "stream": stream.info, "train": asdict(train),
            "n_docs": len(stream.docs), "n_tokens": int(rows.numel()), "steps": len(rows) // train.batch_size,
            "sha256": hash_texts(stream.docs), "tokenizer_sha256": hash_texts(tokenizer_texts),
            "weights_sha256": weights_hash(model), "loss_curve": curve,
            "timings": {"tokenizer_s": tok_s, "pretrain_s": pre_s},
        })
    return final


def load_stream_model(folder: Path):
    """The bridge, the facts and the validation documents of a built data-experiment model."""
    from ..pair import load_model

    d = read_json(Path(folder) / "data.json")
    m = read_json(Path(folder) / "manifest.json")
    return load_model(str(Path(folder) / "model"), name=m["name"]), [Fact(**f) for f in d["facts"]], d["val"]
