"""``curves.png``, ``ranks.png`` and ``compare.png`` are all drawn by the one curve function."""

from __future__ import annotations

import torch
from PIL import Image

import muon_nerf.runs.figures as figures
from muon_nerf.fit.diagnostics import RankTracker
from muon_nerf.fit.loop import FitResult
from muon_nerf.runs.report import comparison_table
from muon_nerf.signals.image import ImageSignal


def _result(scale: float) -> FitResult:
    ranks = RankTracker()
    for step in (0, 5, 10):
        ranks.record(
            step, {"hidden.0.weight": torch.eye(4) * (step + scale), "hidden.1.weight": torch.ones(4, 4)}
        )
    history = [{"step": s, "loss": 1.0 / s, "psnr": scale * s} for s in (5, 10)]
    prediction = torch.full((12 * 16, 3), 0.5)
    return FitResult(
        {"psnr": 10.0 * scale, "ssim": 0.5}, history, ranks, prediction, torch.nn.Identity(), 1.0, 1.0
    )


def test_every_training_figure_goes_through_draw_curves(tmp_path, monkeypatch):
    drawn: list[tuple[str, list[str | None]]] = []
    original = figures.draw_curves

    def spy(ax, curves, ylabel, title=""):  # noqa: ANN001
        drawn.append((ylabel, [c.label for c in curves]))
        original(ax, curves, ylabel, title)

    monkeypatch.setattr(figures, "draw_curves", spy)
    results = {"adam": _result(1.0), "muon": _result(2.0)}
    signal = ImageSignal(torch.rand(12, 16, 3))
    figures.curves_figure(results, "psnr", tmp_path / "curves.png")
    assert drawn == [("psnr", ["adam", "muon"]), ("stable rank", ["adam", "muon"])]
    drawn.clear()
    figures.ranks_figure(results["muon"].ranks, tmp_path / "ranks.png", title="t")
    assert drawn == [("stable rank", ["hidden.0.weight", "hidden.1.weight"])] + [
        ("effective rank", ["hidden.0.weight", "hidden.1.weight"])
    ]
    drawn.clear()
    figures.compare_figure(signal, results, tmp_path / "compare.png")
    # one labelled line per optimizer, one line per hidden layer (labelled once per optimizer)
    assert drawn == [
        ("psnr", ["adam", "muon"]),
        ("stable rank (each hidden layer)", ["adam", None, "muon", None]),
    ]
    for name in ("curves.png", "ranks.png", "compare.png"):
        with Image.open(tmp_path / name) as img:
            assert img.format == "PNG"


def test_console_table_is_titled_by_the_optimizers_that_ran():
    """One optimizer (``--print-split`` or ``--optimizer muon``) is not titled "Adam vs Muon",
    and only a comparison gets the difference column."""
    signal = ImageSignal(torch.rand(12, 16, 3))
    one = comparison_table(signal, {"muon": _result(2.0)})
    both = comparison_table(signal, {"adam": _result(1.0), "muon": _result(2.0)})
    assert one.title == "image: Muon" and [c.header for c in one.columns] == ["metric", "muon"]
    assert both.title == "image: Adam vs Muon" and both.columns[-1].header == "muon − adam"
    assert list(both.columns[-1].cells)[0] == "+10.000"  # psnr 20 − 10
