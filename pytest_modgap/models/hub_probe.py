"""One quick question to the Hugging Face hub before a download: does this file exist there?

Without a network it fails in about a second instead of after huggingface_hub's retries.
"""

from __future__ import annotations

import os

PROBE_TIMEOUT_S = 3.0
"""How long the question may take (unless HF_HUB_ETAG_TIMEOUT says otherwise)."""


def probe_hub(repo_id: str, revision: str | None, filename: str) -> None:
    """Ask the hub once, without retries and with a short timeout, for ``filename``'s metadata;
    raise whatever huggingface_hub raises when the hub cannot answer or has no such file.

    ``hf_hub_download`` retries a first request that fails with no local copy to fall back on,
    with backoff (about 25 s in all with huggingface_hub 1.x and 2.x) before it gives up; without
    a network that turns a one-line error into a long wait. One HEAD request says the same at once.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    timeout = float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or PROBE_TIMEOUT_S)
    get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), timeout=timeout)
