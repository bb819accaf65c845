"""The shape every reproduction shares: a :class:`Reproduction` names its claims' source, its
files and its page, and gives the multi-seed run, its summary and its markdown once — for every
reproduction alike — from the module's own ``config_for``, ``run`` and ``write``.

A reproduction is a module with

- ``config_for(pair, **overrides)`` → its config dataclass (``seed`` and, for a pair-based one,
  ``pair`` fields),
- ``run(cfg, *, log=print)`` → a report with ``findings`` (a list of :class:`interp.Finding`),
- ``write(report, out_dir, *, figures=True)`` → the files written,

and a :class:`Reproduction` in :data:`interp.reproduce.REPRODUCTIONS`; the command line, the
README's at-a-glance table and ``run.sh`` read that registry."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..findings import seeds_table, summarize_seeds
from .report import run_seeds as _run_seeds
from .report import write_seeds_report
from .runner import pair_for_seed


@dataclass(frozen=True)
class Reproduction:
    """One reproduction: ``interp reproduce <name>`` on ``default_pair``; each seed's report is
    ``<out>/seed-<s>/<stem>.json`` (and ``.md``, figures, page), the summary across seeds
    ``<out>/<stem>_seeds.json``; ``module`` holds its config, steps and report; ``paper`` is who
    made the claims it tests; ``page`` its results in ``docs/``; ``per_seed`` what a seed
    rebuilds (said in the summary); ``rebuild_pair``: each seed runs on the organism rebuilt with
    that seed (:func:`~interp.reproduce.runner.pair_for_seed`); ``resume``: a seed whose report
    in ``out`` was written for the same config is read back, not run again."""

    name: str
    stem: str
    module: str
    title: str  # "Knowledge claims": the summary's heading, before "on <pair>"
    paper: str
    default_pair: str | None
    page: str
    per_seed: str
    rebuild_pair: bool = True
    resume: bool = True
    multi_seed: bool = True  # runs over seeds with a summary (token shift: one report per pair)
    description: str = ""  # the command's --help
    target_flag: str = "--pair"  # the flag picking the preset (pretraining: --size, an organism size)

    def check(self, cfg) -> None:
        """Refuse a config the run cannot honour before any work (the module's ``check``, if any)."""
        fn = getattr(self.mod, "check", None)
        if callable(fn):
            fn(cfg)

    def out_name(self, cfg) -> str:
        """The default output folder's last part: the pair (``organism-small``), or the organism size."""
        pair = getattr(cfg, "pair", None)
        return pair.replace(":", "-") if pair is not None else f"organism-{getattr(cfg, 'size', 'small')}"

    @property
    def mod(self):
        """The reproduction's module (imported on first use)."""
        return importlib.import_module(self.module)

    def config_for(self, pair: str | None = None, **overrides):
        return self.mod.config_for(pair or self.default_pair, **overrides)

    def subject(self, cfg) -> str:
        """What the claims were tested on: the pair, or the organism size for a pair-less one."""
        pair = getattr(cfg, "pair", None)
        return pair if pair is not None else f"the organism ({getattr(cfg, 'size', '?')})"

    def seeds_to_markdown(self, cfg, reports: dict) -> str:
        """The summary across seeds: per claim, in how many seeds it holds."""
        seeds = sorted(reports)
        n = len(seeds)
        return "\n".join([
            f"# {self.title} on {self.subject(cfg)}, over {n} seed{'s' if n > 1 else ''} ({', '.join(map(str, seeds))})",
            "", f"{self.per_seed} Per seed a claim holds only after Holm correction across the claims; a claim "
            "that holds in some seeds but not all is **mixed**.", "",
            seeds_table(summarize_seeds({s: r.findings for s, r in reports.items()}), paper=self.paper)
            .replace("any (seeds)", "criterion met (seeds)"),
            "", "Per seed: " + ", ".join(f"[{s}](seed-{s}/{self.stem}.md)" for s in seeds)]) + "\n"

    def write_seeds(self, cfg, reports: dict, out: str | Path, figures: bool = True) -> list[Path]:
        """``<out>/<stem>_seeds.json`` and ``.md`` (and the ``seeds_forest`` figure)."""
        return write_seeds_report(out, f"{self.stem}_seeds", cfg, reports, self.seeds_to_markdown(cfg, reports),
                                  f"{self.title} on {self.subject(cfg)}", figures)

    def run_seeds(self, cfg, seeds: list[int], *, out: str | Path | None = None, figures: bool = True,
                  log: Callable = print) -> dict:
        """The module's ``run`` per seed, each report written to ``out/seed-<s>/`` as it finishes
        (resumable: :func:`interp.reproduce.report.run_seeds`), then :meth:`write_seeds`."""
        m = self.mod
        return _run_seeds(m.run, lambda r, d, f: m.write(r, d, figures=f), self.write_seeds, cfg, seeds,
                          pair_for_seed=pair_for_seed if self.rebuild_pair else None, out=out, figures=figures,
                          log=log, resume=self.stem if self.resume else None)


@dataclass(frozen=True)
class OwnSeeds(Reproduction):
    """A reproduction whose module keeps its own multi-seed run and summary (toxicity: the summary
    reads every seed's test measurements, not only its findings): :meth:`run_seeds`,
    :meth:`seeds_to_markdown` and :meth:`write_seeds` are the module's."""

    def run_seeds(self, cfg, seeds: list[int], *, out: str | Path | None = None, figures: bool = True,
                  log: Callable = print):
        if not self.multi_seed:
            raise ValueError(f"the {self.name} reproduction runs once per pair, not over seeds")
        return self.mod.run_seeds(cfg, seeds, out=out, figures=figures, log=log)

    def seeds_to_markdown(self, cfg, reports) -> str:
        return self.mod.seeds_to_markdown(reports)

    def write_seeds(self, cfg, reports, out: str | Path, figures: bool = True) -> list[Path]:
        return self.mod.write_seeds(reports, out, figures=figures)
