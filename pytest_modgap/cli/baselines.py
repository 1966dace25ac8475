"""``modgap baselines``: list the YAML baselines of a folder (default: the shipped published values).

Read with the plugin's own YAML loader, so a file the gate refuses is refused here too.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import Any

from pytest_modgap.cli.arguments import Commands, Formatter
from pytest_modgap.errors import ModgapError

_EPILOG = """\
The shipped baselines are the published values (jina-embeddings-v4 Table 4, Liang et al. 2022); use
one in a test with modgap.check(report, baseline="paper/jina-embeddings-v4").
"""


def add_parser(commands: Commands) -> None:
    """Declare ``modgap baselines`` and its folder option."""
    baselines = commands.add_parser(
        "baselines",
        help="list the baselines: model, source, data sets and metric values",
        description="List the YAML baselines of a folder (default: the published baselines\n"
        "shipped with pytest-modgap).",
        formatter_class=Formatter,
        epilog=_EPILOG,
    )
    baselines.add_argument(
        "--dir", metavar="DIR", help="baseline folder to list (default: the shipped baselines)"
    )


def run(args: argparse.Namespace) -> int:
    """List every baseline of the folder: name, model, source and values per data set."""
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
    from pytest_modgap.gate.baselines import read_yaml

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
