"""The README's quick start, run as written inside a clone: its baseline lands in its own gate/
folder, never in the repository's baselines/, and the three steps record, pass and fail."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import pytest_modgap
from pytest_modgap.reference import reference_model_dir
from tests.gate.conftest import FAST_ARGS, REFERENCE_SAMPLES
from tests.gate.helpers import PLUGIN_ARGS

README = Path(pytest_modgap.__file__).resolve().parents[1] / "README.md"


def _quick_start() -> list[str]:
    """The lines of the shell block under the README's "Quick start" heading."""
    section = README.read_text(encoding="utf-8").split("## Quick start", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None, "the quick start has a shell block"
    return block.group(1).splitlines()


def _setup(lines: list[str], folder: Path) -> list[list[str]]:
    """Write the files the block creates (``echo ... > file`` and ``cat > file <<'TAG'``) into
    ``folder``; return the pytest commands after them, split into arguments."""
    commands = []
    heredoc: tuple[str, str, list[str]] | None = None
    for line in lines:
        if heredoc is not None:
            name, tag, body = heredoc
            if line == tag:
                (folder / name).write_text("\n".join(body) + "\n", encoding="utf-8")
                heredoc = None
            else:
                body.append(line)
            continue
        command = line.split("#", 1)[0].strip() if not line.startswith("cat") else line
        if (match := re.match(r"cat > (\S+) <<'(\w+)'$", command)) is not None:
            heredoc = (match.group(1), match.group(2), [])
        elif (match := re.match(r'echo "(.*)" > (\S+)$', command)) is not None:
            (folder / match.group(2)).write_text(match.group(1) + "\n", encoding="utf-8")
        elif command.startswith("pytest "):
            commands.append(shlex.split(command)[1:])
    return commands


def test_the_quick_start_is_self_contained_inside_a_clone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, reference_embeddings: Path
) -> None:
    clone = pytester.mkdir("clone")
    # The clone's own configuration would make it the rootdir, and its baselines/ the target.
    (clone / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = "-ra"\n', encoding="utf-8"
    )
    (clone / "baselines").mkdir()
    gate = clone / "gate"
    gate.mkdir()
    commands = _setup(_quick_start(), gate)
    assert len(commands) == 3 and (gate / "pytest.ini").is_file()
    test_file = (gate / "test_gap.py").read_text(encoding="utf-8")
    # The README's 500 pairs, cut to the ones embedded once for the whole suite.
    assert "samples=500" in test_file
    (gate / "test_gap.py").write_text(
        test_file.replace("samples=500", f"samples={REFERENCE_SAMPLES}"), encoding="utf-8"
    )
    models = str(reference_model_dir("reference").parent)
    monkeypatch.chdir(gate)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    extra = (*PLUGIN_ARGS, *FAST_ARGS, f"--modgap-cache-dir={reference_embeddings}")
    extra = (*extra, "--modgap-n-boot=50")
    results = [
        pytester.runpytest(*extra, *(a.replace("$MODELS", models) for a in command))
        for command in commands
    ]
    results[0].assert_outcomes(passed=1)
    results[1].assert_outcomes(passed=1)
    results[2].assert_outcomes(failed=1)
    results[2].stdout.fnmatch_lines(["*REGRESSED (lower is better)*"])
    assert (gate / "baselines" / "release-3.yaml").is_file()
    assert list((clone / "baselines").iterdir()) == [], "the clone's baselines/ stays untouched"
