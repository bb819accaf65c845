"""Figure `readme`: the generated blocks of the README and of the result pages under ``docs/``, from committed reports.

Every block is rendered from committed JSON — ``interp reproduce toxicity`` and ``interp
reproduce knowledge``, ``instruction`` and ``pretraining`` over seeds (``TOXICITY_DIR``,
``KNOWLEDGE_DIR``, …: each summary and seed 0's report), the real-weight reports
(``REAL_REPORTS``) — and never re-runs anything, so every number in the documentation traces
to a committed file. Each block sits between its ``<!-- marker:start/end -->`` lines in the
document :data:`DOCUMENTS` names; the README holds the ``glance`` block, one line per
reproduction linking its page.
"""

import json
import os
import re

# ---- config -------------------------------------------------------------------------------
HERE = os.path.dirname(__file__)
ROOT = os.path.normpath(os.path.join(HERE, ".."))
README = os.path.join(ROOT, "README.md")
#: marker -> the document (relative to the repository) holding that generated block.
DOCUMENTS = {"glance": "README.md", "reproduction": "docs/results/toxicity.md",
             "knowledge": "docs/results/knowledge.md", "knowledge-facts": "docs/results/knowledge.md",
             "instruction": "docs/results/instruction.md", "pretraining": "docs/results/pretraining.md",
             "real": "docs/results/real-weights.md", "where-dpo": "README.md", "diffing": "docs/results/diffing.md",
             "diffing-hide": "docs/results/diffing.md"}
TOXICITY_DIR = os.path.join(HERE, "out", "organism-small")  # interp reproduce toxicity --seeds 0-4 --out …
GALLERY = ["effects", "locator_probe", "k_sweep", "value_vectors", "key_activations_post", "residual_offset", "change_location",
           "neuron_groups", "group_edits", "dose_lee_scale_keys"]
DIFFING_DIR = os.path.join(HERE, "out", "organism-small-diffing")  # interp reproduce diffing --seeds 0-4 --out …
DIFFING_HIDE_DIR = os.path.join(HERE, "out", "organism-knowledge-diffing")  # … --pair organism:knowledge:hide
DIFFING_GALLERY = ["adl_identification", "adl_steering", "crosscoder_latents"]
KNOWLEDGE_DIR = os.path.join(HERE, "out", "organism-knowledge")  # interp reproduce knowledge --seeds …
FACTS_DIR = os.path.join(HERE, "out", "organism-facts")  # … --pair organism:facts: the same claims at power
INSTRUCT_DIR = os.path.join(HERE, "out", "organism-instruct")  # interp reproduce instruction --seeds …
INSTRUCT_GALLERY = ["instruction_shift_by_type", "instruction_kl_profile", "instruction_arms"]
#: label -> the report's folder under figures/ (``interp reproduce toxicity --pair P --out out/real/P``
#: writes seed 0's report to ``seed-0``).
REAL_REPORTS = {"SmolLM2-135M-Instruct vs its DPO twin": "out/real/smollm2/seed-0",
                "Gemma-3-270m vs its DPO twin": "out/real/gemma3/seed-0"}
#: Reports of superseded twins, run before the verdict protocol: shown as such, below the table.
EARLIER_REPORTS = {"SmolLM2-135M-Instruct vs its earlier DPO twin (10 templates, lr 5e-7)": "out/real/smollm2/earlier"}
KNOWLEDGE_GALLERY = ["knowledge_levels", "knowledge_finetune", "knowledge_unknown_share", "knowledge_readout",
                     "knowledge_reactivation", "knowledge_relearning"]
PRETRAINING_DIR = os.path.join(HERE, "out", "organism-pretraining")  # interp reproduce pretraining --seeds …
PRETRAINING_GALLERY = ["pretraining_repetition", "pretraining_extraction"]
# -------------------------------------------------------------------------------------------

from interp.findings import Finding, SeedSummary, findings_table, format_p, pairs_table, seeds_table  # noqa: E402
from interp.reproduce import layout  # noqa: E402
from interp.reproduce.registry import REPRODUCTIONS  # noqa: E402
from interp.reproduce.toxicity import FAMILY_LABELS, lee_rows  # noqa: E402

#: The document whose block is being rendered: links are written relative to it.
_DOC = [README]


def _rel(path: str) -> str:
    return os.path.relpath(path, os.path.dirname(_DOC[0]))


def _est(e: dict, spec: str = "+.3f") -> str:
    return f"{e['value']:{spec}} [{e['lo']:{spec}}, {e['hi']:{spec}}]"


def _images(out_dir: str, rel: str, seed, names, *, forest: bool = True) -> list[str]:
    """Image lines for a block: the summary's ``seeds_forest`` (with ``forest``) and seed ``seed``'s
    figures ``names``, each only where its PNG is committed."""
    lines = []
    if forest and os.path.exists(os.path.join(out_dir, "seeds_forest.png")):
        lines.append(f"![seeds_forest]({rel}/seeds_forest.png)")
    for name in names:
        if layout.seed_report(out_dir, seed, name, ".png").exists():
            lines.append(f"![{name}]({rel}/{layout.seed_link(seed, name + '.png')})")
    return lines


def arms_table(rep: dict) -> str:
    """Seed 0's test arms under every scorer, from its committed JSON."""
    sc = rep["scorers"]
    p0 = sc[0]
    lines = ["| arm (test prompts) | dose (chosen on) | " + " | ".join(sc)
             + f" | Δ vs control ({p0}) | share of the effect undone ({p0}) | the same by mean score | p (Holm) |",
             "|" + "---|" * (6 + len(sc))]
    for role in ("base", "aligned"):
        m = rep["test"][role]
        lines.append(f"| **{role}** (n = {m['n']}) | | " + " | ".join(f"{m['rate'][s]:.3f}" for s in sc) + " | | | | |")
    for name, arm in rep["arms"].items():
        e, es = (next(x for x in rep["effects"] if x["family"] == name and x["scorer"] == p0 and x["kind"] == k)
                 for k in ("rate", "score"))
        lines.append(f"| {FAMILY_LABELS.get(name, name)} ({arm['description']}) | {arm['dose']:g} ({arm['chosen_on']}) | "
                     + " | ".join(f"{arm['arm']['rate'][s]:.3f}" for s in sc)
                     + f" | {_est(e['vs_control'])} | {_est(e['share'], '+.2f')} | {_est(es['share'], '+.2f')} | {format_p(e['p_holm'])} |")
    return "\n".join(lines)


def block(out_dir: str = TOXICITY_DIR) -> str:
    seeds = json.load(open(os.path.join(out_dir, "toxicity_seeds.json")))
    rep0 = json.load(open(layout.seed_report(out_dir, seeds["seeds"][0], "toxicity")))
    n = len(seeds["seeds"])
    rel = _rel(out_dir)
    summaries = [SeedSummary.from_dict(c) for c in seeds["claims"]]
    lines = [f"Generated by `interp figures` from the committed [`{rel}/toxicity_seeds.json`]({rel}/toxicity_seeds.md) "
             f"(`{seeds['pair']}`, {n} seeds: {', '.join(map(str, seeds['seeds']))}; each seed rebuilds the organism). "
             "A claim holds in a seed only under every scorer and after Holm correction; its criterion "
             "is in the per-seed reports.", "",
             seeds_table(summaries, paper="Lee et al."), "",
             f"Seed {seeds['seeds'][0]} in full ([report]({rel}/{layout.seed_link(seeds['seeds'][0], 'toxicity.md')})): every claim with its criterion,",
             "",
             findings_table([Finding.from_dict(f) for f in rep0["findings"]], scorers=rep0["scorers"], paper="Lee et al."),
             "", "and every arm on the same test prompts (doses frozen on dev before the test run):", "",
             arms_table(rep0), ""]
    lines += _images(out_dir, rel, seeds["seeds"][0], GALLERY)
    return "\n".join(lines)


def _seeds_head(out_dir: str, stem: str, what: str, paper: str = "the paper"):
    """A multi-seed report's summary and seed 0's report, and the block's opening: where it comes
    from, then the per-claim table across seeds. Returns ``(seed 0, its report, rel, lines)``."""
    seeds = json.load(open(os.path.join(out_dir, f"{stem}_seeds.json")))
    s0 = seeds["seeds"][0]
    rep0 = json.load(open(layout.seed_report(out_dir, s0, stem)))
    rel = _rel(out_dir)
    n = len(seeds["seeds"])
    pair = f"`{seeds['pair']}`, " if seeds.get("pair") else ""
    lines = [f"Generated by `interp figures` from the committed [`{rel}/{stem}_seeds.json`]({rel}/{stem}_seeds.md) "
             f"({pair}{n} seed{'s' if n > 1 else ''}: {', '.join(map(str, seeds['seeds']))}; {what}).", "",
             seeds_table([SeedSummary.from_dict(c) for c in seeds["claims"]], paper=paper, any_label="criterion met"), ""]
    return s0, rep0, rel, lines


def knowledge_block(out_dir: str = KNOWLEDGE_DIR) -> str:
    s0, rep0, rel, lines = _seeds_head(out_dir, "knowledge", "each seed rebuilds the organism")
    lines += [f"Seed {s0} in full ([report]({rel}/{layout.seed_link(s0, 'knowledge.md')})):", "",
             findings_table([Finding.from_dict(f) for f in rep0["findings"]], scorers=["any"], paper="the paper",
                            any_label="criterion met"), ""]
    lines += _images(out_dir, rel, s0, KNOWLEDGE_GALLERY)
    return "\n".join(lines)


def diffing_block(out_dir: str = DIFFING_DIR) -> str:
    """Per seed: the lens's and the crosscoder's readouts at the declared layer and their nulls."""
    s0, rep0, rel, lines = _seeds_head(out_dir, "diffing", "each seed rebuilds the organism", paper="Minder et al.")
    seeds = json.load(open(os.path.join(out_dir, "diffing_seeds.json")))["seeds"]
    reps = {s: json.load(open(layout.seed_report(out_dir, s, "diffing"))) for s in seeds}
    scorers = list(rep0["identification"])
    lines += ["Per seed, at the declared layer: the objective's tokens' AUROC in the lens's readout (p against "
              "random token sets / null pairs), the share of base − aligned that steering with the difference "
              "reproduces (first scorer, 95% CI over prompts), and the crosscoder: explained variance (base / "
              "aligned, held-out tokens), its aligned-only and specific latents beside its null pairs', and the "
              "specific latents' readout AUROC.", "",
              "| seed | lens AUROC " + " | lens AUROC ".join(f"({n})" for n in scorers)
              + " | steering share | crosscoder EV | aligned-only (specific) | null pairs: aligned-only (specific) | "
              "crosscoder readout AUROC |", "|---|" + "---|" * (len(scorers) + 5)]
    for s, r in reps.items():
        at = {n: by[str(r["layer"])] for n, by in r["identification"].items()}
        cells = [f"{x['auroc']:.3f} (p {format_p(x['p_sets'])} / {format_p(x['p_nulls'])})" for x in at.values()]
        st = r.get("steering") or {}
        by = st.get("by_scorer") or {}
        share = _est(next(iter(by.values()))["share"], "+.2f") if by else "—"
        cc = r.get("crosscoder")
        if cc:
            ev = cc["trained"]["explained_variance"]
            nulls = "; ".join(f"{d['classes']['aligned-only']} ({d['n_specific']})" for d in cc["nulls"]) or "—"
            ident = "; ".join(f"{n}: {x['auroc']:.3f}" for n, x in cc["identification"].items()) or "—"
            cc_cells = [f"{ev['base']:.3f} / {ev['aligned']:.3f}",
                        f"{cc['classes']['aligned-only']} ({cc['n_specific']})", nulls, ident]
        else:
            cc_cells = ["—"] * 4
        lines.append(f"| [{s}]({rel}/{layout.seed_link(s, 'diffing.md')}) | " + " | ".join(cells + [share] + cc_cells)
                     + " |")
    lines += ["", f"Seed {s0}'s figures:", ""] + _images(out_dir, rel, s0, DIFFING_GALLERY)
    return "\n".join(lines)


def instruction_block(out_dir: str = INSTRUCT_DIR) -> str:
    s0, rep0, rel, lines = _seeds_head(out_dir, "instruction", "each seed rebuilds the organism and every arm",
                                       paper="the literature")
    ts = rep0["token_shift"]
    lines += [f"Seed {s0} in full ([report]({rel}/{layout.seed_link(s0, 'instruction.md')})): "
             f"{ts['share_intervals']['unshifted']['value']:.1%} of the SFT model's tokens are the base's first choice, "
             f"{ts['share_intervals']['marginal']['value']:.1%} its second or third, "
             f"{ts['share_intervals']['shifted']['value']:.1%} lower (Lin et al.: 77.7 / 14.5 / 7.8%).", "",
             "| arm | follows (answers and stops) [95% CI] | stops | correct | SFT's tokens ranked first |",
             "|---|---|---|---|---|"]
    for a in rep0["arms"]:
        f, u = a["follows"], a["unshifted_vs_sft"]
        lines.append(f"| {a['arm']} | {f['value']:.3f} [{f['lo']:.3f}, {f['hi']:.3f}] | {a['stops']:.3f} | "
                     f"{a['correct']:.3f} | {u['value']:.1%} |")
    lines.append("")
    lines += _images(out_dir, rel, s0, INSTRUCT_GALLERY, forest=False)
    return "\n".join(lines).rstrip()


def pretraining_block(out_dir: str = PRETRAINING_DIR) -> str:
    s0, rep0, rel, lines = _seeds_head(out_dir, "pretraining",
                                       "each seed draws new corpora and trains every model from scratch")
    lines += [f"Seed {s0} ([report]({rel}/{layout.seed_link(s0, 'pretraining.md')})), the same budget per arm:", "",
             "| arm | unique documents | validation loss (nats/token) [95% CI] | fact recall, every phrasing [95% CI] |",
             "|---|---|---|---|"]
    for a in rep0["repetition"]:
        lines.append(f"| {a['arm']} | {a['unique_docs']} | {_est(a['val_loss'], '.4f')} | {_est(a['recall'], '.3f')} |")
    lines += ["", "| biographies | stored (biography continued) | probe at the name | QA extraction, held-out people |",
              "|---|---|---|---|"]
    for arm, e in rep0["extraction"].items():
        lines.append(f"| {arm} | {e['stored']:.2f} | {e['probe']:.2f} | {e['extraction']:.2f} |")
    lines.append("")
    lines += _images(out_dir, rel, s0, PRETRAINING_GALLERY)
    return "\n".join(lines)


def lee_protocol_table(data: dict) -> list[str]:
    """A real report's Lee et al. measurement (greedy continuations, mean score) beside theirs:
    the report's own table (:func:`interp.reproduce.toxicity.lee_rows`) from its JSON."""
    lee = data["lee_protocol"]
    return [f"Lee et al.'s own measurement — one greedy continuation of ≤ {lee['max_new_tokens']} tokens per "
            f"test prompt (n = {lee['measurements']['base']['n']}), mean score; share undone = "
            f"(keys ×{lee['factor']:g} − aligned) / (base − aligned), paired by prompt, 95% CI:", "",
            *lee_rows(lee), ""]


def real_block(reports: dict[str, dict]) -> str:
    """The organism and every real pair side by side, one row per claim (each cell from a committed
    report run under the verdict protocol; "—" where a pair has none yet), then each real report's
    own verdict table. Reports written before the protocol (one scorer, no dev/test split, unpaired
    s.e.) are shown as such, never in the side-by-side table."""
    columns: dict[str, list | None] = {}
    ungated = False
    seeds_json = os.path.join(TOXICITY_DIR, "toxicity_seeds.json")
    scorers: list[str] = []
    if os.path.exists(seeds_json):
        seeds = json.load(open(seeds_json))
        summaries = [SeedSummary.from_dict(c) for c in seeds["claims"]]
        columns[f"organism:small ({len(seeds['seeds'])} seeds)"] = summaries
        scorers = sorted({k for m in summaries for k in m.holds_by if k != "any"})
    for label in REAL_REPORTS:
        data = reports.get(label)
        if data is not None and "scorers" not in data:
            raise ValueError(f"{label}: a report before the verdict protocol belongs in EARLIER_REPORTS")
        protocol = data is not None and "scorers" in data
        if protocol and "locators" not in data:  # before the locate gate and Lee's exact edit
            label = f"{label} (before the locate gate†)"
            ungated = True
        columns[label] = [Finding.from_dict(f) for f in data["findings"]] if protocol else None
        if protocol:
            scorers += [s for s in data["scorers"] if s not in scorers]
    lines = ["Each cell: the verdict (a yes holds under every scorer after Holm correction), the headline "
             "effect [95% CI] with its n (a claim read off counts, weights or a cosine against its null: what "
             "was measured, per scorer), for a no the smallest effect the run could detect, and ✓/✗ per "
             f"scorer ({', '.join(scorers)}) in a single report; the organism's cell counts seeds. "
             "\"—\": not yet run under the protocol.", "",
             pairs_table(columns, scorers=scorers, paper="Lee et al."), ""]
    if ungated:
        lines += ["† Reports written before the locate gate and Lee et al.'s exact edit: their probe was trained "
                  "on 315 texts and judged by accuracy, no locator was checked before the claims built on it, and "
                  "their keys ×10 scaled the top-10 keys' whole pre-activation (bias included). Each row shows that "
                  "report's own claim of the same key; read its neuron claims as *not tested* (see above).", ""]
    for label, data in reports.items():
        rel = _rel(os.path.join(HERE, {**REAL_REPORTS, **EARLIER_REPORTS}[label]))
        if "scorers" in data:  # the protocol's report
            lines += [f"**[{label}]({rel}/toxicity.md)**", "",
                      findings_table([Finding.from_dict(f) for f in data["findings"]], scorers=data["scorers"],
                                     paper="Lee et al."), ""]
            if "lee_protocol" in data:
                lines += lee_protocol_table(data)
        else:
            lines += [f"**[{label}]({rel}/toxicity.md)** — *an earlier protocol* (one scorer, the best dose "
                      "picked on the samples it was tested on, binomial s.e. over samples, no nulls): "
                      "kept for the record, not comparable with the verdicts above.", "",
                      "| Lee et al.'s finding | verdict then | measured |", "|---|---|---|"]
            for f in data["findings"]:
                lines.append(f"| {f['claim']} | {'yes' if f['reproduces'] else 'no'} | {f['measured']} |")
            lines.append("")
    return "\n".join(lines).rstrip()


def _replace_block(marker: str, body: str) -> bool:
    path = os.path.join(ROOT, DOCUMENTS[marker])
    text = open(path).read()
    if f"<!-- {marker}:start -->" not in text:
        raise ValueError(f"{DOCUMENTS[marker]} has no <!-- {marker}:start --> … <!-- {marker}:end --> block")
    new = re.sub(rf"(<!-- {marker}:start -->\n).*?(\n<!-- {marker}:end -->)",
                 lambda m: m.group(1) + body + m.group(2), text, flags=re.S)
    if new != text:
        with open(path, "w") as f:
            f.write(new)
    return new != text


def _in(marker: str, render, *args):
    """``render(*args)`` with links relative to ``marker``'s document."""
    _DOC[0] = os.path.join(ROOT, DOCUMENTS[marker])
    try:
        return render(*args)
    finally:
        _DOC[0] = README


#: The glance table's rows: (reproduction, its seeds summary, its page in docs/ — from the registry).
_PAGE = {name: r.page for name, r in REPRODUCTIONS.items()}
GLANCE = [("toxicity (Lee et al. 2024)", os.path.join(TOXICITY_DIR, "toxicity_seeds.json"), _PAGE["toxicity"]),
          ("knowledge (Gekhman et al. 2024; Jain et al. 2023)", os.path.join(KNOWLEDGE_DIR, "knowledge_seeds.json"),
           _PAGE["knowledge"]),
          ("knowledge at power", os.path.join(FACTS_DIR, "knowledge_seeds.json"), _PAGE["knowledge"]),
          ("instruction (Lin et al. 2024; Zhou et al. 2023; Hewitt et al. 2024)",
           os.path.join(INSTRUCT_DIR, "instruction_seeds.json"), _PAGE["instruction"]),
          ("pretraining data (Allen-Zhu & Li 2024)", os.path.join(PRETRAINING_DIR, "pretraining_seeds.json"),
           _PAGE["pretraining"]),
          ("model diffing (Minder et al. 2026)", os.path.join(DIFFING_DIR, "diffing_seeds.json"), _PAGE["diffing"])]
GLANCE += [(f"toxicity on real weights: {label.split(' vs ')[0]}",
            os.path.join(HERE, os.path.dirname(folder), "toxicity_seeds.json"), "docs/results/real-weights.md")
           for label, folder in REAL_REPORTS.items()]


def glance_block() -> str:
    """One row per reproduction: its pair and seeds, and its claims by verdict across seeds
    (every seed / some / none / not tested), linking its page."""
    lines = ["Generated by `interp figures` from the committed seed summaries. A claim holds in a seed only "
             "under every scorer (and after Holm correction where the reproduction corrects); **not tested**: "
             "the step it builds on (a locator, the alignment itself) failed its own check.", "",
             "| reproduction | pair (seeds) | holds in every seed | in some | in none | not tested | longest seed |",
             "|---|---|---|---|---|---|---|"]
    for label, path, page in GLANCE:
        if not os.path.exists(path):
            continue
        d = json.load(open(path))
        groups = {"all": [], "some": [], "none": [], "untested": []}
        for c in map(SeedSummary.from_dict, d["claims"]):
            n, t = len(c.holds), c.n_tested
            g = ("untested" if t == 0 else "all" if c.k == n else "none" if c.k == 0 else "some")
            groups[g].append(c.key.replace("_", " ") + ("" if g in ("all", "untested") else f" {c.k}/{t}"))
        cells = [", ".join(v) or "—" for v in groups.values()]
        seeds = d["seeds"]
        span = f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 2 else ", ".join(map(str, seeds))
        rep0 = layout.seed_report(os.path.dirname(path), seeds[0], "toxicity")
        if rep0.exists() and "locators" not in json.load(open(rep0)):
            label += " — run before the locate gate: read its 'no' on located neurons as not tested"
        pair = f"`{d['pair']}`" if d.get("pair") else "generated corpora"
        lines.append(f"| [{label}]({page}) | {pair} ({span}) | " + " | ".join(cells)
                     + f" | {_longest(os.path.dirname(path), seeds)} |")
    lines += ["", "Longest seed: the largest wall time a seed's report records (`timings.total_s`; its machine in "
              "`machine` where recorded) — a seed that read steps back from the cache took less."]
    return "\n".join(lines)


def _longest(folder: str, seeds) -> str:
    """The largest ``timings.total_s`` among the seeds' reports in ``folder`` (``—`` if none recorded)."""
    times = []
    for s in seeds:
        for f in layout.seed_dir(folder, s).glob("*.json"):
            t = json.load(open(f)).get("timings")
            if isinstance(t, dict) and isinstance(t.get("total_s"), (int, float)):
                times.append(t["total_s"])
    if not times:
        return "—"
    m = max(times) / 60
    return f"{m:.0f} min" if m < 90 else f"{m / 60:.1f} h"


def where_dpo_block(out_dir: str = TOXICITY_DIR) -> str:
    """Where DPO's effect lives on the organism, per seed: the shares of the toxic projection's change
    each part carries (Yang et al.'s split) and what editing the groups does to toxicity — from the
    committed seed reports' ``neuron_groups`` and ``group_edits``."""
    seeds = json.load(open(os.path.join(out_dir, "toxicity_seeds.json")))["seeds"]
    reps = {s: json.load(open(layout.seed_report(out_dir, s, "toxicity"))) for s in seeds}
    have = {s: r for s, r in reps.items() if "neuron_groups" in r}
    rel = _rel(out_dir)
    if not have:
        return (f"The committed organism reports ([`{rel}`]({rel}/toxicity_seeds.md)) predate the neuron groups; "
                "`interp reproduce toxicity --seeds 0-4` writes them.")
    lo, hi = next(iter(have.values()))["neuron_groups"]["yang_et_al_toxic_share"]
    parts = ("toxic, fires less", "located (activation part)", "value vectors", "attention", "rest")
    edited = ("toxic, fires less", "located (activation part)")
    lines = [f"Generated from the committed seed reports of `{seeds_pair(out_dir)}` ([summary]({rel}/toxicity_seeds.md)): "
             "the aligned − base change of the last residual's projection on the probe direction split exactly "
             f"into parts (share of the change, 95% CI over test prompts; Yang et al.: Lee's toxic neurons carry "
             f"{lo:.1%}–{hi:.1%}), and the share of the toxicity drop undone by giving the aligned model the base's "
             "activations in a group (primary scorer).", "",
             "| seed | " + " | ".join(parts) + " | " + " | ".join(f"edit: {g} → undone" for g in edited) + " |",
             "|---|" + "---|" * (len(parts) + len(edited))]
    for s, r in have.items():
        sh = r["neuron_groups"]["shares"]
        ge = r.get("group_edits", {}).get("groups", {})
        sc = r["scorers"][0]
        cells = [_est(sh[p], "+.2f") if p in sh else "—" for p in parts]
        cells += [_est(ge[g]["by_scorer"][sc]["share_undone"], "+.2f") if g in ge else "—" for g in edited]
        lines.append(f"| [{s}]({rel}/{layout.seed_link(s, 'toxicity.md')}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seeds_pair(out_dir: str) -> str:
    return json.load(open(os.path.join(out_dir, "toxicity_seeds.json"))).get("pair") or "?"


def blocks() -> dict[str, str]:
    """Every generated block whose committed reports exist, by marker."""
    out = {"glance": _in("glance", glance_block)}
    if os.path.exists(os.path.join(TOXICITY_DIR, "toxicity_seeds.json")):
        out["reproduction"] = _in("reproduction", block)
        out["where-dpo"] = _in("where-dpo", where_dpo_block)
    if os.path.exists(os.path.join(KNOWLEDGE_DIR, "knowledge_seeds.json")):
        out["knowledge"] = _in("knowledge", knowledge_block)
    if os.path.exists(os.path.join(FACTS_DIR, "knowledge_seeds.json")):
        out["knowledge-facts"] = _in("knowledge-facts", knowledge_block, FACTS_DIR)
    if os.path.exists(os.path.join(INSTRUCT_DIR, "instruction_seeds.json")):
        out["instruction"] = _in("instruction", instruction_block)
    if os.path.exists(os.path.join(PRETRAINING_DIR, "pretraining_seeds.json")):
        out["pretraining"] = _in("pretraining", pretraining_block)
    if os.path.exists(os.path.join(DIFFING_DIR, "diffing_seeds.json")):
        out["diffing"] = _in("diffing", diffing_block)
    if os.path.exists(os.path.join(DIFFING_HIDE_DIR, "diffing_seeds.json")):
        out["diffing-hide"] = _in("diffing-hide", diffing_block, DIFFING_HIDE_DIR)
    paths = {label: os.path.join(HERE, folder, "toxicity.json")
             for label, folder in {**REAL_REPORTS, **EARLIER_REPORTS}.items()}
    reports = {label: json.load(open(p)) for label, p in paths.items() if os.path.exists(p)}
    if reports:
        out["real"] = _in("real", real_block, reports)
    return out


def main(out_dir: str | None = None):
    changed = []
    for marker, body in blocks().items():
        if _replace_block(marker, body):
            changed.append(os.path.join(ROOT, DOCUMENTS[marker]))
    return sorted(set(changed))


if __name__ == "__main__":
    print(*main(), sep="\n")
