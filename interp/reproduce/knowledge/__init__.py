"""``interp reproduce knowledge``: what the organism knows, what fine-tuning on each kind of fact
does (Gekhman et al. 2024), and knowledge an alignment hides without erasing it.

The pair is ``organism:<size>:hide`` (``organism:knowledge`` by default): the base organism and
the same model fine-tuned to answer "unknown" for one relation (``works_as``) on half the
entities. Five parts, each measured on held-out facts, with its sample size:

1. **levels**: SliCK categories of every fact in the base (few-shot greedy and sampled), by
   pretraining frequency and number of paraphrases; zero-shot recall under a phrasing the fact was
   never seen in;
2. **fine-tuning** the base on closed-book QA pairs drawn from one category at a time (same size),
   train fit and held-out accuracy per epoch, early-stopped and at convergence;
3. **hidden knowledge**: accuracy of base and aligned on hidden facts (held-out entities) and on
   facts never hidden; the answer read from the aligned model's residual stream (logit lens
   restricted to the candidate answers, a linear probe);
4. **reactivation**: ablating a refusal direction (difference in means, Arditi et al. 2024),
   subtracting the residual offset, zeroing the neurons that write the refusal — each with a
   random control of the same size;
5. **relearning**: a few SFT steps on the hidden relation for the *training* entities, accuracy on
   the held-out ones (which the aligned model still knows) against held-out facts it never knew.

Findings are judged by criteria fixed in :func:`findings` before the numbers are looked at,
with the statistics of the toxicity work (:mod:`interp.stats`): every fact counted once, paired
tests where the same facts are measured twice (the same test facts under two fine-tunings, the
same hidden facts with an intervention and its control), permutation tests between disjoint
sets of facts, Holm across the claims, and ``--seeds`` rebuilding the organism per seed.

The package: :mod:`.config` (the config, presets, Gekhman et al.'s numbers), :mod:`.per_fact`
(the per-fact record every claim is tested on), :mod:`.steps` (parts 1–2 and their typed
results), :mod:`.hidden` (parts 3–5 and theirs), :mod:`.claims` (the findings), :mod:`.report`
(the report's JSON, markdown and figures), :mod:`.pipeline` (:func:`run`). Over seeds:
``interp.reproduce.get("knowledge").run_seeds``. Everything public is importable from here.
"""

from . import claims, config, hidden, per_fact, pipeline, report, steps
from .claims import findings, share_slopes
from .config import GEKHMAN_ET_AL, PRESETS, SIZE_PRESETS, KnowledgeConfig, config_for
from .hidden import (
    Hidden,
    HiddenSetup,
    HideSearch,
    Hiding,
    Intervention,
    LayerAccuracy,
    ProbeAccuracy,
    Readout,
    Recipe,
    RelearnMeta,
    SetAccuracy,
    choose_aligned,
    hidden_knowledge,
    hide_config,
    hiding,
    reactivate,
    readout,
    relearn,
)
from .per_fact import (
    HIDDEN_KNOWN,
    HIDDEN_UNKNOWN,
    NEVER_HIDDEN,
    FinetuneFacts,
    InterventionFacts,
    PerFact,
    SetFacts,
)
from .pipeline import run
from .report import (
    FIGURE_NAMES,
    OPTIONAL_FIGURES,
    KnowledgeReport,
    MixRow,
    RunMeta,
    to_json,
    to_markdown,
    write,
)
from .steps import (
    FinetuneMeta,
    FinetuneSplit,
    MixMeta,
    PhrasingRecall,
    best_epoch,
    early_stopped,
    facts_ans,
    finetune,
    finetune_split,
    paraphrase_transfer,
    unknown_mixes,
)

__all__ = [
    "FIGURE_NAMES", "GEKHMAN_ET_AL", "HIDDEN_KNOWN", "HIDDEN_UNKNOWN", "NEVER_HIDDEN", "OPTIONAL_FIGURES", "PRESETS",
    "SIZE_PRESETS", "FinetuneFacts", "FinetuneMeta", "FinetuneSplit", "Hidden", "HiddenSetup", "HideSearch", "Hiding",
    "Intervention", "InterventionFacts", "KnowledgeConfig", "KnowledgeReport", "LayerAccuracy", "MixMeta", "MixRow",
    "PerFact", "PhrasingRecall", "ProbeAccuracy", "Readout", "Recipe", "RelearnMeta", "RunMeta", "SetAccuracy",
    "SetFacts", "best_epoch", "choose_aligned", "claims", "config", "config_for", "early_stopped", "facts_ans",
    "findings", "finetune", "finetune_split", "hidden", "hidden_knowledge", "hide_config", "hiding", "paraphrase_transfer",
    "per_fact", "pipeline", "reactivate", "readout", "relearn", "report", "run", "share_slopes", "steps", "to_json",
    "to_markdown", "unknown_mixes", "write",
]
