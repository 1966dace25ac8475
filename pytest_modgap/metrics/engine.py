"""``measure_embeddings``: paired embeddings in, a Report with every metric and its interval out.

Validation (inputs.py), the all-pairs passes (allpairs.py), the metric formulas (definitions.py) and the
bootstrap (bootstrap.py) are wired here, and only here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_modgap.errors import ModgapInputError
from pytest_modgap.metrics.allpairs import OVERLAP_BINS
from pytest_modgap.metrics.bootstrap import check_interval_options, confidence_intervals
from pytest_modgap.metrics.definitions import (
    APPROXIMATED_IN_BOOTSTRAP,
    PairStatistics,
    metric_values,
    pair_statistics,
)
from pytest_modgap.metrics.inputs import prepare_embeddings
from pytest_modgap.metrics.report import Distributions, Report


def checked_statistics(
    image: Any, text: Any, *, text2: Any = None, groups: Any = None
) -> PairStatistics:
    """Validate and normalise the embeddings and run the all-pairs passes once (call it under
    ``torch.inference_mode()``); a ModgapInputError when the groups leave no negatives."""
    embeddings = prepare_embeddings(image, text, text2=text2, groups=groups)
    stats = pair_statistics(embeddings)
    if stats.cross.negative_count == 0:
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
    ci: float | None = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Report:
    """Every modality-gap, alignment and cone metric of matched embeddings, with bootstrap intervals.

    ``image`` and ``text``: (N, d) arrays or tensors, row i of each one matched pair, any float dtype
    (rows are L2-normalised here). ``text2``: an optional second caption embedding per pair (enables
    the text-text metrics of Figure 2). ``groups``: an optional int label per pair; image-text pairs in
    one group are not negatives. ``ci``: the interval level (``None``: no intervals); ``n_boot``
    resamples of the pairs with ``seed``. Tensors are processed on their own device (CUDA included).

    The metric names and definitions are those of ``pytest_modgap.metrics.catalogue.METRICS``; see
    ``definitions.py`` for formulas and sources. Intervals of auc, pos_neg_overlap and the uniformities use
    the first-order projection of their all-pairs sums (no N² work per resample); the others are exact.
    """
    import torch

    check_interval_options(ci, n_boot)
    with torch.inference_mode():
        stats = checked_statistics(image, text, text2=text2, groups=groups)
        embeddings = stats.embeddings
        ones = torch.ones(1, embeddings.n, dtype=torch.float64, device=embeddings.device)
        values = {name: float(tensor[0]) for name, tensor in metric_values(stats, ones).items()}
        intervals = (
            {} if ci is None else confidence_intervals(stats, level=ci, n_boot=n_boot, seed=seed)
        )
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
    return Report(
        metrics=values,
        n=embeddings.n,
        ci=intervals,
        ci_level=ci,
        n_boot=n_boot if ci is not None else 0,
        seed=seed,
        auc_exact=stats.cross.auc_exact,
        approximated=APPROXIMATED_IN_BOOTSTRAP if ci is not None else (),
        distributions=distributions,
    )
