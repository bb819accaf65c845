"""The knowledge reproduction's settings: its config, the presets by measurement profile and by
organism size, and Gekhman et al.'s numbers the report sets beside its own."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...registry import profile_of

#: Gekhman et al. (2024), PaLM-2-M on EntityQuestions: test accuracy after fine-tuning on one
#: category (early stop / convergence), from their Table 2 (in-distribution).
GEKHMAN_ET_AL = {"HighlyKnown": (40.5, 40.0), "MaybeKnown": (43.6, 43.6),
                 "WeaklyKnown": (39.2, 35.4), "Unknown": (37.5, 25.8)}


@dataclass
class KnowledgeConfig:
    pair: str = "organism:knowledge"
    seed: int = 0
    # 1. levels (Gekhman et al.: 10 four-shot prompts, 16 samples at T = 0.5)
    n_prompts: int = 10
    n_shots: int = 4
    n_samples: int = 16
    temperature: float = 0.5
    # 2. fine-tuning on one category at a time
    ft_size: int = 40
    ft_test: int = 100
    ft_dev: int = 50
    ft_epochs: int = 30
    ft_lr: float = 1e-4
    ft_batch: int = 8
    # 2b. Gekhman et al.'s design: a fixed-size fine-tuning set whose share of Unknown facts varies
    # (the rest drawn from the known ones); empty: skipped
    shares: tuple[float, ...] = ()
    mix_size: int = 200
    # 3. the hiding alignment: recipes (lr, steps, replayed documents) tried on dev entities (half the
    # held-out ones); the chosen one is measured on the other half. Empty: the pair's own alignment,
    # measured on every held-out entity
    hide_recipes: tuple[tuple[float, int, int], ...] = ()
    hide_bar: float = 0.2  # a recipe hides when the aligned model answers ≤ this share of the base's hidden facts
    keep_bar: float = 0.9  # ... and keeps when it answers ≥ this share of the base's never-hidden facts
    # 4. reactivation
    k_neurons: int = 10
    # 5. relearning
    relearn_steps: int = 30
    relearn_every: int = 3
    relearn_lr: float = 1e-4
    relearn_batch: int = 8


#: Each measurement profile's changes to the defaults: the tiny organism gets a quick run (tests).
PRESETS: dict[str, dict] = {
    "organism-tiny": dict(n_prompts=3, n_shots=2, n_samples=4, ft_size=10, ft_test=30, ft_dev=10, ft_epochs=3,
                          relearn_steps=4, relearn_every=2, k_neurons=5, shares=(0.0, 1.0), mix_size=8,
                          hide_recipes=((3e-4, 200, 400), (1e-4, 100, 400))),
}
#: The knowledge organism at power (``organism:facts``), by its size: hundreds of facts per
#: category and test set (15 epochs of 25 steps: the 200-fact sets are fitted within it, where the
#: 32-fact sets of ``organism:knowledge`` took 30 epochs of 4), Gekhman et al.'s Unknown-share
#: design, and the hiding recipe chosen on
#: dev entities among four, from the old recipe (lr 3e-4, 200 steps, 400 replayed documents)
#: to gentler ones with more replay — fixed before any of them was run on this organism.
SIZE_PRESETS: dict[str, dict] = {
    "facts": dict(ft_size=200, ft_test=400, ft_dev=200, ft_epochs=15, shares=(0.0, 0.25, 0.5, 0.75, 1.0), mix_size=200,
                  hide_recipes=((3e-4, 200, 400), (1e-4, 200, 400), (1e-4, 100, 1600), (3e-5, 300, 1600))),
}


def config_for(pair: str, **overrides) -> KnowledgeConfig:
    """The config for a pair: the defaults, its profile's preset (:data:`PRESETS`) or its
    organism size's (:data:`SIZE_PRESETS`), then ``overrides``."""
    from ...organism.build import parse_spec

    size = parse_spec(pair)[0] if pair.startswith("organism:") else None
    preset = SIZE_PRESETS.get(size) or PRESETS.get(profile_of(pair), {})
    return dataclasses.replace(KnowledgeConfig(pair=pair), **{**preset, **overrides})
