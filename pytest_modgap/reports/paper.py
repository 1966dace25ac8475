"""Reproduce the jina-embeddings-v4 paper's Table 4 (and Figures 2 and 3) on data sets at hand.

Measures every model on the same sampled pairs of each data set and sets alignment beside the paper.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_modgap.errors import ModgapError
from pytest_modgap.metrics.report import Report

PAPER_DATASETS: dict[str, str] = {
    "flickr30k": "Flickr30K",
    "coco": "MSCOCO",
    "cifar100": "CIFAR-100",
}
"""Table 4's data set keys (as in the shipped baselines and the loader names) and their titles."""

OPENAI_CLIP = "openai/clip-vit-base-patch32"
"""The OpenAI CLIP measured by default. The paper does not name its checkpoint (nor does the shipped
baseline's model field): ViT-B/32, the most used one, is a guess, and its paper values are shown."""

PAPER_BASELINES: dict[str, str] = {
    OPENAI_CLIP: "paper/openai-clip",
    "jinaai/jina-clip-v2": "paper/jina-clip-v2",
    "jinaai/jina-embeddings-v4": "paper/jina-embeddings-v4",
}
"""The model specs whose Table 4 values are known, and the shipped baseline that holds them."""

DEFAULT_MODELS: tuple[str, ...] = tuple(PAPER_BASELINES)
"""The three models of Table 4, in the paper's order."""

CONTEXT_METRICS = ("centroid_gap", "image_cone")
"""Printed under the table for context: the gap between the modalities and the image cone."""

Results = dict[str, dict[str, Report]]
"""model spec -> data set key -> Report, in the order measured."""


@dataclass(frozen=True)
class PaperRun:
    """What ``run_paper`` measured and, with a report folder, the path of its index.html."""

    results: Results
    labels: dict[str, str]
    report_index: Path | None = None


def paper_value(spec: str, dataset: str, values: Mapping[str, Mapping[str, float]]) -> float | None:
    """The paper's alignment for ``spec`` (a pinned ``@revision`` still matches) on ``dataset``."""
    known = values.get(spec)
    if known is None and "@" in spec:
        known = values.get(spec.rsplit("@", 1)[0])
    return None if known is None else known.get(dataset)


def model_labels(specs: Sequence[str]) -> dict[str, str]:
    """Short names for tables and figure panels: a local directory's name, else the spec itself.

    When two directories share a name, every model keeps its full spec so the panels stay apart.
    """
    short = {spec: Path(spec).name if Path(spec).is_dir() else spec for spec in specs}
    if len(set(short.values())) < len(short):
        return {spec: spec for spec in specs}
    return short


def _cell(report: Report | None, paper: float | None) -> str:
    """``0.152 [0.149, 0.156] (paper 0.15)``; a dash when the data set was not measured."""
    if report is None or "alignment" not in report:
        return "-"
    text = f"{report['alignment']:.3f}"
    if "alignment" in report.ci:
        low, high = report.ci["alignment"]
        text += f" [{low:.3f}, {high:.3f}]"
    if paper is not None:
        text += f" (paper {paper:.2f})"
    return text


def _context(report: Report | None) -> str:
    if report is None:
        return "-"
    return " / ".join(f"{report[name]:.3f}" if name in report else "-" for name in CONTEXT_METRICS)


def _aligned(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        (
            indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def paper_table(
    results: Mapping[str, Mapping[str, Report]],
    paper_values: Mapping[str, Mapping[str, float]],
    *,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Table 4 as text: one row per model, one column per measured data set, each cell
    ``alignment [CI] (paper value)``; then one line per model with centroid_gap / image_cone.

    ``paper_values`` (from ``pytest_modgap.gate.published.paper_values()``) gives the published alignment; models it does not
    know get no paper value. ``labels`` shortens model specs (default: the specs themselves).
    """
    if not results:
        raise ModgapError("paper_table: no results given; measure at least one model.")
    datasets = [key for key in PAPER_DATASETS if any(key in row for row in results.values())]
    datasets += [key for row in results.values() for key in row if key not in PAPER_DATASETS]
    datasets = list(dict.fromkeys(datasets))
    reports = [report for row in results.values() for report in row.values()]
    sizes = sorted({report.n for report in reports})
    levels = sorted({report.ci_level for report in reports if report.ci_level is not None})
    level = ", ".join(f"{lvl:.0%}" for lvl in levels) + " CI" if levels else "no CI"
    names = labels or {}
    title = [PAPER_DATASETS.get(key, key) for key in datasets]

    def label(spec: str) -> str:
        return names.get(spec, spec)

    table = [
        ["model", *title],
        *(
            [
                label(spec),
                *(_cell(row.get(key), paper_value(spec, key, paper_values)) for key in datasets),
            ]
            for spec, row in results.items()
        ),
    ]
    context = [
        ["model", *title],
        *(
            [label(spec), *(_context(row.get(key)) for key in datasets)]
            for spec, row in results.items()
        ),
    ]
    pairs = ", ".join(f"{size:,}" for size in sizes)
    lines = [
        f"Cross-modal alignment: mean cosine of matched image-text pairs ({pairs} pairs per data "
        f"set, {level})"
    ]
    if any(
        paper_value(spec, key, paper_values) is not None for spec in results for key in datasets
    ):
        lines.append(
            "paper: jina-embeddings-v4 (arXiv 2506.18902) Table 4, 1K random pairs, seed not "
            "published"
        )
    lines += [
        "",
        *_aligned(table),
        "",
        f"Context ({' / '.join(CONTEXT_METRICS)}, lower is better):",
        *_aligned(context),
    ]
    if any(spec.rsplit("@", 1)[0] == OPENAI_CLIP for spec in results):
        lines += [
            "",
            f"The paper does not say which OpenAI CLIP it used; its values are shown for "
            f"{OPENAI_CLIP}.",
        ]
    return "\n".join(lines)


def _preflight(models: Sequence[str], trust_remote_code: bool) -> None:
    """Every model must be loadable before hours of embedding start: refuse early, in one line."""
    from pytest_modgap.models.loader import EMBEDDINGS_PREFIX, is_factory_spec
    from pytest_modgap.models.source import resolve_model_source

    for spec in models:
        if spec.startswith(EMBEDDINGS_PREFIX):
            raise ModgapError(
                f"--model {spec}: precomputed embeddings belong to one data set, and Table 4 "
                f"embeds several; give a model directory or Hugging Face id (or use "
                f"`modgap measure` for precomputed vectors)."
            )
        if is_factory_spec(spec):
            continue
        source = resolve_model_source(spec)
        if source.remote_code_class is not None and not trust_remote_code:
            raise ModgapError(
                f"--model {spec}: the model ships its own Python code (AutoModel -> "
                f"{source.remote_code_class}) and running it was not allowed; read that code, "
                f"then pass --trust-remote-code (trust_remote_code=True in run_paper)."
            )


def _release_memory() -> None:
    """Drop the last model's weights before the next one loads (three models rarely fit at once)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_paper(
    datasets: Mapping[str, str | Path],
    models: Sequence[str] = DEFAULT_MODELS,
    *,
    samples: int = 1000,
    seed: int = 0,
    n_boot: int = 1000,
    device: str | None = None,
    dtype: str | None = None,
    cache_dir: str | Path | None = None,
    trust_remote_code: bool = False,
    report_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> PaperRun:
    """Measure every model on ``samples`` random pairs of every data set, as the paper's Table 4.

    ``datasets``: data set key (``flickr30k``, ``coco``, ``cifar100``) -> its folder in the
    distributed layout; at least one. ``models``: model specs (default: the three of Table 4).
    Each data set is sampled once with ``seed``, so every model sees the same pairs. Every model is
    checked to be loadable (offline, remote code allowed) before anything is embedded; then models
    are loaded one at a time. Embeddings are cached under ``cache_dir``. With ``report_dir`` the
    stacked Figures 2 and 3 (one panel per model, per data set) and index.html are written there.
    ``log`` receives one line per finished measurement.
    """
    from pytest_modgap.data.specs import load_dataset
    from pytest_modgap.embedding.measurement import load_model, measure

    if not datasets:
        raise ModgapError(
            "no data set given: pass at least one of --flickr30k DIR, --coco DIR, --cifar100 DIR."
        )
    unknown = [key for key in datasets if key not in PAPER_DATASETS]
    if unknown:
        raise ModgapError(
            f"data set key(s) {', '.join(unknown)} are not in Table 4; use "
            f"{', '.join(PAPER_DATASETS)}."
        )
    if not models:
        raise ModgapError("no model given: pass at least one --model SPEC (or none for the three).")
    models = list(dict.fromkeys(models))
    specs = {key: f"{key}:{Path(folder).expanduser()}" for key, folder in datasets.items()}
    # Loading and sampling first: a wrong folder fails before any model is loaded.
    sampled = {key: load_dataset(spec).sample(samples, seed) for key, spec in specs.items()}
    _preflight(models, trust_remote_code)

    results: Results = {}
    for spec in models:
        loaded = load_model(spec, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
        row: dict[str, Report] = {}
        for key, pairs in sampled.items():
            report = measure(
                loaded, pairs, seed=seed, cache_dir=cache_dir, n_boot=n_boot, ci=0.95
            ).with_metadata(dataset=specs[key], samples=samples)
            row[key] = report
            if log is not None:
                log(
                    f"measured {spec} on {PAPER_DATASETS[key]}: {report.n} pairs, "
                    f"{report.metadata.get('seconds')} s"
                )
        results[spec] = row
        del loaded
        _release_memory()

    labels = model_labels(models)
    index = None
    if report_dir is not None:
        from pytest_modgap.reports.html import write_report_dir

        index = write_report_dir(
            report_dir,
            [
                (labels[spec], PAPER_DATASETS[key], results[spec][key])
                for key in sampled
                for spec in models
            ],
            title="jina-embeddings-v4 Table 4, Figures 2 and 3: reproduction",
        )
    return PaperRun(results=results, labels=labels, report_index=index)
