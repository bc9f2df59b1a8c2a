"""Reading panes: which sessions exist, their runtime's pid and liveness, their screens.

Every reader of panes (status, send, the watcher, capture) goes through here, so a fleet of
any size costs a constant number of tmux round trips: one `list-panes -a` for every pane's
fields, one chained `capture-pane` for many screens.
"""

from __future__ import annotations

from dataclasses import dataclass

from mosaic.screen.classify import Screen
from mosaic.tmux.client import SEP, Tmux, field_format

# Marks the start of each pane's block in a chained call's output.
_MARK = "\x1e"

PANE_FIELDS = (
    "session_name",
    "pane_id",
    "pane_pid",
    "pane_current_command",
    "pane_dead",
    "pane_dead_status",
    "pane_dead_signal",
    "pane_in_mode",
    "cursor_x",
    "cursor_y",
    "pane_width",
)
_FORMAT = SEP.join(field_format(f) for f in PANE_FIELDS)


def int_or_zero(text: str) -> int:
    """A number from tmux/systemctl output; empty or odd fields read as 0."""
    try:
        return int(text)
    except ValueError:
        return 0


@dataclass(frozen=True)
class Pane:
    session: str
    id: str
    pid: int
    command: str
    dead: bool
    dead_status: str = ""
    dead_signal: str = ""
    in_mode: bool = False
    cursor_x: int = 0
    cursor_y: int = 0
    width: int = 0

    @classmethod
    def from_row(cls, row: list[str]) -> Pane:
        """One row of `PANE_FIELDS`, in that order."""
        return cls(
            session=row[0],
            id=row[1],
            pid=int_or_zero(row[2]),
            command=row[3],
            dead=row[4] == "1",
            dead_status=row[5],
            dead_signal=row[6],
            in_mode=row[7] == "1",
            cursor_x=int_or_zero(row[8]),
            cursor_y=int_or_zero(row[9]),
            width=int_or_zero(row[10]),
        )


def list_panes(tmux: Tmux) -> dict[str, Pane] | None:
    """Every session's first pane in ONE tmux round trip; None when no server runs."""
    rows = tmux.query(PANE_FIELDS, "list-panes", "-a")
    if rows is None:
        return None
    panes: dict[str, Pane] = {}
    for row in rows:
        pane = Pane.from_row(row)
        panes.setdefault(pane.session, pane)
    return panes


def _blocks(output: str) -> dict[str, list[str]]:
    """Split a chained call's output at the `_MARK` lines; keyed by what follows the mark."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.split("\n"):
        if line.startswith(_MARK):
            current = blocks.setdefault(line[1:], [])
        elif current is not None:
            current.append(line)
    return blocks


def _screen_text(lines: list[str]) -> str:
    # capture-pane ends with a newline: drop the empty string split() leaves after it.
    return "\n".join(lines[:-1] if lines and lines[-1] == "" else lines)


def capture_many(tmux: Tmux, pane_ids: list[str], escapes: bool = False) -> dict[str, str]:
    """Visible screens of many panes in ONE tmux invocation (commands chained with `;`).

    `escapes` keeps the terminal's colours (`capture-pane -e`) for people's eyes; the
    classifier reads the plain text.
    """
    if not pane_ids:
        return {}
    args: list[str] = []
    capture = ["capture-pane", "-p", *(["-e"] if escapes else [])]
    for pane_id in pane_ids:
        args += ["display-message", "-p", "-t", pane_id, _MARK + "#{pane_id}", ";"]
        args += [*capture, "-t", pane_id, ";"]
    proc = tmux.run(*args[:-1], check=False)
    blocks = _blocks(proc.stdout.decode("utf-8", errors="replace"))
    return {pid: _screen_text(lines) for pid, lines in blocks.items()}


@dataclass(frozen=True)
class View:
    """One look at a pane: its liveness and its visible screen, from one tmux call."""

    pane: Pane
    screen: Screen


def observe(tmux: Tmux, pane: Pane) -> View | None:
    """The pane's fields and visible screen in ONE tmux invocation; None when it is gone.

    display-message and capture-pane run in the same command list, so the cursor position
    and the screen belong together.
    """
    proc = tmux.run(
        "display-message", "-p", "-t", pane.id, _MARK + _FORMAT, ";",
        "capture-pane", "-p", "-t", pane.id,
        check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        return None
    return parse_observation(proc.stdout.decode("utf-8", errors="replace"))


def parse_observation(output: str) -> View | None:
    """`observe`'s output: a marked line of `PANE_FIELDS`, then the screen."""
    head, _, body = output.partition("\n")
    if not head.startswith(_MARK):
        return None
    row = head[len(_MARK) :].split(SEP)
    if len(row) != len(PANE_FIELDS):
        return None
    fresh = Pane.from_row(row)
    return View(fresh, Screen.from_capture(body, fresh.cursor_x, fresh.cursor_y, fresh.width))
