"""The screen converter (mosaic/web/sgr.py): terminal colours to HTML, with every character
of screen text escaped and nothing but `<span>`s of known classes produced — checked on
hand-made sequences, on any text at all (hypothesis), and on what a real tmux captures."""

from __future__ import annotations

import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import wait_until
from mosaic.web import sgr
from mosaic.web.sgr import CLASS_NAMES, palette, palette_css, plain, to_html


class Markup(HTMLParser):
    """Collects tags (with attributes) and the text as a browser would read it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.ends: list[str] = []
        self.text: list[str] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        self.ends.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.other.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.other.append("decl")

    def handle_pi(self, data: str) -> None:
        self.other.append("pi")

    def unknown_decl(self, data: str) -> None:
        self.other.append("unknown")


def parse(html: str) -> Markup:
    m = Markup()
    m.feed(html)
    m.close()
    return m


def spans(html: str) -> list[tuple[str, dict[str, str]]]:
    """(text, attributes) of each span, in order."""
    return [
        (m.group(2), dict(re.findall(r'([a-z-]+)="([^"]*)"', m.group(1))))
        for m in re.finditer(r"<span([^>]*)>(.*?)</span>", html, re.S)
    ]


def classes_of(html: str) -> list[tuple[str, list[str]]]:
    return [(text, str(a.get("class")).split()) for text, a in spans(html)]


def test_basic_colours_and_attributes() -> None:
    html = to_html("\x1b[31mred\x1b[39m plain \x1b[1;44mbold on blue\x1b[0m")
    assert html == ('<span class="f1">red</span> plain <span class="b4 bo">bold on blue</span>')


def test_bright_256_and_24_bit_colours_in_both_notations() -> None:
    assert classes_of(to_html("\x1b[91ma\x1b[103mb")) == [("a", ["f9"]), ("b", ["f9", "b11"])]
    assert classes_of(to_html("\x1b[38;5;208mx")) == [("x", ["f208"])]
    assert classes_of(to_html("\x1b[38:5:208mx")) == [("x", ["f208"])]
    html = to_html("\x1b[38;2;10;20;30;48;2;255;0;128mx")
    assert spans(html) == [("x", {"class": "fx bx", "data-fg": "0a141e", "data-bg": "ff0080"})]
    # The colon form, with and without the colour-space id.
    for seq in ("\x1b[38:2::10:20:30mx", "\x1b[38:2:10:20:30mx"):
        assert spans(to_html(seq)) == [("x", {"class": "fx", "data-fg": "0a141e"})], seq


def test_out_of_range_or_truncated_colours_are_ignored() -> None:
    assert to_html("\x1b[38;5;300mx") == "x"
    assert to_html("\x1b[38;2;1;2mx") == "x"
    assert to_html("\x1b[38;2;999;0;0mx") == "x"
    assert to_html("\x1b[38mx") == "x"


def test_attributes_switch_off_one_by_one() -> None:
    seq = "\x1b[1;3;4;9mA\x1b[22mB\x1b[23mC\x1b[24mD\x1b[29mE"
    assert classes_of(to_html(seq)) == [
        ("A", ["bo", "it", "un", "st"]), ("B", ["it", "un", "st"]), ("C", ["un", "st"]),
        ("D", ["st"]),
    ]  # fmt: skip
    assert to_html("\x1b[4:0mx") == "x"  # curly-underline syntax: style 0 is "none"
    assert classes_of(to_html("\x1b[4:3mx")) == [("x", ["un"])]


def test_inverse_swaps_colours_and_defaults() -> None:
    assert classes_of(to_html("\x1b[7mx")) == [("x", ["fr", "br"])]
    assert classes_of(to_html("\x1b[31;7mx")) == [("x", ["fr", "b1"])]
    swapped = [("x", ["f2", "b1"]), ("y", ["f1", "b2"])]
    assert classes_of(to_html("\x1b[31;42;7mx\x1b[27my")) == swapped


def test_the_pen_carries_over_line_ends_and_spans_never_cross_them() -> None:
    # As tmux writes it: the colour set on line 1 still applies on line 2.
    html = to_html("\x1b[32mgreen\nstill green\x1b[0m\nplain")
    assert html == '<span class="f2">green</span>\n<span class="f2">still green</span>\nplain'


def test_every_special_character_is_escaped() -> None:
    text = "<script>alert('x')</script> & \"quoted\" <img src=x onerror=alert(1)>"
    html = to_html("\x1b[31m" + text)
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&amp;" in html and "&quot;" in html and "&#x27;" in html
    assert "".join(parse(html).text) == text


def test_other_sequences_and_controls_are_dropped() -> None:
    seq = (
        "\x1b[2J\x1b[?25l\x1b[H"  # clear, hide cursor, home: not SGR
        "\x1b]8;;http://example.invalid/\x07link\x1b]8;;\x07"  # an OSC 8 hyperlink
        "\x1b]0;title\x1b\\"  # OSC with ST
        "a\x00b\x07c\x08d\x7fe\x9bf"  # C0, DEL, C1
        "\x1b[>4;1m"  # a private-mode 'm': not SGR either
        "\tg\x1b"  # a tab stays; a lone ESC at the end goes
    )
    assert to_html(seq) == "linkabcdef\tg"
    assert plain(seq) == "linkabcdef\tg"


def test_blank_bottom_lines_are_left_out_but_coloured_ones_kept() -> None:
    assert to_html("top\n\n   \n\n") == "top"
    assert to_html("top\n\x1b[44m   \x1b[0m\n\n") == 'top\n<span class="b4">   </span>'
    assert plain("top\n\n") == "top\n\n"  # the classifier keeps every row


def test_palette_css_has_a_rule_for_every_class_colour() -> None:
    css = palette_css()
    for i in (0, 7, 15, 16, 196, 231, 232, 255):
        r, g, b = palette(i)
        assert f".f{i}{{color:#{r:02x}{g:02x}{b:02x}}}" in css
        assert f".b{i}{{background-color:#{r:02x}{g:02x}{b:02x}}}" in css
    assert palette(196) == (255, 0, 0) and palette(232) == (8, 8, 8) and palette(16) == (0, 0, 0)
    assert len(re.findall(r"\{", css)) == 512


ANY_SCREEN = st.lists(
    st.one_of(
        st.text(max_size=20),
        st.sampled_from(["<", ">", "&", '"', "'", "\n", "\x1b", "\x1b[", "\x1b]", "\x07",
                         "<script>", "</span>", "<img src=x onerror=alert(1)>", "&amp;"]),
        st.builds(lambda p: f"\x1b[{p}m",
                  st.text(alphabet="0123456789;:", max_size=14)),
    ),
    max_size=30,
).map("".join)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(ANY_SCREEN)
def test_any_screen_becomes_only_known_spans_around_escaped_text(screen: str) -> None:
    html = to_html(screen)
    markup = parse(html)
    assert markup.other == []
    assert {tag for tag, _ in markup.tags} <= {"span"}
    assert len(markup.tags) == len(markup.ends)
    for _, attrs in markup.tags:
        for key, value in attrs:
            assert value is not None
            if key == "class":
                assert set(value.split()) <= CLASS_NAMES
            else:
                assert key in ("data-fg", "data-bg") and re.fullmatch(r"[0-9a-f]{6}", value)
    text = "".join(markup.text)
    # The page shows exactly the screen's characters (`text_of` also drops the trailing
    # spaces of each line, which the HTML keeps: a coloured space is drawn).
    shown = [line.rstrip(" ") for line in text.split("\n")]
    assert shown == sgr.text_of(sgr.visible(screen)).split("\n")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text)


def test_a_real_tmux_capture(fleet_env: dict[str, str], tmp_path: Path) -> None:
    """What `capture-pane -e` gives for a coloured program: the same characters as the plain
    capture, the colours as classes."""
    env = fleet_env
    socket = env["MOSAIC_TMUX_SOCKET"]
    script = tmp_path / "paint.sh"
    script.write_text(
        "printf '\\033[31mred\\033[0m \\033[1;44mbold-blue\\033[0m <b>&amp;\\n'\n"
        "printf '\\033[38;5;208morange \\033[38;2;1;2;3mtrue\\033[0m \\033[7minv\\033[27m\\n'\n"
        "printf 'done\\n'\nexec sleep 60\n"
    )
    tmux = ["tmux", "-L", socket]
    subprocess.run([*tmux, "new-session", "-d", "-x", "60", "-y", "6", "bash", str(script)],
                   check=True, timeout=10, env=env)  # fmt: skip

    def captured() -> str | None:
        out = subprocess.run([*tmux, "capture-pane", "-p", "-e", "-t", "0"], env=env,
                             capture_output=True, text=True, timeout=10).stdout  # fmt: skip
        return out if "done" in out else None

    coloured = wait_until(captured, what="the script's output")
    bare = subprocess.run([*tmux, "capture-pane", "-p", "-t", "0"], capture_output=True,
                          text=True, timeout=10, env=env).stdout  # fmt: skip
    assert [ln.rstrip(" ") for ln in bare.split("\n")] == plain(coloured).split("\n")
    html = to_html(coloured)
    assert '<span class="f1">red</span>' in html
    assert '<span class="b4 bo">bold-blue</span>' in html
    assert '<span class="f208">orange </span>' in html
    assert '<span class="fx" data-fg="010203">true</span>' in html
    assert '<span class="fr br">inv</span>' in html
    assert "&lt;b&gt;&amp;amp;" in html
