"""Small, careful file helpers: atomic writes, stable hashes, the cache folder."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """interp's cache folder: ``$INTERP_CACHE`` or ``~/.cache/interp``."""
    root = os.environ.get("INTERP_CACHE") or Path.home() / ".cache" / "interp"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def stable_hash(obj: Any, length: int = 16) -> str:
    """Hash of a JSON-serialisable object, independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def hash_texts(texts: Iterable[str], length: int = 16) -> str:
    """Hash of a sequence of strings (order matters)."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode()
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()[:length]


def code_hash(modules: Iterable[str], length: int = 12) -> str:
    """Hash of the source text of ``modules`` (dotted names, e.g. ``"interp.generate"``).

    Part of every cache key whose entry is *built by* that code: an edit to any of them makes
    a new key, so an entry written by older code is never read back as current.
    """
    import importlib.util

    h = hashlib.sha256()
    for name in sorted(modules):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(name)
        h.update(name.encode())
        h.update(Path(spec.origin).read_bytes())
    return h.hexdigest()[:length]


def tensor_hash(tensors: Iterable[tuple[str, Any]], length: int = 16) -> str:
    """SHA-256 over named tensors' dtypes, shapes and bytes (in the order given)."""
    import torch

    h = hashlib.sha256()
    for name, t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        if t.dtype == torch.bfloat16:  # numpy has no bfloat16: hash the same bits as int16
            t = t.view(torch.int16)
        h.update(t.numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:length]


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    A reader never sees a half-written file: either the old file (or none) or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.exists(tmp):  # mkstemp makes it private: give it the usual file mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically; a path ending in ``.gz`` is gzip-compressed (with mtime 0, so the same
    object always gives the same bytes)."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            tmp.write_bytes(gzip.compress(text.encode(), mtime=0))
        else:
            tmp.write_text(text)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


class CorruptFileError(ValueError):
    """A file interp wrote (a manifest, a cache entry, a model folder) cannot be read back; the
    message names its path."""


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file (gzip-compressed where its name ends in ``.gz``); a damaged one raises
    :class:`CorruptFileError` naming its path."""
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            return json.loads(gzip.decompress(path.read_bytes()))
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, gzip.BadGzipFile, EOFError) as e:
        raise CorruptFileError(f"{path}: not valid JSON ({e})") from None


def check_replaceable(path: str | os.PathLike) -> Path:
    """Raise unless ``path`` may be replaced as a whole: it does not exist, is an empty folder,
    lies inside interp's cache, or holds interp's marker (:data:`MARKER`, written into every
    folder :func:`atomic_dir` makes). A file, or a folder holding anything else, is the user's:
    interp never deletes it."""
    path = Path(path)
    if not path.exists():
        return path
    if not path.is_dir():
        raise FileExistsError(f"{path} is a file; interp writes a folder there and will not replace it")
    if (path / MARKER).exists() or not any(path.iterdir()):
        return path
    try:
        path.resolve().relative_to(cache_dir().resolve())
        return path
    except ValueError:
        pass
    raise FileExistsError(f"{path} holds files interp did not write (no {MARKER} marker); "
                          "choose a new or empty folder — interp never deletes what it did not write")


#: Written into every folder :func:`atomic_dir` makes: interp may replace such a folder later.
MARKER = ".interp-output"


@contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary folder beside ``path``; rename it to ``path`` only if the block succeeds.

    An interrupted build leaves at most a ``.tmp`` folder that nothing reads back. ``path`` is
    checked before the work starts (:func:`check_replaceable`): a folder of the user's is never
    deleted.
    """
    path = check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        (tmp / MARKER).write_text("written by interp; interp may replace this folder\n")
        check_replaceable(path)  # still ours after the work (nobody wrote into it meanwhile)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _json_default(o: Any) -> Any:
    try:
        import numpy as np
        import torch

        if isinstance(o, torch.Tensor):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")
