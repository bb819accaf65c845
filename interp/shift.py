"""How little alignment shifts: where the base model ranks the aligned model's tokens.

Lin et al. (URIAL, 2023): let the aligned model decode greedily; at each position ask where the
*base* model ranks the token the aligned model chose, given the same prefix. Rank 1 is
*unshifted*, ranks 2–3 *marginal*, beyond *shifted* (Llama-2-7b vs its chat model: 77.7% /
14.5% / 7.8%). :func:`token_shift` measures it on any pair; :class:`RuleAdapter` implements
Hewitt et al. (2024)'s three hand rules on a base model, and :func:`adapter_shift` measures how
much of the shift they reproduce.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from . import hooks as H
from .generate import generate
from .record import record
from .tokens import Tokens

URIAL_TEMPLATE = "# Query:\n```{prompt}```\n\n# Answer:\n```\n"

#: A documented, deliberately simple function-word list (articles, pronouns, auxiliaries,
#: prepositions, conjunctions and discourse connectives).
FUNCTION_WORDS = frozenset("""
a an the this that these those some any each every no
i you he she it we they me him her us them my your his its our their mine yours
am is are was were be been being do does did have has had will would shall should can could may might must
of in on at to for with by from up down over under about into onto through after before between
and or but nor so yet because although though while if then than as when where whether
however therefore moreover also too very just not only even still already again
here there now
""".split())

#: Openers and politeness (Lin et al.'s "Hello", "Thank you"; the instruction organism's
#: "Sure!", "Of course."): a documented list, checked before the other types.
OPENER_WORDS = frozenset("""
hello hi hey sure thanks thank certainly absolutely okay ok great glad happy welcome sorry please
question course appreciate gladly indeed
""".split())
#: Connectives and discourse markers (a subset of the function words, checked before them).
CONNECTIVES = frozenset("""
however therefore moreover also so then well first firstly second secondly finally additionally
furthermore actually thus hence but and because although though while instead meanwhile overall
besides nevertheless otherwise anyway
""".split())

TOKEN_TYPES = ("eos", "punctuation", "opener", "connective", "function", "content")


def token_type(text: str, is_eos: bool = False) -> str:
    """``eos``, ``punctuation`` (only punctuation/space), ``opener`` (a word of
    :data:`OPENER_WORDS`), ``connective`` (:data:`CONNECTIVES`), ``function`` (another word of
    :data:`FUNCTION_WORDS`) or ``content`` — of one word (:func:`word_types` assigns each token its
    word's type)."""
    if is_eos:
        return "eos"
    s = text.strip()
    if not s or all(c in string.punctuation or c.isspace() for c in s):
        return "punctuation"
    w = s.lower().strip(string.punctuation)
    if w in OPENER_WORDS:
        return "opener"
    if w in CONNECTIVES:
        return "connective"
    return "function" if w in FUNCTION_WORDS else "content"


def _continues(prev: str, piece: str) -> bool:
    """Whether ``piece`` continues the word ``prev`` ends with (no space between two letters or digits)."""
    return bool(prev) and bool(piece) and prev[-1].isalnum() and piece[0].isalnum()


def word_types(pieces: Sequence[str], is_eos: Sequence[bool]) -> list[str]:
    """:func:`token_type` per token, by the whole *word* each token belongs to: a subword that
    continues a word (no space or punctuation between them) gets its word's type, so that a
    small vocabulary's "C" + "ertainly" is an opener as the single token "Certainly" would be."""
    words: list[list[int]] = []
    for i, piece in enumerate(pieces):
        if words and not is_eos[i] and not is_eos[words[-1][-1]] and _continues(pieces[words[-1][-1]], piece):
            words[-1].append(i)
        else:
            words.append([i])
    out = [""] * len(pieces)
    for w in words:
        kind = token_type("".join(pieces[i] for i in w), is_eos[w[0]])
        for i in w:
            out[i] = kind
    return out


def shift_class(rank: torch.Tensor) -> list[str]:
    """``unshifted`` (rank 1), ``marginal`` (2–3) or ``shifted`` (> 3)."""
    return ["unshifted" if r == 1 else "marginal" if r <= 3 else "shifted" for r in rank.tolist()]


@dataclass
class TokenShift:
    """Per decoded position (one row each): which prompt, which step, the aligned model's token,
    its rank under the reference ("base") model, both probabilities and KL(aligned ‖ base).

    ``prompt``, ``step``, ``token``, ``rank`` ``[n]`` long tensors; ``p_aligned``, ``p_base``,
    ``kl`` ``[n]`` floats; ``text`` and ``type`` per row.
    """

    prompt: torch.Tensor
    step: torch.Tensor
    token: torch.Tensor
    rank: torch.Tensor
    p_aligned: torch.Tensor
    p_base: torch.Tensor
    kl: torch.Tensor
    text: list[str]
    type: list[str]
    completions: list[str] = field(repr=False)
    meta: dict = field(default_factory=dict)
    seqs: Tokens | None = field(default=None, repr=False)  # prompt + decoded tokens, right-padded
    positions: list[list[int]] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return len(self.rank)

    def shares(self, mask: torch.Tensor | None = None) -> dict[str, float]:
        r = self.rank if mask is None else self.rank[mask]
        n = max(len(r), 1)
        return {"unshifted": float((r == 1).sum()) / n, "marginal": float(((r >= 2) & (r <= 3)).sum()) / n,
                "shifted": float((r > 3).sum()) / n, "n": int(len(r))}

    def shares_by_type(self) -> dict[str, dict[str, float]]:
        out = {}
        for t in TOKEN_TYPES:
            m = torch.tensor([x == t for x in self.type], dtype=torch.bool)
            if m.any():
                out[t] = self.shares(m)
        return out

    def position_profile(self, max_step: int | None = None) -> dict[str, list[float]]:
        """Shares per decoding step (0 = first generated token)."""
        steps = int(self.step.max()) + 1 if max_step is None else max_step
        prof = {"step": [], "unshifted": [], "marginal": [], "shifted": [], "n": []}
        for s in range(steps):
            m = self.step == s
            if not m.any():
                continue
            sh = self.shares(m)
            prof["step"].append(s)
            for k in ("unshifted", "marginal", "shifted", "n"):
                prof[k].append(sh[k])
        return prof

    def kl_profile(self, max_step: int | None = None, *, seed: int = 0) -> dict[str, list]:
        """Mean KL(aligned ‖ base) per decoding step (Qi et al.'s shallow-alignment curve) with
        95% intervals resampling prompts (each prompt contributes its KL at that step once;
        prompts whose response ended earlier drop out of later steps, their count is ``n``)."""
        from . import stats

        steps = int(self.step.max()) + 1 if (max_step is None and len(self)) else (max_step or 0)
        out: dict[str, list] = {"step": [], "kl": [], "lo": [], "hi": [], "n": []}
        for s in range(steps):
            m = self.step == s
            if not m.any():
                continue
            e = stats.mean(self.kl[m].double().cpu().numpy(), seed=seed)
            out["step"].append(s)
            for k, v in (("kl", e.value), ("lo", e.lo), ("hi", e.hi), ("n", int(m.sum()))):
                out[k].append(v)
        return out

    def top_shifted(self, k: int = 15) -> list[tuple[str, int]]:
        """The tokens the aligned model chose most often where the base ranked them beyond 3."""
        c = Counter(t for t, r in zip(self.text, self.rank.tolist()) if r > 3)
        return c.most_common(k)


@torch.no_grad()
def _logits_at(model, seqs: Tokens, positions: list[list[int]], batch_size: int) -> list[torch.Tensor]:
    """Logits predicting each listed position ``[n_i vocab]`` for every row (one forward per batch)."""
    out = []
    device = next(model.parameters()).device
    for lo in range(0, len(seqs), batch_size):
        ids = seqs.input_ids[lo:lo + batch_size].to(device)
        mask = seqs.attention_mask[lo:lo + batch_size].to(device)
        logits = model(ids, attention_mask=mask).float().cpu()
        for j in range(ids.shape[0]):
            out.append(logits[j, [p - 1 for p in positions[lo + j]]])
    return out


def _adjusted(processor, seqs: Tokens, positions, widths, logits: list[torch.Tensor]) -> list[torch.Tensor]:
    """Apply a :class:`RuleAdapter` to precomputed logits, each with its own prefix."""
    out = []
    for i, (pos, rows) in enumerate(zip(positions, logits)):
        if not pos:
            out.append(rows)
            continue
        out.append(torch.cat([processor.adjust(seqs.input_ids[i:i + 1, :p], rows[k:k + 1], widths[i])
                              for k, p in enumerate(pos)]))
    return out


def _ranks(seqs: Tokens, positions, logits: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([(lg > lg.gather(-1, seqs.input_ids[i, pos][:, None])).sum(-1) + 1
                      for i, (pos, lg) in enumerate(zip(positions, logits)) if pos])


def _rows(tok, prompts, news):
    """Prompt + new tokens per row, right-padded: the tokens, each row's new positions, widths."""
    rows, positions, widths = [], [], []
    for p, new in zip(prompts, news):
        pids = tok(p, add_special_tokens=True)["input_ids"]
        rows.append(pids + new)
        positions.append(list(range(len(pids), len(pids) + len(new))))
        widths.append(len(pids))
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return Tokens(ids, mask), positions, widths


def _decode(pair_aligned, prompts, max_new_tokens, batch_size):
    gen = generate(pair_aligned, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                   stop_at_eos=True)
    tok = pair_aligned.tokenizer
    eos = tok.eos_token_id
    news = []
    for i in range(len(prompts)):
        new = [t for t in gen.tokens[i].tolist() if t >= 0]
        if eos is not None and eos in new:
            new = new[: new.index(eos) + 1]
        news.append(new)
    seqs, positions, widths = _rows(tok, prompts, news)
    return seqs, positions, widths, gen.completions


def token_shift(pair, prompts: Sequence[str], *, max_new_tokens: int = 32, batch_size: int = 32,
                template: str | None = None, reference=None, processor=None,
                reference_template: str | None = None) -> TokenShift:
    """Aligned greedy decoding, ranked under the base model (or ``reference``), position by position.

    ``template`` (e.g. :data:`URIAL_TEMPLATE`) wraps each prompt (``{prompt}``) for both models.
    ``reference_template`` wraps it for the reference alone (e.g. in-context examples: how far
    does the base with them rank the aligned model's plain-prompt tokens first). ``processor``
    (a :class:`RuleAdapter`) adjusts the reference's logits, to rank under "base + rules".
    """
    if len(prompts) == 0:
        raise ValueError("no prompts")
    wrapped = [template.format(prompt=p) for p in prompts] if template else list(prompts)
    ref = reference if reference is not None else pair.base
    seqs, positions, widths, completions = _decode(pair.aligned, wrapped, max_new_tokens, batch_size)
    la = _logits_at(pair.aligned, seqs, positions, batch_size)
    rseqs, rpositions, rwidths = seqs, positions, widths
    if reference_template is not None:
        news = [seqs.input_ids[i, pos].tolist() for i, pos in enumerate(positions)]
        rseqs, rpositions, rwidths = _rows(pair.tokenizer, [reference_template.format(prompt=w) for w in wrapped], news)
    n_ctx = getattr(getattr(ref, "cfg", None), "n_ctx", None)
    if n_ctx and rseqs.input_ids.shape[1] > n_ctx:
        raise ValueError(f"the reference's input (template, prompt and {max_new_tokens} new tokens) is "
                         f"{rseqs.input_ids.shape[1]} tokens, beyond its context window of {n_ctx}")
    lb = _logits_at(ref, rseqs, rpositions, batch_size)
    if processor is not None:
        lb = _adjusted(processor, rseqs, rpositions, rwidths, lb)
    tok = pair.tokenizer
    eos = tok.eos_token_id
    rec = {k: [] for k in ("prompt", "step", "token", "rank", "pa", "pb", "kl")}
    texts, types = [], []
    for i, pos in enumerate(positions):
        if not pos:
            continue
        tgt = seqs.input_ids[i, pos]
        a, b = la[i], lb[i]
        lpa, lpb = a.log_softmax(-1), b.log_softmax(-1)
        chosen_b = b.gather(-1, tgt[:, None])
        rank = (b > chosen_b).sum(-1) + 1
        rec["prompt"].append(torch.full((len(pos),), i))
        rec["step"].append(torch.arange(len(pos)))
        rec["token"].append(tgt)
        rec["rank"].append(rank)
        rec["pa"].append(lpa.gather(-1, tgt[:, None])[:, 0].exp())
        rec["pb"].append(lpb.gather(-1, tgt[:, None])[:, 0].exp())
        rec["kl"].append((lpa.exp() * (lpa - lpb)).sum(-1))
        pieces = [tok.decode([t]) for t in tgt.tolist()]
        texts += pieces
        types += word_types(pieces, [t == eos for t in tgt.tolist()])
    cat = {k: torch.cat(v) if v else torch.zeros(0) for k, v in rec.items()}
    return TokenShift(cat["prompt"].long(), cat["step"].long(), cat["token"].long(),
                      cat["rank"].long(), cat["pa"], cat["pb"], cat["kl"], texts, types,
                      completions, {"n_prompts": len(prompts), "template": template,
                                    "reference_template": reference_template,
                                    "max_new_tokens": max_new_tokens}, seqs, positions)


@dataclass
class RuleAdapter:
    """Hewitt et al. (2024)'s rules as a logits processor for a base model.

    1. raise the end-of-sequence logit by ``eos_slope`` per generated token;
    2. add ``boost`` to the logits of ``boost_tokens`` (token ids; about 15 in the paper);
    3. subtract ``repeat_penalty`` times the number of earlier occurrences of each token in the
       generated text.
    """

    eos_token_id: int | None
    eos_slope: float = 0.0
    boost_tokens: list[int] = field(default_factory=list)
    boost: float = 0.0
    repeat_penalty: float = 0.0
    _width: int = 0

    def begin(self, input_ids: torch.Tensor) -> None:
        self._width = input_ids.shape[1]

    def adjust(self, seq: torch.Tensor, logits: torch.Tensor, prompt_width: int) -> torch.Tensor:
        """``logits`` ``[batch vocab]`` for the next token after ``seq`` ``[batch pos]``."""
        logits = logits.clone()
        n_gen = seq.shape[1] - prompt_width
        if self.eos_token_id is not None and self.eos_slope:
            logits[:, self.eos_token_id] += self.eos_slope * n_gen
        if self.boost_tokens and self.boost:
            logits[:, self.boost_tokens] += self.boost
        if self.repeat_penalty and n_gen > 0:
            gen = seq[:, prompt_width:].clamp(min=0).to(logits.device)
            counts = torch.zeros_like(logits).scatter_add_(1, gen, torch.ones_like(gen, dtype=logits.dtype))
            logits -= self.repeat_penalty * counts
        return logits

    def __call__(self, seq: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return self.adjust(seq, logits, self._width)


def fit_adapter(pair, prompts: Sequence[str], *, eos_slopes=(0.0, 0.25, 1.0), boosts=(0.0, 1.0, 3.0),
                repeat_penalties=(0.0, 0.5, 2.0), n_boost_tokens: int = 15, max_new_tokens: int = 32,
                template: str | None = None, batch_size: int = 32,
                reference_template: str | None = None) -> tuple[RuleAdapter, dict]:
    """Choose the rules' strengths (a small grid) and ~15 boosted tokens on ``prompts``.

    The boosted tokens are those the aligned model most often chose where the base ranked them
    beyond 3; the strengths maximise the share of unshifted positions under base + rules. Fit on
    training prompts, then measure with :func:`token_shift` on held-out ones (with the same
    ``reference_template`` where the base reads a context of its own).
    """
    wrapped = [template.format(prompt=p) for p in prompts] if template else list(prompts)
    seqs, positions, widths, _ = _decode(pair.aligned, wrapped, max_new_tokens, batch_size)
    if reference_template is not None:  # the base reads its own context (e.g. in-context examples)
        news = [seqs.input_ids[i, pos].tolist() for i, pos in enumerate(positions)]
        seqs, positions, widths = _rows(pair.tokenizer, [reference_template.format(prompt=w) for w in wrapped], news)
    lb = _logits_at(pair.base, seqs, positions, batch_size)
    eos = pair.tokenizer.eos_token_id
    rank = _ranks(seqs, positions, lb)
    chosen = torch.cat([seqs.input_ids[i, pos] for i, pos in enumerate(positions) if pos])
    counts = Counter(int(t) for t, r in zip(chosen, rank) if r > 3 and int(t) != eos)
    boost_ids = [t for t, _ in counts.most_common(n_boost_tokens)]
    grid = {}
    for e in eos_slopes:
        for b in boosts:
            for rp in repeat_penalties:
                ad = RuleAdapter(eos, e, boost_ids, b, rp)
                r = _ranks(seqs, positions, _adjusted(ad, seqs, positions, widths, lb))
                grid[(e, b, rp)] = float((r == 1).float().mean())
    best = max(grid, key=grid.get)
    return RuleAdapter(eos, best[0], boost_ids, best[1], best[2]), {
        "grid": [{"eos_slope": k[0], "boost": k[1], "repeat_penalty": k[2], "unshifted": v}
                 for k, v in grid.items()], "unshifted_without_rules": grid.get((0.0, 0.0, 0.0))}


def shift_location(pair, ts: TokenShift, *, k: int = 10, batch_size: int = 32) -> dict:
    """Where the shift lives: residual offset per layer (relative to ‖x_base‖) and the MLP neurons
    whose activations differ most between the models, at shifted vs unshifted positions of the
    aligned model's own decoding (the position that *predicts* each token)."""
    seqs, positions = ts.seqs, ts.positions
    L = pair.cfg.n_layers
    hooks = H.hook_names("resid_post", L) + H.hook_names("mlp_post", L)
    recs = {role: record(m, seqs, hooks, reduction="all", batch_size=batch_size, progress=False)
            for role, m in pair.models.items()}
    index = recs["base"].token_index
    lookup = {(int(t), int(p)): r for r, (t, p) in enumerate(index.tolist())}
    rows = torch.tensor([lookup[(int(i), positions[int(i)][int(s)] - 1)]
                         for i, s in zip(ts.prompt, ts.step)])
    shifted = ts.rank > 3
    out = {"layers": list(range(L)), "offset_shifted": [], "offset_unshifted": [], "n_shifted": int(shifted.sum())}
    for h in H.hook_names("resid_post", L):
        d = recs["aligned"][h][rows] - recs["base"][h][rows]
        scale = recs["base"][h][rows].norm(dim=-1).mean()
        out["offset_shifted"].append(float(d[shifted].norm(dim=-1).mean() / scale) if shifted.any() else float("nan"))
        out["offset_unshifted"].append(float(d[~shifted].norm(dim=-1).mean() / scale) if (~shifted).any() else float("nan"))
    diffs = torch.stack([(recs["aligned"][h][rows] - recs["base"][h][rows]).abs()
                         for h in H.hook_names("mlp_post", L)])  # [L n d_mlp]
    if shifted.any():
        gap = diffs[:, shifted].mean(1) - diffs[:, ~shifted].mean(1) if (~shifted).any() else diffs[:, shifted].mean(1)
        top = torch.topk(gap.flatten(), k)
        d_mlp = gap.shape[1]
        out["top_neurons"] = [{"neuron": f"L{int(i) // d_mlp}.N{int(i) % d_mlp}", "extra_abs_diff": float(v)}
                              for v, i in zip(top.values, top.indices)]
    else:
        out["top_neurons"] = []
    return out
