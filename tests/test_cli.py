import os
import subprocess
import sys

import pytest

from interp.cli import main


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "interp.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("organism", "demo"):
        assert command in out.stdout


def test_organism_build_prints_the_metrics_table(use_organism_cache, capsys):
    assert main(["organism", "build", "--size", "tiny", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "toxicity rate" in out and "held-out neutral perplexity" in out and "aligned:" in out


def test_demo_runs_on_the_tiny_pair(use_organism_cache, capsys):
    assert main(["demo", "--size", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "recorded" in out and "layer" in out


def test_pairs_lists_the_catalogue(capsys):
    assert main(["pairs"]) == 0
    out = capsys.readouterr().out
    for name in ("organism:…", "smollm2", "gemma3", "gpt2-medium-dpo", "qwen2.5-0.5b"):
        assert name in out


def _help(*cmd) -> str:
    """``interp <cmd> --help`` as printed (in this process: the command's own entry point, without
    the seconds a fresh interpreter spends importing torch; the installed command is run once by
    ``test_help_lists_the_commands``)."""
    import contextlib
    import io

    from interp.cli import main

    buf, old = io.StringIO(), os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "200"
    try:
        with contextlib.redirect_stdout(buf), pytest.raises(SystemExit) as e:
            main([*cmd, "--help"])
    finally:
        os.environ.pop("COLUMNS") if old is None else os.environ.__setitem__("COLUMNS", old)
    assert e.value.code in (0, None)
    return buf.getvalue()


def test_every_config_field_is_a_flag_of_its_command():
    """The reproduction and twin commands' flags are generated from their config dataclasses:
    a field added to a config is a flag without touching the CLI."""
    import dataclasses

    from interp.real import RealAlignConfig
    from interp.reproduce.knowledge import KnowledgeConfig
    from interp.reproduce.token_shift import TokenShiftConfig
    from interp.reproduce.toxicity import ToxicityConfig

    flag = lambda f: "--" + f.name.replace("_", "-")  # noqa: E731
    for cmd, cls in ((("reproduce", "toxicity"), ToxicityConfig), (("reproduce", "knowledge"), KnowledgeConfig),
                     (("reproduce", "token-shift"), TokenShiftConfig), (("real", "build"), RealAlignConfig)):
        text = _help(*cmd)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.default_factory() if f.default_factory is not dataclasses.MISSING else None):
                assert f"--{f.name}.lr" in text  # nested: the DPO recipe
            elif f.type in ("bool",) or isinstance(f.default, bool):
                assert flag(f) in text and "--no-" + flag(f)[2:] in text, (cmd, f.name)
            else:
                assert flag(f) in text, (cmd, f.name)
    assert "organism:…" in _help()  # the catalogue, in the top-level help


def test_the_pair_picks_its_preset_and_flags_override_it(monkeypatch, capsys, tmp_path):
    """``--pair organism:tiny`` starts from the tiny profile's preset (a table, by the pair's
    registered profile); a flag then overrides one field; a pair outside the catalogue and a
    bad template fail before any work."""

    from interp import cli
    from interp.reproduce import toxicity as T

    seen = {}
    from interp.reproduce import Reproduction

    monkeypatch.setattr(Reproduction, "run_seeds", lambda self, cfg, seeds, **kw: seen.update(cfg=cfg, seeds=seeds, **kw) or {})
    monkeypatch.setattr(Reproduction, "seeds_to_markdown", lambda self, cfg, reports: "")
    monkeypatch.chdir(tmp_path)  # the default --out (out/toxicity/…) lands here
    assert cli.main(["reproduce", "toxicity", "--pair", "organism:tiny@3", "--n-test-prompts", "33",
                     "--scale-doses", "2", "7", "--no-figures", "--seeds", "1,4"]) == 0
    cfg = seen["cfg"]
    assert cfg.n_test_prompts == 33 and cfg.scale_doses == (2.0, 7.0)
    assert cfg.k == T.PRESETS["organism-tiny"]["k"] and cfg.pair == "organism:tiny@3"
    assert seen["seeds"] == [1, 4] and seen["figures"] is False
    assert T.config_for("smollm2").patching is False and T.config_for("organism:small").patching is True
    # --measurements: where the run's arms are kept, for that run only
    from interp.measure import measurements_dir

    monkeypatch.setattr(Reproduction, "run_seeds", lambda self, cfg, seeds, **kw: seen.update(kept=measurements_dir()) or {})
    before = measurements_dir()
    assert cli.main(["reproduce", "toxicity", "--pair", "organism:tiny", "--measurements", "/tmp/kept-x"]) == 0
    assert str(seen["kept"]) == "/tmp/kept-x" and measurements_dir() == before
    assert cli.main(["reproduce", "toxicity", "--pair", "organism-small"]) == 2
    assert "not in the catalogue" in capsys.readouterr().err
    assert cli.main(["reproduce", "token-shift", "--pair", "organism:tiny", "--template", "chat"]) == 2
    assert "format string" in capsys.readouterr().err


def test_real_build_takes_the_recipe_and_the_run_options(monkeypatch, tmp_path):
    """``interp real build`` parses the DPO recipe (``--align.*``) and ``--out``/``--no-progress``
    and hands them to the builder."""
    import interp.real as R
    from interp import cli

    seen = {}

    def fake(name, cfg, *, progress=True, **kw):
        seen.update(name=name, cfg=cfg, progress=progress)
        raise SystemExit(0)

    monkeypatch.setattr(R, "build_real_pair", fake)
    import pytest

    with pytest.raises(SystemExit):
        cli.main(["real", "build", "--model", "gemma3", "--align.lr", "3e-6", "--no-progress", "--out", str(tmp_path)])
    assert seen["name"] == "gemma3" and seen["cfg"].align.lr == 3e-6 and seen["progress"] is False
