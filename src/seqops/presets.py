"""Presets: a file in `params/` holding only what differs from `params.yaml` for one dataset.

    seqops preset sst2                      # params/sst2.yaml merged over params.yaml
    seqops preset co2 --params params.yaml --presets params

Applying a preset rewrites `params.yaml` in full (comments kept), so `dvc repro`,
`dvc params diff` and `dvc exp show` see every param that changed, as if it had been edited
by hand. Mappings merge key by key; `tune.space` and `tune.choose` are replaced whole (a
search space is one decision, not a union of two). The merged params are validated before
anything is written: a preset that does not fit leaves `params.yaml` untouched.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from seqops import outputs
from seqops.config import flatten, parse_config, read_yaml
from seqops.errors import ConfigError, clip

#: Mappings a preset replaces whole instead of merging into.
REPLACED = {("tune", "space"), ("tune", "choose")}


def available(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: keeps comments and key order
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def _load(path: Path) -> Any:
    """`path` as ruamel's round-trip document, once `config.read_yaml` accepted it: the
    same refusals (a repeated key, aliases expanding past a small limit, deep nesting, a
    non-core tag, an oversized file) name the file and line here as for any params file."""
    read_yaml(path)
    try:
        return _yaml().load(path.read_text())
    except YAMLError as exc:
        raise ConfigError(
            f"{path}: not valid YAML ({clip(' '.join(str(exc).split()), 200)})"
        ) from None


def _merge(base: Any, preset: Any, trail: tuple[str, ...] = ()) -> None:
    for key, value in preset.items():
        here = (*trail, str(key))
        if isinstance(value, dict) and isinstance(base.get(key), dict) and here not in REPLACED:
            _merge(base[key], value, here)
        else:
            base[key] = value


def _plain(tree: Any) -> Any:
    """ruamel's commented containers and scalar subclasses (`ScalarFloat`, ...) as plain
    dicts, lists and built-in scalars: what the config validates and other writers dump."""
    if isinstance(tree, dict):
        return {str(k): _plain(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_plain(v) for v in tree]
    for kind in (bool, int, float, str):  # bool first: it is an int
        if isinstance(tree, kind):
            return kind(tree)
    return tree


def preset_file(name: str, directory: Path) -> Path:
    path = directory / f"{name}.yaml"
    if not path.is_file():
        names = ", ".join(available(directory)) or "none"
        raise ConfigError(f"preset {name!r}: {path} not found (presets: {names})")
    return path


def _merged_doc(params: Path, preset: Path) -> Any:
    if not params.is_file():
        raise ConfigError(f"{params}: file not found")
    base, extra = _load(params), _load(preset)
    if not isinstance(base, dict) or not isinstance(extra, dict):
        raise ConfigError(f"{params} and {preset} must each hold a mapping")
    _merge(base, extra)
    return base


def merged(params: Path, preset: Path) -> dict[str, Any]:
    """The params `preset` gives when applied over `params`, validated, as a plain mapping
    (nothing written): what benchmarks and tests start a preset's run from."""
    tree = _plain(_merged_doc(params, preset))
    parse_config(tree, f"{params} with {preset}")
    return tree


def apply(name: str, params: Path, directory: Path) -> dict[str, tuple[Any, Any]]:
    """Merge `directory/<name>.yaml` over `params`, validate, and rewrite `params`; returns
    each changed dotted path with its old and new value."""
    preset = preset_file(name, directory)
    before = flatten(_plain(_load(params))) if params.is_file() else {}
    doc = _merged_doc(params, preset)
    after = flatten(merged(params, preset))
    changed = {
        key: (before.get(key), after.get(key))
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    }
    text = io.StringIO()
    _yaml().dump(doc, text)
    outputs.write_text(params, text.getvalue())
    return changed


def main(name: str, params: str | Path = "params.yaml", directory: str | Path = "params") -> None:
    changed = apply(name, Path(params), Path(directory))
    print(f"{params}: preset {name} applied, {len(changed)} params changed")
    for key, (old, new) in changed.items():
        print(f"  {key}: {old!r} -> {new!r}")
