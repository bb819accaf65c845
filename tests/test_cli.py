import subprocess
import sys

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
