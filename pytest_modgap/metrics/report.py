"""The Report: metric name -> value, with confidence intervals and the data behind the figures.

Plain Python and numpy only, so reports can be loaded, compared and printed without torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pytest_modgap.metrics.catalogue import METRICS
from pytest_modgap.metrics.measured import MeasuredPairs

_NEEDS_HINT = {
    "text2": " It needs a second caption per pair (text2).",
    "negatives": " It needs negatives: pairs of different groups.",
    "captions": " Retrieval was not asked for (class-prompt captions).",
    "classes": " It needs class names (zero-shot classification: class_embeddings).",
    "five_classes": " It needs class names of at least 5 classes.",
}


@dataclass(frozen=True)
class Distributions:
    """The similarity distributions of Figures 2 and 3, from the same pass as the metrics.

    ``positive``: cos(x_i, y_i) per pair; ``text_text``: cos(y_i, z_i) per pair (with text2);
    ``negative_hist``: counts of negative cosines in 200 equal bins on [−1, 1].
    """

    positive: np.ndarray
    negative_hist: np.ndarray
    text_text: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class Report(Mapping[str, float]):
    """Metrics of one set of paired embeddings: ``report["alignment"]``, ``report.ci["alignment"]``.

    ``ci`` is empty when intervals were turned off (``ci=None``). ``metadata`` records what was measured
    (model, data set, samples, seed, device) when the report came from ``pytest_modgap.measure``.
    ``slices`` maps each slice (a manifest's ``slice`` field, or a class) with enough pairs to the
    Report of its pairs alone.
    """

    metrics: dict[str, float]
    n: int
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci_level: float | None = None
    n_boot: int = 0
    seed: int = 0
    auc_exact: bool = True
    approximated: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    distributions: Distributions | None = field(default=None, repr=False)
    slices: dict[str, Report] = field(default_factory=dict, repr=False)
    measured: MeasuredPairs | None = field(default=None, repr=False)
    """The vectors and pairs this report was measured from (``pytest_modgap.measure`` sets it; a
    baseline snapshot keeps them). Not part of ``to_dict``: a report read back has none."""

    def __getitem__(self, name: str) -> float:
        try:
            return self.metrics[name]
        except KeyError:
            known = ", ".join(self.metrics)
            hint = _NEEDS_HINT.get(METRICS[name].needs, "") if name in METRICS else ""
            raise KeyError(f"{name!r} is not in this report.{hint} Available: {known}.") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    def with_metadata(self, **metadata: Any) -> Report:
        """A copy with ``metadata`` merged in."""
        return replace(self, metadata={**self.metadata, **metadata})

    def worst_slices(self, name: str, count: int = 3) -> list[tuple[str, float]]:
        """The ``count`` slices with the worst value of metric ``name`` (by its better direction),
        worst first, as (slice, value); none for a metric without a direction or slices."""
        better = METRICS[name].better if name in METRICS else "none"
        found = [(label, part[name]) for label, part in self.slices.items() if name in part]
        if better == "none" or not found:
            return []
        found.sort(key=lambda item: item[1], reverse=better == "lower")
        return found[:count]

    def to_dict(self, *, include_distributions: bool = False) -> dict[str, Any]:
        """Plain JSON-serialisable types: metrics with their intervals, and how they were computed.

        ``include_distributions`` adds the similarity distributions behind Figures 2 and 3 (N floats
        per distribution), so figures can be drawn from a saved or xdist-shipped report.
        """
        data = {
            "n": self.n,
            "metrics": {
                name: {
                    "value": value,
                    "ci": list(self.ci[name]) if name in self.ci else None,
                    "better": METRICS[name].better if name in METRICS else None,
                }
                for name, value in self.metrics.items()
            },
            "ci_level": self.ci_level,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "auc_exact": self.auc_exact,
            "ci_approximated": list(self.approximated),
            "metadata": dict(self.metadata),
        }
        if self.slices:
            data["slices"] = {label: part.to_dict() for label, part in self.slices.items()}
        if include_distributions and self.distributions is not None:
            found = self.distributions
            data["distributions"] = {
                "positive": found.positive.tolist(),
                "negative_hist": found.negative_hist.tolist(),
                "text_text": None if found.text_text is None else found.text_text.tolist(),
            }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """The inverse of ``to_dict`` (with the distributions when they were included)."""
        metrics = data["metrics"]
        stored = data.get("distributions")
        distributions = (
            None
            if not stored
            else Distributions(
                positive=np.asarray(stored["positive"], dtype=np.float64),
                negative_hist=np.asarray(stored["negative_hist"], dtype=np.float64),
                text_text=None
                if stored.get("text_text") is None
                else np.asarray(stored["text_text"], dtype=np.float64),
            )
        )
        return cls(
            metrics={name: float(entry["value"]) for name, entry in metrics.items()},
            n=int(data["n"]),
            ci={
                name: (float(entry["ci"][0]), float(entry["ci"][1]))
                for name, entry in metrics.items()
                if entry.get("ci") is not None
            },
            ci_level=data.get("ci_level"),
            n_boot=int(data.get("n_boot", 0)),
            seed=int(data.get("seed", 0)),
            auc_exact=bool(data.get("auc_exact", True)),
            approximated=tuple(data.get("ci_approximated", ())),
            metadata=dict(data.get("metadata", {})),
            distributions=distributions,
            slices={
                str(label): cls.from_dict(part) for label, part in data.get("slices", {}).items()
            },
        )

    def format_value(self, name: str) -> str:
        """``0.7312 [0.7201, 0.7420]``: the value and, when computed, its interval."""
        text = f"{self.metrics[name]:.4f}"
        if name in self.ci:
            low, high = self.ci[name]
            text += f" [{low:.4f}, {high:.4f}]"
        return text

    def table(self) -> str:
        """The metrics as aligned text lines, one per metric, with direction and interval."""
        level = f"{self.ci_level:.0%} CI" if self.ci_level is not None else "no CI"
        width = max(len(name) for name in self.metrics)
        lines = [f"{'metric':<{width}}  better  value  [{level}]"]
        for name in self.metrics:
            better = METRICS[name].better if name in METRICS else "?"
            lines.append(f"{name:<{width}}  {better:<6}  {self.format_value(name)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        described = ", ".join(f"{key}={value}" for key, value in self.metadata.items())
        header = f"Report(n={self.n}{', ' + described if described else ''})"
        return header + "\n" + self.table()
