"""The ``disco`` command: dispatches to ``disco data``, ``disco train`` and ``disco export``."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from disco.errors import DiscoError

_COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("disco.data.cli", "make dataset replicas, import image folders, download or verify official files"),
    "train": ("disco.train.cli", "train a model from a YAML config (see configs/)"),
    "export": ("disco.train.export", "export a trained encoder to TorchScript"),
}

USAGE = (
    "usage: disco {"
    + ",".join(_COMMANDS)
    + "} ...\n\n"
    + "\n".join(f"  {name:<8}{help_}" for name, (_, help_) in _COMMANDS.items())
)


def run_guarded(entry: Callable[[], int | None]) -> int:
    """Run ``entry`` and turn a :class:`DiscoError` into one ``error:`` line on stderr and exit code 2."""
    try:
        return int(entry() or 0)
    except DiscoError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``disco`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(USAGE)
        return 0 if args else 2
    if args[0] not in _COMMANDS:
        print(
            f"error: unknown command {args[0]!r}; choose one of {', '.join(_COMMANDS)} (see disco --help)",
            file=sys.stderr,
        )
        return 2
    module = importlib.import_module(_COMMANDS[args[0]][0])
    return run_guarded(lambda: module.main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
