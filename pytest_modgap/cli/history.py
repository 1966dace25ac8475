"""``modgap history PATH``: the runs a history file recorded, per data set, and their trends.

The file is appended by ``modgap measure --history`` and by ``pytest --modgap-history``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_modgap.cli.arguments import Commands, Formatter, check_outputs, model_label
from pytest_modgap.errors import ModgapError

_EPILOG = """\
A history file holds one JSON line per measurement, appended by `modgap measure --history PATH`
and by pytest --modgap-history=PATH: model, data set, every metric with its interval, the time and
the git commit of the directory the run started in.

example:
  modgap measure --model ./checkpoints/release-7 --history modgap-history.jsonl
  modgap history modgap-history.jsonl --report-dir history-report
"""


def add_parser(commands: Commands) -> None:
    """Declare ``modgap history`` and its options."""
    history = commands.add_parser(
        "history",
        help="print the runs of a history file; draw each metric over them with --report-dir",
        description="Print the measurements recorded in a history file, per data set, and with\n"
        "--report-dir draw each metric over the runs (interval bands) into an HTML report.",
        formatter_class=Formatter,
        epilog=_EPILOG,
    )
    history.add_argument("path", metavar="PATH", help="the history file (JSON lines)")
    history.add_argument(
        "--report-dir", metavar="DIR", help="write the trend figures and index.html to DIR"
    )


def run(args: argparse.Namespace) -> int:
    """The recorded runs per data set; with --report-dir the trends."""
    from pytest_modgap.reports.history import CHANGE_METRICS, read_history, run_label
    from pytest_modgap.reports.trends import dataset_groups

    path = Path(args.path)
    if not path.is_file():
        raise ModgapError(
            f"{args.path}: no such history file; write one with `modgap measure --history "
            f"{args.path}` or pytest --modgap-history={args.path}."
        )
    check_outputs(report_dir=args.report_dir)
    history = read_history(path)
    if history.skipped:
        numbers = ", ".join(str(number) for number in history.skipped[:10])
        print(f"{path}: skipped line(s) {numbers}: not history entries")
    if not history.entries:
        print(f"{path}: no measurements recorded yet.")
        return 0
    for dataset, entries in dataset_groups(history.entries).items():
        print(f"\n{dataset}: {len(entries)} run{'s' if len(entries) != 1 else ''}")
        width = max(len(model_label(str(e["model"]))) for e in entries)
        head = "".join(f"  {name:>13}" for name in CHANGE_METRICS)
        print(f"  {'run':<32}{'model':<{width}}{head}")
        for entry in entries:
            values = "".join(
                f"  {entry['metrics'][name]['value']:>13.4f}"
                if name in entry["metrics"]
                else f"  {'-':>13}"
                for name in CHANGE_METRICS
            )
            print(f"  {run_label(entry):<32}{model_label(str(entry['model'])):<{width}}{values}")
    if args.report_dir:
        from pytest_modgap.reports.html import figures_unavailable
        from pytest_modgap.reports.trends import write_history_report

        index = write_history_report(history, args.report_dir)
        print(f"\nreport folder written: {index}")
        missing = figures_unavailable()
        if missing:
            print(f"figures not drawn: {missing}")
    return 0
