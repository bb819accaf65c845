"""Plotting: one function per analysis result, each returning a ``plotly.graph_objects.Figure``.

Functions only draw what an analysis returned (no computation beyond arranging numbers). One
house template (``"interp"``), the Okabe–Ito colour-blind-safe palette, and the same two
colours for base and aligned everywhere. :func:`save` writes interactive HTML and, where a
Chrome/Chromium is available to kaleido, a static PNG.

The package, by concern: :mod:`.theme` (colours, template), :mod:`.mechanism` (locate, compare,
where, reactivate), :mod:`.diffing` (the activation-difference lens, crosscoders), :mod:`.seeds` (claims
across seeds), :mod:`.shift` (token shift, instruction alignment), :mod:`.knowledge`,
:mod:`.pretraining`, :mod:`.export` (HTML and PNG files) and :mod:`.page` (a report's page).
Every figure function is importable from here (``interp.plot.value_vectors``).
"""

from . import export, page, theme
from .diffing import (
    adl_identification,
    adl_norms,
    adl_steering,
    crosscoder_latents,
)
from .export import (
    PNG_TIMEOUT_S,
    png_available,
    save,
    write_pngs,
)
from .knowledge import (
    CATEGORY_COLOURS,
    finetune_curves,
    hidden_readout,
    knowledge_levels,
    reactivation,
    relearning,
    unknown_share,
)
from .mechanism import (
    SCORER_SYMBOLS,
    change_location,
    change_location_layers,
    cosine_histogram,
    dose_response,
    effects,
    group_edits,
    k_sweep,
    key_activations,
    located,
    neuron_cosines,
    neuron_groups,
    pareto,
    residual_offset,
    residual_pca,
    value_vectors,
    weight_change,
)
from .page import (
    PAGE_STYLE,
    report_page,
    save_report,
)
from .pretraining import (
    extraction,
    repetition,
)
from .seeds import (
    seeds_forest,
)
from .shift import (
    SHIFT_COLOURS,
    instruction_arms,
    kl_profile,
    shift_by_type,
    shift_profile,
    shift_shares,
    shifted_tokens,
)
from .theme import (
    ACCENT,
    ALIGNED,
    BASE,
    CONTROL,
    OKABE_ITO,
    ROLE_COLOURS,
    TEMPLATE,
    log_ticks,
)

__all__ = [
    "export", "page", "theme", "ACCENT", "ALIGNED", "BASE", "CATEGORY_COLOURS", "CONTROL", "OKABE_ITO", "PAGE_STYLE", "PNG_TIMEOUT_S", "ROLE_COLOURS", "SCORER_SYMBOLS", "SHIFT_COLOURS", "TEMPLATE", "adl_identification", "adl_steering", "adl_norms", "change_location", "change_location_layers", "cosine_histogram", "crosscoder_latents", "dose_response", "effects", "extraction", "finetune_curves", "group_edits", "hidden_readout", "instruction_arms", "k_sweep", "key_activations", "kl_profile", "knowledge_levels", "located", "log_ticks", "neuron_cosines", "neuron_groups", "pareto", "png_available", "reactivation", "relearning", "repetition", "report_page", "residual_offset", "residual_pca", "save", "save_report", "seeds_forest", "shift_by_type", "shift_profile", "shift_shares", "shifted_tokens", "unknown_share", "value_vectors", "weight_change", "write_pngs",
]
