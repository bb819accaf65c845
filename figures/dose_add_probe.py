"""Figure `dose_add_probe`: dose–response of adding the probe direction in the aligned model, with a random-direction control."""

import os

# ---- config -------------------------------------------------------------------------------
PAIR = os.environ.get("INTERP_FIGURE_PAIR", "organism:small")
SEED = 0
NAME = "dose_add_probe"
# -------------------------------------------------------------------------------------------

from interp import plot  # noqa: E402
from interp.reproduce.toxicity import cached_report  # noqa: E402


def main(out_dir: str = os.path.join(os.path.dirname(__file__), "out")):
    r = cached_report(PAIR, seed=SEED)
    fig = plot.dose_response(r.sweeps["add_probe"])
    return plot.save(fig, os.path.join(out_dir, NAME))


if __name__ == "__main__":
    print(*main(), sep="\n")
