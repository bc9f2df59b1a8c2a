"""Starter rosters for `mosaic fleet init`.

Each preset is written out as commented YAML so the new file doubles as a reference card;
the texts are plain strings (no YAML library needed to list or write them), and a test loads
every one of them through the validator.
"""

from __future__ import annotations

from dataclasses import dataclass

from mosaic.errors import UsageError

DEFAULT_PRESET = "solo"

_HEADER = """\
# mosaic fleet roster (version 1). Reference: `mosaic fleet --help` and the README.
# Check it with `mosaic fleet validate`; edit it by hand or with `mosaic fleet add/remove`.
version: 1                  # required; only 1 is understood
supervisor: auto            # auto | systemd | tmux
tmux_socket: mosaic         # attach with: tmux -L mosaic attach -t <agent>
# defaults:                 # applied to every agent; the agent's own keys win
#   workdir: ~/src/app      # ~ and $VARS are expanded; must exist at start
#   env: {EDITOR: vi}
#   restart: on-failure     # always | on-failure | never
"""

_RUNTIMES_HINT = """\
# runtimes:                 # custom runtimes, next to the built-ins
#   pyrepl:                 # codex claude gemini opencode aider shell demo
#     command: ["python3", "-q", "-i"]
#     processes: ["python3"]
#     ready: '^>>> $'
"""


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    agents: str

    @property
    def text(self) -> str:
        return f"{_HEADER}agents:\n{self.agents}{_RUNTIMES_HINT}"


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "solo",
            "one Codex CLI agent",
            """\
  - name: coder0
    runtime: codex          # codex claude gemini opencode aider shell demo
    # workdir: ~/src/app
    # args: ["--model", "o4-mini"]
    restart: on-failure
""",
        ),
        Preset(
            "pair",
            "a Codex CLI coder and a Claude Code reviewer",
            """\
  - name: coder
    runtime: codex
    restart: on-failure
  - name: reviewer
    runtime: claude
    restart: on-failure
""",
        ),
        Preset(
            "squad",
            "four agents: two Codex CLI coders, Claude Code and Gemini CLI",
            """\
  - name: coder0
    runtime: codex
  - name: coder1
    runtime: codex
  - name: claude0
    runtime: claude
  - name: gemini0
    runtime: gemini
""",
        ),
        Preset(
            "demo",
            "three bundled demo agents; no account or network needed",
            """\
  - name: demo0
    runtime: demo
  - name: demo1
    runtime: demo
    args: ["--think", "2"]  # seconds of busy screen per reply
  - name: demo2
    runtime: demo
    args: ["--approval-every", "3"]
""",
        ),
    )
}


def names() -> list[str]:
    return list(PRESETS)


def get(name: str) -> Preset:
    """The preset, or a usage error that lists the real ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}") from None


def render(name: str) -> str:
    return get(name).text
