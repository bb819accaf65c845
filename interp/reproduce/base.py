"""The shape every reproduction shares: a :class:`Reproduction` names its claims' source, its
files and its page, and runs every reproduction alike — over seeds (resumable where the report can
be read back), one report per seed written as it finishes, then the summary across seeds — from the
module's own ``config_for``, ``run`` and ``write``.

A reproduction is a module with

- ``config_for(pair, **overrides)`` → its config dataclass (``seed`` and, for a pair-based one,
  ``pair`` fields),
- ``run(cfg, *, log=print)`` → a report with ``findings`` (a list of :class:`interp.Finding`);
  a ``progress`` keyword, where ``run`` has one, is passed on,
- ``write(report, out_dir, *, figures=True)`` → the files written,

optionally ``check(cfg)`` (refuse a config before any work) and, for a summary across seeds that
says more than the claims, ``seeds_intro(cfg)`` (its first paragraph), ``seeds_markdown(cfg,
data)`` (lines after the claims' table) and ``seeds_json(cfg, data)`` (keys added to its JSON),
where ``data`` is ``{seed: that seed's report JSON}`` — read from each seed's JSON, so a seed read
back by a resumed run and a seed just run give the same summary; and a :class:`Reproduction` in :data:`interp.reproduce.REPRODUCTIONS`; the command line,
the README's at-a-glance table and ``run.sh`` read that registry. Files lie where
:mod:`interp.reproduce.layout` says. ``docs/adding-a-reproduction.md`` walks through one."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import distributed
from ..findings import seeds_table, summarize_seeds
from . import layout
from .runner import pair_for_seed


@dataclass(frozen=True)
class Reproduction:
    """One reproduction: ``interp reproduce <name>`` on ``default_pair``; each seed's report is
    ``<out>/seed-<s>/<stem>.json`` (and ``.md``, figures, page), the summary across seeds
    ``<out>/<stem>_seeds.json``; ``module`` holds its config, steps and report; ``paper`` is who
    made the claims it tests; ``page`` its results in ``docs/``; ``per_seed`` what a seed
    rebuilds (said in the summary); ``rebuild_pair``: each seed runs on the organism rebuilt with
    that seed (:func:`~interp.reproduce.runner.pair_for_seed`); ``resume``: a seed whose report
    in ``out`` was written for the same config by the same code (:meth:`code`) is read back, not
    run again."""

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
    summary: str = ""  # one line for ``interp reproduce --help`` (default: the title)

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

    def code(self) -> str:
        """A hash of the code that computes a seed's report: every source file of the reproduction's
        module (all of its package's files, for a package) and the modules its ``STEP_CODE`` names
        (the library code its cached steps run). Stamped into every report it writes
        (``"reproduction_code"``); a resumed run reads a seed back only when the stamp matches."""
        spec = importlib.util.find_spec(self.module)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(self.module)
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        h = hashlib.sha256()
        for f in files:
            h.update(str(f.relative_to(origin.parent)).encode())
            h.update(f.read_bytes())
        extra = tuple(m for m in getattr(self.mod, "STEP_CODE", ()) if not m.startswith(self.module))
        if extra:
            from ..io import code_hash

            h.update(code_hash(extra).encode())
        return h.hexdigest()[:12]

    def seed_data(self, reports: dict) -> dict:
        """``{seed: report JSON}``: a seed read back (:class:`~interp.reproduce.report.Finished`)
        gives its file's JSON; a seed just run, its module's ``to_json`` passed through JSON, so
        both read alike (string keys, lists for tuples)."""
        from ..io import _json_default  # what write_json writes with
        from .report import Finished

        return {s: r.data if isinstance(r, Finished) else json.loads(json.dumps(self.mod.to_json(r), default=_json_default))
                for s, r in reports.items()}

    def config_for(self, pair: str | None = None, **overrides):
        return self.mod.config_for(pair or self.default_pair, **overrides)

    def subject(self, cfg) -> str:
        """What the claims were tested on: the pair, or the organism size for a pair-less one."""
        pair = getattr(cfg, "pair", None)
        return pair if pair is not None else f"the organism ({getattr(cfg, 'size', '?')})"

    def seeds_to_markdown(self, cfg, reports: dict) -> str:
        """The summary across seeds: per claim, in how many seeds it holds (and what the module's
        ``seeds_markdown`` adds)."""
        m = self.mod
        seeds = sorted(reports)
        n = len(seeds)
        intro = (m.seeds_intro(cfg) if hasattr(m, "seeds_intro") else
                 f"{self.per_seed} Per seed a claim holds only after Holm correction across the claims; a claim "
                 "that holds in some seeds but not all is **mixed**.")
        lines = [f"# {self.title} on {self.subject(cfg)}, over {n} seed{'s' if n > 1 else ''} ({', '.join(map(str, seeds))})",
                 "", intro, "",
                 seeds_table(summarize_seeds({s: r.findings for s, r in reports.items()}), paper=self.paper,
                             any_label="criterion met")]
        if hasattr(m, "seeds_markdown"):
            lines += ["", *m.seeds_markdown(cfg, self.seed_data(reports))]
        lines += ["", "Per seed: " + ", ".join(f"[{s}]({layout.seed_link(s, self.stem + '.md')})" for s in seeds)]
        return "\n".join(lines) + "\n"

    def seeds_json(self, cfg, reports: dict) -> dict:
        """The summary's JSON: the pair, the seeds, the config (less seed and pair), per claim its
        counts across seeds, and what the module's ``seeds_json`` adds."""
        config = {k: v for k, v in asdict(cfg).items() if k not in ("seed", "pair")}
        data = {"pair": getattr(cfg, "pair", None), "seeds": sorted(reports), "config": config,
                "claims": [s.to_dict() for s in summarize_seeds({s: r.findings for s, r in reports.items()})]}
        if hasattr(self.mod, "seeds_json"):
            data.update(self.mod.seeds_json(cfg, self.seed_data(reports)))
        return data

    def write_seeds(self, cfg, reports: dict, out: str | Path, figures: bool = True) -> list[Path]:
        """``<out>/<stem>_seeds.json`` and ``.md`` (:mod:`~interp.reproduce.layout`), and the
        ``seeds_forest`` figure with the page showing it."""
        data = self.seeds_json(cfg, reports)

        def draw():
            from .. import plot

            return {"seeds_forest": plot.seeds_forest(summarize_seeds({s: r.findings for s, r in reports.items()}))}

        from .report import write_report

        return write_report(out, layout.summary(out, self.stem, "").name, data, self.seeds_to_markdown(cfg, reports),
                            figures=draw if figures else None, title=f"{self.title} on {self.subject(cfg)}",
                            config=data["config"])

    def run_seeds(self, cfg, seeds: list[int], *, out: str | Path | None = None, figures: bool = True,
                  progress: bool | None = None, log: Callable = print) -> dict:
        """The module's ``run`` once per seed (``cfg.seed`` and, with ``rebuild_pair``, ``cfg.pair``
        replaced), each report written to ``out/seed-<s>/`` as it finishes, then the summary
        (:meth:`write_seeds`). With ``resume`` a seed whose report in ``out`` was written for the
        same config by the same code (:meth:`code`) is read back instead of run again
        (:func:`~interp.reproduce.report.resumable`), so an interrupted run goes on where it
        stopped; a seed that runs again says why in the log. ``progress`` reaches a ``run`` that
        takes it. Returns ``{seed: report}``."""
        if not self.multi_seed:
            raise ValueError(f"the {self.name} reproduction runs once per pair, not over seeds")
        from .report import NO_REPORT, Finished, resumable, stamped

        m = self.mod
        extra = {"progress": progress} if progress is not None and "progress" in inspect.signature(m.run).parameters else {}
        code = self.code()
        reports = {}
        with stamped(code):
            for s in seeds:
                log(f"=== seed {s} ===")
                swap = {"pair": pair_for_seed(cfg.pair, s)} if self.rebuild_pair else {}
                seed_cfg = dataclasses.replace(cfg, seed=s, **swap)
                # under torchrun only rank 0 writes (out is None elsewhere): every rank runs every seed
                if self.resume and out is not None and distributed.world()[1] == 1:
                    done = resumable(layout.seed_report(out, s, self.stem), seed_cfg, code)
                    if isinstance(done, Finished):
                        log(f"seed {s}: read back from {done.path} (written for this config by this code)")
                        reports[s] = done
                        continue
                    if done != NO_REPORT:
                        log(f"seed {s}: running it again: {done}")
                reports[s] = m.run(seed_cfg, log=log, **extra)
                if out is not None:
                    m.write(reports[s], layout.seed_dir(out, s), figures=figures)
            if out is not None:
                self.write_seeds(cfg, reports, out, figures)
        return reports
