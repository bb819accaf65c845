"""Crosscoders for model diffing: one sparse dictionary over both models' residuals, and which of
its latents only the aligned model uses (Minder et al., NeurIPS 2025, "Overcoming sparsity
artifacts in crosscoders to interpret chat-tuning").

A crosscoder reads the base's and the aligned model's residual at the same token and layer,
encodes them jointly into sparse latents ``f`` and decodes each model's residual with its own
decoder: ``x̂^m = Σ_j f_j d_j^m + b^m``. A latent whose base decoder vector has vanished
(relative norm Δ near 1) is *aligned-only*; near 0, *base-only*; near ½, *shared*. Minder et al.
showed that an L1-trained crosscoder invents aligned-only latents (complete shrinkage, latent
decoupling), that a BatchTopK crosscoder mostly does not, and that **latent scaling** tells them
apart: for an aligned-only latent j with aligned decoder vector ``d_j``, the closed-form least
squares scale β^m with which ``f_j d_j`` explains model m's reconstruction error (ε) or its
reconstruction (r); the ratios ``ν = β^base / β^aligned`` are near 0 for a latent that is truly
the aligned model's own, near 1 when the base carries the same information.

What is faithful to science-of-finetuning/dictionary_learning (``BatchTopKCrossCoder`` and its
trainer): the encoder sums over models with one shared bias and a ReLU; BatchTopK keeps the
``k·B`` largest of ``f_j · (‖d_j^base‖ + ‖d_j^aligned‖)`` over the batch; at inference a
threshold, the exponential moving average (0.999) of the smallest kept score, replaces the batch
top-k after ``threshold_start_step``; the loss is the unsquared L2 error averaged over tokens
and models plus AuxK (α = 1/32, ``k_aux = min(d_model/2, #dead)``, normalised by the residual's
variance) on latents dead for ``dead_after_tokens``; encoder columns start at unit norm and the
decoder at their transpose; ``b_dec`` starts at each model's geometric median; Adam (0.9, 0.999),
gradient norm clipped at 1, linear warm-up. **Variant, named as such:** activations are divided
by one scale shared by both models (mean ‖x‖ / √d over the training tokens), so that decoder
norms — and Δ — compare the two models on the same footing; dictionary_learning normalises with
a scale per model.

:func:`paired_activations` records the pair (every real token of the given texts, one layer);
:func:`train_crosscoder` trains on a token budget; :func:`analyse` classifies latents, runs latent
scaling and reads the aligned-only ones through the base's logit lens.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

#: Relative-norm classes (Minder et al.): Δ > 0.9 aligned-only, Δ < 0.1 base-only, 0.4–0.6 shared.
ALIGNED_ONLY, BASE_ONLY, SHARED = (0.9, 1.0), (0.0, 0.1), (0.4, 0.6)
#: An aligned-only latent is *specific* (not an artefact) when both latent-scaling ratios are below this.
NU_MAX = 0.3


@dataclass(frozen=True)
class CrosscoderConfig:
    """How a crosscoder is trained. :data:`PAPER` is Minder et al.'s BatchTopK set-up (Gemma-2 2B);
    :data:`ORGANISM` the one that trains on 2 CPU cores in minutes on the organism's residual."""

    expansion: int = 32  # latents per residual dimension
    k: int = 100  # active latents per token, on average over a batch (BatchTopK)
    n_tokens: int = 100_000_000  # training budget (tokens seen, with repetition when the data is smaller)
    batch_size: int = 2048
    lr: float = 1e-4
    warmup_steps: int = 1000
    threshold_start_step: int = 1000
    threshold_beta: float = 0.999
    auxk_alpha: float = 1 / 32
    dead_after_tokens: int = 10_000_000
    held_out: float = 0.05  # share of tokens kept out of training, for the explained variance
    seed: int = 0

    def steps(self) -> int:
        return max(1, self.n_tokens // self.batch_size)


PAPER = CrosscoderConfig()
#: the organism's residual (d 128): 1,024 latents, ~1,000 training tokens per latent (the paper: ~1,400)
ORGANISM = CrosscoderConfig(expansion=8, k=16, n_tokens=1_000_000, batch_size=1024, lr=1e-3, warmup_steps=100,
                            threshold_start_step=200, dead_after_tokens=200_000)
#: scaled down from PAPER to train on 2 CPU cores in about an hour at SmolLM2's width (576)
REAL = CrosscoderConfig(expansion=8, k=32, n_tokens=2_000_000, batch_size=1024, lr=5e-4, warmup_steps=200,
                        threshold_start_step=500, dead_after_tokens=1_000_000)
#: for tests and the tiny organism: seconds
TINY = CrosscoderConfig(expansion=4, k=8, n_tokens=100_000, batch_size=256, lr=3e-3, warmup_steps=20,
                        threshold_start_step=50, dead_after_tokens=20_000)
PRESETS = {"paper": PAPER, "real": REAL, "organism": ORGANISM, "tiny": TINY}


@dataclass
class PairedActivations:
    """``x`` ``[n_tokens, 2, d_model]``: the base's (0) and the aligned model's (1) residual
    (``hook``) at every real token of ``n_texts`` texts; ``token_index`` ``[n_tokens, 2]`` (text,
    position) says where each came from."""

    x: torch.Tensor
    token_index: torch.Tensor
    hook: str
    n_texts: int

    def __post_init__(self):
        if self.x.dim() != 3 or self.x.shape[1] != 2:
            raise ValueError(f"paired activations are [n_tokens, 2, d_model], not {list(self.x.shape)}")
        if len(self.token_index) != len(self.x):
            raise ValueError(f"{len(self.x)} tokens but {len(self.token_index)} token indices")


def paired_activations(pair, texts, layer: int, *, batch_size: int = 32, progress: bool = False) -> PairedActivations:
    """Both models' ``hook_resid_post`` at ``layer`` on every real token of ``texts``
    (:func:`interp.record.record_pair` with ``reduction="all"``); refuses a pair whose two
    tokenizations differ (the tokens would not be the same)."""
    from . import hooks as H
    from .record import record_pair

    L = pair.cfg.n_layers
    if not 0 <= layer < L:
        raise ValueError(f"paired_activations: layer {layer} is outside the pair's {L} layers")
    hook = H.resid(layer)
    rec = record_pair(pair, list(texts), [hook], reduction="all", batch_size=batch_size, progress=progress)
    if not torch.equal(rec.base.token_index, rec.aligned.token_index):
        raise ValueError(f"{pair.name}: the two models tokenize the texts differently; a crosscoder needs the same tokens")
    return PairedActivations(torch.stack([rec.base[hook], rec.aligned[hook]], 1).float(), rec.base.token_index,
                             hook, len(texts))


class Crosscoder(nn.Module):
    """A BatchTopK crosscoder over ``n_models`` residuals of width ``d_model``. Inputs are raw
    activations ``[B, n_models, d_model]``; ``scale`` (a buffer) divides them on the way in and
    multiplies the reconstruction on the way out."""

    def __init__(self, d_model: int, n_latents: int, k: int, *, n_models: int = 2, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(n_models, d_model, n_latents, generator=g)
        w = w / w.norm(dim=1, keepdim=True)
        self.W_enc = nn.Parameter(w)  # [m, d, f], unit columns
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        self.W_dec = nn.Parameter(w.permute(2, 0, 1).clone())  # [f, m, d]: the encoder's transpose
        self.b_dec = nn.Parameter(torch.zeros(n_models, d_model))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("threshold", torch.tensor(-1.0))  # < 0: not yet estimated (batch top-k)
        self.k = k

    @property
    def n_latents(self) -> int:
        return self.W_enc.shape[-1]

    def decoder_norms(self) -> torch.Tensor:
        """``[n_latents, n_models]``: ‖d_j^m‖ (in the scaled space; the shared scale cancels in Δ)."""
        return self.W_dec.norm(dim=-1)

    def pre(self, xs: torch.Tensor) -> torch.Tensor:
        """ReLU pre-activations ``[B, f]`` of scaled inputs."""
        return torch.relu(torch.einsum("bmd,mdf->bf", xs, self.W_enc) + self.b_enc)

    def select(self, f: torch.Tensor, *, batch_topk: bool) -> torch.Tensor:
        """Keep the ``k·B`` largest ``f_j (Σ_m ‖d_j^m‖)`` over the batch (training, or before a
        threshold exists), else those above the threshold."""
        score = f * self.decoder_norms().sum(-1)
        if batch_topk or self.threshold < 0:
            n = min(self.k * f.shape[0], score.numel())
            keep = torch.zeros_like(score, dtype=torch.bool).flatten()
            keep[score.flatten().topk(n, sorted=False).indices] = True
            keep = keep.view_as(score) & (score > 0)
        else:
            keep = score > self.threshold
        return f * keep

    def encode(self, x: torch.Tensor, *, batch_topk: bool = False) -> torch.Tensor:
        """Sparse latents ``[B, f]`` of raw activations ``[B, m, d]``."""
        return self.select(self.pre(x / self.scale), batch_topk=batch_topk)

    def decode_scaled(self, f: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bf,fmd->bmd", f, self.W_dec) + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction of raw activations ``[B, m, d]`` (inference encoding)."""
        return self.decode_scaled(self.encode(x)) * self.scale


def geometric_median(points: torch.Tensor, iters: int = 100, eps: float = 1e-8) -> torch.Tensor:
    """Weiszfeld's algorithm over the rows of ``points`` ``[n, d]``."""
    y = points.mean(0)
    for _ in range(iters):
        w = 1 / (points - y).norm(dim=-1).clamp_min(eps)
        y_new = (w[:, None] * points).sum(0) / w.sum()
        if (y_new - y).norm() < 1e-6 * (y.norm() + eps):
            return y_new
        y = y_new
    return y


@dataclass
class TrainedCrosscoder:
    """A trained :class:`Crosscoder`, how it was trained and how well it reconstructs held-out
    tokens (``explained_variance`` per model: base, aligned)."""

    model: Crosscoder
    config: CrosscoderConfig
    hook: str
    n_train_tokens: int
    losses: list[float]  # the training loss every ``log_every`` steps
    explained_variance: list[float]
    dead_share: float  # latents not fired in the last ``dead_after_tokens`` tokens
    l0: float  # mean active latents per held-out token (inference threshold)
    held_out: torch.Tensor = field(repr=False, default=None)  # indices of held-out tokens

    def to_dict(self) -> dict:
        return {"config": dataclasses.asdict(self.config), "hook": self.hook, "n_train_tokens": self.n_train_tokens,
                "n_latents": self.model.n_latents, "explained_variance": {"base": self.explained_variance[0],
                                                                          "aligned": self.explained_variance[1]},
                "dead_share": self.dead_share, "l0": self.l0, "scale": float(self.model.scale),
                "threshold": float(self.model.threshold), "final_loss": self.losses[-1] if self.losses else None}


def _split(n: int, share: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_held = int(round(n * share))
    if n_held and n - n_held < 1:
        raise ValueError(f"{n} tokens cannot keep {share:.0%} out of training")
    return order[n_held:], order[:n_held]


def train_crosscoder(acts: PairedActivations | torch.Tensor, config: CrosscoderConfig = ORGANISM, *,
                     hook: str = "", log_every: int = 50, progress: bool = False) -> TrainedCrosscoder:
    """Train a BatchTopK crosscoder on paired activations (``[n_tokens, 2, d_model]``) for
    ``config.n_tokens`` tokens, sampling batches without replacement and reshuffling each pass."""
    from tqdm.auto import tqdm

    if isinstance(acts, PairedActivations):
        x, hook = acts.x, acts.hook
    else:
        x = acts
    if x.dim() != 3:
        raise ValueError(f"train_crosscoder: activations are [n_tokens, n_models, d_model], not {list(x.shape)}")
    x = x.float()
    if not torch.isfinite(x).all():
        raise ValueError("train_crosscoder: the activations hold NaN or inf")
    n, m, d = x.shape
    cfg = config
    if cfg.k < 1 or cfg.expansion < 1 or cfg.batch_size < 1:
        raise ValueError(f"train_crosscoder: k, expansion and batch_size must be ≥ 1 ({cfg})")
    train_idx, held_idx = _split(n, cfg.held_out, cfg.seed)
    if len(train_idx) < cfg.batch_size:
        raise ValueError(f"train_crosscoder: {len(train_idx)} training tokens, fewer than one batch of {cfg.batch_size}")
    torch.manual_seed(cfg.seed)
    cc = Crosscoder(d, cfg.expansion * d, cfg.k, n_models=m, seed=cfg.seed)
    xt = x[train_idx]
    cc.scale.fill_(float(xt.norm(dim=-1).mean() / math.sqrt(d)))
    with torch.no_grad():
        first = xt[torch.randperm(len(xt), generator=torch.Generator().manual_seed(cfg.seed))[:cfg.batch_size]] / cc.scale
        cc.b_dec.copy_(torch.stack([geometric_median(first[:, i]) for i in range(m)]))
    opt = torch.optim.Adam(cc.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup_steps)))
    since_fired = torch.zeros(cc.n_latents)
    k_aux_max = d // 2
    losses, running = [], []
    g = torch.Generator().manual_seed(cfg.seed + 1)
    order, pos = torch.randperm(len(xt), generator=g), 0
    for step in tqdm(range(cfg.steps()), desc="crosscoder", disable=not progress):
        if pos + cfg.batch_size > len(order):
            order, pos = torch.randperm(len(xt), generator=g), 0
        xb = xt[order[pos:pos + cfg.batch_size]] / cc.scale
        pos += cfg.batch_size
        f_pre = cc.pre(xb)
        f = cc.select(f_pre, batch_topk=True)
        e = xb - cc.decode_scaled(f)
        loss = e.norm(dim=-1).mean()
        fired = (f > 0).any(0)
        since_fired += len(xb)
        since_fired[fired] = 0
        dead = since_fired >= cfg.dead_after_tokens
        n_dead = int(dead.sum())
        if n_dead and cfg.auxk_alpha > 0:
            k_aux = min(k_aux_max, n_dead)
            aux_pre = torch.where(dead[None], f_pre, torch.full_like(f_pre, -float("inf")))
            vals, idx = aux_pre.topk(k_aux, dim=-1)
            f_aux = torch.zeros_like(f_pre).scatter(-1, idx, vals.clamp_min(0))
            resid = e.detach()
            rec_aux = torch.einsum("bf,fmd->bmd", f_aux, cc.W_dec)
            denom = (resid - resid.mean(0)).pow(2).sum((-1, -2)).mean()
            aux = (resid - rec_aux).pow(2).sum((-1, -2)).mean() / denom
            loss = loss + cfg.auxk_alpha * torch.nan_to_num(aux, nan=0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(cc.parameters(), 1.0)
        opt.step()
        sched.step()
        if step >= cfg.threshold_start_step:
            with torch.no_grad():
                score = f.detach() * cc.decoder_norms().sum(-1)
                active = score[score > 0]
                if active.numel():
                    low = active.min()
                    cc.threshold.copy_(low if cc.threshold < 0 else
                                       cfg.threshold_beta * cc.threshold + (1 - cfg.threshold_beta) * low)
        running.append(float(loss.detach()))
        if (step + 1) % log_every == 0:
            losses.append(float(np.mean(running)))
            running = []
    if running:
        losses.append(float(np.mean(running)))
    cc.eval()
    held = x[held_idx] if len(held_idx) else x[train_idx[:cfg.batch_size]]
    ev, l0 = explained_variance(cc, held)
    return TrainedCrosscoder(cc, cfg, hook, cfg.steps() * cfg.batch_size, losses, ev,
                             float((since_fired >= cfg.dead_after_tokens).float().mean()), l0, held_idx)


@torch.no_grad()
def explained_variance(cc: Crosscoder, x: torch.Tensor, *, batch_size: int = 4096) -> tuple[list[float], float]:
    """Per model, ``1 − Σ‖x − x̂‖² / Σ‖x − mean x‖²`` over the tokens of ``x``, and the mean
    number of active latents per token."""
    m = x.shape[1]
    err, active = torch.zeros(m, dtype=torch.float64), 0.0
    for lo in range(0, len(x), batch_size):
        xb = x[lo:lo + batch_size].float()
        f = cc.encode(xb)
        err += ((xb - cc.decode_scaled(f) * cc.scale).double().pow(2).sum(-1)).sum(0)
        active += float((f > 0).sum())
    var = (x.double() - x.double().mean(0)).pow(2).sum(-1).sum(0)
    return (1 - err / var).tolist(), active / max(1, len(x))


def relative_norm(cc: Crosscoder) -> torch.Tensor:
    """Δ_j = ½((‖d_j^aligned‖ − ‖d_j^base‖) / max(‖d_j^base‖, ‖d_j^aligned‖) + 1): 1 aligned-only,
    0 base-only, ½ equal norms (model 0 is the base, model 1 the aligned)."""
    n = cc.decoder_norms().detach()
    return 0.5 * ((n[:, 1] - n[:, 0]) / n.max(-1).values.clamp_min(1e-12) + 1)


def decoder_cosine(cc: Crosscoder) -> torch.Tensor:
    """``[n_latents]``: cos(d_j^base, d_j^aligned)."""
    w = cc.W_dec.detach()
    return torch.nn.functional.cosine_similarity(w[:, 0], w[:, 1], dim=-1)


def latent_classes(delta: torch.Tensor) -> np.ndarray:
    """Per latent ``"aligned-only"``, ``"base-only"``, ``"shared"`` or ``"other"`` by :data:`ALIGNED_ONLY`,
    :data:`BASE_ONLY` and :data:`SHARED`."""
    d = np.asarray(torch.as_tensor(delta).cpu(), dtype=float)
    out = np.full(d.shape, "other", dtype=object)
    out[d > ALIGNED_ONLY[0]] = "aligned-only"
    out[d < BASE_ONLY[1]] = "base-only"
    out[(d >= SHARED[0]) & (d <= SHARED[1])] = "shared"
    return out


@dataclass
class LatentScaling:
    """Closed-form latent scaling (Minder et al.) for every latent j, with ``u_j`` its aligned
    decoder vector: ``beta_eps[m, j]`` the least-squares scale of ``f_j u_j`` to model m's error
    with latent j's own term put back (``x^m − x̂^m + f_j d_j^m``), ``beta_r[m, j]`` to model m's
    reconstruction ``x̂^m``; ``nu_eps``, ``nu_r`` = base / aligned. ``freq`` is the share of tokens
    the latent fires on (NaN βs where it never fires)."""

    beta_eps: torch.Tensor
    beta_r: torch.Tensor
    freq: torch.Tensor
    n_tokens: int

    @property
    def nu_eps(self) -> torch.Tensor:
        return self.beta_eps[0] / self.beta_eps[1]

    @property
    def nu_r(self) -> torch.Tensor:
        return self.beta_r[0] / self.beta_r[1]


@torch.no_grad()
def latent_scaling(cc: Crosscoder, x: torch.Tensor, *, batch_size: int = 4096) -> LatentScaling:
    """β = Σ_t f_tj ⟨y_t^m, u_j⟩ / (‖u_j‖² Σ_t f_tj²) over the tokens of ``x`` (raw activations,
    scaled inside): the exact minimiser of Σ_t ‖y_t^m − β f_tj u_j‖², accumulated in batches."""
    f_n = cc.n_latents
    m = cc.W_dec.shape[1]
    u = cc.W_dec[:, -1].double()  # [f, d]: the aligned decoder vectors
    own = torch.einsum("fmd,fd->mf", cc.W_dec.double(), u)  # ⟨d_j^m, u_j⟩
    num_eps = torch.zeros(m, f_n, dtype=torch.float64)
    num_r = torch.zeros(m, f_n, dtype=torch.float64)
    f2 = torch.zeros(f_n, dtype=torch.float64)
    fires = torch.zeros(f_n, dtype=torch.float64)
    for lo in range(0, len(x), batch_size):
        xs = x[lo:lo + batch_size].float() / cc.scale
        f = cc.select(cc.pre(xs), batch_topk=False)
        rec = cc.decode_scaled(f).double()
        fd = f.double()
        err_u = torch.einsum("bmd,fd->bmf", xs.double() - rec, u)
        rec_u = torch.einsum("bmd,fd->bmf", rec, u)
        num_eps += torch.einsum("bf,bmf->mf", fd, err_u) + own * fd.pow(2).sum(0)
        num_r += torch.einsum("bf,bmf->mf", fd, rec_u)
        f2 += fd.pow(2).sum(0)
        fires += (fd > 0).sum(0)
    den = u.pow(2).sum(-1) * f2
    den = torch.where(f2 > 0, den, torch.full_like(den, float("nan")))
    return LatentScaling((num_eps / den).float(), (num_r / den).float(), (fires / max(1, len(x))).float(), len(x))


@dataclass
class Latent:
    """One aligned-only latent: its relative norm, decoder cosine, firing rate, latent-scaling
    ratios, its top activating contexts and the tokens its aligned decoder vector promotes in the
    base's logit lens."""

    index: int
    delta: float
    cosine: float
    freq: float
    nu_eps: float
    nu_r: float
    promotes: list[str] = field(default_factory=list)
    suppresses: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)

    @property
    def specific(self) -> bool:
        """Aligned-only and neither ratio shows the base carrying it (|ν^ε|, |ν^r| < :data:`NU_MAX`)."""
        return (self.delta > ALIGNED_ONLY[0] and abs(self.nu_eps) < NU_MAX and abs(self.nu_r) < NU_MAX)

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "specific": self.specific}


@dataclass
class CrosscoderAnalysis:
    """A trained crosscoder read out: latent classes by relative norm, latent scaling for every
    latent, the aligned-only (and base-only) latents in detail, and, given a target (a boolean
    mask over the vocabulary), the identification score of the specific aligned-only latents'
    logit-lens readout (:func:`interp.adl.identification` on their mean decoder vector)."""

    trained: dict
    delta: np.ndarray
    cosine: np.ndarray
    classes: dict[str, int]
    scaling: LatentScaling
    aligned_only: list[Latent]
    base_only: list[Latent]
    leaning: list[Latent] = field(default_factory=list)  # the firing latents of largest Δ, any class
    identification: dict = field(default_factory=dict)  # scorer -> adl.Identification
    meta: dict = field(default_factory=dict)

    @property
    def specific(self) -> list[Latent]:
        return [lat for lat in self.aligned_only if lat.specific]

    def to_dict(self) -> dict:
        return {"trained": self.trained, "classes": self.classes, "n_specific": len(self.specific),
                "delta_histogram": np.histogram(self.delta, bins=20, range=(0, 1))[0].tolist(),
                "aligned_only": [lat.to_dict() for lat in self.aligned_only],
                "base_only": [lat.to_dict() for lat in self.base_only],
                "leaning": [lat.to_dict() for lat in self.leaning],
                "identification": {n: x.to_dict() for n, x in self.identification.items()}, "meta": self.meta}


def _contexts(model, texts, token_index: torch.Tensor, rows: torch.Tensor, width: int = 6) -> list[str]:
    """The text around each token (``width`` tokens before it, the token itself in ⟦ ⟧)."""
    tok = model.tokenizer
    out = []
    for r in rows.tolist():
        t, p = token_index[r].tolist()
        ids = tok(texts[t])["input_ids"]
        out.append(tok.decode(ids[max(0, p - width):p]) + "⟦" + tok.decode(ids[p:p + 1]) + "⟧")
    return out


@torch.no_grad()
def analyse(trained: TrainedCrosscoder, acts: PairedActivations, base_model=None, *, texts=None, targets=None,
            n_tokens: int = 20, n_contexts: int = 5, max_latents: int = 50, n_leaning: int = 10, n_perm: int = 1000,
            seed: int = 0, batch_size: int = 4096) -> CrosscoderAnalysis:
    """Classify the latents, run latent scaling on ``acts`` (use tokens the crosscoder was not
    trained on where there are enough), and describe the aligned-only and base-only latents (up to
    ``max_latents`` each, most frequent first): with ``base_model`` their logit-lens tokens, with
    ``texts`` (the texts ``acts`` were recorded on) their top contexts — and the same for the
    ``n_leaning`` firing latents of largest Δ whatever their class — with ``targets``
    ``{name: bool mask over the vocabulary}`` the identification score of the specific latents."""
    from .adl import identification
    from .locate import unembed_logits

    cc = trained.model
    delta, cos = relative_norm(cc), decoder_cosine(cc)
    cls = latent_classes(delta)
    scaling = latent_scaling(cc, acts.x, batch_size=batch_size)
    top_rows: dict[int, torch.Tensor] = {}
    candidates = {c: [j for j in np.argsort(-scaling.freq.numpy()) if cls[j] == c and scaling.freq[j] > 0][:max_latents]
                  for c in ("aligned-only", "base-only")}
    # the firing latents leaning most toward the aligned model, whatever their class (a pair with no
    # aligned-only latent still shows where the dictionary sees the change)
    candidates["leaning"] = [int(j) for j in np.argsort(-delta.numpy()) if scaling.freq[j] > 0][:n_leaning]
    wanted = sorted(set(candidates["aligned-only"]) | set(candidates["base-only"]) | set(candidates["leaning"]))
    if texts is not None and wanted:
        best = torch.full((len(wanted), n_contexts), -1.0)
        rows = torch.full((len(wanted), n_contexts), -1, dtype=torch.long)
        cols = torch.as_tensor(wanted)
        for lo in range(0, len(acts.x), batch_size):
            f = cc.encode(acts.x[lo:lo + batch_size])[:, cols].T  # [w, b]
            vals = torch.cat([best, f], 1)
            ids = torch.cat([rows, torch.arange(lo, lo + f.shape[1]).expand(len(wanted), -1)], 1)
            top = vals.topk(min(n_contexts, vals.shape[1]), dim=1)
            best, rows = top.values, torch.gather(ids, 1, top.indices)
        top_rows = {j: rows[i][best[i] > 0] for i, j in enumerate(wanted)}

    def describe(j: int) -> Latent:
        lat = Latent(int(j), float(delta[j]), float(cos[j]), float(scaling.freq[j]), float(scaling.nu_eps[j]),
                     float(scaling.nu_r[j]))
        if base_model is not None:
            v = cc.W_dec[j, 0 if cls[j] == "base-only" else -1]
            logits = unembed_logits(base_model, v[None].float())[0]
            tok = base_model.tokenizer
            lat.promotes = [tok.decode([i]) for i in logits.topk(n_tokens).indices.tolist()]
            lat.suppresses = [tok.decode([i]) for i in (-logits).topk(n_tokens).indices.tolist()]
        if j in top_rows and base_model is not None:
            lat.contexts = _contexts(base_model, texts, acts.token_index, top_rows[j])
        return lat

    out = CrosscoderAnalysis(trained.to_dict(), delta.numpy(), cos.numpy(),
                             {c: int((cls == c).sum()) for c in ("aligned-only", "base-only", "shared", "other")},
                             scaling, [describe(j) for j in candidates["aligned-only"]],
                             [describe(j) for j in candidates["base-only"]], [describe(j) for j in candidates["leaning"]])
    if targets and base_model is not None:
        spec = [lat.index for lat in out.specific]
        if spec:
            # frequency-weighted mean of the specific latents' aligned decoder vectors, as one readout
            w = scaling.freq[spec].double()
            v = (cc.W_dec[spec, -1].double() * w[:, None]).sum(0) / w.sum()
            scores = unembed_logits(base_model, v[None].float())[0].cpu().numpy()
            out.identification = {n: identification(scores, t, -1, n_perm=n_perm, seed=seed)
                                  for n, t in targets.items() if 0 < int(torch.as_tensor(t).sum()) < len(t)}
        out.meta["identification_readout"] = ("the specific aligned-only latents' aligned decoder vectors, averaged "
                                              "weighted by firing rate, through the base's logit lens")
    return out
