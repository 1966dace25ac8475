"""Serve the built site (site/) on 127.0.0.1 and take screenshots with headless Chromium.

``mkdocs build && python scripts/docs_screenshots.py [OUT]`` writes home.png and reference.png (the
metrics reference) to OUT (default: site-screenshots/), so the pages can be checked by eye. Chromium
may resolve no host but 127.0.0.1, and its network log is searched for any request of the page that
left it: the site must work offline (the exit status is 1 if one did).
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = "http://127.0.0.1"
PAGES = {"home.png": "", "reference.png": "reference/metrics/"}


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no Chromium found: apt-get install -y chromium")


def _requests(netlog: Path) -> tuple[list[str], list[str], list[str]]:
    """The URLs the page requested (its network isolation key is the local site), those among them
    that left 127.0.0.1, and the hosts of Chromium's own background requests."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    page, outside, browser = [], [], set()
    for event in log["events"]:
        params = event.get("params", {})
        if event["type"] != start or "url" not in params:
            continue
        url = params["url"]
        if params.get("network_isolation_key", "").startswith(LOCAL):
            page.append(url)
            if not url.startswith(LOCAL):
                outside.append(url)
        else:
            browser.add(url.split("/")[2])
    return page, outside, sorted(browser)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else ROOT / "site-screenshots").resolve()
    site = ROOT / "site"
    if not (site / "index.html").exists():
        raise SystemExit("site/ is not built: run `mkdocs build` first")
    out.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    status = 0
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
                    # Chromium's own services (updates, sync, autofill) would show up as requests.
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--disable-features=AutofillServerCommunication,OptimizationHints,MediaRouter",
                    "--window-size=1280,1000",
                    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                    f"--log-net-log={out / (name + '.netlog.json')}",
                    f"--screenshot={out / name}",
                    url,
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
            print(f"{url} -> {out / name}")
            page, outside, browser = _requests(out / (name + ".netlog.json"))
            print(f"  the page's requests: {len(page)}, outside 127.0.0.1: {outside or 'none'}")
            print(f"  Chromium's own (not the page's, blocked by the resolver rule): {browser}")
            if outside:
                status = 1
    finally:
        server.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
