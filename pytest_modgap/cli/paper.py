"""``modgap paper``: reproduce Table 4 of the jina-embeddings-v4 paper (and Figures 2 and 3).

Every model on the same sampled pairs of each data set, beside the paper's published values.
"""

from __future__ import annotations

import argparse

from pytest_modgap.cli.arguments import (
    Commands,
    Formatter,
    UsageError,
    check_outputs,
    model_spec,
    seed,
)

_EPILOG = """\
default models (Table 4's): openai/clip-vit-base-patch32, jinaai/jina-clip-v2 and
  jinaai/jina-embeddings-v4 (retrieval adapter). The paper does not say which OpenAI CLIP it used:
  ViT-B/32 is a guess, and the paper's OpenAI CLIP values are shown beside it. The models must be
  on this machine (a local directory, or a hub id in the local Hugging Face cache); the jina models
  need --trust-remote-code.

Each data set is sampled once with --seed, so every model sees the same pairs. Each cell is the
measured alignment (mean cosine of matched image-text pairs) with its 95% CI and, for the three
default models, the paper's value; a line per model adds centroid_gap / image_cone.

data set folders, in their distributed layouts:
  --flickr30k  captions.txt or results.csv, and Images/ or flickr30k_images/
  --coco       annotations/captions_<split>.json and <split>/ (val2017 first)
  --cifar100   cifar-100-python/ (the test split)

example:
  modgap paper --flickr30k /data/flickr30k --coco /data/coco --cifar100 /data/cifar100 \\
      --trust-remote-code --report-dir table4
"""


def add_parser(commands: Commands) -> None:
    """Declare ``modgap paper`` and its options."""
    paper = commands.add_parser(
        "paper",
        help="reproduce Table 4 of the jina-embeddings-v4 paper (and its Figures 2 and 3)",
        description="Reproduce Table 4 of the jina-embeddings-v4 paper (arXiv 2506.18902, section 8):\n"
        "the cross-modal alignment of every model on random pairs of every data set given.",
        formatter_class=Formatter,
        epilog=_EPILOG,
    )
    for key, title in (("flickr30k", "Flickr30K"), ("coco", "MSCOCO"), ("cifar100", "CIFAR-100")):
        paper.add_argument(f"--{key}", metavar="DIR", help=f"the {title} folder")
    paper.add_argument(
        "--model",
        action="append",
        metavar="SPEC",
        type=model_spec,
        help="model spec, repeatable (default: the three models of Table 4, below)",
    )
    paper.add_argument(
        "--samples",
        type=int,
        default=1000,
        metavar="N",
        help="random pairs per data set (default: 1000, as the paper)",
    )
    paper.add_argument(
        "--seed", type=seed, default=0, metavar="N", help="sampling and bootstrap seed (default: 0)"
    )
    paper.add_argument(
        "--report-dir",
        metavar="OUT",
        help="write the stacked Figures 2 and 3 per data set and index.html to OUT",
    )
    paper.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the models' own code (needed by the jina models)",
    )
    paper.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda when available)")
    paper.add_argument("--dtype", help="float32, bfloat16, float16 (default: bf16 on cuda)")
    paper.add_argument(
        "--cache-dir", metavar="DIR", help="embedding cache (default: ~/.cache/pytest-modgap)"
    )
    paper.add_argument(
        "--n-boot", type=int, default=1000, metavar="N", help="bootstrap resamples (default: 1000)"
    )


def run(args: argparse.Namespace) -> int:
    """Measure every model on every data set given and print the table beside the paper's."""
    from pytest_modgap.gate.published import paper_values
    from pytest_modgap.reports.paper import DEFAULT_MODELS, PAPER_DATASETS, paper_table, run_paper

    folders = {key: getattr(args, key) for key in PAPER_DATASETS if getattr(args, key)}
    if not folders:
        raise UsageError(
            "no data set given: pass at least one of --flickr30k DIR, --coco DIR, --cifar100 DIR "
            "(see `modgap paper --help`)"
        )
    check_outputs(report_dir=args.report_dir)
    run = run_paper(
        folders,
        args.model or DEFAULT_MODELS,
        samples=args.samples,
        seed=args.seed,
        n_boot=args.n_boot,
        device=args.device,
        dtype=args.dtype,
        cache_dir=args.cache_dir,
        trust_remote_code=args.trust_remote_code,
        report_dir=args.report_dir,
        log=print,
    )
    print()
    print(paper_table(run.results, paper_values(), labels=run.labels))
    if run.report_index is not None:
        print(f"\nreport folder written: {run.report_index}")
    return 0
