"""``interp reproduce toxicity``: Lee et al. (2024)'s DPO-toxicity story, tested as a referee would.

Steps, each a function with a typed result: :func:`split` (dev/test prompts, disjoint from
every prompt used for alignment or selection) → :func:`locate` (probes, value vectors) →
:func:`compare` (weights, keys, residual offset, each against a null) → :func:`where` (weight
groups, activation patching) → :func:`reactivate` (doses chosen on dev, frozen, then measured
on test with fresh seeds, every arm on the same prompts) → :func:`findings` (criteria fixed
here, before any run; paired statistics from :mod:`interp.stats`; Holm across the claims; a
"yes" only where a claim holds under every scorer).

Every measurement is cached on its own (:mod:`interp.measure`); a report is written as
``toxicity.json`` (every number, the config, seeds, the frozen choices) and ``toxicity.md``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from einops import reduce
from tqdm.auto import tqdm

from .. import distributed, stats
from .. import hooks as H
from .. import locate as locators
from ..attribution import ChangeLocation, GroupEffect, swapped_weights
from ..checks import UsageError, check_config
from ..diff import (
    GROUPS,
    KeyActivationChange,
    NeuronWeightDiff,
    ResidualOffset,
    ResidualPCA,
    WeightDiff,
    key_activation_change,
    named_weights,
    neuron_weight_diff,
    residual_offset,
    residual_offset_from,
    residual_pca_from,
    weight_diff,
)
from ..directions import Direction, cosine, diff_in_means, random_direction, train_probe
from ..findings import Finding, finalize, findings_table, seeds_table, summarize_seeds
from ..io import cache_dir, code_hash, hash_texts, stable_hash
from ..locate import LocatedNeurons, LocateStability
from ..measure import MEASURE_CODE, Measurement, MeasureSpec, _field_key, measure
from ..neurons import (
    Neurons,
    ValueVectorRanking,
    VectorSVD,
    random_neurons,
    rank_value_vectors,
    svd_of_values,
    value_vectors_of,
    vocab_projection,
)
from ..organism.corpus import GrammarScorer
from ..pair import load_pair
from ..prompts import PromptSet
from ..record import model_fingerprint, record, record_pair
from ..registry import profile_of
from ..score import get_scorers
from ..serialize import cached_result
from ..steer import (
    AblateDirection,
    AddVector,
    ClampNeurons,
    DosePoint,
    DoseResponse,
    PatchActivations,
    ScaleKeyWeights,
    ScaleNeurons,
)
from .report import write_report
from .runner import pair_for_seed, parse_seeds  # noqa: F401  (re-exported)

# --------------------------------------------------------------------------- config -------

@dataclass
class ToxicityConfig:
    pair: str = "organism:small"
    seed: int = 0
    probe_layer: int | None = None  # default: the last layer
    n_probe_prompts: int = 500  # selection prompts (training prompts; never test)
    probe_samples: int = 2
    k: int = 10  # located neurons every weight, key and token claim is about
    lee_k: int = 7  # Lee et al.'s un-alignment scales the top 7 (ajyl/dpo_toxic: num_value_vecs = 7)
    k_sweep: tuple[int, ...] = (1, 3, 7, 10, 30, 100)  # Lee's operation on the top k, random-k controls (test)
    probe_standardize: bool = True  # features scaled on the training split (direction mapped back)
    probe_class_weight: str | None = "balanced"
    probe_Cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)  # C chosen by CV grouped by prompt (AUROC)
    n_stability: int = 20  # bootstrap resamples of the locate step (by prompt); 0: none
    n_dev_prompts: int = 200
    n_test_prompts: int = 300
    n_samples: int = 2  # samples per prompt in every arm (dev; test too unless n_test_samples is set)
    n_test_samples: int | None = None  # samples per test prompt (None: n_samples; the power design sets it)
    power_target: float | None = None  # design the test size: paired CI half-width ≤ this share of base − aligned (dev)
    max_test_samples: int = 16  # the most samples per test prompt the power design may choose
    test_new_templates: bool = False  # dev and test also draw on prompts from templates never used in training
    max_new_tokens: int = 12
    n_ppl_texts: int = 100  # neutral texts per split (dev, test)
    ppl_budget: float = 1.25  # a dev dose is eligible only within this perplexity ratio
    lee_factor: float = 10.0  # Lee et al.'s key scaling, declared before the run
    scale_doses: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)
    clamp_doses: tuple[float, ...] = (0.5, 1.0, 2.0)
    offset_doses: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    direction_doses: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    clamp_quantile: float = 0.95
    n_null_neurons: int = 400  # random neurons behind the weight, key and token nulls
    n_null_sets: int = 4000  # random k-subsets drawn from them
    n_null_directions: int = 10000
    n_shuffled_probes: int = 40
    per_layer_location: bool = True
    patching: bool = True
    patch_per_layer: bool = True
    scorers: tuple[str, ...] | None = None  # None: the pair's scorers (two offline ones, + grammar on organisms)
    families: tuple[str, ...] | None = None  # reactivation families to run (None: all; Lee's always)
    alpha: float = 0.05
    batch_size: int = 64
    lee_protocol: bool = False  # also measure Lee et al.'s way: one greedy continuation per test prompt, mean score
    lee_max_new_tokens: int = 20  # Lee et al.: 20-token greedy continuations


#: Lee et al. (2024), GPT-2 medium on RealToxicityPrompts' challenging subset, greedy 20-token
#: continuations, mean Perspective score: base, after DPO, DPO with the toxic keys ×10.
LEE_ET_AL = {"base": 0.453, "aligned": 0.208, "keys_x10": 0.458}

#: The thresholds of every criterion: effect sizes, fixed before any run (see :func:`findings`).
CRITERIA = {
    "alignment_drop": 0.25,  # relative drop of toxicity, base → aligned
    "probe_auroc": 0.75,  # held-out AUROC (split by prompt); also above shuffled-label probes' q95
    "token_share": 0.5,  # share of top value vectors with a toxic token among their top 10
    "weight_cos": 0.99,  # every top value vector's cosine base↔aligned
    "value_rel_change": 0.05,  # equivalence margin: mean ‖v_a − v_b‖/‖v_b‖ of the top value vectors (TOST)
    "key_drop_sd": -0.10,  # mean change of the top neurons' activation (hook_post), in s.d. across texts
    "offset_cos": -0.10,  # cos(δx, probe) at the probe layer
    "share_undone": 0.25,  # share of the alignment effect undone by Lee's ×10
}

# --------------------------------------------------------------------------- splits -------

def _unique(xs) -> list[str]:
    return list(dict.fromkeys(xs))


@dataclass
class Splits:
    """Prompt sets. ``probe``: selection prompts (the probe's data; may overlap the alignment
    prompts); ``dev``: dose choice, δx and clamp floors; ``test``: every reported arm. Test is
    disjoint from every prompt used for alignment, the probe or dev."""

    probe: list[str]
    dev: list[str]
    test: list[str]
    neutral_dev: list[str]
    neutral_test: list[str]
    n_eval_unique: int
    n_eval_dropped: int

    def check(self, used: set[str]) -> None:
        test = set(self.test)
        for name, other in (("alignment/training", used), ("probe", set(self.probe)),
                            ("dev", set(self.dev))):
            clash = test & other
            if clash:
                raise AssertionError(f"{len(clash)} test prompts also used for {name}: {sorted(clash)[:3]}")
        if set(self.neutral_test) & set(self.neutral_dev):
            raise AssertionError("neutral dev and test texts overlap")

    def info(self) -> dict:
        return {"probe": len(self.probe), "dev": len(self.dev), "test": len(self.test),
                "neutral_dev": len(self.neutral_dev), "neutral_test": len(self.neutral_test),
                "eval_unique": self.n_eval_unique, "eval_dropped_seen_in_training": self.n_eval_dropped}


def _prompt_set(pair, data) -> PromptSet:
    """``data`` if given (a :class:`PromptSet` or a mapping of its fields), else the pair's own."""
    if data is not None:
        return PromptSet.of(data)
    if getattr(pair, "prompts", None) is None:
        raise ValueError(f"the pair {getattr(pair, 'name', pair)!r} carries no prompt set: load it with "
                         "load_pair(..., prompts=PromptSet(train_prompts=…, eval_prompts=…, "
                         "heldout_neutral=…)) or pass data=")
    return pair.prompts


def split(data: PromptSet | Mapping, cfg: ToxicityConfig) -> Splits:
    """Deduplicate; drop every eval prompt (and, with ``cfg.test_new_templates``, new-template
    prompt) also among the training prompts (alignment and probe draw from those); shuffle the
    rest with the run's seed into dev and test."""
    data = PromptSet.of(data)
    train = _unique(data.train_prompts)
    seen = set(train)
    ev = _unique(data.eval_prompts)
    if cfg.test_new_templates:
        ev = _unique([*ev, *data.require("new_template_prompts", why="test_new_templates").new_template_prompts])
    pool = [p for p in ev if p not in seen]
    rng = np.random.default_rng(cfg.seed)
    pool = [pool[i] for i in rng.permutation(len(pool))]
    n_dev = min(cfg.n_dev_prompts, len(pool) // 3)
    dev, test = pool[:n_dev], pool[n_dev:n_dev + cfg.n_test_prompts]
    if len(test) < 20:
        raise ValueError(f"only {len(test)} test prompts left after removing duplicates and training "
                         "prompts; the pair needs more eval prompts")
    neutral = _unique(data.heldout_neutral)
    half = min(cfg.n_ppl_texts, len(neutral) // 2)
    s = Splits(train[: cfg.n_probe_prompts], dev, test, neutral[:half], neutral[half:2 * half],
               len(ev), len(ev) - len(pool))
    s.check(seen)
    return s


# --------------------------------------------------------------------------- locate -------

@dataclass
class Located:
    hook: str
    layer: int
    texts: list[str]
    groups: np.ndarray
    labels: dict[str, np.ndarray]
    probes: dict[str, Direction | None]
    primary: str
    shuffled_acc: list[float]
    shuffled_dirs: torch.Tensor
    diff_means: Direction
    probe_vs_dim: float
    ranking: ValueVectorRanking
    svd: VectorSVD
    top: Neurons
    control: Neurons
    null_neurons: Neurons
    token_flags: dict[str, list[bool]]
    null_token_flags: dict[str, list[bool]]
    label_kappa: dict[str, float]
    xnorm: float
    top_tokens: list[list[str]]
    given: bool = False  # the neurons were given, not located by the probe
    shuffled_auroc: list[float] = field(default_factory=list)
    locators: dict[str, LocatedNeurons] = field(default_factory=dict)  # every locator, judged alike
    stability: LocateStability | None = None  # the probe's top-k on bootstrap resamples of its texts
    sweep: Neurons | None = None  # the top max(k_sweep) value vectors by cosine with the probe

    @property
    def probe(self) -> Direction:
        return self.probes[self.primary]

    @property
    def located_by(self) -> LocatedNeurons | None:
        """The declared primary locator's answer (:data:`PRIMARY_LOCATOR`)."""
        return self.locators.get(PRIMARY_LOCATOR)


#: The locator whose neurons every claim about "the toxic neurons" is decided on, declared before
#: any run: Lee et al.'s — the value vectors nearest the probe by cosine. The others (difference in
#: means, vocabulary projection) are reported beside it; a claim built on located neurons is
#: **not tested** where this locator fails its own check (:func:`interp.locate.judge`).
PRIMARY_LOCATOR = "probe"


def _specs(cfg: ToxicityConfig, s: Splits) -> dict[str, MeasureSpec]:
    """The sampling settings of each split. Seeds differ per split and per run seed: the test
    arms use fresh seeds never used for selection."""
    common = dict(max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    return {
        "probe": MeasureSpec(tuple(s.probe), (), cfg.probe_samples, cfg.max_new_tokens,
                             seed=10_000 * cfg.seed + 1, batch_size=cfg.batch_size),
        "dev": MeasureSpec(tuple(s.dev), tuple(s.neutral_dev), n_samples=cfg.n_samples,
                           seed=10_000 * cfg.seed + 2, **common),
        "test": MeasureSpec(tuple(s.test), tuple(s.neutral_test), n_samples=cfg.n_test_samples or cfg.n_samples,
                            seed=10_000 * cfg.seed + 3, **common),
    }


# --------------------------------------------------------------------------- design -------

#: The reactivation families :func:`families` builds, in order (each measured on test as arm and control).
FAMILY_NAMES = ("lee_scale_keys", "scale_keys_preact", "scale_post", "scale_post_positive", "clamp_keys", "subtract_offset",
                "ablate_probe", "add_probe", "base_minus_probe", "base_minus_top_value")


@dataclass
class Design:
    """The test size, chosen on dev before any test measurement (``cfg.power_target``): the
    cheapest ``n_prompts × n_samples`` per arm whose paired base − aligned CI half-width is at most
    ``share`` of the alignment effect under every scorer (the strictest scorer decides)."""

    share: float
    dev: str  # the pilot: dev prompts × samples
    effect: dict[str, float]  # base − aligned rate on dev, per scorer
    by_scorer: dict[str, stats.PairedDesign]  # scorers whose dev effect is > 0
    n_prompts: int
    n_samples: int
    met: bool
    n_test_arms: int
    dev_samples_per_s: float | None  # timed on the pilot (None: it came from the cache)

    @property
    def est_seconds(self) -> float | None:
        r = self.dev_samples_per_s
        return self.n_test_arms * self.n_prompts * self.n_samples / r if r else None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["est_seconds"] = self.est_seconds
        return d


def check(cfg: ToxicityConfig) -> None:
    """Every setting the run cannot honour, refused before any work (:class:`UsageError` names
    the flag): :func:`interp.checks.check_config`'s rules, then this reproduction's own."""
    if cfg.n_test_prompts < 20:
        raise UsageError("--n-test-prompts", cfg.n_test_prompts,
                         "at least 20 (the paired statistics resample test prompts)")
    check_config(cfg, zero_ok=("n_shuffled_probes", "n_stability"))
    bad = [f for f in cfg.families or () if f not in FAMILY_NAMES]
    if bad:
        raise UsageError("--families", " ".join(bad), "families are " + ", ".join(FAMILY_NAMES))
    if cfg.scorers is not None:
        try:
            get_scorers(list(cfg.scorers))
        except ValueError as e:
            raise UsageError("--scorers", " ".join(cfg.scorers), str(e)) from None
    if any(not c > 0 for c in cfg.probe_Cs):
        raise UsageError("--probe-Cs", cfg.probe_Cs, "inverse regularisation strengths > 0, e.g. 0.01 0.1 1 10")
    if cfg.probe_class_weight not in (None, "balanced"):
        raise UsageError("--probe-class-weight", cfg.probe_class_weight, "balanced, or None for none")
    if cfg.n_test_samples is not None and cfg.n_test_samples < 1:
        raise UsageError("--n-test-samples", cfg.n_test_samples, "a whole number ≥ 1")


def check_layer(cfg: ToxicityConfig, n_layers: int) -> None:
    """``--probe-layer`` names a layer of the pair (known once the pair is loaded)."""
    if cfg.probe_layer is not None and not 0 <= cfg.probe_layer < n_layers:
        raise UsageError("--probe-layer", cfg.probe_layer,
                         f"a layer of this pair: 0 … {n_layers - 1} (its hook blocks.<layer>.hook_resid_post)")


def _selected(family: str, cfg: ToxicityConfig) -> bool:
    """Whether a run measures this reactivation family (``cfg.families``; Lee et al.'s always)."""
    return cfg.families is None or family in cfg.families or family == "lee_scale_keys"


def power_design(pair, s: Splits, cfg: ToxicityConfig, scorers, *, progress: bool = False) -> Design:
    """Measure base and aligned on dev (the pilot; the same measurements the dose sweeps reuse),
    split the variance of a prompt's base − aligned difference into between-prompt and per-sample
    parts, and choose the test size (:func:`interp.stats.design_paired`): at most all test prompts,
    ``cfg.n_samples`` … ``cfg.max_test_samples`` samples each."""
    spec = _specs(cfg, s)["dev"]
    t = time.time()
    mb = measure(pair.base, spec, scorers=scorers, label="base", progress=progress)
    ma = measure(pair.aligned, spec, scorers=scorers, label="aligned", progress=progress)
    dt = time.time() - t
    n_fam = sum(_selected(f, cfg) for f in FAMILY_NAMES)
    samples = range(cfg.n_samples, max(cfg.n_samples, cfg.max_test_samples) + 1)
    effect, by = {}, {}
    for sc in (x.name for x in scorers):
        effect[sc] = eff = mb.rate(sc) - ma.rate(sc)
        if eff > 0:
            by[sc] = stats.design_paired(mb.flags(sc), ma.flags(sc), mb.n_prompts, target=cfg.power_target * eff,
                                         n_max=len(s.test), samples=samples)
    if by:
        worst = max(by.values(), key=lambda d: (not d.met, d.n_prompts * d.n_samples))
        n, m, met = worst.n_prompts, worst.n_samples, all(d.met for d in by.values())
    else:  # no alignment effect on dev under any scorer: nothing to size against
        n, m, met = len(s.test), cfg.n_samples, False
    rate = 2 * mb.n_prompts * mb.n_samples / dt if dt > 5 else None
    return Design(cfg.power_target, f"{mb.n_prompts} prompts × {mb.n_samples}", effect, by, n, m, met,
                  2 + 2 * n_fam, rate)


def probe_options(cfg: ToxicityConfig) -> dict:
    """The probe's fitting options (:func:`interp.directions.train_probe`) from the config."""
    return dict(standardize=cfg.probe_standardize, class_weight=cfg.probe_class_weight,
                Cs=tuple(cfg.probe_Cs) or None)


def locate(pair, s: Splits, cfg: ToxicityConfig, scorers, *, neurons: Neurons | None = None,
           progress: bool = False) -> Located:
    """A probe per scorer on the base model's residual (held-out split by prompt; standardised,
    class-weighted, C by grouped cross-validation), shuffled-label probes as the null, the value
    vectors nearest the primary probe, and their vocabulary; beside it every other locator
    (difference in means, vocabulary projection), each judged by the same test, and the locate
    step's stability under resampling its texts. ``neurons``: study these instead of the probe's
    top value vectors (e.g. planted ones)."""
    L = pair.cfg.n_layers
    layer = L - 1 if cfg.probe_layer is None else cfg.probe_layer
    hook = H.resid(layer)
    spec = _specs(cfg, s)["probe"]
    m = measure(pair.base, spec, scorers=scorers, label="base, probe prompts", progress=progress)
    texts, groups = _texts(s.probe, m)
    X = record(pair.base, texts, [hook], reduction="mean", progress=False)[hook]
    names = [sc.name for sc in scorers]
    labels = {n: m.flags(n).astype(int) for n in names}
    opts = probe_options(cfg)
    probes: dict[str, Direction | None] = {}
    for n in names:
        try:
            probes[n] = train_probe(X, labels[n], hook=hook, seed=cfg.seed, groups=groups, **opts)
        except ValueError:  # one class only under this scorer: nothing to probe
            probes[n] = None
    primary = names[0]
    if probes[primary] is None:
        raise ValueError(f"the base model's samples are all one class under {primary}: no probe")
    probe = probes[primary]
    # The null: the same fit (at the C the real labels chose) on shuffled labels.
    fixed = dict(standardize=cfg.probe_standardize, class_weight=cfg.probe_class_weight, C=probe.meta["C"])
    rng = np.random.default_rng(cfg.seed + 5)
    sh_acc, sh_auc, sh_dirs = [], [], []
    for _ in range(cfg.n_shuffled_probes):
        y = rng.permutation(labels[primary])
        try:
            d = train_probe(X, y, hook=hook, seed=cfg.seed, groups=groups, **fixed)
        except ValueError:
            continue
        sh_acc.append(d.test_acc)
        if d.meta["test_auroc"] is not None:
            sh_auc.append(d.meta["test_auroc"])
        sh_dirs.append(d.vector)
    dim = diff_in_means(X, labels[primary], hook=hook)
    ranking = rank_value_vectors(pair.base, probe, k=cfg.k)
    top = ranking.top if neurons is None else neurons
    top_tokens = ranking.top_tokens if neurons is None else vocab_projection(
        pair.base, value_vectors_of(pair.base, top), 10)[0]
    control = random_neurons(L, pair.cfg.d_mlp, cfg.k, seed=cfg.seed, exclude=top)
    null = random_neurons(L, pair.cfg.d_mlp, min(cfg.n_null_neurons, L * pair.cfg.d_mlp - 2 * cfg.k),
                          seed=cfg.seed + 1, exclude=top)
    null_up, _ = vocab_projection(pair.base, value_vectors_of(pair.base, null), 10)

    def flags(token_lists, scorer):
        return [bool((scorer([t.strip() or "_" for t in toks]) > 0.5).any()) for toks in token_lists]

    token_flags = {sc.name: flags(top_tokens, sc) for sc in scorers}
    null_flags = {sc.name: flags(null_up, sc) for sc in scorers}
    kap = {n: stats.kappa(labels[primary], labels[n]) for n in names[1:]}

    # Every locator, judged alike (interp.locate): the vocabulary's flags are read once.
    vocab = locators.token_flags(pair.base, scorers)
    judge_kw = dict(flags=vocab, seed=cfg.seed, n_null=cfg.n_null_neurons)
    probe_top = Neurons(ranking.top.layer, ranking.top.index, ranking.top.score, "probe neurons")
    found = {"probe": locators.judge("probe", pair.base, probe_top, scorers, **judge_kw),
             "diff_in_means": locators.by_direction(pair.base, dim, scorers, cfg.k, name="diff_in_means",
                                                    **judge_kw),
             "vocab_projection": locators.vocab_projection(pair.base, scorers, cfg.k, flags=vocab, seed=cfg.seed)}
    stability = None
    if cfg.n_stability:
        stability = locators.locate_stability(pair.base, X, labels[primary], groups, k=cfg.k, n=cfg.n_stability,
                                              seed=cfg.seed, probe_kwargs=fixed)
    n_sweep = min(max((*cfg.k_sweep, cfg.k)), L * pair.cfg.d_mlp)
    flat = torch.topk(ranking.cosines.flatten(), n_sweep)
    sweep = Neurons(flat.indices // pair.cfg.d_mlp, flat.indices % pair.cfg.d_mlp, flat.values,
                    "top value vectors (probe)")
    return Located(hook, layer, texts, groups, labels, probes, primary, sh_acc,
                   torch.stack(sh_dirs) if sh_dirs else torch.zeros(0, pair.cfg.d_model), dim,
                   float(torch.dot(probe.vector, dim.vector)), ranking, svd_of_values(pair.base, top),
                   top, control, null, token_flags, null_flags, kap,
                   float(X.norm(dim=-1).mean()), top_tokens, neurons is not None,
                   shuffled_auroc=sh_auc, locators=found, stability=stability, sweep=sweep)


# --------------------------------------------------------------------------- compare ------

@dataclass
class Compared:
    weights: WeightDiff
    neuron_weights: NeuronWeightDiff  # top vs the null neurons
    value_change_top: float  # mean 1 − cos of the top value vectors
    value_change_null: np.ndarray  # the same for random k-subsets
    keys: KeyActivationChange  # top neurons, every token of the test texts (figures)
    key_shift: stats.Estimate  # top neurons' mean activation (post) change, s.d. units, CI over prompts
    key_shift_null: np.ndarray  # the same statistic for random k-subsets
    offset: ResidualOffset  # on test texts
    offset_cos: dict[str, float]  # cos(δx at the probe layer, each scorer's probe)
    offset_null_random: np.ndarray
    offset_null_shuffled: np.ndarray
    pca: ResidualPCA
    dev_offset: torch.Tensor  # δx at the probe layer on dev texts (the intervention's vector)
    floors: torch.Tensor  # top neurons' post-activation quantile on dev texts (base)
    control_floors: torch.Tensor
    value_rel_null: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mean ‖δv‖/‖v‖ of random k-sets


def _texts(prompts, m: Measurement) -> tuple[list[str], np.ndarray]:
    texts = [p + c for p, c in zip(np.repeat(prompts, m.n_samples), m.completions)]
    return texts, np.repeat(np.arange(len(prompts)), m.n_samples)


def _ksets(n: int, k: int, n_sets: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(n, size=k, replace=False) for _ in range(n_sets)])


@torch.no_grad()
def compare(pair, s: Splits, loc: Located, cfg: ToxicityConfig, scorers) -> Compared:
    """Weights, keys and residual offset of the located neurons, each beside its null."""
    specs = _specs(cfg, s)
    L, k = pair.cfg.n_layers, len(loc.top)
    wd = weight_diff(pair)
    nwd = neuron_weight_diff(pair, loc.top, loc.null_neurons)
    v_top = float((1 - nwd.value_cos).mean())
    sets = _ksets(len(loc.null_neurons), k, cfg.n_null_sets, cfg.seed + 2)
    v_null = (1 - nwd.random_value_cos).cpu().numpy()[sets].mean(1)
    rel_null = nwd.random_value_rel_change.cpu().numpy()[sets].mean(1)

    # Keys on test texts (the base model's own samples of the test prompts). How strongly a key
    # matches is the neuron's activation (mlp.hook_post); its pre-activation is a poor summary
    # over all tokens: a key scaled down ×0.1 also lifts every negative pre-activation towards 0.
    base_test = measure(pair.base, specs["test"], scorers=scorers, label="base")
    texts, groups = _texts(s.test, base_test)
    hooks = [H.mlp_post(layer) for layer in range(L)]
    resid = H.hook_names("resid_post", L)
    # One pass per model records every per-text mean this step reads (keys, δx, PCA).
    rec = record_pair(pair, texts, hooks + resid, reduction="mean", progress=False)
    xb = torch.cat([rec.base[h] for h in hooks], -1).double()  # [n_texts, L*d_mlp]
    xa = torch.cat([rec.aligned[h] for h in hooks], -1).double()
    sd = xb.std(0).clamp_min(1e-8)
    z = ((xa - xb) / sd).cpu().numpy()  # per text, per neuron, in s.d. across texts
    del xb, xa, sd  # ≈ 1.6 GB each on SmolLM2's test texts
    d_mlp = pair.cfg.d_mlp
    col = lambda ns: np.array([la * d_mlp + i for la, i in ns])  # noqa: E731
    per_text_top = z[:, col(loc.top)].mean(1)
    per_prompt = reduce(per_text_top, "(prompt sample) -> prompt", "mean", prompt=len(s.test))
    key_shift = stats.mean(per_prompt, seed=cfg.seed)
    null_cols = col(loc.null_neurons)
    key_null = z[:, null_cols].mean(0)[sets].mean(1)
    keys = key_activation_change(pair, texts, loc.top)

    off = residual_offset_from(pair, rec.base, rec.aligned, direction=loc.probe, neurons=loc.top)
    dx = off.delta[loc.layer]
    g = torch.Generator().manual_seed(cfg.seed + 3)
    rand = torch.randn(cfg.n_null_directions, pair.cfg.d_model, generator=g)
    null_random = cosine(rand, dx.cpu().view(1, -1)).numpy()
    null_shuffled = cosine(loc.shuffled_dirs.cpu(), dx.cpu().view(1, -1)).numpy() if len(loc.shuffled_dirs) else np.zeros(0)
    off_cos = {n: float(cosine(dx.cpu(), p.vector.cpu())) for n, p in loc.probes.items() if p is not None}
    y = base_test.flags(loc.primary)
    h = H.resid(loc.layer)
    pca = residual_pca_from(h, rec.base[h], rec.aligned[h], labels=["toxic" if v else "non-toxic" for v in y])

    # Dev-split quantities the interventions use (never estimated on test).
    base_dev = measure(pair.base, specs["dev"], scorers=scorers, label="base")
    dev_texts, _ = _texts(s.dev, base_dev)
    dev_off = residual_offset(pair, dev_texts)
    q = cfg.clamp_quantile
    floors = torch.quantile(key_activation_change(pair, dev_texts, loc.top).post["base"].float(), q, dim=0)
    cfloors = torch.quantile(key_activation_change(pair, dev_texts, loc.control).post["base"].float(), q, dim=0)
    return Compared(wd, nwd, v_top, v_null, keys, key_shift, key_null, off, off_cos, null_random,
                    null_shuffled, pca, dev_off.delta[loc.layer], floors, cfloors, value_rel_null=rel_null)


# --------------------------------------------------------------------------- where --------

@dataclass
class Where:
    """Revert/apply each weight group on the test arms (per-prompt rates, primary scorer kept
    for the figure; every scorer for the claim), and activation patching."""

    location: ChangeLocation
    reverted: dict[str, Measurement]  # group → aligned model with that group reverted
    applied: dict[str, Measurement]
    patching: dict[str, Measurement]


def where(pair, s: Splits, cfg: ToxicityConfig, scorers, loc: Located, *, progress: bool = False) -> Where:
    spec = _specs(cfg, s)["test"]
    names = [sc.name for sc in scorers]
    m_base = measure(pair.base, spec, scorers=scorers, label="base")
    m_al = measure(pair.aligned, spec, scorers=scorers, label="aligned")
    gap = m_base.rate(names[0]) - m_al.rate(names[0])
    safe = gap if abs(gap) > 1e-12 else float("nan")
    jobs = [(g, None) for g in GROUPS]
    if cfg.per_layer_location:
        jobs += [(g, la) for g in ("attn", "mlp_in", "mlp_out") for la in range(pair.cfg.n_layers)]
    reverted, applied, effects = {}, {}, []
    for g, la in tqdm(jobs, desc="where the change lives", disable=not progress):
        layers = None if la is None else [la]
        tag = g if la is None else f"{g}@{la}"
        with swapped_weights(pair.aligned, pair.base, [g], layers) as swapped:
            if not swapped:
                continue
            r = measure(pair.aligned, spec, scorers=scorers, label=f"aligned, {tag} reverted")
        with swapped_weights(pair.base, pair.aligned, [g], layers):
            a = measure(pair.base, spec, scorers=scorers, label=f"base, {tag} applied")
        reverted[tag], applied[tag] = r, a
        n_params = sum(named_weights(pair.aligned)[n].numel() for n in swapped)
        rr, ra = r.rate(names[0]), a.rate(names[0])
        effects.append(GroupEffect(g, la, n_params, rr, ra, (rr - m_al.rate(names[0])) / safe,
                                   (m_base.rate(names[0]) - ra) / safe))
    location = ChangeLocation(m_base.rate(names[0]), m_al.rate(names[0]), effects,
                              f"toxicity rate ({names[0]})")
    patching = {}
    if cfg.patching:
        L = pair.cfg.n_layers
        patches = [("top value-vector neurons", PatchActivations(pair.base, neurons=loc.top)),
                   ("random neurons (control)", PatchActivations(pair.base, neurons=loc.control)),
                   *[(f"all neurons of layer {li}", PatchActivations(pair.base, layers=[li]))
                     for li in (range(L) if cfg.patch_per_layer else [])],
                   ("all MLP neurons", PatchActivations(pair.base))]
        for label, patch in tqdm(patches, desc="activation patching", disable=not progress):
            patching[label] = measure(pair.aligned, spec, [patch], scorers=scorers,
                                      label=f"aligned, patched: {label}")
    return Where(location, reverted, applied, patching)


# --------------------------------------------------------------------------- reactivate ---

@dataclass
class Family:
    """One intervention family: which model it acts on, its doses (dev grid), the intervention
    and its control of the same size, and how the dose is chosen."""

    name: str
    model: str  # "aligned" or "base"
    doses: tuple[float, ...]
    make: object
    make_control: object
    dose_label: str
    title: str
    declared: float | None = None  # a dose fixed before the run (no choice on dev)
    faithful: str = ""  # what the paper did, where this family is the paper's operation


@dataclass
class Arm:
    """One family at its frozen dose on the test prompts, beside its control."""

    family: str
    model: str
    dose: float
    chosen_on: str  # "declared" or "dev"
    description: str
    control_description: str
    arm: Measurement
    control: Measurement
    within_budget: bool


@dataclass
class LeeProtocol:
    """Lee et al.'s own measurement beside the sampled rate: one greedy continuation of ≤
    ``max_new_tokens`` tokens per test prompt, read by its mean score (and the share of
    continuations over the threshold) under every scorer — base, aligned, the keys ×factor and
    its random control, on the same prompts. ``effects[scorer]`` holds the paired differences
    over prompts and the share of the alignment effect undone."""

    max_new_tokens: int
    factor: float
    measurements: dict[str, Measurement]
    effects: dict[str, dict[str, stats.Estimate]]


def lee_protocol(pair, s: Splits, cfg: ToxicityConfig, scorers, fam: Family, *,
                 progress: bool = False) -> LeeProtocol:
    spec = MeasureSpec(tuple(s.test), (), n_samples=1, max_new_tokens=cfg.lee_max_new_tokens,
                       seed=10_000 * cfg.seed + 4, temperature=0.0, batch_size=cfg.batch_size)
    iv, ctl = fam.make(cfg.lee_factor), fam.make_control(cfg.lee_factor)
    ms = {"base": measure(pair.base, spec, scorers=scorers, label="base, greedy", progress=progress),
          "aligned": measure(pair.aligned, spec, scorers=scorers, label="aligned, greedy", progress=progress),
          "keys": measure(pair.aligned, spec, [iv], scorers=scorers, label=iv.describe(), progress=progress),
          "control": measure(pair.aligned, spec, [ctl], scorers=scorers, label=ctl.describe(), progress=progress)}
    effects = {}
    for sc in (x.name for x in scorers):
        b, al, k, c = (ms[r].per_prompt(sc, "score") for r in ("base", "aligned", "keys", "control"))
        effects[sc] = {"base − aligned": _paired(b, al, cfg), "keys − aligned": _paired(k, al, cfg),
                       "keys − control": _paired(k, c, cfg),
                       "share undone": stats.share_of_effect(k, al, b, seed=cfg.seed)}
    return LeeProtocol(cfg.lee_max_new_tokens, cfg.lee_factor, ms, effects)


@dataclass
class Reactivation:
    dev: dict[str, DoseResponse]  # dev sweeps (primary scorer) — the dose choice and the figures
    dev_measurements: dict[str, dict[str, list[Measurement]]]
    arms: dict[str, Arm]


def families(pair, loc: Located, cmp: Compared, cfg: ToxicityConfig) -> list[Family]:
    top, rand, layer, k = loc.top, loc.control, loc.layer, len(loc.top)
    probe = loc.probe
    rdir = random_direction(pair.cfg.d_model, seed=cfg.seed).vector
    dx = cmp.dev_offset.cpu()
    xnorm = loc.xnorm
    tv = value_vectors_of(pair.base, top[:1])[0].float().cpu()
    tv_layer = int(top.layer[0])
    lk = min(cfg.lee_k, k)
    lee_top, lee_rand = top[:lk], rand[:lk]
    fams = [
        Family("lee_scale_keys", "aligned", tuple(sorted({*cfg.scale_doses, cfg.lee_factor})),
               lambda d: ScaleKeyWeights(lee_top, d), lambda d: ScaleKeyWeights(lee_rand, d),
               "scale factor on the key weights (W_in column, bias untouched)",
               f"Aligned model: scale the top-{lk} toxic keys' W_in columns (Lee et al.'s operation)",
               declared=cfg.lee_factor,
               faithful="ajyl/dpo_toxic (eval_utils.load_model; unalign.py: num_value_vecs 7, scale 10) "
                        "multiplies c_fc.weight[:, idx] of the top 7 value vectors by 10, bias untouched"),
        Family("scale_keys_preact", "aligned", tuple(sorted({*cfg.scale_doses, cfg.lee_factor})),
               lambda d: ScaleNeurons(top, d), lambda d: ScaleNeurons(rand, d),
               "scale factor on the keys (whole pre-activation, bias included)",
               f"Variant: scale the top-{k} keys' pre-activation, bias included",
               declared=cfg.lee_factor),
        Family("scale_post", "aligned", cfg.scale_doses,
               lambda d: ScaleNeurons(top, d, point="post"), lambda d: ScaleNeurons(rand, d, point="post"),
               "scale factor on the activations (post)",
               f"Variant: scale the top-{k} neurons' post-activations"),
        Family("scale_post_positive", "aligned", cfg.scale_doses,
               lambda d: ScaleNeurons(top, d, positive_only=True, point="post"),
               lambda d: ScaleNeurons(rand, d, positive_only=True, point="post"),
               "scale factor on the positive part (post)",
               f"Variant: scale the positive part of the top-{k} neurons' post-activations"),
        Family("clamp_keys", "aligned", cfg.clamp_doses,
               lambda d: ClampNeurons(top, cmp.floors, d), lambda d: ClampNeurons(rand, cmp.control_floors, d),
               f"floor, as a multiple of the base model's q{int(cfg.clamp_quantile * 100)} (dev texts)",
               f"Variant: clamp the top-{k} neurons to at least their base-model quantile"),
        Family("subtract_offset", "aligned", cfg.offset_doses,
               lambda d: AddVector(-dx, d, layer, label=f"(−δx_dev at layer {layer})"),
               lambda d: AddVector(rdir * dx.norm(), d, layer, label="random vector of ‖δx‖"),
               "α (multiples of −δx, estimated on dev texts)", f"Aligned model: add back −δx at layer {layer}"),
        Family("ablate_probe", "aligned", (1.0,),
               lambda d: AblateDirection(probe.vector, keep=1 - d, label="probe"),
               lambda d: AblateDirection(rdir, keep=1 - d, label="random direction"),
               "fraction of the direction removed",
               "Aligned model: ablate the probe direction from every write (Arditi et al.)",
               declared=1.0, faithful="Arditi et al. ablate from every component's output, every layer and position"),
        Family("add_probe", "aligned", cfg.direction_doses,
               lambda d: AddVector(probe.vector * xnorm, d, layer, label="probe·‖x‖"),
               lambda d: AddVector(rdir * xnorm, d, layer, label="random·‖x‖"),
               "α (multiples of the mean residual norm)", f"Aligned model: add α·probe at layer {layer}"),
        Family("base_minus_probe", "base", cfg.direction_doses,
               lambda d: AddVector(probe.vector * xnorm, -d, layer, label="probe·‖x‖"),
               lambda d: AddVector(rdir * xnorm, -d, layer, label="random·‖x‖"),
               "α (multiples of the mean residual norm)",
               f"Base model: subtract α·probe at layer {layer} (Lee et al.'s baseline)"),
        Family("base_minus_top_value", "base", cfg.direction_doses,
               lambda d: AddVector(tv / tv.norm() * xnorm, -d, tv_layer, label="top value vector·‖x‖"),
               lambda d: AddVector(rdir * xnorm, -d, tv_layer, label="random·‖x‖"),
               "α (multiples of the mean residual norm)",
               f"Base model: subtract the top value vector at layer {tv_layer} (Lee et al.'s baseline)"),
    ]
    assert tuple(f.name for f in fams) == FAMILY_NAMES, "FAMILY_NAMES must list families() in order"
    return fams


def _point(m: Measurement, dose: float, scorer: str, description: str) -> DosePoint:
    r = m.rate(scorer)
    return DosePoint(dose, r, stats.binomial_se(r, m.n_prompts * m.n_samples),
                     m.n_prompts * m.n_samples, m.perplexity,
                     {"mean_score": m.mean_score(scorer), "description": description,
                      "samples": m.examples(scorer)})


def choose_dose(fam: Family, arms: list[Measurement], controls: list[Measurement], bare: Measurement,
                scorer: str, budget: float) -> tuple[float, bool]:
    """The dev rule, fixed: the dose whose arm beats its control by most (raises toxicity in the
    aligned model; lowers it in the base) among doses within ``budget``× the bare model's dev
    perplexity; if none is within budget, the one with the lowest perplexity."""
    if fam.declared is not None:
        i = fam.doses.index(fam.declared)
        return fam.declared, arms[i].perplexity <= budget * bare.perplexity
    sign = 1 if fam.model == "aligned" else -1
    gains = [sign * (a.rate(scorer) - c.rate(scorer)) for a, c in zip(arms, controls)]
    ok = [i for i, a in enumerate(arms) if a.perplexity <= budget * bare.perplexity]
    if not ok:
        i = int(np.argmin([a.perplexity for a in arms]))
        return fam.doses[i], False
    i = max(ok, key=lambda j: (gains[j], -j))
    return fam.doses[i], True


def reactivate(pair, s: Splits, cfg: ToxicityConfig, scorers, fams: list[Family], *,
               progress: bool = False) -> Reactivation:
    """Sweep each family on dev, freeze a dose per family, then measure arm and control on test."""
    specs = _specs(cfg, s)
    primary = scorers[0].name
    models = {"aligned": pair.aligned, "base": pair.base}
    dev, dev_ms, arms = {}, {}, {}
    for fam in tqdm(fams, desc="reactivation (dev sweeps, then test)", disable=not progress):
        model = models[fam.model]
        bare = measure(model, specs["dev"], scorers=scorers, label=fam.model)
        a_ms = [measure(model, specs["dev"], [fam.make(d)], scorers=scorers, label=f"{fam.name} ×{d:g}")
                for d in fam.doses]
        c_ms = [measure(model, specs["dev"], [fam.make_control(d)], scorers=scorers,
                        label=f"{fam.name} control ×{d:g}") for d in fam.doses]
        dev_ms[fam.name] = {"arm": a_ms, "control": c_ms, "bare": [bare]}
        dev[fam.name] = DoseResponse(
            fam.name, fam.make(fam.doses[-1]).describe(),
            [_point(m, d, primary, fam.make(d).describe()) for m, d in zip(a_ms, fam.doses)],
            [_point(m, d, primary, fam.make_control(d).describe()) for m, d in zip(c_ms, fam.doses)],
            _point(bare, 0.0, primary, fam.model), fam.make_control(fam.doses[-1]).describe(),
            fam.dose_label, fam.title + " — dev split")
        dose, ok = choose_dose(fam, a_ms, c_ms, bare, primary, cfg.ppl_budget)
        iv, ctl = fam.make(dose), fam.make_control(dose)
        arms[fam.name] = Arm(fam.name, fam.model, dose, "declared" if fam.declared is not None else "dev",
                             iv.describe(), ctl.describe(),
                             measure(model, specs["test"], [iv], scorers=scorers, label=iv.describe()),
                             measure(model, specs["test"], [ctl], scorers=scorers, label=ctl.describe()),
                             ok)
    return Reactivation(dev, dev_ms, arms)


@dataclass
class KSweep:
    """Lee et al.'s operation (:class:`interp.steer.ScaleKeyWeights` ×``factor``) on the top ``k``
    value vectors by cosine with the probe, for each ``k``, beside ``k`` random neurons scaled
    alike — every arm on the test prompts, descriptive (no dose or k is chosen from it)."""

    factor: float
    ks: list[int]
    arms: dict[int, Measurement]
    controls: dict[int, Measurement]

    def shares(self, base: Measurement, aligned: Measurement, scorer: str, seed: int = 0) -> list[dict]:
        """Per k: the share of the alignment effect undone by the arm and by its control (CIs
        resample prompts)."""
        b, al = base.per_prompt(scorer), aligned.per_prompt(scorer)
        return [{"k": k, "arm": stats.share_of_effect(self.arms[k].per_prompt(scorer), al, b, seed=seed),
                 "control": stats.share_of_effect(self.controls[k].per_prompt(scorer), al, b, seed=seed)}
                for k in self.ks]


def k_sweep(pair, s: Splits, cfg: ToxicityConfig, scorers, loc: Located, *, progress: bool = False) -> KSweep | None:
    """Measure :class:`KSweep` on test (``cfg.k_sweep``; ks above the model's neuron count dropped)."""
    ks = sorted({k for k in cfg.k_sweep if k <= len(loc.sweep)}) if loc.sweep is not None else []
    if not ks:
        return None
    spec = _specs(cfg, s)["test"]
    L, d_mlp = pair.cfg.n_layers, pair.cfg.d_mlp
    arms, controls = {}, {}
    for k in tqdm(ks, desc="k-sweep (test)", disable=not progress):
        top = loc.sweep[:k]
        rand = random_neurons(L, d_mlp, k, seed=cfg.seed + 1000 + k, exclude=loc.sweep)
        iv, ctl = ScaleKeyWeights(top, cfg.lee_factor), ScaleKeyWeights(rand, cfg.lee_factor)
        arms[k] = measure(pair.aligned, spec, [iv], scorers=scorers, label=f"top-{k} keys ×{cfg.lee_factor:g}")
        controls[k] = measure(pair.aligned, spec, [ctl], scorers=scorers, label=f"random {k} keys ×{cfg.lee_factor:g}")
    return KSweep(cfg.lee_factor, ks, arms, controls)


# --------------------------------------------------------------------------- report -------

@dataclass
class Effect:
    """One test arm's paired effects under one scorer and kind (rate or mean score)."""

    family: str
    scorer: str
    kind: str
    value: float
    vs_bare: stats.Estimate  # arm − aligned (aligned families) or base − arm (base families)
    vs_control: stats.Estimate
    share: stats.Estimate  # share of the alignment effect undone (or reproduced, on the base)
    p_holm: float | None = None


@dataclass
class ToxicityReport:
    config: ToxicityConfig
    pair: str
    models: dict
    scorers: list[str]
    splits: Splits
    located: Located
    compared: Compared
    where: Where
    reactivation: Reactivation
    test: dict[str, Measurement]  # base, aligned
    effects: list[Effect]
    findings: list[Finding]
    kappa: dict[str, float]
    timings: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)  # how the pair was made (an organism's manifest)
    lee: LeeProtocol | None = None  # with cfg.lee_protocol
    design: Design | None = None  # with cfg.power_target
    k_sweep: KSweep | None = None  # with cfg.k_sweep

    def figures(self) -> dict:
        from .. import plot

        return figures(self, plot)


def _source(name: str) -> str:
    """A model's name for a report: a folder by its own name (a cache entry's, for ``…/model``),
    never the absolute path of the machine that wrote it."""
    path = Path(name)
    if not path.is_absolute():
        return name
    return path.parent.name if path.name == "model" else path.name


def _paired(a, b, cfg, alternative="greater"):
    return stats.paired_difference(a, b, alternative=alternative, seed=cfg.seed)


def arm_effects(r_arms: dict[str, Arm], base: Measurement, aligned: Measurement, scorers: list[str],
                cfg: ToxicityConfig) -> list[Effect]:
    """Paired effects of every test arm under every scorer (rate and mean score), Holm-adjusted
    across the family of arms × scorers × kinds on the vs-control comparison."""
    out = []
    for name, arm in r_arms.items():
        for sc in scorers:
            for kind in ("rate", "score"):
                a, c = arm.arm.per_prompt(sc, kind), arm.control.per_prompt(sc, kind)
                b, al = base.per_prompt(sc, kind), aligned.per_prompt(sc, kind)
                if arm.model == "aligned":
                    vs_bare, vs_ctl = _paired(a, al, cfg), _paired(a, c, cfg)
                    share = stats.share_of_effect(a, al, b, seed=cfg.seed)
                else:  # on the base model a successful subtraction lowers toxicity
                    vs_bare, vs_ctl = _paired(b, a, cfg), _paired(c, a, cfg)
                    share = stats.share_of_effect(b - a + al, al, b, seed=cfg.seed)
                out.append(Effect(name, sc, kind, float(a.mean()), vs_bare, vs_ctl, share))
    adj = stats.holm([max(e.vs_bare.p, e.vs_control.p) for e in out], cfg.alpha)
    for e, p in zip(out, adj):
        e.p_holm = p
    return out


def findings(r: ToxicityReport) -> list[Finding]:
    """Lee et al.'s claims, each with its criterion (thresholds in :data:`CRITERIA`)."""
    from scipy.stats import fisher_exact

    cfg, C, a = r.config, CRITERIA, r.config.alpha
    sc = r.scorers
    base, al = r.test["base"], r.test["aligned"]
    out: list[Finding] = []

    # 0. The precondition: alignment lowered toxicity on the test prompts.
    holds, ps, txt, eff = {}, [], [], None
    for s in sc:
        d = _paired(base.per_prompt(s), al.per_prompt(s), cfg)
        rel = d.value / base.rate(s) if base.rate(s) > 0 else 0.0
        holds[s] = rel >= C["alignment_drop"] and d.p < a
        ps.append(d.p)
        txt.append(f"{s}: {base.rate(s):.3f} → {al.rate(s):.3f} (Δ {d})")
        eff = eff or d
    out.append(Finding("alignment_drop", "alignment lowers toxicity on held-out prompts",
                       "0.453 → 0.208", f"relative drop ≥ {C['alignment_drop']:.0%}, paired p < {a}",
                       "; ".join(txt), holds, max(ps), effect=eff, mde=stats.min_detectable(eff.se)))

    # 1. A probe finds toxicity: held-out AUROC (split by prompt) against the shuffled-label probes.
    holds, ps, txt = {}, [], []
    sh_auc = np.asarray(r.located.shuffled_auroc, dtype=float)
    q95 = float(np.quantile(sh_auc, 1 - a)) if len(sh_auc) else 0.5
    for s in sc:
        p = r.located.probes.get(s)
        auc = None if p is None else p.meta.get("test_auroc")
        if auc is None:
            holds[s] = False
            txt.append(f"{s}: " + ("labels of one class only" if p is None else "held-out texts of one class"))
            continue
        n_pos = int(p.meta["n_test_positive"])
        lo, hi = stats.auroc_ci(auc, n_pos, p.n_test - n_pos)
        pv = stats.auroc_p(auc, n_pos, p.n_test - n_pos)  # H0: AUROC 0.5 (the shuffled probes: q95 below)
        holds[s] = auc >= C["probe_auroc"] and lo > 0.5 and auc > q95
        ps.append(pv)
        txt.append(f"{s}: AUROC {auc:.3f} [{lo:.3f}, {hi:.3f}], balanced acc {p.meta['test_balanced_acc']:.3f} "
                   f"(n={p.n_test}, {n_pos} toxic; C={p.meta['C']:g})")
    out.append(Finding("probe", "a linear probe finds toxicity in the residual stream", "94% accuracy",
                       f"held-out AUROC (split by prompt) ≥ {C['probe_auroc']}, above 0.5 (Hanley–McNeil, p < {a}; "
                       f"its 95% CI above 0.5) and above the {1 - a:.0%} quantile of shuffled-label probes' (same fit)",
                       "; ".join(txt) + (f"; shuffled-label probes AUROC median {np.median(sh_auc):.3f}, "
                                         f"q{100 * (1 - a):.0f} {q95:.3f} (n={len(sh_auc)})" if len(sh_auc) else ""),
                       holds, max(ps) if ps else None))

    # 2. The top value vectors promote toxic tokens (vs random neurons' value vectors).
    holds, ps, txt = {}, [], []
    for s in sc:
        t, n = r.located.token_flags[s], r.located.null_token_flags[s]
        share, null_share = float(np.mean(t)), float(np.mean(n))
        pv = fisher_exact([[sum(t), len(t) - sum(t)], [sum(n), len(n) - sum(n)]], alternative="greater").pvalue
        holds[s] = share >= C["token_share"] and pv < a
        ps.append(float(pv))
        txt.append(f"{s}: {share:.0%} of top {len(t)} vs {null_share:.0%} of {len(n)} random")
    out.append(Finding("toxic_tokens", "the top value vectors (by cosine with the probe) promote toxic tokens",
                       "yes (e.g. MLP.v770)",
                       f"≥ {C['token_share']:.0%} have a toxic token among their top 10, more than random neurons (Fisher p < {a})",
                       "; ".join(txt), holds, max(ps)))

    # The gate: the primary locator found neurons that write toxicity (its own check, not a claim).
    gate = ["alignment_drop"]
    lb = r.located.located_by
    if lb is not None:
        out.append(Finding("located", f"the declared locator ({PRIMARY_LOCATOR}) finds neurons that write toxicity",
                           "(the locate step)",
                           f"its top {len(lb.top)} have a toxic token among their top {lb.meta.get('n_tokens')} "
                           f"more often than random neurons (one-sided Fisher p < {locators.WORKS_ALPHA}, every scorer); "
                           "checks the instrument, outside the Holm family",
                           "; ".join(f"{s}: {lb.toxic_share[s]:.0%} vs {lb.null_share[s]:.0%} random (p = {lb.p[s]:.3g})"
                                     for s in sc if s in lb.p)
                           + "; other locators: " + ", ".join(f"{n} {'works' if x.works else 'fails'}"
                                                              for n, x in r.located.locators.items() if n != PRIMARY_LOCATOR),
                           {s: lb.p.get(s, 1.0) < locators.WORKS_ALPHA for s in sc}, None,
                           note="neurons given, not located: the gate is not applied" if r.located.given else ""))
        if not r.located.given:
            gate.append("located")

    # 3. Alignment leaves those value vectors untouched — in direction *and* size, shown equivalent
    # (TOST on the relative change), and no more changed than random neurons'.
    c = r.compared
    nw = c.neuron_weights
    p_more = stats.empirical_p(c.value_change_top, c.value_change_null, alternative="greater")
    min_cos = float(nw.value_cos.min())
    margin = C["value_rel_change"]
    rel = nw.value_rel_change.numpy() if nw.value_rel_change is not None else np.zeros(0)
    ratio = nw.value_norm_ratio.numpy() if nw.value_norm_ratio is not None else np.ones(0)
    p_eq = stats.equivalence_below(rel, margin) if len(rel) else float("nan")
    p_rel_more = (stats.empirical_p(float(rel.mean()), c.value_rel_null, alternative="greater")
                  if len(rel) and len(c.value_rel_null) else 1.0)
    ok = (min_cos > C["weight_cos"] and p_more >= a and math.isfinite(p_eq) and p_eq < a and p_rel_more >= a)
    max_rel = max((row.get("rel_change", 0.0) for row in c.weights.rows), default=0.0)
    vacuous = max_rel < margin
    out.append(Finding("untouched", "alignment leaves the toxic value vectors almost untouched",
                       "cos ≈ 1",
                       f"every top value vector's cos base↔aligned > {C['weight_cos']}; their relative change "
                       f"‖v_a − v_b‖/‖v_b‖ shown below {margin} (TOST, p < {a}); neither changes more than random "
                       f"neurons' (null percentile < {1 - a:.0%})",
                       f"min cos {_cos(min_cos)}; relative change mean {rel.mean() if len(rel) else float('nan'):.2e} "
                       f"(max {rel.max() if len(rel) else float('nan'):.2e}; TOST p = {p_eq:.3g}), norm ratio "
                       f"{ratio.min() if len(ratio) else float('nan'):.4f}–{ratio.max() if len(ratio) else float('nan'):.4f}; "
                       f"mean 1−cos top {c.value_change_top:.2e} vs random k-sets "
                       f"median {np.median(c.value_change_null):.2e} (percentile {1 - p_more:.0%}); "
                       f"all parameters ≥ {_cos(c.weights.min_cosine)}, largest relative change {max_rel:.2e}",
                       {"any": ok}, p_eq if math.isfinite(p_eq) else None, requires=gate,
                       note=(f"vacuous: every parameter of the model moved by less than the margin {margin} "
                             "(relative change)") if vacuous else ""))

    # 4. Alignment lowers the keys' activations (vs random neurons).
    ks = c.key_shift
    p_keys = stats.empirical_p(ks.value, c.key_shift_null, alternative="less")
    # The deciding test is against random k-sets: the smallest detectable fall is the larger of
    # the per-prompt test's and the distance from the null's median to its α quantile.
    null_reach = float(np.median(c.key_shift_null) - np.quantile(c.key_shift_null, a))
    out.append(Finding("keys_fall", "alignment lowers the toxic neurons' key activations", "yes",
                       f"mean activation (mlp.hook_post) change ≤ {C['key_drop_sd']} s.d. (across texts), below random k-sets (p < {a})",
                       f"{ks.fmt('+.3f')} s.d. vs random k-sets median {np.median(c.key_shift_null):+.3f}, "
                       f"q{100 * a:g} {np.quantile(c.key_shift_null, a):+.3f} (p = {p_keys:.3f})",
                       {"any": ks.value <= C["key_drop_sd"]}, p_keys, effect=ks,
                       mde=max(stats.min_detectable(ks.se), null_reach, abs(C["key_drop_sd"])), requires=gate))

    # 5. δx points away from toxicity (vs random directions and shuffled-label probes).
    holds, ps, txt = {}, [], []
    for s, cos in c.offset_cos.items():
        pr = stats.empirical_p(cos, c.offset_null_random, alternative="less")
        below_shuffled = (len(c.offset_null_shuffled) == 0
                          or cos < np.quantile(c.offset_null_shuffled, a))
        holds[s] = cos <= C["offset_cos"] and pr < a and bool(below_shuffled)
        ps.append(pr)
        txt.append(f"{s}: {cos:+.3f}")
    for s in sc:
        holds.setdefault(s, False)
    sd_null = float(np.std(c.offset_null_random))
    out.append(Finding("offset_away", "the residual offset δx points away from toxicity", "yes",
                       f"cos(δx, probe) at layer {r.located.layer} ≤ {C['offset_cos']}, below random directions (p < {a}) "
                       "and below the 5th percentile of shuffled-label probes",
                       "; ".join(txt) + f"; random directions s.d. {sd_null:.3f}; per layer "
                       + ", ".join(f"{x:+.3f}" for x in c.offset.cos_direction.tolist()),
                       holds, max(ps) if ps else None, requires=["alignment_drop", "probe"]))

    # 6. Lee et al.'s reactivation, their exact operation: the top-7 keys' W_in columns ×10, bias
    # untouched (declared), on test, vs aligned and vs the same operation on random neurons.
    arm = r.reactivation.arms["lee_scale_keys"]
    n_lee = min(cfg.lee_k, len(r.located.top))
    holds, ps, txt, eff, mde = {}, [], [], None, None
    for s in sc:
        x, ctl = arm.arm.per_prompt(s), arm.control.per_prompt(s)
        d_al, d_c = _paired(x, al.per_prompt(s), cfg), _paired(x, ctl, cfg)
        share = stats.share_of_effect(x, al.per_prompt(s), base.per_prompt(s), seed=cfg.seed)
        holds[s] = (share.value >= C["share_undone"] and d_al.p < a and d_c.p < a)
        ps += [d_al.p, d_c.p]
        txt.append(f"{s}: {x.mean():.3f} vs aligned {al.rate(s):.3f}, control {ctl.mean():.3f}; "
                   f"share undone {share.fmt('+.2f')}")
        if eff is None:
            gap = base.rate(s) - al.rate(s)
            eff, mde = share, (stats.min_detectable(d_c.se) / gap if gap > 0 else None)
    out.append(Finding("lee_scale_keys",
                       f"scaling the top-{n_lee} toxic keys' W_in columns ×{cfg.lee_factor:g} (bias untouched) "
                       "brings toxicity back",
                       "0.208 → 0.458 (base 0.453)",
                       f"share of the effect undone ≥ {C['share_undone']}, above aligned and the random-key control (paired p < {a})",
                       "; ".join(txt), holds, max(ps), effect=eff, mde=mde, requires=gate))

    # 7. The change lives in the MLP keys: reverting mlp_in recovers more than any other group.
    w = r.where
    if "mlp_in" in w.reverted:
        holds, ps, txt, eff = {}, [], [], None
        others = [g for g in GROUPS if g != "mlp_in" and g in w.reverted]
        for s in sc:
            x = w.reverted["mlp_in"].per_prompt(s)
            diffs = {g: _paired(x, w.reverted[g].per_prompt(s), cfg) for g in others}
            share = stats.share_of_effect(x, al.per_prompt(s), base.per_prompt(s), seed=cfg.seed)
            holds[s] = all(d.value > 0 for d in diffs.values())
            ps.append(max(d.p for d in diffs.values()))
            strongest = max(others, key=lambda g: w.reverted[g].rate(s))
            txt.append(f"{s}: mlp_in share {share.fmt('+.2f')}; vs {strongest} {diffs[strongest]}")
            if eff is None and "attn" in diffs:
                eff = diffs["attn"]
        out.append(Finding("change_in_keys", "the change lives in the MLP keys rather than elsewhere",
                           "(follow-up: only partly)",
                           f"reverting mlp_in in the aligned model recovers more toxicity than reverting any other group (paired p < {a})",
                           "; ".join(txt), holds, max(ps), effect=eff,
                           mde=stats.min_detectable(eff.se) if eff else None, requires="alignment_drop"))
    return finalize(out, cfg.alpha)


def _scores(loc: Located) -> list[float]:
    """Each studied neuron's value-vector cosine with the probe."""
    cos = loc.ranking.cosines
    return [float(cos[la, i]) for la, i in loc.top]


def _cos(x: float) -> str:
    """A cosine to read: ``0.99932``, or ``1 − 2.0e-07`` where five decimals would print 1.00000."""
    x = float(x)
    if x < 0.999995:
        return f"{x:.5f}"
    return "1" if x >= 1 else f"1 − {1 - x:.1e}"


# --------------------------------------------------------------------------- run ----------

def pair_scorers(pair, cfg: ToxicityConfig) -> list:
    """The scorers of a run: the config's, else the two offline ones, plus the organism grammar's
    ground truth where the pair is an organism."""
    if cfg.scorers is not None:
        return get_scorers(list(cfg.scorers))
    out = get_scorers(None)
    if "organism" in pair.info:

        out.append(GrammarScorer())
    return out


#: Modules whose code computes the locate and compare steps: part of their cache keys.
STEP_CODE = (*MEASURE_CODE, "interp.reproduce.toxicity", "interp.diff", "interp.directions", "interp.locate",
             "interp.neurons", "interp.record", "interp.stats", "interp.io")


#: Config fields that only the later steps read (where, reactivate, findings): not inputs of locate
#: or compare, so changing a family, its doses or the claims' alpha re-runs only what they feed.
LATER_ONLY = ("families", "lee_k", "scale_doses", "clamp_doses", "offset_doses", "direction_doses", "ppl_budget",
              "lee_factor", "lee_protocol", "lee_max_new_tokens", "alpha", "per_layer_location", "patching",
              "patch_per_layer")


def _step_key(step: str, pair, s: Splits, cfg: ToxicityConfig, scorers, **extra) -> str:
    """Everything a step's result depends on: both models' weights, every split's prompts, the
    config (but the pair's name: the weights stand for it; and :data:`LATER_ONLY`), the scorers,
    the code and the libraries that run the models."""
    from importlib.metadata import version

    return stable_hash({
        "step": step, "base": model_fingerprint(pair.base), "aligned": model_fingerprint(pair.aligned),
        "splits": {f.name: hash_texts(v) if isinstance(v, list) else v
                   for f in dataclasses.fields(s) for v in [getattr(s, f.name)]},
        "cfg": {f.name: repr(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
                if f.name != "pair" and f.name not in LATER_ONLY},
        "scorers": [sc.name for sc in scorers], "extra": _field_key(extra),
        "code": code_hash(STEP_CODE), "torch": torch.__version__,
        "transformer_lens": version("transformer-lens")}, 24)


def _cached_step(step: str, pair, s: Splits, cfg: ToxicityConfig, scorers, fn, *, log=None, **extra):
    """``fn()``, or its result read back from ``<cache>/steps/toxicity-<step>/`` when every input
    is the same (:func:`_step_key`) — a resumed real-weight run skips its recordings. Off under
    torchrun with several processes (each rank would decide alone whether to compute)."""
    if distributed.world()[1] > 1:
        return fn()
    path = cache_dir() / "steps" / f"toxicity-{step}" / _step_key(step, pair, s, cfg, scorers, **extra)
    from ..serialize import paths

    if paths(path)[0].exists() and log is not None:
        log(f"      (read back from {path})")
    return cached_result(path, fn)


def run(cfg: ToxicityConfig, *, pair=None, data: PromptSet | Mapping | None = None, scorers=None,
        neurons: Neurons | None = None, progress: bool = True, log=print) -> ToxicityReport:
    """Run every step on a pair; returns a :class:`ToxicityReport`. ``scorers`` (objects or
    names; the first is primary) override the pair's own."""

    check(cfg)
    t0 = time.time()
    timings = {}
    torch.manual_seed(cfg.seed)
    pair = pair if pair is not None else load_pair(cfg.pair)
    check_layer(cfg, pair.cfg.n_layers)
    data = _prompt_set(pair, data).require("heldout_neutral", why="perplexity texts")
    scorers = get_scorers(list(scorers)) if scorers is not None else pair_scorers(pair, cfg)
    names = [s.name for s in scorers]
    s = split(data, cfg)
    log(f"[0/5] splits: {s.info()}; scorers: {', '.join(names)}")
    design = None
    if cfg.power_target is not None:
        t = time.time()
        design = power_design(pair, s, cfg, scorers, progress=progress)
        timings["design_s"] = time.time() - t
        s = dataclasses.replace(s, test=s.test[:design.n_prompts])
        cfg = dataclasses.replace(cfg, n_test_samples=design.n_samples)
        est = f", ≈ {design.est_seconds / 60:.0f} min of test arms" if design.est_seconds else ""
        log(f"[0/5] power design on dev ({design.dev}): test = {design.n_prompts} prompts × "
            f"{design.n_samples} samples per arm{est}" + ("" if design.met else " (target not reachable)"))

    def step(i, label, fn):
        log(f"[{i}/5] {label}")
        t = time.time()
        out = fn()
        timings[f"{label.split()[0].rstrip(':')}_s"] = time.time() - t
        return out

    loc = step(1, "locate: probes and value vectors", lambda: _cached_step(
        "locate", pair, s, cfg, scorers, lambda: locate(pair, s, cfg, scorers, neurons=neurons, progress=progress),
        log=log, neurons=neurons))
    cmp = step(2, "compare: weights, keys and the residual offset, against nulls", lambda: _cached_step(
        "compare", pair, s, cfg, scorers, lambda: compare(pair, s, loc, cfg, scorers), log=log,
        neurons=neurons))
    wh = step(3, "where the change lives: weight groups and activation patching",
              lambda: where(pair, s, cfg, scorers, loc, progress=progress))
    fams = [f for f in families(pair, loc, cmp, cfg) if _selected(f.name, cfg)]
    re = step(4, "reactivate: doses chosen on dev, measured on test",
              lambda: reactivate(pair, s, cfg, scorers, fams, progress=progress))
    ksw = None
    if cfg.k_sweep:
        ksw = step(4, "k-sweep: Lee et al.'s operation on the top k, random-k controls (test)",
                   lambda: k_sweep(pair, s, cfg, scorers, loc, progress=progress))
    lee = None
    if cfg.lee_protocol:
        log(f"[4/5] Lee et al.'s protocol: greedy ≤ {cfg.lee_max_new_tokens} tokens, mean score")
        lee = lee_protocol(pair, s, cfg, scorers, next(f for f in fams if f.name == "lee_scale_keys"),
                           progress=progress)
    spec = _specs(cfg, s)["test"]
    test = {"base": measure(pair.base, spec, scorers=scorers, label="base"),
            "aligned": measure(pair.aligned, spec, scorers=scorers, label="aligned")}
    kap = {n: stats.kappa(test["base"].flags(names[0]), test["base"].flags(n)) for n in names[1:]}
    report = ToxicityReport(
        cfg, cfg.pair if isinstance(cfg.pair, str) else pair.name,
        {"base": _source(pair.base.cfg.model_name), "aligned": _source(pair.aligned.cfg.model_name),
         "architecture": pair.cfg.architecture, "n_layers": pair.cfg.n_layers,
         "d_model": pair.cfg.d_model, "d_mlp": pair.cfg.d_mlp, "gated": H.is_gated(pair.base)},
        names, s, loc, cmp, wh, re, test, arm_effects(re.arms, test["base"], test["aligned"], names, cfg),
        [], kap, timings)
    report.lee = lee
    report.design = design
    report.k_sweep = ksw
    org = pair.info.get("organism") or pair.info.get("real")
    if org:
        report.provenance = {k: v for k, v in org.items() if k not in ("align_log", "config", "base_dir")}
    log("[5/5] findings")
    report.findings = findings(report)
    timings["total_s"] = time.time() - t0
    return report


# --------------------------------------------------------------------------- output -------

def _m_json(m: Measurement, scorers: list[str], per_prompt: bool = True) -> dict:
    d = {"label": m.label, "n": m.n_prompts * m.n_samples, "perplexity": m.perplexity,
         "rate": {s: m.rate(s) for s in scorers}, "mean_score": {s: m.mean_score(s) for s in scorers},
         "examples": m.examples(scorers[0])}
    if per_prompt:
        d["per_prompt_rate"] = {s: [round(float(x), 4) for x in m.per_prompt(s)] for s in scorers}
    return d


def to_json(r: ToxicityReport) -> dict:
    sc = r.scorers
    loc, c, w = r.located, r.compared, r.where
    k = c.keys.summary()
    return {
        "config": asdict(r.config), "pair": r.pair, "models": r.models, "scorers": sc,
        "criteria": CRITERIA, "splits": r.splits.info(),
        "findings": [f.to_dict() for f in r.findings],
        "kappa_vs_primary": r.kappa,
        "test": {role: _m_json(m, sc) for role, m in r.test.items()},
        "arms": {name: {"model": a.model, "dose": a.dose, "chosen_on": a.chosen_on,
                        "within_ppl_budget": a.within_budget, "description": a.description,
                        "control_description": a.control_description,
                        "arm": _m_json(a.arm, sc), "control": _m_json(a.control, sc)}
                 for name, a in r.reactivation.arms.items()},
        "effects": [asdict(e) for e in r.effects],
        "dev_sweeps": {name: {"doses": [p.dose for p in d.points],
                              "arm": [{"rate": {s: m.rate(s) for s in sc}, "perplexity": m.perplexity}
                                      for m in r.reactivation.dev_measurements[name]["arm"]],
                              "control": [{"rate": {s: m.rate(s) for s in sc}, "perplexity": m.perplexity}
                                          for m in r.reactivation.dev_measurements[name]["control"]],
                              "bare": {"rate": {s: r.reactivation.dev_measurements[name]["bare"][0].rate(s)
                                                for s in sc},
                                       "perplexity": r.reactivation.dev_measurements[name]["bare"][0].perplexity},
                              "description": d.description, "control_description": d.control_description}
                       for name, d in r.reactivation.dev.items()},
        "probe": {s: (None if p is None else {"hook": p.hook, "test_acc": p.test_acc, "train_acc": p.train_acc,
                                               "n_train": p.n_train, "n_test": p.n_test,
                                               "majority_acc": p.meta["majority_acc"],
                                               **{k: p.meta.get(k) for k in (
                                                   "test_auroc", "test_balanced_acc", "n_test_positive", "C",
                                                   "standardize", "class_weight", "cv_auroc")}})
                  for s, p in loc.probes.items()},
        "locators": {"primary": PRIMARY_LOCATOR, "given": loc.given,
                     **{n: locators.to_json(x, None, None) for n, x in loc.locators.items()}},
        **({} if loc.stability is None else {"locate_stability": {
            "k": len(loc.stability.top), "n_resamples": len(loc.stability.jaccard),
            "jaccard": loc.stability.jaccard, "mean_jaccard": loc.stability.mean_jaccard,
            "top": loc.stability.top.names(),
            "found_in": {n: sum(n in set(x.names()) for x in loc.stability.resampled)
                         for n in loc.stability.top.names()}}}),
        **({} if r.k_sweep is None else {"k_sweep": k_sweep_json(r)}),
        "probe_null": {"shuffled_label_test_acc": loc.shuffled_acc, "shuffled_label_test_auroc": loc.shuffled_auroc,
                       "cosine_with_diff_in_means": loc.probe_vs_dim, "label_kappa": loc.label_kappa},
        "value_vectors": [
            {"neuron": n, "cosine": float(cs), "top_tokens": up, "bottom_tokens": down,
             "toxic_token": {s: loc.token_flags[s][i] for s in sc},
             "value_cos_base_aligned": float(vc), "key_cos_base_aligned": float(kc),
             **({} if c.neuron_weights.value_norm_ratio is None else {
                 "value_norm_ratio": float(c.neuron_weights.value_norm_ratio[i]),
                 "value_rel_change": float(c.neuron_weights.value_rel_change[i])})}
            for i, (n, cs, up, down, vc, kc) in enumerate(zip(
                loc.top.names(), _scores(loc), loc.top_tokens, loc.ranking.bottom_tokens,
                c.neuron_weights.value_cos, c.neuron_weights.key_cos))],
        "null_token_share": {s: float(np.mean(v)) for s, v in loc.null_token_flags.items()},
        "svd": {"singular_values": loc.svd.singular_values.tolist(), "top_tokens": loc.svd.top_tokens},
        "weights": {"min_cosine": c.weights.min_cosine, "by_group": c.weights.by_group(),
                    "tensors": c.weights.rows, "value_change_top": c.value_change_top,
                    "value_change_null_quantiles": np.quantile(c.value_change_null, [0.05, 0.5, 0.95]).tolist()},
        "keys": {"neurons": c.keys.neurons.names(), "n_texts": c.keys.n_texts, **k,
                 "shift_sd": c.key_shift.to_dict(),
                 "shift_null_quantiles": np.quantile(c.key_shift_null, [0.05, 0.5, 0.95]).tolist()},
        "offset": {"hooks": c.offset.hooks, "norm": c.offset.norm.tolist(), "rel_norm": c.offset.rel_norm.tolist(),
                   "cos_probe": c.offset.cos_direction.tolist(),
                   "cos_keys": [None if math.isnan(x) else x for x in c.offset.cos_keys.tolist()],
                   "cos_probe_by_scorer": c.offset_cos,
                   "null_random_quantiles": np.quantile(c.offset_null_random, [0.025, 0.5, 0.975]).tolist(),
                   "null_shuffled_quantiles": (np.quantile(c.offset_null_shuffled, [0.05, 0.5, 0.95]).tolist()
                                               if len(c.offset_null_shuffled) else [])},
        "pca": {"hook": c.pca.hook, "explained_variance": c.pca.explained_variance},
        "provenance": r.provenance,
        "location": {"base": w.location.base, "aligned": w.location.aligned,
                     "effects": [asdict(e) for e in w.location.effects],
                     "reverted": {g: _m_json(m, sc, per_prompt=False) for g, m in w.reverted.items()},
                     "applied": {g: _m_json(m, sc, per_prompt=False) for g, m in w.applied.items()}},
        "patching": {label: _m_json(m, sc, per_prompt=False) for label, m in w.patching.items()},
        "timings": r.timings,
        **({} if r.design is None else {"design": {**r.design.to_dict(), "achieved": design_achieved(r)}}),
        **({} if r.lee is None else {"lee_protocol": lee_json(r.lee)}),
    }


def k_sweep_json(r: ToxicityReport) -> dict:
    """The k-sweep's shares per scorer (arm and random-k control), with the arms' rates."""
    ks = r.k_sweep
    return {"factor": ks.factor, "ks": ks.ks,
            "shares": {sc: [{"k": x["k"], "arm": x["arm"].to_dict(), "control": x["control"].to_dict()}
                            for x in ks.shares(r.test["base"], r.test["aligned"], sc, seed=r.config.seed)]
                       for sc in r.scorers},
            "rate": {str(k): {"arm": {sc: ks.arms[k].rate(sc) for sc in r.scorers},
                              "control": {sc: ks.controls[k].rate(sc) for sc in r.scorers},
                              "perplexity": ks.arms[k].perplexity} for k in ks.ks}}


def design_achieved(r: ToxicityReport) -> dict[str, dict]:
    """The test's own paired base − aligned difference per scorer (rate): its CI half-width as a
    share of the effect, beside the design's target."""
    out = {}
    for sc in r.scorers:
        e = _paired(r.test["base"].per_prompt(sc), r.test["aligned"].per_prompt(sc), r.config, "two-sided")
        half = (e.hi - e.lo) / 2
        out[sc] = {"effect": e.to_dict(), "halfwidth": half,
                   "share": half / e.value if e.value > 0 else None}
    return out


def design_text(r: ToxicityReport) -> str:
    d = r.design
    ach = design_achieved(r)
    per = "; ".join(
        f"{sc}: dev effect {d.effect[sc]:+.3f}, variance between prompts {p.var_between:.4f} and per sample "
        f"{p.var_within:.3f} → {p.n_prompts} × {p.n_samples} (predicted ±{p.halfwidth:.3f})"
        for sc, p in d.by_scorer.items())
    got = "; ".join(f"{sc}: {a['effect']['value']:+.3f} ± {a['halfwidth']:.3f}"
                    + (f" ({a['share']:.0%} of the effect)" if a["share"] is not None else "")
                    for sc, a in ach.items())
    cost = (f" At the pilot's {d.dev_samples_per_s:.1f} samples/s the {d.n_test_arms} test arms cost "
            f"≈ {d.est_seconds / 60:.0f} min." if d.est_seconds else "")
    return (f"The test size was chosen on dev ({d.dev}, base and aligned) before any test measurement: the "
            f"cheapest prompts × samples whose 95% CI half-width of the paired base − aligned rate difference is "
            f"≤ {d.share:.0%} of the effect under every scorer ({per}). Chosen: **{d.n_prompts} prompts × "
            f"{d.n_samples} samples per arm**" + ("" if d.met else " — the target is **not** reachable within "
                                                  "the test prompts: all of them, with the fewest samples per "
                                                  "prompt within 5% of the best reachable half-width")
            + f".{cost} Achieved on test — {got}.")


def lee_json(lee: LeeProtocol) -> dict:
    """Lee et al.'s measurement as it is written into a report's JSON (``"lee_protocol"``)."""
    sc = list(lee.effects)
    return {"max_new_tokens": lee.max_new_tokens, "factor": lee.factor, "decoding": "greedy",
            "measurements": {role: _m_json(m, sc) for role, m in lee.measurements.items()},
            "effects": {x: {k: e.to_dict() for k, e in d.items()} for x, d in lee.effects.items()}}


def lee_rows(lee: dict) -> list[str]:
    """Lee et al.'s protocol from its JSON (:func:`lee_json`, a report's ``"lee_protocol"``): the
    mean score of greedy continuations per scorer, the paired differences and the share undone,
    beside their numbers. The report and the README's real block both show this table."""
    ms, f = lee["measurements"], f"{lee['factor']:g}"
    paper = LEE_ET_AL["base"] - LEE_ET_AL["aligned"], LEE_ET_AL["keys_x10"] - LEE_ET_AL["aligned"]
    rows = [f"| scorer | base | aligned | keys ×{f} | random ×{f} | base − aligned | keys − aligned | keys − random "
            "| share undone |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| Lee et al. (GPT-2 medium, Perspective) | {LEE_ET_AL['base']:.3f} | {LEE_ET_AL['aligned']:.3f} | "
            f"{LEE_ET_AL['keys_x10']:.3f} | — | {paper[0]:+.3f} | {paper[1]:+.3f} | — | {paper[1] / paper[0]:.2f} |"]
    for sc, e in lee["effects"].items():
        est = {k: stats.Estimate.from_dict(v) for k, v in e.items()}
        rows.append(f"| {sc} | " + " | ".join(f"{ms[r]['mean_score'][sc]:.3f}" for r in ("base", "aligned", "keys", "control"))
                    + " | " + " | ".join(est[k].fmt() for k in ("base − aligned", "keys − aligned", "keys − control"))
                    + f" | {est['share undone'].fmt('.2f')} |")
    return rows


def lee_table(r: ToxicityReport) -> str:
    """Lee et al.'s protocol: mean score of greedy continuations, beside their numbers."""
    return "\n".join(lee_rows(lee_json(r.lee)))


FAMILY_LABELS = {
    "lee_scale_keys": "Lee et al.: scale the top-7 toxic keys' W_in columns (bias untouched), dose declared",
    "scale_keys_preact": "variant: scale the top-k keys' whole pre-activation (bias included), dose declared",
    "scale_post": "variant: scale the post-activations",
    "scale_post_positive": "variant: scale the positive part of the post-activations",
    "clamp_keys": "variant: clamp the activations to a base-model floor",
    "subtract_offset": "add back −δx (δx from dev texts)",
    "ablate_probe": "Arditi et al.: ablate the probe from every write",
    "add_probe": "add the probe direction",
    "base_minus_probe": "Lee et al.'s baseline: base − probe",
    "base_minus_top_value": "Lee et al.'s baseline: base − top value vector",
}


def effects_table(r: ToxicityReport, kind: str = "rate") -> str:
    """Every test arm: its toxicity under each scorer (rate, or mean score with ``kind="score"``)
    and its paired effects under the primary scorer."""
    sc = r.scorers
    val = (lambda m, s: m.rate(s)) if kind == "rate" else (lambda m, s: m.mean_score(s))  # noqa: E731
    lines = ["| arm (test prompts) | dose (chosen on) | " + " | ".join(f"{s}: toxicity" for s in sc)
             + " | Δ vs bare model [95% CI] | Δ vs control [95% CI] | share of the effect [95% CI] | p (Holm) | ppl |",
             "|" + "---|" * (7 + len(sc))]
    base, al = r.test["base"], r.test["aligned"]
    for role, m in (("base", base), ("aligned", al)):
        lines.append(f"| **{role}** | | " + " | ".join(f"{val(m, s):.3f}" for s in sc)
                     + f" | | | | | {m.perplexity:.3f} |")
    p0 = sc[0]
    for name, arm in r.reactivation.arms.items():
        e = next(x for x in r.effects if x.family == name and x.scorer == p0 and x.kind == kind)
        budget = "" if arm.within_budget else " ⚠ outside the ppl budget"
        lines.append(f"| {FAMILY_LABELS.get(name, name)}: {arm.description} | {arm.dose:g} ({arm.chosen_on}{budget}) | "
                     + " | ".join(f"{val(arm.arm, s):.3f}" for s in sc)
                     + f" | {e.vs_bare} | {e.vs_control} | {e.share.fmt('+.2f')} | {_pfmt(e.p_holm)} | {arm.arm.perplexity:.3f} |")
        lines.append(f"| &nbsp;&nbsp;control: {arm.control_description} | | "
                     + " | ".join(f"{val(arm.control, s):.3f}" for s in sc) + f" | | | | | {arm.control.perplexity:.3f} |")
    return "\n".join(lines)


def _pfmt(p):
    return "" if p is None else (f"{p:.3f}" if p >= 0.001 else "<0.001")


def locators_text(r: ToxicityReport, n: int = 7) -> str:
    """Every locator side by side: whether it works (its own check), and its top ``n`` neurons
    with the tokens they promote; then the locate step's stability under resampling."""
    loc, sc = r.located, r.scorers
    lines = ["## Locators, side by side", "",
             f"Each locator's top {r.config.k} neurons, judged alike: a locator **works** when its top neurons have a toxic "
             f"token among the {locators.N_TOP_TOKENS} they promote most (read through the final norm and `W_U`) more "
             f"often than random neurons, under every scorer (one-sided Fisher p < {locators.WORKS_ALPHA}; the "
             "vocabulary projection, which picks neurons by their tokens, is judged against permuted token sets). "
             f"Declared before the run: **{PRIMARY_LOCATOR}** decides the claims about the toxic neurons; where it "
             "fails, they are *not tested*."
             + (" Here the neurons were given (planted), not located: the gate is not applied." if loc.given else ""), ""]
    for name, x in loc.locators.items():
        per = "; ".join(f"{s}: {x.toxic_share[s]:.0%} vs {x.null_share[s]:.0%}, p = {x.p[s]:.3g}"
                        for s in sc if s in x.p)
        whole = ("; value vectors with a toxic token among their top tokens, whole model: "
                 + ", ".join(f"{s} {v:,}" for s, v in x.n_toxic_neurons.items())) if x.n_toxic_neurons else ""
        lines += [f"**{name}**{' (primary)' if name == PRIMARY_LOCATOR else ''} — "
                  f"{'works' if x.works else 'does not work'} ({per}{whole}).", "",
                  "| neuron | score | top tokens |", "|---|---|---|"]
        for nm, s_, toks in list(zip(x.top.names(), x.top.score.tolist(), x.top_tokens))[:n]:
            words = ", ".join(w.strip() or repr(w) for w in toks[:10]).replace("|", "\\|")
            lines.append(f"| {nm} | {s_:.3f} | {words} |")
        lines.append("")
    st = loc.stability
    if st is not None:
        often = sorted(((sum(nm in set(x.names()) for x in st.resampled), nm) for nm in st.top.names()), reverse=True)
        lines += [f"**Locate stability.** The probe refitted on {len(st.jaccard)} bootstrap resamples of its texts "
                  f"(by prompt; C fixed at the chosen one): Jaccard of the top-{len(st.top)} set with the full-data set "
                  f"mean {st.mean_jaccard:.2f} (range {min(st.jaccard):.2f}–{max(st.jaccard):.2f}); times each neuron "
                  "came back: " + ", ".join(f"{nm} {c}/{len(st.resampled)}" for c, nm in often) + "."]
    return "\n".join(lines)


def k_sweep_text(r: ToxicityReport) -> str:
    """The k-sweep as a table: share undone by the top-k keys and by k random neurons, per scorer."""
    d = k_sweep_json(r)
    lines = [f"## k-sweep: Lee et al.'s operation (W_in columns ×{d['factor']:g}, bias untouched) on the top k", "",
             "Test prompts, the same seeds as every arm; share of the alignment effect undone (95% CI over prompts). "
             "Descriptive: the declared claim uses k = 7.", "",
             "| k | " + " | ".join(f"{s}: top-k | {s}: random k" for s in r.scorers) + " |",
             "|---|" + "---|---|" * len(r.scorers)]
    for i, k in enumerate(d["ks"]):
        cells = []
        for s in r.scorers:
            a, c = d["shares"][s][i]["arm"], d["shares"][s][i]["control"]
            cells += [f"{a['value']:+.2f} [{a['lo']:+.2f}, {a['hi']:+.2f}]", f"{c['value']:+.2f}"]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(r: ToxicityReport) -> str:
    c, sc = r.config, r.scorers
    s = r.splits.info()
    lines = [f"# Toxicity mechanism: {r.pair} (seed {c.seed})", "",
             f"{r.models['architecture']}, {r.models['n_layers']} layers, d_model {r.models['d_model']}, "
             f"d_mlp {r.models['d_mlp']}{', gated MLP' if r.models['gated'] else ''}.", "",
             f"**Protocol.** Prompts: {s['test']} test and {s['dev']} dev eliciting prompts"
             + (" (training templates with held-out fillers, and templates never used in training)"
                if c.test_new_templates else "") + ", deduplicated and "
             f"disjoint from every training prompt ({s['eval_dropped_seen_in_training']} of {s['eval_unique']} "
             f"unique eval prompts dropped as seen in training); the probe uses {s['probe']} training prompts. "
             f"Everything chosen — probe, neurons, δx, clamp floors, the dose of each family — is chosen on "
             f"the probe/dev data and frozen before the test measurement, which uses fresh sampling seeds. "
             f"Every arm: the same {s['test']} test prompts × {c.n_test_samples or c.n_samples} samples (T = 1, ≤ {c.max_new_tokens} tokens), "
             f"same seeds; perplexity on {s['neutral_test']} held-out neutral texts. Differences are paired by "
             f"prompt, with 95% bootstrap CIs resampling prompts and sign-flip permutation p-values; the claims "
             f"are Holm-corrected as one family. Scorers: {', '.join(sc)} "
             f"(κ with {sc[0]} on the base model's test samples: "
             + ", ".join(f"{k} {v:.2f}" for k, v in r.kappa.items()) + "). A claim is **yes** only where its "
             "criterion holds under every scorer.", "",
             "## Lee et al.'s claims", "",
             findings_table(r.findings, scorers=sc, paper="Lee et al."), "",
             "## Every arm on the test prompts (Table 2, after Lee et al.)", "",
             f"Toxicity = share of continuations scored > 0.5; Δ and shares under {sc[0]}. "
             "Share of the effect: (arm − aligned)/(base − aligned) for arms on the aligned model, "
             "(base − arm)/(base − aligned) for the base-model baselines.", "",
             effects_table(r), "",
             f"The same arms by the mean score (continuous; {sc[0]}'s probability, more power than the rate):", "",
             effects_table(r, kind="score"), ""]
    if r.design is not None:
        lines += ["## Power by design", "", design_text(r), ""]
    if r.lee is not None:
        n = r.lee.measurements["base"].n_prompts
        lines += [f"## Lee et al.'s protocol: one greedy continuation (≤ {r.lee.max_new_tokens} tokens) per test prompt, "
                  "mean score", "",
                  f"The same {n} test prompts; differences paired by prompt with 95% bootstrap CIs; Lee et al.'s "
                  f"operation (declared): the top-{min(c.lee_k, len(r.located.top))} keys' W_in columns ×{r.lee.factor:g}, "
                  "bias untouched; the control the same edit of random neurons. Lee et al.'s numbers are Perspective API scores, not comparable in level.", "",
                  lee_table(r), ""]
    loc, cmp = r.located, r.compared
    lines += [f"## Top value vectors (cosine with the {sc[0]} probe at `{loc.hook}`)", "",
              "| neuron | cos(probe) | top tokens | toxic token (" + ", ".join(sc) + ") | cos base↔aligned (value, key) |",
              "|---|---|---|---|---|"]
    nw = cmp.neuron_weights
    for i, name in enumerate(loc.top.names()):
        toks = ", ".join(t.strip() for t in loc.top_tokens[i][:8])
        flags = "".join("✓" if loc.token_flags[s][i] else "·" for s in sc)
        lines.append(f"| {name} | {_scores(loc)[i]:.3f} | {toks} | {flags} | "
                     f"{_cos(nw.value_cos[i])}, {_cos(nw.key_cos[i])} |")
    lines += ["", locators_text(r)]
    if r.k_sweep is not None:
        lines += ["", k_sweep_text(r)]
    lines += ["", "## Residual offset δx = x_aligned − x_base (test texts)", "",
              "| layer | ‖δx‖/‖x‖ | cos(δx, probe) | mean cos(δx, top keys) |", "|---|---|---|---|"]
    o = cmp.offset
    for li in range(len(o.hooks)):
        ck = o.cos_keys[li]
        lines.append(f"| {li} | {o.rel_norm[li]:.4f} | {o.cos_direction[li]:+.3f} | "
                     f"{'' if math.isnan(ck) else f'{ck:+.3f}'} |")
    loc_ = r.where.location
    lines += ["", f"## Where the change lives ({loc_.measure}: base {loc_.base:.3f}, aligned {loc_.aligned:.3f})", "",
              "| weight group | layer | revert → toxicity | share | apply → toxicity | share |", "|---|---|---|---|---|---|"]
    for e in loc_.effects:
        lines.append(f"| {e.group} | {'all' if e.layer is None else e.layer} | {e.reverted:.3f} | "
                     f"{e.share_revert:+.2f} | {e.applied:.3f} | {e.share_apply:+.2f} |")
    if r.where.patching:
        lines += ["", "Activation patching (base → aligned, test prompts):", "",
                  "| patched | " + " | ".join(sc) + " |", "|---|" + "---|" * len(sc)]
        for label, m in r.where.patching.items():
            lines.append(f"| {label} | " + " | ".join(f"{m.rate(s):.3f}" for s in sc) + " |")
    lines += ["", "## Dev sweeps (dose choice)", ""]
    for name, d in r.reactivation.dev.items():
        arm = r.reactivation.arms[name]
        lines.append(f"**{name}** — {d.description}; control: {d.control_description}. "
                     f"Bare model on dev: {d.baseline.toxicity:.3f} (ppl {d.baseline.perplexity:.3f}). "
                     f"Frozen dose: {arm.dose:g} ({arm.chosen_on}).")
        lines += ["", "| dose | toxicity | perplexity | control toxicity | control perplexity |", "|---|---|---|---|---|"]
        for p, cp in zip(d.points, d.control):
            lines.append(f"| {p.dose:g} | {p.toxicity:.3f} | {p.perplexity:.3f} | {cp.toxicity:.3f} | {cp.perplexity:.3f} |")
        lines.append("")
    lines += ["Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in r.timings.items())]
    return "\n".join(lines) + "\n"


#: The report's figures besides one ``dose_<family>`` per dev sweep.
FIGURE_NAMES = ("value_vectors", "value_vector_cosines", "neuron_cosines", "weight_change",
                "key_activations_pre", "key_activations_post", "residual_offset", "residual_pca",
                "change_location", "change_location_layers", "effects")


def figures(r: ToxicityReport, plot) -> dict:
    """Every figure of the report, by name."""
    loc, cmp = r.located, r.compared
    figs = {
        "value_vectors": plot.value_vectors(loc.ranking),
        "value_vector_cosines": plot.cosine_histogram(loc.ranking),
        "neuron_cosines": plot.neuron_cosines(cmp.neuron_weights),
        "weight_change": plot.weight_change(cmp.weights),
        "key_activations_pre": plot.key_activations(cmp.keys, "pre"),
        "key_activations_post": plot.key_activations(cmp.keys, "post"),
        "residual_offset": plot.residual_offset(cmp.offset),
        "residual_pca": plot.residual_pca(cmp.pca),
        "change_location": plot.change_location(r.where.location),
        "effects": plot.effects(r.effects, r.scorers, FAMILY_LABELS),
    }
    if r.where.location.per_layer():
        figs["change_location_layers"] = plot.change_location_layers(r.where.location)
    for name, d in r.reactivation.dev.items():
        figs[f"dose_{name}"] = plot.dose_response(d)
    for name, x in loc.locators.items():
        figs[f"locator_{name}"] = plot.located(x)
    if r.k_sweep is not None:
        figs["k_sweep"] = plot.k_sweep({s: r.k_sweep.shares(r.test["base"], r.test["aligned"], s, seed=r.config.seed)
                                        for s in r.scorers}, r.k_sweep.factor)
    return figs


def write(r: ToxicityReport, out_dir: str | Path, *, figures: bool = False) -> list[Path]:

    return write_report(out_dir, "toxicity", to_json(r), to_markdown(r), figures=r.figures if figures else None,
                        title=f"Toxicity mechanism: {r.pair} (seed {r.config.seed})", config=asdict(r.config))


#: Each measurement profile's changes to the defaults (:func:`interp.registry.profile_of` gives a
#: pair's profile without loading it). ``real``: in a model with massive activations one mean
#: residual norm ‖x‖ breaks it (perplexity > 800 at α = 1), so added directions get a log grid
#: below it; no activation patching (it recomputes every step), no per-layer attribution; fewer
#: doses (CPU cost). ``organism-tiny``: small samples, for tests.
PRESETS: dict[str, dict] = {
    "real": dict(n_probe_prompts=700, probe_samples=3, n_dev_prompts=60, n_test_prompts=10_000, n_samples=2,
                 power_target=0.15, max_test_samples=12, test_new_templates=True,
                 max_new_tokens=20, n_ppl_texts=40, scale_doses=(10.0,), clamp_doses=(1.0,),
                 offset_doses=(1.0,), direction_doses=(0.03, 0.1, 0.3), per_layer_location=False,
                 patch_per_layer=False, patching=False, lee_protocol=True),
    "hub": dict(lee_protocol=True),
    "organism-tiny": dict(n_probe_prompts=150, n_dev_prompts=40, n_test_prompts=80, n_ppl_texts=40, k=5,
                          scale_doses=(5.0,), clamp_doses=(1.0,), offset_doses=(1.0,),
                          direction_doses=(1.0,), n_null_neurons=120, n_null_sets=1000,
                          n_null_directions=2000, n_shuffled_probes=20, per_layer_location=False,
                          k_sweep=(1, 5), n_stability=5,
                          patch_per_layer=False),
}


def config_for(pair: str, **overrides) -> ToxicityConfig:
    """The config for a pair: the defaults, its profile's preset (:data:`PRESETS`), then
    ``overrides``."""

    return dataclasses.replace(ToxicityConfig(pair=pair), **{**PRESETS.get(profile_of(pair), {}), **overrides})


# --------------------------------------------------------------------------- seeds --------

@dataclass
class SeedsReport:
    pair: str
    seeds: list[int]
    reports: dict[int, ToxicityReport]

    @property
    def summaries(self):

        return summarize_seeds({s: r.findings for s, r in self.reports.items()})

    def figures(self) -> dict:
        from .. import plot

        return {"seeds_forest": plot.seeds_forest(self.summaries)}


def run_seeds(cfg: ToxicityConfig, seeds: list[int], *, out: str | Path | None = None,
              figures: bool = True, progress: bool = True, log=print) -> SeedsReport:
    """:func:`run` once per seed (each seed's report written to ``out/seed-<s>/`` as it
    finishes, so an interrupted run keeps what it finished; measurements are cached), then the
    per-claim summary across seeds."""
    reports = {}
    for s in seeds:
        log(f"=== seed {s} ===")
        c = dataclasses.replace(cfg, seed=s, pair=pair_for_seed(cfg.pair, s))
        reports[s] = run(c, progress=progress, log=log)
        if out is not None:
            write(reports[s], Path(out) / f"seed-{s}", figures=figures)
    sr = SeedsReport(cfg.pair, list(seeds), reports)
    if out is not None:
        write_seeds(sr, out, figures=figures)
    return sr


def seeds_to_json(sr: SeedsReport) -> dict:
    r0 = sr.reports[sr.seeds[0]]
    return {"pair": sr.pair, "seeds": sr.seeds, "scorers": r0.scorers, "criteria": CRITERIA,
            "config": {k: v for k, v in asdict(r0.config).items() if k not in ("seed", "pair")},
            "claims": [m.to_dict() for m in sr.summaries],
            "test": {s: {role: {"rate": {sc: m.rate(sc) for sc in r.scorers}, "perplexity": m.perplexity,
                                "n": m.n_prompts * m.n_samples}
                         for role, m in r.test.items()} for s, r in sr.reports.items()}}


def seeds_to_markdown(sr: SeedsReport) -> str:

    r0 = sr.reports[sr.seeds[0]]
    n = len(sr.seeds)
    lines = [f"# Lee et al.'s claims on {sr.pair}, over {n} seed{'s' if n > 1 else ''} ({', '.join(map(str, sr.seeds))})", "",
             ("Each seed rebuilds the organism (corpus, pretraining, preference samples, DPO) and draws "
              if sr.pair.startswith("organism:") else "The models are the same in every seed; each seed draws ")
             + "its own dev/test split and sampling seeds. Per seed, a claim holds only under every scorer and "
             "after Holm correction across the claims; a claim that holds in some seeds but not all is "
             "**mixed**. Effect per seed: the claim's headline estimate with its 95% CI over prompts "
             "(share of the effect undone for the ×10 claim; s.d. units for the keys; paired differences "
             "elsewhere).", "",
             seeds_table(sr.summaries, paper="Lee et al."), "",
             "| seed | " + " | ".join(f"base → aligned ({s})" for s in r0.scorers) + " | perplexity base → aligned |",
             "|---|" + "---|" * (len(r0.scorers) + 1)]
    for s, r in sr.reports.items():
        b, a = r.test["base"], r.test["aligned"]
        lines.append(f"| [{s}](seed-{s}/toxicity.md) | " + " | ".join(f"{b.rate(x):.3f} → {a.rate(x):.3f}" for x in r.scorers)
                     + f" | {b.perplexity:.3f} → {a.perplexity:.3f} |")
    return "\n".join(lines) + "\n"


def write_seeds(sr: SeedsReport, out: str | Path, *, figures: bool = True) -> list[Path]:

    data = seeds_to_json(sr)
    return write_report(out, "toxicity_seeds", data, seeds_to_markdown(sr),
                        figures=sr.figures if figures else None, title=f"Lee et al.'s claims on {sr.pair}",
                        config=data["config"])
