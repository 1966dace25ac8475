"""Arguments the ``modgap`` commands share: the parser, value types, spec help and output checks.

One definition per option, so that ``measure`` and ``embed`` cannot drift apart.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from pytest_modgap.errors import ModgapError


def specs_help() -> str:
    """Every model and data set spec form, one line each, from the model loader's and the data set
    loaders' own registries (so a new family or format cannot be missing here)."""
    from pytest_modgap.data.specs import describe_dataset_specs
    from pytest_modgap.models.loader import MODEL_SPEC_FORMS

    width = max(len(form) for form, _ in MODEL_SPEC_FORMS)
    lines = ["Model specs (default: the shipped reference model, a tiny CLIP trained offline):"]
    lines += [f"  {form.ljust(width)}  {description}" for form, description in MODEL_SPEC_FORMS]
    lines.append("  Models that ship their own code (jina-clip-v2, jina-embeddings-v4) need")
    lines.append("  --trust-remote-code.")
    return "\n".join(lines) + "\n\n" + describe_dataset_specs() + "\n"


def ray_address_forms() -> str:
    """The addresses ``--ray-address`` takes, named by the Ray module's own constants."""
    from pytest_modgap.embedding.ray.cluster import AUTO, LOCAL

    return f"{LOCAL}, {AUTO}, ray://HOST:PORT or HOST:PORT"


PLUGIN_OPTIONS = {
    "--modgap-model": "--model",
    "--modgap-trust-remote-code": "--trust-remote-code",
}
"""The command's names for the pytest options that shared code names in its messages
(``errors.option_name``)."""

Commands = Any
"""The object ``add_subparsers`` returns (argparse does not name its type publicly)."""


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Help in 100 columns with room for the command names, descriptions kept as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=28, width=100)


class UsageError(Exception):
    """A command line argparse rejects: reported as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``modgap: error: ...`` and a pointer to ``--help``.

    ``epilog_text`` builds the text below the options when help is shown, not on every run: the
    spec lists import the loaders (numpy, the built-in data sets), which ``modgap compare`` does
    not need.
    """

    def __init__(
        self, *args: Any, epilog_text: Callable[[], str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._epilog_text = epilog_text

    def format_help(self) -> str:
        if self._epilog_text is not None:
            self.epilog = self._epilog_text()
        return super().format_help()

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def dims(text: str) -> list[int]:
    """``128,256`` -> [128, 256]."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of dimensions, e.g. 128,256"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: dimensions must be positive integers")
    return values


class DefaultCount(int):
    """A count the user did not choose (``--samples``' default): the command may lower it to what
    the data set holds, where a number the user typed stays a promise that is checked."""


def model_spec(text: str) -> str:
    """A model spec given on the command line: never empty. An unset shell variable
    (``--model "$CANDIDATE"``) would otherwise fall back to the shipped reference model and pass."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "the model spec is empty (an unset shell variable such as $CANDIDATE?): give a Hugging "
            "Face id, a model directory, open_clip:ARCH@PRETRAINED, embeddings:FILE_OR_DIR or "
            "module:factory, or leave the option out for its default"
        )
    return text


def seed(text: str) -> int:
    """A sampling and bootstrap seed: an integer >= 0, as numpy's generators take."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a seed: give an integer >= 0, e.g. 0 (the same seed draws the same "
            f"pairs)"
        )
    return value


def samples(text: str) -> int | None:
    """``--samples``: a number of random pairs, or ``all`` (None) for every pair of the data set."""
    if text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of pairs: give an integer such as 1000, or 'all'"
        ) from None


def tolerance(text: str) -> float:
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


def add_model_and_data(parser: argparse.ArgumentParser) -> None:
    """``--model`` and ``--dataset``: what to embed, and with which model."""
    parser.add_argument(
        "--model", type=model_spec, help="model spec (default: the shipped reference model)"
    )
    parser.add_argument("--dataset", default="shapes", help="data set spec (default: shapes)")


def add_encoding(parser: argparse.ArgumentParser, *, device_help: str, batch_help: str) -> None:
    """How the model runs: device, dtype, batch size and whether its own code may run."""
    parser.add_argument("--device", help=device_help)
    parser.add_argument("--dtype", help="float32, bfloat16, float16 (default: bf16 on cuda)")
    parser.add_argument("--batch-size", type=int, help=batch_help)
    parser.add_argument(
        "--trust-remote-code", action="store_true", help="allow the model's own code (jina models)"
    )


def add_ray_address(parser: argparse.ArgumentParser) -> None:
    """``--ray-address``: embed on a Ray cluster instead of this machine."""
    parser.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help=f"embed on a Ray cluster: {ray_address_forms()} (needs the [ray] extra)",
    )


def check_outputs(**paths: str | None) -> None:
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


def model_label(spec: str, role: str | None = None) -> str:
    """A short name for figures and tables: a local directory's name, else the spec itself."""
    label = Path(spec).name if Path(spec).is_dir() else spec
    return f"{role}: {label}" if role else label
