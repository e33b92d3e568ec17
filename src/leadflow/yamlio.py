"""YAML in, validated models out: errors name the file, line, or YAML path (a leaf module: everything imports it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from leadflow.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


def _yaml_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def load_yaml(path: Path) -> Any:
    """Parse a YAML file; syntax errors name the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(path), f"{where}invalid YAML ({getattr(exc, 'problem', exc)})") from None


def parse_model(model: type[ModelT], data: Any, path: Path) -> ModelT:
    """Validate `data` against `model`; the first error names its YAML path."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        extra = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ConfigError(str(path), f"{first['msg']}{extra}", yaml_path=_yaml_path(tuple(first["loc"]))) from None
