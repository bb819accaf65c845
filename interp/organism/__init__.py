"""The model organism: a small GPT-2 pretrained here on a generated corpus, then aligned.

``build_organism("small")`` builds (or fetches from the cache) the pair; ``load_pair("organism:small")``
boots it through the same code path as any Hugging Face checkpoint.
"""

from . import pretraining
from .build import (
    PRESETS,
    HideConfig,
    OrganismConfig,
    build_organism,
    hide_split,
    instruct_preset,
    load_data,
    load_questions,
    metrics_table,
    organism_model_dir,
    organism_pair_spec,
    preset,
)
from .corpus import TEMPLATES, Corpus, CorpusConfig, Fact, GrammarScorer, generate_corpus
from .following import InstructionEval, follows, instruction_following
from .instruct import InstructConfig, Question

__all__ = [
    "pretraining",
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
