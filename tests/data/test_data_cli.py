"""``disco data`` end to end: exit codes, one-line messages, no partial output."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from disco.cli import main as disco_main
from disco.data.datasets import load_dataset


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = disco_main(["data", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_make_info_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "d.h5"
    code, stdout, _ = _run(
        capsys,
        "make",
        "dsprites",
        "--out",
        str(out),
        "--subsample",
        "orientation=20",
        "--subsample",
        "pos_x=8",
        "--subsample",
        "pos_y=8",
    )
    assert code == 0 and "wrote" in stdout and out.exists()
    assert len(load_dataset(str(out))) == 3 * 6 * 2 * 4 * 4
    code, stdout, _ = _run(capsys, "info", str(out))
    assert code == 0 and "on_grid=True" in stdout and "orientation:2" in stdout
    code, stdout, _ = _run(capsys, "verify", str(out))
    assert code == 0 and stdout.startswith("ok:") and "replica image md5" in stdout
    code, _, err = _run(capsys, "make", "dsprites", "--out", str(out), "--subsample", "orientation=20")
    assert code == 2 and err.count("\n") == 1 and "--force" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["make", "dsprites", "--out", "X", "--subsample", "scale=4"], "does not divide its size 6"),
        (["make", "shapes3d", "--out", "X", "--subsample", "size=2"], "unknown factor 'size'"),
        (["make", "dsprites", "--out", "X", "--subsample", "scale"], "NAME=STEP"),
        (["info", "mnist"], "unknown dataset 'mnist'"),
        (["verify", "MISSING.h5"], "not found"),
    ],
)
def test_errors_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    args = [str(tmp_path / a) if a in ("X", "MISSING.h5") else a for a in args]
    code, _, err = _run(capsys, *args)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and needle in err
    assert list(tmp_path.iterdir()) == []


def test_unknown_dataset_to_make_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        disco_main(["data", "make", "mnist", "--out", "x.h5"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_verify_reports_wrong_checksum(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.h5"
    assert (
        _run(
            capsys,
            "make",
            "shapes3d",
            "--out",
            str(out),
            "--subsample",
            "floor_hue=10",
            "--subsample",
            "wall_hue=10",
            "--subsample",
            "object_hue=10",
            "--subsample",
            "scale=4",
            "--subsample",
            "orientation=5",
        )[0]
        == 0
    )
    with h5py.File(out, "r+") as fh:
        fh["images"][0] = np.zeros((64, 64, 3), np.uint8)
    code, _, err = _run(capsys, "verify", str(out))
    assert code == 2 and "image md5" in err and "--force" in err and err.count("\n") == 1


def test_download_offline_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from disco.data import download as dl

    monkeypatch.setitem(dl.SOURCES, "dsprites", dl.Source("http://127.0.0.1:9/x.npz", "x.npz", "0" * 32))
    code, _, err = _run(capsys, "download", "dsprites", "--dir", str(tmp_path), "--timeout", "2")
    assert code == 2 and "disco data make dsprites --out" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
