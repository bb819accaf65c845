"""The steps of the toxicity reproduction, each a function with a typed result: :func:`split` → :func:`locate` → :func:`compare` → :func:`where` → :func:`reactivate` (and :func:`k_sweep`, :func:`lee_protocol`, :func:`power_design`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from einops import reduce
from tqdm.auto import tqdm

from ... import hooks as H
from ... import locate as locators
from ... import stats
from ...attribution import ChangeLocation, GroupEffect, swapped_weights
from ...diff import (
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
from ...directions import Direction, cosine, diff_in_means, random_direction, train_probe
from ...groups import NeuronGroups, contributions
from ...groups import neuron_groups as group_split
from ...locate import LocatedNeurons, LocateStability
from ...measure import Measurement, MeasureSpec, measure
from ...neurons import (
    Neurons,
    ValueVectorRanking,
    VectorSVD,
    random_neurons,
    rank_value_vectors,
    svd_of_values,
    top_neurons,
    value_vectors_of,
    vocab_projection,
)
from ...prompts import PromptSet
from ...record import record, record_pair
from ...steer import (
    AblateDirection,
    AddVector,
    ClampNeurons,
    DosePoint,
    DoseResponse,
    PatchActivations,
    ScaleKeyWeights,
    ScaleNeurons,
)
from .config import FAMILY_NAMES, PRIMARY_LOCATOR, ToxicityConfig, _selected


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
    signs: torch.Tensor | None = None  # gated MLPs: each neuron's mean-activation sign (the ranking reads v × it)

    @property
    def probe(self) -> Direction:
        return self.probes[self.primary]

    @property
    def located_by(self) -> LocatedNeurons | None:
        """The declared primary locator's answer (:data:`PRIMARY_LOCATOR`)."""
        return self.locators.get(PRIMARY_LOCATOR)


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


@torch.no_grad()
def activation_signs(model, texts: list[str]) -> torch.Tensor:
    """``[n_layers d_mlp]``: the sign (±1) of each neuron's mean activation over ``texts``. Lee et
    al.'s ranking translated to a gated MLP (SwiGLU/GeGLU), whose activation takes either sign: a
    neuron writes sign(E[act])·v on average, so the ranking reads each value vector with this sign
    (:func:`interp.neurons.rank_value_vectors`). In GPT-2 (GELU, activations ≥ −0.17) the ranking is
    Lee et al.'s as is and this is not used."""
    hooks = [H.mlp_post(la) for la in range(model.cfg.n_layers)]
    rec = record(model, texts, hooks, reduction="mean", progress=False)
    mean_act = torch.stack([rec[h].float().mean(0) for h in hooks])
    return torch.where(mean_act < 0, -1.0, 1.0)


def probe_options(cfg: ToxicityConfig) -> dict:
    """The probe's fitting options (:func:`interp.directions.train_probe`) from the config."""
    return dict(standardize=cfg.probe_standardize, class_weight=cfg.probe_class_weight,
                Cs=tuple(cfg.probe_Cs) or None)


def locate(pair, s: Splits, cfg: ToxicityConfig, scorers, *, neurons: Neurons | None = None,
           progress: bool = False) -> Located:
    """A probe per scorer on the base model's residual (held-out split by prompt; standardised,
    class-weighted, C by grouped cross-validation), shuffled-label probes as the null, the value
    vectors nearest the primary probe, and their vocabulary; beside it every other locator
    (difference in means, vocabulary projection, direct logit attribution on the flagged
    samples), each judged by the same test, and the locate
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
    fixed = {**opts, "Cs": None, "C": probe.meta["C"]}
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
    signs = activation_signs(pair.base, texts) if H.is_gated(pair.base) else None
    ranking = rank_value_vectors(pair.base, probe, k=cfg.k, signs=signs)
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
    top_signs = None if signs is None else signs[ranking.top.layer, ranking.top.index]
    found = {"probe": locators.judge("probe", pair.base, probe_top, scorers, signs=top_signs, **judge_kw),
             "diff_in_means": locators.by_direction(pair.base, dim, scorers, cfg.k, name="diff_in_means",
                                                    **judge_kw),
             "vocab_projection": locators.vocab_projection(pair.base, scorers, cfg.k, flags=vocab, seed=cfg.seed)}
    # Direct logit attribution on the probe texts the primary scorer flagged (selection split).
    toxic = np.flatnonzero(labels[primary])
    if len(toxic):
        rep = np.repeat(np.asarray(s.probe, dtype=object), m.n_samples)
        found["logit_attribution"] = locators.by_attribution(
            pair.base, [rep[i] for i in toxic], [m.completions[i] for i in toxic], scorers, cfg.k, **judge_kw)
    stability = None
    if cfg.n_stability:
        stability = locators.locate_stability(pair.base, X, labels[primary], groups, k=cfg.k, n=cfg.n_stability,
                                              seed=cfg.seed, probe_kwargs=fixed, signs=signs)
    n_sweep = min(max((*cfg.k_sweep, cfg.k)), L * pair.cfg.d_mlp)
    sweep = top_neurons(ranking.cosines, n_sweep, "top value vectors (probe)")
    return Located(hook, layer, texts, groups, labels, probes, primary, sh_acc,
                   torch.stack(sh_dirs) if sh_dirs else torch.zeros(0, pair.cfg.d_model), dim,
                   float(torch.dot(probe.vector, dim.vector)), ranking, svd_of_values(pair.base, top),
                   top, control, null, token_flags, null_flags, kap,
                   float(X.norm(dim=-1).mean()), top_tokens, neurons is not None,
                   shuffled_auroc=sh_auc, locators=found, stability=stability, sweep=sweep, signs=signs)


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
    if H.is_gated(pair.base):
        # A gated neuron writes act·v with act of either sign: its write onto the probe direction
        # changes by Δact·(v·d), in s.d. units z·sign(v·d) — "keys fall" means that write falls.
        unsigned = loc.ranking.cosines * loc.signs  # the ranking's cosines are the signed vectors'
        z = z * torch.sign(unsigned).flatten().numpy()[None, :]
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


@dataclass
class Where:
    """Revert/apply each weight group on the test prompts (per-prompt rates, primary scorer kept
    for the figure; every scorer for the claim), and activation patching — at ``cfg.where_samples``
    per prompt, with base and aligned measured at that size (the reference of every share here)."""

    location: ChangeLocation
    reverted: dict[str, Measurement]  # group → aligned model with that group reverted
    applied: dict[str, Measurement]
    patching: dict[str, Measurement]
    base: Measurement | None = None  # base and aligned at the step's own size (None: the test arms')
    aligned: Measurement | None = None


def where(pair, s: Splits, cfg: ToxicityConfig, scorers, loc: Located, *, progress: bool = False) -> Where:
    spec = _specs(cfg, s)["test"]
    own = cfg.where_samples is not None and cfg.where_samples != spec.n_samples
    if own:
        spec = _test_at(cfg, s, cfg.where_samples)
    names = [sc.name for sc in scorers]
    m_base, m_al = _base_aligned(pair, spec, scorers)
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
    return Where(location, reverted, applied, patching, *((m_base, m_al) if own else (None, None)))


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


def _test_at(cfg: ToxicityConfig, s: Splits, n_samples: int) -> MeasureSpec:
    """The test split's sampling settings at ``n_samples`` per prompt (a descriptive step's own size)."""
    return dataclasses.replace(_specs(cfg, s)["test"], n_samples=n_samples)


def _base_aligned(pair, spec: MeasureSpec, scorers) -> tuple[Measurement, Measurement]:
    """Base and aligned at ``spec``: the reference a share undone is read against at that size."""
    return (measure(pair.base, spec, scorers=scorers, label="base"),
            measure(pair.aligned, spec, scorers=scorers, label="aligned"))


@dataclass
class KSweep:
    """Lee et al.'s operation (:class:`interp.steer.ScaleKeyWeights` ×``factor``) on the top ``k``
    value vectors by cosine with the probe, for each ``k``, beside ``k`` random neurons scaled
    alike — every arm on the test prompts, descriptive (no dose or k is chosen from it)."""

    factor: float
    ks: list[int]
    arms: dict[int, Measurement]
    controls: dict[int, Measurement]
    base: Measurement | None = None  # base and aligned at the sweep's own size (cfg.k_sweep_samples)
    aligned: Measurement | None = None

    def shares(self, base: Measurement, aligned: Measurement, scorer: str, seed: int = 0) -> list[dict]:
        """Per k: the share of the alignment effect undone by the arm and by its control (CIs
        resample prompts); against the sweep's own base and aligned where it measured them."""
        base, aligned = self.base or base, self.aligned or aligned
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
    own = cfg.k_sweep_samples is not None and cfg.k_sweep_samples != spec.n_samples
    if own:
        spec = _test_at(cfg, s, cfg.k_sweep_samples)
    L, d_mlp = pair.cfg.n_layers, pair.cfg.d_mlp
    arms, controls = {}, {}
    for k in tqdm(ks, desc="k-sweep (test)", disable=not progress):
        top = loc.sweep[:k]
        rand = random_neurons(L, d_mlp, k, seed=cfg.seed + 1000 + k, exclude=loc.sweep)
        iv, ctl = ScaleKeyWeights(top, cfg.lee_factor), ScaleKeyWeights(rand, cfg.lee_factor)
        arms[k] = measure(pair.aligned, spec, [iv], scorers=scorers, label=f"top-{k} keys ×{cfg.lee_factor:g}")
        controls[k] = measure(pair.aligned, spec, [ctl], scorers=scorers, label=f"random {k} keys ×{cfg.lee_factor:g}")
    if not own:
        return KSweep(cfg.lee_factor, ks, arms, controls)
    return KSweep(cfg.lee_factor, ks, arms, controls, *_base_aligned(pair, spec, scorers))


@dataclass
class StabilityUndone:
    """Lee et al.'s edit (:class:`interp.steer.ScaleKeyWeights` ×``factor``) on the top ``k`` of
    each bootstrap resample's located set (:class:`interp.locate.LocateStability`) and of the
    full-data set, on the test prompts at ``n_samples`` per prompt, beside base and aligned at the
    same size: how much of the share undone depends on which probe texts were drawn. Descriptive."""

    factor: float
    k: int
    n_samples: int
    full: Measurement
    resampled: list[Measurement]
    base: Measurement
    aligned: Measurement

    def shares(self, scorer: str, seed: int = 0) -> dict:
        """The full set's share undone (95% CI over prompts) and each resample's point share."""
        b, al = self.base.per_prompt(scorer), self.aligned.per_prompt(scorer)
        full = stats.share_of_effect(self.full.per_prompt(scorer), al, b, seed=seed)
        gap = float(np.mean(b) - np.mean(al))
        each = [float((np.mean(m.per_prompt(scorer)) - np.mean(al)) / gap) if gap > 0 else float("nan")
                for m in self.resampled]
        return {"full": full, "resampled": each}


def stability_undone(pair, s: Splits, cfg: ToxicityConfig, scorers, loc: Located, *,
                     progress: bool = False) -> StabilityUndone | None:
    """Measure :class:`StabilityUndone` (``cfg.stability_samples``; None: the test arms' samples)."""
    st = loc.stability
    n = cfg.stability_samples if cfg.stability_samples is not None else (cfg.n_test_samples or cfg.n_samples)
    if st is None or not n or loc.given:
        return None
    spec = _test_at(cfg, s, n)
    k = cfg.lee_k

    def arm(top, label):
        return measure(pair.aligned, spec, [ScaleKeyWeights(top[:k], cfg.lee_factor)], scorers=scorers, label=label)

    full = arm(st.top, f"top-{k} keys ×{cfg.lee_factor:g} (all probe texts)")
    resampled = [arm(t, f"top-{k} keys ×{cfg.lee_factor:g} (resample {i})")
                 for i, t in enumerate(tqdm(st.resampled, desc="locate resamples (test)", disable=not progress))]
    return StabilityUndone(cfg.lee_factor, k, n, full, resampled, *_base_aligned(pair, spec, scorers))


def neuron_groups(pair, s: Splits, cfg: ToxicityConfig, loc: Located, test_base: Measurement, *,
                  progress: bool = False) -> NeuronGroups:
    """Yang et al.'s neuron groups (:mod:`interp.groups`) on the primary probe's direction at its
    layer: groups formed on the probe texts (one base sample per selection prompt), shares measured
    on the test prompts' first base sample each; "located" is Lee's top ``lee_k``."""
    probe = loc.probes[loc.primary]
    n = loc.groups.max() + 1
    first = np.searchsorted(loc.groups, np.arange(n))  # each prompt's first sample (texts are prompt-major)
    dev = contributions(pair, [loc.texts[i] for i in first], probe, layer=loc.layer, progress=progress)
    k = test_base.n_samples
    test_texts = [p + c for p, c in zip(s.test[:test_base.n_prompts], test_base.completions[::k])]
    test = contributions(pair, test_texts, probe, layer=loc.layer, progress=progress)
    return group_split(dev, test, located=loc.top[:cfg.lee_k], direction_name=f"probe ({loc.primary})", seed=cfg.seed)


@dataclass
class Pareto:
    """Every aligned-model family over its dose grid (the dev grid, fixed before the run) on the
    test prompts: what each dose undoes (share of the alignment effect, per scorer) against what
    it costs — the per-token KL from the aligned model on the test split's neutral text — beside
    its random control at the same dose. Base and aligned are measured at the same size."""

    n_samples: int
    base: Measurement
    aligned: Measurement
    points: dict[str, list[dict]]  # family -> [{dose, arm, control, arm_kl, control_kl}], kl as (sum, count) per text
    declared: dict[str, float]  # family -> its frozen test dose (the arm the claims use)

    def rows(self, scorers: list[str], seed: int = 0) -> dict[str, list[dict]]:
        """Per family and dose: share undone (CI over prompts) per scorer and mean per-token KL
        (CI over texts), for the arm and its control."""
        b = {sc: self.base.per_prompt(sc) for sc in scorers}
        al = {sc: self.aligned.per_prompt(sc) for sc in scorers}
        out = {}
        for fam, pts in self.points.items():
            out[fam] = [{"dose": p["dose"], **{
                role: {"share": {sc: stats.share_of_effect(p[role].per_prompt(sc), al[sc], b[sc], seed=seed)
                                 for sc in scorers},
                       "kl": stats.ratio_of_sums(*p[f"{role}_kl"], seed=seed),
                       "perplexity": p[role].perplexity}
                for role in ("arm", "control")}} for p in pts]
        return out


def pareto(pair, s: Splits, cfg: ToxicityConfig, scorers, fams: list[Family], arms: dict, *,
           progress: bool = False) -> Pareto | None:
    """Measure :class:`Pareto` (``cfg.pareto``; ``cfg.pareto_samples`` per test prompt)."""
    from ...evaluate import token_kl

    fams = [f for f in fams if f.model == "aligned"]
    if not fams:
        return None
    spec = _test_at(cfg, s, cfg.pareto_samples or cfg.n_test_samples or cfg.n_samples)
    neutral = list(s.neutral_test)
    points = {}
    for fam in tqdm(fams, desc="Pareto (test)", disable=not progress):
        pts = []
        for d in fam.doses:
            iv, ctl = fam.make(d), fam.make_control(d)
            pts.append({"dose": d,
                        "arm": measure(pair.aligned, spec, [iv], scorers=scorers, label=iv.describe()),
                        "control": measure(pair.aligned, spec, [ctl], scorers=scorers, label=ctl.describe()),
                        "arm_kl": tuple(x.numpy() for x in token_kl(pair.aligned, neutral, hooks=[iv])),
                        "control_kl": tuple(x.numpy() for x in token_kl(pair.aligned, neutral, hooks=[ctl]))})
        points[fam.name] = pts
    return Pareto(spec.n_samples, *_base_aligned(pair, spec, scorers), points,
                  {f.name: arms[f.name].dose for f in fams if f.name in arms})


def _paired(a, b, cfg, alternative="greater"):
    """Paired difference of two per-prompt arrays (CI resampling prompts; the run's seed)."""
    return stats.paired_difference(a, b, alternative=alternative, seed=cfg.seed)
