"""Run the commands whose output the README and the site show, and refresh what they show.

Each shown output is a fenced block right after a ``<!-- output: NAME -->`` comment. A block is an
excerpt of what the command printed: its lines appear in the output in that order, and a ``...``
line stands for lines left out. ``python scripts/docs_outputs.py`` runs every command (the quick
start's three pytest runs and the main job take a few minutes on 2 cores), records the outputs
under docs/outputs/ and rewrites each shown line from the fresh output;
tests/docs/test_shown_outputs.py compares the shown blocks with live runs of the cheap commands and
with the recorded outputs of the slow ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDED = ROOT / "docs" / "outputs"
IMAGES = ROOT / "docs" / "images"
REFRESH = "python scripts/docs_outputs.py"


def pages() -> list[Path]:
    """The README and every site page: any of them may show an output."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


_MARK = re.compile(r"<!-- output: ([\w.-]+) -->\n+```[\w-]*\n(.*?)\n```", re.S)
_NUMBER = r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?!\w)"
_TIMING = r"\d+(?:\.\d+)? ?s\b(?: \(\d+:\d\d:\d\d\))?"
_TOKEN = re.compile(rf"(\.\.\.)|({_TIMING})|({_NUMBER})")


# --- finding and comparing shown blocks ---------------------------------------------------------


def shown_blocks(text: str) -> Iterator[tuple[str, str, int, int]]:
    """(name, block, start, end) of each shown output in a page's text (start, end: the block's
    own characters)."""
    for match in _MARK.finditer(text):
        yield match.group(1), match.group(2), match.start(2), match.end(2)


def _pattern(shown: str) -> tuple[re.Pattern[str], list[str]]:
    """A shown line as a pattern: ``...`` stands for any text, a timing for any timing, each
    number is captured; and the shown numbers, in order."""
    parts, numbers, last = [], [], 0
    for match in _TOKEN.finditer(shown):
        parts.append(re.escape(shown[last : match.start()]))
        if match.group(1):
            parts.append(".*?")
        elif match.group(2):
            parts.append(_TIMING)
        else:
            parts.append(f"({_NUMBER})")
            numbers.append(match.group(3))
        last = match.end()
    parts.append(re.escape(shown[last:].rstrip()))
    return re.compile("".join(parts) + r"\s*"), numbers


def _close(want: str, got: str) -> bool:
    """Equal to the precision ``want`` is printed with: one unit of its last digit (integers,
    counts and ranks, exactly)."""
    if "." not in want and "e" not in want.lower():
        return int(want) == int(got)
    mantissa, _, exponent = want.lower().partition("e")
    digits = len(mantissa.split(".")[1]) if "." in mantissa else 0
    unit = 10.0 ** (int(exponent or 0) - digits)
    return abs(float(want) - float(got)) <= unit * 1.000001


def _match(shown: str, actual: str, *, exact_numbers: bool = False) -> re.Match[str] | None:
    pattern, numbers = _pattern(shown)
    found = pattern.fullmatch(actual)
    if found is None or exact_numbers:
        return found
    if all(_close(want, got) for want, got in zip(numbers, found.groups(), strict=True)):
        return found
    return None


def excerpt_problems(shown: str, actual: str) -> list[str]:
    """Why ``shown`` is not an excerpt of ``actual``: each shown line (but ``...``) must match an
    output line after the previous match (``...`` within a line stands for any text), numbers to
    their printed precision, timings not compared."""
    lines = actual.splitlines()
    position = 0
    problems = []
    for line in shown.splitlines():
        if line.strip() == "...":
            continue
        for index in range(position, len(lines)):
            if _match(line, lines[index]):
                position = index + 1
                break
        else:
            problems.append(f"shown but not printed (in this order): {line!r}")
    return problems


def _with_numbers(shown: str, numbers: tuple[str, ...]) -> str:
    """``shown`` with its numbers (not its timings or elisions) replaced by ``numbers``."""
    values = iter(numbers)
    return _TOKEN.sub(lambda m: next(values) if m.group(3) else m.group(0), shown)


def refreshed(shown: str, actual: str) -> str:
    """``shown`` with the numbers of each line taken from the output line of the same shape, in
    order: the excerpt and its elisions kept, its numbers brought up to date."""
    lines = actual.splitlines()
    position = 0
    out = []
    for line in shown.splitlines():
        new = line
        if line.strip() != "...":
            for index in range(position, len(lines)):
                found = _match(line, lines[index], exact_numbers=True)
                if found is not None:
                    new = _with_numbers(line, found.groups())
                    position = index + 1
                    break
        out.append(new)
    return "\n".join(out)


# --- the commands -------------------------------------------------------------------------------


def _run(command: list[str] | str, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        command,
        cwd=cwd,
        shell=isinstance(command, str),
        executable="/bin/bash" if isinstance(command, str) else None,
        env={**os.environ, "COLUMNS": "100", **(env or {})},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    return done.stdout + done.stderr


def modgap_baselines() -> str:
    """``modgap baselines``: the shipped baselines (cheap: no model, no torch)."""
    output = _run([sys.executable, "-m", "pytest_modgap.cli", "baselines"], ROOT)
    return output.replace(str(ROOT), "...")


def modgap_measure_vectors() -> str:
    """``modgap measure`` on precomputed vectors written with a fixed seed (cheap: no model)."""
    import numpy as np

    with tempfile.TemporaryDirectory() as folder:
        rng = np.random.default_rng(0)
        image = rng.normal(size=(200, 32))
        text = image + 1.5 * rng.normal(size=(200, 32)) + 2.0
        np.savez(Path(folder) / "vectors.npz", image=image, text=text)
        command = [sys.executable, "-m", "pytest_modgap.cli", "measure"]
        command += ["--model=embeddings:vectors.npz", "--n-boot=200"]
        return _run(command, Path(folder), {"MODGAP_CACHE_DIR": str(Path(folder) / "cache")})


LIVE: dict[str, Callable[[], str]] = {
    "modgap-baselines": modgap_baselines,
    "measure-vectors": modgap_measure_vectors,
}
"""Outputs cheap enough to produce again in the test suite."""

RECORDED_NAMES = ("main-job", "quickstart-record", "quickstart-pass", "quickstart-regressed")
"""Outputs that need model runs: produced by this script, recorded under docs/outputs/."""


def _quickstart_script() -> str:
    """The quick start's commands as the README shows them (after the install line)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- commands: quickstart -->\n+```\n(.*?)\n```", text, re.S)
    if match is None:
        raise SystemExit("README.md has no <!-- commands: quickstart --> block")
    return "\n".join(
        line for line in match.group(1).splitlines() if not line.startswith("pip install")
    )


def record_model_runs() -> None:
    """Run the main job and the quick start for real (fresh cache), and record what they print."""
    RECORDED.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        env = {"MODGAP_CACHE_DIR": str(work / "cache")}
        main_job = _run([sys.executable, "-m", "pytest_modgap.cli", "measure"], work, env)
        _record("main-job", main_job, work)

        runs = []
        for line in _quickstart_script().splitlines():
            if line.startswith("pytest "):
                runs.append(line.split("#")[0].strip())
                line = f'echo "@@@ {len(runs)}"; {runs[-1]}; echo "@@@ end"'
            runs_line = line
            with (work / "quickstart.sh").open("a", encoding="utf-8") as script:
                script.write(runs_line + "\n")
        # Not shown: one run of both models for the report formats and the pictures of the site.
        # The models through a link, so that the figures' panel titles read models/reference.
        extra = (
            "ln -s $MODELS models && pytest -p no:cacheprovider --modgap-model=models/reference "
            "--modgap-model=models/regressed --modgap-json=results.json "
            "--modgap-report-dir=report > /dev/null 2>&1\n"
        )
        with (work / "quickstart.sh").open("a", encoding="utf-8") as script:
            script.write(extra)
        transcript = _run("bash quickstart.sh", work, env)
        parts = re.findall(r"@@@ (\d+)\n(.*?)@@@ end", transcript, re.S)
        if len(parts) != 3:
            raise SystemExit(f"the quick start did not run its three steps:\n{transcript}")
        models = _run(
            [
                sys.executable,
                "-c",
                "import pytest_modgap.reference as r; print(r.reference_model_dir().parent)",
            ],
            work,
        ).strip()
        for name, (_, output) in zip(RECORDED_NAMES[1:], parts, strict=True):
            _record(name, output.replace(models, "..."), work)
        results = json.loads((work / "gate" / "results.json").read_text(encoding="utf-8"))
        sys.path.insert(0, str(ROOT / "scripts"))
        from docs_reference import _key_tree

        (RECORDED / "results-keys.json").write_text(
            json.dumps(_key_tree(results), indent=1) + "\n", encoding="utf-8"
        )
        IMAGES.mkdir(parents=True, exist_ok=True)
        for figure in ("figure2", "figure3"):
            found = sorted((work / "gate" / "report").rglob(f"*{figure}*.png"))
            if found:
                shutil.copyfile(found[0], IMAGES / f"shapes-{figure}.png")


def _record(name: str, output: str, work: Path) -> None:
    text = output.replace(str(work), "...").replace(str(ROOT), "...").rstrip() + "\n"
    (RECORDED / f"{name}.txt").write_text(text, encoding="utf-8")
    print(f"recorded docs/outputs/{name}.txt")


def actual_output(name: str) -> str:
    """What the command behind ``name`` prints: run now when cheap, else the recorded run."""
    if name in LIVE:
        return LIVE[name]()
    path = RECORDED / f"{name}.txt"
    if not path.exists():
        raise KeyError(f"no command or recorded output named {name!r}")
    return path.read_text(encoding="utf-8")


def refresh_pages() -> int:
    outputs: dict[str, str] = {}
    status = 0
    for path in pages():
        page = path.relative_to(ROOT)
        text = path.read_text(encoding="utf-8")
        pieces, last = [], 0
        for name, block, start, end in shown_blocks(text):
            if name not in outputs:
                outputs[name] = actual_output(name)
            new = refreshed(block, outputs[name])
            for problem in excerpt_problems(new, outputs[name]):
                print(f"{page}, output {name}: {problem}")
                status = 1
            pieces += [text[last:start], new]
            last = end
        pieces.append(text[last:])
        path.write_text("".join(pieces), encoding="utf-8")
    return status


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--pages-only" not in args:
        record_model_runs()
    return refresh_pages()


if __name__ == "__main__":
    sys.exit(main())
