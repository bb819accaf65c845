"""The pair catalogue's registry: pair names (and model names) → how to load them.

The registry sits at the bottom of the package, so that the builders above it — the model
organism, the real-weight twins, the hub pairs — register themselves when they are imported,
and :func:`interp.pair.load_pair` resolves any registered name without importing a builder
(``import interp`` imports them all; :mod:`interp.catalog` lists what is registered). A new pair
kind is one module that calls :func:`register_pair`; nothing below it changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PairSpec:
    """What a named pair is: two loadable sources (anything :func:`interp.pair.load_model`
    takes), the prompts it was aligned and is measured on (a :class:`interp.prompts.PromptSet`),
    its measurement profile (the key of each reproduction's preset table: ``"organism"``,
    ``"organism-tiny"``, ``"real"``, ``"hub"``, …), what else it carries (``info``: its
    manifest), and whether the aligned model must use the base model's tokenizer."""

    name: str
    base: Any
    aligned: Any
    info: dict = field(default_factory=dict)
    share_tokenizer: bool = False
    loader: Callable[..., Any] | None = None  # a pair that loads itself (e.g. from a checkpoint)
    prompts: Any = None  # PromptSet | None
    profile: str = "custom"


_EXACT: dict[str, tuple[Callable[[str], PairSpec], str]] = {}
_PREFIX: dict[str, tuple[Callable[[str], PairSpec], str]] = {}
_MODELS: dict[str, Callable[[str], str]] = {}
_PROFILES: dict[str, str | Callable[[str], str]] = {}
_CHECKS: dict[str, Callable[[str], None]] = {}


def register_pair(name: str, resolver: Callable[[str], PairSpec], *, prefix: bool = False,
                  describe: str = "", profile: str | Callable[[str], str] = "custom",
                  check: Callable[[str], None] | None = None) -> None:
    """Register ``name`` (or every name starting with ``name`` when ``prefix``). ``profile``
    (a string, or a function of the full name) is known without building the pair: it picks
    each reproduction's preset (:func:`profile_of`). ``check`` raises ``ValueError`` for a
    malformed full name (e.g. a bad seed after ``@``), again without building anything."""
    (_PREFIX if prefix else _EXACT)[name] = (resolver, describe)
    _PROFILES[name] = profile
    if check is not None:
        _CHECKS[name] = check


def register_model(prefix: str, resolver: Callable[[str], str]) -> None:
    """Model names starting with ``prefix`` resolve to a loadable source (e.g. a folder)."""
    _MODELS[prefix] = resolver


def resolve_pair(name: str) -> PairSpec | None:
    key = _entry(name)
    if key is None:
        return None
    return (_EXACT if key in _EXACT else _PREFIX)[key][0](name)


def _entry(name: str) -> str | None:
    if name in _EXACT:
        return name
    for p in sorted(_PREFIX, key=len, reverse=True):
        if name.startswith(p):
            return p
    return None


def is_registered(name: str) -> bool:
    """Whether ``name`` is a catalogue name (exact, or under a registered prefix)."""
    return _entry(name) is not None


def check_name(name: str) -> None:
    """Raise ``ValueError`` (its message says what is valid) unless ``name`` is a well-formed
    catalogue name; builds and loads nothing."""
    key = _entry(name)
    if key is None:
        raise ValueError("not in the catalogue; known: " + ", ".join(pair_names()))
    if key in _CHECKS:
        _CHECKS[key](name)


def profile_of(name: str) -> str:
    """The measurement profile of a registered pair name, without building or loading it
    (``"custom"`` for names not in the catalogue)."""
    key = _entry(name)
    if key is None:
        return "custom"
    prof = _PROFILES.get(key, "custom")
    return prof(name) if callable(prof) else prof


def resolve_model(name: str) -> str | None:
    for p, resolver in sorted(_MODELS.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(p):
            return resolver(name)
    return None


def pair_names() -> dict[str, str]:
    """Every registered name (prefixes end in ``…``) with its description."""
    out = {n: d for n, (_, d) in _EXACT.items()}
    out.update({f"{p}…": d for p, (_, d) in _PREFIX.items()})
    return dict(sorted(out.items()))
