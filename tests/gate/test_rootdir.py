"""``--modgap-model PATH`` with a space: pytest takes PATH for a test path when it picks the
rootdir (before the plugin loads), which moves the default baseline folder; refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gate.conftest import FAST_ARGS


@pytest.fixture
def model_elsewhere(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder outside the test project (as a checkpoint folder usually is)."""
    folder = tmp_path_factory.mktemp("checkpoints") / "candidate"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_a_model_folder_after_a_space_that_moves_the_rootdir_is_a_usage_error(
    pytester: pytest.Pytester, model_elsewhere: Path
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest(*FAST_ARGS, "--modgap-model", str(model_elsewhere))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*--modgap-model {model_elsewhere} (with a space)*Write --modgap-model={model_elsewhere}*"
        ]
    )


def test_the_equals_form_and_a_pinned_rootdir_are_fine(
    pytester: pytest.Pytester, model_elsewhere: Path
) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    pytester.runpytest(*FAST_ARGS, f"--modgap-model={model_elsewhere}").assert_outcomes(passed=1)
    pinned = pytester.runpytest(
        *FAST_ARGS, f"--rootdir={pytester.path}", "--modgap-model", str(model_elsewhere)
    )
    pinned.assert_outcomes(passed=1)
