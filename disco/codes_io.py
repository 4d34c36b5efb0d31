"""Read precomputed codes (and optionally their ground-truth factors) from the common array and table files.

Formats, chosen by the file's extension (case-insensitive):

- ``.npz``: arrays ``codes`` (N, D), optional ``factors`` (N, K) and optional ``factor_names`` (K,) strings.
- ``.npy``: the codes alone; their factors come from a second ``.npy`` (``factors=``, ``--factors``) with one row
  per code row. Pickled (object) arrays are refused: files are read with ``allow_pickle=False``.
- ``.csv``, ``.tsv``, ``.txt`` (optionally ``.gz``-compressed): UTF-8 text with a header row naming the columns.
  ``.csv`` is comma-separated, ``.tsv`` tab-separated, and ``.txt`` tab-separated when its header holds a tab, else
  comma-separated. ``factor_columns`` names the factor columns; every other column is a code column unless
  ``code_columns`` picks them (the remaining columns are then ignored). Blank lines are skipped.

Codes come back as float64 ``(N, D)``; a 1-D array ``(N,)`` is one code dimension (or one factor). Factors are
class indices or values: a factor array whose columns all hold integers (integer dtypes, or floats with integer
values) comes back as int64; when any column holds non-integer floats the whole array comes back as float64, values
unchanged (those columns are the ``continuous`` factors; integer columns keep their integer values). Factor names come
from the header, ``factor_names``, or are ``factor_0, factor_1, ...``. Without factors only the codes-only metrics
apply (:data:`metrics.suite.CODES_ONLY`).

Every defect (missing file, unknown extension, unreadable or pickled file, ragged or non-numeric rows, duplicate or
unknown columns, NaN/inf values, mismatched row counts, wrong dimensionality) is one :class:`DataError` or
:class:`ConfigError` line naming the file and the fix. Row numbers in messages are 1-based file lines for text tables
(the header is line 1) and 0-based array rows for ``.npy``/``.npz``.
"""

from __future__ import annotations

import csv
import gzip
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from disco.errors import ConfigError, DataError

#: Extensions of text tables and their delimiter (None: tab when the header holds one, else comma).
TEXT_FORMATS: dict[str, str | None] = {".csv": ",", ".tsv": "\t", ".txt": None}
FORMATS = (".npz", ".npy", *TEXT_FORMATS)
_INT64_LIMIT = 2.0**63


@dataclass(frozen=True)
class CodeSource:
    """A codes file and how to read it, checked against the flags without reading the data (see :func:`code_source`).

    ``kind`` is ``"npz"``, ``"npy"`` or ``"table"``; ``has_factors`` says whether it will yield factors (for an
    ``.npz``: whether it holds a ``factors`` array, read from the archive's index only)."""

    path: Path
    kind: str
    has_factors: bool
    factors_path: Path | None = None
    delimiter: str | None = None
    factor_columns: tuple[str, ...] | None = None
    code_columns: tuple[str, ...] | None = None

    @property
    def format(self) -> str:
        """The format's name: npz, npy, csv, tsv or txt."""
        return _suffix(self.path).lstrip(".")

    def factors_hint(self) -> str:
        """How to give this kind of file its factors (for error messages)."""
        if self.kind == "npy":
            return "pass --factors factors.npy (one row per code row)"
        if self.kind == "table":
            return "name the factor columns with --factor-columns a,b"
        return "save a 'factors' (N, K) array in it"


@dataclass
class CodesTable:
    """Codes and (optional) factors read from a file."""

    codes: np.ndarray
    factors: np.ndarray | None
    factor_names: list[str]
    source: CodeSource
    code_names: list[str] | None = None
    continuous: list[str] = field(default_factory=list)
    names_given: bool = False
    stored_factor_dtype: str | None = None

    def meta(self) -> dict[str, Any]:
        """What the report records about the input."""
        out: dict[str, Any] = {"codes": str(self.source.path), "codes_format": self.source.format}
        if self.source.factors_path is not None:
            out["factors"] = str(self.source.factors_path)
        if self.code_names is not None:
            out["code_columns"] = list(self.code_names)
        out["code_dim"] = int(self.codes.shape[1])
        out["factor_names"] = list(self.factor_names)
        if self.continuous:
            out["continuous_factors"] = list(self.continuous)
        return out


def _suffix(path: Path) -> str:
    """The format extension of ``path``: ``.csv`` for ``x.csv`` and ``x.csv.gz``."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz" and suffixes[-2] in TEXT_FORMATS:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


def _columns(text: str | Sequence[str] | None, flag: str) -> tuple[str, ...] | None:
    """``"a,b"`` (or a sequence) as a tuple of names, refusing empty and repeated names."""
    if text is None:
        return None
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else [str(s).strip() for s in text]
    if not items or any(not s for s in items):
        raise ConfigError(f"{flag} {','.join(items)!r} holds an empty column name; write {flag} a,b,c")
    dup = sorted({s for s in items if items.count(s) > 1})
    if dup:
        raise ConfigError(f"{flag} names column(s) {', '.join(dup)} more than once; name each column once")
    return tuple(items)


def code_source(
    codes: str | Path,
    *,
    factors: str | Path | None = None,
    factor_columns: str | Sequence[str] | None = None,
    code_columns: str | Sequence[str] | None = None,
) -> CodeSource:
    """Check a codes file's path and extension against the options that go with its format (``factors`` only with
    ``.npy``; ``factor_columns``/``code_columns`` only with text tables), without reading the data."""
    path = Path(codes)
    ext = _suffix(path)
    if ext not in FORMATS:
        raise DataError(
            f"codes file {path} has an unknown extension {ext or '(none)'!r}; use .npz (codes, factors[, factor_names]), "
            ".npy (with --factors factors.npy), or .csv/.tsv/.txt with a header row"
        )
    if not path.is_file():
        raise DataError(f"codes file {path} does not exist; check the path")
    fcols = _columns(factor_columns, "--factor-columns")
    ccols = _columns(code_columns, "--code-columns")
    if ext not in TEXT_FORMATS and (fcols is not None or ccols is not None):
        flag = "--factor-columns" if fcols is not None else "--code-columns"
        raise ConfigError(f"{flag} only applies to .csv/.tsv/.txt codes, not to {path.name}; drop it")
    if factors is not None and ext != ".npy":
        where = "name them with --factor-columns" if ext in TEXT_FORMATS else "it holds its own 'factors' array"
        raise ConfigError(f"--factors goes with .npy codes only, not with {path.name} ({where}); drop --factors")
    if ext == ".npy":
        fpath = None if factors is None else Path(factors)
        if fpath is not None:
            if fpath.suffix.lower() != ".npy":
                raise ConfigError(f"--factors {fpath} must be an .npy file of shape (N, K) or (N,)")
            if not fpath.is_file():
                raise DataError(f"factors file {fpath} does not exist; check the path")
        return CodeSource(path, "npy", has_factors=fpath is not None, factors_path=fpath)
    if ext == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                if not isinstance(npz, np.lib.npyio.NpzFile):
                    raise ValueError("not an .npz archive")
                files = set(npz.files)
        except Exception as err:
            raise _unreadable(path, err, "np.savez(path, codes=..., factors=...)") from err
        if "codes" not in files:
            raise DataError(
                f"codes file {path} lacks array(s) codes (it holds {', '.join(sorted(files)) or 'nothing'}); "
                "save codes=(N, D) [, factors=(N, K), factor_names=(K,)]"
            )
        return CodeSource(path, "npz", has_factors="factors" in files)
    if ccols is not None and fcols is not None and set(ccols) & set(fcols):
        both = ", ".join(c for c in ccols if c in fcols)
        raise ConfigError(f"column(s) {both} are in both --code-columns and --factor-columns; put each in one")
    return CodeSource(
        path,
        "table",
        has_factors=fcols is not None,
        delimiter=TEXT_FORMATS[ext],
        factor_columns=fcols,
        code_columns=ccols,
    )


def _unreadable(path: Path, err: BaseException, how: str) -> DataError:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, ValueError) and "allow_pickle" in text:
        return DataError(
            f"{path} holds a pickled (object) array, which is refused (files load with allow_pickle=False); "
            f"save numeric arrays with {how}"
        )
    return DataError(f"cannot read codes file {path} ({type(err).__name__}: {text[:120]}); save it with {how}")


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except Exception as err:
        raise _unreadable(path, err, "np.save(path, array)") from err
    if not isinstance(arr, np.ndarray):  # an .npz archive named .npy
        if hasattr(arr, "close"):
            arr.close()
        raise DataError(f"{path} is an .npz archive, not an .npy array; rename it to .npz")
    return arr


def _check_numeric(arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind not in "biuf":
        kind = "strings" if arr.dtype.kind in "SU" else f"dtype {arr.dtype}"
        raise DataError(f"{what} hold {kind}, not numbers; save a numeric (int or float) array")


def _as_2d(arr: np.ndarray, what: str, shape_name: str) -> np.ndarray:
    """(N, X) from (N, X) or (N,) (one column); any other dimensionality, or an empty array, is refused."""
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"{what} have shape {arr.shape}; expected {shape_name} or (N,) for a single column")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{what} are empty (shape {arr.shape}); expected {shape_name} with N >= 1 rows")
    return arr


def _where(rows: np.ndarray | None, i: int) -> str:
    return f"row {i} (counting from 0)" if rows is None else f"line {int(rows[i])}"


def _check_finite(
    arr: np.ndarray, what: str, rows: np.ndarray | None = None, names: Sequence[str] | None = None
) -> None:
    """NaN/inf in ``arr`` (float (N, X)) as one line with the number of rows and the first one."""
    if arr.dtype.kind != "f":
        return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    bad_rows = bad.any(axis=1)
    first = int(np.argmax(bad_rows))
    col = int(np.argmax(bad[first]))
    column = f"column {names[col]!r}" if names is not None else f"column {col}"
    raise DataError(
        f"{what} hold NaN or infinite values in {int(bad_rows.sum())} of {arr.shape[0]} rows (first: "
        f"{_where(rows, first)}, {column}); drop or fix those rows"
    )


def _codes(
    arr: np.ndarray, what: str, rows: np.ndarray | None = None, names: Sequence[str] | None = None
) -> np.ndarray:
    _check_numeric(arr, what)
    arr = _as_2d(arr, what, "(N, D)").astype(np.float64)
    _check_finite(arr, what, rows, names)
    if arr.shape[0] > 1 and np.all(arr.max(axis=0) == arr.min(axis=0)):
        raise DataError(
            f"{what} are constant over all {arr.shape[0]} rows; save the encoder's codes, one row per sample"
        )
    return arr


def _factors(
    arr: np.ndarray,
    what: str,
    names: Sequence[str],
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """int64 factors when every column holds integers, else float64 (values unchanged); and the continuous columns."""
    _check_numeric(arr, what)
    arr = _as_2d(arr, what, "(N, K)")
    if arr.dtype.kind in "biu":
        return arr.astype(np.int64), []
    arr = arr.astype(np.float64)
    _check_finite(arr, what, rows, names)
    integral = np.all(arr == np.round(arr), axis=0) & np.all(np.abs(arr) < _INT64_LIMIT, axis=0)
    if integral.all():
        return arr.astype(np.int64), []
    return arr, [str(names[int(k)]) for k in np.flatnonzero(~integral)]


def _default_names(k: int) -> list[str]:
    return [f"factor_{j}" for j in range(k)]


def _width(arr: np.ndarray) -> int:
    return 1 if arr.ndim == 1 else int(arr.shape[1])


def _mismatch(path: Path, n_codes: int, n_factors: int, factors_path: Path | None = None) -> DataError:
    where = "" if factors_path is None else f" {factors_path} holds"
    return DataError(
        f"{path} holds {n_codes} codes but{where} {n_factors} factor rows; save one factor row per code row"
    )


def _read_npz(src: CodeSource) -> CodesTable:
    path = src.path
    how = "np.savez(path, codes=..., factors=...)"
    try:
        with np.load(path, allow_pickle=False) as npz:
            codes_raw = np.asarray(npz["codes"])
            factors_raw = np.asarray(npz["factors"]) if "factors" in npz.files else None
            names_raw = np.asarray(npz["factor_names"]) if "factor_names" in npz.files else None
    except Exception as err:  # zipfile/pickle/value errors of a corrupt file
        raise _unreadable(path, err, how) from err
    codes = _codes(codes_raw, f"the 'codes' in {path}")
    if factors_raw is None:
        return CodesTable(codes, None, [], src)
    if factors_raw.ndim >= 1 and factors_raw.shape[0] != codes.shape[0]:
        raise _mismatch(path, codes.shape[0], factors_raw.shape[0])
    _check_numeric(factors_raw, f"the 'factors' in {path}")
    names = _default_names(_as_2d(factors_raw, f"the 'factors' in {path}", "(N, K)").shape[1])
    if names_raw is not None:
        if names_raw.dtype.kind not in "SU" or names_raw.ndim != 1:
            raise DataError(
                f"'factor_names' in {path} must be a 1-D array of strings, got {names_raw.dtype} {names_raw.shape}"
            )
        names = [str(s) for s in names_raw.tolist()]
        if len(names) != _width(factors_raw):
            raise DataError(
                f"{path} names {len(names)} factors but 'factors' has {_width(factors_raw)} columns; give one name each"
            )
        dup = sorted({s for s in names if names.count(s) > 1})
        if dup:
            raise DataError(f"'factor_names' in {path} repeats {', '.join(dup)}; factor names must be unique")
    factors, continuous = _factors(factors_raw, f"the 'factors' in {path}", names)
    return CodesTable(
        codes,
        factors,
        names,
        src,
        continuous=continuous,
        names_given=names_raw is not None,
        stored_factor_dtype=str(factors_raw.dtype),
    )


def _read_npy(src: CodeSource) -> CodesTable:
    codes = _codes(_load_npy(src.path), f"the codes in {src.path}")
    if src.factors_path is None:
        return CodesTable(codes, None, [], src)
    raw = _load_npy(src.factors_path)
    if raw.ndim >= 1 and raw.shape[0] != codes.shape[0]:
        raise _mismatch(src.path, codes.shape[0], raw.shape[0], src.factors_path)
    what = f"the factors in {src.factors_path}"
    _check_numeric(raw, what)
    names = _default_names(_as_2d(raw, what, "(N, K)").shape[1])
    factors, continuous = _factors(raw, what, names)
    return CodesTable(codes, factors, names, src, continuous=continuous, stored_factor_dtype=str(raw.dtype))


def _open_text(path: Path) -> Any:
    opener: Any = gzip.open if path.suffix.lower() == ".gz" else open
    return opener(path, "rt", encoding="utf-8-sig", newline="")


def _read_rows(src: CodeSource) -> tuple[list[str], list[list[str]], np.ndarray]:
    """Header, data rows (blank lines skipped) and each row's 1-based file line."""
    path = src.path
    rows: list[list[str]] = []
    lines: list[int] = []
    line = 0
    header: list[str] | None = None
    try:
        with _open_text(path) as stream:
            leading: list[str] = []
            first = next(stream, "")
            while first and not first.strip():
                leading.append(first)
                first = next(stream, "")
            delimiter = src.delimiter or ("\t" if "\t" in first else ",")
            reader = csv.reader(itertools.chain(leading, [first], stream), delimiter=delimiter)
            for record in reader:
                line = reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if header is None:
                    header = [h.strip() for h in record]
                    continue
                if len(record) != len(header):
                    raise DataError(
                        f"line {line} of {path} has {len(record)} fields but the header has {len(header)}; give "
                        "every row one value per column"
                    )
                rows.append(record)
                lines.append(line)
    except DataError:
        raise
    except UnicodeDecodeError as err:
        raise DataError(
            f"cannot read {path} as UTF-8 text ({err.reason} near line {line + 1}); save it as UTF-8"
        ) from err
    except csv.Error as err:
        raise DataError(f"cannot parse {path} near line {line + 1} ({err}); check its quoting and delimiter") from err
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise DataError(f"cannot read codes file {path} ({type(err).__name__}: {str(err)[:120]})") from err
    if header is None:
        raise DataError(f"codes file {path} is empty; write a header row naming the columns, then one row per sample")
    for j, name in enumerate(header):
        if not name:
            raise DataError(f"column {j + 1} of the header of {path} has no name; name every column")
    seen: dict[str, int] = {}
    for j, name in enumerate(header):
        if name in seen:
            raise DataError(
                f"the header of {path} names column {name!r} twice (columns {seen[name] + 1} and {j + 1}); "
                "column names must be unique"
            )
        seen[name] = j
    if not rows:
        raise DataError(f"codes file {path} has a header but no data rows; add one row per sample")
    return header, rows, np.asarray(lines, dtype=np.int64)


def _column(rows: list[list[str]], j: int, name: str, path: Path, lines: np.ndarray) -> np.ndarray:
    values = [r[j] for r in rows]
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        for i, v in enumerate(values):
            try:
                float(v)
            except ValueError:
                shown = v.strip()[:40]
                raise DataError(
                    f"column {name!r} of {path} holds a non-numeric value {shown!r} at line {int(lines[i])}; codes and "
                    "factors must be numbers (fix the value, or leave the column out with --code-columns)"
                ) from None
        raise


def _read_table(src: CodeSource) -> CodesTable:
    path = src.path
    header, rows, lines = _read_rows(src)
    available = ", ".join(header)
    for flag, wanted in (("--factor-columns", src.factor_columns), ("--code-columns", src.code_columns)):
        missing = [c for c in wanted or () if c not in header]
        if missing:
            raise ConfigError(f"{flag} names {', '.join(missing)}, which {path} lacks; its columns are {available}")
    fcols = list(src.factor_columns or ())
    ccols = list(src.code_columns) if src.code_columns is not None else [c for c in header if c not in fcols]
    if not ccols:
        raise ConfigError(
            f"{path} has no code columns besides --factor-columns {','.join(fcols)}; its columns are {available}"
        )
    index = {name: j for j, name in enumerate(header)}
    codes_raw = np.column_stack([_column(rows, index[c], c, path, lines) for c in ccols])
    codes = _codes(codes_raw, f"the codes in {path}", lines, ccols)
    if not fcols:
        return CodesTable(codes, None, [], src, code_names=ccols)
    factors_raw = np.column_stack([_column(rows, index[c], c, path, lines) for c in fcols])
    factors, continuous = _factors(factors_raw, f"the factors in {path}", fcols, lines)
    return CodesTable(codes, factors, fcols, src, code_names=ccols, continuous=continuous, names_given=True)


def read_codes(src: CodeSource) -> CodesTable:
    """Read and check the codes (and factors) of a :class:`CodeSource`."""
    reader = {"npz": _read_npz, "npy": _read_npy, "table": _read_table}[src.kind]
    return reader(src)


def load_codes_file(
    codes: str | Path,
    *,
    factors: str | Path | None = None,
    factor_columns: str | Sequence[str] | None = None,
    code_columns: str | Sequence[str] | None = None,
    require_factors: bool = False,
) -> CodesTable:
    """Codes (float64 ``(N, D)``) and factors (int64 or float64 ``(N, K)``, or None) from any supported file (see the
    module docstring); ``require_factors`` refuses a file that yields none."""
    src = code_source(codes, factors=factors, factor_columns=factor_columns, code_columns=code_columns)
    if require_factors and not src.has_factors:
        if src.kind == "npz":
            raise DataError(f"codes file {src.path} lacks array(s) factors; save codes=(N, D), factors=(N, K)")
        raise ConfigError(f"{src.path} yields no factors; {src.factors_hint()}")
    return read_codes(src)
