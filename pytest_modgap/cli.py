"""The ``modgap`` command: measure a model outside a test suite and print the metrics table.

Argument parsing and printing only; the work is ``pytest_modgap.measure``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_modgap.errors import ModgapError

_EPILOG = """\
model specs: a Hugging Face id or local directory (name@revision pins a revision), module:factory,
  or embeddings:file.npz. Default: the shipped reference model (a tiny CLIP trained offline).
data set specs: shapes (built in, the default), flickr8k:DIR, flickr30k:DIR, coco:DIR, cifar100:DIR,
  jsonl:FILE or any FILE.jsonl.

examples:
  modgap measure
  modgap measure --model ./checkpoints/candidate --dataset flickr30k:/data/flickr30k --samples 1000
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modgap",
        description="Modality gap, alignment and cone-effect metrics of multimodal encoders.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    measure = commands.add_parser(
        "measure",
        help="embed a data set with a model and print every metric with its confidence interval",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    measure.add_argument("--model", help="model spec (default: the shipped reference model)")
    measure.add_argument("--dataset", default="shapes", help="data set spec (default: shapes)")
    measure.add_argument("--samples", type=int, default=1000, help="random pairs (default: 1000)")
    measure.add_argument("--seed", type=int, default=0, help="sampling and bootstrap seed")
    measure.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    measure.add_argument("--dtype", help="float32, bfloat16, float16 (default: bf16 on cuda)")
    measure.add_argument("--batch-size", type=int, help="batch size (default: fits the device)")
    measure.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    measure.add_argument("--no-ci", action="store_true", help="skip the confidence intervals")
    measure.add_argument("--cache-dir", help="embedding cache (default: ~/.cache/pytest-modgap)")
    measure.add_argument("--no-cache", action="store_true", help="always embed again")
    measure.add_argument(
        "--trust-remote-code", action="store_true", help="allow the model's own code (jina models)"
    )
    measure.add_argument("--json", metavar="PATH", help="also write the report as JSON")
    return parser


def _measure(args: argparse.Namespace) -> int:
    from pytest_modgap.measurement import measure
    from pytest_modgap.reference import reference_model_dir

    model = args.model or str(reference_model_dir("reference"))
    report = measure(
        model,
        args.dataset,
        samples=args.samples,
        seed=args.seed,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
        trust_remote_code=args.trust_remote_code,
        ci=None if args.no_ci else 0.95,
        n_boot=args.n_boot,
    )
    meta = report.metadata
    print(f"model   : {meta.get('model')}")
    print(f"dataset : {meta.get('dataset')} ({report.n} pairs, seed {meta.get('seed')})")
    print(f"device  : {meta.get('device')} / {meta.get('dtype')}, {meta.get('seconds')} s")
    print()
    print(report.table())
    if args.json:
        from pytest_modgap.atomic import write_text_atomic

        write_text_atomic(Path(args.json), json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"\nreport written to {args.json}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modgap`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _measure(args)
    except ModgapError as error:
        print(f"modgap: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
