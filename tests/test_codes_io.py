"""Codes files of every format (``.npz``, ``.npy`` pairs, CSV/TSV/TXT): round trips, ``disco-metrics`` end to end on
each format (scores equal to the ``.npz`` path's), codes without factors, and every defect as one ``error:`` line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from disco.codes_io import code_source, load_codes_file
from disco.errors import ConfigError, DataError
from disco.metrics_cli import main

N = 500
SMALL = ["--num-train", "300", "--num-test", "200", "--no-progress"]


@pytest.fixture(scope="module")
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    factors = rng.integers(0, [4, 3], size=(N, 2))
    codes = np.column_stack([factors + rng.normal(scale=0.3, size=factors.shape), rng.normal(size=N)])
    return codes, factors


def _write_table(path: Path, header: list[str], columns: list[np.ndarray], delimiter: str = ",") -> Path:
    """A text table; floats written with repr so they read back bit for bit."""
    lines = [delimiter.join(header)]
    for row in zip(*columns, strict=True):
        lines.append(delimiter.join(repr(float(v)) if isinstance(v, np.floating) else str(int(v)) for v in row))
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _write(tmp_path: Path, fmt: str, codes: np.ndarray, factors: np.ndarray | None) -> list[str]:
    """Write ``codes`` (and ``factors``) in ``fmt``; returns the ``disco-metrics`` arguments that read them."""
    names = ["shape", "scale"]
    if fmt == "npz":
        extra = {} if factors is None else {"factors": factors, "factor_names": np.array(names)}
        np.savez(tmp_path / "c.npz", codes=codes, **extra)
        return ["--codes", str(tmp_path / "c.npz")]
    if fmt == "npy":
        np.save(tmp_path / "c.npy", codes)
        if factors is None:
            return ["--codes", str(tmp_path / "c.npy")]
        np.save(tmp_path / "f.npy", factors)
        return ["--codes", str(tmp_path / "c.npy"), "--factors", str(tmp_path / "f.npy")]
    ext, delimiter = {"csv": (".csv", ","), "tsv": (".tsv", "\t"), "txt": (".txt", "\t"), "csv.gz": (".csv.gz", ",")}[
        fmt
    ]
    code_cols = [f"z{d}" for d in range(codes.shape[1])]
    fcols = [] if factors is None else [factors[:, k] for k in range(factors.shape[1])]
    path = _write_table(
        tmp_path / f"c{ext}",
        # factors first: the code columns are "every other column"
        (names if factors is not None else []) + code_cols,
        [*fcols, *[codes[:, d] for d in range(codes.shape[1])]],
        delimiter,
    )
    return ["--codes", str(path)] + ([] if factors is None else ["--factor-columns", ",".join(names)])


def _kwargs(args: list[str]) -> dict[str, str]:
    flags = dict(zip(args[::2], args[1::2], strict=True))
    return {
        "factors": flags.get("--factors"),
        "factor_columns": flags.get("--factor-columns"),
        "code_columns": flags.get("--code-columns"),
    }


# --- round trips -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["npz", "npy", "csv", "tsv", "txt", "csv.gz"])
def test_round_trip(tmp_path: Path, arrays: tuple[np.ndarray, np.ndarray], fmt: str) -> None:
    codes, factors = arrays
    args = _write(tmp_path, fmt, codes, factors)
    table = load_codes_file(args[1], **_kwargs(args[2:]))
    assert table.codes.dtype == np.float64 and table.codes.shape == codes.shape
    np.testing.assert_array_equal(table.codes, codes)
    assert table.factors is not None and table.factors.dtype == np.int64
    np.testing.assert_array_equal(table.factors, factors)
    assert table.factor_names == (["factor_0", "factor_1"] if fmt == "npy" else ["shape", "scale"])
    assert table.continuous == []
    assert table.source.format == fmt.split(".")[0]


@pytest.mark.parametrize("fmt", ["npz", "npy", "csv", "tsv"])
def test_codes_only_round_trip(tmp_path: Path, arrays: tuple[np.ndarray, np.ndarray], fmt: str) -> None:
    codes, _ = arrays
    args = _write(tmp_path, fmt, codes, None)
    source = code_source(args[1])
    assert not source.has_factors
    table = load_codes_file(args[1])
    np.testing.assert_array_equal(table.codes, codes)
    assert table.factors is None and table.factor_names == []


def test_float_factors_pass_through_and_integer_floats_become_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(50, 2)).astype(np.float32)
    classes = rng.integers(0, 3, size=50)
    values = rng.uniform(-1, 1, size=50)
    # integer-valued floats -> int64 classes
    np.savez(tmp_path / "i.npz", codes=codes, factors=np.column_stack([classes, classes]).astype(np.float32))
    table = load_codes_file(tmp_path / "i.npz")
    assert table.factors is not None and table.factors.dtype == np.int64 and table.continuous == []
    np.testing.assert_array_equal(table.factors[:, 0], classes)
    np.testing.assert_array_equal(table.codes, codes.astype(np.float64))  # float32 values kept exactly
    # a continuous column -> the whole array as float64, values unchanged
    mixed = np.column_stack([classes, values])
    np.savez(tmp_path / "f.npz", codes=codes, factors=mixed, factor_names=np.array(["cls", "val"]))
    table = load_codes_file(tmp_path / "f.npz")
    assert table.factors is not None and table.factors.dtype == np.float64
    np.testing.assert_array_equal(table.factors, mixed)
    assert table.continuous == ["val"]
    np.save(tmp_path / "c.npy", codes)
    np.save(tmp_path / "v.npy", values)  # 1-D factors: one factor
    table = load_codes_file(tmp_path / "c.npy", factors=tmp_path / "v.npy")
    assert table.factors is not None and table.factors.shape == (50, 1) and table.factors.dtype == np.float64
    np.testing.assert_array_equal(table.factors[:, 0], values)
    assert table.continuous == ["factor_0"]
    path = _write_table(tmp_path / "m.csv", ["cls", "val", "z0", "z1"], [classes, values, *codes.astype(np.float64).T])
    table = load_codes_file(path, factor_columns="cls,val")
    assert table.factors is not None and table.factors.dtype == np.float64 and table.continuous == ["val"]
    np.testing.assert_array_equal(table.factors, mixed)
    table = load_codes_file(path, factor_columns=["cls"], code_columns="z1")
    assert table.factors is not None and table.factors.dtype == np.int64
    assert table.code_names == ["z1"] and table.codes.shape == (50, 1)


def test_text_details_one_dimensional_codes_and_tab_detection(tmp_path: Path) -> None:
    # .txt with commas, a BOM, quoted header, blank lines, CRLF, whitespace around values
    path = tmp_path / "c.txt"
    path.write_bytes('\ufeff"a", z\r\n0, 0.5\r\n\r\n1,1.5\r\n1, 2.5\r\n'.encode())
    table = load_codes_file(path, factor_columns="a")
    np.testing.assert_array_equal(table.codes[:, 0], [0.5, 1.5, 2.5])
    np.testing.assert_array_equal(table.factors, [[0], [1], [1]])  # type: ignore[arg-type]
    assert table.factor_names == ["a"] and table.code_names == ["z"]
    path.write_text("a\tz\n0\t0.5\n1\t1.5\n")
    assert load_codes_file(path, factor_columns="a").code_names == ["z"]
    np.save(tmp_path / "one.npy", np.arange(5.0))  # 1-D codes: one code dimension
    assert load_codes_file(tmp_path / "one.npy").codes.shape == (5, 1)


# --- the CLI on every format ---------------------------------------------------------------------------------------


def _report(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def npz_scores(tmp_path_factory: pytest.TempPathFactory, arrays: tuple[np.ndarray, np.ndarray]) -> dict:
    tmp = tmp_path_factory.mktemp("ref")
    codes, factors = arrays
    args = _write(tmp, "npz", codes, factors)
    assert main([*args, "--metrics", "mig,sap", *SMALL, "--out", str(tmp / "r")]) == 0
    return _report(tmp / "r")


@pytest.mark.parametrize("fmt", ["npy", "csv", "tsv", "txt"])
def test_cli_scores_equal_the_npz_path(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arrays: tuple[np.ndarray, np.ndarray],
    npz_scores: dict,
    fmt: str,
) -> None:
    codes, factors = arrays
    out = tmp_path / "r"
    rc = main([*_write(tmp_path, fmt, codes, factors), "--metrics", "mig,sap", *SMALL, "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    report = _report(out)
    for name in ("mig", "sap"):
        assert report["metrics"][name]["score"] == npz_scores["metrics"][name]["score"]
    np.testing.assert_array_equal(
        report["metrics"]["mig"]["details"]["mi_matrix"], npz_scores["metrics"]["mig"]["details"]["mi_matrix"]
    )
    assert report["codes_format"] == fmt and report["code_dim"] == 3
    assert report["samples"]["observational_samples"] == N
    assert report["factor_names"] == (["factor_0", "factor_1"] if fmt == "npy" else ["shape", "scale"])
    if fmt == "npy":
        assert report["factors"].endswith("f.npy")
    else:
        assert report["code_columns"] == ["z0", "z1", "z2"]


@pytest.mark.parametrize("fmt", ["npy", "csv", "npz"])
def test_cli_codes_only_metrics_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arrays: tuple[np.ndarray, np.ndarray], fmt: str
) -> None:
    codes, _ = arrays
    out = tmp_path / "r"
    rc = main([*_write(tmp_path, fmt, codes, None), "--metrics", "all", *SMALL, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    report = _report(out)
    assert sorted(report["metrics"]) == ["activity", "unsupervised"]
    assert "skipped mig: needs factor labels" in err
    assert "skipped augmentation_activity: augments images" in err
    assert set(report["skipped"]) >= {"mig", "dci", "sap", "factor_vae", "augmentation_activity"}
    assert report["factor_names"] == []


def test_cli_metrics_all_with_factors_skips_what_needs_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arrays: tuple[np.ndarray, np.ndarray]
) -> None:
    codes, factors = arrays
    out = tmp_path / "r"
    args = [*_write(tmp_path, "npz", codes, factors), "--metrics", "all", *SMALL, "--set", "probes.num_train=[10,100]"]
    rc = main([*args, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    report = _report(out)
    assert {"mig", "sap", "dci", "activity", "unsupervised"} <= set(report["metrics"])
    assert not {"factor_vae", "beta_vae", "augmentation_activity", "mig_subspace"} & set(report["metrics"])
    assert "skipped factor_vae" in err


def test_cli_refuses_factor_metric_without_factors_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file is garbage, yet the refusal is about the missing factors: it comes before the data is read."""
    (tmp_path / "c.npy").write_bytes(b"not an array at all")
    out = tmp_path / "r"
    rc = main(["--codes", str(tmp_path / "c.npy"), "--metrics", "mig,activity", "--out", str(out)])
    _assert_clean_failure(capsys, rc, out, "need factor labels, which")
    (tmp_path / "c.csv").write_text("a,b\n1,x\n")
    rc = main(["--codes", str(tmp_path / "c.csv"), "--metrics", "sap", "--out", str(out)])
    _assert_clean_failure(capsys, rc, out, "--factor-columns a,b")


# --- every defect: one line, exit 2, no report ---------------------------------------------------------------------


def _assert_clean_failure(capsys: pytest.CaptureFixture[str], rc: int, out: Path, match: str) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("error: ") and "\n" not in err, err
    assert match in err, err
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    return err


def _good_csv(tmp_path: Path) -> Path:
    return _write_table(tmp_path / "c.csv", ["a", "z0", "z1"], [np.arange(6) % 2, np.arange(6.0), np.arange(6.0) ** 2])


def _case(tmp_path: Path, case: str) -> tuple[list[str], str, str | None]:
    """Arguments that trigger ``case``, the message fragment expected, and the file the message must name."""
    rng = np.random.default_rng(0)
    codes, factors = rng.normal(size=(20, 3)), rng.integers(0, 3, size=(20, 2))
    c_npy, f_npy, npz = tmp_path / "c.npy", tmp_path / "f.npy", tmp_path / "c.npz"
    np.save(c_npy, codes)
    np.save(f_npy, factors)
    np.savez(npz, codes=codes, factors=factors)
    csv = _good_csv(tmp_path)
    pair = ["--codes", str(c_npy), "--factors", str(f_npy)]
    if case == "missing_codes":
        return ["--codes", str(tmp_path / "nope.csv")], "does not exist; check the path", "nope.csv"
    if case == "missing_factors":
        return ["--codes", str(c_npy), "--factors", str(tmp_path / "nof.npy")], "does not exist", "nof.npy"
    if case == "unknown_extension":
        (tmp_path / "c.parquet").write_bytes(b"PAR1")
        return ["--codes", str(tmp_path / "c.parquet")], "unknown extension '.parquet'; use .npz", "c.parquet"
    if case == "rows_npy":
        np.save(f_npy, factors[:19])
        return pair, "holds 20 codes but", "f.npy holds 19 factor rows"
    if case == "rows_npz":
        np.savez(npz, codes=codes, factors=factors[:17])
        return ["--codes", str(npz)], "holds 20 codes but 17 factor rows", "c.npz"
    if case == "nan_npy":
        codes[[4, 9, 11], 1] = np.nan
        np.save(c_npy, codes)
        return pair, "NaN or infinite values in 3 of 20 rows (first: row 4", "c.npy"
    if case == "inf_csv":
        csv.write_text("a,z0,z1\n0,1,2\n1,inf,3\n0,2,-inf\n1,3,4\n")
        return ["--codes", str(csv), "--factor-columns", "a"], "in 2 of 4 rows (first: line 3, column 'z0')", "c.csv"
    if case == "nan_factors_csv":
        csv.write_text("a,z0,z1\n0,1,2\nnan,2,3\n1,3,4\n")
        return ["--codes", str(csv), "--factor-columns", "a"], "factors in", "line 3, column 'a'"
    if case == "non_numeric":
        csv.write_text("a,z0,z1\n0,1,2\n1,2,3\n0,two,4\n")
        return ["--codes", str(csv), "--factor-columns", "a"], "column 'z0' of", "value 'two' at line 4"
    if case == "unknown_column":
        return ["--codes", str(csv), "--factor-columns", "a,b"], "names b, which", "its columns are a, z0, z1"
    if case == "unknown_code_column":
        return ["--codes", str(csv), "--factor-columns", "a", "--code-columns", "z9"], "--code-columns names z9", None
    if case == "overlap_columns":
        args = ["--codes", str(csv), "--factor-columns", "a", "--code-columns", "a,z0"]
        return args, "in both --code-columns and --factor-columns", None
    if case == "no_code_columns":
        csv.write_text("a,b\n0,1\n1,0\n")
        return ["--codes", str(csv), "--factor-columns", "a,b"], "has no code columns", "c.csv"
    if case == "duplicate_header":
        csv.write_text("a,z0,z0\n0,1,2\n1,2,3\n")
        return ["--codes", str(csv), "--factor-columns", "a"], "names column 'z0' twice (columns 2 and 3)", "c.csv"
    if case == "empty_header_name":
        csv.write_text("a,,z1\n0,1,2\n1,2,3\n")
        return ["--codes", str(csv), "--factor-columns", "a"], "column 2 of the header", "c.csv"
    if case == "empty_file":
        csv.write_text("")
        return ["--codes", str(csv), "--factor-columns", "a"], "is empty; write a header row", "c.csv"
    if case == "header_only":
        csv.write_text("a,z0,z1\n\n")
        return ["--codes", str(csv), "--factor-columns", "a"], "has a header but no data rows", "c.csv"
    if case == "ragged":
        csv.write_text("a,z0,z1\n0,1,2\n1,2\n0,3,4\n")
        return ["--codes", str(csv), "--factor-columns", "a"], "line 3 of", "has 2 fields but the header has 3"
    if case == "object_npy":
        np.save(c_npy, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
        return pair, "pickled (object) array, which is refused", "c.npy"
    if case == "object_npz":
        np.savez(npz, codes=np.array([[1.0, "a"]], dtype=object), factors=factors)
        return ["--codes", str(npz)], "pickled (object) array, which is refused", "c.npz"
    if case == "string_npy":
        np.save(c_npy, np.array([["a", "b"], ["c", "d"]]))
        return pair, "hold strings, not numbers", "c.npy"
    if case == "codes_3d":
        np.save(c_npy, codes.reshape(20, 3, 1))
        return pair, "have shape (20, 3, 1); expected (N, D) or (N,)", "c.npy"
    if case == "factors_3d":
        np.save(f_npy, factors.reshape(20, 2, 1))
        return pair, "have shape (20, 2, 1); expected (N, K)", "f.npy"
    if case == "codes_0d":
        np.save(c_npy, np.float64(3.0))
        return pair, "have shape (); expected (N, D)", "c.npy"
    if case == "constant_codes":
        np.save(c_npy, np.ones((20, 3)))
        return pair, "are constant over all 20 rows", "c.npy"
    if case == "corrupt_npz":
        npz.write_bytes(b"PK\x03\x04garbage")
        return ["--codes", str(npz)], "cannot read codes file", "c.npz"
    if case == "npz_without_codes":
        np.savez(npz, z=codes, factors=factors)
        return ["--codes", str(npz)], "lacks array(s) codes (it holds factors, z)", "c.npz"
    if case == "factors_with_npz":
        return ["--codes", str(npz), "--factors", str(f_npy)], "--factors goes with .npy codes only", "c.npz"
    if case == "factors_with_csv":
        return ["--codes", str(csv), "--factors", str(f_npy)], "--factor-columns", "c.csv"
    if case == "columns_with_npy":
        return [*pair, "--factor-columns", "a"], "--factor-columns only applies to .csv/.tsv/.txt", "c.npy"
    if case == "factors_not_npy":
        return ["--codes", str(c_npy), "--factors", str(csv)], "must be an .npy file", "c.csv"
    if case == "columns_with_dataset":
        return ["--dataset", "dsprites", "--factor-columns", "a"], "--factor-columns goes with --codes", None
    raise AssertionError(case)


ERROR_CASES = [
    "missing_codes",
    "missing_factors",
    "unknown_extension",
    "rows_npy",
    "rows_npz",
    "nan_npy",
    "inf_csv",
    "nan_factors_csv",
    "non_numeric",
    "unknown_column",
    "unknown_code_column",
    "overlap_columns",
    "no_code_columns",
    "duplicate_header",
    "empty_header_name",
    "empty_file",
    "header_only",
    "ragged",
    "object_npy",
    "object_npz",
    "string_npy",
    "codes_3d",
    "factors_3d",
    "codes_0d",
    "constant_codes",
    "corrupt_npz",
    "npz_without_codes",
    "factors_with_npz",
    "factors_with_csv",
    "columns_with_npy",
    "factors_not_npy",
    "columns_with_dataset",
]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_bad_codes_file_is_one_line_exit_2_and_no_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    args, match, names = _case(tmp_path, case)
    out = tmp_path / "report"
    rc = main([*args, "--metrics", "mig", "--out", str(out)])
    err = _assert_clean_failure(capsys, rc, out, match)
    if names is not None:
        assert names in err, err


@pytest.mark.parametrize("case", ["rows_npz", "nan_npy", "non_numeric", "ragged", "object_npy", "unknown_column"])
def test_library_raises_typed_errors(tmp_path: Path, case: str) -> None:
    args, match, _ = _case(tmp_path, case)
    with pytest.raises((DataError, ConfigError), match=None) as info:
        load_codes_file(args[1], **_kwargs(args[2:]))
    assert match in str(info.value) and "\n" not in str(info.value)


def test_cli_continuous_factors_select_the_regression_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from metrics.continuous import mig_regression

    rng = np.random.default_rng(0)
    f = rng.uniform(size=(600, 2))
    z = np.column_stack([f[:, 1], f[:, 0], rng.normal(size=600)]) + 0.01 * rng.normal(size=(600, 3))
    cols = [f[:, 0], f[:, 1], z[:, 0], z[:, 1], z[:, 2]]
    path = _write_table(tmp_path / "c.csv", ["angle", "speed", "z0", "z1", "z2"], cols)
    out = tmp_path / "r"
    argv = ["--codes", str(path), "--factor-columns", "angle,speed", "--metrics", "all", "--num-train", "300"]
    extra = ["--set", "unsupervised.num_train=600", "--set", "probes.num_train=300", "--set", "dci.num_train=300"]
    assert main([*argv, "--num-test", "200", *extra, "--out", str(out)]) == 0
    report = _report(out)
    assert set(report["metrics"]) == {"mig", "dci", "probes", "unsupervised", "activity"}
    assert "these factors are continuous" in report["skipped"]["sap"]
    assert report["metrics"]["mig"]["settings"]["factors"] == "continuous"
    direct = mig_regression(z, f, num_train=300)
    assert report["metrics"]["mig"]["score"] == pytest.approx(direct.score, abs=1e-12)
    assert report["metrics"]["mig"]["details"]["best_latent"] == [1, 0]
    capsys.readouterr()
    refused = tmp_path / "refused"
    rc = main(["--codes", str(path), "--factor-columns", "angle,speed", "--metrics", "mig,sap", "--out", str(refused)])
    _assert_clean_failure(
        capsys, rc, refused, "asks for sap, which needs factor classes, and these factors are continuous"
    )
