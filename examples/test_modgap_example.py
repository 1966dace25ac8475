"""A model team's modality-gap tests, as they would sit in its own test suite (see README.md here).

Run: ``pytest examples --modgap-model=<checkpoint> --modgap-baseline-dir=examples/baselines``.
"""

import pytest


@pytest.mark.modgap(dataset="shapes", samples=200)
def test_no_gap_regression(modgap):
    # Embeds 200 random pairs of the built-in shapes set once per model and run; every metric
    # comes with a 95% bootstrap interval.
    report = modgap.measure()
    # Fails with a table of every metric when one moved the worse way by more than its tolerance;
    # `--modgap-update` records the baseline instead.
    modgap.check(report, baseline="shapes-release")


@pytest.mark.modgap(dataset="shapes", samples=200)
def test_matching_pairs_stand_out(modgap):
    # The same measurement as above: the plugin measures it once and shares the report.
    report = modgap.measure()
    # Absolute floors hold for any release, whatever the baseline says.
    assert report["alignment"] >= 0.6, report.table()
    low, _ = report.ci["auc"]
    assert low >= 0.9, f"matched pairs barely beat random ones: auc {report.format_value('auc')}"
