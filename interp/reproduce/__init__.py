"""Reproductions of published claims, each a module of typed steps with a report that writes
itself: :mod:`~interp.reproduce.toxicity` (Lee et al., 2024), :mod:`~interp.reproduce.knowledge`
(Gekhman et al., 2024, and knowledge hidden by alignment), :mod:`~interp.reproduce.token_shift`
(Lin et al., 2023; Hewitt et al., 2024), :mod:`~interp.reproduce.instruction` (instruction
alignment on the organism: token shift by type and position, LIMA, response tuning, rules,
URIAL, self-alignment, what alignment cannot add), :mod:`~interp.reproduce.pretraining` (what the
pretraining data does: repetition, deduplication, rephrasing for extraction)."""

from . import instruction, knowledge, pretraining, token_shift, toxicity
from .report import write_report

__all__ = ["instruction", "knowledge", "pretraining", "token_shift", "toxicity", "write_report"]
