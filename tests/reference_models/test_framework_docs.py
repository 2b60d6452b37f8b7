"""docs/framework.md promises that its Python blocks run as written, top to bottom, in one session."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "framework.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_tour_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 6, "the tour covers tensor, layers, data, training, checkpoint, export"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for number, block in enumerate(blocks, start=1):
        try:
            exec(compile(block, f"{DOC.name} python block {number}", "exec"), namespace)
        except Exception as error:  # name the block that broke, not just the line
            raise AssertionError(f"python block {number} of {DOC.name} fails: {error!r}") from error
    assert (tmp_path / "runs" / "tour.onnx").is_file() and (tmp_path / "runs" / "tour.npz").is_file()
    assert namespace["history"].last.train_loss < namespace["history"].epochs[0].train_loss
    assert "epoch 3/3" in capsys.readouterr().out


LANGUAGE = REPO_ROOT / "docs" / "language.md"


def test_the_later_lessons_of_the_language_track_run_as_written(tmp_path, monkeypatch):
    """docs/language.md from "The rest of the course" on: encoders, decoding, kernels, amp."""
    later = LANGUAGE.read_text().split("# The rest of the course", 1)[1]
    blocks = python_blocks(later)
    assert len(blocks) >= 10, "attention maps, encoders, positions, BERT, seq2seq, search, ..."
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for number, block in enumerate(blocks, start=1):
        try:
            exec(compile(block, f"{LANGUAGE.name} later python block {number}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"python block {number} of the later lessons of {LANGUAGE.name} "
                                 f"fails: {error!r}") from error
    assert (tmp_path / "attention.png").is_file() and (tmp_path / "ensemble.onnx").is_file()
