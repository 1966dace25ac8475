"""--modgap-json, --modgap-report-dir and the baseline folder are checked before the first test
(issue 9, item 7): a path that cannot be written is a usage error naming the option, not a
traceback after the whole run. What fails at the end anyway is one line, and the summary prints.
"""

from __future__ import annotations

import os

import pytest

from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST

MEASURE = """
import pytest

@pytest.mark.modgap(samples=100)
def test_measure(modgap):
    modgap.measure()
"""

as_root = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders"
)


def _usage_error(result: pytest.RunResult, message: str) -> None:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "test_measure" not in result.stdout.str(), "no test may run"


def test_json_path_that_is_a_folder(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=MEASURE)
    folder = pytester.mkdir("results")
    result = run(f"--modgap-model={models['reference']}", f"--modgap-json={folder}")
    _usage_error(
        result,
        f"--modgap-json={folder}: it is a folder; give a file path, e.g. {folder / 'modgap.json'}*",
    )


def test_json_path_below_a_file(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=MEASURE)
    blocker = pytester.path / "results"
    blocker.write_text("a file")
    target = blocker / "day1" / "modgap.json"
    result = run(f"--modgap-model={models['reference']}", f"--modgap-json={target}")
    _usage_error(
        result,
        f"--modgap-json={target}: {target.parent} cannot be created: {blocker} is a file, not a "
        f"folder. Give a path this run can write (missing folders are created).",
    )


def test_json_path_of_an_ini_twin_names_the_ini_option(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=MEASURE)
    pytester.mkdir("results")
    pytester.makeini("[pytest]\nmodgap_json = results\n")
    result = run(f"--modgap-model={models['reference']}")
    _usage_error(result, f"ini option modgap_json = {pytester.path / 'results'} (in tox.ini): *")


def test_report_dir_that_is_a_file(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=MEASURE)
    target = pytester.path / "report"
    target.write_text("a file")
    result = run(f"--modgap-model={models['reference']}", f"--modgap-report-dir={target}")
    _usage_error(result, f"--modgap-report-dir={target}: {target} is a file, not a folder. *")


def test_baseline_dir_that_is_a_file_under_update(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=GATE_TEST)
    (pytester.path / "baselines").write_text("a file")
    result = run(f"--modgap-model={models['reference']}", "--modgap-update")
    _usage_error(
        result,
        f"--modgap-baseline-dir (default {pytester.path / 'baselines'}): "
        f"{pytester.path / 'baselines'} is a file, not a folder. *",
    )


@as_root
@pytest.mark.parametrize("option", ["json", "report-dir", "update"])
def test_read_only_folders(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str], option: str
) -> None:
    pytester.makepyfile(test_gate=MEASURE)
    locked = pytester.mkdir("locked")
    arguments = {
        "json": [f"--modgap-json={locked / 'r.json'}"],
        "report-dir": [f"--modgap-report-dir={locked / 'report'}"],
        "update": [f"--modgap-baseline-dir={locked / 'baselines'}", "--modgap-update"],
    }[option]
    locked.chmod(0o555)
    try:
        result = run(f"--modgap-model={models['reference']}", *arguments)
    finally:
        locked.chmod(0o755)
    _usage_error(result, f"--modgap-*: {locked} is not writable. *")


LOSE_THE_FOLDER = """
import pathlib
import shutil

import pytest

@pytest.mark.modgap(samples=100)
def test_measure(modgap):
    modgap.measure()
    # The output folder goes away during the run: the write at the end must fail.
    out = pathlib.Path({out!r})
    shutil.rmtree(out)
    out.write_text("not a folder any more")
"""


def test_a_failure_to_write_at_the_end_is_one_line_and_the_summary_prints(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    out = pytester.mkdir("out")
    pytester.makepyfile(test_gate=LOSE_THE_FOLDER.format(out=str(out)))
    target, report = out / "run" / "modgap.json", out / "report"
    result = run(
        f"--modgap-model={models['reference']}",
        f"--modgap-json={target}",
        f"--modgap-report-dir={report}",
    )
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    output = result.stdout.str()
    assert "INTERNALERROR" not in output and "Traceback" not in output
    result.stdout.fnmatch_lines(
        [
            "*= modgap =*",
            "modgap tests: 1 passed, 0 regressed, 0 updated, 0 skipped",
            f"*{models['reference']} (precomputed) (n=100*",
            f"modgap: could not write --modgap-json={target} (Not a directory: *)",
            f"modgap: could not write --modgap-report-dir={report} (*: *)",
            "*= 1 passed in *",
        ]
    )
    assert "results written to" not in output and "index.html written" not in output


def test_a_failure_to_write_the_json_of_a_run_without_modgap_tests_still_shows(
    pytester: pytest.Pytester, run: RunPytest
) -> None:
    out = pytester.mkdir("out")
    pytester.makepyfile(
        test_plain=f"""
        import pathlib
        import shutil

        def test_plain():
            shutil.rmtree({str(out)!r})
            pathlib.Path({str(out)!r}).write_text("x")
        """
    )
    result = run(f"--modgap-json={out / 'run' / 'modgap.json'}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*= modgap =*", "modgap: could not write --modgap-json=*"])


def test_missing_folders_are_still_created(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str]
) -> None:
    pytester.makepyfile(test_gate=MEASURE)
    target = pytester.path / "new" / "deeper" / "modgap.json"
    result = run(f"--modgap-model={models['reference']}", f"--modgap-json={target}")
    result.assert_outcomes(passed=1)
    assert target.is_file()
    result.stdout.fnmatch_lines([f"results written to {target}"])
