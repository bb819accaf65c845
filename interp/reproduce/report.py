"""Writing a reproduction's report: JSON, markdown, figures and the page that shows them."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path

from .. import plot
from ..findings import summarize_seeds
from ..io import write_json, write_text


def write_report(out_dir: str | Path, stem: str, data: dict, markdown: str, *, figures=None,
                 title: str = "", config: dict | None = None) -> list[Path]:
    """``<out>/<stem>.json`` and ``<stem>.md``, and — given ``figures`` (a callable returning
    the report's figures by name) — every figure and the ``index.html`` page showing them."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / f"{stem}.json", data)
    write_text(out / f"{stem}.md", markdown)
    written = [out / f"{stem}.json", out / f"{stem}.md"]
    if figures is not None:
        written += plot.save_report(out, figures(), title, markdown, config)
    return written


def without_timings(report):
    """A report's JSON without its wall-clock ``timings`` (at any depth): what two runs of the same
    work — one process or several, CPU or GPU — must agree on."""
    if isinstance(report, dict):
        return {k: without_timings(v) for k, v in report.items() if k != "timings"}
    if isinstance(report, list):
        return [without_timings(v) for v in report]
    return report


def run_seeds(run, write, write_summary, cfg, seeds, *, pair_for_seed, out=None, figures: bool = True,
              log=print) -> dict:
    """``run(cfg, log=)`` per seed (``cfg.seed`` and, given ``pair_for_seed``,
    ``cfg.pair = pair_for_seed(cfg.pair, seed)`` replaced), each report written by ``write(report, out/seed-<s>, figures)`` as it finishes,
    then ``write_summary(cfg, reports, out, figures=)``."""
    reports = {}
    for s in seeds:
        log(f"=== seed {s} ===")
        swap = {"pair": pair_for_seed(cfg.pair, s)} if pair_for_seed is not None else {}
        reports[s] = run(dataclasses.replace(cfg, seed=s, **swap), log=log)
        if out is not None:
            write(reports[s], Path(out) / f"seed-{s}", figures)
    if out is not None:
        write_summary(cfg, reports, out, figures=figures)
    return reports


def write_seeds_report(out: str | Path, stem: str, cfg, reports: dict, markdown: str, title: str,
                       figures: bool = True) -> list[Path]:
    """The summary across seeds (each report's ``findings``): ``<stem>.json`` with the per-claim
    counts, the markdown given, and the ``seeds_forest`` figure."""
    summary = summarize_seeds({s: r.findings for s, r in reports.items()})
    config = {k: v for k, v in asdict(cfg).items() if k not in ("seed", "pair")}
    data = {"pair": getattr(cfg, "pair", None), "seeds": sorted(reports), "config": config,
            "claims": [m.to_dict() for m in summary]}
    return write_report(out, stem, data, markdown,
                        figures=(lambda: {"seeds_forest": plot.seeds_forest(summary)}) if figures else None,
                        title=title, config=config)
