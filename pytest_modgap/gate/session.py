"""The per-run state of the plugin: options, loaded encoders, the report memo and every result.

One ModgapSession per run and per xdist worker; workers ship ``to_json()`` to the controller.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import pytest

from pytest_modgap.gate.outputs import file_problem, folder_problem
from pytest_modgap.gate.rootdir import check_rootdir

if TYPE_CHECKING:
    from pytest_modgap.embedding.measurement import LoadedModel
    from pytest_modgap.gate.baselines import Comparison
    from pytest_modgap.metrics.paired import Comparison as PairedComparison
    from pytest_modgap.metrics.report import Report

OptionKind = Literal["text", "int", "float", "flag", "list", "path", "bool"]


# NamedTuples rather than dataclasses here: this module loads with every pytest run, and generating
# dataclass methods cost most of its import time.


class OptionSpec(NamedTuple):
    """One ``--modgap-*`` option and its ini twin ``modgap_*``: declared once, read once."""

    name: str
    kind: OptionKind
    help: str
    metavar: str | None = None

    @property
    def flag(self) -> str:
        """The command-line flag, ``--modgap-batch-size``."""
        return "--modgap-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        """The attribute on ``config.option`` and the ini name, ``modgap_batch_size``."""
        return "modgap_" + self.name


DEFAULT_TOLERANCE = 0.02
DEFAULT_N_BOOT = 1000

OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "model",
        "list",
        "model spec to measure: a Hugging Face id, a local directory (@revision pins one), "
        "module:factory or embeddings:file.npz; write --modgap-model=PATH for a directory. "
        "Repeat it to run every modgap test once per model.",
        "SPEC",
    ),
    OptionSpec(
        "dataset", "text", "default data set spec of modgap tests (default: shapes).", "SPEC"
    ),
    OptionSpec(
        "samples", "int", "default number of random pairs per data set (default: all).", "N"
    ),
    OptionSpec("seed", "int", "seed of the pair sampling and the bootstrap (default: 0).", "N"),
    OptionSpec(
        "device", "text", "device to encode on (default: cuda if available, else cpu).", "DEV"
    ),
    OptionSpec(
        "dtype", "text", "encoder dtype (default: bfloat16 on cuda, float32 on cpu).", "DTYPE"
    ),
    OptionSpec("batch_size", "int", "encoding batch size (default: the encoder's).", "N"),
    OptionSpec(
        "cache_dir",
        "path",
        "embedding cache folder (default: $MODGAP_CACHE_DIR or ~/.cache/pytest-modgap).",
        "DIR",
    ),
    OptionSpec("no_cache", "flag", "do not read or write the embedding cache."),
    OptionSpec("trust_remote_code", "flag", "allow models that run their own code (jina-clip-v2)."),
    OptionSpec(
        "baseline_dir", "path", "folder of baseline files (default: <rootdir>/baselines).", "DIR"
    ),
    OptionSpec("update", "flag", "record or refresh the baselines that modgap tests check."),
    OptionSpec(
        "snapshots",
        "bool",
        "true (default): --modgap-update also keeps the sampled pairs' vectors beside each "
        "baseline (<name>.snapshots/), and checks compare paired against them; false: numbers only.",
        "BOOL",
    ),
    OptionSpec(
        "tolerance",
        "float",
        f"default absolute tolerance of baseline checks (default: {DEFAULT_TOLERANCE}).",
        "X",
    ),
    OptionSpec(
        "json", "path", "write every report and baseline comparison to this JSON file.", "PATH"
    ),
    OptionSpec("strict", "flag", "fail modgap tests that would be skipped (no --modgap-model)."),
    OptionSpec(
        "n_boot", "int", f"bootstrap resamples for the CIs (default: {DEFAULT_N_BOOT}).", "N"
    ),
    OptionSpec(
        "report_dir",
        "path",
        "write Figures 2 and 3 (PNG, one panel per model) and index.html for every measurement.",
        "DIR",
    ),
    OptionSpec(
        "reference_model",
        "text",
        "model spec to compare every measured model with, on the same sampled pairs (paired "
        "bootstrap); a test fails when its model is worse by more than the tolerance.",
        "SPEC",
    ),
    OptionSpec(
        "truncate_dim",
        "text",
        "comma-separated Matryoshka dimensions, e.g. 128,256: every modgap test runs once per "
        "model and dimension, measuring the renormalised prefix of the vectors.",
        "DIMS",
    ),
    OptionSpec(
        "templates",
        "path",
        "zero-shot prompt templates for data sets with class names: one template per line (or a "
        "JSON list), each with {c} where the class name goes (default: the data set's published "
        "list, CIFAR-100's for cifar100, else 'a photo of a {c}.').",
        "FILE",
    ),
    OptionSpec(
        "history",
        "path",
        "append one JSON line per measurement (metrics with intervals, time, git commit) to this "
        "file; the summary shows the change since the previous run of each model and data set.",
        "PATH",
    ),
    OptionSpec(
        "ray_address",
        "text",
        "embed on a Ray cluster: 'local' (start one here), 'auto' (the one 'ray start' runs here) "
        "or ray://HOST:PORT; needs the [ray] extra. Cached embeddings are shared with local runs.",
        "ADDRESS",
    ),
)


class ModgapOptions(NamedTuple):
    """The resolved ``--modgap-*`` options: the command line, else the ini twin, else defaults."""

    models: tuple[str, ...] = ()
    dataset: str | None = None
    samples: int | None = None
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    batch_size: int | None = None
    cache_dir: Path | None = None
    no_cache: bool = False
    trust_remote_code: bool = False
    baseline_dir: Path = Path("baselines")
    update: bool = False
    snapshots: bool = True
    tolerance: float = DEFAULT_TOLERANCE
    json: Path | None = None
    strict: bool = False
    n_boot: int = DEFAULT_N_BOOT
    report_dir: Path | None = None
    reference_model: str | None = None
    truncate_dims: tuple[int, ...] = ()
    history: Path | None = None
    templates: Path | None = None
    ray_address: str | None = None

    @classmethod
    def from_config(cls, config: pytest.Config) -> ModgapOptions:
        """Read every option; a UsageError naming the option or its ini key for a value of the
        wrong type, a tolerance that is not a finite number >= 0, or an output path that cannot be
        written (so the run stops before its first test, not after its last)."""
        values: dict[str, Any] = {}
        for spec in OPTIONS:
            value = _read(config, spec)
            if value is not None:
                values[spec.name] = value
        values.setdefault("baseline_dir", config.rootpath / "baselines")
        models = values.pop("model", ())
        dims = _dimensions(values.pop("truncate_dim", None))
        options = cls(models=tuple(models), truncate_dims=dims, **values)
        check_rootdir(config, _VALUED_FLAGS)
        _check_tolerance(config, options.tolerance)
        _check_outputs(config, options)
        _check_templates(config, options.templates)
        _check_ray(config, options.ray_address)
        return options

    def template_list(self) -> tuple[str, ...] | None:
        """The templates of --modgap-templates (checked when the run started), or None."""
        if self.templates is None:
            return None
        from pytest_modgap.data.templates import load_templates

        return load_templates(self.templates)


def _check_ray(config: pytest.Config, address: str | None) -> None:
    """A UsageError naming the option when a Ray address is malformed or Ray Data is not installed,
    before any test runs (the cluster itself is joined by the first measurement that embeds)."""
    if address is None:
        return
    from pytest_modgap.embedding.ray.cluster import check_address_form, import_ray
    from pytest_modgap.errors import ModgapError

    try:
        check_address_form(address)
        import_ray()
    except ModgapError as exc:
        raise pytest.UsageError(f"{_given(config, 'ray_address', address)}: {exc}") from None


def _check_templates(config: pytest.Config, path: Path | None) -> None:
    """A UsageError naming the option when the templates file cannot be read or holds a template
    without {c}, before any test runs."""
    if path is None:
        return
    from pytest_modgap.data.templates import load_templates
    from pytest_modgap.errors import ModgapError

    try:
        load_templates(path)
    except ModgapError as exc:
        raise pytest.UsageError(f"{_given(config, 'templates', path)}: {exc}") from None


_SPECS = {spec.name: spec for spec in OPTIONS}
_VALUED_FLAGS = frozenset(spec.flag for spec in OPTIONS if spec.kind != "flag")


def _given(config: pytest.Config, name: str, value: object) -> str:
    """How the user set option ``name``: ``--modgap-json=x`` or ``ini option modgap_json = x``."""
    spec = _SPECS[name]
    if config.getoption(spec.dest) not in (None, [], False):
        return f"{spec.flag}={value}"
    if config.inipath is not None and str(config.getini(spec.dest) or "").strip():
        return f"ini option {spec.dest} = {value} (in {config.inipath.name})"
    return f"{spec.flag} (default {value})"


def _check_tolerance(config: pytest.Config, tolerance: float) -> None:
    """A UsageError unless the default tolerance is finite and >= 0: every comparison with NaN is
    false, so NaN (or infinity) would pass every check, and a negative value fail every one."""
    if not (math.isfinite(tolerance) and tolerance >= 0.0):
        raise pytest.UsageError(
            f"{_given(config, 'tolerance', tolerance)}: a tolerance must be a finite number >= 0, "
            f"the absolute change a metric may make (e.g. --modgap-tolerance=0.02); NaN or "
            f"infinity would pass every check, and a negative value fail every one."
        )


def _check_outputs(config: pytest.Config, options: ModgapOptions) -> None:
    """A UsageError naming the option when --modgap-json, --modgap-history, --modgap-report-dir or
    (with --modgap-update) the baseline folder cannot be written; missing folders are fine, they
    are created."""
    problems = []
    if options.json is not None:
        problems.append(("json", options.json, file_problem(options.json)))
    if options.history is not None:
        problems.append(("history", options.history, file_problem(options.history)))
    if options.report_dir is not None:
        problems.append(("report_dir", options.report_dir, folder_problem(options.report_dir)))
    baseline_dir = options.baseline_dir
    if options.update or (baseline_dir.exists() and not baseline_dir.is_dir()):
        problems.append(("baseline_dir", baseline_dir, folder_problem(baseline_dir)))
    for name, path, problem in problems:
        if problem is not None:
            raise pytest.UsageError(
                f"{_given(config, name, path)}: {problem}. Give a path this run can write "
                f"(missing folders are created)."
            )


def _dimensions(text: str | None) -> tuple[int, ...]:
    """``"128, 256"`` -> (128, 256); a UsageError naming the option for anything else."""
    if not text:
        return ()
    try:
        dims = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        dims = ()
    if not dims or any(dim < 1 for dim in dims):
        raise pytest.UsageError(
            f"--modgap-truncate-dim={text!r}: expected positive integers separated by commas, "
            f"e.g. --modgap-truncate-dim=128,256,512 (or modgap_truncate_dim in the ini file)."
        )
    return dims


def _read(config: pytest.Config, spec: OptionSpec) -> Any:
    """One option: the command-line value if given, else the ini twin's (None when neither is)."""
    given = config.getoption(spec.dest)
    if spec.kind == "flag":
        return bool(given) or bool(config.getini(spec.dest))
    if given not in (None, []):
        if spec.kind == "bool":
            return _boolean(str(given), spec.flag + "=" + str(given))
        if spec.kind == "path":
            return config.invocation_params.dir / Path(given).expanduser()
        return tuple(given) if spec.kind == "list" else given
    ini = config.getini(spec.dest)
    if spec.kind == "list":
        return tuple(ini) if ini else None
    text = str(ini).strip() if ini is not None else ""
    if not text:
        return None
    if spec.kind == "path":
        base = config.inipath.parent if config.inipath is not None else config.rootpath
        return base / Path(text).expanduser()
    if spec.kind == "bool":
        return _boolean(text, f"ini option {spec.dest} = {text!r}")
    if spec.kind in ("int", "float"):
        try:
            return int(text) if spec.kind == "int" else float(text)
        except ValueError:
            kind = "an integer" if spec.kind == "int" else "a number"
            raise pytest.UsageError(
                f"ini option {spec.dest} = {text!r} is not {kind} (it is the twin of {spec.flag})."
            ) from None
    return text


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _boolean(text: str, given: str) -> bool:
    """``true``/``false`` (also yes/no, on/off, 1/0); a UsageError naming the option otherwise."""
    word = text.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise pytest.UsageError(f"{given} is not true or false; give true or false.")


# The command-line options a re-record command repeats: those that change what is measured or
# where the baseline is written (the model and --modgap-update are added by the command itself).
_REPLAYED = (
    "snapshots",
    "dataset",
    "samples",
    "seed",
    "device",
    "dtype",
    "trust_remote_code",
    "baseline_dir",
    "truncate_dim",
    "templates",
)


def replay_args(config: pytest.Config) -> tuple[str, ...]:
    """The ``--modgap-*`` arguments of this run that a re-record command must repeat."""
    args = []
    for spec in OPTIONS:
        given = config.getoption(spec.dest)
        if spec.name not in _REPLAYED or given in (None, False):
            continue
        args.append(spec.flag if spec.kind == "flag" else f"{spec.flag}={shlex.quote(str(given))}")
    return tuple(args)


def model_ids(models: tuple[str, ...]) -> list[str]:
    """Test ids ``modgap:<short>`` for the models; the full spec where short names would collide.

    The short name is the last path component (``./checkpoints/candidate`` -> ``candidate``,
    ``embeddings:/x/ref.npz`` -> ``ref.npz``, ``openai/clip-vit-base-patch32`` -> the part after /).
    """
    shorts = [_short(spec) for spec in models]
    return [
        f"modgap:{short if shorts.count(short) == 1 else spec}"
        for spec, short in zip(models, shorts, strict=True)
    ]


def _short(spec: str) -> str:
    """The last path component of a model spec."""
    path = spec.split(":", 1)[1] if spec.startswith("embeddings:") else spec
    return path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or spec


class ModelComparison(NamedTuple):
    """One paired comparison of the model under test with the reference model."""

    key: MeasureKey
    reference: str
    comparison: PairedComparison


class MeasureKey(NamedTuple):
    """What identifies a measurement: tests that ask for the same one share the report."""

    model: str
    dataset: str
    samples: int | None
    seed: int
    truncate_dim: int | None = None
    templates: tuple[str, ...] | None = None

    def label(self) -> str:
        """A stable string form, the key of the JSON artefact and of the xdist merge."""
        label = f"{self.model} | {self.dataset} | samples={self.samples} | seed={self.seed}"
        if self.truncate_dim is not None:
            label += f" | dim={self.truncate_dim}"
        if self.templates is not None:
            label += f" | templates={len(self.templates)}:{_short_hash(self.templates)}"
        return label


def _short_hash(parts: tuple[str, ...]) -> str:
    """8 hex digits that tell two template lists apart in a label."""
    import hashlib

    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:8]


class ModgapSession:
    """Everything one run (or one xdist worker) knows: options, encoders, reports and outcomes.

    ``measurements`` maps ``MeasureKey.label()`` to a JSON-able record holding the report's
    ``to_dict``; ``checks`` lists baseline comparisons; ``outcomes`` maps each modgap test to
    passed / regressed / updated / skipped / failed / error. All plain data, so xdist ships them.
    """

    def __init__(self, options: ModgapOptions, replay: tuple[str, ...] = ()) -> None:
        self.options = options
        self.replay = replay
        """Arguments a re-record command repeats (``replay_args``)."""
        self.measurements: dict[str, dict[str, Any]] = {}
        self.checks: list[dict[str, Any]] = []
        self.recorded_reports: list[dict[str, Any]] = []
        """Baselines' snapshot reports (label, dataset, report with distributions), drawn in
        Figures 2 and 3 beside the candidates'."""
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.comparisons: list[dict[str, Any]] = []
        """Paired candidate-vs-reference comparisons (--modgap-reference-model), as plain dicts."""
        self.worse_than_reference: list[str] = []
        """Node ids of tests that failed because their model is worse than the reference."""
        self._models: dict[str, LoadedModel] = {}
        self._reports: dict[MeasureKey, Report] = {}
        self._comparisons: dict[tuple[MeasureKey, str, float], ModelComparison] = {}
        self.write_errors: dict[str, str] = {}
        """Option name -> the one-line failure of writing its output at the end of the run."""
        self._templates: tuple[tuple[str, ...] | None] | None = None
        self.notes: dict[str, str] = {}
        """Option name -> a one-line note on its output (figures not drawn without matplotlib)."""
        self.history_changes: dict[str, str] = {}
        """``MeasureKey.label()`` -> the change since the previous run in --modgap-history."""

    def key(
        self,
        model: str,
        dataset: str | None,
        samples: int | None,
        truncate_dim: int | None = None,
        templates: str | tuple[str, ...] | list[str] | None = None,
    ) -> MeasureKey:
        """The measurement a test asks for, with the options' defaults filled in. ``templates``
        (the test's; else --modgap-templates) is a list, or the name of a published list."""
        from pytest_modgap.data.specs import DEFAULT_DATASET

        chosen: tuple[str, ...] | None
        if templates is None:
            if self._templates is None:
                self._templates = (self.options.template_list(),)
            chosen = self._templates[0]
        else:
            from pytest_modgap.data.templates import resolve_templates

            chosen = resolve_templates(templates, "")
        return MeasureKey(
            model=model,
            dataset=dataset or self.options.dataset or DEFAULT_DATASET,
            samples=samples if samples is not None else self.options.samples,
            seed=self.options.seed,
            truncate_dim=truncate_dim,
            templates=chosen,
        )

    def load(self, model: str) -> LoadedModel:
        """The encoder of ``model``, loaded once per session, and only when a measurement misses
        the embedding cache (a run whose embeddings are all cached loads no model)."""
        loaded = self._models.get(model)
        if loaded is None:
            from pytest_modgap.embedding.measurement import load_model

            loaded = load_model(
                model,
                device=self.options.device,
                dtype=self.options.dtype,
                batch_size=self.options.batch_size,
                trust_remote_code=self.options.trust_remote_code,
                lazy=True,
            )
            self._models[model] = loaded
        return loaded

    def measure(self, key: MeasureKey) -> Report:
        """The report of ``key``, measured once per session and recorded for the summary."""
        report = self._reports.get(key)
        if report is None:
            from pytest_modgap.embedding.measurement import measure

            options = self.options
            report = measure(
                self.load(key.model),
                key.dataset,
                samples=key.samples,
                seed=key.seed,
                batch_size=options.batch_size,
                cache_dir=options.cache_dir,
                use_cache=not options.no_cache,
                n_boot=options.n_boot,
                progress=False,
                truncate_dim=key.truncate_dim,
                templates=key.templates,
                ray_address=options.ray_address,
            )
            self._reports[key] = report
            self.measurements[key.label()] = {
                "model": key.model,
                # Precomputed embeddings ignore the data set spec; the report says what was read.
                "dataset": str(report.metadata.get("dataset", key.dataset)),
                "samples": key.samples,
                "seed": key.seed,
                "truncate_dim": key.truncate_dim,
                # The figures of --modgap-report-dir need the distributions, also across xdist.
                "report": report.to_dict(include_distributions=options.report_dir is not None),
            }
        return report

    def report(self, key: MeasureKey) -> Report | None:
        """The report already measured for ``key`` in this process, or None."""
        return self._reports.get(key)

    def compare(self, key: MeasureKey, reference: str, tolerance: float | None) -> ModelComparison:
        """``key.model`` against ``reference`` on the same sampled pairs (paired bootstrap), once
        per session and tolerance (the verdicts depend on it); recorded for the summary and the
        JSON artefact."""
        tolerance = tolerance if tolerance is not None else self.options.tolerance
        memo = (key, reference, tolerance)
        found = self._comparisons.get(memo)
        if found is not None:
            return found
        from pytest_modgap.embedding.measurement import sample_embeddings
        from pytest_modgap.metrics.paired import compare_embeddings

        options = self.options
        embedded = []
        labels = []
        for spec in (key.model, reference):
            sample, label = sample_embeddings(
                self.load(spec),
                key.dataset,
                samples=key.samples,
                seed=key.seed,
                cache_dir=options.cache_dir,
                use_cache=not options.no_cache,
                batch_size=options.batch_size,
                progress=False,
                truncate_dim=key.truncate_dim,
                ray_address=options.ray_address,
            )
            embedded.append(sample)
            labels.append(label)
        comparison = compare_embeddings(
            embedded[0].pair_set(),
            embedded[1].pair_set(),
            n_boot=options.n_boot,
            seed=key.seed,
            tolerance=tolerance,
            # Class-prompt captions (CIFAR-100) are no retrieval data.
            retrieval=embedded[0].retrieval,
        )
        result = ModelComparison(key, reference, comparison)
        self._comparisons[memo] = result
        self.comparisons.append(
            {
                "measurement": key.label(),
                "candidate": key.model,
                "reference": reference,
                # Precomputed embeddings ignore the data set spec: say what was actually compared.
                "dataset": key.dataset if labels[0] == labels[1] else " vs ".join(labels),
                "samples": key.samples,
                "seed": key.seed,
                "truncate_dim": key.truncate_dim,
                **comparison.to_dict(),
            }
        )
        return result

    def record_check(self, nodeid: str, comparison: Comparison) -> None:
        """Remember one baseline comparison (passed, regressed or updated) of test ``nodeid``."""
        self.checks.append({"nodeid": nodeid, **comparison.to_dict()})
        recorded = comparison.recorded_report
        label = f"baseline {comparison.baseline}"
        if recorded is not None and not any(
            entry["model"] == label and entry["dataset"] == comparison.dataset
            for entry in self.recorded_reports
        ):
            self.recorded_reports.append(
                {
                    "model": label,
                    "dataset": comparison.dataset,
                    "report": recorded.to_dict(include_distributions=True),
                }
            )

    def record_report(self, nodeid: str, report: pytest.TestReport) -> None:
        """Classify a modgap test from its setup / call / teardown reports (first bad one wins)."""
        if report.when == "call" or not report.passed:
            verdicts = [c["verdict"] for c in self.checks if c["nodeid"] == nodeid]
            if nodeid in self.worse_than_reference:
                verdicts.append("regressed")
            outcome = _outcome(report, verdicts)
            entry: dict[str, Any] = {"outcome": outcome}
            if report.skipped and isinstance(report.longrepr, tuple):
                entry["reason"] = str(report.longrepr[2]).removeprefix("Skipped: ")
            previous = self.outcomes.get(nodeid)
            if previous is None or previous["outcome"] in ("passed", "updated"):
                self.outcomes[nodeid] = entry

    def to_json(self) -> dict[str, Any]:
        """The JSON-able results, as an xdist worker sends them to the controller."""
        return {
            "measurements": self.measurements,
            "checks": self.checks,
            "recorded_reports": self.recorded_reports,
            "comparisons": self.comparisons,
            "worse_than_reference": self.worse_than_reference,
            "outcomes": self.outcomes,
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add a worker's ``to_json()`` (the controller calls this once per worker)."""
        self.measurements.update(data.get("measurements", {}))
        self.checks.extend(data.get("checks", []))
        self.recorded_reports.extend(data.get("recorded_reports", []))
        self.comparisons.extend(data.get("comparisons", []))
        self.worse_than_reference.extend(data.get("worse_than_reference", []))
        self.outcomes.update(data.get("outcomes", {}))

    def counts(self) -> dict[str, int]:
        """How many modgap tests ended each way, in a fixed order (zero counts included)."""
        order = ("passed", "regressed", "updated", "skipped", "failed", "error")
        counts = dict.fromkeys(order, 0)
        for entry in self.outcomes.values():
            counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
        return counts


def _outcome(report: pytest.TestReport, verdicts: list[str]) -> str:
    """passed / updated / regressed / skipped / failed (in the test) / error (setup, teardown)."""
    if report.skipped:
        return "skipped"
    if report.failed:
        if report.when != "call":
            return "error"
        return "regressed" if "regressed" in verdicts else "failed"
    return "updated" if "updated" in verdicts else "passed"
