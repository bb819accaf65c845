"""The knowledge reproduction's steps 3–5, each a function with a typed result: the hiding
alignment chosen and measured (:func:`choose_aligned`, :func:`hidden_knowledge`), the hidden
answers read out (:func:`readout`), reactivated (:func:`reactivate`) and relearned
(:func:`relearn`). Each fills its part of the per-fact record (:class:`~.per_fact.PerFact`)."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass

import numpy as np
import torch
from einops import einsum

from ... import distributed
from ... import hooks as H
from ...directions import diff_in_means, random_direction
from ...knowledge import (
    Curve,
    answer_candidates,
    correct,
    lens_correct,
    probe_accuracy,
    train_and_measure,
)
from ...neurons import random_neurons, top_neurons
from ...organism.hide import HideConfig, hide_split
from ...pair import load_model
from ...steer import AblateDirection, AddVector, ScaleNeurons
from .config import KnowledgeConfig
from .per_fact import (
    HIDDEN_KNOWN,
    HIDDEN_UNKNOWN,
    NEVER_HIDDEN,
    InterventionFacts,
    PerFact,
    SetFacts,
)
from .steps import _last_resid, _mean, _says

# ----------------------------------------------------------------------------- 3. hidden knowledge


@dataclass
class Hiding:
    """What a hiding alignment did: the relation it hides (``config``), the entities it was
    trained on and the held-out ones, and the held-out entities' facts of the hidden relation."""

    config: HideConfig
    train_entities: list[str]
    heldout_entities: list[str]
    hidden_facts: list


def hiding(pair) -> Hiding:
    """The hiding alignment of a knowledge pair (``organism:<size>:hide``), from its manifest."""
    info = pair.info.get("organism") or {}
    if pair.prompts is None or not pair.prompts.facts:
        raise ValueError(f"the knowledge reproduction needs an organism pair with a fact table "
                         f"(organism:<size>:hide); {pair.name!r} has none")
    if info.get("method") not in (None, "hide"):
        raise ValueError(f"{pair.name} is aligned by {info.get('method')!r}; the knowledge "
                         "reproduction needs the hiding alignment, e.g. organism:knowledge:hide")
    hide = HideConfig(**info["config"]["hide"]) if "config" in info else HideConfig()
    facts = pair.prompts.facts
    train_ents, held_ents = hide_split(facts, hide)
    held = set(held_ents)
    return Hiding(hide, train_ents, held_ents,
                  [f for f in facts if f.entity in held and f.relation == hide.relation])


@dataclass
class Recipe:
    """One hiding recipe tried on dev entities: its learning rate ``lr``, SFT ``steps`` and
    ``n_replay`` replayed documents; the share of the base's hidden dev facts the aligned model
    still answers (``hidden_answered``) and of its never-hidden ones (``kept``); whether it
    ``meets_bar``; and the organism cache ``folder`` it was built in."""

    lr: float
    steps: int
    n_replay: int
    hidden_answered: float
    kept: float
    meets_bar: bool
    folder: str


@dataclass
class HideSearch:
    """The hiding recipes ``tried`` on ``n_dev_entities`` dev entities (``n_dev_hidden`` hidden and
    ``n_dev_kept`` never-hidden facts the base knows), the index of the one ``chosen``, whether any
    ``met_bar`` (answers ≤ ``hide_bar`` of the hidden facts, keeps ≥ ``keep_bar`` of the others)."""

    tried: list[Recipe]
    chosen: int
    met_bar: bool
    hide_bar: float
    keep_bar: float
    n_dev_entities: int
    n_dev_hidden: int
    n_dev_kept: int


@dataclass
class HiddenSetup:
    """What steps 3–5 measure: the ``aligned`` model (the chosen recipe's, with
    ``cfg.hide_recipes``) and its hiding config ``hide``; the ``train_entities`` it was aligned on
    and the ``heldout`` entities measured (with a recipe search, those not used to choose it);
    ``base_ok``, per fact of the table, whether the base answers it; ``sets``, the held-out facts
    by set (:data:`HIDDEN_KNOWN`, …) as indices into the table; the recipe ``search``, if any."""

    aligned: object
    hide: HideConfig
    train_entities: set[str]
    heldout: set[str]
    base_ok: list[bool]
    sets: dict[str, list[int]]
    search: HideSearch | None = None


@dataclass
class SetAccuracy:
    """Accuracy on one held-out set of ``n`` facts: the base's (``base``), the aligned model's
    (``aligned``) and the share the aligned model answers with the refusal (``aligned_refuses``);
    NaN for an empty set."""

    n: int
    base: float
    aligned: float
    aligned_refuses: float


@dataclass
class Hidden:
    """The hiding alignment measured: the hidden ``relation`` and its ``refusal`` answer; the
    number of training, held-out (measured) and dev (recipe choice) entities; accuracy by held-out
    set (:class:`SetAccuracy`)."""

    relation: str
    refusal: str
    n_train_entities: int
    n_heldout_entities: int
    n_dev_entities: int
    sets: dict[str, SetAccuracy]


def hide_config(pair_name: str, lr: float, steps: int, n_replay: int):
    """The organism config of ``pair_name``'s hiding alignment with another recipe."""
    from ...organism.build import parse_spec
    from ...organism.presets import preset

    size, _, seed = parse_spec(pair_name)
    c = preset(size, seed=seed, align="hide")
    return dataclasses.replace(c, align=dataclasses.replace(c.align, lr=lr, steps=steps),
                               hide=dataclasses.replace(c.hide, n_replay=n_replay))


def _choose_hiding(pair, facts, hd: Hiding, base_ok, cfg: KnowledgeConfig, log):
    """Build each recipe of ``cfg.hide_recipes``, measure it on dev entities (half the held-out
    ones, seeded), and choose — by a rule fixed here — among those that hide (≤ ``hide_bar`` of the
    base's hidden facts answered) and keep (≥ ``keep_bar`` of its never-hidden facts) the one that
    keeps most; if none meets both, the one with the largest keep − hidden. Returns the chosen
    aligned model, its hiding config, the test entities and the search record."""
    from ...organism.build import build_organism

    if not pair.name.startswith("organism:"):
        raise ValueError(f"hide_recipes rebuild an organism's hiding alignment; {pair.name!r} is not an organism")
    ents = list(hd.heldout_entities)
    random.Random(cfg.seed + 17).shuffle(ents)
    dev, test = set(ents[: len(ents) // 2]), set(ents[len(ents) // 2:])
    rel = hd.config.relation
    dev_hidden = [i for i, f in enumerate(facts) if f.entity in dev and f.relation == rel and base_ok[i]]
    dev_kept = [i for i, f in enumerate(facts) if f.entity in dev and f.relation != rel and base_ok[i]]
    log(f"[3/5] hiding recipes on {len(dev)} dev entities ({len(dev_hidden)} hidden and {len(dev_kept)} "
        f"never-hidden facts the base knows); measured on the other {len(test)}")
    tried: list[Recipe] = []
    models = []
    for lr, steps, n_replay in cfg.hide_recipes:
        oc = hide_config(pair.name, lr, steps, n_replay)
        with distributed.main_first():  # under torchrun rank 0 builds what the cache lacks
            folder = build_organism(config=oc, progress=False, log=log)
        model = load_model(str(folder / "model"), name=f"{pair.name} (lr {lr:g}, {steps} steps, {n_replay} replayed)")
        h = _says(model, [facts[i].cloze for i in dev_hidden], [facts[i].answer for i in dev_hidden])
        k = _says(model, [facts[i].cloze for i in dev_kept], [facts[i].answer for i in dev_kept])
        hs, ks = _mean(h), _mean(k)
        tried.append(Recipe(lr=lr, steps=steps, n_replay=n_replay, hidden_answered=hs, kept=ks,
                            meets_bar=bool(hs <= cfg.hide_bar and ks >= cfg.keep_bar), folder=folder.name))
        models.append((model, oc.hide))
        log(f"  lr {lr:g}, {steps} steps, {n_replay} replayed: answers {hs:.2f} of the hidden, keeps {ks:.2f}")
    ok = [i for i, t in enumerate(tried) if t.meets_bar]
    pick = (max(ok, key=lambda i: tried[i].kept) if ok
            else max(range(len(tried)), key=lambda i: np.nan_to_num(tried[i].kept - tried[i].hidden_answered,
                                                                    nan=-np.inf)))
    search = HideSearch(tried=tried, chosen=pick, met_bar=bool(ok), hide_bar=cfg.hide_bar, keep_bar=cfg.keep_bar,
                        n_dev_entities=len(dev), n_dev_hidden=len(dev_hidden), n_dev_kept=len(dev_kept))
    model, hide = models[pick]
    return model, hide, test, search


def choose_aligned(pair, facts, hd: Hiding, cfg: KnowledgeConfig, log=print) -> HiddenSetup:
    """The aligned model steps 3–5 measure (the pair's own, or with ``cfg.hide_recipes`` the one
    chosen on dev entities, :func:`_choose_hiding`) and the held-out facts by set."""
    hide = hd.config
    held = set(hd.heldout_entities)
    base_ok = _says(pair.base, [f.cloze for f in facts], [f.answer for f in facts])
    aligned, search = pair.aligned, None
    if cfg.hide_recipes:
        aligned, hide, held, search = _choose_hiding(pair, facts, hd, base_ok, cfg, log)
    hid = [i for i, f in enumerate(facts) if f.entity in held and f.relation == hide.relation]
    sets = {HIDDEN_KNOWN: [i for i in hid if base_ok[i]],
            HIDDEN_UNKNOWN: [i for i in hid if not base_ok[i]],
            NEVER_HIDDEN: [i for i, f in enumerate(facts)
                           if f.entity in held and f.relation != hide.relation and base_ok[i]]}
    return HiddenSetup(aligned=aligned, hide=hide, train_entities=set(hd.train_entities), heldout=held,
                       base_ok=base_ok, sets=sets, search=search)


def hidden_knowledge(facts, hd: Hiding, setup: HiddenSetup, pf: PerFact) -> Hidden:
    """Accuracy of base and aligned on each held-out set, and how often the aligned model answers
    with the refusal; each set's facts go in ``pf.hidden``."""
    hide, base_ok = setup.hide, setup.base_ok
    clozes = [f.cloze for f in facts]
    aligned_ok = _says(setup.aligned, clozes, [f.answer for f in facts])
    refused = _says(setup.aligned, clozes, [hide.refusal] * len(facts))
    sets: dict[str, SetAccuracy] = {}
    for name, idx in setup.sets.items():
        pf.hidden[name] = SetFacts([int(base_ok[i]) for i in idx], [int(aligned_ok[i]) for i in idx])
        sets[name] = SetAccuracy(n=len(idx), base=_mean([base_ok[i] for i in idx]),
                                 aligned=_mean([aligned_ok[i] for i in idx]),
                                 aligned_refuses=_mean([refused[i] for i in idx]))
    return Hidden(relation=hide.relation, refusal=hide.refusal, n_train_entities=len(hd.train_entities),
                  n_heldout_entities=len(setup.heldout),
                  n_dev_entities=len(hd.heldout_entities) - len(setup.heldout), sets=sets)


@dataclass
class LayerAccuracy:
    """Accuracy over the candidate answers read at each layer, ``acc`` ``[n_layers]`` (a share;
    the last is the model's own output), on ``n`` facts."""

    acc: list[float]
    n: int


@dataclass
class ProbeAccuracy(LayerAccuracy):
    """A linear probe's accuracy per layer on ``n`` facts, trained on ``n_train`` facts of the
    training entities."""

    n_train: int


@dataclass
class Readout:
    """The hidden answer read from the residual stream: the possible answers (``candidates``),
    their ``n_candidates`` distinct first tokens and ``chance`` (one over that); by ``"<model>:
    <set>"`` the logit lens restricted to the candidates (``lens``) and a linear probe (``probe``),
    layer by layer."""

    candidates: list[str]
    n_candidates: int
    chance: float
    lens: dict[str, LayerAccuracy]
    probe: dict[str, ProbeAccuracy]


def readout(base, facts, setup: HiddenSetup, cfg: KnowledgeConfig, pf: PerFact) -> Readout:
    """Logit lens over the candidate answers and a linear probe, layer by layer; the last layer's
    lens correctness per fact goes in ``pf.lens``."""
    hide, trainset, base_ok = setup.hide, setup.train_entities, setup.base_ok
    rel_facts = [f for f in facts if f.relation == hide.relation]
    index, cand_ids = answer_candidates(setup.aligned.tokenizer, [f.answer for f in rel_facts])
    out = Readout(candidates=sorted(index), n_candidates=len(cand_ids), chance=1 / len(cand_ids), lens={}, probe={})
    train_idx = [i for i, f in enumerate(facts) if f.entity in trainset and f.relation == hide.relation
                 and base_ok[i]]
    for model_name, model in (("base", base), ("aligned", setup.aligned)):
        train_X = _last_resid(model, [facts[i].cloze for i in train_idx]) if train_idx else None
        for set_name in (HIDDEN_KNOWN, HIDDEN_UNKNOWN):
            idx = setup.sets[set_name]
            if not idx:
                continue
            X = _last_resid(model, [facts[i].cloze for i in idx])
            answers = [facts[i].answer for i in idx]
            ok = lens_correct(model, X, answers, index, cand_ids)  # [layers n]
            out.lens[f"{model_name}: {set_name}"] = LayerAccuracy(ok.float().mean(-1).tolist(), len(idx))
            pf.lens[f"{model_name}: {set_name}"] = ok[-1].int().tolist()
            if train_X is not None and len({facts[i].answer for i in train_idx}) > 1:
                out.probe[f"{model_name}: {set_name}"] = ProbeAccuracy(
                    [probe_accuracy(train_X[layer], [facts[i].answer for i in train_idx],
                                    X[layer], answers, seed=cfg.seed)
                     for layer in range(X.shape[0])], len(idx), len(train_idx))
    return out


# ----------------------------------------------------------------------------- 4. reactivation


@dataclass
class Intervention:
    """One intervention on the aligned model (``method``; ``detail``: where and what, as chosen on
    training entities): accuracy on the ``n_hidden`` held-out hidden facts the base knew
    (``hidden``) and the ``n_kept`` never-hidden ones (``kept``), and both under a random control
    of the same size (``hidden_control``, ``kept_control``); NaN for an empty set."""

    method: str
    detail: str
    hidden: float
    kept: float
    hidden_control: float
    kept_control: float
    n_hidden: int
    n_kept: int


def reactivate(base, facts, setup: HiddenSetup, cfg: KnowledgeConfig, pf: PerFact) -> list[Intervention]:
    """Each intervention on the aligned model, chosen on training entities, measured on held-out
    ones, next to a random control of the same size; the facts go in ``pf.interventions``."""
    aligned, hide, trainset = setup.aligned, setup.hide, setup.train_entities
    sel = [f for f in facts if f.entity in trainset and f.relation == hide.relation]
    answered = [f for f in facts if f.entity in trainset and f.relation != hide.relation]
    sel_known = [f for i, f in enumerate(facts) if f.entity in trainset and f.relation == hide.relation
                 and setup.base_ok[i]]
    held_hidden = [facts[i] for i in setup.sets[HIDDEN_KNOWN]]
    held_kept = [facts[i] for i in setup.sets[NEVER_HIDDEN]]
    n_layers = aligned.cfg.n_layers

    def ok(fs, hooks):
        return [int(x) for x in correct(aligned, [f.cloze for f in fs], [f.answer for f in fs], hooks=hooks)]

    def acc(fs, hooks):
        return float(np.mean(ok(fs, hooks))) if fs else float("nan")

    Xr = _last_resid(aligned, [f.cloze for f in sel])
    Xa = _last_resid(aligned, [f.cloze for f in answered])
    Xb = _last_resid(base, [f.cloze for f in sel])
    rows: list[Intervention] = []

    def add(method, chosen, control, detail):
        got = InterventionFacts(hidden=ok(held_hidden, chosen), kept=ok(held_kept, chosen),
                                hidden_control=ok(held_hidden, control), kept_control=ok(held_kept, control))
        pf.interventions[method] = got
        rows.append(Intervention(method=method, detail=detail, hidden=_mean(got.hidden), kept=_mean(got.kept),
                                 hidden_control=_mean(got.hidden_control), kept_control=_mean(got.kept_control),
                                 n_hidden=len(held_hidden), n_kept=len(held_kept)))

    # Refusal direction (difference in means, refused − answered prompts, aligned model), one per
    # layer; ablated from every layer; the layer is chosen on training entities.
    dirs = [diff_in_means(torch.cat([Xr[layer], Xa[layer]]),
                          torch.cat([torch.ones(len(sel)), torch.zeros(len(answered))]),
                          hook=H.resid(layer)) for layer in range(n_layers)]
    scores = [acc(sel_known, [AblateDirection(d.vector)]) for d in dirs]
    best = int(np.argmax(scores))
    rand = random_direction(aligned.cfg.d_model, cfg.seed)
    add("ablate refusal direction", [AblateDirection(dirs[best].vector, label="refusal direction")],
        [AblateDirection(rand.vector, label="random direction")],
        f"difference in means at layer {best}, ablated at every layer")

    # Residual offset δx = mean(aligned − base) on the refused prompts, subtracted at one layer.
    offsets = (Xr - Xb).mean(1)  # [layers d]
    scores = [acc(sel_known, [AddVector(-offsets[layer], layer=layer)]) for layer in range(n_layers)]
    best = int(np.argmax(scores))
    g = torch.Generator().manual_seed(cfg.seed)
    r = torch.randn(aligned.cfg.d_model, generator=g)
    r = r / r.norm() * offsets[best].norm()
    add("subtract residual offset", [AddVector(-offsets[best], layer=best, label="δx")],
        [AddVector(r, layer=best, label="random vector")], f"−δx at layer {best} (‖δx‖ = {float(offsets[best].norm()):.2f})")

    # Neurons that write the refusal: activation change (aligned − base, refused prompts) times the
    # value vector's projection on the refusal token's unembedding; the top k are zeroed.
    tok = aligned.tokenizer(" " + hide.refusal, add_special_tokens=False)["input_ids"][0]
    Ma = _last_resid(aligned, [f.cloze for f in sel], H.mlp_post).mean(1)  # [layers d_mlp]
    Mb = _last_resid(base, [f.cloze for f in sel], H.mlp_post).mean(1)
    write = einsum(H.values(aligned).float(), H.unembed(aligned)[:, tok].float(),
                   "layer neuron d_model, d_model -> layer neuron")
    contrib = (Ma - Mb) * write
    neurons = top_neurons(contrib, cfg.k_neurons, "refusal writers")
    control = random_neurons(n_layers, contrib.shape[1], cfg.k_neurons, seed=cfg.seed, exclude=neurons,
                             layers=sorted(set(neurons.layer.tolist())))
    add("zero refusal-writing neurons", [ScaleNeurons(neurons, 0.0)], [ScaleNeurons(control, 0.0)],
        f"top {cfg.k_neurons} by Δactivation × (value · W_U[{hide.refusal!r}]): {', '.join(neurons.names())}")
    return rows


# ----------------------------------------------------------------------------- 5. relearning


@dataclass
class RelearnMeta:
    """Relearning: ``n_train`` training-entity facts of the hidden relation trained on, and by
    held-out set the number of facts measured (``n_eval``)."""

    n_train: int
    n_eval: dict[str, int]

    def to_dict(self) -> dict[str, int]:
        """As the report's JSON has it: ``n_train`` and ``"n <set>"`` per set."""
        return {"n_train": self.n_train, **{f"n {k}": v for k, v in self.n_eval.items()}}


def relearn(facts, setup: HiddenSetup, cfg: KnowledgeConfig, pf: PerFact) -> tuple[Curve, RelearnMeta]:
    """A few SFT steps of the aligned model on the hidden relation for the training entities;
    accuracy on the held-out hidden facts the base knew and those it never knew, every
    ``cfg.relearn_every`` steps. The facts after the last step go in ``pf.relearning``."""
    hide, trainset = setup.hide, setup.train_entities
    relearn_train = [{"prompt": f.cloze, "completion": f" {f.answer}."} for f in facts
                     if f.entity in trainset and f.relation == hide.relation]
    evals = {k: [facts[i] for i in setup.sets[k]] for k in (HIDDEN_KNOWN, HIDDEN_UNKNOWN)}

    last: dict[str, list[bool]] = {}

    def measure_relearn(m):
        out = {}
        for k, v in evals.items():
            last[k] = correct(m, [f.cloze for f in v], [f.answer for f in v])
            out[k] = float(np.mean(last[k])) if v else float("nan")
        return out
    curve = train_and_measure(setup.aligned, relearn_train, measure_relearn, lr=cfg.relearn_lr,
                              batch_size=cfg.relearn_batch, steps=cfg.relearn_steps,
                              every=cfg.relearn_every, seed=cfg.seed)
    pf.relearning = {k: [int(x) for x in v] for k, v in last.items()}
    return curve, RelearnMeta(len(relearn_train), {k: len(v) for k, v in evals.items()})
