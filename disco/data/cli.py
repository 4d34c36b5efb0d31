"""``disco data``: make offline replicas, import image folders, download, verify and describe dataset files.

    disco data make {dsprites,shapes3d} --out PATH [--subsample NAME=STEP ...] [--force]
    disco data import FOLDER --out PATH [--size 64] [--channels {1,3}] [--labels CSV] [--force]
    disco data download {dsprites,shapes3d} [--dir DIR] [--timeout SECONDS]
    disco data verify NAME_OR_PATH
    disco data info NAME_OR_PATH

Replicas of dSprites (Matthey et al. 2017) and 3D Shapes (Burgess & Kim 2018) are written in the official layouts.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import h5py

from disco.data.checksum import KNOWN_MD5
from disco.data.datasets import GroundTruthData, load_dataset, resolve_path

_IMPORT_HELP = (
    "Import a folder of image files (searched recursively, in sorted path order; other files are ignored) into an "
    "HDF5 dataset: each image is centre-cropped to a square and resized to --size with LANCZOS. Unreadable image files "
    "are skipped with a warning; it is an error when none can be read. Without --labels the dataset is unlabelled."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="disco data", description="Dataset files: replicas, downloads, checks.")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="render an offline replica in the official layout")
    make.add_argument("name", choices=("dsprites", "shapes3d"))
    make.add_argument("--out", required=True, type=Path, help="output .h5 file (e.g. data/dsprites.h5)")
    make.add_argument(
        "--subsample", action="append", default=[], metavar="NAME=STEP", help="keep every STEP-th value of factor NAME"
    )
    make.add_argument("--force", action="store_true", help="overwrite an existing --out")
    imp = sub.add_parser("import", help="import a folder of image files", description=_IMPORT_HELP)
    imp.add_argument("folder", type=Path, help="folder holding the images (.png .jpg .jpeg .bmp .gif .tif .tiff .webp)")
    imp.add_argument("--out", required=True, type=Path, help="output .h5 file (e.g. data/mine.h5)")
    imp.add_argument(
        "--size",
        type=int,
        default=64,
        help="side of the square images (default 64; disco's encoders and loader take only 64)",
    )
    imp.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=None,
        help="1 grey or 3 RGB (default: 1 if every image is greyscale, else 3)",
    )
    imp.add_argument(
        "--labels",
        type=Path,
        default=None,
        help="CSV with a header, a file/filename/path column and one column per factor",
    )
    imp.add_argument("--force", action="store_true", help="overwrite an existing --out")
    down = sub.add_parser("download", help="download the official file (needs internet)")
    down.add_argument("name", choices=("dsprites", "shapes3d"))
    down.add_argument("--dir", type=Path, default=None, help="target folder (default $DISCO_DATA_DIR or ./data)")
    down.add_argument("--timeout", type=float, default=10.0, help="network timeout in seconds")
    for name, help_ in (("verify", "recompute and check a file's checksum"), ("info", "describe a dataset file")):
        cmd = sub.add_parser(name, help=help_)
        cmd.add_argument("dataset", help="dsprites, shapes3d or a path to an .h5/.hdf5/.npz file")
    return parser


def _checksum_kind(path: Path) -> str:
    if path.name in KNOWN_MD5:
        return "official file md5"
    if path.suffix.lower() in {".h5", ".hdf5"}:
        try:
            with h5py.File(path, "r") as fh:
                if "images_md5" in fh.attrs:
                    version = fh.attrs.get("disco_generator_version", "?")
                    return f"replica image md5 (generator version {version})"
        except OSError:
            pass
    return "no reference checksum known for this file (layout and labels checked)"


def _describe(data: GroundTruthData, path: Path) -> str:
    if not data.has_factors:
        return f"{path}: {data.name}, {len(data)} images {tuple(data.images.shape[1:])} uint8, unlabelled (no factors)"
    factors = ", ".join(f"{n}:{s}" for n, s in zip(data.factors.names, data.factors.sizes, strict=True))
    return (
        f"{path}: {data.name}, {len(data)} images {tuple(data.images.shape[1:])} uint8, factors [{factors}], "
        f"on_grid={data.on_grid}"
    )


def _import(args: argparse.Namespace) -> int:
    from disco.data.image_import import import_folder

    res = import_folder(
        args.folder, args.out, size=args.size, channels=args.channels, labels=args.labels, force=args.force
    )
    if res.skipped:
        more = f" (+{len(res.skipped) - 3} more)" if len(res.skipped) > 3 else ""
        print(
            f"warning: skipped {len(res.skipped)} unreadable image file(s): {', '.join(res.skipped[:3])}{more}",
            file=sys.stderr,
        )
    if res.size != 64:
        print(f"note: disco's encoders take 64×64 images; re-run with --size 64 to train on {res.out}", file=sys.stderr)
    factors = ", ".join(f"{name}:{n}" for name, n in res.factors) or "none (unlabelled)"
    print(
        f"imported {res.count} images ({res.size}×{res.size}, {res.channels} channel(s)) into {res.out}; "
        f"skipped {len(res.skipped)} unreadable, ignored {res.ignored} non-image files; factors: {factors}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``disco data``; user errors raise :class:`disco.errors.DiscoError` (exit 2 via run_guarded)."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "make":
        from disco.data.replicas import make_replica
        from disco.data.replicas.common import parse_subsample

        start = time.perf_counter()
        out = make_replica(args.name, args.out, parse_subsample(args.subsample), force=args.force)
        print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
        return 0
    if args.command == "download":
        from disco.data.download import download_dataset

        print(f"downloaded {download_dataset(args.name, args.dir, timeout=args.timeout)}")
        return 0
    if args.command == "import":
        return _import(args)
    path, _ = resolve_path(args.dataset)
    data = load_dataset(args.dataset, verify=args.command == "verify")
    if args.command == "verify":
        grid = f"factor grid {data.factors.sizes}" if data.has_factors else "unlabelled (no factors)"
        print(f"ok: {path}: {_checksum_kind(path)}; {len(data)} images, {grid}")
    else:
        print(_describe(data, path))
    return 0


if __name__ == "__main__":
    from disco.cli import run_guarded

    sys.exit(run_guarded(lambda: main()))
