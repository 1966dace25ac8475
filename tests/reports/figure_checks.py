"""Checks on what a drawn figure holds: the matplotlib figures a call drew, and titles that fit."""

from __future__ import annotations

from typing import Any

import pytest

LONG_SPEC = "manifest:/mnt/shared/evaluation-sets/2026-q1/product-photos-with-captions/" + (
    "annotated-by-the-catalogue-team/validation-split/manifest-with-two-captions-per-image.jsonl"
)


def recorded_figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The matplotlib figures drawn from now on (for checks on what the PNG holds)."""
    import pytest_modgap.reports.figures as figures

    drawn: list[Any] = []
    figure_class, canvas_class = figures.matplotlib_classes()

    class Recording(figure_class):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            drawn.append(self)

    monkeypatch.setattr(figures, "matplotlib_classes", lambda: (Recording, canvas_class))
    return drawn


def assert_titles_fit(figure: Any, *titles: str) -> None:
    """Every title of ``figure`` lies inside it, and shows every character it was given."""
    renderer = figure.canvas.get_renderer()
    # matplotlib keeps a left-aligned title apart from the centred one.
    texts = [figure._suptitle, *(t for ax in figure.axes for t in (ax.title, ax._left_title))]
    shown = [text for text in texts if text is not None and text.get_text()]
    for text in shown:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= figure.bbox.width, (
            f"title {text.get_text()!r} spans x {box.x0:.0f} to {box.x1:.0f}, the figure "
            f"0 to {figure.bbox.width:.0f}"
        )
    joined = ["".join(text.get_text().split()) for text in shown]
    for title in titles:
        assert "".join(title.split()) in joined, f"{title!r} is not shown whole"
