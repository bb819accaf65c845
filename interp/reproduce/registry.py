"""Every reproduction by name (:class:`~interp.reproduce.base.Reproduction`): the command line
(``interp reproduce <name>``), the README's at-a-glance table and the docs pages read this one
table. Adding a reproduction: a module with ``config_for``, ``run`` and ``write`` (see
:mod:`interp.reproduce.base`), and one entry here."""

from __future__ import annotations

from .base import Reproduction

REPRODUCTIONS: dict[str, Reproduction] = {r.name: r for r in [
    Reproduction("toxicity", "toxicity", "interp.reproduce.toxicity", "Lee et al.'s claims", "Lee et al.",
             "organism:small", "docs/results/toxicity.md",
             "Each seed rebuilds the organism (corpus, pretraining, preference samples, DPO).",
             summary="Lee et al. (2024): locate, compare, reactivate"),
    Reproduction("token-shift", "token_shift", "interp.reproduce.token_shift", "Token shift", "Lin et al.",
             "organism:small", "docs/results/token-shift.md", "", multi_seed=False,
             summary="Lin et al. (2023) token shift, Hewitt et al. (2024) rules"),
    Reproduction("knowledge", "knowledge", "interp.reproduce.knowledge", "Knowledge claims", "the paper",
                 "organism:knowledge", "docs/results/knowledge.md",
                 "Each seed rebuilds the knowledge organism (corpus, facts, pretraining, the hiding alignment).",
                 description="Gekhman et al. (2024)'s knowledge levels and fine-tuning; knowledge hidden by "
                             "alignment, read out and reactivated (an organism aligned to hide a relation: "
                             "organism:<size>:hide).",
                 summary="Gekhman et al. (2024) knowledge levels and fine-tuning; knowledge hidden by alignment, "
                         "read out and reactivated"),
    Reproduction("instruction", "instruction", "interp.reproduce.instruction", "Instruction-alignment claims",
                 "the literature", "organism:small:instruct", "docs/results/instruction.md",
                 "Each seed rebuilds the instruction organism (corpus, pretraining, every SFT arm).",
                 description="Instruction alignment on the instruction organism (organism:<size>:instruct): token "
                             "shift by type and position (Lin et al. 2023, Qi et al. 2025), and how little it takes "
                             "(LIMA's 1,000 examples, response tuning and rules (Hewitt et al. 2024), URIAL).",
                 summary="instruction alignment on the organism: token shift by type and position; LIMA, response "
                         "tuning, rules, URIAL"),
    Reproduction("pretraining", "pretraining", "interp.reproduce.pretraining", "Pretraining-data claims",
                 "the paper", "small", "docs/results/pretraining.md",
                 "Each seed draws new corpora and trains every model from scratch.", rebuild_pair=False,
                 target_flag="--size",
                 description="What pretraining data does on the organism, trained from scratch per arm and seed: "
                             "repetition at a fixed budget (Muennighoff et al. 2023), deduplication (Lee et al. 2022), "
                             "rephrased biographies for knowledge extraction (Allen-Zhu & Li 2023). --size tiny for a "
                             "quick run.",
                 summary="pretraining data on the organism: repetition, deduplication, rephrased biographies for "
                         "extraction"),
    Reproduction("diffing", "diffing", "interp.reproduce.diffing", "Model-diffing claims", "Minder et al.",
                 "organism:small", "docs/results/diffing.md",
                 "Each seed rebuilds the organism (a real pair keeps its weights and draws other null pairs).",
                 description="Model diffing without a probe: the activation-difference lens (Minder et al. 2026) on "
                             "the pair's neutral text, its logit-lens readout per layer, and whether it reads as the "
                             "alignment's objective against random token sets and null pairs of the same size.",
                 summary="model diffing without a probe: the activation-difference lens and whether it reads as the "
                         "alignment's objective"),
]}


def register(r: Reproduction) -> Reproduction:
    """Add ``r`` to :data:`REPRODUCTIONS` (the command line, ``interp reproduce <name>``, sees it
    from then on); a name already taken is refused."""
    if not isinstance(r, Reproduction):
        raise TypeError(f"register() takes a Reproduction, not {type(r).__name__}")
    if r.name in REPRODUCTIONS:
        raise ValueError(f"a reproduction called {r.name!r} is registered already ({REPRODUCTIONS[r.name].module})")
    REPRODUCTIONS[r.name] = r
    return r


def get(name: str) -> Reproduction:
    """The reproduction called ``name`` (a ``ValueError`` listing the others if there is none)."""
    try:
        return REPRODUCTIONS[name]
    except KeyError:
        raise ValueError(f"no reproduction {name!r}; there are {', '.join(REPRODUCTIONS)}") from None
