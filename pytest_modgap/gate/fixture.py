"""The ``modgap`` fixture's object (``modgap.measure()``, ``.check()``) and its marker's arguments.

A thin per-test view of the run's ModgapSession; baseline logic lives in ``baseline.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from pytest_modgap.errors import ModgapError
from pytest_modgap.gate.session import MeasureKey, ModgapSession

if TYPE_CHECKING:
    from pytest_modgap.gate.baselines import Comparison
    from pytest_modgap.metrics.paired import Comparison as PairedComparison
    from pytest_modgap.metrics.report import Report

MARKER_KEYWORDS = ("dataset", "samples", "model", "templates")
MARKER_LINE = (
    "modgap(*, dataset=None, samples=None, model=None, templates=None): a modality-gap test; it "
    "takes the modgap fixture. dataset / samples: what modgap.measure() measures by default (a "
    "relative path in dataset= is taken from the test file's folder); model: measure this model "
    "spec instead of the --modgap-model ones; templates: zero-shot prompt templates (a list with "
    "{c}, or 'cifar100' / 'default')."
)


class MarkerArgs(NamedTuple):
    """The validated keywords of a test's closest ``@pytest.mark.modgap``."""

    dataset: str | None = None
    samples: int | None = None
    model: str | None = None
    templates: str | tuple[str, ...] | None = None


def marker_args(node: pytest.Item | Any, name: str) -> MarkerArgs:
    """Validate every ``modgap`` marker on ``node`` and return the closest one's keywords.

    ``name`` is the test's name for the message. Raises ``pytest.Collector.CollectError``, which
    pytest shows as a one-paragraph collection error.
    """
    markers = list(node.iter_markers("modgap"))
    for marker in markers:
        problem = _marker_problem(marker.args, marker.kwargs)
        if problem is not None:
            keywords = problem.startswith(("positional", "unknown keyword"))
            usage = (
                f" The modgap marker takes only the keywords "
                f"{', '.join(k + '=' for k in MARKER_KEYWORDS)} e.g. "
                f'@pytest.mark.modgap(dataset="shapes", samples=200).'
                if keywords
                else ""
            )
            raise pytest.Collector.CollectError(
                f"{name}: invalid @pytest.mark.modgap: {problem.rstrip('.')}.{usage}"
            )
    if not markers:
        return MarkerArgs()
    found = dict(markers[0].kwargs)
    if isinstance(found.get("templates"), list):
        found["templates"] = tuple(found["templates"])
    return MarkerArgs(**found)


def _marker_problem(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """What is wrong with one marker's arguments, or None."""
    if args:
        return f"positional argument(s) {', '.join(map(repr, args))}"
    unknown = [key for key in kwargs if key not in MARKER_KEYWORDS]
    if unknown:
        return f"unknown keyword(s) {', '.join(unknown)}"
    for key in ("dataset", "model"):
        if kwargs.get(key) is not None and not isinstance(kwargs[key], str):
            return f"{key}= must be a spec string, not {kwargs[key]!r}"
    samples = kwargs.get("samples")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int)):
        return f"samples= must be an integer, not {samples!r}"
    if samples is not None and samples < 2:
        return f"samples={samples}: the metrics compare pairs and need at least 2"
    templates = kwargs.get("templates")
    if templates is not None:
        from pytest_modgap.data.templates import resolve_templates

        try:
            resolve_templates(templates, "")
        except ModgapError as exc:
            return str(exc)
    return None


def _tolerance_problem(tolerance: object) -> str | None:
    """The failure message for a ``tolerance=`` that is not a finite number >= 0 (or a mapping of
    metric names to such numbers), else None."""
    from pytest_modgap.gate.baselines.comparison import check_tolerances

    try:
        check_tolerances(tolerance, "tolerance")
    except ModgapError as exc:
        return f"modgap: {exc}"
    return None


class ModgapFixture:
    """What a modgap test receives: the model under test, and measure / check helpers.

    Reports are memoised per (model, data set, samples, seed) for the whole run, so tests asking
    for the same measurement share it; encoders are loaded once per run.
    """

    def __init__(
        self,
        session: ModgapSession,
        model: str,
        marker: MarkerArgs,
        nodeid: str,
        truncate_dim: int | None = None,
        *,
        test_dir: Path | None = None,
        record_property: Callable[[str, object], None] | None = None,
    ) -> None:
        self._session = session
        self._marker = marker
        if marker.dataset is not None and test_dir is not None:
            from pytest_modgap.gate.marker_dataset import resolve_marker_dataset

            self._marker = marker._replace(dataset=resolve_marker_dataset(marker.dataset, test_dir))
        self._nodeid = nodeid
        self._record_property = record_property
        self._measured: list[MeasureKey] = []
        self._compared: set[MeasureKey] = set()
        self.model = model
        """The model spec under test (one of --modgap-model, or the marker's ``model=``)."""
        self.nodeid = nodeid
        """The node id of the test this fixture serves."""
        self.truncate_dim = truncate_dim
        """The Matryoshka dimension under test (one of --modgap-truncate-dim), or None: full."""

    def measure(
        self,
        dataset: str | None = None,
        samples: int | None = None,
        *,
        templates: str | Sequence[str] | None = None,
    ) -> Report:
        """Measure ``self.model`` on ``dataset`` (default: the marker's, then --modgap-dataset,
        then ``shapes``) with ``samples`` random pairs (default: the marker's, then
        --modgap-samples, then all). ``templates``: the zero-shot prompt templates of a data set
        with class names (default: the marker's, then --modgap-templates, then the data set's
        published list). Returns the Report with 95% CIs (and ``report.slices``).
        """
        __tracebackhide__ = True
        try:
            key = self._key(dataset, samples, templates)
            report = self._session.measure(key)
        except ModgapError as exc:
            failure = f"modgap: {exc}"
        else:
            if key not in self._measured:
                self._measured.append(key)
                self._record_measurement(key)
            return report
        # Failing outside the except block keeps "During handling of ..." chains out of the output.
        pytest.fail(failure, pytrace=False)

    def compare(
        self,
        reference: str | None = None,
        *,
        dataset: str | None = None,
        samples: int | None = None,
        tolerance: float | None = None,
    ) -> PairedComparison:
        """Fail if ``self.model`` is worse than ``reference`` (default: --modgap-reference-model)
        on the same sampled pairs: worse by more than ``tolerance`` (default --modgap-tolerance) in
        a metric's bad direction, with the paired-bootstrap CI of the difference excluding zero.

        No stored baseline is needed: this gates "new checkpoint vs. the one in production". The
        failure shows reference | candidate | difference (95% CI) | tolerance | verdict per metric.
        """
        __tracebackhide__ = True
        problem = _tolerance_problem(tolerance)  # before any model is loaded or pair embedded
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        reference = reference or self._session.options.reference_model
        if not reference:
            pytest.fail(
                "modgap: compare() needs a reference model: pass --modgap-reference-model=SPEC "
                "(or modgap_reference_model in the ini file), or modgap.compare('<spec>').",
                pytrace=False,
            )
        key = self._key(dataset, samples)
        failure = self._compare(key, reference, tolerance)
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        return self._session.compare(key, reference, tolerance).comparison

    def compare_measured(self) -> str | None:
        """With --modgap-reference-model: compare every measurement of this test that ``compare``
        did not already cover; the failure text, or None when none is worse (the plugin calls this
        after the test body)."""
        reference = self._session.options.reference_model
        if not reference:
            return None
        failures = [
            failure
            for key in self._measured
            if key not in self._compared
            and (failure := self._compare(key, reference, None)) is not None
        ]
        return "\n\n".join(failures) or None

    @property
    def measured(self) -> list[MeasureKey]:
        """The measurements this test made, in order (for the pytest-html row)."""
        return list(self._measured)

    def _properties(self, properties: Sequence[tuple[str, str]]) -> None:
        """Record JUnit XML properties of this test (``gate/junit.py`` names them)."""
        if self._record_property is not None:
            for name, value in properties:
                self._record_property(name, value)

    def _dataset_key(self, key: MeasureKey) -> str:
        """The baseline key of a measurement's data set (``shapes``, ``shapes@128``)."""
        from pytest_modgap.gate.baselines import dataset_key

        record = self._session.measurements.get(key.label())
        label = record["dataset"] if record is not None else key.dataset
        return dataset_key(label) + ("" if key.truncate_dim is None else f"@{key.truncate_dim}")

    def _record_measurement(self, key: MeasureKey) -> None:
        from pytest_modgap.gate.junit import measurement_properties

        record = self._session.measurements.get(key.label())
        if record is None:
            return
        if len(self._measured) == 1:
            self._properties([("modgap.model", self.model)])
        self._properties(measurement_properties(self._dataset_key(key), record["report"]))

    def _compare(self, key: MeasureKey, reference: str, tolerance: float | None) -> str | None:
        from pytest_modgap.gate.junit import reference_properties

        self._compared.add(key)
        try:
            result = self._session.compare(key, reference, tolerance)
        except ModgapError as exc:
            return f"modgap: {exc}"
        comparison = result.comparison
        self._properties(reference_properties(self._dataset_key(key), reference, comparison.failed))
        if not comparison.failed:
            return None
        self._session.worse_than_reference.append(self._nodeid)
        return (
            f"modgap: {self.model} is worse than the reference model {reference} on "
            f"{', '.join(comparison.failed)} (data set {key.dataset!r}, {comparison.n} pairs, "
            f"paired bootstrap):\n\n{comparison.table()}"
        )

    def _key(
        self,
        dataset: str | None,
        samples: int | None,
        templates: str | Sequence[str] | None = None,
    ) -> MeasureKey:
        chosen = templates if templates is not None else self._marker.templates
        return self._session.key(
            self.model,
            dataset if dataset is not None else self._marker.dataset,
            samples if samples is not None else self._marker.samples,
            self.truncate_dim,
            chosen if chosen is None or isinstance(chosen, str) else tuple(chosen),
        )

    def check(
        self,
        report: Report,
        baseline: str,
        *,
        tolerance: float | Mapping[str, float] | None = None,
        metrics: Sequence[str] | None = None,
        slices: bool = False,
        entry: str | None = None,
    ) -> Comparison:
        """Fail if ``report`` regressed against ``baseline`` (a name in --modgap-baseline-dir, or a
        shipped ``paper/...`` one); with --modgap-update, record it instead. ``entry`` names the
        data set's entry in the file (default: its key, ``dataset_key``); a check whose pairs,
        samples, seed, templates or truncation differ from the entry's is refused by name.

        ``tolerance`` (absolute; one number, or per metric as in ``compare``) overrides the
        file's; ``metrics`` restricts the check;
        ``slices=True`` checks (records) every slice of the report too (``report.slices``). The
        failure shows one table of every checked metric, the slices that regressed worst first,
        and the command that re-records the baseline.
        """
        __tracebackhide__ = True
        from pytest_modgap.gate.baselines import BaselineRegression, check

        options = self._session.options
        try:
            comparison = check(
                report,
                baseline,
                baseline_dir=options.baseline_dir,
                tolerance=tolerance,
                metrics=metrics,
                update=options.update,
                default_tolerance=options.tolerance,
                model=self.model,
                nodeid=self._nodeid,
                command_options=self._session.replay,
                slices=slices,
                entry=entry,
                snapshots=options.snapshots,
            )
        except BaselineRegression as regression:
            self._session.record_check(self._nodeid, regression.comparison)
            self._record_check(regression.comparison)
            failure = str(regression)
        except ModgapError as exc:
            failure = f"modgap: {exc}"
        else:
            self._session.record_check(self._nodeid, comparison)
            self._record_check(comparison)
            return comparison
        pytest.fail(failure, pytrace=False)

    def _record_check(self, comparison: Comparison) -> None:
        from pytest_modgap.gate.junit import check_properties

        self._properties(check_properties(comparison.to_dict()))

    def __repr__(self) -> str:
        return f"<ModgapFixture model={self.model!r} test={self._nodeid!r}>"
