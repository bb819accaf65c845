"""interp: what alignment does to a language model, read off the residual stream.

The workflow, one import::

    import interp

    pair = interp.load_pair("organism:small")                 # a base model and its aligned twin
    report = interp.reproduce_toxicity("organism:small")       # every step of Lee et al. (2024), with
    report.findings                                            #   dev/test splits, paired statistics,
    report.figures()["effects"]                                #   two scorers and nulls

or step by step: :func:`record_pair` (residuals and MLP keys of both models) →
:func:`train_probe`, :func:`rank_value_vectors`, :mod:`interp.locate` (locate, each locator checked) → :func:`weight_diff`,
:func:`key_activation_change`, :func:`residual_offset` (compare) → :func:`locate_change`
(where) → interventions (:class:`ScaleKeyWeights`: Lee et al.'s edit, :class:`ScaleNeurons`,
:class:`AddVector`, …) measured with
:func:`toxicity` or :func:`interp.measure.measure` (reactivate) → :mod:`interp.plot` (show).
A pair carries its prompts (``pair.prompts``, a :class:`PromptSet`) and a profile that picks
each reproduction's preset. :mod:`interp.reproduce` holds the reproductions (``toxicity``,
``knowledge``, ``token_shift``, ``instruction``, ``pretraining``), each a config, typed steps and a report that knows its
figures; :mod:`interp.stats` holds the paired,
prompt-clustered statistics; :mod:`interp.testing` pairs with a known answer. Model diffing
without a probe: :mod:`interp.adl` (the activation-difference lens) and :mod:`interp.crosscoder`
(BatchTopK crosscoders with latent scaling).
"""

from . import (
    adl,
    catalog,
    crosscoder,
    hooks,
    knowledge,
    locate,
    organism,
    plot,
    registry,
    reproduce,
    shift,
    stats,
    testing,
)
from .attribution import locate_change
from .crosscoder import CrosscoderConfig, paired_activations, train_crosscoder
from .diff import key_activation_change, residual_offset, weight_diff
from .directions import Direction, diff_in_means, random_direction, train_probe
from .evaluate import perplexity, toxicity
from .findings import Finding, findings_table, pairs_table
from .measure import MeasureSpec, keep_measurements
from .neurons import Neurons, random_neurons, rank_value_vectors
from .pair import Pair, load_model, load_pair
from .prompts import PromptSet
from .record import Recording, record_pair
from .score import get_scorer, get_scorers
from .steer import (
    AblateDirection,
    AddVector,
    ClampNeurons,
    PatchActivations,
    ScaleKeyWeights,
    ScaleNeurons,
)


def reproduce_toxicity(pair: str = "organism:small", *, seeds=None, out=None, progress: bool = True,
                       measurements=None, **config):
    """Lee et al. (2024)'s claims on ``pair`` (:mod:`interp.reproduce.toxicity`): one report, or
    with ``seeds`` (e.g. ``"0-4"``) one per seed and the summary across them (``{seed: report}``). ``measurements``:
    a folder to keep every arm's measurement in (:func:`keep_measurements`) instead of the cache."""
    if measurements is not None:
        with keep_measurements(measurements):
            return reproduce_toxicity(pair, seeds=seeds, out=out, progress=progress, **config)
    from .reproduce import toxicity as T

    cfg = T.config_for(pair, **config)
    if seeds is None:
        report = T.run(cfg, progress=progress)
        if out is not None:
            T.write(report, out, figures=True)
        return report
    from .reproduce.registry import get

    return get("toxicity").run_seeds(cfg, T.parse_seeds(seeds), out=out, progress=progress)


__all__ = [
    "adl", "catalog", "crosscoder", "CrosscoderConfig", "paired_activations", "train_crosscoder", "knowledge", "locate", "organism", "registry", "reproduce", "shift", "PromptSet", "Recording",
    "AblateDirection", "AddVector", "ClampNeurons", "Direction", "Finding", "findings_table", "keep_measurements",
    "MeasureSpec", "Neurons",
    "Pair", "PatchActivations", "ScaleKeyWeights", "ScaleNeurons", "diff_in_means", "get_scorer", "get_scorers", "hooks",
    "key_activation_change", "load_model", "load_pair", "locate_change", "pairs_table", "perplexity", "plot",
    "random_direction", "random_neurons", "rank_value_vectors", "record_pair",
    "reproduce_toxicity", "residual_offset", "stats", "testing", "toxicity", "train_probe", "weight_diff",
]
