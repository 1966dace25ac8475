"""``modgap compare A.json B.json``: two saved reports side by side, unpaired.

For a paired test on the same pairs, ``modgap measure --reference-model`` is the command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_modgap.cli.arguments import Commands, Formatter
from pytest_modgap.errors import ModgapError

if TYPE_CHECKING:
    from pytest_modgap.metrics.report import Report

_EPILOG = """\
The reports may come from different pairs, so each value keeps its own interval and no interval of
the difference is given. For a paired test of two models on the same pairs use
  modgap measure --model CANDIDATE --reference-model REFERENCE

example:
  modgap measure --json old.json && modgap measure --model ./candidate --json new.json
  modgap compare old.json new.json
"""


def add_parser(commands: Commands) -> None:
    """Declare ``modgap compare`` and its two report arguments."""
    compare = commands.add_parser(
        "compare",
        help="print the differences between two saved JSON reports",
        description="Print two reports written by `modgap measure --json` side by side, with the\n"
        "difference b - a per metric.",
        formatter_class=Formatter,
        epilog=_EPILOG,
    )
    compare.add_argument("a", metavar="A.json", help="the first (older) report")
    compare.add_argument("b", metavar="B.json", help="the second (newer) report")


def run(args: argparse.Namespace) -> int:
    """Print the two reports and their differences."""
    from pytest_modgap.metrics.paired import compare_reports

    a, b = _read_report(args.a), _read_report(args.b)
    labels = (
        _file_label(args.a, a),
        _file_label(args.b, b),
    )
    print(compare_reports(a, b, labels=labels))
    return 0


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


def _file_label(path: str, report: Report) -> str:
    model, dataset = report.metadata.get("model"), report.metadata.get("dataset")
    described = f"{model} on {dataset}" if model and dataset else model
    return f"{path}, {described}" if described else path
