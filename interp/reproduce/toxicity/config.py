"""The toxicity reproduction's settings: its config, presets, the criteria fixed before any run, and the checks that refuse a config before any work."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...checks import UsageError, check_config
from ...registry import profile_of
from ...score import get_scorers


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
    k_sweep_samples: int | None = None  # samples per test prompt in the k-sweep's arms (None: the test arms')
    probe_standardize: bool = True  # features scaled on the training split (direction mapped back)
    probe_class_weight: str | None = "balanced"
    probe_Cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)  # C chosen by CV grouped by prompt (AUROC)
    n_stability: int = 20  # bootstrap resamples of the locate step (by prompt); 0: none
    pareto: bool = True  # every aligned-model family over its dose grid on test: share undone vs KL on neutral text
    pareto_samples: int | None = 1  # samples per test prompt in the Pareto arms (None: the test arms')
    neuron_groups: bool = True  # Yang et al.'s split of the probe projection's change into neuron groups (interp.groups)
    stability_samples: int | None = None  # Lee's edit on each resample's top lee_k, samples per test prompt (None: the test arms'; 0: not measured)
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
    where_samples: int | None = None  # samples per test prompt in the weight-group and patching arms (None: the test arms')
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


#: The locator whose neurons every claim about "the toxic neurons" is decided on, declared before
#: any run: Lee et al.'s — the value vectors nearest the probe by cosine. The others (difference in
#: means, vocabulary projection) are reported beside it; a claim built on located neurons is
#: **not tested** where this locator fails its own check (:func:`interp.locate.judge`).
PRIMARY_LOCATOR = "probe"


#: The reactivation families :func:`families` builds, in order (each measured on test as arm and control).
FAMILY_NAMES = ("lee_scale_keys", "scale_keys_preact", "scale_post", "scale_post_positive", "clamp_keys", "subtract_offset",
                "ablate_probe", "add_probe", "base_minus_probe", "base_minus_top_value")


def check(cfg: ToxicityConfig) -> None:
    """Every setting the run cannot honour, refused before any work (:class:`UsageError` names
    the flag): :func:`interp.checks.check_config`'s rules, then this reproduction's own."""
    if cfg.n_test_prompts < 20:
        raise UsageError("--n-test-prompts", cfg.n_test_prompts,
                         "at least 20 (the paired statistics resample test prompts)")
    check_config(cfg, zero_ok=("n_shuffled_probes", "n_stability", "stability_samples"))
    if cfg.k_sweep_samples is not None and cfg.k_sweep_samples < 1:
        raise UsageError("--k-sweep-samples", cfg.k_sweep_samples, "a whole number ≥ 1, or None for the test arms'")
    if cfg.where_samples is not None and cfg.where_samples < 1:
        raise UsageError("--where-samples", cfg.where_samples, "a whole number ≥ 1, or None for the test arms'")
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
                 patch_per_layer=False, patching=False, lee_protocol=True, stability_samples=1, k_sweep_samples=2,
                 where_samples=1, pareto=False),
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
