"""Recording baselines where it cannot work (issue 9, items 9 and 10): a folder in the way, a folder
that cannot be written, and a lock left behind by a killed run.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines import assert_no_regression, locking
from tests.gate.conftest import RunPytest
from tests.gate.helpers import GATE_TEST
from tests.gate.test_baseline_engine import make_report

as_root = pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders"
)


@pytest.mark.parametrize("update", [True, False], ids=["update", "check"])
def test_a_folder_where_the_baseline_file_goes(
    pytester: pytest.Pytester, run: RunPytest, models: dict[str, str], update: bool
) -> None:
    folder = pytester.path / "baselines" / "release.yaml"
    folder.mkdir(parents=True)
    pytester.makepyfile(test_gate=GATE_TEST)
    result = run("--modgap-model", models["reference"], *(["--modgap-update"] if update else []))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"modgap: Baseline file {folder} is a folder, not a baseline file. Move it out of "
            f"the way, or use another baseline name."
        ]
    )
    assert "IsADirectoryError" not in result.stdout.str()


def test_a_baseline_folder_below_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "baselines"
    blocker.write_text("a file")
    with pytest.raises(BaselineError) as raised:
        assert_no_regression(make_report(alignment=0.5), "b", baseline_dir=blocker, update=True)
    assert str(raised.value).startswith(
        f"Baseline file {blocker / 'b.yaml'} cannot be written (File exists: {blocker}). Make "
        f"{blocker} a writable folder, or record the baseline in another one"
    )


@as_root
def test_a_read_only_baseline_folder(tmp_path: Path) -> None:
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(BaselineError, match=r"b.yaml cannot be written \(Permission denied"):
            assert_no_regression(
                make_report(alignment=0.5), "b", baseline_dir=tmp_path, update=True
            )
    finally:
        tmp_path.chmod(0o755)


HOLD_THE_LOCK = """
import sys
import time
from pathlib import Path

from pytest_modgap.gate.baselines import locking

with locking._locked(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(600)
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    """A process that holds the lock of ``path`` until it is killed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "locked"
    return process


def test_a_lock_left_by_a_killed_run_does_not_block_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "b.yaml"
    holder = _holder(path)
    holder.kill()
    holder.wait()
    lock = tmp_path / "b.yaml.lock"
    assert lock.exists(), "the killed run left its lock file behind"

    monkeypatch.setattr(locking, "_LOCK_TIMEOUT_S", 5.0)
    started = time.monotonic()
    written = assert_no_regression(
        make_report(alignment=0.5), "b", baseline_dir=tmp_path, update=True
    )
    assert time.monotonic() - started < 2.0
    assert written.verdict == "updated" and path.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.yaml"]


def test_a_live_holder_still_excludes_and_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = _holder(tmp_path / "b.yaml")
    monkeypatch.setattr(locking, "_LOCK_TIMEOUT_S", 0.3)
    try:
        with pytest.raises(BaselineError) as raised:
            assert_no_regression(
                make_report(alignment=0.5), "b", baseline_dir=tmp_path, update=True
            )
    finally:
        holder.kill()
        holder.wait()
    assert f"is locked by 'pid {holder.pid} on {socket.gethostname()}'" in str(raised.value)
    assert not (tmp_path / "b.yaml").exists()


def test_the_fallback_lock_without_flock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where there is no flock (Windows), an old lock file is taken over, a fresh one waited on."""
    path, lock = tmp_path / "b.yaml", tmp_path / "b.yaml.lock"
    lock.write_text("pid 1 on elsewhere\n")
    monkeypatch.setattr(locking, "_LOCK_TIMEOUT_S", 0.2)
    with pytest.raises(BaselineError, match="is locked by 'pid 1 on elsewhere'"):
        with locking._exclusive_lock(lock, path):
            pass
    old = time.time() - locking._STALE_LOCK_S - 10
    os.utime(lock, (old, old))
    with locking._exclusive_lock(lock, path):
        assert lock.read_text() == f"pid {os.getpid()} on {socket.gethostname()}\n"
    assert not lock.exists()
