"""The quick start's failure output that the README shows has the shape the gate prints now.

``tests/docs`` compares the README's numbers with a recorded run of the real quick start (500
pairs, minutes on 2 cores, recorded by ``python scripts/docs_outputs.py``). This test runs the
README's own test file now, on the shipped models' cached embeddings of fewer pairs, and checks
every shown line against what the gate prints, numbers and captions aside: a change to the failure
text fails here at once, without waiting for the recording to be refreshed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pytest_modgap.reference import reference_model_dir
from tests.docs.scripts import ROOT, load_script
from tests.gate.conftest import REFERENCE_SAMPLES, RunPytest

outputs = load_script("docs_outputs")
README = ROOT / "README.md"


def readme_test_file() -> str:
    """The quick start's ``test_gap.py`` as the README writes it, on the cached sample size."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"cat > test_gap\.py <<'PY'\n(.*?)\nPY\n", text, re.S)
    assert found is not None, "README.md: the quick start no longer writes test_gap.py"
    source, count = re.subn(r"samples=\d+", f"samples={REFERENCE_SAMPLES}", found.group(1))
    assert count == 1, "README.md: the quick start's marker no longer sets samples="
    return source


def shown_failure() -> str:
    """The README's excerpt of step 3, captions made 'any text' (other pairs are listed here) and
    its gate/ folder any folder (the test runs in its own)."""
    text = README.read_text(encoding="utf-8")
    blocks = {name: block for name, block, _, _ in outputs.shown_blocks(text)}
    shown = re.sub(r"'[^']*'(?=  )", "'...'", blocks["quickstart-regressed"])
    return shown.replace(".../gate/", ".../")


def test_the_readme_failure_output_has_the_shape_the_gate_prints(
    pytester: pytest.Pytester, run: RunPytest, reference_embeddings: Path
) -> None:
    pytester.makepyfile(test_gap=readme_test_file())
    cache = ("--modgap-cache-dir", str(reference_embeddings))
    reference = f"--modgap-model={reference_model_dir('reference')}"
    run(*cache, reference, "--modgap-update").assert_outcomes(passed=1)
    result = run(*cache, f"--modgap-model={reference_model_dir('regressed')}")
    result.assert_outcomes(failed=1)
    printed = result.stdout.lines
    position, missing = 0, []
    for line in shown_failure().splitlines():
        if line.strip() == "...":
            continue
        for index in range(position, len(printed)):
            if outputs._match(line, printed[index], exact_numbers=True):
                position = index + 1
                break
        else:
            missing.append(line)
    assert not missing, (
        "README.md's quick start shows lines the gate no longer prints (numbers and captions "
        "aside):\n" + "\n".join(missing) + "\nRun python scripts/docs_outputs.py and review."
    )
