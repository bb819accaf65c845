"""The pair catalogue: every named pair interp can load, registered by its builders.

Importing this module imports the builders (the model organism, the real-weight twins; the hub
pairs register in :mod:`interp.pair`), which register themselves in :mod:`interp.registry`.
``interp.load_pair(name)`` then resolves any of :func:`names`.
"""

from __future__ import annotations

from . import organism, real  # noqa: F401  (importing them registers their pairs)
from .pair import load_pair
from .registry import PairSpec, pair_names, register_model, register_pair, resolve_pair


def names() -> dict[str, str]:
    """Registered pair names (a trailing ``…`` marks a family, e.g. ``organism:…``) → what they are."""
    return pair_names()


__all__ = ["PairSpec", "load_pair", "names", "register_model", "register_pair", "resolve_pair"]
