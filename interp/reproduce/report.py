"""Writing a reproduction's report: JSON, markdown, figures and the page that shows them."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from .. import plot
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
    if isinstance(data, dict) and _CODE.get() is not None and "reproduction_code" not in data:
        data = {**data, "reproduction_code": _CODE.get()}
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


#: The code stamp of the reproduction whose report is being written (:func:`stamped`).
_CODE: contextvars.ContextVar[str | None] = contextvars.ContextVar("reproduction_code", default=None)


@contextlib.contextmanager
def stamped(code: str) -> Iterator[None]:
    """Within the block, every report :func:`write_report` writes carries ``"reproduction_code":
    code`` (the hash of the code that computed it, :meth:`~interp.reproduce.base.Reproduction.code`),
    so a resumed run can tell a report of the current code from one of older code."""
    token = _CODE.set(code)
    try:
        yield
    finally:
        _CODE.reset(token)


@dataclasses.dataclass
class Finished:
    """A seed's report read back from its JSON (``<out>/seed-<s>/<stem>.json``): its config and
    findings, all the claims' summary across seeds needs, and the whole JSON (``data``) for what a
    reproduction's ``seeds_markdown``/``seeds_json`` add."""

    config: object
    findings: list
    path: Path
    data: dict = dataclasses.field(default_factory=dict, repr=False)


#: Why a seed with no report runs: said in the log when a resumed run runs it.
NO_REPORT = "no report yet"


def resumable(path: Path, cfg, code: str | None = None) -> Finished | str:
    """The report at ``path`` read back if it was written for exactly ``cfg`` (same config, seed
    included) and — given ``code`` — by the same code (its ``"reproduction_code"``); otherwise the
    reason it must be run again (:data:`NO_REPORT`, unreadable, another config, other code).
    A report without a code stamp was written before reports carried one: it counts as other
    code whenever ``code`` is given."""
    import json

    from ..findings import Finding
    from ..io import read_json

    if not path.exists():
        return NO_REPORT
    try:
        data = read_json(path)
    except Exception as e:  # unreadable: run the seed again (the file is replaced only when the new one is whole)
        return f"its report {path} cannot be read ({type(e).__name__})"
    if not isinstance(data, dict) or "findings" not in data:
        return f"its report {path} holds no findings"
    if data.get("config") != json.loads(json.dumps(asdict(cfg), default=str)):
        return f"its report {path} was written for another config"
    if code is not None and data.get("reproduction_code") != code:
        stamp = data.get("reproduction_code")
        return (f"its report {path} was written by other code ({stamp} ≠ {code})" if stamp else
                f"its report {path} carries no code stamp (written before reports had one)")
    try:
        findings = [Finding.from_dict(f) for f in data["findings"]]
    except Exception as e:
        return f"its report {path} has findings that cannot be read ({type(e).__name__}: {e})"
    return Finished(cfg, findings, path, data)


def finished(path: Path, cfg, code: str | None = None) -> Finished | None:
    """The report at ``path`` if it was written for exactly ``cfg`` (and by ``code``, if given),
    else None (:func:`resumable` says why)."""
    r = resumable(path, cfg, code)
    return r if isinstance(r, Finished) else None
