"""The dashboard's rules without a server (mosaic/web/security.py, mosaic/web/token.py): what
"own origin" means for each kind of listener, when a POST may proceed, and a token file
that concurrent first runs agree on."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mosaic.errors import ConfigError
from mosaic.web import token
from mosaic.web.security import bearer, is_loopback, own_origins, post_allowed, url_host

ALL_V4 = "0.0.0.0"  # noqa: S104 (a listener's address under test, not bound here)


def test_loopback_origins() -> None:
    o = own_origins("http", "127.0.0.1", 8765)
    for ok in ("http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765",
               "HTTP://LocalHost:8765"):  # fmt: skip
        assert o.allows(ok), ok
    for bad in ("http://127.0.0.1:8766", "https://127.0.0.1:8765", "http://127.0.0.1",
                "http://evil.example:8765", "http://127.0.0.1.evil.example:8765", "null", "",
                None, "http://localhost:8765.evil.example"):  # fmt: skip
        assert not o.allows(bad), bad


def test_a_specific_host_is_its_own_origin_and_nothing_else() -> None:
    o = own_origins("https", "192.0.2.7", 443)
    assert o.allows("https://192.0.2.7")  # the default port is not written
    assert not o.allows("https://192.0.2.7:444") and not o.allows("https://localhost")
    # Where the connection arrived is the server's own address too.
    assert o.allows("https://[2001:db8::1]", local_address="2001:db8::1")
    six = own_origins("http", "::1", 8080)
    assert six.allows("http://[::1]:8080") and six.allows("http://localhost:8080")


def test_a_wildcard_listener_owns_the_machines_names_not_the_request_host() -> None:
    o = own_origins("http", ALL_V4, 8765, ["vm", "vm.example.net", "10.0.0.5"])
    for ok in ("http://vm:8765", "http://vm.example.net:8765", "http://10.0.0.5:8765",
               "http://127.0.0.1:8765"):  # fmt: skip
        assert o.allows(ok), ok
    # A name an attacker points at this machine (DNS rebinding) is not ours, whatever
    # `Host` the request carries.
    assert not o.allows("http://rebind.evil.example:8765")


def test_when_a_post_may_proceed() -> None:
    o = own_origins("http", "127.0.0.1", 8765)
    own = "http://127.0.0.1:8765"
    assert post_allowed(True, own, o, None)
    assert not post_allowed(True, None, o, None)  # a browser always sends Origin
    assert not post_allowed(True, "http://evil.example", o, None)
    assert post_allowed(False, None, o, None)  # a script with the bearer token
    assert not post_allowed(False, "http://evil.example", o, None)
    assert post_allowed(False, own, o, None)


def test_small_parsers() -> None:
    assert bearer("Bearer abc") == "abc" and bearer("bearer  abc ") == "abc"
    assert bearer("Basic abc") is None and bearer("Bearer ") is None and bearer(None) is None
    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("::1")
    assert is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback(ALL_V4) and not is_loopback("::") and not is_loopback("vm")
    assert url_host("::1") == "[::1]" and url_host("VM") == "vm"
    assert url_host("1.2.3.4") == "1.2.3.4"


def test_token_compare() -> None:
    t = "a" * 43
    assert token.matches(t, t) and not token.matches("b" * 43, t)
    assert not token.matches(None, t) and not token.matches("", t)
    assert not token.matches("a" * 42, t) and not token.matches("ä" * 43, t)


RACE = """
import sys
from pathlib import Path
from mosaic.errors import ConfigError
from mosaic.web import token
print(token.load_or_create(Path(sys.argv[1])))
"""


def test_concurrent_first_runs_agree_on_one_token(tmp_path: Path) -> None:
    path = tmp_path / "run" / "web.token"
    procs = [subprocess.Popen([sys.executable, "-c", RACE, str(path)], stdout=subprocess.PIPE,
                              text=True) for _ in range(8)]  # fmt: skip
    printed = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(printed) == 1 and token.is_token(printed.pop())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["web.token"]  # no temp file left


def test_a_symlinked_token_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "web.token"
    target = tmp_path / "elsewhere"
    target.write_text("b" * 43 + "\n")
    path.symlink_to(target)
    with pytest.raises(ConfigError, match="cannot read the web token"):
        token.load_or_create(path)
