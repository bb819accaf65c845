"""``interp reproduce toxicity``: Lee et al. (2024)'s DPO-toxicity story, tested as a referee would.

Steps, each a function with a typed result: :func:`split` (dev/test prompts, disjoint from
every prompt used for alignment or selection) → :func:`locate` (probes, value vectors) →
:func:`compare` (weights, keys, residual offset, each against a null) → :func:`where` (weight
groups, activation patching) → :func:`reactivate` (doses chosen on dev, frozen, then measured
on test with fresh seeds, every arm on the same prompts) → :func:`findings` (criteria fixed
here, before any run; paired statistics from :mod:`interp.stats`; Holm across the claims; a
"yes" only where a claim holds under every scorer).

The package: :mod:`.config` (the config, presets, criteria, checks), :mod:`.steps` (the steps and
their typed results), :mod:`.claims` (the claims and arm effects), :mod:`.report` (the report's
dataclass, JSON and figures), :mod:`.render` (its markdown, tables and the summary across seeds), :mod:`.pipeline` (the step cache,
:func:`run`). Over seeds: ``interp.reproduce.get("toxicity").run_seeds``. Everything public is importable from here.

Every measurement is cached on its own (:mod:`interp.measure`); a report is written as
``toxicity.json`` (every number, the config, seeds, the frozen choices) and ``toxicity.md``.
"""

from ..runner import pair_for_seed, parse_seeds
from . import claims, config, pipeline, render, report, steps
from .claims import Effect, arm_effects, findings
from .config import (
    CRITERIA,
    FAMILY_NAMES,
    LEE_ET_AL,
    PRESETS,
    PRIMARY_LOCATOR,
    ToxicityConfig,
    check,
    check_layer,
    config_for,
)
from .pipeline import LATER_ONLY, STEP_CODE, pair_scorers, run
from .render import (
    effects_table,
    k_sweep_text,
    lee_rows,
    lee_table,
    locators_text,
    seeds_intro,
    seeds_json,
    seeds_markdown,
    to_markdown,
    write,
)
from .report import (
    FAMILY_LABELS,
    FIGURE_NAMES,
    ToxicityReport,
    figures,
    k_sweep_json,
    lee_json,
    to_json,
)
from .steps import (
    Arm,
    Compared,
    Design,
    Family,
    KSweep,
    LeeProtocol,
    Located,
    Reactivation,
    Splits,
    StabilityUndone,
    Where,
    choose_dose,
    compare,
    families,
    k_sweep,
    lee_protocol,
    locate,
    power_design,
    probe_options,
    reactivate,
    split,
    stability_undone,
    where,
)

__all__ = [
    "CRITERIA", "FAMILY_LABELS", "FAMILY_NAMES", "FIGURE_NAMES", "LATER_ONLY", "LEE_ET_AL", "PRESETS",
    "PRIMARY_LOCATOR", "STEP_CODE", "Arm", "Compared", "Design", "Effect", "Family", "KSweep", "LeeProtocol",
    "Located", "Reactivation", "Splits", "StabilityUndone", "ToxicityConfig", "ToxicityReport", "Where",
    "arm_effects", "check", "check_layer", "choose_dose", "claims", "compare", "config", "config_for",
    "effects_table", "families", "figures", "findings", "k_sweep", "k_sweep_json", "stability_undone", "k_sweep_text", "lee_json",
    "lee_protocol", "lee_rows", "lee_table", "locate", "locators_text", "pair_for_seed", "pair_scorers",
    "parse_seeds", "pipeline", "power_design", "probe_options", "reactivate", "render", "report", "run",
    "seeds_intro", "seeds_json", "seeds_markdown", "split", "steps", "to_json", "to_markdown", "where", "write",
]
