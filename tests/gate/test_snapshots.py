"""Baseline snapshots: written beside the YAML, checked paired (the change with its own interval),
the pairs that got worse named, and a damaged or foreign snapshot refused by name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from pytest_modgap import measure
from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines import BaselineRegression, assert_no_regression
from pytest_modgap.gate.baselines.schema import SnapshotRef
from pytest_modgap.gate.baselines.snapshot import read_snapshot
from pytest_modgap.metrics.report import Report
from pytest_modgap.reference import reference_model_dir


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    """The shipped reference and regressed models on the same 60 pairs of the built-in set."""
    cache = tmp_path_factory.mktemp("cache")
    return {
        variant: measure(
            str(reference_model_dir(variant)),
            "shapes",
            samples=60,
            cache_dir=cache,
            n_boot=200,
            progress=False,
        )
        for variant in ("reference", "regressed")
    }


def test_the_regressed_model_fails_listing_pairs_and_each_changes_interval(
    tmp_path: Path, reports: dict[str, Report]
) -> None:
    assert_no_regression(reports["reference"], "release", baseline_dir=tmp_path, update=True)
    snapshots = list((tmp_path / "release.snapshots").glob("*.npz"))
    assert len(snapshots) == 1
    with pytest.raises(BaselineRegression) as failed:
        assert_no_regression(reports["regressed"], "release", baseline_dir=tmp_path)
    text = str(failed.value)
    comparison = failed.value.comparison
    assert "change (paired CI)" in text
    for row in comparison.rows:
        assert row.change_ci is not None, row.name
        low, high = row.change_ci
        assert low <= row.change <= high, (row.name, row.change, row.change_ci)
        assert f"{row.change:+.4f} [{low:+.4f}, {high:+.4f}]" in text
    assert "Pairs that got worse, matched similarity dropped most" in text
    worst = comparison.pair_changes.similarity[0]  # type: ignore[union-attr]
    assert f"{worst.caption!r}" in text and worst.name in text
    assert worst.after < worst.before
    listed = text.split("matched similarity dropped most")[1].split("\n\n")[0]
    assert len(listed.strip().splitlines()) == 1 + 5  # the title's end, then five pairs


def test_the_json_form_keeps_twenty_pairs_per_view(
    tmp_path: Path, reports: dict[str, Report]
) -> None:
    assert_no_regression(reports["reference"], "release", baseline_dir=tmp_path, update=True)
    with pytest.raises(BaselineRegression) as failed:
        assert_no_regression(reports["regressed"], "release", baseline_dir=tmp_path)
    data = failed.value.comparison.to_dict()
    assert len(data["pairs_worse"]["similarity"]) == 20
    first = data["pairs_worse"]["similarity"][0]
    assert set(first) >= {"image", "caption", "before", "after", "change"}
    assert all(row["change_ci"] is not None for row in data["rows"])


def test_a_snapshot_is_the_recorded_vectors_in_float16(
    tmp_path: Path, reports: dict[str, Report]
) -> None:
    report = reports["reference"]
    assert_no_regression(report, "release", baseline_dir=tmp_path, update=True)
    entry = yaml.safe_load((tmp_path / "release.yaml").read_text())["datasets"]["shapes"]
    stored = read_snapshot(tmp_path, SnapshotRef(**entry["snapshot"]), key="shapes")
    measured = report.measured
    assert measured is not None
    assert np.array_equal(stored.pair_ids, measured.pair_ids)
    assert list(stored.captions) == list(measured.captions)
    unit = measured.image / np.linalg.norm(measured.image, axis=1, keepdims=True)
    assert np.abs(stored.image - unit).max() < 1e-3  # float16 keeps ~3 significant digits


def test_a_damaged_snapshot_is_refused_by_name(tmp_path: Path, reports: dict[str, Report]) -> None:
    assert_no_regression(reports["reference"], "release", baseline_dir=tmp_path, update=True)
    (snapshot,) = (tmp_path / "release.snapshots").glob("*.npz")
    data = bytearray(snapshot.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    with pytest.raises(BaselineError, match=rf"{snapshot.name} of entry 'shapes' is damaged"):
        assert_no_regression(reports["reference"], "release", baseline_dir=tmp_path)
    snapshot.unlink()
    with pytest.raises(BaselineError, match=rf"{snapshot.name} of entry 'shapes' cannot be read"):
        assert_no_regression(reports["reference"], "release", baseline_dir=tmp_path)


def test_another_entrys_snapshot_is_refused_even_with_its_hash(
    tmp_path: Path, reports: dict[str, Report]
) -> None:
    report = reports["reference"]
    assert_no_regression(report, "release", baseline_dir=tmp_path, update=True)
    assert_no_regression(report, "release", baseline_dir=tmp_path, update=True, entry="copy")
    path = tmp_path / "release.yaml"
    data = yaml.safe_load(path.read_text())
    data["datasets"]["shapes"]["snapshot"] = dict(data["datasets"]["copy"]["snapshot"])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(BaselineError, match=r"is not the snapshot of entry 'shapes'"):
        assert_no_regression(report, "release", baseline_dir=tmp_path)


def test_without_snapshots_nothing_is_written_and_the_numbers_are_compared(
    tmp_path: Path, reports: dict[str, Report]
) -> None:
    assert_no_regression(
        reports["reference"], "release", baseline_dir=tmp_path, update=True, snapshots=False
    )
    assert not (tmp_path / "release.snapshots").exists()
    assert "snapshot:" not in (tmp_path / "release.yaml").read_text()
    with pytest.raises(BaselineRegression) as failed:
        assert_no_regression(reports["regressed"], "release", baseline_dir=tmp_path)
    comparison = failed.value.comparison
    assert comparison.snapshot is None and comparison.pair_changes is None
    assert all(row.change_ci is None for row in comparison.rows)


def test_a_snapshot_path_leaving_the_folder_is_malformed(tmp_path: Path) -> None:
    digest = hashlib.sha256(b"").hexdigest()
    (tmp_path / "bad.yaml").write_text(
        "format: pytest-modgap/2\ndatasets:\n  shapes:\n    n: 40\n"
        f"    snapshot: {{file: ../../etc/x.npz, sha256: {digest}}}\n"
        "    metrics: {alignment: 0.5}\n"
    )
    with pytest.raises(BaselineError, match=r"snapshot.file' must be a relative .npz path"):
        assert_no_regression(Report({"alignment": 0.5}, 40), "bad", baseline_dir=tmp_path)


def test_re_recording_without_snapshots_removes_the_entrys_old_snapshot(
    tmp_path: Path, reports: dict[str, Report]
) -> None:
    assert_no_regression(reports["reference"], "release", baseline_dir=tmp_path, update=True)
    (snapshot,) = (tmp_path / "release.snapshots").glob("*.npz")
    assert_no_regression(
        reports["reference"], "release", baseline_dir=tmp_path, update=True, snapshots=False
    )
    assert not snapshot.exists()
    assert "snapshot:" not in (tmp_path / "release.yaml").read_text()
