"""Turning texts into padded token batches, the same way for every analysis."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch


class SequenceTooLongError(ValueError):
    """A text is longer than the model's context window and the caller asked not to truncate."""


@dataclass
class Batch:
    """A padded batch. ``input_ids``/``attention_mask`` ``[batch pos]``; ``index`` the texts' positions in the data."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    index: range

    @property
    def position_ids(self) -> torch.Tensor:
        """Positions counted over real tokens only ``[batch pos]`` (0 on left padding)."""
        return (self.attention_mask.cumsum(-1) - 1).clamp(min=0)


def context_length(model) -> int:
    return int(model.cfg.n_ctx)


def encode(
    tokenizer,
    texts: Sequence[str],
    *,
    max_length: int | None = None,
    on_overflow: str = "truncate",
    padding_side: str = "right",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenize ``texts`` (with the tokenizer's own special tokens) and pad them.

    Returns ``input_ids`` and ``attention_mask``, both ``[len(texts) pos]``. A text longer than
    ``max_length`` is cut to its first ``max_length`` tokens with a warning
    (``on_overflow="truncate"``) or rejected (``on_overflow="error"``).
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not one string")
    if len(texts) == 0:
        raise ValueError("no texts to encode")
    if on_overflow not in ("truncate", "error"):
        raise ValueError("on_overflow must be 'truncate' or 'error'")
    rows = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    if max_length is not None:
        long = [i for i, r in enumerate(rows) if len(r) > max_length]
        if long:
            msg = (
                f"{len(long)} text(s) longer than the context window of {max_length} tokens "
                f"(first: #{long[0]}, {len(rows[long[0]])} tokens)"
            )
            if on_overflow == "error":
                raise SequenceTooLongError(msg)
            warnings.warn(msg + "; truncated", stacklevel=2)
            rows = [r[:max_length] for r in rows]
    if any(len(r) == 0 for r in rows):
        raise ValueError("a text encodes to no tokens")
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        t = torch.tensor(r, dtype=torch.long)
        if padding_side == "right":
            ids[i, : len(r)], mask[i, : len(r)] = t, 1
        else:
            ids[i, width - len(r) :], mask[i, width - len(r) :] = t, 1
    return ids, mask


def batches(
    tokenizer,
    texts: Sequence[str],
    batch_size: int,
    *,
    max_length: int | None = None,
    on_overflow: str = "truncate",
    padding_side: str = "right",
) -> Iterator[Batch]:
    """Yield :class:`Batch`es of ``batch_size`` texts, tokenized lazily (memory bounded by the batch)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    for lo in range(0, len(texts), batch_size):
        hi = min(lo + batch_size, len(texts))
        ids, mask = encode(
            tokenizer,
            texts[lo:hi],
            max_length=max_length,
            on_overflow=on_overflow,
            padding_side=padding_side,
        )
        yield Batch(ids, mask, range(lo, hi))


@dataclass
class Tokens:
    """Already-tokenized data: ``input_ids`` and ``attention_mask`` ``[n pos]``, right-padded.

    Pass it wherever interp takes texts (e.g. :func:`interp.record.record`).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor | None = None

    def __post_init__(self):
        if self.input_ids.dim() != 2:
            raise ValueError("input_ids must be [n, pos]")
        if self.attention_mask is None:
            self.attention_mask = torch.ones_like(self.input_ids)
        if self.attention_mask.shape != self.input_ids.shape:
            raise ValueError("attention_mask and input_ids differ in shape")
        m = self.attention_mask.long()
        if (m[:, 1:] > m[:, :-1]).any():
            raise ValueError("Tokens must be right-padded (a 0 in the mask followed by a 1)")

    def __len__(self) -> int:
        return self.input_ids.shape[0]


def get_batch(tokenizer, data, lo: int, hi: int, *, max_length: int | None = None,
              on_overflow: str = "truncate") -> Batch:
    """Rows ``lo:hi`` of texts or :class:`Tokens` as a right-padded :class:`Batch`."""
    if isinstance(data, Tokens):
        ids, mask = data.input_ids[lo:hi], data.attention_mask[lo:hi]
        width = int(mask.sum(-1).max())
        ids, mask = ids[:, :width], mask[:, :width]
        if max_length is not None and width > max_length:
            msg = f"token rows longer than the context window of {max_length}"
            if on_overflow == "error":
                raise SequenceTooLongError(msg)
            warnings.warn(msg + "; truncated", stacklevel=2)
            ids, mask = ids[:, :max_length], mask[:, :max_length]
        return Batch(ids.long(), mask.long(), range(lo, hi))
    ids, mask = encode(tokenizer, data[lo:hi], max_length=max_length, on_overflow=on_overflow)
    return Batch(ids, mask, range(lo, hi))


def data_hash(data) -> str:
    """A short hash of texts or :class:`Tokens`."""
    import hashlib

    from .io import hash_texts

    if isinstance(data, Tokens):
        h = hashlib.sha256(data.input_ids.long().numpy().tobytes())
        h.update(data.attention_mask.long().numpy().tobytes())
        return h.hexdigest()[:16]
    return hash_texts(data)
