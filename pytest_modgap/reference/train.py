"""Train the offline reference CLIP models: a tiny transformers CLIPModel on the shapes data set.

``python -m pytest_modgap.reference.train --out DIR [--regressed-out DIR2] [--steps N] [--seed S]``

One run trains with CLIP's own recipe: the symmetric contrastive loss with a learnable temperature
(tau starts at 0.07), AdamW, linear warm-up and cosine decay, on ``generate_shapes`` pairs drawn with
the run's seed (never the evaluation seed of ``load_shapes()``), each step pairing an image with one
of its two captions at random. The last step is the ``reference`` model (DIR).

The ``regressed`` model (DIR2) is the same run's checkpoint after ``--regressed-step`` (60 of 250)
steps: a release cut before contrastive training had closed the modality gap that exists at
initialisation (Liang et al. 2022, "Mind the Gap": the cone effect at random init). It has a much
larger centroid gap and a much lower alignment on ``load_shapes()`` while already matching pairs
better than chance, which is the failure a modgap regression test exists to catch.

Runs are deterministic for a given seed on a given machine (``torch.use_deterministic_algorithms``,
two threads). The final report prints each model's centroid gap and alignment on ``load_shapes()``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_modgap.data.builtin import SHAPES_EVAL_SEED, generate_shapes, load_shapes
from pytest_modgap.data.pairset import PairSet
from pytest_modgap.errors import ModgapError
from pytest_modgap.reference.tokenizer import BOS_TOKEN, EOS_TOKEN, BPEVocabulary, train_bpe

if TYPE_CHECKING:
    import torch
    from transformers import CLIPModel, CLIPProcessor

IMAGE_SIZE = 32
PATCH_SIZE = 8
MAX_TEXT_LENGTH = 32
TRAIN_PAIRS = 12_000
BATCH_SIZE = 128
DEFAULT_STEPS = 250
DEFAULT_REGRESSED_STEP = 60
LEARNING_RATE = 2e-3
WARMUP_FRACTION = 0.05
INITIAL_TAU = 0.07
THREADS = 2
# CLIP's image normalisation (OpenAI's training-set statistics).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TrainingResult:
    """What one saved model is and how it measured: written next to its weights as
    ``training.json``."""

    variant: str
    step: int
    of_steps: int
    seed: int
    seconds: float
    loss: float
    tau: float
    parameters: int
    centroid_gap: float
    alignment: float


def build_processor(vocabulary: BPEVocabulary) -> CLIPProcessor:
    """The processor of the reference models: CLIP's image pipeline at 32x32 and the shapes BPE."""
    from transformers import CLIPImageProcessor, CLIPProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        image_mean=list(CLIP_MEAN),
        image_std=list(CLIP_STD),
    )
    return CLIPProcessor(  # type: ignore[no-untyped-call]
        image_processor=image_processor,
        tokenizer=vocabulary.tokenizer(model_max_length=MAX_TEXT_LENGTH),
    )


def build_model(vocabulary: BPEVocabulary) -> CLIPModel:
    """A freshly initialised tiny CLIPModel (~0.37M parameters, 1.5 MB in fp32) for ``vocabulary``.

    Call ``torch.manual_seed`` first: the initial weights come from torch's global generator.
    """
    from transformers import CLIPConfig, CLIPModel

    tower = {
        "hidden_size": 64,
        "intermediate_size": 256,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        # Exact GELU is one fused op; CLIP's quick_gelu costs a third more time on CPU.
        "hidden_act": "gelu",
    }
    config = CLIPConfig(
        text_config={
            **tower,
            "vocab_size": len(vocabulary.vocab),
            "max_position_embeddings": MAX_TEXT_LENGTH,
            "bos_token_id": vocabulary.vocab[BOS_TOKEN],
            # Not 2, so the text tower pools at the first end-of-text token (the padding token too).
            "eos_token_id": vocabulary.vocab[EOS_TOKEN],
            "pad_token_id": vocabulary.vocab[EOS_TOKEN],
        },
        vision_config={**tower, "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE},
        projection_dim=64,
        logit_scale_init_value=math.log(1 / INITIAL_TAU),
    )
    return CLIPModel(config)


def _features(output: Any) -> torch.Tensor:
    """The projected embedding from ``get_*_features``: a tensor in transformers 4, an output object
    whose ``pooler_output`` is the projection in transformers 5."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    features: torch.Tensor = output.pooler_output
    return features


def embed_pairs(
    model: CLIPModel, processor: CLIPProcessor, pairs: PairSet, batch_size: int = 250
) -> tuple[np.ndarray, np.ndarray]:
    """Image and text embeddings (float32, not normalised) of every pair, row i of each matched."""
    import torch

    images: list[np.ndarray] = []
    texts: list[np.ndarray] = []
    model.train(False)
    with torch.inference_mode():
        for start in range(0, len(pairs), batch_size):
            stop = min(start + batch_size, len(pairs))
            batch = processor(
                images=list(pairs.images[start:stop]),
                text=list(pairs.texts[start:stop]),
                padding=True,
                truncation=True,
                return_tensors="pt",
            )
            images.append(
                _features(model.get_image_features(pixel_values=batch["pixel_values"])).numpy()
            )
            texts.append(
                _features(
                    model.get_text_features(
                        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                    )
                ).numpy()
            )
    return np.concatenate(images).astype(np.float32), np.concatenate(texts).astype(np.float32)


def gap_and_alignment(image: np.ndarray, text: np.ndarray) -> dict[str, float]:
    """``centroid_gap`` (norm of the difference of the modality means) and ``alignment`` (mean cosine
    of matched pairs), from the project's metric engine."""
    from pytest_modgap.metrics.engine import measure_embeddings

    report = measure_embeddings(image, text, ci=None)
    return {"centroid_gap": report["centroid_gap"], "alignment": report["alignment"]}


def _learning_rate(step: int, steps: int) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to zero."""
    warmup = max(1, int(WARMUP_FRACTION * steps))
    if step < warmup:
        return LEARNING_RATE * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * progress))


def _save(
    model: CLIPModel,
    processor: CLIPProcessor,
    vocabulary: BPEVocabulary,
    result: TrainingResult,
    out: Path,
) -> None:
    """Save ``model`` (``model.safetensors``, fp32), its processor and ``training.json`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    # Older transformers read preprocessor_config.json and vocab.json / merges.txt, not the
    # combined processor_config.json / tokenizer.json that transformers 5 writes.
    processor.image_processor.save_pretrained(out)
    vocabulary.write(out)
    (out / "training.json").write_text(json.dumps(asdict(result), indent=2) + "\n")


def train(
    out: Path,
    *,
    regressed_out: Path | None = None,
    steps: int = DEFAULT_STEPS,
    regressed_step: int = DEFAULT_REGRESSED_STEP,
    seed: int = 0,
    train_pairs: int = TRAIN_PAIRS,
    log_every: int = 50,
) -> list[TrainingResult]:
    """Train for ``steps`` steps and save the final model in ``out``; with ``regressed_out``, also
    save the checkpoint after ``regressed_step`` steps there. Returns the result of each saved model.
    """
    if steps < 1:
        raise ModgapError(f"--steps {steps}: train for at least one step.")
    if train_pairs < BATCH_SIZE:
        raise ModgapError(
            f"--train-pairs {train_pairs}: a training batch holds {BATCH_SIZE} pairs; generate at "
            f"least that many."
        )
    if regressed_out is not None and not 1 <= regressed_step < steps:
        raise ModgapError(
            f"--regressed-step {regressed_step} must lie between 1 and --steps - 1 ({steps - 1}): "
            f"the regressed model is an early checkpoint of the run."
        )
    if seed == SHAPES_EVAL_SEED:
        raise ModgapError(
            f"--seed {seed} is the seed of the built-in evaluation set; training on it would "
            f"leak the evaluation pairs into training. Pick another seed."
        )
    import torch

    started = time.perf_counter()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)

    pairs = generate_shapes(train_pairs, seed=seed)
    vocabulary = train_bpe([*pairs.texts, *(pairs.texts2 or [])])
    processor = build_processor(vocabulary)
    model = build_model(vocabulary)

    # Preprocess once: the image processor costs as much as a training step per batch.
    pixels = processor.image_processor(images=list(pairs.images), return_tensors="pt")[
        "pixel_values"
    ]
    captions = [
        processor.tokenizer(
            list(column),
            padding="max_length",
            max_length=MAX_TEXT_LENGTH,
            truncation=True,
            return_tensors="pt",
        )
        for column in (pairs.texts, pairs.texts2 or pairs.texts)
    ]
    input_ids = torch.stack([c["input_ids"] for c in captions])
    attention = torch.stack([c["attention_mask"] for c in captions])

    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.05)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(train_pairs, generator=generator)
    cursor = 0
    loss_value = float("nan")
    snapshots: list[tuple[str, Path, CLIPModel, int, float, float]] = []
    model.train()
    for step in range(steps):
        if cursor + BATCH_SIZE > train_pairs:
            order = torch.randperm(train_pairs, generator=generator)
            cursor = 0
        index = order[cursor : cursor + BATCH_SIZE]
        cursor += BATCH_SIZE
        # Either caption of each pair, so both templates land near the image.
        which = torch.randint(0, 2, (BATCH_SIZE,), generator=generator)
        ids = input_ids[which, index]
        mask = attention[which, index]
        # Padding beyond the longest caption in the batch changes nothing but costs time.
        length = int(mask.sum(dim=1).max())
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, steps)
        loss = model(
            input_ids=ids[:, :length],
            attention_mask=mask[:, :length],
            pixel_values=pixels[index],
            return_loss=True,
        ).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            # CLIP clamps the learnt logit scale at 100 (tau >= 0.01) for stability.
            model.logit_scale.clamp_(0, math.log(100))
        loss_value = float(loss.detach())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}  loss {loss_value:.3f}", flush=True)
        if regressed_out is not None and step + 1 == regressed_step:
            elapsed = time.perf_counter() - started
            snapshot = copy.deepcopy(model)
            snapshots.append(("regressed", regressed_out, snapshot, step + 1, elapsed, loss_value))
    snapshots.append(("reference", out, model, steps, time.perf_counter() - started, loss_value))

    evaluation = load_shapes()
    results: list[TrainingResult] = []
    for variant, directory, trained, step_count, seconds, final_loss in snapshots:
        metrics = gap_and_alignment(*embed_pairs(trained, processor, evaluation))
        result = TrainingResult(
            variant=variant,
            step=step_count,
            of_steps=steps,
            seed=seed,
            seconds=round(seconds, 1),
            loss=round(final_loss, 4),
            tau=round(float(1 / trained.logit_scale.detach().exp()), 4),
            parameters=sum(p.numel() for p in trained.parameters()),
            centroid_gap=round(metrics["centroid_gap"], 4),
            alignment=round(metrics["alignment"], 4),
        )
        _save(trained, processor, vocabulary, result, directory)
        results.append(result)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point: train, save, and print the final report."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_modgap.reference.train",
        description="Train the tiny reference CLIP models on the built-in shapes data set.",
    )
    parser.add_argument("--out", type=Path, required=True, help="where the final model goes")
    parser.add_argument(
        "--regressed-out", type=Path, help="where the early (regressed) checkpoint goes"
    )
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--regressed-step", type=int, default=DEFAULT_REGRESSED_STEP)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--train-pairs", type=int, default=TRAIN_PAIRS, help="size of the generated training split"
    )
    args = parser.parse_args(argv)
    try:
        results = train(
            args.out,
            regressed_out=args.regressed_out,
            steps=args.steps,
            regressed_step=args.regressed_step,
            seed=args.seed,
            train_pairs=args.train_pairs,
        )
    except ModgapError as exc:
        parser.error(str(exc))
    for result in results:
        print(
            f"{result.variant}: step {result.step}/{result.of_steps} after {result.seconds:.0f} s, "
            f"{result.parameters:,} parameters, tau {result.tau:.3f}; on load_shapes(): "
            f"centroid_gap {result.centroid_gap:.3f}, alignment {result.alignment:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
