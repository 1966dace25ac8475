"""--modgap-templates=FILE, the marker's templates= and modgap.measure(templates=): which prompts
the zero-shot classifier is built from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.data.layouts import write_image
from tests.gate.conftest import RunPytest

LOGGING_ENCODER = """
import os

import numpy as np
import torch


class Encoder:
    spec = "logging_encoder:make"

    def fingerprint(self):
        return None  # never cached: every run encodes, and logs, its texts

    def encode_images(self, images):
        rows = [np.asarray(image, dtype=np.float64).mean((0, 1)) for image in images]
        return torch.tensor(np.array(rows)) + 1.0

    def encode_texts(self, texts):
        with open(os.environ["TEXT_LOG"], "a") as log:
            log.writelines(text + "\\n" for text in texts)
        return torch.tensor([[len(text), 1.0 + text.count("a"), 2.0] for text in texts])


def make():
    return Encoder()
"""

TEMPLATE_TESTS = """
import pytest

@pytest.mark.modgap(dataset="jsonl:pairs.jsonl")
def test_option(modgap):
    assert "zeroshot_top1" in modgap.measure()

@pytest.mark.modgap(dataset="jsonl:pairs.jsonl", templates=["{c} in the marker"])
def test_marker(modgap):
    modgap.measure()
    modgap.measure(templates=["{c} in the call"])
"""


@pytest.fixture
def labelled(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest whose labels are class names, the logging encoder, and the log it writes."""
    pytester.makepyfile(logging_encoder=LOGGING_ENCODER)
    monkeypatch.syspath_prepend(str(pytester.path))
    log = pytester.path / "texts.log"
    monkeypatch.setenv("TEXT_LOG", str(log))
    lines = []
    for i in range(24):
        write_image(pytester.path / "images" / f"{i}.png", seed=i)
        record = {"image": f"images/{i}.png", "text": f"pair {i}", "label": ["cat", "owl"][i % 2]}
        lines.append(json.dumps(record))
    (pytester.path / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    return log


def test_the_option_the_marker_and_the_call_choose_the_templates(
    pytester: pytest.Pytester, run: RunPytest, labelled: Path
) -> None:
    pytester.makepyfile(test_templates=TEMPLATE_TESTS)
    (pytester.path / "templates.txt").write_text("a sketch of a {c}.\n{c}, up close\n")
    result = run(
        "--modgap-model",
        "logging_encoder:make",
        "--modgap-templates",
        "templates.txt",
        "-W",
        "ignore::UserWarning",
    )
    result.assert_outcomes(passed=2)
    encoded = set(labelled.read_text().splitlines())
    assert {
        "a sketch of a cat.",
        "owl, up close",
        "cat in the marker",
        "owl in the call",
    } <= encoded
    assert "a photo of a cat." not in encoded  # the one-template default is never used here


def test_without_a_choice_the_one_template_default_is_used(
    pytester: pytest.Pytester, run: RunPytest, labelled: Path
) -> None:
    pytester.makepyfile(
        test_default="""
        import pytest

        @pytest.mark.modgap(dataset="jsonl:pairs.jsonl")
        def test_default(modgap):
            assert "zeroshot_top1" in modgap.measure()
        """
    )
    run("--modgap-model", "logging_encoder:make", "-W", "ignore::UserWarning").assert_outcomes(
        passed=1
    )
    encoded = set(labelled.read_text().splitlines())
    assert {"a photo of a cat.", "a photo of a owl."} <= encoded


def test_a_bad_templates_file_stops_the_run_before_any_test(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    (pytester.path / "templates.txt").write_text("a photo of a cat\n")
    result = run("--modgap-templates", "templates.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--modgap-templates=*templates.txt*exactly one {c}*"])


def test_a_bad_marker_templates_value_is_a_collection_error(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(
        test_bad="""
        import pytest

        @pytest.mark.modgap(templates="imagenet")
        def test_bad(modgap):
            pass
        """
    )
    result = run("--modgap-model", models["reference"])
    result.stdout.fnmatch_lines(["*invalid @pytest.mark.modgap*templates='imagenet'*"])
