"""The knowledge report: its dataclass, its JSON and markdown, and its figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ... import stats
from ...findings import Finding, findings_table
from ...knowledge import CATEGORIES, Curve, KnowledgeLevels
from ..report import write_report
from .config import GEKHMAN_ET_AL, KnowledgeConfig
from .hidden import Hidden, HideSearch, Intervention, Readout, RelearnMeta
from .per_fact import HIDDEN_KNOWN, NEVER_HIDDEN, PerFact
from .steps import FinetuneMeta, MixMeta, PhrasingRecall, best_epoch, early_stopped

#: The report's figures, by name.
FIGURE_NAMES = ("knowledge_levels", "knowledge_finetune", "knowledge_readout", "knowledge_reactivation",
                "knowledge_relearning", "knowledge_unknown_share")
#: Figures drawn only where their part ran (figure → the report field that holds it).
OPTIONAL_FIGURES = {"knowledge_unknown_share": "mixes"}


@dataclass
class RunMeta:
    """The run: the ``pair`` measured and its wall-clock time in seconds (``total_s``, to 0.1 s)."""

    pair: str
    total_s: float


@dataclass
class MixRow:
    """One mix of Gekhman et al.'s design (``name``, e.g. ``"25% Unknown"``; ``share`` of Unknown
    facts, 0 to 1): test accuracy after the last epoch (``last``) and early-stopped on dev
    (``early``), each with its 95% CI over test facts, and the ``best_epoch`` chosen on dev."""

    name: str
    share: float
    best_epoch: int
    last: stats.Estimate
    early: stats.Estimate

    def to_dict(self) -> dict:
        return {"name": self.name, "share": self.share, "best_epoch": self.best_epoch,
                "last": self.last.to_dict(), "early": self.early.to_dict()}


@dataclass
class KnowledgeReport:
    """One seed's knowledge reproduction: every part's typed result, the findings, and the per-fact
    record they were tested on."""

    config: KnowledgeConfig
    levels: KnowledgeLevels
    transfer: list[PhrasingRecall]  # zero-shot recall by paraphrases seen and phrasing seen
    finetune: dict[str, Curve]  # per category trained on
    finetune_meta: FinetuneMeta
    hidden: Hidden
    readout: Readout
    reactivation: list[Intervention]
    relearning: Curve
    relearn_meta: RelearnMeta
    meta: RunMeta
    mixes: dict[str, Curve] = field(default_factory=dict)  # Gekhman's design: per share of Unknown
    mix_meta: MixMeta | None = None  # with cfg.shares
    hide_search: HideSearch | None = None  # with cfg.hide_recipes: the recipes tried on dev entities, the one chosen
    findings: list[Finding] = field(default_factory=list)
    per_fact: PerFact = field(default_factory=PerFact)  # the paired unit: one entry per fact

    def figures(self) -> dict:
        from ... import plot

        figs = {"knowledge_levels": plot.knowledge_levels(self.levels),
                "knowledge_finetune": plot.finetune_curves(self.finetune),
                "knowledge_readout": plot.hidden_readout(self.readout),
                "knowledge_reactivation": plot.reactivation(self.reactivation, self.hidden),
                "knowledge_relearning": plot.relearning(self.relearning)}
        if self.mixes:
            figs["knowledge_unknown_share"] = plot.unknown_share(self.mix_rows(), self.mix_meta.size)
        assert set(figs) <= set(FIGURE_NAMES)
        return figs

    def mix_rows(self) -> list[MixRow]:
        """Per share of Unknown facts: test accuracy after the last epoch and early-stopped, with
        95% CIs over test facts, and the best epoch."""
        return [MixRow(name=name, share=float(name.split("%")[0]) / 100, best_epoch=best_epoch(cur),
                       last=stats.mean(self.per_fact.mixes[name].last, seed=self.config.seed),
                       early=stats.mean(self.per_fact.mixes[name].early, seed=self.config.seed))
                for name, cur in self.mixes.items()]


def to_json(r: KnowledgeReport) -> dict:
    lv = r.levels
    return {
        "config": asdict(r.config), "pair": r.meta.pair, "timings": {"total_s": r.meta.total_s},
        "levels": {"shares": lv.shares(), "by_frequency": lv.by("frequency"),
                   "by_paraphrases": lv.by("n_paraphrases"), "n_facts": len(lv.facts),
                   "per_fact": [{**f, "p_greedy": float(pg), "p_sample": float(ps), "category": c}
                                for f, pg, ps, c in zip(lv.facts, lv.p_greedy, lv.p_sample, lv.category)]},
        "paraphrase_transfer": {row.key: asdict(row) for row in r.transfer},
        "finetune": {c: asdict(v) for c, v in r.finetune.items()}, "finetune_meta": asdict(r.finetune_meta),
        "gekhman_et_al": GEKHMAN_ET_AL,
        "hidden": asdict(r.hidden), "readout": asdict(r.readout), "reactivation": [asdict(x) for x in r.reactivation],
        "relearning": asdict(r.relearning), "relearn_meta": r.relearn_meta.to_dict(),
        "mixes": {k: asdict(v) for k, v in r.mixes.items()},
        "mix_meta": asdict(r.mix_meta) if r.mix_meta is not None else {},
        "mix_rows": [row.to_dict() for row in r.mix_rows()] if r.mixes else [],
        "hide_search": asdict(r.hide_search) if r.hide_search is not None else {},
        "findings": [f.to_dict() for f in r.findings],
        "per_fact": r.per_fact.to_dict(),
    }


def to_markdown(r: KnowledgeReport) -> str:
    lv = r.levels
    L = [f"# Knowledge: {r.meta.pair} (seed {r.config.seed})", "",
         "## Findings", "",
         "Each fact counts once; the same facts measured twice are compared paired (sign-flip permutation "
         "test, bootstrap CI over facts), disjoint sets of facts by a permutation test; p-values are "
         "Holm-corrected across the claims.", "",
         findings_table(r.findings, scorers=["any"], paper="the paper").replace("| any |", "| criterion met |")]
    L += ["", f"## Knowledge levels of the base ({len(lv.facts)} facts; {lv.n_prompts} four-shot prompts "
          f"greedy, {lv.n_samples} samples at T = {lv.temperature})", "",
          "| pretraining frequency | n | " + " | ".join(CATEGORIES) + " |", "|---|---|" + "---|" * len(CATEGORIES)]
    for k, v in lv.by("frequency").items():
        L.append(f"| {k} | {v['n']} | " + " | ".join(f"{v[c]:.2f}" for c in CATEGORIES) + " |")
    sh = lv.shares()
    L.append("| all | " + str(len(lv.facts)) + " | " + " | ".join(f"{sh[c]:.2f}" for c in CATEGORIES) + " |")
    L += ["", "Zero-shot recall of facts seen ≥ 8 times, by the number of phrasings seen in pretraining "
          "and whether the asking phrasing was one of them:", "",
          "| paraphrases seen | asking phrasing | recall | n |", "|---|---|---|---|"]
    for v in r.transfer:
        L.append(f"| {v.n_paraphrases} | {'seen' if v.phrasing_seen else 'unseen'} | {v.acc:.2f} | {v.n} |")
    fm = r.finetune_meta
    L += ["", f"## Fine-tuning on one category (closed-book QA, {fm.size} facts each, "
          f"{r.config.ft_epochs} epochs; test: {fm.n_test} held-out facts)", "",
          "| trained on | test acc. early-stopped (epoch, by dev) | test acc. after the last epoch | "
          "train fit after the last epoch | Gekhman et al. (early / conv., %) |", "|---|---|---|---|---|"]
    for c, cur in r.finetune.items():
        g = GEKHMAN_ET_AL[c]
        L.append(f"| {c} | {early_stopped(cur):.2f} ({best_epoch(cur)}) | {cur.acc['test'][-1]:.2f} | "
                 f"{cur.acc['train'][-1]:.2f} | {g[0]:.1f} / {g[1]:.1f} |")
    if fm.skipped:
        L.append(f"\nSkipped (too few facts): {', '.join(fm.skipped)}.")
    if r.mixes:
        m = r.mix_meta
        L += ["", f"## Gekhman et al.'s design: {m.size} fine-tuning facts, a varied share of them Unknown "
              f"(the rest known; pools of {m.n_unknown_pool} Unknown and {m.n_known_pool} known facts)", "",
              "| share Unknown | test acc. after the last epoch [95% CI] | early-stopped (epoch, by dev) | "
              "train fit on known / Unknown facts, last epoch |", "|---|---|---|---|"]
        for row in r.mix_rows():
            cur = r.mixes[row.name]
            fit = " / ".join(f"{cur.acc[k][-1]:.2f}" if k in cur.acc and not np.isnan(cur.acc[k][-1]) else "—"
                             for k in ("train known", "train unknown"))
            a, e = row.last, row.early
            L.append(f"| {row.name.split()[0]} | {a.value:.3f} [{a.lo:.3f}, {a.hi:.3f}] | "
                     f"{e.value:.3f} ({row.best_epoch}) | {fit} |")
    if r.hide_search is not None:
        hs = r.hide_search
        L += ["", f"## The hiding recipe, chosen on {hs.n_dev_entities} dev entities (bar: answers ≤ "
              f"{hs.hide_bar} of the hidden facts the base knew, n={hs.n_dev_hidden}; keeps ≥ {hs.keep_bar} "
              f"of the never-hidden ones, n={hs.n_dev_kept}); everything below is measured on the other held-out "
              "entities", "", "| lr | steps | replayed documents | hidden answered | kept | meets the bar | chosen |",
              "|---|---|---|---|---|---|---|"]
        for i, t in enumerate(hs.tried):
            L.append(f"| {t.lr:g} | {t.steps} | {t.n_replay} | {t.hidden_answered:.2f} | {t.kept:.2f} | "
                     f"{'yes' if t.meets_bar else 'no'} | {'**chosen**' if i == hs.chosen else ''} |")
        if not hs.met_bar:
            L.append("\nNo recipe met the bar; the one with the largest kept − hidden was taken.")
    h, ro = r.hidden, r.readout
    L += ["", f"## Hidden knowledge: relation `{h.relation}` answered \"{h.refusal}\" "
          f"({h.n_train_entities} training entities; measured on {h.n_heldout_entities} held-out ones)", "",
          "| facts | n | base | aligned | aligned says \"" + h.refusal + "\" |", "|---|---|---|---|---|"]
    for name, v in h.sets.items():
        L.append(f"| {name} | {v.n} | {v.base:.2f} | {v.aligned:.2f} | {v.aligned_refuses:.2f} |")
    n_layers = len(next(iter(ro.lens.values())).acc)
    L += ["", f"Readout over the {ro.n_candidates} distinct first tokens of the "
          f"{len(ro.candidates)} possible answers (chance "
          f"{ro.chance:.2f}), by layer (last = the model's own output):", "",
          "| readout | facts | " + " | ".join(f"L{i}" for i in range(n_layers)) + " |",
          "|---|---|" + "---|" * n_layers]
    for kind, rows in (("lens", ro.lens), ("probe", ro.probe)):
        for k, v in rows.items():
            L.append(f"| {kind} | {k} (n={v.n}) | " + " | ".join(f"{a:.2f}" for a in v.acc) + " |")
    L += ["", "## Reactivation (aligned model; chosen on training entities, measured on held-out ones)", "",
          "| intervention | hidden facts | control | never-hidden facts | control | detail |", "|---|---|---|---|---|---|",
          f"| none | {h.sets[HIDDEN_KNOWN].aligned:.2f} | | {h.sets[NEVER_HIDDEN].aligned:.2f} | | |"]
    for row in r.reactivation:
        L.append(f"| {row.method} | {row.hidden:.2f} | {row.hidden_control:.2f} | {row.kept:.2f} | "
                 f"{row.kept_control:.2f} | {row.detail} |")
    c = r.relearning
    L += ["", f"## Relearning ({r.relearn_meta.n_train} training-entity facts, lr {r.config.relearn_lr:g}, "
          f"batch {r.config.relearn_batch})", "", "| step | " + " | ".join(c.acc) + " |", "|---|" + "---|" * len(c.acc)]
    for i, x in enumerate(c.x):
        L.append(f"| {x} | " + " | ".join(f"{c.acc[k][i]:.2f}" for k in c.acc) + " |")
    return "\n".join(L) + "\n"


def write(r: KnowledgeReport, out_dir: str | Path, *, figures: bool = True) -> list[Path]:

    return write_report(out_dir, "knowledge", to_json(r), to_markdown(r), figures=r.figures if figures else None,
                        title=f"Knowledge: {r.meta.pair} (seed {r.config.seed})", config=asdict(r.config))
