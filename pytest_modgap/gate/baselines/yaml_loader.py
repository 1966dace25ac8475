"""Reading a baseline file's YAML: UTF-8, ``yaml.SafeLoader`` plus the limits a hostile file needs
(no anchors or aliases, no deep nesting, no duplicate keys), every problem with its line."""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from pytest_modgap.errors import BaselineError
from pytest_modgap.gate.baselines.quoting import _clip, short
from pytest_modgap.gate.baselines.schema import _FIX, MAX_DEPTH


def _read_text(path: Path) -> str:
    """The text of baseline file ``path``; a BaselineError naming it when it cannot be read or is
    not UTF-8 (the encoding ``write`` uses)."""
    __tracebackhide__ = True
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BaselineError(
            f"Baseline file {path} cannot be read ({error.strerror or error}). Make it readable, "
            f"or delete it and record it again with --modgap-update."
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise BaselineError(
            f"Baseline file {path} is not UTF-8 text: byte {data[error.start]:#04x} at line {line} "
            f"cannot be decoded. Save the file as UTF-8 (the encoding --modgap-update writes), or "
            f"delete it and record it again with --modgap-update."
        ) from None


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that a baseline may not use: an anchor or alias, deep nesting, a duplicate key."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _BaselineLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` plus the limits of a baseline file; use as
    ``yaml.load(text, Loader=_BaselineLoader)``.

    SafeLoader's tags and constructors are kept unchanged (so this is still "safe_load only"); the
    composer refuses anchors, aliases and nesting beyond MAX_DEPTH before it recurses, the
    constructor refuses duplicate keys, and a scalar its constructor cannot convert (a date
    2025-13-45, ``!!int x``) is a YAML error with a line rather than a bare ValueError.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped stub
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _Refused(
                "anchors and aliases (&name, *name) are not allowed in a baseline file; write "
                "every value out",
                event.start_mark,
            )
        nests = isinstance(event, yaml.CollectionStartEvent)
        if nests and self._depth >= MAX_DEPTH:
            raise _Refused(
                f"mappings and lists nest deeper than {MAX_DEPTH} levels (a baseline needs 5)",
                event.start_mark,
            )
        self._depth += nests
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= nests

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, OverflowError, LookupError) as error:
            tag = str(node.tag).rsplit(":", 1)[-1]
            what = short(node.value) if isinstance(node, yaml.ScalarNode) else "this value"
            raise yaml.constructor.ConstructorError(
                problem=f"cannot read {what} as {short(tag)} ({short(str(error))})",
                problem_mark=node.start_mark,
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        if not isinstance(node, yaml.MappingNode):  # e.g. "!!set x": SafeLoader's error
            return super().construct_mapping(node, deep=deep)
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else []
            if not isinstance(key, Hashable):
                continue  # SafeLoader refuses unhashable keys itself, with their line
            if key in first_line:
                raise _Refused(
                    f"duplicate key {short(key)} (first at line {first_line[key] + 1}); YAML "
                    f"would keep only the last value, so remove one",
                    key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """The YAML data of baseline file ``path``, read as ``parse`` reads it (UTF-8, the baseline
    loader) but not validated; a BaselineError naming the file when it cannot be read."""
    __tracebackhide__ = True
    return _load_yaml(_read_text(path), path)


def _load_yaml(text: str, path: Path) -> Any:
    """``text`` loaded with the baseline loader; a BaselineError with the line of any problem."""
    __tracebackhide__ = True
    try:
        return yaml.load(text, Loader=_BaselineLoader)  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        verdict = "is refused" if isinstance(exc, _Refused) else "is not valid YAML"
        raise BaselineError(
            f"Baseline file {path} {verdict}{where}: {_clip(problem)}. {_FIX}"
        ) from None
