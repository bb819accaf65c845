"""The organism's sizes as named presets (:class:`SizePreset`, :class:`InstructPreset`) and the
configs they make (:func:`preset`, :func:`instruct_preset`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .align import AlignConfig
from .config import ALIGN_METHODS, EvalConfig, OrganismConfig
from .corpus import CorpusConfig
from .instruct import InstructConfig
from .selfalign import SelfAlignConfig
from .train import ModelConfig, TrainConfig


@dataclass(frozen=True)
class SizePreset:
    """What differs between organism sizes (everything else is shared): the corpus (documents,
    people), the tokenizer's vocabulary, the GPT-2 (layers, width, heads, MLP width), its
    pretraining (steps, peak lr, warm-up), the alignment (DPO and SFT step sizes, steps, batch, how
    many training prompts it samples from) and the metrics' evaluation (prompts × samples)."""

    n_docs: int
    n_people: int
    vocab: int
    n_layers: int
    d_model: int
    n_heads: int
    d_mlp: int
    steps: int
    lr: float
    warmup: int
    dpo_lr: float
    sft_lr: float
    align_steps: int
    align_batch: int
    eval_prompts: int
    eval_samples: int
    align_prompts: int


@dataclass(frozen=True)
class InstructPreset:
    """The instruction organism of one size: people (more than the other presets, so that ~1,000
    alignment questions exist), documents, pretraining steps, Q/A pages; then the SFT (lr, steps,
    batch), the same for every amount of data so that arms differ in their data alone; and the DPO
    on the base's own judged answers (:mod:`interp.organism.selfalign`): lr, steps, batch."""

    n_people: int
    n_docs: int
    steps: int
    n_pages: int
    sft_lr: float
    sft_steps: int
    sft_batch: int
    dpo_lr: float
    dpo_steps: int
    dpo_batch: int


INSTRUCT_PRESETS = {
    "tiny": InstructPreset(n_people=60, n_docs=6000, steps=400, n_pages=1000, sft_lr=3e-4, sft_steps=60,
                           sft_batch=16, dpo_lr=2e-5, dpo_steps=40, dpo_batch=16),
    "small": InstructPreset(n_people=600, n_docs=50000, steps=1500, n_pages=6000, sft_lr=3e-4, sft_steps=300,
                            sft_batch=32, dpo_lr=5e-6, dpo_steps=300, dpo_batch=32),
}


#: tiny: 2 layers, d_model 64, d_mlp 256, 6k documents — enough to learn the dialogue grammar
#: and its insults, not the rarer facts (tests, < 1 min). small: 4 layers, d_model 128, d_mlp
#: 512, 40k documents (~0.8M tokens, ~1.4 epochs), the size at which the feasibility run found
#: the probe, the value vectors and the residual shift (demo and figures, < 5 min). knowledge:
#: small trained 1,500 steps (~3.5 epochs) so that its frequent facts are learned. facts: the
#: knowledge organism with five times the people (2,000 facts), 60k documents, 2,500 steps.
_SMALL = SizePreset(n_docs=40000, n_people=200, vocab=1024, n_layers=4, d_model=128, n_heads=4, d_mlp=512,
                    steps=450, lr=2e-3, warmup=30, dpo_lr=2e-6, sft_lr=1e-5, align_steps=300, align_batch=32,
                    eval_prompts=300, eval_samples=3, align_prompts=500)
PRESETS = {
    "tiny": SizePreset(n_docs=6000, n_people=40, vocab=512, n_layers=2, d_model=64, n_heads=2, d_mlp=256,
                       steps=250, lr=3e-3, warmup=20, dpo_lr=2e-5, sft_lr=1e-4, align_steps=40, align_batch=16,
                       eval_prompts=100, eval_samples=2, align_prompts=200),
    "small": _SMALL,
    "knowledge": dataclasses.replace(_SMALL, steps=1500),
    "facts": dataclasses.replace(_SMALL, n_docs=60000, n_people=1000, steps=2500),
}


def preset(size: str, seed: int = 0, align: str = "dpo") -> OrganismConfig:
    """The organism of one size (:data:`PRESETS`), seeded, with its alignment."""
    if align not in ALIGN_METHODS:
        raise ValueError(f"align must be one of {ALIGN_METHODS}")
    if size not in PRESETS:
        raise ValueError(f"unknown organism size {size!r}; use one of {SIZES}")
    p = PRESETS[size]
    if align == "instruct":
        return instruct_preset(size, seed)
    if align == "hide":  # a short SFT on a few hundred cloze examples, the same for every size
        al = AlignConfig(method="hide", lr=3e-4, steps=200, batch_size=32, seed=seed)
    else:
        al = AlignConfig(method=align, lr=p.dpo_lr if align == "dpo" else p.sft_lr, steps=p.align_steps,
                         batch_size=p.align_batch, seed=seed)
    return OrganismConfig(
        size=size,
        corpus=CorpusConfig(n_docs=p.n_docs, n_entities=p.n_people, seed=seed),
        vocab_size=p.vocab,
        model=ModelConfig(n_layer=p.n_layers, n_embd=p.d_model, n_head=p.n_heads, n_inner=p.d_mlp, n_ctx=64),
        train=TrainConfig(steps=p.steps, batch_size=32, lr=p.lr, warmup=p.warmup, seed=seed),
        align=al,
        eval=EvalConfig(n_prompts=p.eval_prompts, n_samples=p.eval_samples, seed=seed + 1234),
        n_align_prompts=p.align_prompts,
    )


def instruct_preset(size: str, seed: int = 0, judge: str | None = None, **instruct) -> OrganismConfig:
    """The instruction organism of one size (:data:`INSTRUCT_PRESETS`; the architecture of
    :data:`PRESETS`), seeded; ``instruct`` overrides :class:`InstructConfig` fields (the SFT data:
    ``n_examples``, ``noisy``, ``response_only``). With ``judge`` (one of
    :data:`interp.organism.selfalign.JUDGES`) the alignment is DPO on the base's own answers
    preferred by that judge (:class:`InstructPreset`'s DPO fields) instead of SFT."""
    if size not in INSTRUCT_PRESETS:
        raise ValueError(f"no instruction organism of size {size!r}; use one of {sorted(INSTRUCT_PRESETS)}")
    p = INSTRUCT_PRESETS[size]
    cfg = preset(size, seed=seed, align="sft")
    align = (AlignConfig(method="instruct", lr=p.sft_lr, steps=p.sft_steps, batch_size=p.sft_batch, seed=seed)
             if judge is None else
             AlignConfig(method="instruct", lr=p.dpo_lr, steps=p.dpo_steps, batch_size=p.dpo_batch, seed=seed))
    return dataclasses.replace(
        cfg, corpus=dataclasses.replace(cfg.corpus, n_docs=p.n_docs, n_entities=p.n_people),
        model=dataclasses.replace(cfg.model, n_ctx=128),  # room for in-context examples (URIAL)
        train=dataclasses.replace(cfg.train, steps=p.steps),
        align=align, instruct=InstructConfig(n_pages=p.n_pages, seed=seed, **instruct),
        selfalign=None if judge is None else SelfAlignConfig(judge=judge, seed=seed))


#: Organism presets. ``knowledge``: the small architecture trained ~3.5 epochs instead of ~1.4,
#: so that frequent facts are learned (``small`` recalls 11% of its facts, chance is 6%).
#: ``facts``: the knowledge organism at power — 1,000 people (2,000 facts at the same spread of
#: frequencies, so every SliCK category holds hundreds of facts), 60k documents, 2,500 steps.
SIZES = ("tiny", "small", "knowledge", "facts")
#: The alignment a bare ``organism:<size>`` pair name means.
DEFAULT_ALIGN = {"knowledge": "hide", "facts": "hide"}
