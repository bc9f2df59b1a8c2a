"""The screen classifier and input-region parser, on recorded real screens and synthetic ones.

Recorded screens: /work/shared/screens/{codex,claude}/*.txt (Codex CLI 0.171.0, Claude Code
2.1.332 in a 160x50 pane). Every file of both runtimes is covered; the expected state comes
from the file's name (see the README there).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mosaic.config.runtimes import Runtime, builtin_runtimes
from mosaic.screen.classify import (
    Activity,
    Screen,
    classify,
    compile_signature,
    input_text,
    message_in_input,
    queued,
    squash,
)

SCREENS = Path(os.environ.get("MOSAIC_SCREENS", "/work/shared/screens"))
RT = builtin_runtimes()

HELLO = "Hello agent, this message is typed but not submitted"
PASTED = "pasted line one\npasted line two\npasted line three"
SAME = "Enter in same command as the text"

# file -> (activity, input text (None: no input region), messages in the input, not in it)
EXPECTED: dict[str, dict[str, tuple[Activity, str | None, tuple[str, ...], tuple[str, ...]]]] = {
    "codex": {
        "a_idle.txt": (Activity.IDLE, "", (), (HELLO, "Ask Codex to do anything")),
        "b_typed.txt": (Activity.IDLE, HELLO, (HELLO,), (PASTED,)),
        "b2_pasted_multiline.txt": (Activity.IDLE, PASTED, (PASTED,), (HELLO,)),
        # The footer repeats the submitted message: it is not in the input.
        "c_busy.txt": (Activity.BUSY, "", (), (HELLO,)),
        "d_reply_idle.txt": (Activity.IDLE, "", (), (HELLO,)),
        "d2_multiline_reply.txt": (Activity.IDLE, "", (), (HELLO, PASTED)),
        "e_approval.txt": (Activity.AWAITING_APPROVAL, None, (), (HELLO, "1. Yes, proceed (y)")),
        "e2_after_approval.txt": (Activity.IDLE, "", (), ("please RUNTOOL now",)),
        # Codex swallowed the Enter sent with the text: still in the input.
        "f_same_command_enter.txt": (Activity.IDLE, SAME, (SAME,), (HELLO, PASTED)),
    },
    "claude": {
        "a_idle.txt": (Activity.IDLE, "", (), (HELLO,)),
        "b_typed.txt": (Activity.IDLE, HELLO, (HELLO,), (PASTED,)),
        "b2_pasted_multiline.txt": (Activity.IDLE, PASTED, (PASTED,), (HELLO,)),
        "c_busy.txt": (Activity.BUSY, "", (), (HELLO,)),
        "d_reply_idle.txt": (Activity.IDLE, "", (), (HELLO,)),
        "d2_multiline_reply.txt": (Activity.IDLE, "", (), (HELLO, PASTED)),
        "e_approval.txt": (Activity.AWAITING_APPROVAL, None, (), (HELLO,)),
        "e2_after_approval.txt": (Activity.IDLE, "", (), ("please RUNTOOL now",)),
        # Claude Code took the Enter sent with the text: the input is empty.
        "f_same_command_enter.txt": (Activity.IDLE, "", (), (SAME,)),
    },
}


def recorded(runtime: str, name: str) -> Screen:
    return Screen.from_capture((SCREENS / runtime / name).read_text(encoding="utf-8"))


def test_every_recorded_screen_has_an_expectation() -> None:
    if not SCREENS.is_dir():
        pytest.skip("recorded screens not available")
    for runtime, table in EXPECTED.items():
        assert sorted(p.name for p in (SCREENS / runtime).glob("*.txt")) == sorted(table)


CASES = [(rt, name) for rt, table in EXPECTED.items() for name in table]


@pytest.mark.parametrize(("runtime", "name"), CASES)
def test_recorded_screen(runtime: str, name: str) -> None:
    if not (SCREENS / runtime / name).exists():
        pytest.skip("recorded screens not available")
    activity, text, inside, outside = EXPECTED[runtime][name]
    screen = recorded(runtime, name)
    result = classify(RT[runtime], screen)
    assert result.activity is activity, result
    assert result.evidence, "a decision always quotes the lines that made it"
    assert all(line.rstrip() in [x.rstrip() for x in screen.lines] for line in result.evidence)
    assert input_text(RT[runtime], screen) == text
    for message in inside:
        check = message_in_input(RT[runtime], screen, message)
        assert check and check.evidence, message
    for message in outside:
        check = message_in_input(RT[runtime], screen, message)
        assert not check, (message, check)
        assert check.region_found is (text is not None)
    assert queued(RT[runtime], screen) == ()


def test_recorded_evidence_is_the_deciding_line() -> None:
    if not SCREENS.is_dir():
        pytest.skip("recorded screens not available")
    busy = classify(RT["codex"], recorded("codex", "c_busy.txt"))
    assert busy.evidence == ("◦ Working (1s • esc to interrupt)",)
    busy = classify(RT["claude"], recorded("claude", "c_busy.txt"))
    assert "✽ Prestidigitating…" in busy.evidence
    approval = classify(RT["claude"], recorded("claude", "e_approval.txt"))
    assert " Do you want to proceed?" in approval.evidence
    approval = classify(RT["codex"], recorded("codex", "e_approval.txt"))
    assert approval.evidence == ("  Press enter to confirm or esc to cancel",)


# --- synthetic screens -------------------------------------------------------------------


def pane(*rows: str, height: int = 20, cursor: tuple[int, int] | None = None) -> Screen:
    """A pane with `rows` at the bottom (blank rows above), cursor at the last row's end."""
    lines = ("",) * (height - len(rows)) + rows
    if cursor is None:
        return Screen.from_capture("\n".join(lines) + "\n")
    return Screen.from_capture("\n".join(lines) + "\n", cursor_x=cursor[0], cursor_y=cursor[1])


RULE = "─" * 80
NB = "\u00a0"


def claude_box(*above: str, text: str = "", footer: str = "  ⏸ manual mode on") -> Screen:
    body = text.split("\n")
    box = [f"❯{NB}{body[0]}", *(f"  {line}" for line in body[1:])]
    return pane(*above, "", RULE, *box, RULE, footer)


def test_claude_bypass_footer_means_nothing() -> None:
    screen = claude_box("● done", footer="  ⏵⏵ bypass permissions on (shift+tab to cycle)")
    assert classify(RT["claude"], screen).activity is Activity.IDLE


def test_claude_reply_quoting_busy_and_approval_words_stays_idle() -> None:
    screen = claude_box(
        "❯ what does the footer say?",
        "",
        "● It says esc to interrupt while working, and asks Do you want to proceed?",
        "  ✻ Thinking… is the spinner; press esc to interrupt",
    )
    result = classify(RT["claude"], screen)
    assert result.activity is Activity.IDLE, result


def test_claude_typed_text_is_not_state() -> None:
    screen = claude_box(text="esc to interrupt · Do you want to proceed? ✻ Thinking…")
    assert classify(RT["claude"], screen).activity is Activity.IDLE
    assert message_in_input(RT["claude"], screen, "esc to interrupt · Do you want to proceed?")


def test_claude_spinner_beats_the_always_drawn_box() -> None:
    screen = claude_box("● ok", "", "✶ Combobulating… (3s · ↓ 12 tokens)", footer="  ")
    assert classify(RT["claude"], screen).activity is Activity.BUSY


def test_claude_queued_sign() -> None:
    screen = claude_box(
        "✽ Prestidigitating…",
        "  ⎿  Queued · ctrl+x ctrl+s to send now",
        footer="  ⏸ manual mode on · esc to interrupt",
    )
    assert queued(RT["claude"], screen) == ("  ⎿  Queued · ctrl+x ctrl+s to send now",)
    assert classify(RT["claude"], screen).activity is Activity.BUSY


def test_claude_paste_placeholder_counts_as_in_input() -> None:
    screen = claude_box(text="[Pasted text #1 +120 lines]")
    message = "\n".join(f"line {i}" for i in range(121))
    assert message_in_input(RT["claude"], screen, message)
    assert not message_in_input(RT["claude"], claude_box(), message)


def test_claude_dim_suggestion_is_an_empty_input() -> None:
    screen = claude_box(text='Try "refactor <filepath>"')
    assert input_text(RT["claude"], screen) == ""


@pytest.mark.parametrize(
    "dialog",
    [
        (
            " Do you trust the files in this folder?",
            " /home/dev/project",
            " ❯ 1. Yes, proceed",
            "   2. No, exit",
            " Enter to confirm · Esc to exit",
        ),
        (
            " Let's get started.",
            " Choose the text style that looks best with your terminal",
            " ❯ 1. Dark mode ✔",
            "   2. Light mode",
        ),
        (" Security notes:", " 1. Claude can make mistakes", " Press Enter to continue…"),
        (" Select login method:", " ❯ 1. Claude account with subscription"),
    ],
)
def test_claude_fresh_config_dialogs_wait_for_the_operator(dialog: tuple[str, ...]) -> None:
    screen = pane(" ▐▛███▜▌   Claude Code v2.1.332", "", *dialog)
    result = classify(RT["claude"], screen)
    assert result.activity is Activity.AWAITING_APPROVAL
    assert input_text(RT["claude"], screen) is None


def test_claude_without_box_or_known_dialog_is_unknown_never_idle() -> None:
    screen = pane(" ▐▛███▜▌   Claude Code v2.1.332", "", " Some new dialog", " ❯ 1. Ok")
    assert classify(RT["claude"], screen).activity is Activity.UNKNOWN


def codex(
    *above: str,
    input_rows: tuple[str, ...] = ("› Ask Codex to do anything",),
    footer: tuple[str, ...] = ("  model · ~/w", "  ← for agents · ? for shortcuts"),
) -> Screen:
    return pane(*above, "", "", *input_rows, "", *footer)


def test_codex_placeholder_is_empty_but_the_same_words_typed_are_text() -> None:
    assert input_text(RT["codex"], codex()) == ""
    typed = codex(input_rows=("› Ask Codex to do anything",), footer=("  model · ~/w",))
    assert input_text(RT["codex"], typed) == "Ask Codex to do anything"
    assert message_in_input(RT["codex"], typed, "Ask Codex to do anything")
    assert input_text(RT["codex"], codex(input_rows=("» hi",))) == "hi"


def test_codex_footer_echo_and_reply_quotes_are_not_state() -> None:
    screen = codex(
        "• Working (1s • esc to interrupt) is what you see;",
        "  Press enter to confirm or esc to cancel",
        "",
        "  Worked for 2s • 01:14",
        footer=(
            "  model · ~/w · Press enter to confirm or esc to cancel • Working (1s • esc to",
            "  ← for agents · ? for shortcuts",
        ),
    )
    result = classify(RT["codex"], screen)
    assert result.activity is Activity.IDLE, result


def test_codex_wrapped_long_input() -> None:
    message = "word " * 60
    rows = ["› " + ("word " * 30).strip(), "  " + ("word " * 30).strip()]
    screen = codex(input_rows=tuple(rows), footer=("  model · ~/w",))
    assert message_in_input(RT["codex"], screen, message)
    assert message_in_input(RT["codex"], screen, message + "and an end we cannot see")


def test_codex_onboarding_trust_screen_waits() -> None:
    screen = pane(
        "  You are running Codex in /home/dev/w",
        "",
        "› 1. Yes, allow Codex to work in this folder without asking for approval",
        "  2. No, ask me to approve edits and commands",
        "",
        "  Press enter to continue",
    )
    assert classify(RT["codex"], screen).activity is Activity.AWAITING_APPROVAL


def test_codex_no_composer_is_unknown() -> None:
    assert classify(RT["codex"], pane("  >_ OpenAI Codex (v0.171.0)", "  booting")).activity is (
        Activity.UNKNOWN
    )


def gemini_box(text: str, status: str = "") -> Screen:
    width = 70
    return pane(
        "✦ previous answer",
        "",
        status,
        "╭" + "─" * width + "╮",
        "│ > " + text.ljust(width - 3) + "│",
        "╰" + "─" * width + "╯",
        "~/w (main*)      no sandbox      gemini-2.5-pro (99% context left)",
    )


def test_gemini() -> None:
    idle = gemini_box("Type your message or @path/to/file")
    assert classify(RT["gemini"], idle).activity is Activity.IDLE
    assert input_text(RT["gemini"], idle) == ""
    typed = gemini_box("fix the bug")
    assert input_text(RT["gemini"], typed) == "fix the bug"
    assert message_in_input(RT["gemini"], typed, "fix the bug")
    busy = gemini_box("", status="⠏ Reticulating splines (esc to cancel, 3s)")
    assert classify(RT["gemini"], busy).activity is Activity.BUSY
    approval = pane("╭──╮", "│ Allow execution of: 'rm'? │", "│ ● 1. Yes, allow once │", "╰──╯")
    assert classify(RT["gemini"], approval).activity is Activity.AWAITING_APPROVAL


def test_opencode_generic() -> None:
    idle = pane("  Ask anything", "", "  tab agents  ctrl+p commands", cursor=(2, 17))
    assert classify(RT["opencode"], idle).activity is Activity.IDLE
    busy = pane("  > hello", "  ⬝⬝⬝■■  esc interrupt", cursor=(0, 19))
    assert classify(RT["opencode"], busy).activity is Activity.BUSY


def test_aider_answered_question_in_scrollback_is_not_pending() -> None:
    answered = pane("Add file.py to the chat? (Y)es/(N)o [Yes]: y", "", "> ")
    assert classify(RT["aider"], answered).activity is Activity.IDLE
    pending = pane("Add file.py to the chat? (Y)es/(N)o [Yes]:")
    assert classify(RT["aider"], pending).activity is Activity.AWAITING_APPROVAL
    typed = pane("architect> refactor it")
    assert classify(RT["aider"], typed).activity is Activity.IDLE
    assert input_text(RT["aider"], typed) == "refactor it"


# --- generic: shell, demo, custom ----------------------------------------------------------


def test_shell_prompt_and_the_cursor_line_rule() -> None:
    shell = RT["shell"]
    assert classify(shell, pane("dev@box:~$ ")).activity is Activity.IDLE
    typed = pane("dev@box:~$ echo hello > out.txt")
    assert classify(shell, typed).activity is Activity.UNKNOWN
    assert message_in_input(shell, typed, "echo hello > out.txt")
    sent = pane("dev@box:~$ echo hello > out.txt", "dev@box:~$ ")
    check = message_in_input(shell, sent, "echo hello > out.txt")
    assert not check and check.region_found


def test_generic_short_common_last_line_spans_lines() -> None:
    shell = RT["shell"]
    message = "cat > f <<'EOF'\nhello there\nEOF"
    typed = pane("dev@box:~$ cat > f <<'EOF'", "hello there", "EOF")
    assert message_in_input(shell, typed, message)
    # After submit the cursor line is a new prompt; an `EOF` elsewhere does not count.
    sent = pane("dev@box:~$ cat > f <<'EOF'", "> hello there", "> EOF", "dev@box:~$ ")
    assert not message_in_input(shell, sent, message)
    running = pane("dev@box:~$ printf EOF", "EOF", cursor=(3, 19))
    assert not message_in_input(shell, running, "cat\nEOF")


def test_generic_trailing_newline_leaves_cursor_below_text() -> None:
    typed = pane("dev@box:~$ echo one", "", cursor=(0, 19))
    assert message_in_input(RT["shell"], typed, "echo one\n")


def test_generic_very_short_message_must_end_at_cursor() -> None:
    shell = RT["shell"]
    assert message_in_input(shell, pane("dev@box:~$ y"), "y")
    assert not message_in_input(shell, pane("dev@box:~$ y", "dev@box:~$ "), "y")


def test_generic_wrapped_rows_join_the_cursor_line() -> None:
    message = "x" * 100 + " the end of a long line"
    text = "$ " + message
    rows = [text[i : i + 60] for i in range(0, len(text), 60)]
    screen = Screen.from_capture("\n".join(["", *rows]) + "\n", width=60)
    assert message_in_input(RT["shell"], screen, message)
    assert message_in_input(RT["shell"], screen, "y" + message[-30:])
    unknown_width = Screen.from_capture("\n".join(["", *rows]) + "\n")
    for cut in range(1, 23):
        wrapped = ["$ " + message[:-cut], message[-cut:]]
        screen = Screen.from_capture("\n".join(wrapped) + "\n")
        assert message_in_input(RT["shell"], screen, message), cut
    assert message_in_input(RT["shell"], unknown_width, message)


def test_demo_screens() -> None:
    demo = RT["demo"]
    assert classify(demo, pane("demo>")).activity is Activity.IDLE  # trailing space trimmed
    assert classify(demo, pane("demo> hi", "| thinking (0s)")).activity is Activity.BUSY
    approval = pane("demo> hi", "Allow? (y/n)", cursor=(13, 19))
    assert classify(demo, approval).activity is Activity.AWAITING_APPROVAL
    quoted = pane(
        "demo> Allow? (y/n)",
        "....> | thinking",
        "allowed (y)",
        "reply #2: Allow? (y/n) | thinking (28 chars)",
        "demo> ",
    )
    assert classify(demo, quoted).activity is Activity.IDLE
    multi = pane("demo> first line", '....>     tabbed "q" $(x)', "....> last")
    assert classify(demo, multi).activity is Activity.IDLE
    assert message_in_input(demo, multi, 'first line\n\ttabbed "q" $(x)\nlast')
    assert input_text(demo, multi) == "last"


def test_custom_runtime_regexes() -> None:
    custom = Runtime(
        name="mytui",
        command=("mytui",),
        processes=("mytui",),
        ready=r"^READY>",
        busy=r"^\[working\]",
        approval=r"^CONFIRM\?",
        queued=r"^\(queued\)",
    )
    assert classify(custom, pane("READY> ")).activity is Activity.IDLE
    assert classify(custom, pane("READY> hi", "[working] 3s")).activity is Activity.BUSY
    assert classify(custom, pane("CONFIRM? y/n")).activity is Activity.AWAITING_APPROVAL
    assert queued(custom, pane("(queued) hi", "[working]")) == ("(queued) hi",)
    assert classify(custom, pane("something else")).activity is Activity.UNKNOWN
    bare = Runtime(name="bare", command=("b",), processes=("b",))
    assert classify(bare, pane("anything")).activity is Activity.UNKNOWN
    assert message_in_input(bare, pane("anything goes here"), "anything goes here")
    assert compile_signature(r"^READY>") is compile_signature(r"^READY>")


def test_empty_message_is_never_in_input() -> None:
    assert not message_in_input(RT["shell"], pane("$ "), "  \n ")


def test_squash_ignores_layout() -> None:
    assert squash(" a\tb\n c\u00a0d\x01 ") == "abcd"


def test_activity_values_are_the_json_words() -> None:
    assert [a.value for a in Activity] == ["idle", "busy", "awaiting_approval", "unknown"]
    assert str(Activity.AWAITING_APPROVAL) == "awaiting_approval"


def test_screen_from_capture_without_cursor_uses_last_line() -> None:
    screen = Screen.from_capture("a\nbc\n\n")
    assert screen.lines == ("a", "bc", "")
    assert (screen.cursor_x, screen.cursor_y) == (2, 1)
    assert Screen(lines=()).row(3) == ""
    assert classify(RT["demo"], Screen(lines=())).activity is Activity.UNKNOWN
