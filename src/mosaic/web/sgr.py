"""Terminal screens with their colours (`capture-pane -e`) → HTML, for the dashboard.

Pure: text in, text out. tmux writes a captured screen as plain characters and SGR
sequences (`ESC [ … m`) that change the pen relative to the previous cell, and the pen
carries over line ends, so the state is kept across the whole screen.

Safety is the point of this module (docs/reference.md, "web"): screen text is whatever an
agent printed, so every character of it is escaped (`& < > " '`), every other escape or
control sequence is dropped (never passed through), and the only markup produced is
`<span class="…">` with classes from a fixed vocabulary and, for 24-bit colours,
`data-fg`/`data-bg` holding six hex digits computed from integers. Colours of the 256-colour
palette are classes (`f0`…`f255`, `b0`…`b255`) whose rules `palette_css` writes, so the page
needs no inline style (its Content-Security-Policy forbids them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from html import escape

Color = int | tuple[int, int, int]  # a palette index 0-255, or 24-bit (r, g, b)

# CSI (ESC [ params intermediates final), OSC (ESC ] … BEL or ST), any other ESC pair, or a
# lone ESC at the end. Only a CSI ending in `m` with plain parameters is SGR.
_ESCAPE = re.compile(
    r"\x1b\[([\x30-\x3f]*)[\x20-\x2f]*([\x40-\x7e])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\|$)"
    r"|\x1b[\x20-\x7e]?"
)
# C0 controls but tab and line feed, DEL, and C1 controls: never shown, never passed on.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# xterm's first 16 colours; 16-231 are the 6x6x6 cube and 232-255 the grey ramp.
_BASE16 = (
    (0x00, 0x00, 0x00), (0xCD, 0x00, 0x00), (0x00, 0xCD, 0x00), (0xCD, 0xCD, 0x00),
    (0x00, 0x00, 0xEE), (0xCD, 0x00, 0xCD), (0x00, 0xCD, 0xCD), (0xE5, 0xE5, 0xE5),
    (0x7F, 0x7F, 0x7F), (0xFF, 0x00, 0x00), (0x00, 0xFF, 0x00), (0xFF, 0xFF, 0x00),
    (0x5C, 0x5C, 0xFF), (0xFF, 0x00, 0xFF), (0x00, 0xFF, 0xFF), (0xFF, 0xFF, 0xFF),
)  # fmt: skip
_CUBE = (0, 95, 135, 175, 215, 255)


def palette(index: int) -> tuple[int, int, int]:
    """The RGB of xterm colour `index` (0-255)."""
    if index < 16:
        return _BASE16[index]
    if index < 232:
        i = index - 16
        return _CUBE[i // 36], _CUBE[(i // 6) % 6], _CUBE[i % 6]
    grey = 8 + 10 * (index - 232)
    return grey, grey, grey


def hex_rgb(rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    return f"{r:02x}{g:02x}{b:02x}"


def palette_css() -> str:
    """The rules of the palette classes (served as a static file of the dashboard)."""
    rules = []
    for i in range(256):
        colour = hex_rgb(palette(i))
        rules.append(f".f{i}{{color:#{colour}}}.b{i}{{background-color:#{colour}}}")
    return "\n".join(rules) + "\n"


@dataclass(frozen=True)
class Pen:
    """How the next characters are drawn."""

    fg: Color | None = None
    bg: Color | None = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    inverse: bool = False
    hidden: bool = False
    strike: bool = False
    overline: bool = False

    def drawn(self) -> tuple[Color | None, Color | None]:
        """(text colour, background) as drawn: swapped by `inverse`."""
        return (self.bg, self.fg) if self.inverse else (self.fg, self.bg)

    def classes(self) -> list[str]:
        """The class names, in a fixed order (so equal pens give equal markup)."""
        fg, bg = self.drawn()
        # A default colour under inverse is the other default: `fr` (text in the default
        # background colour), `br` (background in the default text colour).
        out = [c for c in (_colour_class("f", fg, self.inverse),
                           _colour_class("b", bg, self.inverse)) if c]  # fmt: skip
        for flag, name in (
            (self.bold, "bo"), (self.dim, "dm"), (self.italic, "it"), (self.underline, "un"),
            (self.strike, "st"), (self.overline, "ov"), (self.hidden, "hd"),
        ):  # fmt: skip
            if flag:
                out.append(name)
        return out

    def data(self) -> list[tuple[str, str]]:
        """`data-fg`/`data-bg` for 24-bit colours (after inversion)."""
        return [(f"data-{name}", hex_rgb(c)) for name, c in zip(("fg", "bg"), self.drawn(),
                                                                 strict=True)
                if isinstance(c, tuple)]  # fmt: skip


def _colour_class(prefix: str, colour: Color | None, inverse: bool) -> str | None:
    if isinstance(colour, int):
        return f"{prefix}{colour}"
    if colour is not None:
        return f"{prefix}x"
    return f"{prefix}r" if inverse else None


PLAIN = Pen()

CLASS_NAMES = frozenset(
    [f"f{i}" for i in range(256)] + [f"b{i}" for i in range(256)]
    + ["fx", "bx", "fr", "br", "bo", "dm", "it", "un", "st", "ov", "hd"]
)  # fmt: skip
"""Every class `Pen.classes` can produce: the page's script keeps only these."""


_FLAGS_ON = {1: "bold", 2: "dim", 3: "italic", 4: "underline", 7: "inverse", 8: "hidden",
             9: "strike", 21: "underline", 53: "overline"}  # fmt: skip
_FLAGS_OFF = {22: ("bold", "dim"), 23: ("italic",), 24: ("underline",), 27: ("inverse",),
              28: ("hidden",), 29: ("strike",), 55: ("overline",)}  # fmt: skip


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) <= 6 else None


def _extended(parts: list[str]) -> tuple[Color | None, int]:
    """A 38/48/58 colour from the parameters after it: (colour or None, parameters used)."""
    kind = _number(parts[0]) if parts else None
    if kind == 5 and len(parts) >= 2:
        index = _number(parts[1])
        return (index if index is not None and index < 256 else None), 2
    if kind == 2 and len(parts) >= 4:
        rgb = [_number(p) for p in parts[1:4]]
        if all(c is not None and c < 256 for c in rgb):
            r, g, b = (int(c or 0) for c in rgb)
            return (r, g, b), 4
        return None, 4
    return None, len(parts)


def apply(pen: Pen, params: str) -> Pen:
    """The pen after one SGR sequence's parameters (`1;31`, `38;5;208`, `38:2::1:2:3`)."""
    if params == "":
        return PLAIN
    groups = params.split(";")
    i = 0
    while i < len(groups):
        group = groups[i]
        i += 1
        if ":" in group:
            # Colon form: one group holds a whole parameter with its sub-parameters.
            head, *subs = group.split(":")
            code = _number(head)
            if code in (38, 48):
                if subs[:1] == ["2"] and len(subs) == 5:
                    subs = [subs[0], *subs[2:]]  # 38:2:<colour space>:r:g:b
                colour, _ = _extended(subs)
                if colour is not None:
                    pen = replace(pen, fg=colour) if code == 38 else replace(pen, bg=colour)
            elif code == 4:
                style = _number(subs[0]) if subs else 1
                pen = replace(pen, underline=bool(style))
            continue
        code = _number(group) if group else 0
        if code is None:
            continue
        if code == 0:
            pen = PLAIN
        elif code in _FLAGS_ON:
            pen = replace(pen, **{_FLAGS_ON[code]: True})
        elif code in _FLAGS_OFF:
            pen = replace(pen, **dict.fromkeys(_FLAGS_OFF[code], False))
        elif 30 <= code <= 37:
            pen = replace(pen, fg=code - 30)
        elif 90 <= code <= 97:
            pen = replace(pen, fg=code - 90 + 8)
        elif code == 39:
            pen = replace(pen, fg=None)
        elif 40 <= code <= 47:
            pen = replace(pen, bg=code - 40)
        elif 100 <= code <= 107:
            pen = replace(pen, bg=code - 100 + 8)
        elif code == 49:
            pen = replace(pen, bg=None)
        elif code in (38, 48, 58):
            colour, used = _extended(groups[i:])
            i += used
            if colour is not None and code != 58:  # 58: underline colour, not drawn
                pen = replace(pen, fg=colour) if code == 38 else replace(pen, bg=colour)
    return pen


@dataclass(frozen=True)
class Run:
    """Characters drawn with one pen (never containing a line feed)."""

    text: str
    pen: Pen


def runs(screen: str) -> list[list[Run]]:
    """The screen as lines of runs; escape sequences interpreted or dropped, controls dropped."""
    lines: list[list[Run]] = [[]]
    pen = PLAIN
    for kind, value in _tokens(screen):
        if kind == "sgr":
            pen = apply(pen, value)
            continue
        first = True
        for piece in value.split("\n"):
            if not first:
                lines.append([])
            first = False
            piece = _CONTROL.sub("", piece)
            if not piece:
                continue
            line = lines[-1]
            if line and line[-1].pen == pen:
                line[-1] = Run(line[-1].text + piece, pen)
            else:
                line.append(Run(piece, pen))
    return lines


def _tokens(screen: str) -> Iterator[tuple[str, str]]:
    """("text", characters) and ("sgr", parameters) in order; other sequences vanish."""
    at = 0
    for m in _ESCAPE.finditer(screen):
        if m.start() > at:
            yield "text", screen[at : m.start()]
        at = m.end()
        params, final = m.group(1), m.group(2)
        if final == "m" and params is not None and params[:1] not in ("<", "=", ">", "?"):
            yield "sgr", params
    if at < len(screen):
        yield "text", screen[at:]


def visible(screen: str) -> list[list[Run]]:
    """`runs` without the blank lines at the bottom (as `capture` prints a screen): a line
    counts as blank when it has no characters but spaces drawn without a background."""
    lines = runs(screen)
    while len(lines) > 1 and all(not r.text.strip(" ") and r.pen.bg is None and not r.pen.inverse
                                 for r in lines[-1]):  # fmt: skip
        lines.pop()
    return lines


def text_of(lines: list[list[Run]]) -> str:
    """The characters alone, less trailing spaces on each line."""
    return "\n".join("".join(r.text for r in line).rstrip(" ") for line in lines)


def plain(screen: str) -> str:
    """What `capture-pane` without `-e` shows (all lines kept: the classifier counts rows)."""
    return text_of(runs(screen))


def to_html(screen: str) -> str:
    """The screen as HTML for a `<pre>` (blank lines at the bottom left out): lines
    separated by line feeds, each run of a non-default pen in a `<span>`; every character of
    screen text escaped."""
    out = []
    for n, line in enumerate(visible(screen)):
        if n:
            out.append("\n")
        for run in line:
            text = escape(run.text, quote=True)
            classes = run.pen.classes()
            if not classes:
                out.append(text)
                continue
            attrs = "".join(f' {k}="{escape(v, quote=True)}"' for k, v in run.pen.data())
            out.append(f'<span class="{" ".join(classes)}"{attrs}>{text}</span>')
    return "".join(out)
