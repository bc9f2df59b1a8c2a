"""docs/ travels with the code: what it lists must match what the code has (docs that drift
are bugs), and every `docs/FILE.md, "Section"` that code cites must exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mosaic.cli.main import FLEET_COMMANDS
from mosaic.config import load
from mosaic.config.roster import AGENT_KEYS, DEFAULTS_KEYS, RUNTIME_KEYS, TOP_KEYS
from mosaic.config.runtimes import builtin_runtimes
from mosaic.errors import ExitCode
from mosaic.send.outcome import Outcome, Result

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCE = DOCS / "reference.md"
CITATION = re.compile(r'docs/([\w.-]+\.md)(?:, "([^"]+)")?')


def headings(doc: Path) -> list[str]:
    return [m.group(2).strip() for m in re.finditer(r"^(#{1,4}) (.+)$", doc.read_text(), re.M)]


def section(doc: Path, title: str) -> str:
    """The text under `## title`, up to the next `## ` heading."""
    text = doc.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def cited() -> list[tuple[str, str, str | None]]:
    """(where, doc file, section or None) for every docs citation in src, tests and bench."""
    found = []
    for folder in ("src", "tests", "bench", "scripts"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in (".py", "") or not path.is_file() or path == Path(__file__):
                continue
            text = path.read_text(errors="replace")
            for m in CITATION.finditer(text):
                found.append((str(path.relative_to(ROOT)), m.group(1), m.group(2)))
    return found


def test_code_cites_docs_that_exist() -> None:
    citations = cited()
    assert citations, "no code cites docs/ any more; this test would check nothing"
    for where, name, title in citations:
        doc = DOCS / name
        assert doc.is_file(), f"{where} cites docs/{name}, which does not exist"
        if title is not None:
            titles = [h.lower() for h in headings(doc)]
            assert title.lower() in titles, f"{where} cites docs/{name}, {title!r}: no such heading"


def test_every_command_has_a_reference_section() -> None:
    titles = headings(REFERENCE)
    missing = [name for name in FLEET_COMMANDS if name not in titles]
    assert missing == [], f"docs/reference.md lacks a '## NAME' section for {missing}"


def test_every_exit_code_is_documented() -> None:
    table = section(REFERENCE, "Exit codes")
    for code in ExitCode:
        row = re.search(rf"^\| {int(code)} \|", table, re.M)
        assert row, f"exit code {int(code)} ({code.name}) is not in the table"


def test_every_send_outcome_and_json_field_is_documented() -> None:
    send = section(REFERENCE, "send")
    for outcome in Outcome:
        assert f"| `{outcome}` |" in send, f"send outcome {outcome}"
    fields = Result("a", Outcome.ACCEPTED, 1, 0.1).as_json()
    for key in fields:
        assert f"| `{key}` |" in send, f"send --json field {key}"


def test_every_roster_key_is_documented() -> None:
    roster = section(REFERENCE, "Roster")
    for key in (*TOP_KEYS, *AGENT_KEYS, *DEFAULTS_KEYS, *RUNTIME_KEYS):
        assert re.search(rf"\b{key}\b", roster), f"roster key {key!r}"
    for name in builtin_runtimes():
        assert f"`{name}`" in roster, f"built-in runtime {name!r}"


def test_the_reference_roster_validates() -> None:
    text = section(REFERENCE, "Roster").split("```yaml\n", 1)[1].split("```", 1)[0]
    loaded = load.loads(text, Path("reference.md"), env={"HOME": "/home/u"})
    assert loaded.names == ["coder0"]
    assert loaded.runtimes["pyrepl"].command == ("python3", "-q", "-i")


def test_every_mosaic_variable_the_code_reads_is_documented() -> None:
    """Set by mosaic for its own hooks, these are named in the text rather than the table."""
    used: set[str] = set()
    for path in (ROOT / "src").rglob("*.py"):
        used |= set(re.findall(r"MOSAIC_[A-Z_]+", path.read_text()))
    documented = section(REFERENCE, "Environment variables")
    assert used, "found no MOSAIC_ variables in src"
    assert sorted(v for v in used if v not in documented) == []


@pytest.mark.parametrize("module", sorted(
    str(p.relative_to(ROOT / "src" / "mosaic"))
    for p in (ROOT / "src" / "mosaic").rglob("*.py")
    if p.name != "__init__.py" or p.parent.name in ("mosaic", "cli", "supervise")
))  # fmt: skip
def test_every_module_is_in_the_architecture_table(module: str) -> None:
    table = section(DOCS / "architecture.md", "Layers")
    assert f"`{module}`" in table, f"docs/architecture.md does not list {module}"
