"""Serve the built site (site/) on 127.0.0.1 and take screenshots with headless Chromium.

``mkdocs build && python scripts/docs_screenshots.py [OUT]`` writes home.png and reference.png (the
metrics reference) to OUT (default: site-screenshots/), so the pages can be checked by eye.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = {"home.png": "", "reference.png": "reference/metrics/"}


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no Chromium found: apt-get install -y chromium")


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else ROOT / "site-screenshots").resolve()
    site = ROOT / "site"
    if not (site / "index.html").exists():
        raise SystemExit("site/ is not built: run `mkdocs build` first")
    out.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name, path in PAGES.items():
            url = f"http://127.0.0.1:{server.server_port}/{path}"
            subprocess.run(
                [
                    _browser(),
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    "--window-size=1280,1000",
                    f"--screenshot={out / name}",
                    url,
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            print(f"{url} -> {out / name}")
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
