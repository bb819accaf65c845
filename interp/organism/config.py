"""The organism's configuration and its cache keys: what a base and an aligned folder are built
from, hashed with the source of the code that builds them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..io import code_hash, stable_hash
from .align import AlignConfig
from .corpus import CorpusConfig
from .hide import HideConfig
from .instruct import InstructConfig
from .selfalign import SelfAlignConfig
from .train import ModelConfig, TrainConfig

#: Bump when a change to the code changes what a config builds. The cache keys also hold a
#: hash of the source of every module that builds an entry (:data:`BASE_CODE`,
#: :data:`ALIGNED_CODE`), so an entry written by older code is never read back as current.
RECIPE_VERSION = 3  # 3: keys hold the building code's hash (a stale base once outlived a fix)

#: Modules whose code makes a base folder (corpus, tokenizer, pretraining).
BASE_CODE = ("interp.organism.corpus", "interp.organism.tokenizer", "interp.organism.train")
#: Modules whose code makes an aligned folder: sampling, scoring, alignment, measurement.
ALIGNED_CODE = BASE_CODE + (
    "interp.organism.align", "interp.organism.build", "interp.organism.config", "interp.organism.hide", "interp.generate", "interp.tokens",
    "interp.score", "interp.evaluate", "interp.steer", "interp.pair", "interp.hooks")
#: The instruction organism's own modules (in its keys only, so the other presets' keys keep):
#: its data for the base, its data and scoring for the aligned model.
INSTRUCT_CODE = ("interp.organism.instruct",)
INSTRUCT_ALIGNED_CODE = INSTRUCT_CODE + ("interp.organism.following",)


@dataclass
class EvalConfig:
    n_prompts: int = 300
    n_samples: int = 3
    max_new_tokens: int = 12
    temperature: float = 1.0
    seed: int = 1234


@dataclass
class OrganismConfig:
    size: str
    corpus: CorpusConfig
    vocab_size: int
    model: ModelConfig
    train: TrainConfig
    align: AlignConfig
    eval: EvalConfig = field(default_factory=EvalConfig)
    n_align_prompts: int = 500
    hide: HideConfig = field(default_factory=HideConfig)
    instruct: InstructConfig | None = None  # the instruction organism's Q/A pages and SFT data
    selfalign: SelfAlignConfig | None = None  # instead of SFT: DPO on the base's own judged answers

    def base_key(self) -> str:
        d = {"v": RECIPE_VERSION, "corpus": asdict(self.corpus), "vocab": self.vocab_size,
             "model": asdict(self.model), "train": asdict(self.train),
             "code": code_hash(BASE_CODE)}
        if self.instruct is not None:  # only the instruction organism's base depends on it
            d["instruct"] = self.instruct.pretraining()
            d["instruct_code"] = code_hash(INSTRUCT_CODE)
        return stable_hash(d, 12)

    def aligned_key(self) -> str:
        d = {"base": self.base_key(), "align": asdict(self.align), "eval": asdict(self.eval),
             "n_align_prompts": self.n_align_prompts, "code": code_hash(ALIGNED_CODE)}
        if self.align.method == "hide":  # only the hiding alignment depends on it
            d["hide"] = asdict(self.hide)
        if self.instruct is not None:
            d["instruct"] = asdict(self.instruct)
            d["instruct_code"] = code_hash(INSTRUCT_ALIGNED_CODE)
        if self.selfalign is not None:
            d["selfalign"] = asdict(self.selfalign)
            d["selfalign_code"] = code_hash(("interp.organism.selfalign",))
        return stable_hash(d, 12)


#: ``dpo``/``sft``: against toxicity; ``hide``: refuse one relation's facts (see :class:`HideConfig`);
#: ``instruct``: SFT to answer questions politely and stop, on a base pretrained with Q/A pages
#: (:mod:`interp.organism.instruct`).
ALIGN_METHODS = ("dpo", "sft", "hide", "instruct")  # the keys of ALIGNERS, in this order
