"""pytest entry point of pytest-modgap (registered as ``modgap`` in the pytest11 group).

Only hooks, options, the marker and fixtures live here; everything they do is delegated.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Literal

import pytest

from pytest_modgap.gate.fixture import MARKER_LINE, ModgapFixture, marker_args
from pytest_modgap.gate.session import OPTIONS, ModgapOptions, ModgapSession, model_ids, replay_args

# Nothing here may import torch, transformers or embedding/: a run without modgap tests must
# not pay for them (benchmarks/bench_startup.py measures it; tests/gate/test_startup.py checks).

_SESSION = pytest.StashKey[ModgapSession]()
_INI_TYPES: dict[str, Literal["bool", "args", "string"]] = {"flag": "bool", "list": "args"}
_NO_MODEL = "no model to measure: pass --modgap-model=SPEC (or set modgap_model in the ini file)"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the --modgap-* options and their modgap_* ini twins, in one group."""
    group = parser.getgroup("modgap", "modality-gap regression tests (pytest-modgap)")
    for spec in OPTIONS:
        extra: dict[str, Any] = {"metavar": spec.metavar} if spec.metavar else {}
        if spec.kind == "flag":
            group.addoption(spec.flag, dest=spec.dest, action="store_true", help=spec.help)
        elif spec.kind == "list":
            group.addoption(spec.flag, dest=spec.dest, action="append", help=spec.help, **extra)
        else:
            kind = {"int": int, "float": float}.get(spec.kind, str)
            group.addoption(spec.flag, dest=spec.dest, type=kind, help=spec.help, **extra)
        ini_type = _INI_TYPES.get(spec.kind, "string")
        parser.addini(spec.dest, f"ini twin of {spec.flag}: {spec.help}", type=ini_type)


def pytest_configure(config: pytest.Config) -> None:
    """Register the modgap marker and create the run's session state."""
    config.addinivalue_line("markers", MARKER_LINE)
    config.stash[_SESSION] = ModgapSession(ModgapOptions.from_config(config), replay_args(config))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Validate the modgap marker and run each modgap test once per model."""
    definition = metafunc.definition
    if "modgap" not in metafunc.fixturenames:
        if definition.get_closest_marker("modgap") is not None:
            raise pytest.Collector.CollectError(
                f"{definition.nodeid}: @pytest.mark.modgap is set but the test does not take the "
                f"modgap fixture; add `modgap` to its arguments: def {definition.name}(modgap)."
            )
        return
    marker = marker_args(definition, definition.nodeid)
    options = metafunc.config.stash[_SESSION].options
    models = (marker.model,) if marker.model else options.models
    if models:
        metafunc.parametrize("_modgap_model", models, ids=model_ids(models))
        if options.truncate_dims:
            dims = options.truncate_dims
            metafunc.parametrize("_modgap_dim", dims, ids=[f"dim{dim}" for dim in dims])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Warn once when --modgap-dataset (or its ini twin) is overridden by markers' ``dataset=``."""
    dataset = config.stash[_SESSION].options.dataset
    if dataset is not None:
        from pytest_modgap.gate.marker_dataset import warn_dataset_overrides

        warn_dataset_overrides(dataset, items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """With --modgap-reference-model, compare what a passing modgap test measured with the
    reference model on the same pairs, and fail the test when its model is worse."""
    result = yield
    fixture = getattr(item, "funcargs", {}).get("modgap")
    if isinstance(fixture, ModgapFixture):
        failure = fixture.compare_measured()
        if failure is not None:
            pytest.fail(failure, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Classify each modgap test's outcome (passed, regressed, updated, skipped) for the summary;
    with pytest-html writing a report (--html), put the test's metric table and figures into its
    row."""
    report = yield
    if "modgap" in getattr(item, "fixturenames", ()):
        state = item.config.stash[_SESSION]
        state.record_report(item.nodeid, report)
        fixture = getattr(item, "funcargs", {}).get("modgap")
        if (
            report.when == "call"
            and isinstance(fixture, ModgapFixture)
            and item.config.pluginmanager.hasplugin("html")
            and item.config.getoption("htmlpath", None)
        ):
            from pytest_modgap.gate.html_plugin import add_html_extras

            add_html_extras(report, state, fixture)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Ship a worker's results to the xdist controller, or write --modgap-json and
    --modgap-report-dir (a failure is one line of the summary, which still prints)."""
    config = session.config
    state = config.stash[_SESSION]
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["modgap"] = state.to_json()
        return
    from pytest_modgap.gate.summary import write_outputs

    write_outputs(state)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Merge a finished xdist worker's results into the controller's session."""
    output = getattr(node, "workeroutput", {}).get("modgap")
    if output:
        node.config.stash[_SESSION].merge(output)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """Print the modgap section: key metrics, baseline verdicts and outcome counts."""
    if hasattr(config, "workerinput"):
        return  # an xdist worker: the controller prints the merged summary
    from pytest_modgap.gate.summary import terminal_lines

    state = config.stash[_SESSION]
    lines = terminal_lines(state)
    if lines:
        terminalreporter.section("modgap")
        failures = set(state.write_errors.values())
        for line in lines:
            terminalreporter.line(line, red=line in failures)


@pytest.fixture
def _modgap_model(request: pytest.FixtureRequest) -> str:
    """The model under test, parametrised by pytest_generate_tests; without that, none."""
    if request.config.stash[_SESSION].options.strict:
        pytest.fail(f"modgap (--modgap-strict): {_NO_MODEL}", pytrace=False)
    pytest.skip(_NO_MODEL)


@pytest.fixture
def _modgap_dim(request: pytest.FixtureRequest) -> int | None:
    """The Matryoshka dimension under test, parametrised from --modgap-truncate-dim; else None."""
    dim: int | None = getattr(request, "param", None)
    return dim


@pytest.fixture
def modgap(
    request: pytest.FixtureRequest, _modgap_model: str, _modgap_dim: int | None
) -> ModgapFixture:
    """The modgap helper: ``modgap.model``, ``.measure()``, ``.check(report, name)``, ``.compare()``."""
    marker = marker_args(request.node, request.node.nodeid)
    session = request.config.stash[_SESSION]
    node = request.node

    def record_property(name: str, value: object) -> None:
        node.user_properties.append((name, value))  # what pytest's record_property does

    return ModgapFixture(
        session,
        _modgap_model,
        marker,
        node.nodeid,
        _modgap_dim,
        test_dir=node.path.parent,
        record_property=record_property,
    )
