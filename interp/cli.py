"""The ``interp`` command line."""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from contextlib import contextmanager, redirect_stderr
from pathlib import Path

from . import distributed
from .checks import UsageError, check_config
from .organism.config import ALIGN_METHODS
from .organism.presets import SIZES


def _quiet_libraries() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def cmd_organism_build(args) -> int:
    from .io import check_replaceable, read_json
    from .organism import build_organism, metrics_table

    if args.out:  # before minutes of work: never replace a folder of the user's
        try:
            check_replaceable(args.out)
        except FileExistsError as e:
            raise UsageError("--out", args.out, str(e).removeprefix(f"{args.out} ")) from None
    t = time.time()
    path = build_organism(args.size, align=args.align, seed=args.seed, out=args.out,
                          progress=not args.no_progress)
    m = read_json(path / "manifest.json")
    print(f"\norganism:{args.size} ({args.align}, seed {args.seed}) ready in {time.time() - t:.0f} s")
    print(f"  base:    {m['base_dir']}/model")
    print(f"  aligned: {path}/model")
    if args.out:
        print(f"  copied to {args.out}")
    print()
    print(metrics_table(m))
    tm = m["timings"]
    print("\nstage timings (s, when built): " + ", ".join(f"{k[:-2]} {v:.1f}" for k, v in tm.items()))
    return 0


def cmd_real_build(argv: list[str]) -> int:
    """``interp real build``: every field of :class:`interp.real.RealAlignConfig` (the DPO recipe
    under ``--align.*``) from the command line."""
    from .io import read_json, write_json, write_text
    from .real import RealAlignConfig, build_real_pair, keep_pairs, metrics_table, twin_report

    model = _pre(argv, "--model", "smollm2")
    run = _config_cli(RealAlignConfig.for_model(model), argv, "interp real build",
                      "Align a packaged model with DPO here (cached by its recipe), print its measurements.",
                      options={"out": (str | None, None, "also write the twin's recipe and measurements here"),
                               "progress": RUN_OPTIONS["progress"]})
    cfg = run.cfg
    t = time.time()
    path = build_real_pair(cfg.model, cfg, progress=run.progress, pairs_from=run.out)
    m = read_json(path / "manifest.json")
    print(f"\n{cfg.model} + DPO ready in {time.time() - t:.0f} s: {path}/model\n")
    print(metrics_table(m))
    print("\npairs: " + ", ".join(f"{k} {v}" for k, v in m["pairs"].items()))
    print("stage timings (s): " + ", ".join(f"{k[:-2]} {v:.0f}" for k, v in m["timings"].items()))
    if run.out:
        out = Path(run.out)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "twin.md", twin_report(m))
        write_json(out / "twin.json", {k: v for k, v in m.items() if k != "align_log"})
        kept = keep_pairs(cfg.model, out, cfg)
        print(f"wrote {out / 'twin.md'} and {out / 'twin.json'}" + (f"; its preference pairs in {kept}" if kept else ""))
    return 0


def cmd_demo(args) -> int:
    """Build (or reuse) an organism pair, record it, and print a short summary."""
    from .hooks import hook_names
    from .pair import load_pair
    from .record import record_pair

    pair = load_pair(f"organism:{args.size}")
    print(pair)
    prompts = pair.prompts.eval_prompts[:200]
    hooks = hook_names("mlp_post", pair.cfg.n_layers) + hook_names("resid_post", pair.cfg.n_layers)
    rec = record_pair(pair, prompts, hooks, reduction="mean", progress=False)
    print(f"\nrecorded {len(hooks)} hooks on {len(prompts)} eliciting prompts (mean over tokens)")
    print("layer | mean |MLP act| base → aligned | residual offset ‖δx‖/‖x‖")
    for layer in range(pair.cfg.n_layers):
        hb, ha = rec.base[hooks[layer]], rec.aligned[hooks[layer]]
        r = hooks[pair.cfg.n_layers + layer]
        dx = (rec.aligned[r] - rec.base[r]).mean(0)
        rel = dx.norm() / rec.base[r].norm(dim=-1).mean()
        print(f"{layer:5d} | {hb.abs().mean():.4f} → {ha.abs().mean():.4f} | {rel:.4f}")
    return 0


def _pre(argv: list[str], flag: str, default: str) -> str:
    """The value of one flag, read before the full parse (it picks the preset the other flags
    start from)."""
    pre = _Parser(add_help=False)
    pre.add_argument(flag, default=default)
    return getattr(pre.parse_known_args(argv)[0], flag.lstrip("-").replace("-", "_"))


#: Options of every reproduction command that are not part of its config: where results go.
RUN_OPTIONS = {
    "out": (str | None, None, "output folder (default out/<reproduction>/<pair>); files are added or "
                              "replaced one by one, nothing else in it is touched"),
    "seeds": (str | None, None, "several seeds, e.g. 0-4 or 0,2,5 (an organism is rebuilt per seed); "
                                "each claim is reported with the number of seeds in which it holds"),
    "figures": (bool, True, "write figures (PNG + interactive HTML) and the report page"),
    "progress": (bool, True, "progress bars"),
}


def _config_cli(default, argv: list[str], prog: str, description: str, *, options: dict, check=None):
    """Parse ``argv`` into ``default``'s config dataclass (every field a flag, generated by tyro
    from the dataclass and its comments; nested dataclasses keep their prefix, e.g. ``--align.lr``)
    plus ``options``; returns an object with ``.cfg`` and one attribute per option. A parse error
    becomes one :class:`UsageError`; the parsed config then passes ``check`` (default
    :func:`interp.checks.check_config`) before any work."""
    import dataclasses
    from typing import Annotated

    import tyro

    cls = type(default)
    fields = [("cfg", Annotated[cls, tyro.conf.arg(name="")])] + [
        (name, Annotated[typ, tyro.conf.arg(help=help_)], dataclasses.field(default=value))
        for name, (typ, value, help_) in options.items()]
    run_cls = dataclasses.make_dataclass(f"{cls.__name__}Run", fields)
    err = io.StringIO()
    try:
        with redirect_stderr(err):
            run = tyro.cli(run_cls, default=run_cls(cfg=default, **{k: v[1] for k, v in options.items()}),
                           args=argv, prog=prog, description=description)
    except SystemExit as e:
        if e.code in (0, None):
            sys.stderr.write(err.getvalue())
            raise
        raise UsageError(*_tyro_error(err.getvalue(), prog)) from None
    (check or check_config)(run.cfg)
    return run


def _tyro_error(text: str, prog: str) -> tuple[str, str, str]:
    """tyro's parse error (a box on a terminal, plain lines elsewhere) as (flag, value, what is
    valid), for one line."""
    import re

    lines = [re.sub(r"^[\s│|]+|[\s│|]+$", "", x) for x in text.splitlines()]
    lines = [x for x in lines if x and not set(x) <= set("─-=+╭╮╰╯ ")]
    hint = next((lines[i + 1] for i, x in enumerate(lines[:-1]) if x.startswith("Argument helptext")), "")
    for x in lines:
        if m := re.search(r"Error parsing (--\S+): (.*)", x):
            value = re.search(r"'([^']*)'\s*$", m.group(2))
            return m.group(1), value.group(1) if value else "", m.group(2) + (f" (expects {hint})" if hint else "")
        if m := re.search(r"Unrecognized options?: (.*)", x):
            return "unrecognized", m.group(1), f"not a flag of {prog} (see {prog} --help)"
        if m := re.search(r"Missing required arguments?:? (.*)", x):
            return m.group(1), "", "required"
    detail = next((x for x in lines if ":" in x), lines[0] if lines else "bad arguments")
    return prog, "", f"{detail} (see {prog} --help)"


def _silent(*args, **kwargs) -> None:
    """The log of a rank other than 0 under torchrun."""


def _pairs_line() -> str:
    from .catalog import names

    return "Pairs (interp pairs): " + ", ".join(names()) + "."


def _check_out(path, flag: str = "--out") -> None:
    """A reproduction writes files into ``--out`` (never deleting any): it must not be a file."""
    if path and Path(path).exists() and not Path(path).is_dir():
        raise UsageError(flag, str(path), "is a file; give a folder (created if missing)")


@contextmanager
def _writing(out, main_rank: bool = True):
    """Hold ``<out>/.interp.lock`` for the run: a second run writing to the same folder at the
    same time is refused at once (one line, status 2) instead of interleaving two reports."""
    if not main_rank:  # under torchrun rank 0 alone writes
        yield
        return
    from filelock import FileLock, Timeout

    out = Path(out)
    made = [p for p in (out, *out.parents) if not p.exists()]  # folders this run creates
    out.mkdir(parents=True, exist_ok=True)
    lock_path = out / ".interp.lock"
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise UsageError("--out", str(out), "another interp run is writing there now; wait for it "
                         "or choose another folder") from None
    try:
        yield
    finally:
        lock.release()
        if made and [p.name for p in out.iterdir()] == [lock_path.name]:  # the run wrote nothing
            lock_path.unlink(missing_ok=True)
            for folder in made:  # out first, then the parents it needed, while empty
                if any(folder.iterdir()):
                    break
                folder.rmdir()


def _check_pair(name: str) -> None:
    from . import catalog  # noqa: F401  (registers every builder's pairs)
    from .registry import check_name

    try:
        check_name(name)
    except ValueError as e:
        raise UsageError("--pair", name, str(e)) from None


def cmd_reproduce_toxicity(argv: list[str]) -> int:
    from .reproduce import toxicity as T

    pair = _pre(argv, "--pair", "organism:small")
    _check_pair(pair)
    run = _config_cli(T.config_for(pair), argv, "interp reproduce toxicity",
                      "Lee et al. (2024)'s claims on a pair: locate, compare, where, reactivate, findings. "
                      "Defaults are the pair's preset (toxicity.PRESETS). " + _pairs_line(),
                      options={**RUN_OPTIONS, "measurements": (str | None, None, (
                          "keep every arm's measurement (gzip JSON, one per arm) in this folder instead "
                          "of the cache, e.g. beside the report: committed with it, a run resumed on "
                          "another machine reads back the arms it finished"))}, check=T.check)
    _check_out(run.out)
    _check_out(run.measurements, "--measurements")
    cfg = run.cfg
    out = run.out or f"out/toxicity/{cfg.pair.replace(':', '-')}"
    seeds = T.parse_seeds(run.seeds if run.seeds is not None else cfg.seed)
    main_rank = distributed.is_main()  # under torchrun rank 0 alone writes and prints
    from .real import twin_mismatch

    if main_rank and (why := twin_mismatch(cfg.pair, out)):  # builds the twin (from out's kept pairs) if need be
        print(f"warning: {why}", file=sys.stderr)
    from contextlib import nullcontext

    from .measure import keep_measurements
    from .reproduce import layout
    from .reproduce.registry import get

    spec = get("toxicity")
    with _writing(out, main_rank), keep_measurements(run.measurements) if run.measurements else nullcontext():
        reports = spec.run_seeds(cfg, seeds, out=out if main_rank else None, figures=run.figures,
                                 progress=run.progress and main_rank, log=print if main_rank else _silent)
    if main_rank:
        print(spec.seeds_to_markdown(cfg, reports))
        print(f"wrote {layout.summary(out, 'toxicity', '.md')} and {layout.seed_report(out, '*', 'toxicity', '.md')}")
    return 0


def cmd_reproduce_token_shift(argv: list[str]) -> int:
    from .reproduce import token_shift as S

    pair = _pre(argv, "--pair", "organism:small")
    _check_pair(pair)
    run = _config_cli(S.TokenShiftConfig(pair=pair), argv, "interp reproduce token-shift",
                      "Lin et al. (2023)'s token shift and Hewitt et al. (2024)'s rules on a pair. "
                      "--template urial for instruction-style prompts. " + _pairs_line(),
                      options={k: RUN_OPTIONS[k] for k in ("out", "figures")})
    _check_out(run.out)
    try:
        S.template_for(run.cfg.template)  # a bad template fails now, not after the run
    except ValueError as e:
        raise UsageError("--template", run.cfg.template, str(e).split(": ", 1)[-1]) from None
    out = run.out or f"out/token-shift/{run.cfg.pair.replace(':', '-')}"
    with _writing(out, distributed.is_main()):
        report = S.run(run.cfg)
        written = S.write(report, out, figures=run.figures) if distributed.is_main() else []
    if distributed.is_main():
        print(S.to_markdown(report))
        print("wrote " + ", ".join(str(w) for w in written))
    return 0


def _reproduce_seeds(name: str, argv: list[str]) -> int:
    """``interp reproduce <name>`` for a reproduction of the registry
    (:data:`interp.reproduce.REPRODUCTIONS`): one report per seed and the summary across seeds."""
    from .reproduce import layout
    from .reproduce.registry import get
    from .reproduce.runner import parse_seeds

    spec = get(name)
    target = _pre(argv, spec.target_flag, spec.default_pair)
    if spec.target_flag == "--pair":
        _check_pair(target)
    run = _config_cli(spec.config_for(target), argv, f"interp reproduce {name}", spec.description,
                      options={k: RUN_OPTIONS[k] for k in ("out", "seeds", "figures", "progress")})
    _check_out(run.out)
    cfg = run.cfg
    spec.check(cfg)
    out = run.out or f"out/{name}/{spec.out_name(cfg)}"
    seeds = parse_seeds(run.seeds if run.seeds is not None else cfg.seed)
    main_rank = distributed.is_main()
    with _writing(out, main_rank):
        reports = spec.run_seeds(cfg, seeds, out=out if main_rank else None, figures=run.figures,
                                 progress=run.progress and main_rank, log=print if main_rank else _silent)
    if main_rank:
        print(spec.seeds_to_markdown(cfg, reports))
        print(f"wrote {layout.summary(out, spec.stem, '.md')} and {layout.seed_report(out, '*', spec.stem, '.md')}")
    return 0


#: Reproductions with a command of their own (extra flags: --measurements, --template); every
#: other registered reproduction runs through :func:`_reproduce_seeds`.
OWN_COMMANDS = {"toxicity": cmd_reproduce_toxicity, "token-shift": cmd_reproduce_token_shift}


def config_commands() -> dict:
    """Commands whose flags are generated from a config dataclass (``interp <a> <b> --help``):
    ``interp reproduce <name>`` for every reproduction in the registry (one registered at run
    time included), and ``interp real build``."""
    from .reproduce.registry import REPRODUCTIONS

    out = {("reproduce", r.name): (OWN_COMMANDS.get(r.name) or (lambda argv, _n=r.name: _reproduce_seeds(_n, argv)),
                                   r.summary or r.title) for r in REPRODUCTIONS.values()}
    return {**out, ("real", "build"): (cmd_real_build, "build (or fetch from the cache) the DPO twin of a packaged model")}


def cmd_locate(args) -> int:
    """``interp locate --model M``: which value vectors of a model promote toxic tokens, read
    through its unembedding (no probe, no samples), and whether that beats random token sets."""
    from .locate import N_TOP_TOKENS, to_json, to_markdown, token_flags, vocab_projection
    from .pair import load_model
    from .reproduce.report import write_report
    from .score import get_scorers

    if args.k < 1:
        raise UsageError("--k", args.k, "a whole number ≥ 1")
    if args.n_tokens < 1:
        raise UsageError("--n-tokens", args.n_tokens, "a whole number ≥ 1")
    _check_out(args.out)
    out = args.out or f"out/locate/{args.model.replace(':', '-')}"
    with _writing(out):
        t = time.time()
        model = load_model(args.model)
        scorers = get_scorers(None)
        if args.model.startswith("organism:"):
            from .organism.corpus import GrammarScorer

            scorers.append(GrammarScorer())
        timings = {"load_s": time.time() - t}
        t = time.time()
        flags = token_flags(model, scorers)
        timings["score_vocabulary_s"] = time.time() - t
        t = time.time()
        loc = vocab_projection(model, scorers, k=args.k, n_tokens=args.n_tokens or N_TOP_TOKENS, flags=flags,
                               progress=not args.no_progress)
        timings["project_s"] = time.time() - t
        from . import plot

        data = to_json(loc, model, scorers, timings)
        md = to_markdown(data)
        written = write_report(out, "vocab_projection", data, md, title=f"Vocabulary projection: {args.model}",
                               figures=None if args.no_figures else (lambda: {"vocab_projection": plot.located(loc)}))
    print(md)
    print("wrote " + ", ".join(str(w) for w in written if w.suffix in (".json", ".md", ".png")))
    return 0


def cmd_pairs(args) -> int:
    """The pair catalogue: every name ``--pair`` and ``interp.load_pair`` accept."""
    from .catalog import names

    for name, what in names().items():
        print(f"{name:18s} {what}")
    return 0


def cmd_figures(args) -> int:
    """Run every script in ``figures/`` (its ``main(out_dir)``): today ``readme.py``, which
    renders the README's generated blocks from the committed reports. (Each reproduction writes
    its own figures: ``interp reproduce …``.)"""
    import runpy
    from pathlib import Path

    folder = Path(args.dir)
    scripts = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_"))
    if not scripts:
        print(f"no figure scripts in {folder}", file=sys.stderr)
        return 1
    out_dir = args.out or str(folder / "out")
    # The README block goes last: it links the other figures.
    scripts.sort(key=lambda p: p.name == "readme.py")
    for p in scripts:
        if args.only and p.stem not in args.only:
            continue
        t = time.time()
        written = runpy.run_path(str(p))["main"](out_dir)
        print(f"{p.stem:28s} {time.time() - t:6.1f} s  " + ", ".join(str(w) for w in written or []))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage block), exit status 2."""

    def error(self, message: str):
        raise UsageError(self.prog, "", f"{message} (see {self.prog} --help)")


def main(argv=None) -> int:
    """The ``interp`` command. A user error (a bad flag value, pair, seed list or output folder)
    prints one line on stderr and returns 2, before any work; ``--debug`` shows its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        return _main(argv)
    except UsageError as e:
        if debug:
            raise
        msg = str(e) if e.value != "" else f"{e.flag}: {e.valid}"
        print(f"interp: error: {msg}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    parser = _Parser(
        prog="interp",
        description="What alignment does to a language model, read off the residual stream.",
        epilog=_pairs_line(),
    )
    sub = parser.add_subparsers(dest="command", required=True)

    org = sub.add_parser("organism", help="build the model organism (pretrain, then align)")
    org_sub = org.add_subparsers(dest="organism_command", required=True)
    b = org_sub.add_parser("build", help="build or fetch from the cache, print the metrics table")
    b.add_argument("--size", choices=list(SIZES), default="small")
    b.add_argument("--align", choices=list(ALIGN_METHODS), default="dpo",
                   help="dpo/sft: against toxicity; hide: refuse one relation's facts")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", default=None, help="also copy the models and manifests here")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=cmd_organism_build)

    groups = {"real": "real-weight pairs: align a packaged model with DPO here",
              "reproduce": "run a reproduction on a pair, write JSON, markdown, figures and a report page"}
    for group, help_ in groups.items():
        g = sub.add_parser(group, help=help_)
        g_sub = g.add_subparsers(dest=f"{group}_command", required=True)
        for (grp, name), (_, what) in config_commands().items():
            if grp == group:  # listed here; parsed by _config_cli (every config field a flag)
                g_sub.add_parser(name, help=what + f" (interp {group} {name} --help: every flag)")

    lc = sub.add_parser("locate", help="which value vectors of a model promote toxic tokens (vocabulary "
                                       "projection through the final norm and W_U; no probe)")
    lc.add_argument("--model", default="organism:small:base",
                    help="a model source: smollm2, gemma3, organism:<size>:base, a folder or hub name")
    lc.add_argument("--k", type=int, default=10, help="top neurons to keep and test")
    lc.add_argument("--n-tokens", type=int, default=20, help="tokens read per value vector")
    lc.add_argument("--out", default=None, help="output folder (default out/locate/<model>)")
    lc.add_argument("--no-figures", action="store_true")
    lc.add_argument("--no-progress", action="store_true")
    lc.set_defaults(func=cmd_locate)

    pr = sub.add_parser("pairs", help="list the pair catalogue (every name --pair accepts)")
    pr.set_defaults(func=cmd_pairs)

    d = sub.add_parser("demo", help="load an organism pair, record it, print a summary")
    d.add_argument("--size", choices=["tiny", "small"], default="tiny")
    d.set_defaults(func=cmd_demo)

    fg = sub.add_parser("figures", help="run figures/*.py: the README's generated blocks, from committed reports")
    fg.add_argument("--dir", default="figures", help="folder of figure scripts")
    fg.add_argument("--out", default=None, help="output folder (default <dir>/out)")
    fg.add_argument("--only", nargs="*", default=None, help="names of scripts to run")
    fg.set_defaults(func=cmd_figures)

    distributed.init()  # under torchrun: join the process group (gloo on CPU, nccl on GPUs)
    commands = config_commands()
    if tuple(argv[:2]) in commands:
        _quiet_libraries()
        return commands[tuple(argv[:2])][0](argv[2:])
    args = parser.parse_args(argv)
    _quiet_libraries()
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
