"""The longest caption worth handing to a text encoder: a bound in characters that no tokenizer's
maximum length can reach first, so a 20 MB caption is cut before it is tokenized whole.
"""

from __future__ import annotations

import unicodedata
from functools import cache

CAPTION_CHARS = 1 << 20
"""Characters of a caption that reach the encoder, counting only those no tokenizer can drop.

Tokenizers tokenize the whole text and truncate afterwards: one 20 MB caption cost minutes and
gigabytes for 77 tokens. The longest text window of the supported families is jina-embeddings-v4's
32,768 tokens; for the cut to reach into it, the tokens of the first 2^20 counted characters would
have to average over 32 characters each (real text averages 3 to 5). Whitespace, control and
format characters and combining marks are not counted: normalisers collapse or drop them, so a
caption of "a", three million spaces and "dog" keeps its "dog"."""

_STEP = 1 << 16
"""Characters examined at a time once few counted ones are missing (a long run of spaces)."""
_UNCOUNTED_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"})
_PLANES_WITH_UNCOUNTED = (range(0x10000), range(0xE0000, 0xE1000))
"""Where such characters live: the Basic Multilingual Plane, and the tag and variation selector
block of plane 14 (the supplementary planes' few others are marks of historic scripts, counted)."""


@cache
def _uncounted() -> dict[int, None]:
    """A ``str.translate`` table deleting every uncounted character (built once, ~70k lookups)."""
    return {
        code: None
        for plane in _PLANES_WITH_UNCOUNTED
        for code in plane
        if unicodedata.category(chr(code)) in _UNCOUNTED_CATEGORIES or chr(code).isspace()
    }


def bounded_caption(text: str) -> str:
    """``text`` up to and including its ``CAPTION_CHARS``-th counted character; the whole of it
    when it has fewer. No copy for the usual short caption; for a long one, time linear in the
    cut plus a bisection of the last chunk."""
    if len(text) <= CAPTION_CHARS:
        return text
    table = _uncounted()
    missing, end = CAPTION_CHARS, 0
    while end < len(text):
        chunk = text[end : end + max(missing, _STEP)]
        found = len(chunk.translate(table))
        if found < missing:
            missing -= found
            end += len(chunk)
            continue
        # The bound falls in this chunk: bisect for its shortest prefix that holds ``missing``
        # counted characters, counting each half once (``below``: those in chunk[:low]).
        low, high, below = 0, len(chunk), 0
        while high - low > 1:
            middle = (low + high) // 2
            inside = len(chunk[low:middle].translate(table))
            if below + inside >= missing:
                high = middle
            else:
                low, below = middle, below + inside
        return text[: end + high]
    return text
