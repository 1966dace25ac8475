"""Per-slice baselines: recorded with --modgap-update, checked with slices=True; the failure names
the slices that regressed, worst first; the summary and the JSON show the worst slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_modgap import measure_embeddings
from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines import BaselineRegression, assert_no_regression, load
from tests.data.layouts import write_image
from tests.gate.conftest import RunPytest

CLASSES = ("cat", "dog", "fox", "owl", "yak")


def class_report(shifts: dict[str, float], seed: int = 0) -> object:
    """40 pairs of each class; the images of a class in ``shifts`` move off their texts."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(CLASSES, 40)
    text = rng.normal(size=(len(labels), 16))
    image = text + 0.4 * rng.normal(size=text.shape)
    noise = rng.normal(size=text.shape)
    for name, shift in shifts.items():
        image[labels == name] += shift * noise[labels == name]
    return measure_embeddings(image, text, slices=labels, n_boot=50).with_metadata(
        dataset="toy", model="m"
    )


def test_only_the_shifted_class_regresses_and_the_failure_names_it(tmp_path: Path) -> None:
    assert_no_regression(
        class_report({}), "release", baseline_dir=tmp_path, update=True, slices=True
    )
    recorded = load("release", tmp_path).datasets["toy"]
    assert sorted(recorded.slices) == sorted(CLASSES)
    assert recorded.slices["fox"].n == 40
    with pytest.raises(BaselineRegression) as caught:
        assert_no_regression(
            class_report({"fox": 0.6, "owl": 0.3}),
            "release",
            baseline_dir=tmp_path,
            tolerance=0.07,
            slices=True,
        )
    comparison = caught.value.comparison
    assert not comparison.regressed, "the whole data set stays within its tolerance"
    assert comparison.verdict == "regressed"
    worst = list(dict.fromkeys(row.slice for row in comparison.regressed_slices))
    assert worst == ["fox", "owl"]
    message = str(caught.value)
    assert message.startswith("modgap: slices fox, owl (worst first) regressed against baseline")
    table = message.split("Slices that regressed, worst first:")[1]
    slice_lines = [line for line in table.splitlines() if line.startswith(">")]
    assert slice_lines[0].split()[1] == "fox" and "REGRESSED" in slice_lines[0]
    assert all(line.split()[1] in ("fox", "owl") for line in slice_lines)
    # Without slices=True the same reports pass: the whole data set did not regress.
    assert_no_regression(
        class_report({"fox": 0.6, "owl": 0.3}), "release", baseline_dir=tmp_path, tolerance=0.07
    )
    data = comparison.to_dict()
    assert data["regressed_slices"] == ["fox", "owl"]
    assert {row["slice"] for row in data["slices"]} == set(CLASSES)


def test_checking_slices_that_were_never_recorded_says_how_to_record_them(tmp_path: Path) -> None:
    assert_no_regression(class_report({}), "plain", baseline_dir=tmp_path, update=True)
    with pytest.raises(BaselineError, match="records no slices"):
        assert_no_regression(class_report({}), "plain", baseline_dir=tmp_path, slices=True)


def test_a_malformed_slice_entry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "format: pytest-modgap/1\n"
        "datasets:\n"
        "  toy:\n"
        "    n: 200\n"
        "    metrics: {alignment: 0.5}\n"
        "    slices:\n"
        "      fox: {n: 40, metrics: {alignment: 0.5}, slices: {}}\n"
    )
    with pytest.raises(BaselineError, match=r"slices\.fox' has unknown key\(s\) slices"):
        load("bad", tmp_path)


GATE_WITH_SLICES = """
import os

import numpy as np
import pytest

from pytest_modgap import measure_embeddings

CLASSES = ("cat", "dog", "fox", "owl", "yak")


@pytest.mark.modgap
def test_gate(modgap):
    rng = np.random.default_rng(0)
    labels = np.repeat(CLASSES, 40)
    text = rng.normal(size=(len(labels), 16))
    image = text + 0.4 * rng.normal(size=text.shape)
    noise = rng.normal(size=text.shape)
    fox = labels == "fox"
    image[fox] += float(os.environ.get("FOX_SHIFT", "0")) * noise[fox]
    report = measure_embeddings(image, text, slices=labels, n_boot=50)
    modgap.check(report.with_metadata(dataset="toy"), "release", tolerance=0.07, slices=True)
"""


def test_the_fixture_records_slices_and_fails_naming_the_slice(
    pytester: pytest.Pytester,
    run: RunPytest,
    models: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(test_gate=GATE_WITH_SLICES)
    run("--modgap-model", models["reference"], "--modgap-update").assert_outcomes(passed=1)
    assert "slices:" in (pytester.path / "baselines" / "release.yaml").read_text()
    run("--modgap-model", models["reference"]).assert_outcomes(passed=1)
    monkeypatch.setenv("FOX_SHIFT", "0.6")
    result = run("--modgap-model", models["reference"])
    result.assert_outcomes(failed=1)
    assert "REGRESSED" not in result.stdout.str().split("Slices that regressed")[0]
    result.stdout.fnmatch_lines(
        [
            "*modgap: slices fox (worst first) regressed against baseline 'release'*",
            "*Slices that regressed, worst first:*",
            "*slice*metric*baseline*",
            "> fox *REGRESSED*",
        ]
    )


ENCODER = """
import zlib

import numpy as np
import torch


class Encoder:
    spec = "fake_encoder:make"

    def fingerprint(self):
        return "fake-encoder-1"

    def encode_images(self, images):
        rows = [np.asarray(image, dtype=np.float64).mean((0, 1)) / 255 for image in images]
        return torch.tensor(np.array(rows)) @ torch.ones(3, 8, dtype=torch.float64) + torch.arange(8)

    def encode_texts(self, texts):
        rows = []
        for text in texts:
            row = np.zeros(8)
            for word in text.split():
                row[zlib.crc32(word.encode()) % 8] += 1.0
            rows.append(row + 0.1)
        return torch.tensor(np.array(rows))


def make():
    return Encoder()
"""

SUMMARY_TEST = """
import pytest

@pytest.mark.modgap(dataset="jsonl:pairs.jsonl")
def test_measure(modgap):
    report = modgap.measure()
    assert set(report.slices) == {"indoor", "outdoor"}
"""


def test_the_summary_and_the_json_show_the_worst_slices(
    pytester: pytest.Pytester, run: RunPytest, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(fake_encoder=ENCODER, test_measure=SUMMARY_TEST)
    monkeypatch.syspath_prepend(str(pytester.path))
    lines = []
    for i in range(48):
        write_image(pytester.path / "images" / f"{i}.png", seed=i)
        slice_name = "indoor" if i % 2 else "outdoor"
        lines.append(
            json.dumps(
                {
                    "image": f"images/{i}.png",
                    "texts": [f"photo {i}", f"image {i}"],
                    "slice": slice_name,
                }
            )
        )
    (pytester.path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    target = pytester.path / "modgap.json"
    result = run("--modgap-model", "fake_encoder:make", "--modgap-json", str(target))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*worst slices by alignment (of 2): *"])
    (measurement,) = json.loads(target.read_text())["measurements"]
    worst = measurement["worst_slices"]["alignment"]
    assert sorted(label for label, _ in worst) == ["indoor", "outdoor"]
    assert worst[0][1] <= worst[1][1]
    assert set(measurement["report"]["slices"]) == {"indoor", "outdoor"}
