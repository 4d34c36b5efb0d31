"""``disco data import`` on real image files: crops, channels, skips, labels CSV, errors and atomic output."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from disco.cli import main as disco_main
from disco.data import image_import
from disco.data.datasets import load_dataset
from disco.errors import DataError

RED, GREEN, BLUE = (200, 30, 40), (30, 160, 90), (20, 60, 220)
IMPORTED = ["a/exact.png", "b/tall.png", "b/wide.png", "c/alpha.png", "d/photo.JPG", "grey.png"]
LABELS = """file,colour,size,n
a/exact.png,red,10,12
tall.png,blue,9,3
b/wide.png,green,2.5,3
broken.png,purple,100,7
c/alpha.png,red,9,12
photo.JPG,blue,10,3
grey.png,green,2.5,3
"""


def _save(path: Path, pixels: np.ndarray, fmt: str = "PNG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, fmt)


def _noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """A nested folder: PNG/JPEG of mixed sizes and modes, a truncated PNG and a text file."""
    src = tmp_path / "src"
    _save(src / "a" / "exact.png", _noise((64, 64, 3), 0))
    tall = np.empty((90, 30, 3), np.uint8)  # 30 wide, 90 high: the centre square is rows 30..59
    tall[:], tall[30:60] = BLUE, GREEN
    _save(src / "b" / "tall.png", tall)
    wide = np.empty((50, 80, 3), np.uint8)  # 80 wide, 50 high: the centre square is columns 15..64
    wide[:], wide[:, 15:65] = BLUE, RED
    _save(src / "b" / "wide.png", wide)
    alpha = np.zeros((64, 64, 4), np.uint8)
    alpha[:, :32] = (255, 255, 255, 0)  # transparent white -> black
    alpha[:, 32:] = (10, 200, 10, 255)
    _save(src / "c" / "alpha.png", alpha)
    _save(src / "d" / "photo.JPG", _noise((48, 64), 1), "JPEG")
    _save(src / "grey.png", np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1)))
    buf = io.BytesIO()
    Image.fromarray(_noise((64, 64, 3), 2)).save(buf, "PNG")
    (src / "broken.png").write_bytes(buf.getvalue()[:300])
    (src / "notes.txt").write_text("not an image")
    return src


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = disco_main(["data", "import", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _read(path: Path) -> dict[str, Any]:
    with h5py.File(path, "r") as fh:
        return {key: fh[key][()] for key in fh} | {key: fh.attrs[key] for key in fh.attrs}


def test_unlabelled_import(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "mine.h5"
    code, stdout, stderr = _run(capsys, tree, "--out", out)
    assert code == 0
    assert stdout == (
        f"imported 6 images (64×64, 3 channel(s)) into {out}; skipped 1 unreadable, ignored 1 non-image files; "
        f"factors: none (unlabelled)\n"
    )
    assert stderr == "warning: skipped 1 unreadable image file(s): broken.png\n"
    got = _read(out)
    assert [name.decode() for name in got["filenames"]] == IMPORTED
    images = got["images"]
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0], _noise((64, 64, 3), 0))  # 64×64 PNG: bit-exact
    assert (images[1] == GREEN).all() and (images[2] == RED).all()  # only the centre squares remain
    assert (images[3, :, :32] == 0).all() and (images[3, :, 32:] == (10, 200, 10)).all()
    assert images[4].std() > 10  # the JPEG (lossy): decoded, not blank
    np.testing.assert_array_equal(images[5], np.repeat(np.tile(np.arange(0, 256, 4), (64, 1))[..., None], 3, axis=2))
    meta = json.loads(got["disco_import"])
    assert meta["skipped_unreadable"] == 1 and meta["ignored_non_image"] == 1 and meta["size"] == 64
    assert set(got) == {"images", "filenames", "disco_import"}
    data = load_dataset(str(out))
    assert not data.has_factors and data.classes.shape == (6, 0) and data.num_channels == 3 and not data.on_grid
    assert disco_main(["data", "info", str(out)]) == 0
    assert "unlabelled (no factors)" in capsys.readouterr().out


def test_channels_default_to_grey_and_can_be_forced(tmp_path: Path, tree: Path) -> None:
    grey = tmp_path / "grey"
    _save(grey / "l.png", np.full((64, 64), 77, np.uint8))
    Image.new("1", (20, 40), 1).save(grey / "bw.bmp")
    res = image_import.import_folder(grey, tmp_path / "g.h5")
    assert res.channels == 1 and res.count == 2
    assert (_read(tmp_path / "g.h5")["images"] == [[[255]], [[77]]]).all()  # bw.bmp sorts first
    res = image_import.import_folder(tree, tmp_path / "t.h5", channels=1)
    images = _read(tmp_path / "t.h5")["images"]
    assert images.shape == (6, 64, 64) and res.skipped == ("broken.png",)
    assert (images[2] == Image.new("RGB", (1, 1), RED).convert("L").getpixel((0, 0))).all()


def test_other_size_imports_with_a_note(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "small.h5"
    code, _, stderr = _run(capsys, tree, "--out", out, "--size", "32")
    assert code == 0 and "note: disco's encoders take 64×64" in stderr
    images = _read(out)["images"]
    assert images.shape == (6, 32, 32, 3) and (images[2] == RED).all()
    with pytest.raises(DataError, match="--size 64"):
        load_dataset(str(out))


def test_labels_csv(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "labels.csv").write_text(LABELS)
    out = tmp_path / "labelled.h5"
    code, stdout, _ = _run(capsys, tree, "--out", out, "--labels", tmp_path / "labels.csv")
    assert code == 0 and stdout.endswith("factors: colour:3, size:3, n:2\n")  # purple was only on broken.png
    got = _read(out)
    # kept rows: exact, tall, wide, alpha, photo, grey; colour by string, size and n by number
    expected = np.array([[2, 2, 1], [0, 1, 0], [1, 0, 0], [2, 1, 1], [0, 2, 0], [1, 0, 0]])
    np.testing.assert_array_equal(got["factors"], expected)
    assert got["factors"].dtype == np.int64
    assert [n.decode() for n in got["factor_names"]] == ["colour", "size", "n"]
    values = json.loads(got["factor_values"])
    assert values == {"colour": ["blue", "green", "red"], "size": [2.5, 9.0, 10.0], "n": [3, 12]}
    data = load_dataset(str(out))
    assert data.has_factors and data.factors.names == ("colour", "size", "n") and data.factors.sizes == (3, 3, 2)
    assert torch.equal(data.classes, torch.from_numpy(expected))


def _csv(tmp_path: Path, text: str) -> Path:
    (tmp_path / "l.csv").write_text(text)
    return tmp_path / "l.csv"


def _case(kind: str, tmp_path: Path, tree: Path) -> list[str | Path]:
    """Arguments (before --out) for one error case."""
    empty = tmp_path / "empty"
    empty.mkdir()
    rows = LABELS.splitlines()
    if kind == "empty":
        return [empty]
    if kind == "only_text":
        (empty / "a.txt").write_text("x")
        (empty / "b.csv").write_text("y")
        return [empty]
    if kind == "missing_folder":
        return [tmp_path / "nope"]
    if kind == "all_broken":
        (empty / "x.png").write_bytes((tree / "broken.png").read_bytes())
        (empty / "y.jpg").write_bytes(b"\xff\xd8\xff not really")
        return [empty]
    texts = {
        "csv_missing_file": LABELS + "ghost.png,red,1,1\n",
        "csv_unlabelled_image": "\n".join(rows[:1] + rows[2:]),
        "csv_duplicate": LABELS + "exact.png,red,1,1\n",
        "csv_empty_value": LABELS.replace("blue,9", "blue,"),
        "csv_no_file_column": LABELS.replace("file,", "image,"),
        "csv_one_column": "file\na/exact.png\n",
        "csv_ambiguous": LABELS + "x.png,red,1,1\n",
    }
    if kind == "csv_not_found":
        return [tree, "--labels", tmp_path / "no.csv"]
    if kind == "csv_ambiguous":
        for sub in ("a", "b"):
            _save(tree / sub / "x.png", np.zeros((8, 8), np.uint8))
    return [tree, "--labels", _csv(tmp_path, texts[kind])]


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("empty", "no image files under"),
        ("only_text", "(2 other file(s) ignored)"),
        ("missing_folder", "not found"),
        ("all_broken", "none of the 2 image file(s)"),
        ("csv_missing_file", "names 'ghost.png', which is not an image file in the folder"),
        ("csv_unlabelled_image", "a/exact.png (and 0 more image(s)) has no row"),
        ("csv_duplicate", "lines 2 and 9 both label a/exact.png"),
        ("csv_empty_value", "line 3: empty value in column 'size'"),
        ("csv_no_file_column", "has no file column"),
        ("csv_one_column", "has 1 column(s)"),
        ("csv_not_found", "cannot read labels"),
        ("csv_ambiguous", "matches a/x.png, b/x.png"),
        ("out_is_dir", "is a directory"),
        ("out_parent_is_file", "cannot write"),
        ("bad_suffix", "must end in .h5 or .hdf5"),
    ],
)
def test_errors_leave_nothing(
    tree: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    needle: str,
) -> None:
    folder = tmp_path / "out"
    out = folder / ("mine.png" if kind == "bad_suffix" else "mine.h5")
    if kind == "out_is_dir":
        out.mkdir(parents=True)
    if kind == "out_parent_is_file":
        folder.mkdir()
        (folder / "file").write_text("a file, not a folder")
        out = folder / "file" / "mine.h5"
    if kind != "all_broken":  # every other problem is found before any pixel is decoded

        def boom(*_: object) -> None:
            raise AssertionError("pixels read before validation")

        monkeypatch.setattr(image_import, "load_image", boom)
        monkeypatch.setattr(image_import, "is_colour", boom)
    args = [tree] if kind.startswith(("out_", "bad_")) else _case(kind, tmp_path, tree)
    code, stdout, stderr = _run(capsys, *args, "--out", out)
    assert code == 2 and stdout == "" and stderr.startswith("error: ") and stderr.count("\n") == 1
    assert needle in stderr
    left = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert left == {"out_is_dir": ["mine.h5"], "out_parent_is_file": ["file"]}.get(kind, [])  # no output, no temp file
    assert kind == "out_is_dir" or not out.exists()


def test_existing_out_needs_force(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine.h5"
    out.write_bytes(b"keep me")
    code, _, stderr = _run(capsys, tree, "--out", out)
    assert code == 2 and "already exists; pass --force" in stderr and stderr.count("\n") == 1
    assert out.read_bytes() == b"keep me"
    assert _run(capsys, tree, "--out", out, "--force")[0] == 0
    assert len(load_dataset(str(out))) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.h5", "src"]


def test_unwritable_out_folder(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: a read-only folder is still writable")
        code, _, stderr = _run(capsys, tree, "--out", locked / "mine.h5")
        assert code == 2 and stderr.startswith("error: cannot write") and stderr.count("\n") == 1
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_interrupt_removes_the_temporary_file(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = image_import.load_image

    def interrupt_second(path: Path, size: int, channels: int) -> np.ndarray:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, size, channels)

    monkeypatch.setattr(image_import, "load_image", interrupt_second)
    folder = tmp_path / "out"
    code, _, stderr = _run(capsys, tree, "--out", folder / "mine.h5")
    assert code == 130 and stderr == "error: interrupted\n" and len(calls) == 2
    assert list(folder.iterdir()) == []
