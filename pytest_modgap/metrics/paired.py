"""Paired comparison of a candidate and a reference model measured on the same pairs.

One set of bootstrap resamples of the pairs serves both models, so each difference has its own interval.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pytest_modgap.errors import ModgapError, ModgapInputError
from pytest_modgap.metrics.bootstrap import (
    basic_interval,
    bootstrap_distributions,
    check_interval_options,
    metric_intervals,
    point_estimates,
)
from pytest_modgap.metrics.catalogue import METRICS
from pytest_modgap.metrics.inputs import EmbeddingSet
from pytest_modgap.metrics.measured import MeasuredPairs
from pytest_modgap.metrics.report import Report

if TYPE_CHECKING:
    from pytest_modgap.metrics.definitions import PairStatistics

"""(image, text, text2 or None, groups or None) of one model, row i of each being pair i."""

Verdict = Literal["worse", "better", "same", "changed"]

DEFAULT_TOLERANCE = 0.01
"""Absolute change a metric may make before it counts as worse or better. The paired bootstrap
resolves differences far below any that matter (adding 1% noise to the embeddings is significant),
so a tolerance, not the interval alone, keeps noise-level changes "same"."""


@dataclass(frozen=True)
class MetricDifference:
    """One metric of a paired comparison: both values, their difference and its interval.

    ``verdict``: ``worse`` when the candidate moved the bad way by more than ``tolerance`` and the
    difference's interval excludes zero, ``better`` the same the good way, else ``same``; metrics
    with no better direction get ``changed`` instead of worse / better.
    """

    name: str
    better: str
    reference: float
    candidate: float
    difference: float
    ci: tuple[float, float] | None
    reference_ci: tuple[float, float] | None
    candidate_ci: tuple[float, float] | None
    tolerance: float
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "metric": self.name,
            "better": self.better,
            "reference": self.reference,
            "candidate": self.candidate,
            "difference": self.difference,
            "ci": None if self.ci is None else list(self.ci),
            "reference_ci": None if self.reference_ci is None else list(self.reference_ci),
            "candidate_ci": None if self.candidate_ci is None else list(self.candidate_ci),
            "tolerance": self.tolerance,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Comparison:
    """A candidate against a reference on the same n pairs: ``comparison["alignment"].verdict``."""

    rows: tuple[MetricDifference, ...]
    n: int
    ci_level: float | None
    n_boot: int
    seed: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> MetricDifference:
        for row in self.rows:
            if row.name == name:
                return row
        known = ", ".join(row.name for row in self.rows)
        raise KeyError(f"{name!r} is not in this comparison. Available: {known}.")

    def __iter__(self) -> Iterator[MetricDifference]:
        return iter(self.rows)

    @property
    def failed(self) -> list[str]:
        """The metrics on which the candidate is worse than the reference."""
        return [row.name for row in self.rows if row.verdict == "worse"]

    def table(self) -> str:
        """metric | reference | candidate | difference (CI) | tolerance | verdict; worse rows ``>``."""
        level = f"{self.ci_level:.0%} CI" if self.ci_level is not None else "no CI"
        header = (
            "metric",
            "reference",
            "candidate",
            f"difference ({level})",
            "tolerance",
            "verdict",
        )
        cells = [
            (
                row.name,
                f"{row.reference:.4f}",
                f"{row.candidate:.4f}",
                _signed_with_ci(row.difference, row.ci),
                f"{row.tolerance:.4f}" if row.better != "none" else "-",
                f"WORSE ({row.better} is better)" if row.verdict == "worse" else row.verdict,
            )
            for row in self.rows
        ]
        marks = [">" if row.verdict == "worse" else " " for row in self.rows]
        return _aligned(header, cells, marks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form: every row, the failed metrics and how the intervals were computed."""
        return {
            "n": self.n,
            "ci_level": self.ci_level,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "failed": self.failed,
            "metadata": dict(self.metadata),
            "metrics": [row.to_dict() for row in self.rows],
        }


def _signed_with_ci(value: float, ci: tuple[float, float] | None) -> str:
    text = f"{value:+.4f}"
    return text if ci is None else f"{text} [{ci[0]:+.4f}, {ci[1]:+.4f}]"


def _aligned(header: Sequence[str], cells: Sequence[Sequence[str]], marks: Sequence[str]) -> str:
    widths = [max(len(line[i]) for line in (header, *cells)) for i in range(len(header))]

    def line(mark: str, values: Sequence[str]) -> str:
        text = "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True))
        return f"{mark} {text}".rstrip()

    return "\n".join([line(" ", header), *(line(m, c) for m, c in zip(marks, cells, strict=True))])


def _tolerances(tolerance: float | Mapping[str, float] | None) -> dict[str, float]:
    """Per-metric tolerances; metrics a mapping leaves out get DEFAULT_TOLERANCE.

    Each must be a finite number >= 0: every comparison with NaN is false, so a NaN (or infinite)
    tolerance would call every difference "same" and pass every check; a negative one would fail
    every metric.
    """
    if tolerance is None:
        return dict.fromkeys(METRICS, DEFAULT_TOLERANCE)
    if isinstance(tolerance, Mapping):
        unknown = sorted(map(str, set(tolerance) - set(METRICS)))
        if unknown:
            raise ModgapInputError(
                f"tolerance: {', '.join(unknown)} {'is not a' if len(unknown) == 1 else 'are not'} "
                f"metric name{'s' if len(unknown) > 1 else ''}; known: {', '.join(METRICS)}."
            )
        given = {name: tolerance.get(name, DEFAULT_TOLERANCE) for name in METRICS}
        label = {name: f"tolerance[{name!r}]" for name in METRICS}
    else:
        given = dict.fromkeys(METRICS, tolerance)
        label = dict.fromkeys(METRICS, "tolerance")
    chosen = {}
    for name, value in given.items():
        number = _usable_tolerance(value)
        if number is None:
            shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
            raise ModgapInputError(
                f"{label[name]}={shown}: a tolerance must be a finite, non-negative absolute "
                f"change, e.g. 0.01 (NaN or infinity would pass every check, a negative value "
                f"fail every one)."
            )
        chosen[name] = number
    return chosen


def _usable_tolerance(value: object) -> float | None:
    """``value`` as a float when it is a finite real number >= 0 (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return number if math.isfinite(number) and number >= 0.0 else None


def _verdict(
    better: str, difference: float, ci: tuple[float, float] | None, tolerance: float
) -> Verdict:
    beyond_tolerance = abs(difference) > tolerance
    # Without intervals the tolerance alone decides; with them, the interval must exclude zero too.
    significant = ci is None or ci[0] > 0.0 or ci[1] < 0.0
    if not (beyond_tolerance and significant):
        return "same"
    if better == "none":
        return "changed"
    improved = difference > 0.0 if better == "higher" else difference < 0.0
    return "better" if improved else "worse"


def _statistics(
    name: str, embedding_set: EmbeddingSet | MeasuredPairs, retrieval: bool
) -> PairStatistics:
    from pytest_modgap.metrics.engine import checked_statistics

    try:
        if isinstance(embedding_set, MeasuredPairs):
            arguments = embedding_set.arguments()
            arguments["retrieval"] = arguments["retrieval"] and retrieval
            return checked_statistics(embedding_set.image, embedding_set.text, **arguments)
        image, text, text2, groups = embedding_set
        return checked_statistics(image, text, text2=text2, groups=groups, retrieval=retrieval)
    except ModgapInputError as error:
        raise ModgapInputError(f"{name} model: {error}") from None


def _pair_set(embeddings: EmbeddingSet | MeasuredPairs) -> EmbeddingSet:
    """(image, text, text2, groups) of either form."""
    if isinstance(embeddings, MeasuredPairs):
        return embeddings.image, embeddings.text, embeddings.text2, embeddings.groups
    return embeddings


def _same_groups(candidate: Any, reference: Any) -> None:
    if candidate is None and reference is None:
        return
    if (
        candidate is None
        or reference is None
        or not np.array_equal(_numpy(candidate), _numpy(reference))
    ):
        raise ModgapInputError(
            "groups: differ between the candidate and the reference; a paired comparison needs "
            "the same pairs, so pass the same groups (or none) for both."
        )


def _numpy(value: Any) -> np.ndarray:
    detach = getattr(value, "detach", None)
    return np.asarray(value if detach is None else detach().cpu().numpy())


def compare_embeddings(
    candidate: EmbeddingSet | MeasuredPairs,
    reference: EmbeddingSet | MeasuredPairs,
    *,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    tolerance: float | Mapping[str, float] | None = None,
    retrieval: bool = True,
) -> Comparison:
    """Every metric of ``candidate`` against ``reference``, embeddings of the same pairs, paired.

    Each is (image, text, text2, groups), as ``measure_embeddings`` takes them (text2 and groups may
    be None; both models need the same row count, the same groups and text2 both or neither). For
    each of ``n_boot`` resamples of the pairs (``seed``), the same pair weights go to both models and
    the difference metric(candidate) − metric(reference) is recorded; its basic bootstrap interval
    at level ``ci`` says whether the models differ on these pairs (each model's own interval is the
    one ``measure_embeddings`` reports). ``tolerance``: the absolute change
    allowed (one number, or per metric; default DEFAULT_TOLERANCE). See ``MetricDifference`` for
    the verdicts; ``Comparison.failed`` lists the worse metrics. ``retrieval=False`` leaves the
    recalls out (class-prompt captions), as in ``measure_embeddings``. Given as ``MeasuredPairs``,
    both samples bring every caption and their zero-shot prompts, so the recalls over all captions
    and the zero-shot metrics are compared too.
    """
    import torch

    check_interval_options(ci, n_boot)
    tolerances = _tolerances(tolerance)
    pairs_c, pairs_r = _pair_set(candidate), _pair_set(reference)
    if len(pairs_c[0]) != len(pairs_r[0]):
        raise ModgapInputError(
            f"candidate and reference: have {len(pairs_c[0])} and {len(pairs_r[0])} pairs; a "
            f"paired comparison needs the embeddings of the same pairs from both models."
        )
    if (pairs_c[2] is None) != (pairs_r[2] is None):
        raise ModgapInputError(
            "text2: given for only one of the models; the paired comparison needs the same pairs, "
            "so pass the second caption embeddings for both models or for neither."
        )
    _same_groups(pairs_c[3], pairs_r[3])
    with torch.inference_mode():
        stats_c = _statistics("candidate", candidate, retrieval)
        stats_r = _statistics("reference", reference, retrieval)
        scaled_c, scaled_r = point_estimates(stats_c), point_estimates(stats_r)
        point_c = {name: value for name, value in scaled_c.items() if name in METRICS}
        point_r = {name: value for name, value in scaled_r.items() if name in METRICS}
        resampled = (
            None
            if ci is None
            else bootstrap_distributions([stats_c, stats_r], n_boot=n_boot, seed=seed)
        )
    bad = [name for name in point_c if not np.isfinite([point_c[name], point_r[name]]).all()]
    if bad:
        raise ModgapInputError(
            f"candidate and reference: {', '.join(bad)} came out non-finite; check the inputs "
            f"for values near the float32 limits."
        )
    intervals_c: dict[str, tuple[float, float]] = {}
    intervals_r: dict[str, tuple[float, float]] = {}
    if resampled is not None and ci is not None:
        intervals_c = metric_intervals(scaled_c, resampled[0], ci)
        intervals_r = metric_intervals(scaled_r, resampled[1], ci)
    rows = []
    for name, better in ((name, METRICS[name].better) for name in point_c):
        difference = point_c[name] - point_r[name]
        diff_ci = None
        if resampled is not None and ci is not None:
            replicates = resampled[0][name] - resampled[1][name]
            diff_ci = basic_interval(difference, replicates, ci)
        reference_ci, candidate_ci = intervals_r.get(name), intervals_c.get(name)
        rows.append(
            MetricDifference(
                name=name,
                better=better,
                reference=point_r[name],
                candidate=point_c[name],
                difference=difference,
                ci=diff_ci,
                reference_ci=reference_ci,
                candidate_ci=candidate_ci,
                tolerance=tolerances[name],
                verdict=_verdict(better, difference, diff_ci, tolerances[name]),
            )
        )
    return Comparison(
        rows=tuple(rows),
        n=stats_c.n,
        ci_level=ci,
        n_boot=0 if ci is None else n_boot,
        seed=seed,
    )


def compare_reports(a: Report, b: Report, *, labels: tuple[str, str] | None = None) -> str:
    """An unpaired table of two saved reports: each value with its own interval and b − a.

    The reports may come from different pairs, so no interval of the difference is claimed; the
    ``change`` column says which way b moved only where the two intervals do not overlap. For a paired test on the same pairs use
    ``compare_models`` (``modgap measure --reference-model``).
    """
    names = [name for name in a if name in b]
    if not names:
        raise ModgapError("compare: the two reports have no metric in common.")
    first, second = labels or (_label(a, "a"), _label(b, "b"))
    header = ("metric", "better", "a", "b", "difference (b − a)", "change")
    cells = [
        (
            name,
            METRICS[name].better if name in METRICS else "?",
            a.format_value(name),
            b.format_value(name),
            f"{b[name] - a[name]:+.4f}",
            _change(name, a, b),
        )
        for name in names
    ]
    marks = [">" if cell[-1] == "worse" else " " for cell in cells]
    lines = [
        f"a: {first} (n = {a.n}{_level(a)})",
        f"b: {second} (n = {b.n}{_level(b)})",
        "",
        _aligned(header, cells, marks),
        "",
        "Unpaired: the intervals are each report's own. For a paired test of two models on the",
        "same pairs run `modgap measure --model B --reference-model A`.",
    ]
    return "\n".join(lines)


def _label(report: Report, fallback: str) -> str:
    model = report.metadata.get("model")
    dataset = report.metadata.get("dataset")
    if model and dataset:
        return f"{model} on {dataset}"
    return str(model or fallback)


def _level(report: Report) -> str:
    return f", {report.ci_level:.0%} CI" if report.ci_level is not None else ""


def _change(name: str, a: Report, b: Report) -> str:
    """Which way b moved, claimed only when the two intervals do not overlap (or none exist)."""
    difference = b[name] - a[name]
    if name in a.ci and name in b.ci:
        (a_low, a_high), (b_low, b_high) = a.ci[name], b.ci[name]
        if a_low <= b_high and b_low <= a_high:
            return "within CIs"
    if difference == 0.0:
        return "same"
    better = METRICS[name].better if name in METRICS else "none"
    if better == "none":
        return "changed"
    improved = difference > 0.0 if better == "higher" else difference < 0.0
    return "better" if improved else "worse"
