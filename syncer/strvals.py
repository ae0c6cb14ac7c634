"""``--set``, ``--set-string`` and ``--set-file`` read exactly as Helm reads them.

Why not YAML per value: users bring command lines from Helm and vCluster, and
Helm's grammar differs from YAML's in ways that change results:
``a=1,b=2`` is two assignments; ``a={x,y}`` is a list; ``a[0].b=c`` indexes a
list; ``\\`` escapes the next character (``node\\.io/os``, ``a\\,b``); only
``true``/``false``/``null`` (any case) and base-10 integers without a leading
zero are typed, so ``0.5`` and ``1e3`` stay strings (Helm's ``--set-json``
would be the way to a float); ``null`` keeps the key with no value, which
Helm's merge then treats as "remove it, default included".

Grammar, as Helm's ``strvals`` parser implements it::

    input  := assign ("," assign)*
    assign := path "=" (list | value)
    path   := name ("." name | "[" index "]")*      at most 30 names deep
    list   := "{" value ("," value)* "}"
    value  := any runes up to an unescaped ","       (typed, or kept as text)

Invariant: :func:`apply` never changes its input; it returns a new tree.
"""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

MAX_INDEX = 65536
"""Helm's largest list index (a guard against ``a[99999999]=x`` allocating)."""
MAX_NESTING = 30
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INT64 = (-(2**63), 2**63 - 1)

Reader = Callable[[str], Any]
"""Turns a value's text into what is stored (typed, kept as a string, a file's content)."""


class StrvalsError(ValueError):
    """An assignment Helm would refuse; the message says why."""


def typed(text: str) -> Any:
    """``--set``: ``true``/``false``/``null`` in any case, base-10 int64s not starting with
    ``0`` (but ``0`` itself), everything else as text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if text == "0":
        return 0
    if text and text[0] != "0" and _INTEGER.fullmatch(text):
        number = int(text)
        if _INT64[0] <= number <= _INT64[1]:
            return number
    return text


def as_string(text: str) -> str:
    """``--set-string``: the text as it is."""
    return text


def file_content(path: str) -> str:
    """``--set-file``: the content of the file the value names."""
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise StrvalsError(f"cannot read {path}: {exc}") from exc


def apply(data: Mapping[str, Any] | None, text: str, reader: Reader = typed) -> dict[str, Any]:
    """``data`` with every assignment of one ``--set`` argument applied."""
    result = copy.deepcopy(dict(data or {}))
    scanner = _Scanner(text, reader)
    with contextlib.suppress(_End):
        while not scanner.done():
            scanner.assignment(result, 0)
    return result


class _End(Exception):
    """The argument ended where Helm's parser stops quietly (after ``[i]`` or ``.``): what
    was assigned so far stands, the rest of the path is dropped."""


class _Scanner:
    """One pass over the argument; each method consumes what it parses."""

    def __init__(self, text: str, reader: Reader) -> None:
        self._text = text
        self._at = 0
        self._read = reader

    def done(self) -> bool:
        return self._at >= len(self._text)

    def _until(self, stops: str) -> tuple[str, str]:
        """Runes up to the first unescaped stop; (text, the stop or "" at the end)."""
        out: list[str] = []
        while self._at < len(self._text):
            char = self._text[self._at]
            self._at += 1
            if char in stops:
                return "".join(out), char
            if char == "\\" and self._at < len(self._text):
                char = self._text[self._at]
                self._at += 1
            out.append(char)
        return "".join(out), ""

    def assignment(self, data: dict[str, Any], depth: int) -> None:
        if depth > MAX_NESTING:
            raise StrvalsError(f"value name nested level is greater than maximum supported "
                               f"nested level of {MAX_NESTING}")
        name, stop = self._until("=[,.")
        if stop == "" and not name:
            raise _End
        if stop == "":
            raise StrvalsError(f"key {name!r} has no value")
        if stop == ",":
            raise StrvalsError(f"key {name!r} has no value (cannot end with ,)")
        if stop == "=":
            _put(data, name, self._value())
        elif stop == ".":
            inner = data.get(name)
            inner = dict(inner) if isinstance(inner, dict) else {}
            try:
                self.assignment(inner, depth + 1)
            finally:
                if inner:
                    _put(data, name, inner)
            if not inner:
                raise StrvalsError(f"key map {name!r} has no value")
        else:
            current = data.get(name)
            items = list(current) if isinstance(current, list) else []
            index = self._index()
            try:
                self._item(items, index, depth)
            finally:
                _put(data, name, items)

    def _index(self) -> int:
        text, stop = self._until("]")
        if stop != "]" or not re.fullmatch(r"-?[0-9]+", text):
            raise StrvalsError(f"error parsing index {text!r}")
        index = int(text)
        if index < 0:
            raise StrvalsError(f"negative {index} index not allowed")
        if index > MAX_INDEX:
            raise StrvalsError(f"index of {index} is greater than maximum supported index "
                               f"of {MAX_INDEX}")
        return index

    def _item(self, items: list[Any], index: int, depth: int) -> None:
        """What follows ``[index]`` (``=value``, ``.name...`` or another ``[index]``),
        set into ``items`` in place."""
        rest, stop = self._until("[.=")
        if rest:
            raise StrvalsError(f"unexpected data at end of array index: {rest!r}")
        if stop == "":
            raise _End
        current = items[index] if index < len(items) else None
        if stop == "=":
            value: Any = self._value()
        elif stop == ".":
            value = dict(current) if isinstance(current, dict) else {}
            self.assignment(value, depth + 1)
        else:
            value = list(current) if isinstance(current, list) else []
            self._item(value, self._index(), depth)
        _set_index(items, index, value)

    def _value(self) -> Any:
        """A list, or one value (nothing at all after ``=`` is ``""``, never read)."""
        if self.done():
            return ""
        if self._text.startswith("{", self._at):
            self._at += 1
            return self._list()
        text, _ = self._until(",")
        return self._read(text)

    def _list(self) -> list[Any]:
        values: list[Any] = []
        while True:
            text, stop = self._until(",}")
            if stop == "":
                raise StrvalsError("list must terminate with '}'")
            values.append(self._read(text))
            if stop == "}":
                if self._text.startswith(",", self._at):
                    self._at += 1
                return values


def _set_index(items: list[Any], index: int, value: Any) -> None:
    items.extend([None] * (index + 1 - len(items)))
    items[index] = value


def _put(data: dict[str, Any], name: str, value: Any) -> None:
    if name:
        data[name] = value
