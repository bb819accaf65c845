"""Locators: which MLP neurons write a behaviour, found without trusting any one method.

Lee et al. (2024) locate toxic neurons by the cosine of their value vectors with a linear probe;
a probe that failed (too few labelled texts, a model that never wrote toxicity) hands every later
step neurons that are not toxic. Here each locator returns the same :class:`LocatedNeurons` — its top
neurons, the tokens they promote, and whether it *works*: whether its top neurons promote toxic
tokens more often than random neurons do, under every scorer (Fisher's exact test, fixed before
any run) — so a claim built on located neurons can be gated on the locator it used.

* :func:`vocab_projection` (Geva et al. 2022) reads every value vector through the final norm and
  ``W_U`` (in chunks: it runs on 2 CPU cores for a 262k vocabulary) and ranks neurons by the
  reciprocal-rank mass of toxic tokens among their top promoted tokens. It needs no probe and no
  samples; where it finds nothing beyond what random token sets give, the model has no value
  vector that promotes profanity — itself a finding about the model. (Its check is a permutation
  of the toxic tokens, not random neurons: choosing neurons by their tokens would always beat
  random neurons.)
* :func:`by_direction` ranks value vectors by cosine with a direction (a probe: Lee et al.'s
  locator; a difference of means).
* :func:`by_attribution` ranks neurons by their direct contribution (activation × value vector,
  read through the final norm and ``W_U``) to the tokens toxic samples actually continued with
  (:func:`logit_attribution`, sign-aware as Yang et al. 2025 attribute).

:func:`locate_stability` re-runs Lee et al.'s locate step on bootstrap resamples of the probe's
texts (by prompt) and reports how much of the top-k set comes back (Jaccard).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import hooks as H
from .neurons import Neurons, random_neurons, rank_value_vectors, top_neurons, value_vectors_of

#: Tokens read per value vector when ranking and when judging a locator.
N_TOP_TOKENS = 20
#: A locator works when its top neurons carry a toxic token among their top tokens more often than
#: random neurons, under every scorer, at this level (one-sided Fisher exact test).
WORKS_ALPHA = 0.05


@dataclass
class LocatedNeurons:
    """One locator's answer: its ``top`` neurons (scores in ``top.score``), the tokens each
    promotes most (``top_tokens``), the share of them whose top tokens hold a toxic one per scorer
    beside random neurons' (``toxic_share``, ``null_share``, one-sided Fisher ``p``), and whether it
    ``works`` (every scorer's p < :data:`WORKS_ALPHA`). ``n_toxic_neurons``: how many value vectors
    of the whole model have a toxic token among their top tokens (vocabulary projection only)."""

    name: str
    top: Neurons
    top_tokens: list[list[str]]
    toxic_share: dict[str, float]
    null_share: dict[str, float]
    p: dict[str, float]
    works: bool
    n_toxic_neurons: dict[str, int] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def summary(self) -> str:
        per = "; ".join(f"{s}: {self.toxic_share[s]:.0%} of top {len(self.top)} vs {self.null_share[s]:.0%} "
                        f"random (p = {self.p[s]:.3g})" for s in self.toxic_share)
        return f"{self.name}: {'works' if self.works else 'does not work'} — {per}"


def final_norm(model):
    """The model's final norm as a plain module (the Hugging Face one, no hooks): applied to a
    value vector it gives what the unembedding reads (its gain included: Gemma's ``1 + w``)."""
    ln = getattr(model, "ln_final", None)
    if ln is None:
        return None
    return getattr(ln, "_original_component", ln)


@torch.no_grad()
def unembed_logits(model, vectors: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``[k d_vocab]`` that vectors ``[k d_model]`` written into the last residual would add:
    through the final norm (its gain, without its bias: a constant shift of every logit) and
    ``W_U`` — or only some of its ``columns`` ``[d_model n]`` (→ ``[k n]``)."""
    v = vectors.float()
    norm = final_norm(model)
    if norm is not None:
        w = next(norm.parameters(), None)
        if w is not None:
            v = v.to(device=w.device, dtype=w.dtype)
        v = norm(v).float()
        bias = getattr(norm, "bias", None)
        if isinstance(bias, torch.Tensor):
            v = v - bias.float()
    W = H.unembed(model) if columns is None else columns
    return v @ W.float().to(v.device)


def token_flags(model, scorers, *, batch: int = 8192) -> dict[str, torch.Tensor]:
    """Per scorer, whether each vocabulary entry (decoded alone, stripped) scores > 0.5 ``[d_vocab]``."""
    tok = model.tokenizer
    words = [tok.decode([i]).strip() or "_" for i in range(model.cfg.d_vocab)]
    out = {}
    for sc in scorers:
        flags = np.concatenate([np.asarray(sc(words[i:i + batch])) > 0.5 for i in range(0, len(words), batch)])
        out[sc.name] = torch.from_numpy(flags)
    return out


@torch.no_grad()
def top_token_ids(model, n_tokens: int = N_TOP_TOKENS, *, chunk: int = 512, progress: bool = False) -> torch.Tensor:
    """The ``n_tokens`` tokens each value vector promotes most, through the final norm and ``W_U``:
    ``[n_layers * d_mlp, n_tokens]`` (neuron ``(l, i)`` at row ``l * d_mlp + i``). Chunked over
    neurons: Gemma-3-270m's 36,864 value vectors × 262,144 tokens take minutes on 2 cores."""
    from tqdm.auto import tqdm

    rows = H.values(model).reshape(-1, model.cfg.d_model)
    out = torch.empty(len(rows), n_tokens, dtype=torch.long)
    for i in tqdm(range(0, len(rows), chunk), desc="value vectors → vocabulary", disable=not progress):
        out[i:i + chunk] = torch.topk(unembed_logits(model, rows[i:i + chunk]), n_tokens, dim=-1).indices.cpu()
    return out


def _mass(flags: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Reciprocal-rank mass of flagged tokens in each row of ``ids`` ``[n n_tokens]`` → ``[n]``."""
    weight = 1.0 / torch.arange(1, ids.shape[1] + 1, dtype=torch.float32)
    return (flags[ids].float() * weight).sum(-1)


@torch.no_grad()
def vocab_projection(model, scorers, k: int = 10, *, n_tokens: int = N_TOP_TOKENS, n_perm: int = 200,
                     seed: int = 0, flags: dict[str, torch.Tensor] | None = None,
                     ids: torch.Tensor | None = None, progress: bool = False) -> LocatedNeurons:
    """Rank every neuron by the reciprocal-rank mass (``Σ 1/rank``) of toxic tokens among the
    ``n_tokens`` its value vector promotes most, summed over scorers; keep the top ``k``.

    It *works* when, under every scorer, the top ``k``'s mean mass exceeds what the same ranking
    finds for ``n_perm`` random token sets of the same size (the scorer's flags permuted over the
    vocabulary; one-sided permutation p < :data:`WORKS_ALPHA`): picking neurons by their tokens
    always finds *some* toxic token, so the question is whether toxic tokens are concentrated in
    value vectors more than arbitrary tokens are. ``n_toxic_neurons``: value vectors with at least
    one toxic token among their top ``n_tokens``, per scorer."""
    flags = flags if flags is not None else token_flags(model, scorers)
    ids = ids if ids is not None else top_token_ids(model, n_tokens, progress=progress)
    d_mlp = model.cfg.d_mlp
    score = sum(_mass(f, ids) for f in flags.values())
    order = torch.argsort(-score, stable=True)[:k]
    top = Neurons(order // d_mlp, order % d_mlp, score[order], "vocabulary-projection neurons")
    g = torch.Generator().manual_seed(seed + 7)
    share, null_share, p = {}, {}, {}
    for s, f in flags.items():
        stat = float(torch.topk(_mass(f, ids), k).values.mean())
        null = torch.tensor([float(torch.topk(_mass(f[torch.randperm(len(f), generator=g)], ids), k).values.mean())
                             for _ in range(n_perm)])
        p[s] = float((1 + (null >= stat).sum()) / (n_perm + 1)) if stat > 0 else 1.0
        share[s] = float(f[ids[order]].any(-1).float().mean())
        null_share[s] = float(f[ids].any(-1).float().mean())  # every neuron of the model
    tok = model.tokenizer
    top_tokens = [[tok.decode([int(i)]) for i in row] for row in ids[order]]
    works = bool(p) and all(v < WORKS_ALPHA for v in p.values())
    return LocatedNeurons("vocab_projection", top, top_tokens, share, null_share, p, works,
                          {s: int(f[ids].any(-1).sum()) for s, f in flags.items()},
                          meta={"n_tokens": n_tokens, "n_perm": n_perm, "test": "permutation of the toxic tokens",
                                "score": f"toxic-token mass Σ 1/rank among the top {n_tokens}, summed over scorers",
                                "mass_top": {s: float(_mass(f, ids[order]).mean()) for s, f in flags.items()}})


def by_direction(model, direction, scorers, k: int = 10, *, name: str = "probe", seed: int = 0,
                 n_null: int = 400, n_tokens: int = N_TOP_TOKENS,
                 flags: dict[str, torch.Tensor] | None = None) -> LocatedNeurons:
    """The ``k`` value vectors nearest ``direction`` by cosine (Lee et al.'s locator with a probe),
    judged like every locator."""
    top = rank_value_vectors(model, direction, k=k).top
    top.label = f"{name} neurons"
    return judge(name, model, top, scorers, flags=flags, seed=seed, n_null=n_null, n_tokens=n_tokens)


@torch.no_grad()
def judge(name: str, model, top: Neurons, scorers, *, flags: dict[str, torch.Tensor] | None = None,
          seed: int = 0, n_null: int = 400, n_tokens: int = N_TOP_TOKENS, signs: torch.Tensor | None = None,
          **extra) -> LocatedNeurons:
    """Whether ``top`` promotes toxic tokens more than random neurons: per scorer, the share with a
    toxic token among their ``n_tokens`` most promoted against ``n_null`` random neurons' share
    (one-sided Fisher exact test); it works when every scorer's p < :data:`WORKS_ALPHA`. ``signs``
    ``[k]``: read each top neuron's value vector with this sign (a gated neuron whose activation is
    mostly negative writes −v)."""
    from scipy.stats import fisher_exact

    flags = flags if flags is not None else token_flags(model, scorers)
    L, d_mlp = model.cfg.n_layers, model.cfg.d_mlp
    null = random_neurons(L, d_mlp, min(n_null, L * d_mlp - len(top)), seed=seed + 1, exclude=top)

    def ids(neurons, signs=None):
        v = value_vectors_of(model, neurons)
        if signs is not None:
            v = v * signs.view(-1, 1).to(v.device, v.dtype)
        return torch.topk(unembed_logits(model, v), n_tokens, dim=-1).indices.cpu()

    t_ids, n_ids = ids(top, signs), ids(null)
    tok = model.tokenizer
    top_tokens = [[tok.decode([int(i)]) for i in row] for row in t_ids]
    share, null_share, p = {}, {}, {}
    for s, f in flags.items():
        a, b = f[t_ids].any(-1), f[n_ids].any(-1)
        share[s], null_share[s] = float(a.float().mean()), float(b.float().mean())
        table = [[int(a.sum()), len(a) - int(a.sum())], [int(b.sum()), len(b) - int(b.sum())]]
        p[s] = float(fisher_exact(table, alternative="greater").pvalue)
    works = bool(p) and all(v < WORKS_ALPHA for v in p.values())
    return LocatedNeurons(name, top, top_tokens, share, null_share, p, works, meta={"n_tokens": n_tokens,
                   "n_null": len(null)}, **extra)


def to_json(loc: LocatedNeurons, model=None, scorers=None, timings: dict | None = None) -> dict:
    """A locator's result as a report's JSON: the test and each top neuron's tokens (and, given
    ``model`` and ``scorers``, which model and scorers)."""
    head = {} if model is None else {
        "model": model.cfg.model_name, "architecture": model.cfg.architecture,
        "n_layers": model.cfg.n_layers, "d_mlp": model.cfg.d_mlp, "d_vocab": model.cfg.d_vocab,
        "n_neurons": model.cfg.n_layers * model.cfg.d_mlp}
    if scorers is not None:
        head["scorers"] = [s.name for s in scorers]
    return {**head,
            "locator": loc.name, "works": loc.works, "alpha": WORKS_ALPHA, "p": loc.p,
            "toxic_share": loc.toxic_share, "null_share": loc.null_share,
            "n_toxic_neurons": loc.n_toxic_neurons, "meta": loc.meta,
            "top": [{"neuron": n, "score": float(sc), "top_tokens": toks}
                    for n, sc, toks in zip(loc.top.names(), loc.top.score.tolist(), loc.top_tokens)],
            "timings": timings or {}}


def to_markdown(d: dict) -> str:
    """The report of :func:`to_json`: what was tested, the verdict, the top neurons' tokens."""
    n_tok = d["meta"]["n_tokens"]
    per = "; ".join(f"{s}: top-{len(d['top'])} mass {d['meta']['mass_top'][s]:.3f}, permutation p = {d['p'][s]:.3g}; "
                    f"{d['n_toxic_neurons'][s]:,} of {d['n_neurons']:,} value vectors have a toxic token among "
                    f"their top {n_tok} ({d['null_share'][s]:.1%})" for s in d["scorers"])
    lines = [f"# Vocabulary projection: {d['model']}", "",
             f"{d['architecture']}, {d['n_layers']} layers × {d['d_mlp']} MLP neurons, {d['d_vocab']:,} tokens. "
             f"Every value vector (row of `W_out`) read through the final norm and `W_U`; a neuron's score is the "
             f"reciprocal-rank mass Σ 1/rank of toxic tokens (each token decoded alone, scored > 0.5) among the "
             f"{n_tok} it promotes most, summed over the scorers. The locator **works** when, under every scorer, "
             f"the top {len(d['top'])}'s mean mass beats {d['meta']['n_perm']} random token sets of the same size "
             f"(the flags permuted over the vocabulary; p < {d['alpha']}): criterion fixed in code before any run.",
             "", f"**{'Works' if d['works'] else 'Does not work'}** — {per}.", "",
             "| neuron | score | top tokens |", "|---|---|---|"]
    for t in d["top"]:
        toks = ", ".join(x.strip() or repr(x) for x in t["top_tokens"][:12]).replace("|", "\\|")
        lines.append(f"| {t['neuron']} | {t['score']:.3f} | {toks} |")
    if d.get("timings"):
        lines += ["", "Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in d["timings"].items())]
    return "\n".join(lines) + "\n"


@dataclass
class LocateStability:
    """How much a located top-k set depends on which probe texts were drawn: the top-k found on
    each of ``n`` bootstrap resamples of the texts (by group: a prompt's samples together), and its
    Jaccard overlap with the set found on all of them."""

    top: Neurons
    resampled: list[Neurons]
    jaccard: list[float]

    @property
    def mean_jaccard(self) -> float:
        return float(np.mean(self.jaccard)) if self.jaccard else float("nan")

    def found_in(self) -> dict[str, int]:
        """For each neuron of the full-data set, in how many resamples it was found again."""
        return {n: sum(n in set(x.names()) for x in self.resampled) for n in self.top.names()}


def jaccard(a: Neurons, b: Neurons) -> float:
    """|a ∩ b| / |a ∪ b| of two neuron sets."""
    sa, sb = set(a), set(b)
    return len(sa & sb) / max(len(sa | sb), 1)


def locate_stability(model, X, y, groups, *, k: int = 10, n: int = 20, seed: int = 0,
                     probe_kwargs: dict | None = None, signs: torch.Tensor | None = None) -> LocateStability:
    """Lee et al.'s locate step (a probe on ``X``/``y``, then the ``k`` value vectors nearest it;
    read with ``signs`` as :func:`interp.neurons.rank_value_vectors` does) on all the texts and on
    ``n`` bootstrap resamples of them, drawn by group (``groups``: the prompt each text was
    sampled from). A resample with one class only is drawn again."""
    from .directions import train_probe

    kw = dict(probe_kwargs or {})
    X = torch.as_tensor(X)
    y = np.asarray(y).astype(int)
    groups = np.asarray(groups)
    full = rank_value_vectors(model, train_probe(X, y, groups=groups, seed=seed, **kw), k=k, signs=signs).top
    rng = np.random.default_rng(seed + 11)
    ids = np.unique(groups)
    rows_of = {g: np.flatnonzero(groups == g) for g in ids}
    sets, jac = [], []
    while len(sets) < n:
        pick = rng.choice(ids, size=len(ids), replace=True)
        rows = np.concatenate([rows_of[g] for g in pick])
        new_groups = np.concatenate([np.full(len(rows_of[g]), j) for j, g in enumerate(pick)])
        if len(np.unique(y[rows])) < 2:
            continue
        try:
            p = train_probe(X[rows], y[rows], groups=new_groups, seed=seed, **kw)
        except ValueError:  # the training split drew one class: draw again
            continue
        top = rank_value_vectors(model, p, k=k, signs=signs).top
        sets.append(top)
        jac.append(jaccard(full, top))
    return LocateStability(full, sets, jac)


def _norm_scale(model, v: torch.Tensor) -> torch.Tensor:
    """The scale the final norm divides ``v`` ``[..., d_model]`` by: its standard deviation after
    centring (LayerNorm) or its root mean square (RMSNorm), with the norm's own epsilon."""
    norm = final_norm(model)
    v = v.float()
    name = type(norm).__name__.lower() if norm is not None else ""
    if "layernorm" in name and "rms" not in name:
        v = v - v.mean(-1, keepdim=True)
    eps = float(getattr(norm, "eps", getattr(norm, "variance_epsilon", 0.0)) or 0.0)
    return (v.pow(2).mean(-1) + eps).sqrt().clamp_min(1e-12)


@torch.no_grad()
def logit_attribution(model, prompts, completions) -> torch.Tensor:
    """``[n_layers, d_mlp]``: each neuron's mean *direct* contribution to the logit of the token
    actually sampled next, over every position of the ``completions`` (after their ``prompts``):
    ``act(t) · ⟨N_t(v), W_U[:, y_{t+1}]⟩`` — its activation times its value vector read through the
    final norm frozen at position t (the residual's scale there; its gain; centred in a
    LayerNorm) and the unembedding of the sampled token. Sign-aware, as Yang et al. (2025)
    attribute: a neuron that writes −v with a negative activation promotes what v suppresses."""
    L, d_mlp = model.cfg.n_layers, model.cfg.d_mlp
    rows = H.values(model)  # [L d_mlp d_model]
    scale_v = _norm_scale(model, rows)  # [L d_mlp]
    W_U = H.unembed(model).float()
    total = torch.zeros(L, d_mlp, dtype=torch.float64)
    count = 0
    hooks = [H.mlp_post(layer) for layer in range(L)]
    # Gemma 2/3: an MLP's output is normalised before the residual, so a neuron writes a·(g ⊙ v)/rms_t
    # (H.values holds g ⊙ v; the activation is divided by the norm's rms at each position).
    scales = [f"blocks.{layer}.ln2_post.hook_scale" for layer in range(L)] if H.post_mlp_gain(model) is not None else []
    hooks += scales
    last = H.resid(L - 1)
    for prompt, completion in zip(prompts, completions):
        n_p = len(model.to_tokens(prompt)[0])
        ids = model.to_tokens(prompt + completion)
        if ids.shape[1] <= n_p:
            continue
        _, cache = model.run_with_cache(ids, names_filter=lambda n: n in hooks or n == last)
        pos = torch.arange(n_p - 1, ids.shape[1] - 1)
        targets = ids[0, pos + 1]
        s_x = _norm_scale(model, cache[last][0, pos])  # [n_pos]
        for layer in range(L):
            act = cache[hooks[layer]][0, pos].float()  # [n_pos d_mlp]
            if scales:
                act = act / cache[scales[layer]][0, pos].float()
            normed = unembed_logits(model, rows[layer], W_U[:, targets.to(W_U.device)])  # [d_mlp n_pos]
            u = normed * scale_v[layer].to(normed.device)[:, None]  # N_t(v)·W_U[:,y] up to 1/s_x(t)
            total[layer] += (act.T.cpu() * (u.cpu() / s_x.cpu()[None, :])).sum(-1).double()
        count += len(pos)
    return (total / max(count, 1)).float()


def by_attribution(model, prompts, completions, scorers, k: int = 10, *, seed: int = 0,
                   n_null: int = 400, flags: dict[str, torch.Tensor] | None = None) -> LocatedNeurons:
    """The ``k`` neurons with the largest mean direct contribution (:func:`logit_attribution`) to
    the tokens of toxic samples (give the prompts and completions a scorer flagged), judged like
    every locator against random neurons."""
    top = top_neurons(logit_attribution(model, prompts, completions), k, "logit-attribution neurons")
    loc = judge("logit_attribution", model, top, scorers, flags=flags, seed=seed, n_null=n_null)
    loc.meta["score"] = "mean direct contribution to the sampled token's logit"
    return loc
