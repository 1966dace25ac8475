"""Zero-shot prompt templates: the published lists, names, files, and every template checked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.data.templates import (
    CIFAR100_TEMPLATES,
    DEFAULT_TEMPLATES,
    class_prompts,
    load_templates,
    resolve_templates,
    with_class_texts,
)
from pytest_modgap.errors import DatasetError


def test_the_published_cifar100_list_and_the_defaults() -> None:
    # clip_benchmark's en_zeroshot_classification_templates.json, "cifar100": 18 templates.
    assert len(CIFAR100_TEMPLATES) == 18 == len(set(CIFAR100_TEMPLATES))
    assert (
        CIFAR100_TEMPLATES[0] == "a photo of a {c}."
        and "a photo of the big {c}." in CIFAR100_TEMPLATES
    )
    assert resolve_templates(None, "cifar100") == CIFAR100_TEMPLATES
    assert resolve_templates(None, "my-manifest") == DEFAULT_TEMPLATES == ("a photo of a {c}.",)
    assert resolve_templates("default", "cifar100") == DEFAULT_TEMPLATES
    assert resolve_templates(["{c}!"], "cifar100") == ("{c}!",)


def test_prompts_are_class_major_and_pairs_get_them() -> None:
    assert class_prompts(["cat", "sea lion"], ["a {c}", "{c}!"]) == [
        "a cat",
        "cat!",
        "a sea lion",
        "sea lion!",
    ]
    pairs = PairSet(
        name="cifar100",
        images=[Path("a.png"), Path("b.png")],
        texts=["x", "y"],
        groups=[0, 1],
        class_names=["cat", "dog"],
    )
    prompted = with_class_texts(pairs, None)
    assert prompted.class_texts is not None and len(prompted.class_texts) == 2 * 18
    no_names = PairSet(name="n", images=pairs.images, texts=pairs.texts)
    assert with_class_texts(no_names, ["{c}"]) is no_names


def test_template_files_by_line_or_json(tmp_path: Path) -> None:
    lines = tmp_path / "templates.txt"
    lines.write_text("# my prompts\na sketch of a {c}.\n\n{c}, up close\n")
    assert load_templates(lines) == ("a sketch of a {c}.", "{c}, up close")
    listed = tmp_path / "templates.json"
    listed.write_text(json.dumps(["itap of a {c}."]))
    assert load_templates(listed) == ("itap of a {c}.",)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("a photo of a cat\n", "field.*it has none"),
        ("a {c} and a {c}\n", "field.*it has 2"),
        ("a {c} in {year}\n", "the field {year} is not {c}"),
        ("# nothing\n", "non-empty list"),
        ('["a {c}", 3]', "it is int, not a string"),
        ("a {c} }\n", "unmatched brace"),
        ("[broken", "not valid JSON"),
    ],
)
def test_bad_template_files_are_refused_with_the_fix(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "templates.txt"
    path.write_text(content)
    with pytest.raises(DatasetError, match=problem):
        load_templates(path)


def test_unknown_names_and_missing_files() -> None:
    with pytest.raises(DatasetError, match="known: default, cifar100"):
        resolve_templates("imagenet", "x")
    with pytest.raises(DatasetError, match="Cannot read the templates file"):
        load_templates("/nonexistent/templates.txt")


@pytest.mark.parametrize(
    "template",
    [
        "a photo of a {{c}}.",
        "a {{c}} and a {c!r}",
        "{c!r}",
        "{c!s}",
        "{c.__class__.__mro__}",
        "{c[0]}",
        "{c:>20000000000}",
        "{c:{c}}",
        "{}",
        "{0}",
        "a {c} and a {{c}} and {C}",
    ],
)
def test_only_one_bare_c_field_is_a_template(template: str) -> None:
    with pytest.raises(DatasetError, match=re.escape("exactly one {c}")) as refused:
        resolve_templates([template], "x")
    assert repr(template)[:60] in str(refused.value)


def test_a_doubled_c_is_named_as_the_literal_text_it_is() -> None:
    with pytest.raises(DatasetError, match=re.escape("{{c}} is the literal text {c}")):
        resolve_templates(["a photo of a {{c}}."], "x")


@pytest.mark.parametrize(
    ("template", "prompt"),
    [
        ("a photo of a {c}.", "a photo of a cat."),
        ("{{literal}} {c}", "{literal} cat"),
        ("{{{c}}}", "{cat}"),
    ],
)
def test_literal_braces_stay_literal_beside_the_one_field(template: str, prompt: str) -> None:
    assert class_prompts(["cat"], resolve_templates([template], "x")) == [prompt]
