"""The SQLite extension for the click-free fast paths, without `functools`.

CPython's `_sqlite3` imports `functools` when it is loaded, only to fetch `lru_cache` for
each connection's statement cache; `functools` pulls in `collections`, and together they
cost about a quarter of a bare interpreter's start-up (4.4 of 15.1 ms here), more than the
queue path's own work (measured with `python -X importtime`; `bench/run.py outbox`). So,
when `functools` is not loaded yet, the extension is loaded against a stand-in module whose
`lru_cache` is the same C cache `functools.lru_cache` wraps (`_functools._lru_cache_wrapper`),
and the stand-in is taken out of `sys.modules` at once: any later `import functools` gets
the real one. The statement cache behaves as with the real decorator; only `cache_info()` would
return a plain tuple, and nothing calls it.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # `typing` itself imports functools
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

if "functools" in sys.modules or "_sqlite3" in sys.modules:
    import _sqlite3 as sqlite3
else:
    import _functools  # type: ignore[import-not-found]  # the C half of functools, no stubs

    def _lru_cache(maxsize: int | None = 128, typed: bool = False) -> Callable[..., Any]:
        def wrap(function: Callable[..., Any]) -> Any:
            return _functools._lru_cache_wrapper(function, maxsize, typed, tuple)

        return wrap

    _standin = type(sys)("functools")
    _standin.lru_cache = _lru_cache  # type: ignore[attr-defined]
    sys.modules["functools"] = _standin
    try:
        import _sqlite3 as sqlite3
    finally:
        if sys.modules.get("functools") is _standin:
            del sys.modules["functools"]

__all__ = ["sqlite3"]
