"""``modgap measure``: embed random pairs with a model and print every metric with its interval.

Also the Matryoshka sweep, the paired comparison with a reference model and the history line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_modgap.cli.arguments import (
    Commands,
    DefaultCount,
    Formatter,
    add_encoding,
    add_model_and_data,
    add_ray_address,
    check_outputs,
    dims,
    model_label,
    model_spec,
    samples,
    seed,
    specs_help,
    tolerance,
)
from pytest_modgap.errors import DatasetError, option_names
from pytest_modgap.gate.baselines import DEFAULT_TOLERANCE

if TYPE_CHECKING:
    from pytest_modgap.embedding.measurement import LoadedModel
    from pytest_modgap.metrics.paired import Comparison
    from pytest_modgap.metrics.report import Report

_EXAMPLES = """
exit status: 0 done; 1 the candidate is worse than --reference-model; 2 bad input.

examples:
  modgap measure
  modgap measure --model ./checkpoints/candidate --dataset flickr30k:/data/flickr30k --samples 1000
  modgap measure --model ./candidate --reference-model ./release-3 --report-dir modgap-report
  modgap measure --model ./matryoshka-model --truncate-dim 128,256,512
"""


def add_parser(commands: Commands) -> None:
    """Declare ``modgap measure`` and its options."""
    measure = commands.add_parser(
        "measure",
        help="embed a data set with a model and print every metric with its confidence interval",
        description="Embed random pairs of a data set with a model and print every metric with its\n"
        "confidence interval; optionally write Figures 2 and 3, sweep Matryoshka dimensions or\n"
        "compare against a reference model on the same pairs.",
        formatter_class=Formatter,
        epilog_text=lambda: specs_help() + _EXAMPLES,
    )
    add_model_and_data(measure)
    measure.add_argument(
        "--samples",
        type=samples,
        default=DefaultCount(1000),
        help="random pairs, or 'all' for every pair (default: 1000)",
    )
    measure.add_argument("--seed", type=seed, default=0, help="sampling and bootstrap seed")
    add_encoding(
        measure,
        device_help="cpu, cuda, cuda:1, ... (default: cuda when available)",
        batch_help="batch size (default: fits the device)",
    )
    measure.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    measure.add_argument("--no-ci", action="store_true", help="skip the confidence intervals")
    measure.add_argument("--cache-dir", help="embedding cache (default: ~/.cache/pytest-modgap)")
    measure.add_argument("--no-cache", action="store_true", help="always embed again")
    measure.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    measure.add_argument(
        "--report-dir",
        metavar="DIR",
        help="write Figures 2 and 3 (PNG) and index.html with the metrics to DIR",
    )
    measure.add_argument(
        "--truncate-dim",
        metavar="D1,D2,...",
        type=dims,
        help="also measure the embeddings cut to these Matryoshka prefix dimensions, side by side",
    )
    measure.add_argument(
        "--reference-model",
        metavar="SPEC",
        type=model_spec,
        help="compare against this model on the same pairs (paired bootstrap); exit 1 if worse",
    )
    measure.add_argument(
        "--tolerance",
        type=tolerance,
        default=DEFAULT_TOLERANCE,
        help="absolute change a metric may make against --reference-model (default: "
        f"{DEFAULT_TOLERANCE}, a baseline's default)",
    )
    measure.add_argument(
        "--history",
        metavar="PATH",
        help="append the measurement to this history file (one JSON line) and print the change "
        "since the previous run of the model on the data set",
    )
    add_ray_address(measure)


@dataclass(frozen=True)
class _Cache:
    """Where this run caches embeddings (None: the default folder) and whether it does."""

    directory: str | None
    enabled: bool


def run(args: argparse.Namespace) -> int:
    """Measure, print, and write what was asked for; 1 when worse than --reference-model."""
    from pytest_modgap.embedding.measurement import load_model, measure
    from pytest_modgap.reference import reference_model_dir

    check_outputs(json=args.json, report_dir=args.report_dir, history=args.history)
    model_spec = args.model or str(reference_model_dir("reference"))
    ci = None if args.no_ci else 0.95

    def load(spec: str) -> LoadedModel:
        return load_model(
            spec,
            device=args.device,
            dtype=args.dtype,
            batch_size=args.batch_size,
            trust_remote_code=args.trust_remote_code,
            lazy=True,  # a cached measurement loads no model
        )

    def measured(loaded: LoadedModel, cache: _Cache) -> Report:
        return measure(
            loaded,
            args.dataset,
            samples=args.samples,
            seed=args.seed,
            batch_size=args.batch_size,
            cache_dir=cache.directory,
            use_cache=cache.enabled,
            ci=ci,
            n_boot=args.n_boot,
            ray_address=args.ray_address,
        )

    with contextlib.ExitStack() as stack:
        cache = _Cache(args.cache_dir, not args.no_cache)
        if args.no_cache and (args.truncate_dim or args.reference_model):
            # The sweep and the comparison reread the measured embeddings: a cache for this run only.
            cache = _Cache(stack.enter_context(tempfile.TemporaryDirectory(prefix="modgap-")), True)
        loaded = load(model_spec)
        try:
            report = measured(loaded, cache)
        except DatasetError:
            if not _lower_the_default_samples(args, loaded):
                raise
            report = measured(loaded, cache)
        _print_report(report)
        if args.json:
            from pytest_modgap.atomic import write_text_atomic

            write_text_atomic(Path(args.json), json.dumps(report.to_dict(), indent=2) + "\n")
            print(f"\nreport written to {args.json}")
        if args.history:
            _append_history(args, model_spec, report)
        if args.truncate_dim:
            _sweep(args, loaded, cache, ci)
        comparison = None
        results: list[tuple[str, str, Report]] = [
            (model_label(model_spec), str(args.dataset), report)
        ]
        if args.reference_model:
            with option_names({"--modgap-model": "--reference-model"}):
                reference = _load_reference(args, load)
            comparison = _compare(args, loaded, reference, cache, ci)
            if args.report_dir:
                reference_report = measured(reference, cache)
                results = [
                    (
                        model_label(args.reference_model, "reference"),
                        args.dataset,
                        reference_report,
                    ),
                    (model_label(model_spec, "candidate"), args.dataset, report),
                ]
        if args.report_dir:
            from pytest_modgap.reports.html import figures_unavailable, write_report_dir

            index = write_report_dir(
                args.report_dir,
                results,
                comparisons=None if comparison is None else _verdicts(comparison, results),
            )
            print(f"\nreport folder written: {index}")
            missing = figures_unavailable()
            if missing:
                print(f"figures not drawn: {missing}")
    return 1 if comparison is not None and comparison.failed else 0


def _load_reference(args: argparse.Namespace, load: Callable[[str], LoadedModel]) -> LoadedModel:
    """The --reference-model, loaded now when the comparison would load it anyway (no identity
    from its files: a factory, sentence-transformers, precomputed or unloadable spec), so that its
    errors surface here, where they name --reference-model, not --model. With a Ray address only
    the replicas load it."""
    reference = load(args.reference_model)
    if args.ray_address is None and reference.identity() is None:
        reference.encoder  # noqa: B018 (loading is the point: errors surface here)
    return reference


def _lower_the_default_samples(args: argparse.Namespace, loaded: LoadedModel) -> bool:
    """When --samples was left at its default and the set holds fewer pairs, measure them all
    (``args.samples = None``), say so, and return True; False when that was not the problem.

    Counted only after sampling failed, so the usual run loads its data set once.
    """
    if not isinstance(args.samples, DefaultCount):
        return False
    available = _pairs_available(args.dataset, loaded)
    if available >= args.samples:
        return False
    print(
        f"measuring all {available} pairs: the set holds fewer than the default --samples "
        f"{args.samples}\n"
    )
    args.samples = None
    return True


def _pairs_available(dataset: str, loaded: LoadedModel) -> int:
    """How many pairs a measurement can draw from: the rows of precomputed vectors, else the
    data set's pairs."""
    if loaded.precomputed:
        from pytest_modgap.models.precomputed import PrecomputedEmbeddings

        encoder = loaded.encoder
        assert isinstance(encoder, PrecomputedEmbeddings)
        return len(encoder.load()[0])
    from pytest_modgap.data.specs import load_dataset

    return len(load_dataset(dataset))


def _append_history(args: argparse.Namespace, model: str, report: Report) -> None:
    """``--history``: print the change since the previous run of this model and data set, then
    append this measurement."""
    from pytest_modgap.reports.history import (
        append_history,
        change_text,
        git_commit,
        history_entry,
        read_history,
    )

    data = report.to_dict()
    dataset = str(report.metadata.get("dataset", args.dataset))
    previous = read_history(args.history).previous(model, dataset)
    entry = history_entry(
        data,
        model=model,
        dataset=dataset,
        samples=args.samples,
        seed=args.seed,
        commit=git_commit(),
        source="modgap measure",
    )
    append_history(args.history, [entry])
    if previous is not None:
        print(f"\n{change_text(previous, data['metrics'])}")
    print(f"\nmeasurement appended to {args.history}")


def _print_report(report: Report) -> None:
    meta = report.metadata
    print(f"model   : {meta.get('model')}")
    print(f"dataset : {meta.get('dataset')} ({report.n} pairs, seed {meta.get('seed')})")
    if "device" in meta:
        where = f" on the Ray cluster {meta['ray_address']}" if meta.get("ray_address") else ""
        print(
            f"device  : {meta.get('device')} / {meta.get('dtype')}{where}, {meta.get('seconds')} s"
        )
    print()
    print(report.table())


def _sweep(args: argparse.Namespace, loaded: LoadedModel, cache: _Cache, ci: Any) -> None:
    from pytest_modgap.embedding.measurement import embed_sample
    from pytest_modgap.metrics.truncation import measure_truncations, sweep_table

    (image, text, text2, groups), _ = embed_sample(
        loaded,
        args.dataset,
        samples=args.samples,
        seed=args.seed,
        cache_dir=cache.directory,
        use_cache=cache.enabled,
        batch_size=args.batch_size,
        ray_address=args.ray_address,
    )
    reports = measure_truncations(
        image,
        text,
        args.truncate_dim,
        text2=text2,
        groups=groups,
        ci=ci,
        n_boot=args.n_boot,
        seed=args.seed,
    )
    print(f"\nMatryoshka sweep (prefix of the {image.shape[1]}-dimensional embeddings):")
    print(sweep_table(reports))


def _compare(
    args: argparse.Namespace,
    candidate: LoadedModel,
    reference: LoadedModel,
    cache: _Cache,
    ci: Any,
) -> Comparison:
    from pytest_modgap.embedding.compare_models import compare_models

    comparison = compare_models(
        candidate,
        reference,
        args.dataset,
        samples=args.samples,
        seed=args.seed,
        batch_size=args.batch_size,
        cache_dir=cache.directory,
        use_cache=cache.enabled,
        ci=ci,
        n_boot=args.n_boot,
        tolerance=args.tolerance,
        ray_address=args.ray_address,
    )
    print(f"\nPaired comparison on the same {comparison.n} pairs")
    print(f"  candidate: {candidate.spec}")
    print(f"  reference: {reference.spec}")
    print()
    print(comparison.table())
    if comparison.failed:
        print(
            f"\nThe candidate is worse than the reference on {len(comparison.failed)} metric(s): "
            f"{', '.join(comparison.failed)}."
        )
    else:
        print("\nThe candidate is not worse than the reference on any metric.")
    return comparison


def _verdicts(
    comparison: Comparison, results: list[tuple[str, str, Report]]
) -> list[dict[str, Any]]:
    """The comparison's rows as the report page's generic baseline verdicts."""
    candidate, dataset, _ = results[-1]
    reference = results[0][0]
    return [
        {
            "model": candidate,
            "dataset": dataset,
            "baseline": reference,
            "metric": row.name,
            "verdict": row.verdict,
            "reference": row.reference,
            "candidate": row.candidate,
            "difference": row.difference,
            "ci": None if row.ci is None else list(row.ci),
            "tolerance": row.tolerance,
            "better": row.better,
        }
        for row in comparison.rows
    ]
