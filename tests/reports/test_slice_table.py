"""The HTML report's per-slice table: every slice of a report, worst alignment first."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pytest_modgap import measure_embeddings, write_report_dir


def test_the_report_page_has_a_table_of_the_slices_worst_first(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(["sunny", "rainy & <dark>", "foggy"], 30)
    text = rng.normal(size=(90, 12))
    image = text + 0.4 * rng.normal(size=(90, 12))
    image[labels == "foggy"] += 1.5 * rng.normal(size=(30, 12))
    report = measure_embeddings(image, text, slices=labels, n_boot=50).with_metadata(
        model="candidate", dataset="weather"
    )
    page = write_report_dir(tmp_path, [report]).read_text()
    assert "Slices of candidate (3, worst alignment first)" in page
    table = page.split("Slices of candidate")[1].split("</table>")[0]
    order = re.findall(r"<tr><td>(.*?)</td>", table)
    assert order[0] == "foggy"
    assert "rainy &amp; &lt;dark&gt;" in order
    assert report.slices["foggy"].format_value("alignment") in table
    assert "t2i_recall@1" in table and "zeroshot_top1" not in table
