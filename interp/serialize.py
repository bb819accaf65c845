"""One serializer for interp's typed results: JSON for the structure, safetensors for the tensors.

:func:`save` writes any tree of interp dataclasses, tensors, NumPy arrays and plain Python values
as two files, ``<stem>.json`` and ``<stem>.safetensors``; :func:`load` reads them back as the same
types. Nothing is ever unpickled: the JSON names each dataclass by its module and class, and
:func:`load` only builds dataclasses defined in ``interp``'s own modules (any other name is
refused), sets their fields without running code of the file's choosing, and reads tensors with
safetensors (plain bytes). A file placed in a cache by someone else can therefore at worst be
refused or rebuilt, never execute anything.

An entry records :data:`FORMAT` and the interp version that wrote it; an entry of another format
is reported as :class:`StaleEntry` (the caller recomputes it, with a warning).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: The layout of a saved entry. Bumped whenever the encoding changes: older entries are recomputed.
FORMAT = 1

_ALLOWED_PREFIX = "interp."


class StaleEntry(ValueError):
    """An entry written by another format of this serializer (an older or newer interp)."""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("interp")
    except Exception:  # noqa: BLE001 — not installed (source tree)
        return "unknown"


class _Encoder:
    def __init__(self) -> None:
        self.tensors: dict[str, torch.Tensor] = {}

    def _store(self, t: torch.Tensor) -> str:
        key = f"t{len(self.tensors)}"
        # safetensors wants contiguous tensors that share no storage
        self.tensors[key] = t.detach().cpu().contiguous().clone()
        return key

    def enc(self, o: Any, where: str) -> Any:
        if isinstance(o, np.generic):  # before float: np.float64 is a float
            return {"__npscalar__": o.dtype.str, "v": self.enc(o.item(), where)}
        if o is None or isinstance(o, bool | str):
            return o
        if isinstance(o, int):
            return o
        if isinstance(o, float):
            return o if math.isfinite(o) else {"__float__": repr(o)}
        if isinstance(o, torch.Tensor):
            return {"__tensor__": self._store(o)}
        if isinstance(o, np.ndarray):
            if o.dtype == object or o.dtype.kind in "USV":
                return {"__ndarray_list__": o.dtype.str, "v": self.enc(o.tolist(), where)}
            return {"__ndarray__": self._store(torch.from_numpy(np.ascontiguousarray(o))), "dtype": o.dtype.str}
        if isinstance(o, Path):
            return {"__path__": str(o)}
        if isinstance(o, list):
            return [self.enc(x, f"{where}[{i}]") for i, x in enumerate(o)]
        if isinstance(o, tuple):
            return {"__tuple__": [self.enc(x, f"{where}[{i}]") for i, x in enumerate(o)]}
        if isinstance(o, dict):
            return {"__dict__": [[self.enc(k, f"{where} key"), self.enc(v, f"{where}[{k!r}]")]
                                 for k, v in o.items()]}
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            cls = type(o)
            name = f"{cls.__module__}:{cls.__qualname__}"
            if not cls.__module__.startswith(_ALLOWED_PREFIX):
                raise TypeError(f"{where}: {name} is not an interp dataclass; only those are saved")
            return {"__dataclass__": name,
                    "fields": {f.name: self.enc(getattr(o, f.name), f"{where}.{f.name}")
                               for f in dataclasses.fields(o)}}
        raise TypeError(f"{where}: cannot save a {type(o).__module__}.{type(o).__qualname__} "
                        "(interp saves dataclasses, tensors, arrays and plain values)")


def _class(name: str, path: Path):
    module, _, qual = name.partition(":")
    if not module.startswith(_ALLOWED_PREFIX) or not qual:
        raise ValueError(f"{path}: refuses to build {name!r}: not a class of interp's own modules")
    obj: Any = importlib.import_module(module)
    for part in qual.split("."):
        if part.startswith("_") or "<" in part:
            raise ValueError(f"{path}: refuses to build {name!r}: not a public class of interp")
        obj = getattr(obj, part, None)
        if obj is None:
            raise ValueError(f"{path}: no class {name!r} in this interp")
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise ValueError(f"{path}: {name!r} is not a dataclass; refused")
    return obj


def _decode(o: Any, tensors: dict[str, torch.Tensor], path: Path) -> Any:
    if isinstance(o, list):
        return [_decode(x, tensors, path) for x in o]
    if not isinstance(o, dict):
        return o
    if "__tensor__" in o:
        return tensors[o["__tensor__"]]
    if "__ndarray__" in o:
        return tensors[o["__ndarray__"]].numpy().astype(np.dtype(o["dtype"]), copy=False)
    if "__ndarray_list__" in o:
        return np.array(_decode(o["v"], tensors, path), dtype=np.dtype(o["__ndarray_list__"]))
    if "__npscalar__" in o:
        return np.dtype(o["__npscalar__"]).type(_decode(o["v"], tensors, path))
    if "__float__" in o:
        return float(o["__float__"])
    if "__path__" in o:
        return Path(o["__path__"])
    if "__tuple__" in o:
        return tuple(_decode(x, tensors, path) for x in o["__tuple__"])
    if "__dict__" in o:
        return {_hashable(_decode(k, tensors, path)): _decode(v, tensors, path) for k, v in o["__dict__"]}
    if "__dataclass__" in o:
        cls = _class(o["__dataclass__"], path)
        names = {f.name for f in dataclasses.fields(cls)}
        given = o.get("fields", {})
        if set(given) != names:
            raise StaleEntry(f"{path}: {cls.__qualname__} has fields {sorted(names)}, the entry "
                             f"{sorted(given)}: written by another interp")
        obj = object.__new__(cls)  # no __init__/__post_init__: fields are set as saved
        for k, v in given.items():
            object.__setattr__(obj, k, _decode(v, tensors, path))
        return obj
    raise ValueError(f"{path}: unknown entry {sorted(o)[:3]}")


def _hashable(k: Any) -> Any:
    return tuple(_hashable(x) for x in k) if isinstance(k, list) else k


def paths(stem: str | os.PathLike) -> tuple[Path, Path]:
    """The two files of an entry: ``<stem>.json`` and ``<stem>.safetensors``."""
    stem = Path(stem)
    return stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".safetensors")


def save(obj: Any, stem: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``obj`` as ``<stem>.json`` + ``<stem>.safetensors``, each atomically (the tensors
    first: a reader that finds the JSON finds its tensors). Raises ``TypeError`` naming the field
    of anything that is not a dataclass of interp's, a tensor, an array or a plain value."""
    from safetensors.torch import save_file

    from .io import atomic_path

    enc = _Encoder()
    tree = enc.enc(obj, type(obj).__name__)
    j, st = paths(stem)
    with atomic_path(st) as tmp:
        save_file(enc.tensors, str(tmp))
    doc = {"format": FORMAT, "interp": _version(), "tensors": st.name, "value": tree}
    with atomic_path(j) as tmp:
        tmp.write_text(json.dumps(doc, separators=(",", ":"), allow_nan=False))
    return j, st


def load(stem: str | os.PathLike) -> Any:
    """Read back what :func:`save` wrote. Raises :class:`StaleEntry` for an entry of another
    format or whose dataclasses no longer match, ``ValueError`` for anything else unreadable; it
    never runs code named by the file."""
    from safetensors.torch import load_file

    j, st = paths(stem)
    try:
        doc = json.loads(j.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{j}: not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else None
        raise StaleEntry(f"{j}: format {got!r} (interp {doc.get('interp', '?') if isinstance(doc, dict) else '?'}), "
                         f"this interp reads format {FORMAT}")
    tensors = load_file(str(st)) if st.exists() else {}
    return _decode(doc["value"], tensors, j)


def cached_result(stem: str | os.PathLike, build, *, enabled: bool = True):
    """``build()``'s result, kept as ``<stem>.json`` + ``<stem>.safetensors``
    (:func:`save`: no pickle; only interp's own dataclasses are rebuilt) — read back if
    present, built and written if not. An unreadable entry, or one written by another version of
    the serializer, is rebuilt with a warning; a pickle left by an older interp (``<stem>.pt``) is
    never opened. The caller's key (the stem) must cover everything the result depends on — the
    weights' hashes, the inputs, the config and the code that computes it."""
    import warnings

    stem = Path(stem)
    if enabled:
        legacy = stem.with_name(stem.name + ".pt")
        if legacy.exists():
            warnings.warn(f"ignoring {legacy}: a pickle written by an older interp is never read; "
                          "recomputing (the file may be deleted)", stacklevel=2)
        if paths(stem)[0].exists():
            try:
                return load(stem)
            except StaleEntry as e:
                warnings.warn(f"recomputing: cache entry written by another interp version ({e})", stacklevel=2)
            except Exception as e:  # noqa: BLE001 — any unreadable entry is rebuilt
                warnings.warn(f"rebuilding: unreadable cache entry {stem} ({type(e).__name__}: {e})", stacklevel=2)
    out = build()
    if enabled:
        save(out, stem)
    return out
