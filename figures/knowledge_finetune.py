"""Figure `knowledge_finetune`: train fit and held-out accuracy while fine-tuning on facts of one category."""

import os

# ---- config -------------------------------------------------------------------------------
PAIR = os.environ.get("INTERP_KNOWLEDGE_PAIR", "organism:knowledge")
SEED = 0
NAME = "knowledge_finetune"
# -------------------------------------------------------------------------------------------

from interp import plot  # noqa: E402
from interp.reproduce.knowledge import cached_report  # noqa: E402


def main(out_dir: str = os.path.join(os.path.dirname(__file__), "out")):
    r = cached_report(PAIR, seed=SEED)
    fig = plot.finetune_curves(r.finetune)
    return plot.save(fig, os.path.join(out_dir, NAME))


if __name__ == "__main__":
    print(*main(), sep="\n")
