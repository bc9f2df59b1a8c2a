"""The README's roster reference is a roster that validates (docs that drift are bugs)."""

from __future__ import annotations

from pathlib import Path

from mosaic.config import load as roster

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_roster_reference_validates() -> None:
    section = README.read_text().split("## Roster reference (version 1)", 1)[1]
    text = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    loaded = roster.loads(text, Path("README.md"), env={"HOME": "/home/u"})
    assert loaded.names == ["coder0"]
    assert loaded.runtimes["pyrepl"].command == ("python3", "-q", "-i")
