"""Every command output the README and the site show is what the command prints.

Cheap commands (``modgap baselines``, ``modgap measure`` on precomputed vectors) run here, now. The
main job and the quick start's gate need model runs (minutes on 2 cores): their outputs are recorded
by ``python scripts/docs_outputs.py``, which runs the real commands, and compared here.
"""

from __future__ import annotations

import pytest

from tests.docs.scripts import load_script

outputs = load_script("docs_outputs")


def _shown() -> list[tuple[str, str, str]]:
    found = []
    for path in outputs.pages():
        text = path.read_text(encoding="utf-8")
        page = str(path.relative_to(outputs.ROOT))
        found += [(page, name, block) for name, block, _, _ in outputs.shown_blocks(text)]
    return found


SHOWN = _shown()


def test_the_readme_and_the_site_show_outputs() -> None:
    names = {name for _, name, _ in SHOWN}
    assert {"quickstart-regressed", "modgap-baselines", "measure-vectors", "main-job"} <= names


@pytest.fixture(scope="module")
def printed() -> dict[str, str]:
    """What each command prints: cheap ones run now, once for the module."""
    return {name: outputs.actual_output(name) for name in {name for _, name, _ in SHOWN}}


@pytest.mark.parametrize(("page", "name", "block"), SHOWN, ids=[f"{p}:{n}" for p, n, _ in SHOWN])
def test_shown_output_is_what_the_command_prints(
    page: str, name: str, block: str, printed: dict[str, str]
) -> None:
    how = "run now" if name in outputs.LIVE else f"recorded in docs/outputs/{name}.txt"
    problems = outputs.excerpt_problems(block, printed[name])
    assert not problems, (
        f"{page} shows an output of {name!r} ({how}) that the command no longer prints:\n"
        + "\n".join(problems)
        + f"\nRegenerate with `{outputs.REFRESH}` (model runs) or "
        f"`{outputs.REFRESH} --pages-only` (the cheap ones), and review the diff."
    )


def test_numbers_match_to_their_printed_precision() -> None:
    actual = "alignment  higher  0.8993 [0.8967, 0.9022]\ndevice  : cpu / float32, 92.413 s"
    assert not outputs.excerpt_problems("alignment  higher  0.8994 [0.8967, 0.9022]", actual)
    assert outputs.excerpt_problems("alignment  higher  0.8996 [0.8967, 0.9022]", actual)
    assert not outputs.excerpt_problems("device  : cpu / float32, 1.000 s", actual)
    assert outputs.excerpt_problems("alignment  lower  0.8993 [0.8967, 0.9022]", actual)


def test_an_excerpt_keeps_the_order_of_the_output() -> None:
    actual = "a 1\nb 2\nc 3"
    assert not outputs.excerpt_problems("a 1\n...\nc 3", actual)
    assert outputs.excerpt_problems("c 3\n...\na 1", actual)
