"""Figure scripts and notebooks run end to end on the tiny organism (so they never rot)."""

import math
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_blocks_are_what_the_committed_reports_say():
    """`interp figures` renders the generated blocks of the README and of the result pages in
    docs/ from committed JSON only: each document as committed must hold exactly what they render
    (no hand-edited number)."""
    import re
    import runpy

    readme = runpy.run_path(str(ROOT / "figures" / "readme.py"))
    blocks, documents = readme["blocks"](), readme["DOCUMENTS"]
    assert set(blocks) == {"glance", "reproduction", "where-dpo", "knowledge", "knowledge-facts", "instruction",
                           "pretraining", "real", "diffing"}
    for marker, body in blocks.items():
        text = (ROOT / documents[marker]).read_text()
        m = re.search(rf"<!-- {marker}:start -->\n(.*?)\n<!-- {marker}:end -->", text, flags=re.S)
        assert m is not None, (documents[marker], marker)
        assert m.group(1) == body, f"{documents[marker]}: block {marker!r} differs from what the committed reports render"
    # Every relative link of the README and of docs/ names a file that exists.
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", doc.read_text()):
            if not re.match(r"^[a-z]+:", target):
                assert (doc.parent / target).exists(), f"{doc.relative_to(ROOT)} links {target}, which does not exist"


def test_committed_reports_carry_every_figure():
    """Seed 0's committed folder holds a PNG of every figure its report has, and nothing stale
    (the other seeds commit their JSON and markdown; their figures regenerate with the command)."""
    import json

    from interp.reproduce import knowledge as K
    from interp.reproduce.toxicity import FIGURE_NAMES

    folders = [ROOT / "figures" / "out" / "organism-small"]  # and every committed real reproduction
    folders += [f for f in sorted((ROOT / "figures" / "out" / "real").glob("*")) if (f / "toxicity_seeds.json").exists()]
    for folder in folders:
        summary = json.loads((folder / "toxicity_seeds.json").read_text())
        assert (folder / "seeds_forest.png").exists()
        s = summary["seeds"][0]
        rep = json.loads((folder / f"seed-{s}" / "toxicity.json").read_text())
        want = set(FIGURE_NAMES) | {f"dose_{name}" for name in rep["dev_sweeps"]}
        want |= {f"locator_{n}" for n in rep.get("locators", {}) if n not in ("primary", "given")}
        want |= {"k_sweep"} if "k_sweep" in rep else set()
        want |= {"neuron_groups"} if "neuron_groups" in rep else set()
        want |= {"group_edits"} if rep.get("group_edits", {}).get("groups") else set()
        want |= {"pareto"} if "pareto" in rep else set()
        if not rep["config"]["per_layer_location"]:
            want.discard("change_location_layers")
        pngs = {p.stem for p in (folder / f"seed-{s}").glob("*.png")}
        assert pngs == want, (folder, want - pngs, pngs - want)
    kfolder = ROOT / "figures" / "out" / "organism-knowledge"
    ksummary = json.loads((kfolder / "knowledge_seeds.json").read_text())
    assert (kfolder / "seeds_forest.png").exists()
    s0 = ksummary["seeds"][0]
    krep = json.loads((kfolder / f"seed-{s0}" / "knowledge.json").read_text())
    names = {n for n in K.FIGURE_NAMES if krep.get(K.OPTIONAL_FIGURES.get(n, "config"))}
    assert {p.stem for p in (kfolder / f"seed-{s0}").glob("*.png")} == names
    from interp.reproduce import instruction as N

    ifolder = ROOT / "figures" / "out" / "organism-instruct"
    isummary = json.loads((ifolder / "instruction_seeds.json").read_text())
    assert (ifolder / "seeds_forest.png").exists()
    s0 = isummary["seeds"][0]
    assert {p.stem for p in (ifolder / f"seed-{s0}").glob("*.png")} == set(N.FIGURE_NAMES)
    ffolder = ROOT / "figures" / "out" / "organism-facts"
    fsummary = json.loads((ffolder / "knowledge_seeds.json").read_text())
    s0 = fsummary["seeds"][0]
    frep = json.loads((ffolder / f"seed-{s0}" / "knowledge.json").read_text())
    assert frep["mixes"] and frep["hide_search"]["tried"]  # the powered parts ran
    assert {p.stem for p in (ffolder / f"seed-{s0}").glob("*.png")} == set(K.FIGURE_NAMES)
    from interp.reproduce import pretraining as PT

    pfolder = ROOT / "figures" / "out" / "organism-pretraining"
    psummary = json.loads((pfolder / "pretraining_seeds.json").read_text())
    assert (pfolder / "seeds_forest.png").exists() and len(psummary["seeds"]) >= 3
    s0 = psummary["seeds"][0]
    assert {p.stem for p in (pfolder / f"seed-{s0}").glob("*.png")} == set(PT.FIGURE_NAMES)
    # Nothing of the earlier layout lingers at the top of figures/out.
    assert not list((ROOT / "figures" / "out").glob("*.png"))


def test_each_notebook_is_what_its_script_renders():
    """The notebooks' source is the jupytext percent script beside each (linted by ruff); the
    stored .ipynb must be exactly what `python notebooks/_make_notebooks.py` renders from it."""
    import runpy

    make = runpy.run_path(str(ROOT / "notebooks" / "_make_notebooks.py"))
    scripts = make["scripts"]()
    assert [p.stem for p in scripts] == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    for script in scripts:
        assert script.with_suffix(".ipynb").read_text() == make["render"](script), (
            f"{script.name} changed: run python notebooks/_make_notebooks.py")


@pytest.mark.parametrize("name", ["01_quickstart", "02_toxicity_mechanism", "03_token_shift", "04_knowledge",
                                  "05_instruction", "06_pretraining", "07_diffing"])
def test_notebook_executes(name, use_organism_cache, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("INTERP_NOTEBOOK_PAIR", "organism:tiny")
    monkeypatch.setenv("INTERP_KNOWLEDGE_PAIR", "organism:tiny:hide")
    monkeypatch.setenv("INTERP_INSTRUCT_PAIR", "organism:tiny:instruct")
    monkeypatch.setenv("INTERP_PRETRAINING_SIZE", "tiny")
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "stored with outputs"
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert os.environ["INTERP_NOTEBOOK_PAIR"] == "organism:tiny"


def test_cosine_histogram_draws_every_neuron_once_per_layer():
    """Shallow models: a step line per layer; deep ones: a layer × cosine heatmap. Either way
    the counts drawn add up to every neuron of every layer."""
    from types import SimpleNamespace

    import numpy as np
    import torch

    from interp.plot import cosine_histogram

    g = torch.Generator().manual_seed(0)
    for n_layers, kind in ((4, "scatter"), (30, "heatmap")):
        cos = torch.randn(n_layers, 200, generator=g) * 0.1
        fig = cosine_histogram(SimpleNamespace(cosines=cos))
        assert {t.type for t in fig.data} == {kind}
        if kind == "scatter":
            assert len(fig.data) == n_layers
            assert all(sum(t.customdata) == 200 for t in fig.data)
        else:
            counts = np.asarray(fig.data[0].customdata)
            assert counts.shape[0] == n_layers and (counts.sum(1) == 200).all()


def test_the_readmes_step_by_step_block_runs(use_organism_cache):
    """The README's step-by-step block, run as written on the tiny organism."""
    import re

    import interp

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    step = next(b for b in blocks if "pair.prompts" in b)
    ns = {"interp": interp, "pair": interp.load_pair("organism:tiny")}
    exec(step, ns)
    assert ns["probe"].n_test > 0 and len(ns["ranking"].top) == 10


def test_a_single_declared_dose_is_drawn_as_three_arms_in_two_panels():
    """One dose (Lee et al.'s ×10): no dose axis with one tick, but no intervention, the
    intervention and its control, toxicity ± s.e. beside perplexity; a sweep keeps its dose axis."""
    from interp import plot
    from interp.steer import DosePoint, DoseResponse

    bare = DosePoint(0, 0.01, 0.005, 120, 59.4)
    one = DoseResponse("k", "keys ×10", [DosePoint(10, 0.04, 0.02, 120, 61.8)], [DosePoint(10, 0.03, 0.01, 120, 60.8)],
                       bare, dose_label="scale factor")
    fig = plot.dose_response(one)
    tox = [t for t in fig.data if t.xaxis == "x"]
    ppl = [t for t in fig.data if t.xaxis == "x2"]
    assert [t.x[0] for t in tox] == ["no intervention", "intervention<br>at 10", "random control<br>at 10"]
    assert [t.y[0] for t in tox] == [0.01, 0.04, 0.03] and [t.error_y.array[0] for t in tox] == [0.005, 0.02, 0.01]
    assert [t.y[0] for t in ppl] == [59.4, 61.8, 60.8]
    sweep = DoseResponse("k", "keys", [DosePoint(d, 0.02 * d, 0.01, 120, 60.0) for d in (1, 3, 10)], None, bare)
    assert [list(t.x) for t in plot.dose_response(sweep).data][0] == [1, 3, 10]


def test_log_perplexity_ticks_stay_few_and_readable():
    """A dose that wrecks the model (Gemma-3: perplexity 50 → 1e21) once drew ~60 overlapping
    1-2-5 tick labels; beyond three decades the axis takes at most 8 powers of ten."""
    from interp.plot import log_ticks

    vals, text = log_ticks(50.0, 2e21)
    assert len(vals) <= 8 and vals[0] <= 50 and vals[-1] >= 1e20 and text[-1].startswith("1e")
    assert all(math.log10(v) == round(math.log10(v)) for v in vals)
    vals, text = log_ticks(20.0, 900.0)
    assert vals == [20, 50, 100, 200, 500, 1000] and text[-1] == "1,000"


def test_weight_change_names_tensors_only_where_they_can_be_read():
    from interp import plot
    from interp.diff import WeightDiff

    def wd(n):
        return WeightDiff([{"name": f"model.layers.{i}.w", "group": "attn" if i % 2 else "norm", "layer": i,
                            "cosine": 1.0, "rel_change": 1e-4, "numel": 10} for i in range(n)])

    assert plot.weight_change(wd(12)).layout.xaxis.showticklabels is not False
    big = plot.weight_change(wd(200))
    assert big.layout.xaxis.showticklabels is False and "hover" in big.layout.xaxis.title.text
    assert sum(len(t.x) for t in big.data) == 200  # every tensor still drawn


def _guide_blocks(page: Path) -> dict[str, str]:
    """The ```python file=NAME blocks of a guide, by file name."""
    import re

    return {m.group(1): m.group(2) for m in re.finditer(r"```python file=(\S+)\n(.*?)```", page.read_text(), re.S)}


def test_the_reproduction_guide_runs_as_written(use_organism_cache, tmp_path, monkeypatch, capsys):
    """docs/adding-a-reproduction.md end to end: its module and its registration copied out of the
    page, run from the command line over two seeds (one report each, the summary across them);
    run again, both seeds are read back; with the module edited, both run again, saying why; a
    bad config is refused naming its flag."""
    import json
    import sys

    from interp.cli import main
    from interp.reproduce import REPRODUCTIONS

    blocks = _guide_blocks(Path(__file__).parents[1] / "docs" / "adding-a-reproduction.md")
    assert set(blocks) == {"alignment_drop.py", "register.py"}
    (tmp_path / "alignment_drop.py").write_text(blocks["alignment_drop.py"])
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        exec(compile(blocks["register.py"], "register.py", "exec"), {})
        out = tmp_path / "out"
        argv = ["reproduce", "alignment-drop", "--seeds", "0-1", "--n-prompts", "24", "--out", str(out), "--no-figures"]
        assert main(argv) == 0
        for s in (0, 1):
            rep = json.loads((out / f"seed-{s}" / "alignment_drop.json").read_text())
            assert rep["config"]["seed"] == s and rep["config"]["n_prompts"] == 24
            (f,) = rep["findings"]
            assert f["key"] == "alignment_drop" and set(f["holds_by"]) == {"alt-profanity-check", "better-profanity"}
            assert f["effect"]["n"] == 24 and f["p_holm"] is not None
        summary = json.loads((out / "alignment_drop_seeds.json").read_text())
        assert summary["seeds"] == [0, 1] and summary["claims"][0]["key"] == "alignment_drop"
        assert "[1](seed-1/alignment_drop.md)" in (out / "alignment_drop_seeds.md").read_text()
        capsys.readouterr()
        assert main(argv) == 0
        assert capsys.readouterr().out.count("read back from") == 2
        assert rep["reproduction_code"] == REPRODUCTIONS["alignment-drop"].code()
        (tmp_path / "alignment_drop.py").write_text(blocks["alignment_drop.py"] + "\n# edited\n")
        assert main(argv) == 0
        said = capsys.readouterr().out
        assert said.count("was written by other code") == 2 and "read back from" not in said
        assert main(["reproduce", "alignment-drop", "--n-prompts", "5", "--out", str(tmp_path / "bad")]) == 2
        assert "--n-prompts" in capsys.readouterr().err
    finally:
        REPRODUCTIONS.pop("alignment-drop", None)
        sys.modules.pop("alignment_drop", None)


def test_the_diffing_guide_runs_as_written(tokenizer, tmp_path, monkeypatch):
    """docs/adding-a-diffing-method.md: its method, plot and tests copied out of the page; the
    guide's own test (a planted change found at its layer, a null pair giving none) passes."""
    import importlib

    from .conftest import make_gpt2

    blocks = _guide_blocks(Path(__file__).parents[1] / "docs" / "adding-a-diffing-method.md")
    assert set(blocks) == {"layer_change.py", "plot_layer_change.py", "test_layer_change.py"}
    for name, code in blocks.items():
        (tmp_path / name).write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        importlib.import_module("test_layer_change").check(make_gpt2, tokenizer)
    finally:
        import sys

        for name in blocks:
            sys.modules.pop(name.removesuffix(".py"), None)
