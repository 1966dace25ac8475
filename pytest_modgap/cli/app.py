"""The ``modgap`` parser and entry point: one sub-command per module, errors as one line.

Argument parsing and printing only; the work is in embedding/, metrics/, gate/ and reports/.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pytest_modgap.cli import baselines, compare, embed, history, measure, paper
from pytest_modgap.cli.arguments import (
    PLUGIN_OPTIONS,
    Formatter,
    Parser,
    UsageError,
    specs_help,
)
from pytest_modgap.errors import ModgapError, option_names

_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "measure": measure.run,
    "embed": embed.run,
    "history": history.run,
    "compare": compare.run,
    "baselines": baselines.run,
    "paper": paper.run,
}


def build_parser() -> argparse.ArgumentParser:
    """The ``modgap`` parser with every command, in the order ``--help`` lists them."""
    parser = Parser(
        prog="modgap",
        description="Modality gap, alignment and cone-effect metrics of multimodal encoders.",
        formatter_class=Formatter,
        epilog_text=lambda: (
            specs_help() + "\nRun `modgap COMMAND --help` for the options of a command."
        ),
    )
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    for module in (measure, embed, history, compare, baselines, paper):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modgap`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        with option_names(PLUGIN_OPTIONS):
            return _COMMANDS[args.command](args)
    except (UsageError, ModgapError, OSError) as error:
        print(f"modgap: error: {error}", file=sys.stderr)
        return 2
