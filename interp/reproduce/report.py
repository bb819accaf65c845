"""Writing a reproduction's report: JSON, markdown, figures and the page that shows them."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path

from .. import distributed, plot
from ..findings import summarize_seeds
from ..io import write_json, write_text


def write_report(out_dir: str | Path, stem: str, data: dict, markdown: str, *, figures=None,
                 title: str = "", config: dict | None = None) -> list[Path]:
    """``<out>/<stem>.json`` and ``<stem>.md``, and — given ``figures`` (a callable returning
    the report's figures by name) — every figure and the ``index.html`` page showing them.

    All or nothing: every file is written into a staging folder inside ``out`` first and moved
    into place only once all are whole, so a failure on the way (a full disk, an interrupt)
    leaves the previous report as it was. Files of ``out`` this report does not write are never
    touched."""
    import os
    import shutil
    import tempfile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(data, dict) and "machine" not in data:
        data = {**data, "machine": machine()}
    stage = Path(tempfile.mkdtemp(prefix=f".{stem}.", suffix=".tmp", dir=out))
    try:
        write_json(stage / f"{stem}.json", data)
        write_text(stage / f"{stem}.md", markdown)
        written = [stage / f"{stem}.json", stage / f"{stem}.md"]
        if figures is not None:
            written += plot.save_report(stage, figures(), title, markdown, config)
        for f in sorted(p for p in stage.rglob("*") if p.is_file()):
            dest = out / f.relative_to(stage)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [out / w.relative_to(stage) for w in written]


def machine() -> dict:
    """What a report's wall times were measured on: cores (those this process may use), processor,
    torch's threads and version, and the accelerator if one was used. Written into every report's
    JSON (``"machine"``) beside its ``timings``."""
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cores": cores, "processor": cpu, "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "gpu": gpu}


def provenance(argv=None) -> dict:
    """Where a measurement came from: :func:`machine`, the UTC time, the command line and the
    git commit of the working tree (with ``+dirty`` when it has uncommitted changes; ``None``
    outside a repository). Benchmarks write it beside their numbers."""
    import subprocess
    import sys
    from datetime import UTC, datetime

    def git(*args):
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                  cwd=Path(__file__).resolve().parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "HEAD") or None
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += "+dirty"
    return {**machine(), "utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": list(sys.argv if argv is None else argv), "commit": commit}


def without_timings(report):
    """A report's JSON without its wall-clock ``timings`` and the ``machine`` they were measured on
    (at any depth): what two runs of the same work — one process or several, CPU or GPU — must
    agree on."""
    if isinstance(report, dict):
        return {k: without_timings(v) for k, v in report.items() if k not in ("timings", "machine")}
    if isinstance(report, list):
        return [without_timings(v) for v in report]
    return report


@dataclasses.dataclass
class Finished:
    """A seed's report read back from its JSON (``<out>/seed-<s>/<stem>.json``): its config and
    findings, all the summary across seeds needs."""

    config: object
    findings: list
    path: Path


def finished(path: Path, cfg) -> Finished | None:
    """The report at ``path`` if it was written for exactly ``cfg`` (same config, seed included), else None."""
    import json

    from ..findings import Finding
    from ..io import read_json

    if not path.exists():
        return None
    try:
        data = read_json(path)
    except Exception:  # unreadable: run the seed again (the file is replaced only when the new one is whole)
        return None
    if data.get("config") != json.loads(json.dumps(asdict(cfg), default=str)) or "findings" not in data:
        return None
    return Finished(cfg, [Finding.from_dict(f) for f in data["findings"]], path)


def run_seeds(run, write, write_summary, cfg, seeds, *, pair_for_seed, out=None, figures: bool = True,
              log=print, resume: str | None = None) -> dict:
    """``run(cfg, log=)`` per seed (``cfg.seed`` and, given ``pair_for_seed``,
    ``cfg.pair = pair_for_seed(cfg.pair, seed)`` replaced), each report written by ``write(report, out/seed-<s>, figures)`` as it finishes,
    then ``write_summary(cfg, reports, out, figures=)``. With ``resume`` (the reports' file stem,
    e.g. ``"knowledge"``) a seed whose report in ``out`` was written for the same config is read
    back instead of run again (:func:`finished`), so an interrupted multi-seed run goes on where
    it stopped. (The config is compared, not the code: after a change of code, write to a fresh
    ``--out``.)"""
    reports = {}
    for s in seeds:
        log(f"=== seed {s} ===")
        swap = {"pair": pair_for_seed(cfg.pair, s)} if pair_for_seed is not None else {}
        seed_cfg = dataclasses.replace(cfg, seed=s, **swap)
        # under torchrun only rank 0 writes (out is None elsewhere): every rank runs every seed
        done = (finished(Path(out) / f"seed-{s}" / f"{resume}.json", seed_cfg)
                if resume and out is not None and distributed.world()[1] == 1 else None)
        if done is not None:
            log(f"seed {s}: read back from {done.path} (written for this config)")
            reports[s] = done
            continue
        reports[s] = run(seed_cfg, log=log)
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
