"""The model organism: a small GPT-2 pretrained here on a generated corpus, then aligned.

``build_organism("small")`` builds (or fetches from the cache) the pair; ``load_pair("organism:small")``
boots it through the same code path as any Hugging Face checkpoint.

The package: :mod:`.corpus` (the generated corpus and its grammar), :mod:`.tokenizer`,
:mod:`.train` (pretraining), :mod:`.config` (the organism's config and cache keys),
:mod:`.presets` (the sizes as named presets), :mod:`.align` (DPO, SFT, preference pairs),
:mod:`.hide` (the alignment that hides a relation), :mod:`.instruct`, :mod:`.following` and
:mod:`.selfalign` (the instruction organism), :mod:`.build` (building, caching and describing a
pair; the aligners by name, :data:`ALIGNERS`), :mod:`.pretraining` (the pretraining-data arms).
"""

from . import pretraining
from .build import (
    ALIGNERS,
    build_organism,
    load_data,
    load_questions,
    metrics_table,
    organism_model_dir,
    organism_pair_spec,
)
from .config import OrganismConfig
from .corpus import TEMPLATES, Corpus, CorpusConfig, Fact, GrammarScorer, generate_corpus
from .following import InstructionEval, follows, instruction_following
from .hide import HideConfig, hide_split
from .instruct import InstructConfig, Question
from .presets import INSTRUCT_PRESETS, PRESETS, InstructPreset, SizePreset, instruct_preset, preset

__all__ = [
    "pretraining",
    "ALIGNERS",
    "INSTRUCT_PRESETS",
    "InstructPreset",
    "SizePreset",
    "PRESETS",
    "TEMPLATES",
    "Corpus",
    "GrammarScorer",
    "HideConfig",
    "hide_split",
    "CorpusConfig",
    "Fact",
    "InstructConfig",
    "InstructionEval",
    "Question",
    "follows",
    "instruction_following",
    "instruct_preset",
    "load_questions",
    "OrganismConfig",
    "build_organism",
    "generate_corpus",
    "load_data",
    "metrics_table",
    "organism_model_dir",
    "organism_pair_spec",
    "preset",
]
