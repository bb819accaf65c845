"""One behavioural measurement, cached: toxicity of sampled continuations under every scorer, and
perplexity of neutral texts, for a model with interventions active.

Every arm of a reproduction is a :func:`measure` call on the same :class:`MeasureSpec` (the
same prompts, samples per prompt, token budget and sampling seed), so arms pair prompt by
prompt. A measurement is cached on disk (JSON) under a key that holds everything it depends
on — the model's weights (a content hash), the interventions (their fields and tensor bytes),
the prompts, texts and settings, the scorers, and the source of the code that computes it — so
changing one dose re-measures that dose only, and nothing computed by older code is reused.

Entries are gzip-compressed JSON, one file per arm, kept in ``<cache>/measurements/`` unless
:func:`keep_measurements` (or ``$INTERP_MEASUREMENTS``) names another folder: a long run keeps
them beside its report, where committing them lets a run resumed on another machine read back
every arm it finished (a key holds the weights' hash, so a different model never matches).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .evaluate import token_losses, toxicity
from .io import atomic_path, cache_dir, code_hash, hash_texts, stable_hash, tensor_hash
from .neurons import Neurons
from .record import model_fingerprint
from .score import get_scorers
from .stats import cluster_means

#: Modules whose code produces a measurement (part of every cache key).
MEASURE_CODE = ("interp.measure", "interp.generate", "interp.evaluate", "interp.score",
                "interp.steer", "interp.tokens", "interp.hooks")


_KEEP: ContextVar[Path | None] = ContextVar("interp_measurements", default=None)


def measurements_dir() -> Path:
    """Where measurements are cached: the folder given to :func:`keep_measurements`, else
    ``$INTERP_MEASUREMENTS``, else ``<cache>/measurements``."""
    kept = _KEEP.get() or os.environ.get("INTERP_MEASUREMENTS")
    return Path(kept) if kept else cache_dir() / "measurements"


@contextmanager
def keep_measurements(folder: str | os.PathLike) -> Iterator[Path]:
    """Cache every measurement made inside the block in ``folder`` (created if missing; entries
    already there are read back), e.g. beside a report so that committing the report commits
    the arms a long run has finished::

        with interp.keep_measurements("figures/out/real/smollm2/measurements"):
            toxicity.run_seeds(cfg, [0], out="figures/out/real/smollm2")
    """
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file; measurements are kept in a folder")
    token = _KEEP.set(path)
    try:
        yield path
    finally:
        _KEEP.reset(token)


def _read_entry(path: Path) -> dict:
    return json.loads(gzip.decompress(path.read_bytes()))


def _write_entry(path: Path, obj: dict) -> None:
    # mtime 0: the same measurement always gives the same bytes (a committed entry stays unchanged)
    blob = gzip.compress(json.dumps(obj, separators=(",", ":")).encode(), mtime=0)
    with atomic_path(path) as tmp:
        tmp.write_bytes(blob)


@dataclass(frozen=True)
class MeasureSpec:
    """What every arm of a comparison shares."""

    prompts: tuple[str, ...]
    ppl_texts: tuple[str, ...] = ()
    n_samples: int = 2
    max_new_tokens: int = 12
    seed: int = 0
    temperature: float = 1.0
    threshold: float = 0.5
    batch_size: int = 64

    def key(self) -> dict:
        d = dataclasses.asdict(self)
        d["prompts"], d["ppl_texts"] = hash_texts(self.prompts), hash_texts(self.ppl_texts)
        del d["batch_size"]  # samples are keyed per (seed, prompt, sample): the batch size changes none
        return d


@dataclass
class Measurement:
    """Per-sample scores (prompt-major, ``n_samples`` per prompt) under each scorer, the
    continuations, and per-text summed losses and token counts of the neutral texts."""

    label: str
    n_prompts: int
    n_samples: int
    threshold: float
    scores: dict[str, list[float]]
    completions: list[str] = field(repr=False)
    ppl_loss: list[float] = field(default_factory=list, repr=False)
    ppl_tokens: list[float] = field(default_factory=list, repr=False)

    @property
    def scorers(self) -> list[str]:
        return list(self.scores)

    def flags(self, scorer: str) -> np.ndarray:
        return np.asarray(self.scores[scorer]) > self.threshold

    def per_prompt(self, scorer: str, kind: str = "rate") -> np.ndarray:
        """Per-prompt toxic share (``kind="rate"``) or mean score (``"score"``): the paired unit."""
        if scorer not in self.scores:
            raise KeyError(f"{self.label}: no scores from {scorer!r}; have {self.scorers}")
        v = self.flags(scorer).astype(float) if kind == "rate" else np.asarray(self.scores[scorer])
        return cluster_means(v, self.n_prompts)

    def rate(self, scorer: str) -> float:
        return float(self.flags(scorer).mean())

    def mean_score(self, scorer: str) -> float:
        return float(np.mean(self.scores[scorer]))

    @property
    def perplexity(self) -> float:
        n = float(np.sum(self.ppl_tokens))
        return math.exp(float(np.sum(self.ppl_loss)) / n) if n else float("nan")

    def examples(self, scorer: str, k: int = 3, toxic: bool = True) -> list[str]:
        f = self.flags(scorer)
        return [c for c, t in zip(self.completions, f) if bool(t) == toxic][:k]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Measurement:
        return cls(**d)


def _field_key(v):

    if isinstance(v, torch.Tensor):
        return "tensor:" + tensor_hash([("", v)])
    if isinstance(v, Neurons):
        return {"layer": _field_key(v.layer), "index": _field_key(v.index)}
    if hasattr(v, "named_parameters"):

        return "model:" + model_fingerprint(v)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _field_key(getattr(v, f.name)) for f in dataclasses.fields(v)
                if not f.name.startswith("_")}
    if isinstance(v, list | tuple):
        return [_field_key(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _field_key(x) for k, x in v.items()}
    return repr(v)


def intervention_key(iv) -> dict | None:
    """What an intervention does, as a hashable record (its type, fields and tensor bytes);
    ``None`` for a raw ``(name, fn)`` hook, which cannot be keyed (and is never cached)."""
    if not dataclasses.is_dataclass(iv):
        return None
    return {"type": type(iv).__name__, **_field_key(iv)}


def measure(model, spec: MeasureSpec, hooks: Sequence = (), *, scorers=None, label: str = "",
            cache: bool = True, progress: bool = False) -> Measurement:
    """Sample ``spec.n_samples`` continuations of each prompt from ``model`` with ``hooks``
    active, score them with every scorer, and compute the neutral texts' losses; cached."""

    scorers = get_scorers(scorers)
    keys = [intervention_key(h) for h in hooks]
    path = None
    if cache and all(k is not None for k in keys):
        key = stable_hash({"model": model_fingerprint(model), "hooks": keys, "spec": spec.key(),
                           "scorers": sorted(s.name for s in scorers),
                           "code": code_hash(MEASURE_CODE)}, 24)
        path = measurements_dir() / key[:2] / f"{key}.json.gz"
        if path.exists():
            try:
                m = Measurement.from_dict(_read_entry(path))
                m.label = label or m.label
                return m
            except (OSError, EOFError, ValueError, TypeError, KeyError) as e:  # a corrupt entry is re-measured
                import warnings

                warnings.warn(f"re-measuring: unreadable cache entry {path} ({e})", stacklevel=2)
    ev = toxicity(model, list(spec.prompts), scorer=scorers, n_samples=spec.n_samples,
                  max_new_tokens=spec.max_new_tokens, temperature=spec.temperature,
                  threshold=spec.threshold, seed=spec.seed, batch_size=spec.batch_size,
                  hooks=hooks, progress=progress)
    loss, ntok = ([], [])
    if spec.ppl_texts:
        s, n = token_losses(model, list(spec.ppl_texts), batch_size=spec.batch_size, hooks=hooks)
        loss, ntok = s.tolist(), n.tolist()
    m = Measurement(label, len(spec.prompts), spec.n_samples, spec.threshold,
                    {k: [round(float(x), 5) for x in v] for k, v in ev.by_scorer.items()},
                    list(ev.completions), loss, ntok)
    if path is not None:
        _write_entry(path, m.to_dict())
    return m
