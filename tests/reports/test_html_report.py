"""The report folder: figures per data set, and a self-contained, escaped index.html around them."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from pytest_modgap import Report, measure_embeddings
from pytest_modgap.errors import ModgapError
from pytest_modgap.reports.html import write_report_dir
from tests.reports.synthetic import paired_embeddings


@pytest.fixture(scope="module")
def gap() -> Report:
    image, text, text2 = paired_embeddings(n=200, gap=1.5, seed=20)
    return measure_embeddings(image, text, text2=text2, n_boot=50).with_metadata(
        model="clip-like", dataset="flickr30k:/data/f30k", samples=200
    )


@pytest.fixture(scope="module")
def closed() -> Report:
    image, text, text2 = paired_embeddings(n=200, gap=0.0, seed=21)
    return measure_embeddings(image, text, text2=text2, n_boot=50)


def _metrics_only(report: Report) -> Report:
    """The report as read back from JSON: no distributions, so no figures are drawn (fast)."""
    return Report.from_dict(report.to_dict())


def _images(page: str) -> list[str]:
    return re.findall(r'<img [^>]*src="([^"]*)"', page)


def test_two_models_one_data_set(tmp_path: Path, gap: Report, closed: Report) -> None:
    index = write_report_dir(tmp_path / "out", [gap, ("v4-like", "flickr30k:/data/f30k", closed)])
    assert index == tmp_path / "out" / "index.html"
    assert sorted(p.name for p in index.parent.iterdir()) == [
        "figure2.png",
        "figure3.png",
        "index.html",
    ]
    page = index.read_text(encoding="utf-8")
    # Self-contained: both figures inline, nothing fetched from elsewhere.
    sources = _images(page)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"(src|href)=\"(?!data:)", page)
    assert "<link" not in page and "<script" not in page
    # One column per model, every metric with its interval.
    assert "clip-like" in page and "v4-like" in page
    assert gap.format_value("alignment") in page
    assert closed.format_value("matched_gap") in page
    assert "n = 200" in page


def test_text_is_escaped(tmp_path: Path, gap: Report) -> None:
    index = write_report_dir(
        tmp_path,
        [("<script>alert(1)</script>", "a&b", _metrics_only(gap))],
        verdicts=[{"model": "<b>m</b>", "metric": "alignment", "verdict": "ok"}],
        title="Nightly <run>",
    )
    page = index.read_text(encoding="utf-8")
    assert "<script>" not in page and "<b>m</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a&amp;b" in page and "Nightly &lt;run&gt;" in page


def test_verdicts_are_rendered_and_failures_marked(tmp_path: Path, gap: Report) -> None:
    verdicts = [
        {
            "model": "clip-like",
            "dataset": "flickr30k",
            "baseline": "paper/openai-clip",
            "metric": "alignment",
            "verdict": "REGRESSED",
            "baseline_value": 0.15,
            "ci": [0.1, 0.12],
        },
        {
            "model": "clip-like",
            "dataset": "flickr30k",
            "baseline": "paper/openai-clip",
            "metric": "centroid_gap",
            "verdict": "ok",
            "baseline_value": 0.8,
            "ci": None,
        },
    ]
    page = write_report_dir(tmp_path, [_metrics_only(gap)], verdicts=verdicts).read_text(
        encoding="utf-8"
    )
    assert "1 of 2 baseline checks failed" in page
    header = re.search(r"<h2>Baseline checks</h2>\s*<table>\s*<thead><tr>(.*?)</tr>", page)
    assert header is not None
    assert re.findall(r"<th>(.*?)</th>", header.group(1)) == [
        "model",
        "dataset",
        "baseline",
        "metric",
        "verdict",
        "baseline_value",
        "ci",
    ]
    bad = re.findall(r'<tr class="bad">(.*?)</tr>', page)
    assert len(bad) == 1 and "alignment" in bad[0] and "[0.1000, 0.1200]" in bad[0]
    assert "0.8000" in page and "—" in page


def test_several_data_sets_get_their_own_figures(
    tmp_path: Path, gap: Report, closed: Report
) -> None:
    write_report_dir(
        tmp_path,
        [("a", "coco:/data/coco", gap), ("b", "coco:/data/coco", closed), ("a", "cifar100", gap)],
    )
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == [
        "figure2-cifar100.png",
        "figure2-coco-data-coco.png",
        "figure3-cifar100.png",
        "figure3-coco-data-coco.png",
    ]
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Data set: coco:/data/coco" in page and "Data set: cifar100" in page
    assert len(_images(page)) == 4


def test_without_text2_only_figure3(tmp_path: Path) -> None:
    image, text, _ = paired_embeddings(n=100, seed=22)
    report = measure_embeddings(image, text, n_boot=50)
    write_report_dir(tmp_path, [("m", "d", report)])
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["figure3.png"]


def test_reports_read_from_json_give_a_page_without_figures(tmp_path: Path, gap: Report) -> None:
    page = write_report_dir(tmp_path, [_metrics_only(gap)]).read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.png"))
    assert "carry no similarity distributions" in page
    assert gap.format_value("alignment") in page


def test_without_matplotlib_the_page_says_how_to_get_figures(
    tmp_path: Path, gap: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    page = write_report_dir(tmp_path, [gap]).read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.png"))
    assert "pip install &quot;pytest-modgap[figures]&quot;" in page


def test_no_results_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ModgapError, match="no results"):
        write_report_dir(tmp_path, [])


def _style(page: str) -> dict[str, dict[str, str]]:
    """The page's CSS rules: selector -> {property: value}."""
    css = re.search(r"<style>(.*?)</style>", page, re.S)
    assert css is not None
    rules: dict[str, dict[str, str]] = {}
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", css.group(1)):
        declarations = {
            part.split(":", 1)[0].strip(): part.split(":", 1)[1].strip()
            for part in body.split(";")
            if ":" in part
        }
        for selector in selectors.split(","):
            rules.setdefault(selector.strip(), {}).update(declarations)
    return rules


def test_tables_fit_the_page_and_long_paths_are_shortened(tmp_path: Path, gap: Report) -> None:
    """No cell can be wider than the page by design: every table takes the page's width with a
    fixed layout, cells break long words, and absolute paths show their last components."""
    long_model = "/home/ci/runner/work/checkpoints/2026-05-01/experiment-with-a-long-name/candidate"
    long_dataset = "flickr30k:/mnt/shared/datasets/flickr30k/a/very/deep/folder/of/images"
    verdicts = [
        {"model": long_model, "dataset": long_dataset, "baseline": "release", "metric": "auc",
         "verdict": "ok"},
    ]  # fmt: skip
    report = _metrics_only(gap)
    page = write_report_dir(
        tmp_path, [(long_model, long_dataset, report), ("short", long_dataset, report)],
        verdicts=verdicts,
    ).read_text(encoding="utf-8")  # fmt: skip
    rules = _style(page)
    assert rules["table"]["table-layout"] == "fixed" and rules["table"]["width"] == "100%"
    assert rules["body"]["max-width"] == "1100px"  # inside a 1200-px page
    for cell in ("td", "th"):
        assert rules[cell]["overflow-wrap"] == "anywhere"
    assert "nowrap" not in page, "no cell may refuse to wrap"
    shortened = re.findall(r'<span title="([^"]*)">([^<]*)</span>', page)
    assert (long_model, "…/experiment-with-a-long-name/candidate") in shortened
    assert all(len(shown) <= 40 for title, shown in shortened if title == long_model)
    # No table cell shows a word (a run without spaces, where a browser would break a line)
    # longer than a shortened label: the full paths live only in the title attributes.
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", page, re.S)
    words = [word for cell in cells for word in re.sub(r"<[^>]+>", " ", cell).split()]
    assert max(len(word) for word in words) <= 40, max(words, key=len)
    assert rules["h2"]["overflow-wrap"] == "anywhere"


def test_comparison_rows_keep_signs_and_direction_free_metrics_have_no_tolerance(
    tmp_path: Path, gap: Report
) -> None:
    comparisons = [
        {"model": "candidate", "dataset": "shapes", "baseline": "reference model r",
         "metric": "alignment", "verdict": "worse", "difference": -0.0512,
         "ci": [-0.06, -0.04], "tolerance": 0.01, "better": "higher"},
        {"model": "candidate", "dataset": "shapes", "baseline": "reference model r",
         "metric": "centroid_gap", "verdict": "same", "difference": 0.0031,
         "ci": [0.001, 0.005], "tolerance": 0.01, "better": "lower"},
        {"model": "candidate", "dataset": "shapes", "baseline": "reference model r",
         "metric": "text_text_similarity", "verdict": "changed", "difference": 0.02,
         "ci": [0.01, 0.03], "tolerance": 0.01, "better": "none"},
    ]  # fmt: skip
    page = write_report_dir(tmp_path, [_metrics_only(gap)], comparisons=comparisons).read_text(
        encoding="utf-8"
    )
    assert "<h2>Comparison with the reference model</h2>" in page
    assert "Baseline checks" not in page and "baseline checks passed" not in page
    assert "Worse than the reference model on 1 of 3 metrics." in page
    rows = {
        cells[3]: cells
        for cells in (
            re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr.*?</tr>", page)
        )
        if len(cells) > 3
    }
    assert "+0.0031" in rows["centroid_gap"] and "[+0.0010, +0.0050]" in rows["centroid_gap"]
    assert "-0.0512" in rows["alignment"]
    tolerance = rows["text_text_similarity"][-2]
    assert tolerance == "—", rows["text_text_similarity"]
    assert rows["alignment"][-2] == "0.0100"


def test_a_change_that_rounds_to_zero_is_never_negative_zero(tmp_path: Path, gap: Report) -> None:
    verdicts = [
        {
            "model": "m",
            "dataset": "d",
            "baseline": "release",
            "metric": "alignment",
            "verdict": "ok",
            "change": -0.00001,
            "baseline_value": -0.00002,
        }
    ]
    page = write_report_dir(tmp_path, [_metrics_only(gap)], verdicts=verdicts).read_text()
    assert "-0.0000" not in page and "+0.0000" in page and ">0.0000<" in page
