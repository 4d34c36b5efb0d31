"""Reads the records of an offline W&B run file (``run-<id>.wandb``) without wandb's (removed) Python datastore.

The file is a LevelDB-style log: a 7-byte header (``:W&B``, magic 0xBEE1, version 0), then 32 KiB blocks of chunks with
a 7-byte header each (CRC32C: 4 bytes, length: 2 bytes little-endian, type: FULL 1 / FIRST 2 / MIDDLE 3 / LAST 4);
chunks of one record are joined and parsed as ``wandb_internal_pb2.Record``.

``run.finish()`` (wandb 0.31, offline) returns before wandb's service process has written the file out, so the readers
below first wait (:func:`wait_finished`) until the file holds the run's ``exit`` record.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7


def records(path: Path) -> Iterator[Any]:
    """Every record of the run file, in order."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            rec = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
            rec.ParseFromString(pending)
            yield rec
            pending = b""


def wait_finished(path: Path, timeout: float = 60.0) -> Path:
    """Wait until the run file holds its ``exit`` record (written after ``run.finish()`` returns); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if any(r.WhichOneof("record_type") == "exit" for r in records(path)):
                return path
        except Exception:  # a file still being written: missing header, torn last record
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} has no exit record after {timeout:.0f} s: the run did not finish")
        time.sleep(0.1)


def _finished_records(path: Path) -> Iterator[Any]:
    return records(wait_finished(path))


def _key(item: Any) -> str:
    return str(item.key) if item.key else "/".join(item.nested_key)


def run_info(path: Path) -> dict[str, Any]:
    """The run record: ``run_id``, ``project``, ``display_name`` and ``resume`` (whether ``wandb.init`` resumed)."""
    for r in _finished_records(path):
        if r.WhichOneof("record_type") == "run":
            run = r.run
            return {
                "run_id": str(run.run_id),
                "project": str(run.project),
                "display_name": str(run.display_name),
                "resume": bool(run.resume),
            }
    raise AssertionError(f"{path} holds no run record")


def history(path: Path) -> list[dict[str, Any]]:
    """The logged history rows as dicts of decoded values."""
    return [
        {_key(i): json.loads(i.value_json) for i in r.history.item}
        for r in _finished_records(path)
        if r.WhichOneof("record_type") == "history"
    ]


def config(path: Path) -> dict[str, Any]:
    """The run config (last value of every key)."""
    out: dict[str, Any] = {}
    for r in _finished_records(path):
        if r.WhichOneof("record_type") == "config":
            out.update({_key(i): json.loads(i.value_json) for i in r.config.update})
    return out


def summary(path: Path) -> dict[str, Any]:
    """The run summary (last value of every key)."""
    out: dict[str, Any] = {}
    for r in _finished_records(path):
        if r.WhichOneof("record_type") == "summary":
            out.update({_key(i): json.loads(i.value_json) for i in r.summary.update})
    return out
