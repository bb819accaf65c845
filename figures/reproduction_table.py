"""Figure `reproduction_table`: the Table-2 rows (toxicity ± s.e., perplexity) as a chart."""

import os

# ---- config -------------------------------------------------------------------------------
PAIR = os.environ.get("INTERP_FIGURE_PAIR", "organism:small")
SEED = 0
NAME = "reproduction_table"
# -------------------------------------------------------------------------------------------

from interp import plot  # noqa: E402
from interp.reproduce.toxicity import cached_report  # noqa: E402


def main(out_dir: str = os.path.join(os.path.dirname(__file__), "out")):
    r = cached_report(PAIR, seed=SEED)
    fig = plot.reproduction_table(r.rows, f"Toxicity on {PAIR}: models and interventions")
    return plot.save(fig, os.path.join(out_dir, NAME))


if __name__ == "__main__":
    print(*main(), sep="\n")
