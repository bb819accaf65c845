"""Faults a user meets, done to small things on purpose: nothing the user owns is ever deleted,
and a bad output path is refused before any work starts."""

import pytest

from interp.io import MARKER, atomic_dir, check_replaceable


def test_a_folder_of_the_users_is_never_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="did not write"):
        with atomic_dir(thesis) as tmp:
            (tmp / "model").write_text("x")
    assert (thesis / "notes.txt").read_text() == "mine" and not (thesis / "model").exists()
    assert not list(tmp_path.glob(".thesis.*.tmp"))  # nothing half-written left beside it
    with pytest.raises(FileExistsError, match="is a file"):
        check_replaceable(thesis / "notes.txt")


def test_interps_own_folders_are_replaced_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a").write_text("1")
    assert (out / MARKER).exists() and (out / "a").read_text() == "1"
    with atomic_dir(out) as tmp:  # ours (the marker): replaced whole
        (tmp / "b").write_text("2")
    assert not (out / "a").exists() and (out / "b").read_text() == "2"
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_dir(empty) as tmp:
        (tmp / "c").write_text("3")
    assert (empty / "c").exists()


def test_the_cli_refuses_bad_outputs_before_the_work(tmp_path, monkeypatch):
    from interp.cli import main

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "cache"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("x")
    with pytest.raises(FileExistsError, match="did not write"):
        main(["organism", "build", "--size", "tiny", "--out", str(mine)])
    assert not (tmp_path / "cache" / "organism").exists()  # refused before building anything
    a_file = tmp_path / "report.json"
    a_file.write_text("{}")
    for cmd in (["reproduce", "toxicity"], ["reproduce", "token-shift"], ["reproduce", "knowledge"]):
        with pytest.raises(SystemExit, match="is a file"):
            main([*cmd, "--pair", "organism:tiny", "--out", str(a_file)])
    assert a_file.read_text() == "{}"
