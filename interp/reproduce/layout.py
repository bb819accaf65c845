"""Where a reproduction's files lie: one folder per seed (``<out>/seed-<s>/<stem>.json``, ``.md``,
figures and page) and the summary across seeds beside them (``<out>/<stem>_seeds.json``). The
only place that spells these paths; the runner, the command line and ``figures/readme.py`` ask
here."""

from __future__ import annotations

from pathlib import Path

SEED_DIR = "seed-{seed}"


def seed_dir(out: str | Path, seed: int) -> Path:
    """``<out>/seed-<s>``: one seed's report, its figures and its page."""
    return Path(out) / SEED_DIR.format(seed=seed)


def seed_report(out: str | Path, seed: int, stem: str, suffix: str = ".json") -> Path:
    """``<out>/seed-<s>/<stem>.json`` (or ``.md`` with ``suffix``)."""
    return seed_dir(out, seed) / f"{stem}{suffix}"


def seed_link(seed: int, name: str) -> str:
    """A link from the summary's folder to a file of one seed: ``seed-<s>/<name>``."""
    return f"{SEED_DIR.format(seed=seed)}/{name}"


def summary(out: str | Path, stem: str, suffix: str = ".json") -> Path:
    """``<out>/<stem>_seeds.json`` (or ``.md``): the summary across seeds."""
    return Path(out) / f"{stem}_seeds{suffix}"

