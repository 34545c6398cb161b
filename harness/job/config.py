"""Resolve one run's configuration, in increasing precedence:

1. the algorithm's config dataclass defaults (the papers' values, with sources),
2. config/hyperparameters.yaml: the environment's `shared` block (a dotted key whose group,
   e.g. `sac`, the algorithm's config lacks is skipped: PETS has no SAC), then its family
   block,
3. the profile (config/<profile>.yaml `train:`): `all`, the family block, then the
   environment's blocks under `env:`,
4. `--set key=value` on the command line.

Every layer uses the same dotted keys; an unknown key or a value of the wrong type is a
`ConfigError` naming the key, raised before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from algorithms.parts.envs import EnvSpec
from algorithms.registry import ALGORITHMS, Algorithm
from harness.errors import ConfigError, read_mapping

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "config"
SCHEMA = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
PROFILES = ("smoke", "quick", "paper")


def load_profile(profile: str) -> dict[str, Any]:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    path = CONFIG_DIR / f"{profile}.yaml"
    data = read_mapping(path)
    validate_profile(data, str(path.relative_to(CONFIG_DIR.parent)))
    return data


def validate_profile(data: dict[str, Any], source: str, *, job: bool = False) -> None:
    """Check a profile against workflow/schemas/config.schema.yaml (the schema the Snakefile
    validates with): the first violation, with its key path, as a ConfigError. `job`: the
    part one training job needs (`job_profile`), without experiments, stats, resources."""
    schema = read_mapping(SCHEMA)
    if job:
        schema["required"] = ["profile", "label", "train"]
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "top level"
        raise ConfigError(f"{source}: {where}: {error.message}")


JOB_KEYS = ("profile", "label", "checkpoint_every", "train")


def job_profile(config: dict[str, Any], algo: str, env: str) -> dict[str, Any]:
    """The part of a loaded profile (the workflow's `config`) that one training job of
    `algo` on `env` depends on: its name, label, checkpoint_every and the `train:` blocks
    that apply to it. The workflow passes it to `mbrl-bench train --profile-json`, so a
    job follows the config Snakemake loaded (any --configfile, any --config), and a change
    to another job's block does not change this job's command (nor make Snakemake rerun it)."""
    family = ALGORITHMS[algo].family
    train = config.get("train") or {}
    env_block = (train.get("env") or {}).get(env) or {}
    blocks: dict[str, Any] = {k: train[k] for k in ("all", family) if train.get(k)}
    mine = {k: env_block[k] for k in ("all", family) if env_block.get(k)}
    if mine:
        blocks["env"] = {env: mine}
    out = {k: config[k] for k in JOB_KEYS if k in config}
    out["train"] = blocks
    return out


def parse_profile_json(text: str) -> dict[str, Any]:
    """`--profile-json`: a job profile (`job_profile`), checked against the schema."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--profile-json is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError("--profile-json must hold a JSON object")
    validate_profile(data, "--profile-json", job=True)
    return data


def parse_set(items: list[str]) -> dict[str, Any]:
    """`key=value` strings -> {key: value}, values parsed as YAML scalars/lists."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise ConfigError(f"malformed --set {item!r}: expected key=value")
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise ConfigError(f"malformed value in --set {item!r}") from exc
    return out


def layers(algo: Algorithm, spec: EnvSpec, profile: dict[str, Any]) -> list[tuple[str, dict]]:
    """The override layers (name, {dotted key: value}) for this run, lowest first."""
    hyper = read_mapping(CONFIG_DIR / "hyperparameters.yaml").get(spec.name) or {}
    train = profile.get("train") or {}
    env_prof = (train.get("env") or {}).get(spec.name) or {}
    return [
        (f"hyperparameters.yaml:{spec.name}.shared", hyper.get("shared") or {}),
        (f"hyperparameters.yaml:{spec.name}.{algo.family}", hyper.get(algo.family) or {}),
        (f"{profile.get('profile')}.yaml:train.all", train.get("all") or {}),
        (f"{profile.get('profile')}.yaml:train.{algo.family}", train.get(algo.family) or {}),
        (f"{profile.get('profile')}.yaml:train.env.{spec.name}.all", env_prof.get("all") or {}),
        (
            f"{profile.get('profile')}.yaml:train.env.{spec.name}.{algo.family}",
            env_prof.get(algo.family) or {},
        ),
    ]


def resolve(
    algo: Algorithm, spec: EnvSpec, profile: dict[str, Any], overrides: dict[str, Any]
) -> Any:
    """The run's frozen config dataclass."""
    base = algo.default_config()
    tree = dataclasses.asdict(base)
    for source, layer in [*layers(algo, spec, profile), ("--set", overrides)]:
        for key, value in layer.items():
            group = key.split(".")[0]
            if source.endswith(".shared") and "." in key and group not in tree:
                if group in _known_groups():
                    continue  # a shared group key (e.g. sac.*) only for algorithms with it
            _assign(tree, key, value, algo.name, source)
    return build(type(base), tree, prefix="")


def _known_groups() -> set[str]:
    """Config groups (nested dataclasses) of any registered algorithm: a shared key of an
    unknown group is a typo and is reported, not skipped."""
    return {
        k for a in ALGORITHMS.values() for k, v in dataclasses.asdict(a.default_config()).items()
        if isinstance(v, dict)
    }  # fmt: skip


# Keys that moved when PMAC's mixture became one of the weighting schemes (issue 15):
# named in the error, so an old command line says what to write instead.
RENAMED = {
    "pmac.alpha": "weighting.age.alpha",
    "pmac.adaptation_interval": "weighting.adaptation_interval",
    "pmac.weighting": "weighting.mode",
    "pmac.for_model": "weighting.for_model",
    "pmac.for_rollout": "weighting.for_rollout",
}


def _assign(tree: dict, key: str, value: Any, algo: str, source: str) -> None:
    if key in RENAMED:
        raise ConfigError(f"key {key!r} is now {RENAMED[key]!r} ({source})")
    node = tree
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            where = ".".join(parts[:i]) or "top level"
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "none"
            raise ConfigError(
                f"unknown key {key!r} for algorithm {algo} (from {source}; "
                f"keys at {where}: {known})"
            )
        if i == len(parts) - 1:
            if isinstance(node[part], dict):
                raise ConfigError(f"key {key!r} is a group; set one of its fields ({source})")
            node[part] = value
        else:
            node = node[part]


def build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    """Construct dataclass `cls` from a nested dict, checking every value's type."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        kwargs[f.name] = _coerce(data[f.name], hints[f.name], key)
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"invalid config: {exc}") from exc


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        return build(tp, value, prefix=f"{key}.")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        fixed = not (len(args) == 2 and args[1] is Ellipsis)
        if fixed and len(value) != len(args):
            raise ConfigError(f"{key} must have {len(args)} elements, got {len(value)}")
        elem = list(args) if fixed else [args[0]] * len(value)
        return tuple(
            _coerce(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, elem, strict=True))
        )
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 3e-4 (no dot) as a string; users write it
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported config type {tp}")
