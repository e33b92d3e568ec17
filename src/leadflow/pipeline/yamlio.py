"""YAML in, validated models out: errors name the file, line, or YAML path (a leaf module: everything imports it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from leadflow.pipeline.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


def _yaml_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def load_yaml(path: Path, *, allow_empty: bool = False) -> Any:
    """Parse a YAML file; syntax errors name the file, line and column.

    A file with no document (0 bytes, only comments or whitespace, or a bare `null`/`~`) is refused with
    "... is empty" unless `allow_empty`: an empty config is almost always a mistake (a truncated copy, the wrong
    file), and silently running on defaults would hide it. Write `{}` for "all defaults" on purpose.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "is a directory, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(path), f"{where}invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None and not allow_empty:
        raise ConfigError(str(path), "is empty (no YAML document: write `{}` to use every default)")
    return data


def parse_model(model: type[ModelT], data: Any, path: Path) -> ModelT:
    """Validate `data` against `model`; the first error names its YAML path."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        extra = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ConfigError(str(path), f"{first['msg']}{extra}", yaml_path=_yaml_path(tuple(first["loc"]))) from None
