"""Model against model: embed the same sampled pairs with both, then the paired comparison."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pytest_modgap.data.pairset import PairSet
from pytest_modgap.embedding.measurement import LoadedModel, load_model, sample_embeddings
from pytest_modgap.errors import ModgapError
from pytest_modgap.metrics.paired import Comparison, compare_embeddings


def compare_models(
    candidate: str | LoadedModel,
    reference: str | LoadedModel,
    dataset: str | PairSet,
    *,
    samples: int | None = 1000,
    seed: int = 0,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    trust_remote_code: bool = False,
    ci: float | None = 0.95,
    n_boot: int = 1000,
    tolerance: float | Mapping[str, float] | None = None,
    progress: bool | None = None,
    ray_address: str | None = None,
) -> Comparison:
    """Embed the same ``samples`` pairs of ``dataset`` with both models and compare them, paired.

    Model and data set specs, sampling, device, dtype and cache are as in ``pytest_modgap.measure``
    (embeddings already cached by a measurement are reused); the comparison is
    ``compare_embeddings``. Both models must be encoders, or both precomputed ``embeddings:`` files
    of the same pairs. ``ray_address`` embeds each model on that Ray cluster when its embeddings
    are not in the cache.
    """

    def loaded(model: str | LoadedModel) -> LoadedModel:
        if isinstance(model, LoadedModel):
            return model
        return load_model(
            model,
            device=device,
            dtype=dtype,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
            lazy=True,
        )

    models = (loaded(candidate), loaded(reference))
    precomputed = [m.precomputed for m in models]
    if precomputed[0] != precomputed[1]:
        raise ModgapError(
            f"compare: {models[precomputed.index(True)].spec} is a file of precomputed embeddings "
            f"and the other model an encoder, so they cannot be checked to embed the same pairs; "
            f"compare two encoders, or two embeddings files of the same pairs."
        )
    with contextlib.ExitStack() as stack:
        if not use_cache:
            # Still embed each model once: a private cache for this comparison only.
            cache_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="modgap-compare-"))
        sets = [
            sample_embeddings(
                model,
                dataset,
                samples=samples,
                seed=seed,
                cache_dir=cache_dir,
                batch_size=batch_size,
                progress=progress,
                ray_address=ray_address,
            )
            for model in models
        ]
    (candidate_set, label), (reference_set, _) = sets
    comparison = compare_embeddings(
        candidate_set.pair_set(),
        reference_set.pair_set(),
        ci=ci,
        n_boot=n_boot,
        seed=seed,
        tolerance=tolerance,
        retrieval=candidate_set.retrieval,
    )
    return Comparison(
        rows=comparison.rows,
        n=comparison.n,
        ci_level=comparison.ci_level,
        n_boot=comparison.n_boot,
        seed=comparison.seed,
        metadata={
            "candidate": models[0].spec,
            "reference": models[1].spec,
            "dataset": label,
            "samples": samples,
            "seed": seed,
        },
    )
