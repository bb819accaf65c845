"""Record activations (MLP keys, residual vectors) of one model or both models of a pair.

Texts go through the model in batches; each chosen hook's activation is *reduced* inside the
hook (so memory is bounded by one batch, never by the data set) and either kept in memory or
streamed to disk as safetensors shards with a manifest.

Reductions (``reduction=``):

* ``"mean"``  mean over a text's real tokens → ``[n_texts, *act]``
* ``"last"``  the last real token → ``[n_texts, *act]``
* ``int k``   token ``k`` of each text (negative counts from the last real token) → ``[n_texts, *act]``
* ``"all"``   every real token → ``[n_tokens, *act]``, with ``Recording.token_index`` ``[n_tokens, 2]``
  giving (text, position) of each row.

Padding never enters a statistic: texts are right-padded and only positions where
``attention_mask`` is 1 are read.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import distributed
from . import hooks as H
from .checks import finite
from .hooks import check_hooks
from .io import atomic_path, read_json, stable_hash, tensor_hash, write_json
from .tokens import context_length, data_hash, get_batch

MANIFEST = "manifest.json"
FORMAT_VERSION = 2  # 2: shard checksums and the tokenizer in the key


@dataclass
class Recording:
    """Reduced activations of one model over a data set.

    ``acts[hook]`` is ``[n, *act_shape]`` where ``n`` is the number of texts (or of real tokens
    for ``reduction="all"``; see ``token_index``).
    """

    acts: dict[str, torch.Tensor]
    reduction: str | int
    model: str
    n_texts: int
    token_index: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)

    def __getitem__(self, key: str | tuple[str, int]) -> torch.Tensor:
        """By full hook name, or TransformerLens-style ``(kind, layer)``: ``rec["resid_post", -1]``,
        ``rec["post", 2]`` (``pre``/``post`` are the MLP's); a negative layer counts from the end."""
        hook = self._resolve(key) if isinstance(key, tuple) else key
        if hook not in self.acts:
            raise KeyError(f"{hook!r} was not recorded; recorded: {sorted(self.acts)}")
        return self.acts[hook]

    def _resolve(self, key: tuple[str, int]) -> str:
        kind, layer = key
        n_layers = self.meta.get("n_layers")
        if n_layers is None:  # recordings made before n_layers was kept: the deepest recorded
            layers = [int(h.split(".")[1]) for h in self.acts if h.startswith("blocks.")]
            n_layers = max(layers) + 1 if layers else 0
        return H.name(kind, layer, n_layers)

    @property
    def hooks(self) -> list[str]:
        return list(self.acts)

    def stack(self, hooks: Sequence[str]) -> torch.Tensor:
        """Stack several hooks (e.g. one per layer) into ``[len(hooks), n, *act_shape]``."""
        return torch.stack([self[h] for h in hooks])

    def select(self, rows: torch.Tensor | Sequence[int]) -> Recording:
        """Rows of every hook (texts, or tokens for ``"all"``)."""
        rows = torch.as_tensor(rows, dtype=torch.long)
        return Recording(
            {k: v[rows] for k, v in self.acts.items()},
            self.reduction,
            self.model,
            self.n_texts,
            None if self.token_index is None else self.token_index[rows],
            dict(self.meta),
        )


@dataclass
class PairRecording:
    """Recordings of the base and the aligned model on the same data."""

    base: Recording
    aligned: Recording

    def __iter__(self):
        return iter((self.base, self.aligned))


def reduce(act: torch.Tensor, mask: torch.Tensor, reduction: str | int) -> torch.Tensor:
    """Reduce ``act`` ``[batch pos *d]`` over positions where ``mask`` ``[batch pos]`` is 1.

    Returns ``[batch *d]``, or ``[n_real_tokens *d]`` for ``"all"``. Assumes right padding for
    integer positions (position k of the real tokens).
    """
    m = mask.to(act.dtype)
    lengths = mask.sum(-1)
    if (lengths == 0).any():
        raise ValueError("a row of the batch has no real tokens")
    if reduction == "all":
        return act[mask.bool()]
    if reduction == "mean":
        shape = m.shape + (1,) * (act.dim() - 2)
        return (act * m.view(shape)).sum(1) / lengths.view(-1, *([1] * (act.dim() - 2))).to(act.dtype)
    if reduction == "last":
        pos = _last_real(mask)
    elif isinstance(reduction, int):
        first = _first_real(mask)
        pos = first + (reduction if reduction >= 0 else lengths + reduction)
        if ((pos < first) | (pos >= first + lengths)).any():
            raise IndexError(f"position {reduction} is outside some text's real tokens")
    else:
        raise ValueError(f"unknown reduction {reduction!r}; use 'mean', 'last', 'all' or an int")
    return act[torch.arange(act.shape[0]), pos]


def _first_real(mask: torch.Tensor) -> torch.Tensor:
    return mask.long().argmax(-1)


def _last_real(mask: torch.Tensor) -> torch.Tensor:
    width = mask.shape[1]
    return width - 1 - mask.long().flip(-1).argmax(-1)


_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def model_fingerprint(model) -> str:
    """A content hash of a model: its architecture and the bytes of every weight (SHA-256).

    Computed once per state of the weights: the memo is keyed by each parameter's storage and
    in-place version counter, so a weight swapped or edited in place is hashed again.
    """
    params = list(model.named_parameters())
    state = tuple((n, p.data_ptr(), p._version) for n, p in params)
    memo = _FINGERPRINTS.get(model)
    if memo is not None and memo[0] == state:
        return memo[1]
    arch = hashlib.sha256(str(model.cfg.architecture).encode()).hexdigest()[:8]
    fp = arch + tensor_hash(params, 24)
    _FINGERPRINTS[model] = (state, fp)
    return fp


class _AllCollected(Exception):
    """Raised by the last chosen hook to fire: the rest of the forward pass (the later layers and
    the unembedding — on Gemma-3 a 262k-token vocabulary, the largest matrix product of the pass)
    would compute nothing a recording reads."""


class _Collector:
    """Hooks that reduce each chosen activation as it is computed; registered once per recording.
    When every chosen hook has fired the forward pass stops (:class:`_AllCollected`).

    ``columns``: for the hooks it names, only those indices of the last dimension are kept (taken
    before the reduction, so a per-token recording of a few neurons never holds a whole layer)."""

    def __init__(self, hooks: list[str], reduction, columns: dict[str, torch.Tensor] | None = None):
        self.hooks, self.reduction = hooks, reduction
        self.columns = columns or {}
        self.mask: torch.Tensor | None = None
        self.out: dict[str, torch.Tensor] = {}

    def fwd_hooks(self) -> list:
        def make(name):
            cols = self.columns.get(name)
            top = int(cols.max()) if cols is not None else -1
            on = {}  # the indices on each device they are used on, moved once

            def fn(act, hook):
                act = act.detach()
                if cols is not None:
                    if top >= act.shape[-1]:
                        raise IndexError(f"columns[{name!r}] reaches {top}, but the hook has "
                                         f"{act.shape[-1]} entries")
                    idx = on.get(act.device)
                    if idx is None:
                        idx = on[act.device] = cols.to(act.device)
                    act = act[..., idx]
                self.out[name] = reduce(act, self.mask.to(act.device), self.reduction).cpu()
                if len(self.out) == len(self.hooks):
                    raise _AllCollected

            return fn

        return [(h, make(h)) for h in self.hooks]


@contextmanager
def _collecting(model, hooks: list[str], reduction, columns=None):
    collector = _Collector(hooks, reduction, columns)
    with torch.no_grad(), model.hooks(fwd_hooks=collector.fwd_hooks()):
        yield collector


def _forward_collect(model, batch, collector: _Collector) -> dict[str, torch.Tensor]:
    device = next(model.parameters()).device
    collector.mask, collector.out = batch.attention_mask, {}
    try:
        model(batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device),
              return_type=None)
    except _AllCollected:
        pass
    missing = [h for h in collector.hooks if h not in collector.out]
    if missing:
        raise RuntimeError(f"hooks did not fire: {missing}")
    for h, t in collector.out.items():
        finite(t, f"{model.cfg.model_name}: activation {h} (texts {batch.index.start}–{batch.index.stop - 1})")
    return collector.out


def _token_index(batch) -> torch.Tensor:
    rows, pos = batch.attention_mask.bool().nonzero(as_tuple=True)
    text = torch.as_tensor(list(batch.index))[rows]
    return torch.stack([text, pos], -1)


def record(
    model,
    texts: Sequence[str],
    hooks: Sequence[str],
    *,
    reduction: str | int = "mean",
    batch_size: int = 32,
    max_length: int | None = None,
    on_overflow: str = "truncate",
    out_dir: str | Path | None = None,
    progress: bool = True,
    overwrite: bool = False,
    columns: Mapping[str, Sequence[int]] | None = None,
) -> Recording:
    """Run ``texts`` (strings, or :class:`~interp.tokens.Tokens`) through ``model`` and keep the
    ``hooks``' activations, reduced.

    ``columns`` ``{hook: indices}`` keeps only those entries of the hook's last dimension, in that
    order (e.g. a few neurons of ``mlp.hook_post`` on every token: the whole layer is never kept).

    With ``out_dir`` the batches are written as safetensors shards with a manifest, resuming
    after an interruption from the last complete shard; the return value then reads the shards
    back (use :func:`iter_shards` to stream them instead).
    """
    hooks = list(dict.fromkeys(check_hooks(model, hooks)))  # a hook named twice is recorded once
    if len(texts) == 0:
        raise ValueError("no texts to record")
    _check_sizes(model, batch_size, max_length)
    max_length = max_length or context_length(model)
    cols = _columns(columns, hooks)
    if out_dir is not None:
        if cols:
            raise ValueError("columns= is for in-memory recordings; a recording written to out_dir keeps whole hooks")
        write_shards(model, texts, hooks, out_dir, reduction=reduction, batch_size=batch_size,
                     overwrite=overwrite,
                     max_length=max_length, on_overflow=on_overflow, progress=progress)
        return load_recording(out_dir)
    starts = range(0, len(texts), batch_size)
    mine = []  # under torchrun this rank's batches (interp.distributed), else all of them
    with _collecting(model, hooks, reduction, cols) as collector:
        bar = tqdm(starts, desc=f"record {model.cfg.model_name}", disable=not progress or not distributed.is_main())
        for b, lo in enumerate(bar):
            if not distributed.owns(b):
                continue
            batch = get_batch(model.tokenizer, texts, lo, min(lo + batch_size, len(texts)),
                              max_length=max_length, on_overflow=on_overflow)
            got = _forward_collect(model, batch, collector)
            mine.append((b, (got, _token_index(batch) if reduction == "all" else None)))
    done = distributed.gather(mine, len(starts))
    acts = {h: torch.cat([got[h] for got, _ in done]) for h in hooks}
    index = [i for _, i in done if i is not None]
    return Recording(
        acts,
        reduction,
        model.cfg.model_name,
        len(texts),
        torch.cat(index) if index else None,
        {"data_hash": data_hash(texts), "batch_size": batch_size, "max_length": max_length,
         "n_layers": model.cfg.n_layers, **({"columns": {h: t.tolist() for h, t in cols.items()}} if cols else {})},
    )


def _columns(columns, hooks: list[str]) -> dict[str, torch.Tensor]:
    if not columns:
        return {}
    unknown = [h for h in columns if h not in hooks]
    if unknown:
        raise ValueError(f"columns= names hooks that are not recorded: {unknown}")
    out = {}
    for h, idx in columns.items():
        t = torch.as_tensor(idx if isinstance(idx, torch.Tensor) else list(idx), dtype=torch.long).flatten()
        if t.numel() == 0 or (t < 0).any():
            raise ValueError(f"columns[{h!r}] must be non-empty and non-negative, got {t.tolist()[:10]}")
        out[h] = t
    return out


def _check_sizes(model, batch_size: int, max_length: int | None) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    n_ctx = context_length(model)
    if max_length is not None and not 1 <= max_length <= n_ctx:
        raise ValueError(f"max_length={max_length} is outside 1…{n_ctx}, the model's context length")


def record_pair(pair, texts: Sequence[str], hooks: Sequence[str], **kwargs) -> PairRecording:
    """:func:`record` both models of a pair on the same texts.

    With ``out_dir=D`` the two recordings go to ``D/base`` and ``D/aligned``.
    """
    out_dir = kwargs.pop("out_dir", None)
    recs = {}
    for role, model in pair.models.items():
        sub = None if out_dir is None else Path(out_dir) / role
        recs[role] = record(model, texts, hooks, out_dir=sub, **kwargs)
    return PairRecording(recs["base"], recs["aligned"])


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of what a tokenizer does to text: its vocabulary, special tokens and whether it
    adds them (two tokenizers with the same vocabulary but another BOS rule differ)."""

    if tokenizer is None:
        return "none"
    probe = tokenizer("interp", add_special_tokens=True)["input_ids"]
    return stable_hash({"vocab": sorted(tokenizer.get_vocab().items()), "special": tokenizer.all_special_tokens,
                        "probe": list(probe)})


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _shard_ok(out_dir: Path, shard: dict) -> bool:
    path = out_dir / shard["file"]
    return path.exists() and shard.get("sha256") == _sha256(path)


def _manifest_key(model, texts, hooks, reduction, batch_size, max_length) -> dict:
    return {
        "format": FORMAT_VERSION,
        "model": model.cfg.model_name,
        "model_fingerprint": model_fingerprint(model),
        "tokenizer_fingerprint": tokenizer_fingerprint(model.tokenizer),
        "hooks": list(hooks),
        "reduction": reduction,
        "data_hash": data_hash(texts),
        "n_texts": len(texts),
        "batch_size": batch_size,
        "max_length": max_length,
    }


def write_shards(
    model,
    texts: Sequence[str],
    hooks: Sequence[str],
    out_dir: str | Path,
    *,
    reduction: str | int = "mean",
    batch_size: int = 32,
    max_length: int | None = None,
    on_overflow: str = "truncate",
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Stream a recording to ``out_dir`` as one safetensors shard per batch, plus ``manifest.json``.

    Each shard is written to a temporary file and renamed into place, its SHA-256 in the
    manifest; the manifest lists only shards that are complete, and is itself replaced
    atomically after each one. Calling again with the same model (weights by content),
    tokenizer, data and settings resumes: a listed shard that is missing or fails its checksum
    is recorded again. Different settings raise unless ``overwrite=True``. One process at a
    time: a second writer of the same folder is refused (a lock file, ``filelock``).
    """
    from filelock import FileLock, Timeout

    hooks = list(dict.fromkeys(check_hooks(model, hooks)))
    _check_sizes(model, batch_size, max_length)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, size = distributed.world()
    lock = FileLock(str(out_dir / (".lock" if size == 1 else f".lock.rank-{rank}")))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RuntimeError(f"another process is recording into {out_dir}; wait for it or choose "
                           "another out_dir") from None
    try:
        _write_shards(model, texts, hooks, out_dir, reduction, batch_size, max_length,
                      on_overflow, progress, overwrite)
    finally:
        lock.release()
    if size > 1:  # every rank has written its shards (and its own manifest); rank 0 merges them
        distributed.barrier()
        if rank == 0:
            _merge_rank_manifests(out_dir, model, texts, hooks, reduction, batch_size,
                                  max_length or context_length(model), size)
        distributed.barrier()
    return out_dir


def _same_settings(manifest: dict, key: dict) -> bool:
    """Whether a manifest was written for the recording ``key`` describes."""
    return {k: manifest.get(k) for k in key} == key


def _rank_manifests(out_dir: Path) -> list[Path]:
    return sorted(out_dir.glob("manifest.rank-*.json"))


def _merge_rank_manifests(out_dir: Path, model, texts, hooks, reduction, batch_size, max_length, size) -> None:
    """One ``manifest.json`` from the ranks' own (each lists the shards that rank wrote)."""
    key = _manifest_key(model, texts, hooks, reduction, batch_size, max_length)
    shards = {}
    for p in [out_dir / MANIFEST, *_rank_manifests(out_dir)]:
        if p.exists():
            m = read_json(p)
            if _same_settings(m, key):
                shards.update({s["start"]: s for s in m["shards"] if _shard_ok(out_dir, s)})
    n_batches = -(-len(texts) // batch_size)
    write_json(out_dir / MANIFEST, {**key, "shards": [shards[k] for k in sorted(shards)],
                                    "complete": len(shards) == n_batches, "ranks": size})
    for p in _rank_manifests(out_dir):
        p.unlink()


def _write_shards(model, texts, hooks, out_dir: Path, reduction, batch_size, max_length,
                  on_overflow, progress, overwrite) -> Path:
    max_length = max_length or context_length(model)
    key = _manifest_key(model, texts, hooks, reduction, batch_size, max_length)
    rank, size = distributed.world()
    merged_path = out_dir / MANIFEST
    # Under torchrun each rank lists its own shards in manifest.rank-<r>.json (rank 0 merges them).
    manifest_path = merged_path if size == 1 else out_dir / f"manifest.rank-{rank}.json"
    manifest = {**key, "shards": [], "complete": False}
    if merged_path.exists():
        old = read_json(merged_path)
        if _same_settings(old, key):
            manifest = old
        elif not overwrite:
            changed = [k for k in key if old.get(k) != key[k]]
            raise FileExistsError(
                f"{out_dir} holds a recording with other settings ({', '.join(changed)} differ); "
                "record(..., overwrite=True) replaces it, or choose another out_dir"
            )
    listed = list(manifest["shards"])
    for p in _rank_manifests(out_dir):  # an interrupted distributed run: what each rank finished
        m = read_json(p)
        if _same_settings(m, key):
            listed += m["shards"]
    done = {s["start"] for s in listed if _shard_ok(out_dir, s)}
    if manifest["complete"] and len(done) == len(manifest["shards"]):
        return out_dir
    manifest["complete"] = False  # a listed shard is missing or corrupt: record it again
    manifest["shards"] = list({s["start"]: s for s in listed if s["start"] in done}.values())
    if size > 1:  # this rank's manifest lists the shards it writes now; the merge keeps the rest
        manifest = {**key, "shards": [], "complete": False}
    n_batches = -(-len(texts) // batch_size)
    bar = tqdm(total=n_batches, initial=len(done), desc=f"record {model.cfg.model_name}",
               disable=not progress or rank != 0)
    with _collecting(model, hooks, reduction) as collector:
        for b, lo in enumerate(range(0, len(texts), batch_size)):
            if lo in done or not distributed.owns(b):
                continue
            batch = get_batch(model.tokenizer, texts, lo, min(lo + batch_size, len(texts)),
                              max_length=max_length, on_overflow=on_overflow)
            got = _forward_collect(model, batch, collector)
            tensors = {h: t.contiguous() for h, t in got.items()}
            if reduction == "all":
                tensors["__token_index__"] = _token_index(batch).contiguous()
            name = f"shard-{lo // batch_size:06d}.safetensors"
            with atomic_path(out_dir / name) as tmp:
                save_file(tensors, str(tmp))
                digest = _sha256(tmp)
            manifest["shards"].append({"file": name, "start": lo, "stop": batch.index.stop,
                                       "sha256": digest})
            manifest["shards"].sort(key=lambda s: s["start"])
            write_json(manifest_path, manifest)
            bar.update(1)
    bar.close()
    if size == 1:
        manifest["complete"] = True
        write_json(manifest_path, manifest)
    return out_dir


def iter_shards(out_dir: str | Path, *, allow_partial: bool = False) -> Iterator[Recording]:
    """Yield each shard of an on-disk recording as a small :class:`Recording` (bounded memory)."""
    out_dir = Path(out_dir)
    if not (out_dir / MANIFEST).exists():
        raise FileNotFoundError(f"no recording at {out_dir} (no {MANIFEST})")
    manifest = read_json(out_dir / MANIFEST)
    if not manifest["complete"] and not allow_partial:
        raise RuntimeError(f"recording at {out_dir} is incomplete; run record() again to resume")
    for s in sorted(manifest["shards"], key=lambda s: s["start"]):
        if not _shard_ok(out_dir, s):
            what = "missing" if not (out_dir / s["file"]).exists() else "corrupt (its SHA-256 differs from the manifest's)"
            raise RuntimeError(f"shard {out_dir / s['file']} is {what}; run record() again with the same "
                               "arguments to re-record it")
        t = load_file(str(out_dir / s["file"]))
        index = t.pop("__token_index__", None)
        yield Recording(t, manifest["reduction"], manifest["model"], manifest["n_texts"], index,
                        {k: manifest[k] for k in ("data_hash", "model_fingerprint")})


def load_recording(out_dir: str | Path, *, allow_partial: bool = False) -> Recording:
    """Read a whole on-disk recording back into memory (only shards the manifest lists)."""
    parts = list(iter_shards(out_dir, allow_partial=allow_partial))
    if not parts:
        raise RuntimeError(f"recording at {out_dir} has no shards")
    acts = {h: torch.cat([p.acts[h] for p in parts]) for h in parts[0].acts}
    index = None if parts[0].token_index is None else torch.cat([p.token_index for p in parts])
    first = parts[0]
    return Recording(acts, first.reduction, first.model, first.n_texts, index, first.meta)
