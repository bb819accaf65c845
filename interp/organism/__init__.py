"""The model organism: a small GPT-2 pretrained here on a generated corpus, then aligned.

``build_organism("small")`` builds (or fetches from the cache) the pair; ``load_pair("organism:small")``
boots it through the same code path as any Hugging Face checkpoint.
"""

from .build import (
    OrganismConfig,
    build_organism,
    load_data,
    metrics_table,
    organism_model_dir,
    organism_pair_sources,
    preset,
)
from .corpus import Corpus, CorpusConfig, Fact, generate_corpus

__all__ = [
    "Corpus",
    "CorpusConfig",
    "Fact",
    "OrganismConfig",
    "build_organism",
    "generate_corpus",
    "load_data",
    "metrics_table",
    "organism_model_dir",
    "organism_pair_sources",
    "preset",
]
