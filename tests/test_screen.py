"""The screen classifier and input-region parser, on recorded real screens and synthetic ones.

Recorded screens: tests/fixtures/screens/<runtime>/*.txt, verbatim `tmux capture-pane -p` of
Codex CLI 0.171.0, Claude Code 2.1.332, Gemini CLI 0.61.0, opencode 1.18.33 and aider 0.86.2 in
a 160x50 pane (the README there has what each file shows). Every file of every runtime is in
the table below; a file without an expectation, or an expectation without its file, fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mosaic.config.roster import PROFILES
from mosaic.config.runtimes import Runtime, builtin_runtimes
from mosaic.screen import profiles
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

SCREENS = Path(__file__).resolve().parent / "fixtures" / "screens"
RT = builtin_runtimes()

HELLO = "Hello agent, this message is typed but not submitted"
PASTED = "pasted line one\npasted line two\npasted line three"
SAME = "Enter in same command as the text"
TOOL = "please RUNTOOL now"

IDLE, BUSY, ASK = Activity.IDLE, Activity.BUSY, Activity.AWAITING_APPROVAL

# file -> (activity, input text (None: no input region), messages in the input, not in it)
Row = tuple[Activity, str | None, tuple[str, ...], tuple[str, ...]]
EXPECTED: dict[str, dict[str, Row]] = {
    "codex": {
        "a_idle.txt": (IDLE, "", (), (HELLO, "Ask Codex to do anything")),
        "b_typed.txt": (IDLE, HELLO, (HELLO,), (PASTED,)),
        "b2_pasted_multiline.txt": (IDLE, PASTED, (PASTED,), (HELLO,)),
        # The footer repeats the submitted message: it is not in the input.
        "c_busy.txt": (BUSY, "", (), (HELLO,)),
        "d_reply_idle.txt": (IDLE, "", (), (HELLO,)),
        "d2_multiline_reply.txt": (IDLE, "", (), (HELLO, PASTED)),
        "e_approval.txt": (ASK, None, (), (HELLO, "1. Yes, proceed (y)")),
        "e2_after_approval.txt": (IDLE, "", (), (TOOL,)),
        # Codex swallowed the Enter sent with the text: still in the input.
        "f_same_command_enter.txt": (IDLE, SAME, (SAME,), (HELLO, PASTED)),
    },
    "claude": {
        "a_idle.txt": (IDLE, "", (), (HELLO,)),
        "b_typed.txt": (IDLE, HELLO, (HELLO,), (PASTED,)),
        "b2_pasted_multiline.txt": (IDLE, PASTED, (PASTED,), (HELLO,)),
        "c_busy.txt": (BUSY, "", (), (HELLO,)),
        "d_reply_idle.txt": (IDLE, "", (), (HELLO,)),
        "d2_multiline_reply.txt": (IDLE, "", (), (HELLO, PASTED)),
        "e_approval.txt": (ASK, None, (), (HELLO,)),
        "e2_after_approval.txt": (IDLE, "", (), (TOOL,)),
        # Claude Code took the Enter sent with the text: the input is empty.
        "f_same_command_enter.txt": (IDLE, "", (), (SAME,)),
    },
    "gemini": {
        # The dim placeholder `Type your message or @path/to/file` is not text.
        "a_idle.txt": (IDLE, "", (), (HELLO, "Type your message or @path/to/file")),
        "b_typed.txt": (IDLE, HELLO, (HELLO,), (PASTED,)),
        # The transcript above echoes HELLO as ` > Hello…`, exactly like an input line.
        "b2_pasted_multiline.txt": (IDLE, PASTED, (PASTED,), (HELLO,)),
        "c_busy.txt": (BUSY, "", (), (HELLO,)),
        "d_reply_idle.txt": (IDLE, "", (), (HELLO,)),
        "d2_multiline_reply.txt": (IDLE, "", (), (HELLO, PASTED)),
        "e_approval.txt": (ASK, None, (), (HELLO, TOOL)),
        "e2_after_approval.txt": (IDLE, "", (), (TOOL,)),
        # Gemini turned the Enter sent with the text into a new line: still in the input.
        "f_same_command_enter.txt": (IDLE, SAME, (SAME,), (HELLO, PASTED)),
    },
    "opencode": {
        "a_idle.txt": (IDLE, "", (), (HELLO, "What is the tech stack of this project?")),
        "b_typed.txt": (IDLE, HELLO, (HELLO,), (PASTED,)),
        # A multi-line paste is collapsed to a placeholder, which counts as the message.
        "b2_pasted_multiline.txt": (IDLE, "[Pasted ~3 lines]", (PASTED,), ()),
        "c_busy.txt": (BUSY, "", (), (HELLO,)),
        "d_reply_idle.txt": (IDLE, "", (), (HELLO,)),
        "d2_multiline_reply.txt": (IDLE, "", (), (HELLO, PASTED)),
        "e_approval.txt": (ASK, None, (), (HELLO, TOOL)),
        "e2_after_approval.txt": (IDLE, "", (), (TOOL,)),
        "f_same_command_enter.txt": (IDLE, "", (), (SAME,)),
    },
    "aider": {
        "a_idle.txt": (IDLE, "", (), (HELLO,)),
        "b_typed.txt": (IDLE, HELLO, (HELLO,), (PASTED,)),
        "b2_pasted_multiline.txt": (IDLE, PASTED, (PASTED,), (HELLO,)),
        # While it works aider shows no input (keystrokes are not echoed): empty.
        "c_busy.txt": (BUSY, "", (), (HELLO,)),
        "d_reply_idle.txt": (IDLE, "", (), (HELLO,)),
        "d2_multiline_reply.txt": (IDLE, "", (), (HELLO, PASTED)),
        "e_approval.txt": (ASK, "", (), (TOOL,)),
        "e3_add_output_prompt.txt": (ASK, "", (), (TOOL,)),
        "e2_after_approval.txt": (IDLE, "", (), (TOOL,)),
        "f_same_command_enter.txt": (IDLE, "", (), (SAME,)),
    },
}
# The deciding line of some recorded screens, quoted exactly (status, send and events show it).
DECIDING = {
    ("codex", "c_busy.txt"): "◦ Working (1s • esc to interrupt)",
    ("codex", "e_approval.txt"): "  Press enter to confirm or esc to cancel",
    ("claude", "c_busy.txt"): "✽ Prestidigitating…",
    ("claude", "e_approval.txt"): " Do you want to proceed?",
    ("gemini", "c_busy.txt"): " ⠹ Thinking... (esc to cancel, 0s)",
    ("gemini", "e_approval.txt"): "│ Allow execution of [Shell]?",
    ("opencode", "c_busy.txt"): "   ⬝⬝⬝■■■■■  esc interrupt",
    ("opencode", "e_approval.txt"): "  ┃  △ Permission required",
    ("aider", "c_busy.txt"): "     ░█    Waiting for openai/mock-model",
    ("aider", "e_approval.txt"): "Run shell command? (Y)es/(N)o/(D)on't ask again [Yes]:",
    ("aider", "e3_add_output_prompt.txt"): (
        "Add command output to the chat? (Y)es/(N)o/(D)on't ask again [Yes]:"
    ),
}


def recorded(runtime: str, name: str) -> Screen:
    return Screen.from_capture((SCREENS / runtime / name).read_text(encoding="utf-8"))


def test_every_recorded_screen_has_an_expectation() -> None:
    assert sorted(p.name for p in SCREENS.iterdir() if p.is_dir()) == sorted(EXPECTED)
    for runtime, table in EXPECTED.items():
        assert sorted(p.name for p in (SCREENS / runtime).glob("*.txt")) == sorted(table)


CASES = [(rt, name) for rt, table in EXPECTED.items() for name in table]


@pytest.mark.parametrize(("runtime", "name"), CASES)
def test_recorded_screen(runtime: str, name: str) -> None:
    activity, text, inside, outside = EXPECTED[runtime][name]
    screen = recorded(runtime, name)
    result = classify(RT[runtime], screen)
    assert result.activity is activity, result
    assert result.evidence, "a decision always quotes the lines that made it"
    assert all(line.rstrip() in [x.rstrip() for x in screen.lines] for line in result.evidence)
    if (runtime, name) in DECIDING:
        assert any(line.startswith(DECIDING[runtime, name]) for line in result.evidence), result
    assert input_text(RT[runtime], screen) == text
    for message in inside:
        check = message_in_input(RT[runtime], screen, message)
        assert check and check.evidence, message
    for message in outside:
        check = message_in_input(RT[runtime], screen, message)
        assert not check, (message, check)
        assert check.region_found is (text is not None)
    assert queued(RT[runtime], screen) == ()


def test_every_profile_can_be_named_in_a_roster() -> None:
    assert set(PROFILES) == set(profiles.LAYOUTS)
    assert {rt.profile for rt in RT.values()} <= set(PROFILES)


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


def edited(
    runtime: str,
    name: str,
    insert: dict[int, tuple[str, ...]] | None = None,
    replace: dict[int, str] | None = None,
) -> Screen:
    """A recorded screen with rows replaced and rows inserted before the given indices. The
    screen keeps its height, as the program's own drawing would: an inline TUI grows into the
    blank rows at the bottom, a full-screen one pushes its transcript up into blank rows."""
    lines = list(recorded(runtime, name).lines)
    for index, text in (replace or {}).items():
        lines[index] = text
    for index in sorted(insert or {}, reverse=True):
        rows = (insert or {})[index]
        lines[index:index] = rows
        for _ in rows:
            if not lines[-1].strip():
                lines.pop()
                continue
            free = max(i for i in range(index) if not lines[i].strip())
            del lines[free]
            index -= 1
    return Screen.from_capture("\n".join(lines) + "\n")


def row_of(screen: Screen, text: str) -> int:
    return next(i for i, line in enumerate(screen.lines) if line.startswith(text))


# --- Gemini CLI 0.61 ---------------------------------------------------------------------


def test_gemini_enter_folded_into_a_paste_leaves_the_message_in_the_input() -> None:
    """A fold adds an empty last input line: two blank rows before the footer, not one."""
    typed = recorded("gemini", "b2_pasted_multiline.txt")
    folded = edited("gemini", "b2_pasted_multiline.txt", insert={26: ("",)})
    assert input_text(RT["gemini"], folded) == PASTED
    check = message_in_input(RT["gemini"], folded, PASTED)
    assert check and "   pasted line three" in check.evidence
    assert len(check.evidence) == len(message_in_input(RT["gemini"], typed, PASTED).evidence) + 1
    # The typed text alone: still there after the Enter turned into a new line.
    enter = edited("gemini", "b_typed.txt", insert={20: ("",)})
    assert message_in_input(RT["gemini"], enter, HELLO)


def test_gemini_queued_sign_and_busy_line() -> None:
    screen = edited(
        "gemini",
        "c_busy.txt",
        insert={18: ("  Queued (press ↑ to edit):", "    and a follow-up question")},
    )
    assert queued(RT["gemini"], screen) == ("  Queued (press ↑ to edit):",)
    assert classify(RT["gemini"], screen).activity is Activity.BUSY


def test_gemini_transcript_quoting_state_words_stays_idle() -> None:
    screen = edited(
        "gemini",
        "d_reply_idle.txt",
        insert={
            17: (
                " ⠹ Thinking... (esc to cancel, 3s)",
                "│ Allow execution of [Shell]?",
                "│ ● 1. Allow once",
                "  Queued (press ↑ to edit):",
            )
        },
    )
    assert classify(RT["gemini"], screen).activity is Activity.IDLE
    assert queued(RT["gemini"], screen) == ()


def test_gemini_typed_text_is_not_state() -> None:
    text = "⠹ Thinking... (esc to cancel, 1s) Allow execution of [Shell]?"
    screen = edited("gemini", "b_typed.txt", replace={19: " > " + text})
    assert classify(RT["gemini"], screen).activity is Activity.IDLE
    assert input_text(RT["gemini"], screen) == text
    # The same words typed without the placeholder's indent are text, not the placeholder.
    typed = edited("gemini", "b_typed.txt", replace={19: " > Type your message or @path/to/file"})
    assert input_text(RT["gemini"], typed) == "Type your message or @path/to/file"


def test_gemini_ctrl_c_notice_is_idle() -> None:
    screen = edited("gemini", "d_reply_idle.txt", replace={19: " Press Ctrl+C again to exit."})
    assert classify(RT["gemini"], screen).activity is Activity.IDLE


def _gemini_dialog(*body: str) -> Screen:
    width = 100
    box = ["╭" + "─" * width + "╮"]
    box += ["│ " + line.ljust(width - 1) + "│" for line in body]
    box += ["╰" + "─" * width + "╯"]
    return pane(" ▝▜▄     Gemini CLI v0.61.0", "", "Tips for getting started:", "", *box)


@pytest.mark.parametrize(
    "body",
    [
        # Synthetic first-run dialogs (not recorded): a rounded box with a selected option.
        ("Do you trust this folder?", "", "● 1. Trust folder (work)", "  2. Don't trust (esc)"),
        ("Select Theme", "● 1. ANSI Dark", "  2. GitHub Light"),
        ("How would you like to authenticate for this project?", "● 1. Login with Google"),
    ],
)
def test_gemini_first_run_dialogs_wait_for_the_operator(body: tuple[str, ...]) -> None:
    screen = _gemini_dialog(*body)
    result = classify(RT["gemini"], screen)
    assert result.activity is Activity.AWAITING_APPROVAL, result
    assert input_text(RT["gemini"], screen) is None


def test_gemini_without_an_input_area_is_never_idle() -> None:
    screen = _gemini_dialog("Something new happened", "Press any key")
    assert classify(RT["gemini"], screen).activity is Activity.UNKNOWN
    # The input area with something drawn under it is not the live area.
    lines = list(recorded("gemini", "a_idle.txt").lines)
    lines[30:33] = ["╭" + "─" * 40 + "╮", "│ Some dialog" + " " * 28 + "│", "╰" + "─" * 40 + "╯"]
    below = Screen.from_capture("\n".join(lines) + "\n")
    assert classify(RT["gemini"], below).activity is Activity.UNKNOWN


# --- opencode 1.18 -----------------------------------------------------------------------


def test_opencode_sidebar_text_is_not_input() -> None:
    """At 160 columns the sidebar shares the box's rows, right of the box's last column."""
    screen = recorded("opencode", "d_reply_idle.txt")
    box_row = row_of(screen, "  ┃  Build ·") - 2
    line = "  ┃  fix the bug".ljust(120) + "Context"
    typed = edited("opencode", "d_reply_idle.txt", replace={box_row: line})
    assert input_text(RT["opencode"], typed) == "fix the bug"
    assert message_in_input(RT["opencode"], typed, "fix the bug")
    assert not message_in_input(RT["opencode"], typed, "Context")


def test_opencode_multi_line_typed_text_grows_the_box() -> None:
    screen = recorded("opencode", "d_reply_idle.txt")
    top = row_of(screen, "  ┃  Build ·") - 3
    typed = edited(
        "opencode",
        "d_reply_idle.txt",
        replace={top + 1: "  ┃  first line"},
        insert={top + 2: ("  ┃", "  ┃  third line")},
    )
    assert input_text(RT["opencode"], typed) == "first line\n\nthird line"


def test_opencode_queued_sign() -> None:
    screen = recorded("opencode", "c_busy.txt")
    top = row_of(screen, "  ┃  Build ·") - 3
    block = ("  ┃", "  ┃  and a follow-up question", "  ┃   QUEUED", "  ┃", "")
    waiting = edited("opencode", "c_busy.txt", insert={top - 2: block})
    assert queued(RT["opencode"], waiting) == ("  ┃   QUEUED",)
    assert classify(RT["opencode"], waiting).activity is Activity.BUSY
    # The words in a message's text are not the sign.
    typed = edited("opencode", "d_reply_idle.txt", insert={top - 2: ("  ┃  QUEUED", "")})
    assert queued(RT["opencode"], typed) == ()


def test_opencode_transcript_quoting_state_words_stays_idle() -> None:
    screen = recorded("opencode", "d_reply_idle.txt")
    at = row_of(screen, "     ▣  Build · Mock Model · 7.0s") + 1
    quoted = edited(
        "opencode",
        "d_reply_idle.txt",
        insert={at: ("     press esc interrupt to stop", "  ┃  △ Permission required")},
    )
    assert classify(RT["opencode"], quoted).activity is Activity.IDLE


def test_opencode_without_its_box_is_never_idle() -> None:
    """A screen that is not the home or session view (an unknown first-run screen)."""
    screen = pane("  Installing plugins…", "  opencode-mock-provider")
    assert classify(RT["opencode"], screen).activity is Activity.UNKNOWN
    assert input_text(RT["opencode"], screen) is None


# --- aider 0.86 --------------------------------------------------------------------------

RULE160 = "─" * 160


def test_aider_mode_prompt_and_typed_input() -> None:
    typed = pane(RULE160, "architect> refactor it")
    assert classify(RT["aider"], typed).activity is Activity.IDLE
    assert input_text(RT["aider"], typed) == "refactor it"
    assert message_in_input(RT["aider"], typed, "refactor it")


def test_aider_reply_with_a_rule_of_its_own_is_still_the_turn_at_work() -> None:
    streaming = pane(RULE160, "> explain", "", "Here is the plan:", RULE160, "Step one")
    result = classify(RT["aider"], streaming)
    assert result.activity is Activity.BUSY
    assert "Step one" in result.evidence
    done = pane(RULE160, "> explain", "", "Step one", "Tokens: 1k sent", RULE160, ">")
    assert classify(RT["aider"], done).activity is Activity.IDLE


def test_aider_answered_question_in_scrollback_is_not_pending() -> None:
    answered = pane(RULE160, "> do it", "", "Add file.py to the chat? (Y)es/(N)o [Yes]: y")
    assert classify(RT["aider"], answered).activity is Activity.BUSY
    pending = pane(RULE160, "> do it", "", "Add file.py to the chat? (Y)es/(N)o [Yes]:")
    assert classify(RT["aider"], pending).activity is Activity.AWAITING_APPROVAL


def test_aider_start_up_before_the_first_prompt() -> None:
    banner = ("Analytics have been permanently disabled.", RULE160, "Aider v0.86.2")
    starting = pane(*banner, "Model: openai/mock-model with diff edit format")
    assert classify(RT["aider"], starting).activity is Activity.UNKNOWN
    assert input_text(RT["aider"], starting) is None
    # A model warning asks before the first prompt: the operator must answer.
    question = "Open documentation url for more info? (Y)es/(N)o/(D)on't ask again [Yes]:"
    warned = pane(*banner, "Warning for openai/mock-model: Unknown context window size", question)
    result = classify(RT["aider"], warned)
    assert result.activity is Activity.AWAITING_APPROVAL
    assert result.evidence == (question,)


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
