"""`hosts:` and `host:` in the roster: validated like every section, and nothing in them can
become an ssh option or reach a shell unquoted."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetkit import mosaic, write_roster
from helpers import wait_until
from hostlab import Lab, all_running, open_lab
from mosaic.config.load import loads
from mosaic.config.roster import Host
from mosaic.errors import RosterError
from mosaic.hosts import hostroster
from mosaic.hosts.remote import Remote
from mosaic.hosts.ssh import Link


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from open_lab()


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    try:
        loads(text, Path("/r/roster.yaml"), env or {"HOME": "/home/u"})
    except RosterError as exc:
        return [str(p) for p in exc.problems]
    return []


def roster_with(hosts: str, agent_host: str = "gpu1") -> str:
    return (
        f"version: 1\nhosts:\n{hosts}agents:\n"
        f"  - name: a1\n    runtime: shell\n    host: {agent_host}\n"
    )


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        pytest.param(
            '  gpu1: {ssh: "-oProxyCommand=touch /tmp/x"}\n',
            "/r/roster.yaml:3:15: invalid ssh target '-oProxyCommand=touch /tmp/x': must not "
            "start with '-' (ssh would read it as an option)",
            id="option-target",
        ),
        pytest.param(
            '  gpu1: {ssh: "dev@host -oProxyCommand=x"}\n',
            "/r/roster.yaml:3:15: invalid ssh target 'dev@host -oProxyCommand=x': must not "
            "contain whitespace or control characters",
            id="space-in-target",
        ),
        pytest.param(
            '  gpu1: {ssh: "dev@host\\nProxyCommand x"}\n',
            "/r/roster.yaml:3:15: invalid ssh target 'dev@host\\nProxyCommand x': must not "
            "contain whitespace or control characters",
            id="newline-in-target",
        ),
        pytest.param(
            '  gpu1: {ssh: "ssh://dev@host:2222"}\n',
            "/r/roster.yaml:3:15: invalid ssh target 'ssh://dev@host:2222': expected "
            "[user@]host: a name from your ssh config, a DNS name or an address (letters, "
            "digits, '.', '_', '-', ':'); the port goes in port:",
            id="uri-target",
        ),
        pytest.param(
            '  gpu1: {ssh: "$(id)@host"}\n',
            "/r/roster.yaml:3:15: invalid ssh target '$(id)@host': expected [user@]host: "
            "a name from your ssh config, a DNS name or an address (letters, digits, '.', "
            "'_', '-', ':'); the port goes in port:",
            id="shell-in-target",
        ),
        pytest.param("  gpu1: {ssh: h, port: 0}\n",
                     "/r/roster.yaml:3:24: port must be an integer from 1 to 65535, "
                     "got an integer 0", id="port-0"),
        pytest.param("  gpu1: {ssh: h, port: 65536}\n",
                     "/r/roster.yaml:3:24: port must be an integer from 1 to 65535, "
                     "got an integer 65536", id="port-high"),
        pytest.param("  gpu1: {ssh: h, port: '22'}\n",
                     "/r/roster.yaml:3:24: port must be an integer from 1 to 65535, "
                     "got a string '22'", id="port-string"),
        pytest.param("  gpu1: {ssh: h, port: -22}\n",
                     "/r/roster.yaml:3:24: port must be an integer from 1 to 65535, "
                     "got an integer -22", id="port-negative"),
        pytest.param("  gpu1: {ssh: h, identity: '~/.ssh/%d'}\n",
                     "/r/roster.yaml:3:28: identity must not contain control characters or "
                     "'%' (ssh expands it)", id="identity-percent"),
        pytest.param("  gpu1: {ssh: h, home: 'rel/home'}\n",
                     "/r/roster.yaml:3:24: home 'rel/home' must be an absolute path on the "
                     "host, or start with ~/", id="home-relative"),
        pytest.param("  gpu1: {ssh: h, home: \"/x\\ty\"}\n",
                     "/r/roster.yaml:3:24: home must not contain control characters",
                     id="home-control"),
        pytest.param("  gpu1: {ssh: h, proxy: x}\n",
                     "/r/roster.yaml:3:18: unknown key 'proxy' (expected one of: ssh, port, "
                     "identity, home)", id="unknown-key"),
        pytest.param("  gpu1: {port: 22}\n",
                     "/r/roster.yaml:3:3: host 'gpu1' is missing required key 'ssh'",
                     id="no-ssh"),
        pytest.param("  gpu1: dev@host\n",
                     "/r/roster.yaml:3:9: host 'gpu1' must be a mapping with at least ssh: "
                     "user@address, got a string", id="not-a-mapping"),
    ],
)
def test_bad_host_entries_are_roster_errors_at_their_position(hosts: str, expected: str) -> None:
    assert problems(roster_with(hosts)) == [expected]


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ('"bad name"', "'bad name'"),
        ('"a\\nb"', "'a\\nb'"),
        ('"-oProxyCommand=x"', "'-oProxyCommand=x'"),
        ('"../up"', "'../up'"),
        ('"a%d"', "'a%d'"),
        ("Gpu1", "'Gpu1'"),
    ],
)
def test_bad_host_names_are_refused(key: str, shown: str) -> None:
    found = problems(f"version: 1\nhosts:\n  {key}: {{ssh: h}}\nagents: []\n")
    assert found == [
        f"/r/roster.yaml:3:3: invalid host name {shown}: must match ^[a-z0-9][a-z0-9_.-]{{0,31}}$ "
        "(lowercase letters, digits, '.', '_', '-'; at most 32) because it names a control socket"
    ]


def test_local_is_this_machine_not_a_host_name() -> None:
    text = (
        "version: 1\nhosts:\n  local: {ssh: h}\n"
        "agents:\n  - {name: a, runtime: shell, host: local}\n"
    )
    assert problems(text) == [
        "/r/roster.yaml:3:3: host name 'local' means this machine; name the host otherwise"
    ]
    ok_text = "version: 1\nagents:\n  - {name: a, runtime: shell, host: local}\n"
    assert problems(ok_text) == []


def test_an_agent_on_an_undeclared_host_is_an_error_with_a_hint() -> None:
    text = roster_with("  gpu1: {ssh: dev@10.0.0.1}\n", agent_host="gpu2")
    assert problems(text) == ["/r/roster.yaml:7:11: unknown host 'gpu2' (did you mean 'gpu1'?)"]


def test_a_valid_hosts_section_builds_hosts_and_leaves_remote_workdirs_to_the_host() -> None:
    text = (
        "version: 1\n"
        "hosts:\n"
        "  gpu1: {ssh: dev@10.1.2.3, port: 2222, identity: ~/.ssh/id_ed25519, "
        "home: ~/.config/mosaic}\n"
        "  box.lab: {ssh: '[fe80::1]'}\n"
        "defaults:\n  workdir: $SCRATCH/src\n"
        "agents:\n"
        "  - {name: a1, runtime: shell, host: gpu1}\n"
        "  - {name: a2, runtime: shell, host: gpu1, workdir: $ONLY_THERE/x}\n"
    )
    assert problems(text)[0].endswith("invalid ssh target '[fe80::1]': expected [user@]host: a "
                                      "name from your ssh config, a DNS name or an address "
                                      "(letters, digits, '.', '_', '-', ':'); the port goes in "
                                      "port:")  # fmt: skip
    text = text.replace("'[fe80::1]'", "'fe80::1'")
    r = loads(text, Path("/r/roster.yaml"), {"HOME": "/home/u"})
    assert r.hosts == (
        Host("gpu1", "dev@10.1.2.3", 2222, Path("/home/u/.ssh/id_ed25519"), "~/.config/mosaic"),
        Host("box.lab", "fe80::1"),
    )
    assert [(a.name, a.host, a.workdir) for a in r.agents] == [("a1", "gpu1", None),
                                                                ("a2", "gpu1", None)]  # fmt: skip
    # The same variables on a local agent are this machine's to resolve.
    local = text.replace("host: gpu1, workdir", "workdir")
    assert problems(local) == [
        "/r/roster.yaml:9:41: workdir '$ONLY_THERE/x' uses unset variable(s): ONLY_THERE"
    ]


def test_ssh_argv_puts_only_our_options_before_the_destination(tmp_path: Path) -> None:
    host = Host("gpu1", "dev@10.1.2.3", 2222, Path("/k/id"), "~/m")
    argv = Link(host, tmp_path).argv("mosaic fleet status --json")
    assert argv[-3:] == ["--", "dev@10.1.2.3", "mosaic fleet status --json"]
    opts = argv[1:-3]
    assert opts[-1] == "-T"
    pairs = list(zip(opts[:-1:2], opts[1:-1:2], strict=True))
    assert {flag for flag, _ in pairs} == {"-o", "-p", "-i"}
    settings = dict(value.split("=", 1) for flag, value in pairs if flag == "-o")
    assert settings["BatchMode"] == "yes" and settings["ControlMaster"] == "auto"
    assert settings["ControlPath"] == "gpu1"  # relative to the control directory
    assert "StrictHostKeyChecking" not in settings  # the user's ssh config decides
    assert int(settings["ConnectTimeout"]) > 0 and int(settings["ServerAliveInterval"]) > 0


def test_the_remote_command_line_quotes_every_word(tmp_path: Path) -> None:
    home = "~/odd home/$(touch pwned);`id`'q'"
    remote = Remote(Link(Host("h", "h", home=home), tmp_path))
    line = remote.command(["send", "a1", "--json", "-"])
    assert shlex.split(line) == [
        "mosaic", "fleet", "--mosaic-home", home, "--controller-version", "0.1.0",
        "send", "a1", "--json", "-",
    ]  # fmt: skip


def test_a_host_part_holds_only_its_agents_as_written() -> None:
    text = (
        "version: 1\n"
        "tmux_socket: team\n"
        "hosts:\n  gpu1: {ssh: dev@h1}\n  gpu2: {ssh: dev@h2}\n"
        "defaults:\n  env: {EDITOR: vi}\n"
        "agents:\n"
        "  - {name: a1, runtime: shell, host: gpu1, workdir: $SCRATCH/a1, env: {PORT: 8080}}\n"
        "  - {name: a2, runtime: shell, host: gpu2}\n"
        "  - {name: a3, runtime: shell}\n"
        "  - {name: a4, runtime: custom, host: gpu1, args: ['no', '0123']}\n"
        "runtimes:\n  custom: {command: [python3, -q]}\n"
    )
    part = hostroster.part_text(text, "gpu1")
    assert part.startswith(hostroster.MARKER.encode())
    r = loads(part, Path("/h/roster.yaml"), {"HOME": "/home/h", "SCRATCH": "/scratch"})
    assert not r.hosts and r.tmux_socket == "team"
    assert [(a.name, a.host, a.workdir) for a in r.agents] == [
        ("a1", None, Path("/scratch/a1")), ("a4", None, None)
    ]  # fmt: skip
    assert r.agents[0].env_dict == {"EDITOR": "vi", "PORT": "8080"}
    assert r.agents[1].args == ("no", "0123")


def test_injection_attempts_never_run_and_nothing_starts(
    fleet_env: dict[str, str], tmp_path: Path
) -> None:
    pwned = tmp_path / "pwned"
    write_roster(fleet_env, roster_with(f'  gpu1: {{ssh: "-oProxyCommand=touch {pwned}"}}\n'))
    for args in (["validate"], ["start"], ["status", "--json"], ["send", "a1", "hi"]):
        res = mosaic(fleet_env, *args)
        assert res.code == 2, (args, res.out, res.err)
        assert "must not start with '-'" in res.err and "Traceback" not in res.err
        assert res.out == ""
    assert not pwned.exists()
    assert not (Path(fleet_env["MOSAIC_HOME"]) / "fleet" / "run" / "ssh").exists()


def test_a_home_full_of_shell_syntax_reaches_the_host_as_one_word(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    pwned = tmp_path / "pwned"
    home = f"{h1.dir}/odd home $(touch {pwned}); touch {pwned} `touch {pwned}`"
    body = lab.demo_roster(tmp_path, [("r1", "h1")]).replace(
        f"identity: {lab.client_key}}}", f"identity: {lab.client_key}, home: '{home}'}}"
    )
    write_roster(env, body)
    res = mosaic(env, "start")
    assert res.code == 0, res.err
    assert (Path(home) / "fleet" / "roster.yaml").exists()
    wait_until(lambda: all_running(env, ["r1"]), timeout=30, what="r1 running")
    assert not pwned.exists()


def test_a_roster_mosaic_did_not_write_is_never_replaced_on_a_host(
    lab: Lab, fleet_env: dict[str, str], tmp_path: Path
) -> None:
    h1 = lab.add("h1")
    env = lab.env(fleet_env)
    mine = h1.home / "fleet" / "roster.yaml"
    mine.parent.mkdir(parents=True)
    mine.write_text("version: 1\n# the host's own roster\nagents: []\n")
    write_roster(env, lab.demo_roster(tmp_path, [("r1", "h1")]))
    res = mosaic(env, "start")
    assert res.code == 2
    assert f"host h1: {mine} exists and was not written by a mosaic controller" in res.err
    assert mine.read_text() == "version: 1\n# the host's own roster\nagents: []\n"
    assert h1.tmux("list-sessions").strip() == ""
