"""A parsed-roster cache so an unchanged roster skips the YAML parser.

ruamel.yaml's import and pure-Python parse cost far more than the rest of a command. The
cache holds only the *parsed document* of a roster that was valid, as plain JSON, next to
the exact text it came from (compared whole: no hash to collide, and no hashlib import);
validation still runs on every load against the current environment. Writes are atomic and
each entry carries its own source, so concurrent writers can only ever store a correct
entry for some version of the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mosaic.fsutil import atomic_write

FILE = "roster-cache.json"


def get(cache_dir: Path, data: bytes) -> Any:
    """The cached plain document for exactly these bytes, or None."""
    try:
        entry = json.loads((cache_dir / FILE).read_bytes())
    except (OSError, ValueError):
        return None
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError:
        return None  # never valid, so never cached
    if not isinstance(entry, dict) or entry.get("source") != source:
        return None
    return entry.get("doc")


def plain(doc: Any) -> Any:
    """The document as JSON types, or raise ValueError when it holds anything else
    (timestamps, non-string keys, custom scalar types) that JSON would change."""
    if doc is None or type(doc) in (str, bool):
        return doc
    if isinstance(doc, int) and not isinstance(doc, bool):
        if type(doc) is not int and type(doc).__name__ != "ScalarInt":
            raise ValueError(f"unsupported int type {type(doc).__name__}")
        return int(doc)
    if isinstance(doc, str):
        return str(doc)
    if isinstance(doc, dict):
        out = {}
        for key, value in doc.items():
            if type(key) is not str and not isinstance(key, str):
                raise ValueError("non-string key")
            out[str(key)] = plain(value)
        return out
    if isinstance(doc, list):
        return [plain(v) for v in doc]
    raise ValueError(f"unsupported type {type(doc).__name__}")


def put(cache_dir: Path, data: bytes, doc: Any) -> None:
    """Best effort: a cache that cannot be written only costs speed."""
    try:
        entry = {"source": data.decode("utf-8"), "doc": plain(doc)}
        atomic_write(cache_dir / FILE, json.dumps(entry).encode())
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        pass
