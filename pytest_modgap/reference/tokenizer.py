"""A small CLIP-format byte-level BPE for the reference models, trained on the shapes captions.

CLIP's real vocabulary has 49,408 tokens; this one has ~650, so the text embedding table stays tiny.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import CLIPTokenizer

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"

# CLIP's own pre-tokenisation regex (as in transformers' CLIPTokenizer): words, single digits, and
# runs of punctuation; whitespace separates and is dropped.
_CLIP_SPLIT = (
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)


def byte_alphabet() -> list[str]:
    """GPT-2 / CLIP's printable stand-in character for each byte 0..255, in CLIP's vocabulary order.

    Printable Latin-1 bytes map to themselves; the others to code points from 256 up, so every byte
    string has a printable spelling and no text is ever out of vocabulary.
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


@dataclass(frozen=True)
class BPEVocabulary:
    """A CLIP-format BPE: ``vocab`` (token -> id) and ``merges`` in rank order."""

    vocab: dict[str, int]
    merges: list[tuple[str, str]]

    def tokenizer(self, model_max_length: int) -> CLIPTokenizer:
        """A transformers ``CLIPTokenizer`` over this vocabulary that truncates to the model's
        ``model_max_length`` positions."""
        from transformers import CLIPTokenizer

        return CLIPTokenizer(
            vocab=dict(self.vocab),
            # Annotated as "a b" strings, but the tokenizers backend only accepts (a, b) pairs.
            merges=list(self.merges),  # type: ignore[arg-type]
            model_max_length=model_max_length,
        )

    def write(self, directory: Path) -> None:
        """Write ``vocab.json`` and ``merges.txt`` (with its ``#version`` header), CLIP's original
        file pair, so that tokenizers built from files (older transformers) load it too."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "vocab.json").write_text(
            json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8"
        )
        lines = ["#version: 0.2"] + [f"{left} {right}" for left, right in self.merges]
        (directory / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def train_bpe(corpus: Iterable[str]) -> BPEVocabulary:
    """Learn BPE merges on ``corpus`` with the ``tokenizers`` library, in CLIP's format.

    The vocabulary is laid out as CLIP's is: the 256 byte characters, the same with ``</w>`` (end of
    word), the merged tokens in merge order, then ``<|startoftext|>`` and ``<|endoftext|>`` (the
    highest id, which CLIP's text tower pools at). Merges continue until every corpus word is one
    token, so the closed shapes vocabulary tokenises one token per word, and any other text falls
    back to bytes.
    """
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    bpe = Tokenizer(BPE(continuing_subword_prefix="", end_of_word_suffix=END_OF_WORD))
    # The same normalisation and pre-tokenisation as transformers' CLIPTokenizer, so the merges are
    # learnt on exactly the pieces that tokenizer will later feed to them.
    bpe.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = BpeTrainer(
        vocab_size=100_000,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        continuing_subword_prefix="",
        end_of_word_suffix=END_OF_WORD,
    )
    bpe.train_from_iterator(corpus, trainer)
    merges = [(str(a), str(b)) for a, b in json.loads(bpe.to_str())["model"]["merges"]]

    alphabet = byte_alphabet()
    tokens = (
        alphabet
        + [c + END_OF_WORD for c in alphabet]
        + [a + b for a, b in merges]
        + [BOS_TOKEN, EOS_TOKEN]
    )
    # Two merges can spell the same token ("ab"+"c", "a"+"bc"); it gets one id, at its first place.
    unique = list(dict.fromkeys(tokens))
    return BPEVocabulary(vocab={token: i for i, token in enumerate(unique)}, merges=merges)
