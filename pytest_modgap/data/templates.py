"""Prompt templates for zero-shot classification: the published lists and a templates file reader.

A template is a string with ``{c}`` where the class name goes ("a photo of a {c}."), as in
clip_benchmark's en_zeroshot_classification_templates.json.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.errors import DatasetError

DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {c}.",)
"""The one-template default for a data set without a published list."""

CIFAR100_TEMPLATES: tuple[str, ...] = (
    "a photo of a {c}.",
    "a blurry photo of a {c}.",
    "a black and white photo of a {c}.",
    "a low contrast photo of a {c}.",
    "a high contrast photo of a {c}.",
    "a bad photo of a {c}.",
    "a good photo of a {c}.",
    "a photo of a small {c}.",
    "a photo of a big {c}.",
    "a photo of the {c}.",
    "a blurry photo of the {c}.",
    "a black and white photo of the {c}.",
    "a low contrast photo of the {c}.",
    "a high contrast photo of the {c}.",
    "a bad photo of the {c}.",
    "a good photo of the {c}.",
    "a photo of the small {c}.",
    "a photo of the big {c}.",
)
"""CIFAR-100's 18 published templates, copied from LAION-AI/CLIP_benchmark,
clip_benchmark/datasets/en_zeroshot_classification_templates.json, key "cifar100" (the CLIP
paper's CIFAR prompt ensemble), with their ``{c}`` placeholder."""

PUBLISHED_TEMPLATES: dict[str, tuple[str, ...]] = {"cifar100": CIFAR100_TEMPLATES}
"""Data set name (``PairSet.name``) -> its published template list."""

NAMED_TEMPLATES: dict[str, tuple[str, ...]] = {
    "default": DEFAULT_TEMPLATES,
    **PUBLISHED_TEMPLATES,
}
"""Names ``templates=`` accepts instead of a list."""


def check_templates(templates: Sequence[str], source: str) -> tuple[str, ...]:
    """``templates`` as a tuple, each a string with one ``{c}``; a DatasetError naming ``source``."""
    if isinstance(templates, str) or not templates:
        raise DatasetError(
            f"{source}: expected a non-empty list of prompt templates, each with {{c}} where "
            f'the class name goes, e.g. ["a photo of a {{c}}."], or a name: '
            f"{', '.join(NAMED_TEMPLATES)}."
        )
    for template in templates:
        problem = template_problem(template)
        if problem is not None:
            raise DatasetError(
                f"{source}: the template {template!r:.80} must be a string with exactly one {{c}} "
                f"where the class name goes, bare (no !conversion, .attribute, [index] or "
                f":format spec), and no other replacement field ({problem}). "
                f'Write it like "a photo of a {{c}}."; a literal brace is {{{{ or }}}}.'
            )
    return tuple(templates)


def template_problem(template: object) -> str | None:
    """Why ``template`` is not a prompt template, or None when it is one.

    A template is parsed the way ``str.format`` parses it and must hold exactly one replacement
    field, written ``{c}``: a count of "{c}" substrings would also match the literal ``{{c}}``
    (every prompt then reads "{c}", not the class name), and conversions, attribute or index
    access and format specs (``{c!r}``, ``{c.__class__}``, ``{c[0]}``, ``{c:>99999999999}``)
    change the prompt or exhaust memory instead of naming the class.
    """
    if not isinstance(template, str):
        return f"it is {type(template).__name__}, not a string"
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError as exc:
        return f"unmatched brace: {exc}"
    for name, spec, conversion in fields:
        if name != "c":
            return f"the field {{{name}}} is not {{c}}"
        if conversion is not None:
            return f"the conversion !{conversion} is not allowed"
        if spec:
            return f"the format spec :{spec:.40} is not allowed"
    if not fields:
        return (
            "it has none: {{c}} is the literal text {c}" if "{{c}}" in template else "it has none"
        )
    if len(fields) > 1:
        return f"it has {len(fields)}"
    return None


def resolve_templates(templates: str | Sequence[str] | None, dataset: str) -> tuple[str, ...]:
    """The templates to use: ``templates`` (a list, or a name of ``NAMED_TEMPLATES``), else the
    data set's published list, else ``DEFAULT_TEMPLATES``."""
    if templates is None:
        return PUBLISHED_TEMPLATES.get(dataset, DEFAULT_TEMPLATES)
    if isinstance(templates, str):
        if templates in NAMED_TEMPLATES:
            return NAMED_TEMPLATES[templates]
        raise DatasetError(
            f"templates={templates!r}: not a template list name; known: "
            f"{', '.join(NAMED_TEMPLATES)}. Pass a list of templates with {{c}}, e.g. "
            f'["a photo of a {{c}}."], or a file with --modgap-templates=FILE.'
        )
    return check_templates(templates, "templates")


def load_templates(path: str | Path) -> tuple[str, ...]:
    """Templates from a file: a JSON list of strings, or one template per line (blank lines and
    lines starting with ``#`` skipped)."""
    path = Path(path).expanduser()
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(
            f"Cannot read the templates file {path} ({exc}). Give a UTF-8 text file with one "
            f"template per line, each with {{c}} where the class name goes."
        ) from exc
    if content.lstrip().startswith("["):
        try:
            parsed = json.loads(content)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"Templates file {path} starts like a JSON list but is not valid JSON ({exc.msg}, "
                f"line {exc.lineno}). Write a JSON list of strings, or one template per line."
            ) from exc
        if not isinstance(parsed, list):
            raise DatasetError(f"Templates file {path}: expected a JSON list of strings.")
        return check_templates(parsed, f"templates file {path}")
    lines = [line.strip() for line in content.splitlines()]
    templates = [line for line in lines if line and not line.startswith("#")]
    return check_templates(templates, f"templates file {path}")


def class_prompts(class_names: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Every template filled with every class name, class-major: C x T prompts."""
    return [template.format(c=name) for name in class_names for template in templates]


def with_class_texts(pairs: PairSet, templates: str | Sequence[str] | None) -> PairSet:
    """``pairs`` with the zero-shot prompts of its class names to embed (``resolve_templates``);
    unchanged when it has no class names."""
    if pairs.class_names is None:
        return pairs
    chosen = resolve_templates(templates, pairs.name)
    return replace(pairs, class_texts=class_prompts(pairs.class_names, chosen))
