"""The ``modgap`` command: measure, compare and report on models outside a test suite.

Argument parsing and printing only; the work is in embedding/, metrics/, gate/ and reports/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from pytest_modgap.errors import ModgapError

if TYPE_CHECKING:
    from pytest_modgap.embedding.measurement import LoadedModel
    from pytest_modgap.metrics.paired import Comparison
    from pytest_modgap.metrics.report import Report

_SPECS = """\
model specs: a Hugging Face id or local directory (name@revision pins a revision), module:factory,
  or embeddings:file.npz. Default: the shipped reference model (a tiny CLIP trained offline).
data set specs: shapes (built in, the default), flickr8k:DIR, flickr30k:DIR, coco:DIR, cifar100:DIR,
  jsonl:FILE or any FILE.jsonl.
"""

_MEASURE_EPILOG = (
    _SPECS
    + """
exit status: 0 done; 1 the candidate is worse than --reference-model; 2 bad input.

examples:
  modgap measure
  modgap measure --model ./checkpoints/candidate --dataset flickr30k:/data/flickr30k --samples 1000
  modgap measure --model ./candidate --reference-model ./release-3 --report-dir modgap-report
  modgap measure --model ./matryoshka-model --truncate-dim 128,256,512
"""
)

_COMPARE_EPILOG = """\
The reports may come from different pairs, so each value keeps its own interval and no interval of
the difference is given. For a paired test of two models on the same pairs use
  modgap measure --model CANDIDATE --reference-model REFERENCE

example:
  modgap measure --json old.json && modgap measure --model ./candidate --json new.json
  modgap compare old.json new.json
"""

_HISTORY_EPILOG = """\
A history file holds one JSON line per measurement, appended by `modgap measure --history PATH`
and by pytest --modgap-history=PATH: model, data set, every metric with its interval, the time and
the git commit of the directory the run started in.

example:
  modgap measure --model ./checkpoints/release-7 --history modgap-history.jsonl
  modgap history modgap-history.jsonl --report-dir history-report
"""

_EMBED_EPILOG = """\
The folder holds manifest.json (model, data set, counts, every shard's SHA-256), pairs.npz (which
caption row belongs to which pair) and image-*.npz / text-*.npz shards of at most 65,536 vectors.
It appears whole or not at all. With a Ray address, every node must read the data set and the model
at the same paths (a shared folder), and have pytest-modgap[ray] installed.

example:
  modgap embed --model ./checkpoints/release-7 --dataset wds:/data/laion/{00000..00999}.tar \\
      --ray-address ray://head:10001 --out /data/embeddings/release-7
  modgap measure --model embeddings:/data/embeddings/release-7 --samples all
"""

_BASELINES_EPILOG = """\
The shipped baselines are the published values (jina-embeddings-v4 Table 4, Liang et al. 2022); use
one in a test with modgap.check(report, baseline="paper/jina-embeddings-v4").
"""


_PAPER_EPILOG = """\
default models (Table 4's): openai/clip-vit-base-patch32, jinaai/jina-clip-v2 and
  jinaai/jina-embeddings-v4 (retrieval adapter). The paper does not say which OpenAI CLIP it used:
  ViT-B/32 is a guess, and the paper's OpenAI CLIP values are shown beside it. The models must be
  on this machine (a local directory, or a hub id in the local Hugging Face cache); the jina models
  need --trust-remote-code.

Each data set is sampled once with --seed, so every model sees the same pairs. Each cell is the
measured alignment (mean cosine of matched image-text pairs) with its 95% CI and, for the three
default models, the paper's value; a line per model adds centroid_gap / image_cone.

data set folders, in their distributed layouts:
  --flickr30k  captions.txt or results.csv, and Images/ or flickr30k_images/
  --coco       annotations/captions_<split>.json and <split>/ (val2017 first)
  --cifar100   cifar-100-python/ (the test split)

example:
  modgap paper --flickr30k /data/flickr30k --coco /data/coco --cifar100 /data/cifar100 \\
      --trust-remote-code --report-dir table4
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help in 100 columns with room for the command names, descriptions kept as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=28, width=100)


class _UsageError(Exception):
    """A command line argparse rejects: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``modgap: error: ...`` and a pointer to ``--help``."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see `{self.prog} --help`)")


def _dims(text: str) -> list[int]:
    """``128,256`` -> [128, 256]."""
    try:
        dims = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of dimensions, e.g. 128,256"
        ) from None
    if not dims or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: dimensions must be positive integers")
    return dims


def _samples(text: str) -> int | None:
    """``--samples``: a number of random pairs, or ``all`` (None) for every pair of the data set."""
    if text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of pairs: give an integer such as 1000, or 'all'"
        ) from None


def _tolerance(text: str) -> float:
    """A tolerance: a finite number >= 0 (NaN or infinity would pass every metric, a negative
    value fail every one)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0.0):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a tolerance: give a finite number >= 0, the absolute change a metric "
            f"may make, e.g. 0.01"
        )
    return value


def _check_outputs(**paths: str | None) -> None:
    """A ModgapError naming the option when an output path cannot be written: found before the
    models are loaded, not after the work. Keyword names are option names (``report_dir``)."""
    from pytest_modgap.gate.outputs import file_problem, folder_problem

    for option, given in paths.items():
        if given is None:
            continue
        path = Path(given)
        problem = folder_problem(path) if option.endswith("_dir") else file_problem(path)
        if problem is not None:
            flag = "--" + option.replace("_", "-")
            raise ModgapError(
                f"{flag} {given}: {problem}. Give a path this user can write (missing folders "
                f"are created)."
            )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="modgap",
        description="Modality gap, alignment and cone-effect metrics of multimodal encoders.",
        formatter_class=_Formatter,
        epilog=_SPECS + "\nRun `modgap COMMAND --help` for the options of a command.",
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    measure = commands.add_parser(
        "measure",
        help="embed a data set with a model and print every metric with its confidence interval",
        description="Embed random pairs of a data set with a model and print every metric with its\n"
        "confidence interval; optionally write Figures 2 and 3, sweep Matryoshka dimensions or\n"
        "compare against a reference model on the same pairs.",
        formatter_class=_Formatter,
        epilog=_MEASURE_EPILOG,
    )
    measure.add_argument("--model", help="model spec (default: the shipped reference model)")
    measure.add_argument("--dataset", default="shapes", help="data set spec (default: shapes)")
    measure.add_argument(
        "--samples",
        type=_samples,
        default=1000,
        help="random pairs, or 'all' for every pair (default: 1000)",
    )
    measure.add_argument("--seed", type=int, default=0, help="sampling and bootstrap seed")
    measure.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    measure.add_argument("--dtype", help="float32, bfloat16, float16 (default: bf16 on cuda)")
    measure.add_argument("--batch-size", type=int, help="batch size (default: fits the device)")
    measure.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    measure.add_argument("--no-ci", action="store_true", help="skip the confidence intervals")
    measure.add_argument("--cache-dir", help="embedding cache (default: ~/.cache/pytest-modgap)")
    measure.add_argument("--no-cache", action="store_true", help="always embed again")
    measure.add_argument(
        "--trust-remote-code", action="store_true", help="allow the model's own code (jina models)"
    )
    measure.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    measure.add_argument(
        "--report-dir",
        metavar="DIR",
        help="write Figures 2 and 3 (PNG) and index.html with the metrics to DIR",
    )
    measure.add_argument(
        "--truncate-dim",
        metavar="D1,D2,...",
        type=_dims,
        help="also measure the embeddings cut to these Matryoshka prefix dimensions, side by side",
    )
    measure.add_argument(
        "--reference-model",
        metavar="SPEC",
        help="compare against this model on the same pairs (paired bootstrap); exit 1 if worse",
    )
    measure.add_argument(
        "--tolerance",
        type=_tolerance,
        help="absolute change a metric may make against --reference-model (default: 0.01)",
    )
    measure.add_argument(
        "--history",
        metavar="PATH",
        help="append the measurement to this history file (one JSON line) and print the change "
        "since the previous run of the model on the data set",
    )
    measure.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="embed on a Ray cluster: local, auto or ray://HOST:PORT (needs the [ray] extra)",
    )
    _add_embed(commands)

    history = commands.add_parser(
        "history",
        help="print the runs of a history file; draw each metric over them with --report-dir",
        description="Print the measurements recorded in a history file, per data set, and with\n"
        "--report-dir draw each metric over the runs (interval bands) into an HTML report.",
        formatter_class=_Formatter,
        epilog=_HISTORY_EPILOG,
    )
    history.add_argument("path", metavar="PATH", help="the history file (JSON lines)")
    history.add_argument(
        "--report-dir", metavar="DIR", help="write the trend figures and index.html to DIR"
    )

    compare = commands.add_parser(
        "compare",
        help="print the differences between two saved JSON reports",
        description="Print two reports written by `modgap measure --json` side by side, with the\n"
        "difference b - a per metric.",
        formatter_class=_Formatter,
        epilog=_COMPARE_EPILOG,
    )
    compare.add_argument("a", metavar="A.json", help="the first (older) report")
    compare.add_argument("b", metavar="B.json", help="the second (newer) report")

    baselines = commands.add_parser(
        "baselines",
        help="list the baselines: model, source, data sets and metric values",
        description="List the YAML baselines of a folder (default: the published baselines\n"
        "shipped with pytest-modgap).",
        formatter_class=_Formatter,
        epilog=_BASELINES_EPILOG,
    )
    baselines.add_argument(
        "--dir", metavar="DIR", help="baseline folder to list (default: the shipped baselines)"
    )
    _add_paper(commands)
    return parser


def _add_embed(commands: Any) -> None:
    embed = commands.add_parser(
        "embed",
        help="embed a whole data set (on a Ray cluster) into a folder of shards",
        description="Embed every pair of a data set (or --samples of them) and write the image\n"
        "and caption vectors as sharded .npz files with a manifest into a new folder; measure\n"
        "them later with --model embeddings:DIR. With --ray-address the pairs are decoded and\n"
        "embedded across a Ray cluster and the shards written as batches arrive.",
        formatter_class=_Formatter,
        epilog=_EMBED_EPILOG,
    )
    embed.add_argument("--model", help="model spec (default: the shipped reference model)")
    embed.add_argument("--dataset", default="shapes", help="data set spec (default: shapes)")
    embed.add_argument("--out", required=True, metavar="DIR", help="new (or empty) folder to write")
    embed.add_argument(
        "--samples", type=_samples, default=None, help="random pairs (default: all of them)"
    )
    embed.add_argument("--seed", type=int, default=0, help="sampling seed")
    embed.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="embed on a Ray cluster: local, auto or ray://HOST:PORT (needs the [ray] extra)",
    )
    embed.add_argument(
        "--device", help="cpu or cuda (default: the cluster's GPUs when it has some)"
    )
    embed.add_argument("--dtype", help="float32, bfloat16, float16 (default: bf16 on cuda)")
    embed.add_argument("--batch-size", type=int, help="images or texts per replica call")
    embed.add_argument(
        "--trust-remote-code", action="store_true", help="allow the model's own code (jina models)"
    )


def _embed(args: argparse.Namespace) -> int:
    from pytest_modgap import __version__
    from pytest_modgap.data.specs import load_dataset
    from pytest_modgap.embedding.measurement import load_model
    from pytest_modgap.embedding.ray_embed import embed_to_folder
    from pytest_modgap.models.sharded import check_output_folder
    from pytest_modgap.reference import reference_model_dir

    out = Path(args.out)
    check_output_folder(out)
    model_spec = args.model or str(reference_model_dir("reference"))
    loaded = load_model(
        model_spec,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        trust_remote_code=args.trust_remote_code,
        lazy=True,  # with a Ray address only the replicas load it
    )
    pairs = load_dataset(args.dataset).sample(args.samples, args.seed)
    metadata = {
        "model": model_spec,
        "dataset": args.dataset,
        "samples": args.samples,
        "seed": args.seed,
        "ray_address": args.ray_address,
        "pytest_modgap": __version__,
    }
    embed_to_folder(loaded, pairs, out, address=args.ray_address, metadata=metadata)
    print(f"embedded {len(pairs)} pairs of {args.dataset} with {model_spec} into {out}")
    print(f"measure them with: modgap measure --model embeddings:{out} --samples all")
    return 0


def _add_paper(commands: Any) -> None:
    paper = commands.add_parser(
        "paper",
        help="reproduce Table 4 of the jina-embeddings-v4 paper (and its Figures 2 and 3)",
        description="Reproduce Table 4 of the jina-embeddings-v4 paper (arXiv 2506.18902, section 8):\n"
        "the cross-modal alignment of every model on random pairs of every data set given.",
        formatter_class=_Formatter,
        epilog=_PAPER_EPILOG,
    )
    for key, title in (("flickr30k", "Flickr30K"), ("coco", "MSCOCO"), ("cifar100", "CIFAR-100")):
        paper.add_argument(f"--{key}", metavar="DIR", help=f"the {title} folder")
    paper.add_argument(
        "--model",
        action="append",
        metavar="SPEC",
        help="model spec, repeatable (default: the three models of Table 4, below)",
    )
    paper.add_argument(
        "--samples",
        type=int,
        default=1000,
        metavar="N",
        help="random pairs per data set (default: 1000, as the paper)",
    )
    paper.add_argument(
        "--seed", type=int, default=0, metavar="N", help="sampling and bootstrap seed (default: 0)"
    )
    paper.add_argument(
        "--report-dir",
        metavar="OUT",
        help="write the stacked Figures 2 and 3 per data set and index.html to OUT",
    )
    paper.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the models' own code (needed by the jina models)",
    )
    paper.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    paper.add_argument("--dtype", help="float32, bfloat16, float16 (default: bf16 on cuda)")
    paper.add_argument(
        "--cache-dir", metavar="DIR", help="embedding cache (default: ~/.cache/pytest-modgap)"
    )
    paper.add_argument(
        "--n-boot", type=int, default=1000, metavar="N", help="bootstrap resamples (default: 1000)"
    )


@dataclass(frozen=True)
class _Cache:
    """Where this run caches embeddings (None: the default folder) and whether it does."""

    directory: str | None
    enabled: bool


def _model_label(spec: str, role: str | None = None) -> str:
    """A short name for figures and tables: a local directory's name, else the spec itself."""
    label = Path(spec).name if Path(spec).is_dir() else spec
    return f"{role}: {label}" if role else label


def _measure(args: argparse.Namespace) -> int:
    from pytest_modgap.embedding.measurement import load_model, measure
    from pytest_modgap.reference import reference_model_dir

    _check_outputs(json=args.json, report_dir=args.report_dir, history=args.history)
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
            (_model_label(model_spec), str(args.dataset), report)
        ]
        if args.reference_model:
            reference = load(args.reference_model)
            comparison = _compare(args, loaded, reference, cache, ci)
            if args.report_dir:
                reference_report = measured(reference, cache)
                results = [
                    (
                        _model_label(args.reference_model, "reference"),
                        args.dataset,
                        reference_report,
                    ),
                    (_model_label(model_spec, "candidate"), args.dataset, report),
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


def _history(args: argparse.Namespace) -> int:
    """``modgap history PATH``: the recorded runs per data set; with --report-dir the trends."""
    from pytest_modgap.reports.history import CHANGE_METRICS, read_history, run_label
    from pytest_modgap.reports.trends import dataset_groups

    path = Path(args.path)
    if not path.is_file():
        raise ModgapError(
            f"{args.path}: no such history file; write one with `modgap measure --history "
            f"{args.path}` or pytest --modgap-history={args.path}."
        )
    _check_outputs(report_dir=args.report_dir)
    history = read_history(path)
    if history.skipped:
        numbers = ", ".join(str(number) for number in history.skipped[:10])
        print(f"{path}: skipped line(s) {numbers}: not history entries")
    if not history.entries:
        print(f"{path}: no measurements recorded yet.")
        return 0
    for dataset, entries in dataset_groups(history.entries).items():
        print(f"\n{dataset}: {len(entries)} run{'s' if len(entries) != 1 else ''}")
        width = max(len(_model_label(str(e["model"]))) for e in entries)
        head = "".join(f"  {name:>13}" for name in CHANGE_METRICS)
        print(f"  {'run':<32}{'model':<{width}}{head}")
        for entry in entries:
            values = "".join(
                f"  {entry['metrics'][name]['value']:>13.4f}"
                if name in entry["metrics"]
                else f"  {'-':>13}"
                for name in CHANGE_METRICS
            )
            print(f"  {run_label(entry):<32}{_model_label(str(entry['model'])):<{width}}{values}")
    if args.report_dir:
        from pytest_modgap.reports.html import figures_unavailable
        from pytest_modgap.reports.trends import write_history_report

        index = write_history_report(history, args.report_dir)
        print(f"\nreport folder written: {index}")
        missing = figures_unavailable()
        if missing:
            print(f"figures not drawn: {missing}")
    return 0


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


def _read_report(path: str) -> Report:
    from pytest_modgap.metrics.report import Report

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ModgapError(f"{path}: cannot be read ({error.strerror or error}).") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModgapError(
            f"{path}: is not JSON ({error}); give a report written by `modgap measure --json`."
        ) from None
    try:
        return Report.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise ModgapError(
            f"{path}: is not a pytest-modgap report (missing or malformed {error}); give a "
            f"report written by `modgap measure --json`."
        ) from None


def _compare_files(args: argparse.Namespace) -> int:
    from pytest_modgap.metrics.paired import compare_reports

    a, b = _read_report(args.a), _read_report(args.b)
    labels = (
        _file_label(args.a, a),
        _file_label(args.b, b),
    )
    print(compare_reports(a, b, labels=labels))
    return 0


def _file_label(path: str, report: Report) -> str:
    model, dataset = report.metadata.get("model"), report.metadata.get("dataset")
    described = f"{model} on {dataset}" if model and dataset else model
    return f"{path}, {described}" if described else path


def _baselines(args: argparse.Namespace) -> int:
    import importlib.resources

    root = (
        Path(args.dir)
        if args.dir
        else Path(str(importlib.resources.files("pytest_modgap") / "baselines"))
    )
    if not root.is_dir():
        raise ModgapError(
            f"--dir {root}: is not a folder; give the folder that holds the baselines."
        )
    files = sorted(root.rglob("*.yaml"))
    if not files:
        print(f"No baselines (*.yaml) in {root}.")
        return 0
    print(f"{len(files)} baseline{'s' if len(files) > 1 else ''} in {root}:")
    for path in files:
        print()
        print(_describe_baseline(path, path.relative_to(root).with_suffix("").as_posix()))
    return 0


def _describe_baseline(path: Path, name: str) -> str:
    """Name, model, source, tolerance and the metric values per data set of one baseline file."""
    from pytest_modgap.gate.baseline import read_yaml

    data = read_yaml(path)  # the loader of the plugin: no aliases, bounded nesting, UTF-8
    if not isinstance(data, dict):
        raise ModgapError(
            f"{path}: is not a baseline (expected a mapping with model, source and datasets)."
        )
    # Prose wraps between words only: never inside an option, a path or a "--modgap-..." word.
    wrap = textwrap.TextWrapper(
        width=100,
        subsequent_indent=" " * 12,
        break_long_words=False,
        break_on_hyphens=False,
    )
    lines = [name]
    for key in ("model", "source", "protocol", "tolerance"):
        if data.get(key) is not None:
            value = data[key]
            text = (
                ", ".join(f"{k}: {v}" for k, v in value.items())
                if isinstance(value, dict)
                else " ".join(str(value).split())
            )
            prefix, command = text.split(_RECORDED, 1) if _RECORDED in text else (text, "")
            if command:
                # A recorded command stays on one line, so that it can be copied and run.
                lines.append(wrap.fill(f"  {key:<9} {prefix}{_RECORDED.rstrip()}"))
                lines.append(" " * 12 + command)
            else:
                lines.append(wrap.fill(f"  {key:<9} {text}"))
    datasets = data.get("datasets")
    if not isinstance(datasets, dict) or not datasets:
        lines.append("  (no data sets)")
        return "\n".join(lines)
    lines.append("  datasets")
    for dataset, entry in datasets.items():
        entry = entry if isinstance(entry, dict) else {}
        metrics = entry.get("metrics")
        metrics = metrics if isinstance(metrics, dict) else {}
        size = f" (n = {entry['n']})" if "n" in entry else ""
        items = [_metric_text(metric, spec) for metric, spec in metrics.items()]
        lines += _fill_items(f"    {dataset}{size}: ", items or ["no metrics"], 100, " " * 12)
    return "\n".join(lines)


_RECORDED = "recorded with: "


def _fill_items(head: str, items: list[str], width: int, indent: str) -> list[str]:
    """``head`` then ``items`` separated by ", ", wrapped only between items: a metric's value
    and its tolerance stay on one line."""
    last = len(items) - 1
    lines = [head + items[0] + ("," if last else "")]
    for number, item in enumerate(items[1:], start=1):
        text = item + ("," if number < last else "")
        if len(lines[-1]) + 1 + len(text) <= width:
            lines[-1] += " " + text
        else:
            lines.append(indent + text)
    return lines


def _metric_text(metric: str, spec: Any) -> str:
    if isinstance(spec, dict):
        text = f"{metric} {spec.get('value')}"
        if spec.get("tolerance") is not None:
            text += f" (tolerance {spec['tolerance']})"
        return text
    return f"{metric} {spec}"


def _paper(args: argparse.Namespace) -> int:
    from pytest_modgap.gate.published import paper_values
    from pytest_modgap.reports.paper import DEFAULT_MODELS, PAPER_DATASETS, paper_table, run_paper

    folders = {key: getattr(args, key) for key in PAPER_DATASETS if getattr(args, key)}
    if not folders:
        raise _UsageError(
            "no data set given: pass at least one of --flickr30k DIR, --coco DIR, --cifar100 DIR "
            "(see `modgap paper --help`)"
        )
    _check_outputs(report_dir=args.report_dir)
    run = run_paper(
        folders,
        args.model or DEFAULT_MODELS,
        samples=args.samples,
        seed=args.seed,
        n_boot=args.n_boot,
        device=args.device,
        dtype=args.dtype,
        cache_dir=args.cache_dir,
        trust_remote_code=args.trust_remote_code,
        report_dir=args.report_dir,
        log=print,
    )
    print()
    print(paper_table(run.results, paper_values(), labels=run.labels))
    if run.report_index is not None:
        print(f"\nreport folder written: {run.report_index}")
    return 0


_COMMANDS = {
    "measure": _measure,
    "embed": _embed,
    "compare": _compare_files,
    "baselines": _baselines,
    "history": _history,
    "paper": _paper,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modgap`` console script; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except (_UsageError, ModgapError, OSError) as error:
        print(f"modgap: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
