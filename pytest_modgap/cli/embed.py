"""``modgap embed``: embed a whole data set (locally or on a Ray cluster) into a folder of shards.

``modgap measure --model embeddings:DIR`` measures the folder later.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from pytest_modgap.cli.arguments import (
    Commands,
    Formatter,
    add_encoding,
    add_model_and_data,
    add_ray_address,
    samples,
    seed,
    specs_help,
)
from pytest_modgap.errors import ModgapError

_EPILOG = """\
The folder holds manifest.json (model, data set, counts, every shard's SHA-256), pairs.npz (which
caption row belongs to which pair) and image-*.npz / text-*.npz shards of at most 65,536 vectors.
It appears whole or not at all. With a Ray address, every node must read the data set and the model
at the same paths (a shared folder), and have pytest-modgap[ray] installed.

example:
  modgap embed --model ./checkpoints/release-7 --dataset wds:/data/laion/{00000..00999}.tar \\
      --ray-address ray://head:10001 --out /data/embeddings/release-7
  modgap measure --model embeddings:/data/embeddings/release-7 --samples all
"""


def add_parser(commands: Commands) -> None:
    """Declare ``modgap embed`` and its options."""
    embed = commands.add_parser(
        "embed",
        help="embed a whole data set (on a Ray cluster) into a folder of shards",
        description="Embed every pair of a data set (or --samples of them) and write the image\n"
        "and caption vectors as sharded .npz files with a manifest into a new folder; measure\n"
        "them later with --model embeddings:DIR. With --ray-address the pairs are decoded and\n"
        "embedded across a Ray cluster and the shards written as batches arrive.",
        formatter_class=Formatter,
        epilog_text=lambda: specs_help() + "\n" + _EPILOG,
    )
    add_model_and_data(embed)
    embed.add_argument("--out", required=True, metavar="DIR", help="new (or empty) folder to write")
    embed.add_argument(
        "--samples", type=samples, default=None, help="random pairs (default: all of them)"
    )
    embed.add_argument("--seed", type=seed, default=0, help="sampling seed")
    add_ray_address(embed)
    add_encoding(
        embed,
        device_help="cpu or cuda (default: the cluster's GPUs when it has some)",
        batch_help="images or texts per replica call",
    )


def run(args: argparse.Namespace) -> int:
    """Embed the sampled pairs into ``--out`` and say how to measure them."""
    from pytest_modgap import __version__
    from pytest_modgap.data.specs import load_dataset
    from pytest_modgap.embedding.measurement import load_model
    from pytest_modgap.embedding.ray.embed import embed_to_folder
    from pytest_modgap.models.sharded import check_output_folder
    from pytest_modgap.reference import reference_model_dir

    out = Path(args.out)
    check_out(args.out)
    check_output_folder(out)
    model_spec = args.model or str(reference_model_dir("reference"))
    loaded = load_model(
        model_spec,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        trust_remote_code=args.trust_remote_code,
        lazy=True,  # with a Ray address only the replicas load it
    )
    pairs = load_dataset(args.dataset).sample(args.samples, args.seed)
    metadata = {
        "model": model_spec,
        "dataset": args.dataset,
        "samples": args.samples,
        "seed": args.seed,
        "ray_address": args.ray_address,
        "pytest_modgap": __version__,
    }
    embed_to_folder(loaded, pairs, out, address=args.ray_address, metadata=metadata)
    print(f"embedded {len(pairs)} pairs of {args.dataset} with {model_spec} into {out}")
    print(f"measure them with: modgap measure --model embeddings:{out} --samples all")
    return 0


def check_out(given: str) -> None:
    """A ModgapError naming --out when the folder could not be put there, found before anything
    is loaded or embedded: the shards fill a temporary folder beside --out, renamed onto it at the
    end, so a link at --out, a file above it or a folder that takes no new entries would fail
    only after the whole data set was embedded."""
    out = Path(given)
    if out.is_symlink():
        raise ModgapError(
            f"--out {given}: it is a symbolic link (to {os.readlink(out)}); the finished folder "
            f"is renamed onto --out, and a folder cannot be renamed onto a link. Give the path "
            f"the link points to, or a new folder."
        )
    problem = _out_problem(out)
    if problem is not None:
        raise ModgapError(
            f"--out {given}: {problem}. Give a new (or empty) folder in a place this user can "
            f"write; missing folders above it are created."
        )


def _out_problem(out: Path) -> str | None:
    """Why no folder can be created at ``out`` (a file above it, a folder that is not writable)."""
    from pytest_modgap.gate.outputs import folder_problem

    return folder_problem(out.parent) or _refused_new_folder(out.parent)


def _refused_new_folder(parent: Path) -> str | None:
    """Why the nearest existing folder at or above ``parent`` takes no new folder, or None.

    A real attempt (made and removed at once): a permission check passes root everywhere, yet
    /sys, /proc and read-only mounts refuse root too.
    """
    existing = parent
    while not existing.exists():
        existing = existing.parent
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".modgap-probe-", dir=existing))
    except OSError as error:
        return f"{existing} is not writable ({error.strerror or error})"
    return None
