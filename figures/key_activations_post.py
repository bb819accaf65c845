"""Figure `key_activations_post`: activations (what multiplies the value vectors) of the located neurons, base vs aligned."""

import os

# ---- config -------------------------------------------------------------------------------
PAIR = os.environ.get("INTERP_FIGURE_PAIR", "organism:small")
SEED = 0
NAME = "key_activations_post"
# -------------------------------------------------------------------------------------------

from interp import plot  # noqa: E402
from interp.reproduce.toxicity import cached_report  # noqa: E402


def main(out_dir: str = os.path.join(os.path.dirname(__file__), "out")):
    r = cached_report(PAIR, seed=SEED)
    fig = plot.key_activations(r.keys, "post")
    return plot.save(fig, os.path.join(out_dir, NAME))


if __name__ == "__main__":
    print(*main(), sep="\n")
