"""The generated reference pages (docs/reference/*.md) match what the code gives now."""

from __future__ import annotations

import pytest

from tests.docs.scripts import load_script

reference = load_script("docs_reference")


@pytest.mark.parametrize("page", sorted(reference.PAGES))
def test_generated_page_is_up_to_date(page: str) -> None:
    committed = (reference.REFERENCE / page).read_text(encoding="utf-8")
    assert committed == reference.PAGES[page](), (
        f"docs/reference/{page} is out of date with the code it is generated from; "
        f"refresh it with `{reference.REFRESH}` and commit it"
    )


def test_every_option_and_command_is_on_its_page() -> None:
    from pytest_modgap.cli.app import build_parser
    from pytest_modgap.gate.session import OPTIONS

    options = (reference.REFERENCE / "pytest-options.md").read_text(encoding="utf-8")
    for spec in OPTIONS:
        assert f"`{spec.dest}`" in options, spec.flag
    cli = (reference.REFERENCE / "cli.md").read_text(encoding="utf-8")
    for name in reference._subparsers(build_parser()):
        assert f"## `modgap {name}`" in cli, name
