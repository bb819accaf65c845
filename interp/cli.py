"""The ``interp`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time

from .organism.build import ALIGN_METHODS, SIZES


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
        check_replaceable(args.out)
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


def cmd_real_build(args) -> int:
    from .io import read_json
    from .real import RealAlignConfig, build_real_pair, metrics_table

    t = time.time()
    path = build_real_pair(args.model, RealAlignConfig(model=args.model, seed=args.seed),
                           progress=not args.no_progress)
    m = read_json(path / "manifest.json")
    print(f"\n{args.model} + DPO ready in {time.time() - t:.0f} s: {path}/model\n")
    print(metrics_table(m))
    print("\npairs: " + ", ".join(f"{k} {v}" for k, v in m["pairs"].items()))
    print("stage timings (s): " + ", ".join(f"{k[:-2]} {v:.0f}" for k, v in m["timings"].items()))
    if args.out:
        from pathlib import Path

        from .io import write_json, write_text
        from .real import twin_report

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "twin.md", twin_report(m))
        write_json(out / "twin.json", {k: v for k, v in m.items() if k != "align_log"})
        print(f"wrote {out / 'twin.md'} and {out / 'twin.json'}")
    return 0


def cmd_demo(args) -> int:
    """Build (or reuse) an organism pair, record it, and print a short summary."""
    from .hooks import hook_names
    from .pair import load_pair
    from .record import record_pair

    pair = load_pair(f"organism:{args.size}")
    print(pair)
    data = pair.info["data"]
    prompts = data["eval_prompts"][:200]
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


def _overrides(cfg_cls, pairs: list[str]) -> dict:
    """``--set field=value`` pairs → typed overrides of a config dataclass (values parsed as
    JSON where they parse, e.g. ``scale_doses=[2,10]``, ``patching=false``)."""
    import dataclasses
    import json

    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    out = {}
    for item in pairs or []:
        key, sep, raw = item.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {sorted(fields)}")
        try:
            val = json.loads(raw)
        except json.JSONDecodeError:
            val = raw
        out[key] = tuple(val) if isinstance(val, list) else val
    return out


def _check_out(path) -> None:
    """A reproduction writes files into ``--out`` (never deleting any): it must not be a file."""
    from pathlib import Path

    if path and Path(path).exists() and not Path(path).is_dir():
        raise SystemExit(f"--out {path} is a file; give a folder (created if missing)")


def cmd_reproduce_toxicity(args) -> int:
    from .reproduce import toxicity as T

    _check_out(args.out)
    cfg = T.config_for(args.pair, **_overrides(T.ToxicityConfig, args.set))
    out = args.out or f"out/toxicity/{args.pair.replace(':', '-')}"
    seeds = T.parse_seeds(args.seeds if args.seeds is not None else args.seed)
    sr = T.run_seeds(cfg, seeds, out=out, figures=not args.no_figures, progress=not args.no_progress)
    print(T.seeds_to_markdown(sr))
    print(f"wrote {out}/toxicity_seeds.md and seed-*/toxicity.md")
    return 0


def cmd_reproduce_token_shift(args) -> int:
    from .reproduce import token_shift as S

    _check_out(args.out)
    cfg = S.TokenShiftConfig(pair=args.pair, n_prompts=args.prompts,
                             template=S.template_for(args.template), seed=args.seed)
    report = S.run(cfg)
    out = args.out or f"out/token-shift/{args.pair.replace(':', '-')}"
    written = S.write(report, out)
    print(S.to_markdown(report))
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def cmd_reproduce_knowledge(args) -> int:
    from .reproduce import knowledge as K
    from .reproduce.toxicity import parse_seeds

    _check_out(args.out)
    cfg = K.config_for(args.pair, **_overrides(K.KnowledgeConfig, args.set))
    out = args.out or f"out/knowledge/{args.pair.replace(':', '-')}"
    seeds = parse_seeds(args.seeds if args.seeds is not None else args.seed)
    reports = K.run_seeds(cfg, seeds, out=out, figures=not args.no_figures)
    print(K.seeds_to_markdown(cfg.pair, reports))
    print(f"wrote {out}/knowledge_seeds.md and seed-*/knowledge.md")
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="interp",
        description="What alignment does to a language model, read off the residual stream.",
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

    real = sub.add_parser("real", help="real-weight pairs: align a packaged model with DPO here")
    real_sub = real.add_subparsers(dest="real_command", required=True)
    rb = real_sub.add_parser("build", help="build (or fetch from the cache) the DPO twin")
    rb.add_argument("--model", choices=["smollm2", "gemma3"], default="smollm2")
    rb.add_argument("--seed", type=int, default=0)
    rb.add_argument("--no-progress", action="store_true")
    rb.add_argument("--out", default=None, help="also write the twin's recipe and measurements here")
    rb.set_defaults(func=cmd_real_build)

    pr = sub.add_parser("pairs", help="list the pair catalogue (every name --pair accepts)")
    pr.set_defaults(func=cmd_pairs)

    d = sub.add_parser("demo", help="load an organism pair, record it, print a summary")
    d.add_argument("--size", choices=["tiny", "small"], default="tiny")
    d.set_defaults(func=cmd_demo)

    rep = sub.add_parser("reproduce", help="run a reproduction on a pair, write JSON and markdown")
    rep_sub = rep.add_subparsers(dest="reproduce_command", required=True)
    tox = rep_sub.add_parser("toxicity", help="Lee et al. (2024): locate, compare, reactivate")
    tox.add_argument("--pair", default="organism:small", help="a name from `interp pairs`")
    tox.add_argument("--out", default=None, help="output folder (default out/toxicity/<pair>)")
    tox.add_argument("--seed", type=int, default=0)
    tox.add_argument("--seeds", default=None,
                     help="several seeds, e.g. 0-4 (an organism is rebuilt per seed); a claim is "
                          "reported with the number of seeds in which it holds")
    tox.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                     help="override any ToxicityConfig field, e.g. --set n_test_prompts=400 patching=false")
    tox.add_argument("--no-figures", action="store_true")
    tox.add_argument("--no-progress", action="store_true")
    tox.set_defaults(func=cmd_reproduce_toxicity)
    ts = rep_sub.add_parser("token-shift", help="Lin et al. (2023) token shift, Hewitt et al. (2024) rules")
    ts.add_argument("--pair", default="organism:small")
    ts.add_argument("--out", default=None, help="output folder (default out/token-shift/<pair>)")
    ts.add_argument("--prompts", type=int, default=200, help="number of held-out prompts")
    ts.add_argument("--template", choices=["none", "urial"], default="none")
    ts.add_argument("--seed", type=int, default=0)
    ts.set_defaults(func=cmd_reproduce_token_shift)
    kn = rep_sub.add_parser("knowledge", help="Gekhman et al. (2024) knowledge levels and fine-tuning; "
                                              "knowledge hidden by alignment, read out and reactivated")
    kn.add_argument("--pair", default="organism:knowledge",
                    help="an organism pair aligned to hide a relation (organism:<size>:hide)")
    kn.add_argument("--out", default=None, help="output folder (default out/knowledge/<pair>)")
    kn.add_argument("--seed", type=int, default=0)
    kn.add_argument("--seeds", default=None, help="several seeds, e.g. 0-2 (the organism is rebuilt per seed)")
    kn.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="override any KnowledgeConfig field, e.g. --set ft_epochs=10")
    kn.add_argument("--no-figures", action="store_true")
    kn.set_defaults(func=cmd_reproduce_knowledge)

    fg = sub.add_parser("figures", help="run figures/*.py: the README's generated blocks, from committed reports")
    fg.add_argument("--dir", default="figures", help="folder of figure scripts")
    fg.add_argument("--out", default=None, help="output folder (default <dir>/out)")
    fg.add_argument("--only", nargs="*", default=None, help="names of scripts to run")
    fg.set_defaults(func=cmd_figures)

    args = parser.parse_args(argv)
    _quiet_libraries()
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
