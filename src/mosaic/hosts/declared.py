"""Whether a roster declares hosts, asked before (or instead of) loading it.

`events --json` of a one-machine fleet is answered without click and without the roster
(`cli.quickevents`); a fleet with hosts must merge every machine's log instead. Telling them
apart must cost next to nothing on the fast path, so the roster's bytes are looked at first:
a `hosts:` key has to spell the word, unless a YAML escape in a double-quoted key spells it
(`"\\x68osts"`), so a text with neither cannot declare hosts. Otherwise the parsed-document
cache answers, or nobody but the loader can. Imports only what `rostercache` does.
"""

from __future__ import annotations


def may_declare(data: bytes) -> bool:
    """False only when this roster text cannot declare hosts."""
    return b"hosts" in data or b"\\" in data


def declares(run_dir: str, data: bytes) -> bool | None:
    """Whether the roster with exactly these bytes declares hosts; None when only loading
    it can tell (it was not loaded since it changed)."""
    if not may_declare(data):
        return False
    from mosaic.config import rostercache

    doc = rostercache.get_doc(run_dir, data)
    if not isinstance(doc, dict):
        return None
    return bool(doc.get("hosts"))
