"""The offline reference models: two tiny CLIPs trained on the built-in shapes set, in the wheel.

``reference`` is a well-trained model; ``regressed`` reintroduces a modality gap (see models/README.md).
"""

from __future__ import annotations

from pathlib import Path

from pytest_modgap.errors import EncoderError

REFERENCE_VARIANTS: tuple[str, ...] = ("reference", "regressed")

_MODELS_DIR = Path(__file__).resolve().parent / "models"


def reference_model_dir(variant: str = "reference") -> Path:
    """The directory of a shipped reference model, loadable with ``CLIPModel.from_pretrained`` and
    ``AutoProcessor.from_pretrained`` offline.

    ``variant`` is ``"reference"`` (trained to the end with CLIP's recipe) or ``"regressed"`` (an
    early checkpoint of the same run, which still has a large modality gap).
    """
    if variant not in REFERENCE_VARIANTS:
        raise EncoderError(
            f"Unknown reference model variant {variant!r}; the shipped variants are "
            f"{' and '.join(repr(v) for v in REFERENCE_VARIANTS)}."
        )
    directory = _MODELS_DIR / variant
    if not (directory / "config.json").is_file():
        raise EncoderError(
            f"The reference model {variant!r} is missing from {directory}; the installation is "
            f"incomplete. Reinstall pytest-modgap, or regenerate it with "
            f"`python -m pytest_modgap.reference.train --out {_MODELS_DIR / 'reference'} "
            f"--regressed-out {_MODELS_DIR / 'regressed'}`."
        )
    return directory
