"""The one error type of the harness: bad user input (an unknown name, a malformed or
invalid value, a missing or corrupt file). `harness.cli` prints it as one line on stderr
and exits with code 2, before anything is written to the results tree. Beside it, the one
reader of the JSON and YAML mappings the harness loads, whose failures are that error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """Bad user input: reported as one line on stderr with exit code 2."""


def read_mapping(path: Path) -> dict[str, Any]:
    """A JSON (`.json`) or YAML file holding a mapping, or one ConfigError line saying why
    not (unreadable, unparsable, or another kind of value)."""
    is_json = path.suffix == ".json"
    try:
        text = path.read_text()
        data = json.loads(text) if is_json else yaml.safe_load(text)
    except (OSError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}".splitlines()[0]) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a {'JSON object' if is_json else 'mapping'}")
    return data
