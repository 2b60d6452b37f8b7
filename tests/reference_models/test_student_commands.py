"""``arena leaderboard`` (folds columns to fit the terminal, --json), ``arena submit``'s ranks
("#k of n") and ``arena train --score`` ending with the scorecard as a table."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
from rich.console import Console

from reference_models.cli import main
from reference_models.commands.leaderboard import leaderboard_table
from reference_models.commands.submit import describe_rank, standing
from tests.reference_models.test_cli import synthetic_mnist_dir, train_tiny  # noqa: F401


def board(category: str = "accuracy", task: str = "tinygpt", rows: int = 12) -> dict:
    return {"competition": "course", "track": task, "task": task, "category": category,
            "split": "public", "rows": [
                {"rank": i + 1, "tied": i == 1, "username": f"a-rather-long-username-{i}",
                 "is_baseline": False, "submission_id": 1000 + i, "accuracy": 0.5 - i / 100,
                 "bits_per_char": 1.9 + i / 10, "latency_ms": 12.3456 + i,
                 "normalized_latency_ms": 10.5 + i, "size_bytes": 1_234_567 + i * 1000,
                 "accuracy_per_mb": 0.4051 - i / 1000} for i in range(rows)]}


def rendered(table, width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text().splitlines()


@pytest.mark.parametrize("category", ["accuracy", "speed", "size", "efficiency"])
def test_the_leaderboard_fits_80_columns_folding_columns_but_never_its_own(category):
    lines = rendered(leaderboard_table(board(category), 80), 80)
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "…" not in text  # nothing cut mid-cell: whole columns fold instead
    assert "a-rather-long-username-11" in text and "50.00%" in text
    own = {"accuracy": "accuracy", "speed": "latency", "size": "size", "efficiency": "acc/MB"}
    assert own[category] in text
    assert "columns fold" in text
    wide = "\n".join(rendered(leaderboard_table(board(category), 200), 200))
    for header in ("bits/char", "latency", "size", "acc/MB", "raw ms", "id"):
        assert header in wide
    assert "columns fold" not in wide


def test_json_prints_the_board_as_the_api_returns_it(capsys):
    data = board(rows=3)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            body = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        code = main(["leaderboard", "course", "--track", "tinygpt", "--json", "--server",
                     f"http://127.0.0.1:{server.server_port}"])
    finally:
        server.shutdown()
    assert code == 0
    assert json.loads(capsys.readouterr().out) == data


def test_submit_says_the_rank_out_of_how_many():
    data = board(rows=5)
    data["rows"].insert(0, {"rank": None, "username": "teacher", "is_baseline": True,
                            "submission_id": 1})
    assert standing(data, 1003) == (4, False, 5)
    assert describe_rank(*standing(data, 1003)) == "#4 of 5"
    assert describe_rank(*standing(data, 1001)) == "#2 (tied) of 5"
    assert describe_rank(*standing(data, 1)) == "-"  # a baseline is never ranked


@pytest.mark.integration
def test_train_with_score_ends_with_the_scorecard_as_a_table(synthetic_mnist_dir, tmp_path,  # noqa: F811
                                                            capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert train_tiny(synthetic_mnist_dir, tmp_path, "--score") == 0
    out = capsys.readouterr().out
    table = out[out.index("mnist_mlp.onnx: mnist hidden test set"):]
    for label in ("accuracy", "latency (batch 1, median)", "speed index", "size (deflate)"):
        assert label in table
    record = json.loads((tmp_path / "mnist_mlp.run.json").read_text())
    assert f"{record['scorecard']['accuracy']:.2%}" in table
    assert out.rstrip().endswith("┘") or out.rstrip().endswith("╯") or "└" in out[-200:]


def test_the_comparison_chart_labels_latency_in_plain_numbers(tmp_path, monkeypatch):
    import matplotlib.image
    import matplotlib.pyplot as plt

    from reference_models.commands.compare import draw_chart, latency_text
    from reference_models.compress.report import ModelScore

    assert [latency_text(v) for v in (0.7, 2.0, 20.0, 0.005)] == [
        "0.7 ms", "2 ms", "20 ms", "5 µs"]
    rows = [ModelScore("float.onnx", True, accuracy=0.91, latency_ms=0.7, size_bytes=400_000),
            ModelScore("int8.onnx", True, accuracy=0.90, latency_ms=0.35, size_bytes=110_000),
            ModelScore("broken.onnx", False, error="refused")]
    drawn = {}
    savefig = plt.Figure.savefig

    def keep_labels(figure, *args, **kwargs):  # what a person reads on the axes
        figure.canvas.draw()
        drawn["x"] = [t.get_text() for t in figure.axes[0].get_xticklabels() if t.get_text()]
        drawn["legend"] = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
        return savefig(figure, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", keep_labels)
    path = draw_chart(rows, tmp_path / "chart.png")
    image = matplotlib.image.imread(path)
    assert image.shape[1] >= 1000 and image.shape[0] >= 700  # larger than before (840x600)
    assert "0.5 ms" in drawn["x"] and "1 ms" in drawn["x"]
    assert not any("10^" in t or "×" in t or "$" in t for t in drawn["x"])
    assert drawn["legend"] == ["float.onnx (0.40 MB)", "int8.onnx (0.11 MB)"]


def test_the_whole_board_is_read_page_by_page_for_the_rank_of_n():
    # arena submit's "#k of n": a board longer than one API page is read to its end.
    from reference_models.client import ArenaClient

    rows = [{"submission_id": i, "rank": i, "is_baseline": False} for i in range(1, 2501)]
    asked = []

    class Pages(ArenaClient):
        def __init__(self):
            pass

        def leaderboard(self, competition, track=None, category=None, split=None, offset=None,
                        limit=None):
            asked.append((offset or 0, limit))
            start = offset or 0
            return {"category": category, "rows": rows[start:start + limit]}

    board = Pages().whole_leaderboard("course", "mnist", "accuracy")
    assert len(board["rows"]) == 2500 and asked == [(0, 1000), (1000, 1000), (2000, 1000)]
    assert standing(board, 2400) == (2400, False, 2500)
