"""aider 0.86 (docs/runtimes.md, "aider"), a line-oriented prompt (prompt_toolkit) whose
output scrolls.

Every turn starts under a full-width `─` rule with the prompt (`> `, or `<mode>> ` such as
`architect> `; continuation lines of a multi-line input start `> ` too; capture drops the
trailing space, so an empty prompt is a line with just `>`). So the live part of the screen
starts at the last rule that a prompt follows:

* nothing under the prompt lines: idle, and those lines are the input;
* anything under them: the lines were submitted and the turn is at work (waiting for the
  model, streaming the reply, running a command). aider does not show keystrokes then, so
  the input reads as empty; a question ending `(Y)es/(N)o… [Yes]:` on the last line waits
  for the operator.

A reply may draw rules of its own (markdown `---`); a rule not followed by a prompt never
starts a turn. Before the first prompt (start-up, a model warning's question) there is no
input, and the screen can never be idle.
"""

from __future__ import annotations

import re

from mosaic.config.runtimes import Runtime
from mosaic.screen.model import Layout, Screen, blank, bottom_block, is_plain_rule, non_blank

PROMPT = re.compile(r"^[\w-]*>(?: |$)")
_WORKING_EVIDENCE = 3
_STARTUP_ROWS = 20


def layout(runtime: Runtime, screen: Screen) -> Layout:
    n = len(screen.lines)
    start = None
    for rule in range(n - 1, -1, -1):
        if not is_plain_rule(screen.row(rule)):
            continue
        first = next((i for i in range(rule + 1, n) if not blank(screen.row(i))), None)
        if first is not None and PROMPT.match(screen.row(first)):
            start = first
            break
    if start is None:
        return Layout(None, None, bottom_block(screen, _STARTUP_ROWS), ())
    end = start
    while end + 1 < n and not blank(screen.row(end + 1)):
        end += 1
    after = non_blank(screen, range(end + 1, n))
    if after:
        return Layout((), "", after, (), working_rows=after[-_WORKING_EVIDENCE:])
    rows = tuple(range(start, end + 1))
    parts = []
    for i in rows:
        line = screen.row(i)
        m = PROMPT.match(line)
        parts.append(line[m.end() :].rstrip() if m else line.rstrip())
    return Layout(rows, "\n".join(parts).rstrip(), (), rows)
