"""``measure_embeddings``: paired embeddings in, a Report with every metric and its interval out.

Validation (inputs.py), the all-pairs passes (allpairs.py), the metric formulas (definitions.py) and the
bootstrap (bootstrap.py) are wired here, and only here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pytest_modgap.errors import ModgapInputError
from pytest_modgap.metrics.allpairs import OVERLAP_BINS
from pytest_modgap.metrics.bootstrap import (
    bootstrap_distributions,
    check_interval_options,
    metric_intervals,
    point_estimates,
)
from pytest_modgap.metrics.catalogue import METRICS
from pytest_modgap.metrics.definitions import (
    APPROXIMATED_IN_BOOTSTRAP,
    PairStatistics,
    pair_statistics,
)
from pytest_modgap.metrics.inputs import prepare_embeddings
from pytest_modgap.metrics.report import Distributions, Report

SLICE_MIN_PAIRS = 20
"""A slice with fewer pairs gets no Report of its own: its intervals would span most of the range."""


def checked_statistics(
    image: Any,
    text: Any,
    *,
    text2: Any = None,
    groups: Any = None,
    extra_captions: Any = None,
    extra_caption_image: Any = None,
    retrieval: bool = True,
    class_embeddings: Any = None,
    negatives_required: bool = True,
) -> PairStatistics:
    """Validate and normalise the embeddings and run the all-pairs passes once (call it under
    ``torch.inference_mode()``); a ModgapInputError when the groups leave no negatives (unless
    ``negatives_required`` is False: then the metrics of the negatives are left out)."""
    embeddings = prepare_embeddings(
        image,
        text,
        text2=text2,
        groups=groups,
        extra_captions=extra_captions,
        extra_caption_image=extra_caption_image,
        retrieval=retrieval,
        class_embeddings=class_embeddings,
    )
    stats = pair_statistics(embeddings)
    if stats.cross.negative_count == 0 and negatives_required:
        raise ModgapInputError(
            f"groups: all {embeddings.n} pairs share one group, so no image-text pair is a "
            f"negative and the separation metrics are undefined. Pass groups with at least "
            f"two distinct labels, or no groups."
        )
    return stats


def measure_embeddings(
    image: Any,
    text: Any,
    *,
    text2: Any = None,
    groups: Any = None,
    extra_captions: Any = None,
    extra_caption_image: Any = None,
    retrieval: bool = True,
    class_embeddings: Any = None,
    slices: Any = None,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Report:
    """Every modality-gap, alignment, cone, retrieval and zero-shot metric of matched embeddings,
    with bootstrap intervals.

    ``image`` and ``text``: (N, d) arrays or tensors, row i of each one matched pair (``text`` is
    each image's first caption), any float dtype (rows are L2-normalised here). ``text2``: an
    optional second caption embedding per pair (enables the text-text metrics of Figure 2).
    ``groups``: an optional int label per pair; image-text pairs in one group are not negatives.
    ``extra_captions`` (M, d) with ``extra_caption_image`` (M,): the images' further captions (row
    m describes image ``extra_caption_image[m]``); retrieval ranks over ``text`` and these.
    ``retrieval=False`` leaves the recalls out (for class-prompt captions, which many images
    share). ``class_embeddings``: (C, d) or (C, T, d) embeddings of each class's prompt templates
    for zero-shot classification; ``groups[i]`` is then pair i's class, a row of it. ``slices``:
    an optional label per pair (str or int; a str and an int that read alike, ``"1"`` and ``1``,
    are refused); each label with at least ``SLICE_MIN_PAIRS`` pairs
    gets its own Report in ``Report.slices``, measured on its pairs alone. ``ci``: the interval
    level (``None``: no intervals); ``n_boot`` resamples of the pairs with ``seed``. Tensors are
    processed on their own device (CUDA included).

    The metric names and definitions are those of ``pytest_modgap.metrics.catalogue.METRICS``; see
    ``definitions.py`` for formulas and sources. Intervals of auc, pos_neg_overlap, the
    uniformities and the recalls are first-order (``APPROXIMATED_IN_BOOTSTRAP``); the others are
    exact.
    """
    check_interval_options(ci, n_boot)
    inputs = _Inputs(
        image, text, text2, groups, extra_captions, extra_caption_image, retrieval, class_embeddings
    )
    report = _measure(inputs, ci=ci, n_boot=n_boot, seed=seed, negatives_required=True)
    if slices is None:
        return report
    return replace(report, slices=_slice_reports(inputs, slices, ci=ci, n_boot=n_boot, seed=seed))


@dataclass(frozen=True)
class _Inputs:
    """The arguments of ``measure_embeddings`` that describe the data, as given."""

    image: Any
    text: Any
    text2: Any
    groups: Any
    extra_captions: Any
    extra_caption_image: Any
    retrieval: bool
    class_embeddings: Any


def _measure(
    inputs: _Inputs, *, ci: float | None, n_boot: int, seed: int, negatives_required: bool
) -> Report:
    import torch

    with torch.inference_mode():
        stats = checked_statistics(
            inputs.image,
            inputs.text,
            text2=inputs.text2,
            groups=inputs.groups,
            extra_captions=inputs.extra_captions,
            extra_caption_image=inputs.extra_caption_image,
            retrieval=inputs.retrieval,
            class_embeddings=inputs.class_embeddings,
            negatives_required=negatives_required,
        )
        embeddings = stats.embeddings
        # One evaluation at weight 1 gives the values and the interval-scale statistics.
        point = point_estimates(stats)
        values = {name: value for name, value in point.items() if name in METRICS}
        intervals: dict[str, tuple[float, float]] = {}
        if ci is not None:
            (replicates,) = bootstrap_distributions([stats], n_boot=n_boot, seed=seed)
            intervals = metric_intervals(point, replicates, ci)
    bad = [name for name, value in values.items() if not np.isfinite(value)]
    if bad:
        raise ModgapInputError(
            f"image and text: the metrics {', '.join(bad)} came out non-finite for these "
            f"{embeddings.n} pairs; check the inputs for values near the float32 limits."
        )
    distributions = Distributions(
        positive=stats.positive.double().cpu().numpy(),
        negative_hist=stats.cross.negative_hist.cpu().numpy(),
        text_text=None if stats.text_text is None else stats.text_text.double().cpu().numpy(),
    )
    assert distributions.negative_hist.shape == (OVERLAP_BINS,)
    approximated = tuple(name for name in APPROXIMATED_IN_BOOTSTRAP if name in values)
    return Report(
        metrics=values,
        n=embeddings.n,
        ci=intervals,
        ci_level=ci,
        n_boot=n_boot if ci is not None else 0,
        seed=seed,
        auc_exact=stats.cross.auc_exact,
        approximated=approximated if ci is not None else (),
        distributions=distributions,
    )


def _rows(value: Any, rows: np.ndarray) -> Any:
    """``value[rows]`` for an array or tensor (None stays None)."""
    if value is None:
        return None
    if hasattr(value, "detach"):
        import torch

        return value[torch.from_numpy(rows).to(value.device)]
    return np.asarray(value)[rows]


def _numpy(value: Any) -> Any:
    """A tensor as a numpy array; anything else as it is."""
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


def _slice_labels(slices: Any, n: int) -> np.ndarray:
    """One str label per pair: the name each slice goes by in the report, its JSON and YAML."""
    labels = np.asarray(_numpy(slices), dtype=object)
    if labels.shape != (n,):
        raise ModgapInputError(
            f"slices: has shape {labels.shape}; expected one label per pair, shape ({n},)."
        )
    names = [str(label) for label in labels]
    _refuse_look_alikes(labels, names)
    return np.asarray(names, dtype=object)


def _refuse_look_alikes(labels: np.ndarray, names: list[str]) -> None:
    """A ModgapInputError when a string label and a label of another type read alike (``"1"`` and
    ``1``): as one slice they would mix two populations; as two, the report could not tell them
    apart. Mixed types are almost surely a data bug (a JSON file writing ``1`` on some lines and
    ``"1"`` on others), so the user picks one."""
    strings = {name for label, name in zip(labels, names, strict=True) if isinstance(label, str)}
    if not strings or len(strings) == len(names):
        return
    for label, name in zip(labels, names, strict=True):
        if name in strings and not isinstance(label, str):
            raise ModgapInputError(
                f"slices: the labels {label!r} ({type(label).__name__}) and {name!r} (str) both "
                f"read as {name!r}, the name a slice goes by in reports and baselines, so their "
                f"pairs cannot be told apart. Give every slice label as one type: all strings or "
                f"all integers."
            )


def _slice_reports(
    inputs: _Inputs, slices: Any, *, ci: float | None, n_boot: int, seed: int
) -> dict[str, Report]:
    """A Report per slice label with at least SLICE_MIN_PAIRS pairs, in label order.

    Each is measured on its own pairs: its negatives, retrieval gallery and cones are the slice's,
    its zero-shot classifier keeps every class. A slice whose pairs share one group has no
    negatives: its report leaves those metrics out.
    """
    n = len(inputs.image)
    labels = _slice_labels(slices, n)
    found = inputs.extra_caption_image
    extra_image = None if found is None else np.asarray(_numpy(found), dtype=np.int64)
    reports: dict[str, Report] = {}
    for label in sorted(set(labels.tolist())):
        rows = np.flatnonzero(labels == label)
        if len(rows) < SLICE_MIN_PAIRS:
            continue
        extra, extra_rows = None, None
        if inputs.extra_captions is not None and extra_image is not None:
            position = np.full(n, -1)
            position[rows] = np.arange(len(rows))
            keep = np.flatnonzero(position[extra_image] >= 0)
            extra, extra_rows = _rows(inputs.extra_captions, keep), position[extra_image[keep]]
        part = _Inputs(
            _rows(inputs.image, rows),
            _rows(inputs.text, rows),
            _rows(inputs.text2, rows),
            _rows(inputs.groups, rows),
            extra,
            extra_rows,
            inputs.retrieval,
            inputs.class_embeddings,
        )
        report = _measure(part, ci=ci, n_boot=n_boot, seed=seed, negatives_required=False)
        reports[label] = replace(report, distributions=None)
    return reports
