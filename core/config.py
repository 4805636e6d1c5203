"""Strict reading of TOML configuration: unknown keys and bad values are named errors.

`Section` wraps one table and remembers its key path, so that every error says
which file, which key and why. Scenario files (sim/) reuse it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file is unreadable or invalid; names file, line, key path and reason."""

    def __init__(self, file: str, path: str, reason: str, line: int | None = None) -> None:
        self.file, self.path, self.reason = file, path, reason
        self.line = line if line is not None else (_line_of(file, path) if path else None)
        where = f"{file}:{self.line}" if self.line else file
        where = f"{where}: {path}" if path else where
        super().__init__(f"{where}: {reason}")


_INDEXED = re.compile(r"^(.*)\[(\d+)\]$")


def _line_of(file: str, path: str) -> int | None:
    """Best-effort line number of key `path` (e.g. program.tiers[1].name) in `file`."""
    try:
        lines = Path(file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    parts = path.split(".")
    key = parts[-1]
    table = ".".join(parts[:-1])
    m = _INDEXED.match(table)
    header, nth = (m.group(1), int(m.group(2))) if m else (table, 0)
    start, seen = 0, -1
    if header:
        for i, text in enumerate(lines):
            t = text.strip()
            if t in (f"[{header}]", f"[[{header}]]"):
                seen += 1
                if seen == nth:
                    start = i + 1
                    break
        else:
            return None
    key_re = re.compile(r'^\s*"?' + re.escape(_INDEXED.sub(r"\1", key)) + r'"?\s*=')
    for i in range(start, len(lines)):
        if i > start and lines[i].lstrip().startswith("["):
            break
        if key_re.match(lines[i]):
            return i + 1
    return start if start else None


def load_toml(path: str | Path) -> Section:
    """Parse the TOML file at `path` into a root `Section`; raises ConfigError."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(p), "", "file not found") from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(p), "", f"not UTF-8 text ({e.reason})") from None
    except tomllib.TOMLDecodeError as e:
        # tomllib's message carries "(at line N, column M)".
        raise ConfigError(str(p), "", f"TOML syntax error: {e}") from None
    return Section(data, str(p), "")


class Section:
    """One TOML table being read; every key must be consumed or `done()` complains."""

    def __init__(self, data: dict[str, Any], file: str, path: str) -> None:
        self.data, self.file, self.path = data, file, path
        self._seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, reason: str) -> ConfigError:
        """Return a ConfigError for `key` of this table."""
        return ConfigError(self.file, self._key(key) if key else self.path, reason)

    def has(self, key: str) -> bool:
        """True when the table holds `key`."""
        return key in self.data

    def get(self, key: str, kind: type[T], default: T | None = None,
            check: Callable[[T], str | None] | None = None) -> T:
        """Read `key` as `kind` (or `default` when absent; required when default is None).

        `check` returns a reason string when the value is bad. Raises ConfigError.
        """
        self._seen.add(key)
        if key not in self.data:
            if default is None:
                raise self.error(key, "required key is missing")
            return default
        value = self.data[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise self.error(key, f"expected {kind.__name__}, got {type(value).__name__}"
                                  f" {value!r}")
        if check is not None and (reason := check(value)) is not None:
            raise self.error(key, reason)
        return value

    def table(self, key: str, required: bool = False) -> Section:
        """Read `key` as a sub-table (empty when absent unless `required`)."""
        self._seen.add(key)
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.error(key, "required table is missing")
            value = {}
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {type(value).__name__}")
        return Section(value, self.file, self._key(key))

    def tables(self, key: str) -> Iterator[Section]:
        """Yield each table of the array of tables `key` (none when absent)."""
        self._seen.add(key)
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, "expected an array of tables ([[...]])")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{key}[{i}]", "expected a table")
            yield Section(item, self.file, f"{self._key(key)}[{i}]")

    def names(self) -> list[str]:
        """All keys of the table, marking them consumed (for free-form maps)."""
        self._seen.update(self.data)
        return list(self.data)

    def done(self) -> None:
        """Raise ConfigError naming the first key that no reader consumed."""
        for key in self.data:
            if key not in self._seen:
                raise self.error(key, "unknown key")


def positive(v: int | float) -> str | None:
    """Check: value > 0."""
    return None if v > 0 else "must be > 0"


def non_negative(v: int | float) -> str | None:
    """Check: value >= 0."""
    return None if v >= 0 else "must be >= 0"


def between(lo: float, hi: float) -> Callable[[Any], str | None]:
    """Check factory: lo <= value <= hi."""
    def check(v: Any) -> str | None:
        return None if lo <= v <= hi else f"must be between {lo} and {hi}"
    return check


def one_of(*choices: str) -> Callable[[str], str | None]:
    """Check factory: value is one of `choices`."""
    def check(v: str) -> str | None:
        return None if v in choices else f"must be one of {', '.join(choices)}"
    return check
