"""Event files: CSV (comma or semicolon), Parquet and JSONL with the event columns."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from vigil.errors import VigilError

FORMATS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise VigilError(f"{path}: unknown event file type {path.suffix!r}; use .csv, .parquet or .jsonl")
    return fmt


def read_events(path: str | Path) -> pd.DataFrame:
    """Load an event file as-is (columns untouched); validation is the schema's job."""
    path = Path(path)
    fmt = file_format(path)
    if not path.is_file():
        raise VigilError(f"{path}: no such event file")
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    with open(path, newline="") as handle:
        sample = handle.read(64 * 1024)
    try:
        sep = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        sep = ","
    return pd.read_csv(path, sep=sep)


def write_events(frame: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    fmt = file_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, index=False)
    return path
