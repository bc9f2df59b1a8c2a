"""`base.quicksqlite`: the fast paths' SQLite without `functools` — and nothing else changed
for the rest of the process (a real interpreter each time: what is imported is the point)."""

from __future__ import annotations

import subprocess
import sys


def _runs_ok(code: str) -> None:
    """`code` in a fresh interpreter ends by printing ok."""
    proc = subprocess.run([sys.executable, "-c", code + "print('ok')\n"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr[-2000:]


def test_the_extension_works_and_functools_stays_the_real_one() -> None:
    code = (
        "from mosaic.base.quicksqlite import sqlite3\n"
        "import sys\n"
        "assert 'functools' not in sys.modules and 'collections' not in sys.modules\n"
        "c = sqlite3.connect(':memory:')\n"
        "c.execute('create table t (n integer)')\n"
        # More distinct statements than the statement cache holds (128): it evicts and reuses.
        "for i in range(400):\n"
        "    c.execute(f'insert into t values ({i % 200})')\n"
        "    c.execute('insert into t values (?)', (i,))\n"
        "assert c.execute('select count(*), sum(n) from t').fetchone() == (800, 39800 + 79800)\n"
        "import functools\n"
        "assert functools.reduce(lambda a, b: a + b, [1, 2, 3]) == 6\n"
        "assert functools.lru_cache(maxsize=2)(abs).cache_info().maxsize == 2\n"
    )
    _runs_ok(code)


def test_after_functools_it_is_the_plain_import() -> None:
    code = (
        "import functools, sys\n"
        "real = functools.lru_cache\n"
        "from mosaic.base.quicksqlite import sqlite3\n"
        "assert sys.modules['functools'].lru_cache is real\n"
        "assert sqlite3.connect(':memory:').execute('select 1').fetchone() == (1,)\n"
    )
    _runs_ok(code)
