"""Load an encoder to evaluate: a disco checkpoint, a TorchScript file, or an explicit ``package.module:callable``.

Security model
--------------
* Disco checkpoints (Lightning ``.ckpt`` dicts) are read with ``torch.load(..., weights_only=True)``: the restricted
  unpickler only rebuilds tensors and plain containers, so the file cannot run code. The encoder is then rebuilt from
  the architecture name and keyword arguments stored in the checkpoint with :func:`disco.models.factory.build_encoder`.
* TorchScript files are read with :func:`torch.jit.load`. A TorchScript archive is not pickled Python: its C++ loader
  does not import Python modules or call Python functions; the model runs TorchScript operators only. (As with any
  program, only evaluate models whose operators you are willing to run.)
* ``package.module:callable`` is the only way user Python code is imported, and only when the user types it.

Checkpoint contract (written by training, read here): a dict with key ``"disco"`` holding
``{"encoder": {"name": str, "kwargs": dict}, "subspaces": SubspaceSpec.to_dict(), "factor_names": list[str],
"dataset": str, "config": dict}`` and the encoder's weights in ``ckpt["state_dict"]`` under the prefix ``"encoder."``.
"""

from __future__ import annotations

import importlib
import re
import sys
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from disco.errors import EncoderError
from disco.models.subspaces import SubspaceSpec

_CALLABLE_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
_PREFIX = "encoder."


@dataclass
class LoadedEncoder:
    """An encoder ready to evaluate, where it came from, and the subspaces a disco checkpoint declares (if any)."""

    module: nn.Module
    subspaces: SubspaceSpec | None
    kind: str
    description: str
    info: dict[str, Any] = field(default_factory=dict)


def is_torchscript(path: str | Path) -> bool:
    """True when ``path`` is a TorchScript archive (a zip holding ``constants.pkl`` or ``code/``), not a torch.save file."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/constants.pkl") or "/code/" in n for n in names)


def _read_checkpoint(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for corrupt or non-weights files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EncoderError(
            f"cannot read checkpoint {path} ({first[:160]}); pass a disco .ckpt, a TorchScript file or package.module:callable"
        ) from err
    if not isinstance(ckpt, Mapping) or "disco" not in ckpt or "state_dict" not in ckpt:
        raise EncoderError(
            f"{path} is not a disco checkpoint (no 'disco' and 'state_dict' keys); export the encoder to TorchScript "
            "(torch.jit.script/trace + save) or pass package.module:callable"
        )
    return dict(ckpt)


def _subspaces_from(meta: Mapping[str, Any], path: Path) -> SubspaceSpec | None:
    raw = meta.get("subspaces")
    if not raw:
        return None
    if not isinstance(raw, Mapping):
        raise EncoderError(
            f"checkpoint {path} has malformed 'subspaces' metadata; expected a name -> (width, factor) dict"
        )
    entries: dict[str, int | tuple[int, str | None]] = {}
    for name, val in raw.items():
        if isinstance(val, (list, tuple)) and len(val) == 2:
            entries[str(name)] = (int(val[0]), None if val[1] is None else str(val[1]))
        else:
            entries[str(name)] = int(val)
    return SubspaceSpec.from_entries(entries)


def load_encoder(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, SubspaceSpec | None]:
    """Rebuild the encoder stored in a disco checkpoint and return it (eval mode) with its subspace spec.

    The file is read with ``weights_only=True``; the architecture comes from ``ckpt["disco"]["encoder"]`` via
    :func:`disco.models.factory.build_encoder` and the weights from the ``"encoder."``-prefixed ``state_dict`` entries.
    """
    loaded = _load_checkpoint(Path(path), map_location)
    return loaded.module, loaded.subspaces


def _load_checkpoint(path: Path, map_location: str | torch.device) -> LoadedEncoder:
    from disco.models.factory import build_encoder

    if not path.is_file():
        raise EncoderError(f"encoder file {path} does not exist; check the path")
    ckpt = _read_checkpoint(path, map_location)
    meta = ckpt["disco"]
    enc = meta.get("encoder") if isinstance(meta, Mapping) else None
    if not isinstance(enc, Mapping) or not isinstance(enc.get("name"), str):
        raise EncoderError(f"checkpoint {path} lacks disco.encoder.name; it was not written by disco training")
    kwargs = dict(enc.get("kwargs") or {})
    try:
        module = build_encoder(enc["name"], **kwargs)
    except (TypeError, ValueError, KeyError) as err:
        raise EncoderError(f"cannot rebuild encoder {enc['name']!r} with {kwargs} from {path}: {err}") from err
    state = {k[len(_PREFIX) :]: v for k, v in ckpt["state_dict"].items() if k.startswith(_PREFIX)}
    if not state:
        raise EncoderError(f"checkpoint {path} holds no 'encoder.'-prefixed weights in its state_dict")
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise EncoderError(f"weights in {path} do not fit encoder {enc['name']!r} ({first[:160]})") from err
    module.eval()
    info = {k: meta.get(k) for k in ("dataset", "factor_names") if meta.get(k) is not None}
    info.update({"encoder_name": enc["name"], "encoder_kwargs": kwargs})
    config = meta.get("config")
    data_cfg = config.get("data") if isinstance(config, Mapping) else None
    if isinstance(data_cfg, Mapping) and isinstance(data_cfg.get("split_seed"), int):
        info["split_seed"] = int(data_cfg["split_seed"])
    if isinstance(meta.get("supervision"), str):
        info["supervision"] = meta["supervision"]
    if isinstance(data_cfg, Mapping) and isinstance(data_cfg.get("augment"), Mapping):
        info["augment"] = dict(data_cfg["augment"])
    eval_cfg = config.get("eval") if isinstance(config, Mapping) else None
    if isinstance(eval_cfg, Mapping) and isinstance(eval_cfg.get("factor_map"), Mapping) and eval_cfg["factor_map"]:
        info["factor_map"] = {str(k): list(v) for k, v in eval_cfg["factor_map"].items()}
    return LoadedEncoder(
        module, _subspaces_from(meta, path), "checkpoint", f"disco checkpoint {path} ({enc['name']})", info
    )


def _load_torchscript(path: Path, map_location: str | torch.device) -> LoadedEncoder:
    try:
        module = torch.jit.load(str(path), map_location=map_location)
    except Exception as err:  # corrupt archives raise RuntimeError or others from the C++ loader
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EncoderError(
            f"cannot load TorchScript file {path} ({first[:160]}); re-export it with torch.jit.save"
        ) from err
    module.eval()
    return LoadedEncoder(module, None, "torchscript", f"TorchScript {path}")


def _load_callable(spec: str) -> LoadedEncoder:
    module_name, _, attr_path = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise EncoderError(f"cannot import module {module_name!r} for {spec} ({err}); check PYTHONPATH") from err
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise EncoderError(
                f"module {module_name!r} has no attribute {attr_path!r}; check the name after ':' in {spec}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise EncoderError(f"{spec} is not callable; point it at a function or class returning an nn.Module")
    built = obj if isinstance(obj, nn.Module) else obj()
    if not isinstance(built, nn.Module):
        raise EncoderError(f"{spec} returned {type(built).__name__}, not a torch.nn.Module; return the encoder module")
    built.eval()
    return LoadedEncoder(built, None, "callable", f"callable {spec}")


def load_any_encoder(spec: str, map_location: str | torch.device = "cpu") -> LoadedEncoder:
    """Load an encoder from a TorchScript file, a disco checkpoint, or ``package.module:callable``.

    An existing path is inspected: a TorchScript archive goes to :func:`torch.jit.load`, anything else must be a disco
    checkpoint (read with ``weights_only=True``). A string of the form ``package.module:callable`` that is not an
    existing path imports that module and calls the callable with no arguments (a module instance is used as is).
    Every failure raises :class:`EncoderError` with one line.
    """
    path = Path(spec).expanduser()
    if path.exists():
        if path.is_dir():
            raise EncoderError(f"encoder {spec} is a directory; pass a checkpoint or TorchScript file")
        if is_torchscript(path):
            return _load_torchscript(path, map_location)
        return _load_checkpoint(path, map_location)
    if _CALLABLE_RE.match(spec):
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        return _load_callable(spec)
    raise EncoderError(
        f"encoder {spec!r} is neither an existing file nor package.module:callable; check the path or the spelling"
    )
