"""``disco train``: train from a YAML config with command-line overrides, typed and validated by jsonargparse.

Usage::

    disco train --config configs/dsprites.yaml [--objective.vae.beta 4] [--set trainer.max_steps=500] [--print-config]
    disco train --resume runs/dsprites/checkpoints/last.ckpt [--trainer.max_steps 40000]

A YAML file may name another one under ``base:`` (path relative to the file); its keys are merged under the file's
own. A dotted key that reaches into a mapping-valued key (``--data.augment.factors.position.range=[-0.3,0.3]``)
changes that entry only and keeps the rest of the mapping as the config files set it. With ``--resume`` the run's
saved config is the base and further ``--config``/overrides apply on top. An unknown key or a value of the wrong type
ends with one ``error:`` line naming the key and the fix (exit code 2).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ActionConfigFile, ArgumentParser

from disco.errors import ConfigError
from disco.train.config import TrainConfig

_HELP_KEYS = "run `disco train --print-config` to see every key"


def build_parser() -> ArgumentParser:
    """The jsonargparse parser of the whole :class:`TrainConfig` (keys like ``--objective.vae.beta``)."""
    parser = ArgumentParser(
        prog="disco train", exit_on_error=False, allow_abbrev=False, description=__doc__.splitlines()[0]
    )
    parser.add_argument("--config", action=ActionConfigFile, help="YAML config file (may be given several times)")
    parser.add_class_arguments(TrainConfig, as_group=False)
    return parser


def all_keys(cls: type = TrainConfig, prefix: str = "") -> list[str]:
    """Every dotted key of the config tree."""
    out: list[str] = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        sub = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub):
            out.extend(all_keys(sub, key + "."))
        else:
            out.append(key)
    return out


def load_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML config, resolving ``base:`` (relative to the file) recursively; file keys override base keys."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass a YAML file such as configs/dsprites.yaml")
    if path.resolve() in _seen:
        raise ConfigError(f"config {path} includes itself through base:; remove the cycle")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML ({str(err).splitlines()[0]}); fix its syntax") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys, not {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    return deep_merge(load_yaml(path.parent / str(base), (*_seen, path.resolve())), data)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base`` (nested dicts merged key by key, except ``*kwargs``, ``factors`` and
    ``factor_map``, which a file replaces as a whole)."""
    out = dict(base)
    for key, val in over.items():
        if (
            isinstance(val, dict)
            and isinstance(out.get(key), dict)
            and not key.endswith(("kwargs", "factors", "factor_map"))
        ):
            out[key] = deep_merge(out[key], val)
        else:
            out[key] = val
    return out


def expand_argv(argv: Sequence[str], base: dict[str, Any] | None = None) -> list[str]:
    """Turn ``--set a.b=c`` into ``--a.b c``, ``--config FILE`` into the merged YAML text of FILE and its bases, and a
    dotted key into a mapping-valued key (:func:`_into_mapping`) into the whole mapping with that entry changed
    (``base``: a config the arguments apply on top of, e.g. a resumed run's)."""
    args, out, i = list(argv), [], 0
    seen: dict[str, Any] = copy.deepcopy(base or {})  # what the configs so far set, to merge nested overrides into
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        value: str | None = inline if eq else None
        if value is None and name in ("--set", "--config"):
            if i + 1 >= len(args):
                raise ConfigError(f"{name} needs a value; e.g. {name} trainer.max_steps=100")
            value, i = args[i + 1], i + 1
        if name == "--set":
            assert value is not None
            key, sep, val = value.partition("=")
            if not sep or not key:
                raise ConfigError(f"--set {value!r} must look like key=value, e.g. --set objective.vae.beta=4")
            name, value = f"--{key}", val
        if name == "--config":
            assert value is not None
            data = load_yaml(value)
            out += ["--config", yaml.safe_dump(data, sort_keys=False)]
            seen = deep_merge(seen, data)
        elif name.startswith("--") and "." in name:
            if value is None and i + 1 < len(args) and not args[i + 1].startswith("--"):
                value, i = args[i + 1], i + 1
            merged = _into_mapping(name[2:], value, seen) if value is not None else None
            if merged is None:
                out += [name, value] if value is not None else [name]
            else:
                key, mapping = merged
                _set(seen, key.split("."), mapping)
                out += [f"--{key}", json.dumps(mapping)]
        else:
            out.append(arg)
        i += 1
    return out


def _into_mapping(key: str, value: str, seen: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """For ``key`` = ``<a mapping-valued config key>.<path>``: that key and its mapping (as the configs so far set it,
    else its default) with ``path`` set to ``value`` read as YAML; None when ``key`` is not of that form."""
    from disco.train.config import to_plain

    leaves = set(all_keys())
    if key in leaves:
        return None
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        if ".".join(parts[:cut]) in leaves:
            break
    else:
        return None
    current = _get(seen, parts[:cut])
    if current is None:
        current = _get(to_plain(TrainConfig()), parts[:cut])
    if not isinstance(current, dict):
        return None
    mapping = copy.deepcopy(current)
    _set(mapping, parts[cut:], yaml.safe_load(value))
    return ".".join(parts[:cut]), mapping


def _get(tree: dict[str, Any], path: list[str]) -> Any:
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _set(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        if not isinstance(tree.get(part), dict):
            tree[part] = {}
        tree = tree[part]
    tree[path[-1]] = value


def one_line_error(err: BaseException) -> str:
    """Reduce a jsonargparse/argparse error to one line naming the key and the fix."""
    text = str(err)
    m = re.search(r'Parser key "([^"]+)":\s*(.*)', text, re.S)
    if m:
        key, rest = m.group(1), m.group(2)
        got = re.search(r"Given value: (.*)|Got value: (.*)", rest)
        value = next((g for g in got.groups() if g), "?").strip() if got else "?"
        expected = re.search(r"Expected an? (.*?)\.? Got value", rest)
        subtypes = re.search(r"Subtypes: \[(.*)\]", rest)
        if expected:
            want = expected.group(1)
        elif subtypes:
            want = " or ".join(s.strip() for s in subtypes.group(1).split(","))
        else:
            want = (rest.strip().splitlines() or ["a valid value"])[0]
        want = re.sub(r"<class '(\w+)'>", r"\1", want).replace("typing.", "")
        return f"config key {key} has the wrong type: got {value!r}, expected {want}; fix it in the YAML or on the command line"
    unknown = _unknown_key(text)
    if unknown is not None:
        close = difflib.get_close_matches(unknown, all_keys(), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        return f"unknown config key {unknown}; {hint}{_HELP_KEYS}"
    first = (text.strip().splitlines() or [type(err).__name__])[0]
    return f"invalid configuration: {first}; {_HELP_KEYS}"


def _unknown_key(text: str) -> str | None:
    m = re.search(r"Group '([^']+)' does not accept option '([^']+)'", text)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    m = re.search(r"Option '([^']+)' is not accepted", text) or re.search(r"unrecognized arguments: --?(\S+)", text)
    if m:
        return m.group(1)
    m = re.search(r"Key \"([^\"]+)\" is not expected", text) or re.search(r"No action for key \"([^\"]+)\"", text)
    return m.group(1) if m else None


def parse_config(argv: Sequence[str], base: dict[str, Any] | None = None) -> TrainConfig:
    """Parse command-line arguments (and an optional base config dict) into a validated :class:`TrainConfig`."""
    parser = build_parser()
    args = expand_argv(argv, base)
    if base is not None:
        args = ["--config", yaml.safe_dump(base, sort_keys=False), *args]
    try:
        ns = parser.parse_args(args)
        ns.pop("config", None)
        inst = parser.instantiate(ns)
    except (argparse.ArgumentError, ValueError, TypeError, KeyError) as err:
        raise ConfigError(one_line_error(err)) from err
    return TrainConfig(**{f.name: inst[f.name] for f in dataclasses.fields(TrainConfig)})


def dump_config(cfg: TrainConfig) -> str:
    """The resolved config as YAML, headed by a comment naming the resolved supervision level."""
    from disco.data.supervision import MEANING, resolve_supervision, supervision_notes
    from disco.train.config import to_plain

    level = resolve_supervision(cfg.data.supervision, cfg.objective)
    head = f"# supervision: {level} ({MEANING[level]})\n"
    head += "".join(f"# note: {note}\n" for note in supervision_notes(cfg.objective))
    return head + yaml.safe_dump(to_plain(cfg), sort_keys=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``disco train`` (the ``disco`` dispatcher wraps it in :func:`disco.cli.run_guarded`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        print("keys:\n  " + "\n  ".join(all_keys()))
        return 0
    print_config = "--print-config" in args
    args = [a for a in args if a != "--print-config"]
    resume, base = _pop_resume(args)
    cfg = parse_config(args, base)
    if print_config:
        print(dump_config(cfg), end="")
        return 0
    from disco.train.run import train

    started = time.time()
    result = train(cfg, resume=resume)
    evaluation = result.evaluation
    saved = result.run_dir / "metrics.json"
    if evaluation is not None and evaluation.final:
        from disco.report import markdown_table

        print(markdown_table(evaluation.final), end="")
    elif (
        saved.is_file() and saved.stat().st_mtime >= started
    ):  # spawned DDP workers evaluated in another process; they left the scores on disk
        scores = json.loads(saved.read_text())["scores"]
        print(
            "| metric | score |\n|---|---:|\n"
            + "\n".join(f"| {k} | {v:.4f} |" for k, v in scores.items() if "/" not in k)
        )
    from disco.data.supervision import MEANING

    level = result.module.supervision
    print(f"supervision: {level} ({MEANING[level]})")
    print(f"checkpoints: {result.checkpoint_dir}")
    return 0


def _pop_resume(args: list[str]) -> tuple[str | None, dict[str, Any] | None]:
    """Remove ``--resume PATH`` from ``args``; return the path and the config saved in that checkpoint."""
    for i, arg in enumerate(args):
        name, eq, inline = arg.partition("=")
        if name == "--resume":
            if not eq and i + 1 >= len(args):
                raise ConfigError("--resume needs the path of a checkpoint, e.g. runs/x/checkpoints/last.ckpt")
            path = inline if eq else args[i + 1]
            del args[i : i + (1 if eq else 2)]
            from disco.train.checkpointing import load_checkpoint

            config = load_checkpoint(path)["disco"].get("config")
            return path, config if isinstance(config, dict) else None
    return None, None
