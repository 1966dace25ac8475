"""Benchmark of one huge caption: time and peak memory of embedding it with a tiny CLIP whose
tokenizer is the real CLIP BPE (built offline from open-clip's vocabulary, as the tests do).

Builds the model once, then in a fresh process: a warm-up embedding of two short pairs, then two
pairs whose second caption is ``--mb`` MB of plain English words ("a photo of a small red dog on
the grass ..."), through the local pipeline: once cut by ``data.caption_bound`` as the pipeline
does, once whole. Tokenizers tokenize a whole text before truncating it to the model's window, so
without the bound the caption's length sets the cost; the two vectors must be equal.
Run: python benchmarks/bench_caption.py [--mb 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_data import rss_mb, run_child  # noqa: E402

WORDS = "a photo of a small red dog on the grass "


def child(model_dir: str, megabytes: float, bounded: bool) -> dict[str, Any]:
    """Embed two pairs, one with a caption of ``megabytes`` MB, in this (fresh) process; without
    ``bounded``, the caption reaches the tokenizer whole (the code before the bound)."""
    from pytest_modgap.data.pairset import PairSet
    from pytest_modgap.embedding import pipeline
    from pytest_modgap.embedding.pipeline import embed_pairs
    from pytest_modgap.models.loader import load_encoder

    if not bounded:
        pipeline.bounded_caption = lambda text: text  # type: ignore[assignment]

    encoder = load_encoder(model_dir, device="cpu")
    images = [np.zeros((8, 8, 3), np.uint8)] * 2

    def embed(texts: list[str]) -> Any:
        pairs = PairSet("caption", images, texts)
        return embed_pairs(pairs, encoder, batch_size=2, num_workers=0, progress=False)

    embed(["a cat", "a dog"])
    length = int(megabytes * 1e6)
    caption = (WORDS * (length // len(WORDS) + 1))[:length]
    before = rss_mb("VmHWM")
    started = time.perf_counter()
    vectors = embed(["a cat", caption]).text
    return {
        "seconds": time.perf_counter() - started,
        "peak_before_mb": before,
        "peak_rss_mb": rss_mb("VmHWM"),
        "vector": [round(float(value), 6) for value in vectors[1, :4]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--child", nargs=3, metavar=("MODEL_DIR", "MB", "BOUNDED"))
    args = parser.parse_args()
    if args.child:
        model_dir, megabytes, bounded = args.child
        print(json.dumps(child(model_dir, float(megabytes), bounded == "bounded")))
        return
    from tests.models.tiny_models import build_clip_dir

    root = Path(tempfile.mkdtemp(prefix="bench_caption_"))
    try:
        model_dir = build_clip_dir(root / "clip")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        for case in ("bounded", "whole"):
            result = run_child(__file__, [str(model_dir), str(args.mb), case], env)
            print(
                f"a {args.mb:g} MB caption, {case:7s}: {result['seconds']:6.2f} s, peak RSS "
                f"{result['peak_rss_mb']:5.0f} MB (before it {result['peak_before_mb']:.0f} MB); "
                f"its vector starts {result['vector']}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
