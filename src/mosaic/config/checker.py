"""The roster checker: builds the typed `Roster` from a parsed document, collecting every
problem with its position instead of stopping at the first."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path

from mosaic.config import eventtypes
from mosaic.config.names import (
    ENV_KEY_PATTERN,
    HOST_NAME_PATTERN,
    LOCAL_HOST,
    NAME_PATTERN,
    SOCKET_PATTERN,
    SSH_TARGET_PATTERN,
)
from mosaic.config.roster import (
    AGENT_KEYS,
    DEFAULT_SOCKET,
    DEFAULT_STUCK_AFTER_S,
    DEFAULTS_KEYS,
    HOST_KEYS,
    NOTIFY_KEYS,
    NOTIFY_KINDS,
    PROFILES,
    REGEX_KEYS,
    RESTART_POLICIES,
    RUNTIME_KEYS,
    SUPERVISORS,
    SUPPORTED_VERSION,
    TOP_KEYS,
    TRANSPORTS,
    Agent,
    Host,
    NotifyTarget,
    RestartPolicy,
    Roster,
    Supervisor,
)  # fmt: skip
from mosaic.config.runtimes import Runtime, builtin_runtimes
from mosaic.errors import Problem

# `typing` costs a measurable share of `status`'s start-up; annotations only need it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# YAML 1.1 habits for "no restart" / "restart": the round-trip loader (YAML 1.2) keeps them
# as strings or reads true/false as booleans; either way the user meant a policy.
RESTART_ALIASES = {
    "no": "never",
    "off": "never",
    "false": "never",
    "none": "never",
    "yes": "always",
    "on": "always",
    "true": "always",
}

Pos = tuple[int, int]  # 0-based, as ruamel stores it


# Characters of a value quoted back in a message: enough to recognise it, one line always.
_CLIP = 60


def clip(text: str, limit: int = _CLIP) -> str:
    """`text`, cut to `limit` characters (marked with …) when longer."""
    return text if len(text) <= limit else text[:limit] + "…"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, AbstractSet):
        return "a set"
    if isinstance(value, bytes):
        return "binary data"
    if type(value).__name__ == "TaggedScalar":
        return "a tagged value"
    if hasattr(value, "isoformat"):
        return "a date"
    return type(value).__name__


def _show(value: Any) -> str:
    """A value as the user wrote it in YAML terms (false, null, 2001-01-01), not as Python
    spells it; long ones clipped, collections only named, so a message stays one short line
    whatever the roster holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(clip(value))
    if isinstance(value, int):
        if value.bit_length() > 3 * _CLIP:  # str() of a huge int is slow, then refused
            return f"(an integer of about {int(value.bit_length() * 0.30103) + 1} digits)"
        return str(int(value))
    if isinstance(value, float):
        return repr(float(value))
    if type(value).__name__ == "TaggedScalar":
        tag = str(getattr(value.tag, "value", value.tag)).replace("tag:yaml.org,2002:", "!!")
        return f"{clip(tag)} {_show(str(value.value))}"
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return f"({_kind(value)})"


def _described(value: Any) -> str:
    """'a string 'x'', 'an integer 2', 'a list': what was found, for "got ..." messages."""
    shown = _show(value)
    return _kind(value) if shown.startswith("(") else f"{_kind(value)} {shown}"


def _unpaired_surrogate(value: str) -> str | None:
    """A `\\uD800`-style escape decodes to a code point no file name, argument or
    environment can carry; the first such, escaped, or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return ascii(value[exc.start])[1:-1]
    return None


def closest(word: Any, choices: Iterable[str]) -> str | None:
    import difflib

    if not isinstance(word, str):
        return None
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _hint(word: Any, choices: Iterable[str]) -> str:
    match = closest(word, choices)
    return f" (did you mean {match!r}?)" if match else ""


def _node_pos(value: Any, fallback: Pos) -> Pos:
    lc = getattr(value, "lc", None)
    if lc is not None and lc.line is not None:
        return (lc.line, lc.col)
    return fallback


def _key_pos(mapping: Any, key: Any) -> Pos:
    try:
        line, col = mapping.lc.key(key)
        return (line, col)
    except (KeyError, AttributeError, TypeError):
        return _node_pos(mapping, (0, 0))


def _val_pos(mapping: Any, key: Any) -> Pos:
    try:
        line, col = mapping.lc.value(key)
        return (line, col)
    except (KeyError, AttributeError, TypeError):
        return _key_pos(mapping, key)


def _item_pos(seq: Any, index: int) -> Pos:
    try:
        line, col = seq.lc.item(index)
        return (line, col)
    except (KeyError, AttributeError, TypeError, IndexError):
        return _node_pos(seq, (0, 0))


class Checker:
    """Collects every problem while building the typed roster; never stops at the first."""

    def __init__(self, where: str, text: str, env: Mapping[str, str], path: Path) -> None:
        self.where = where
        self.lines = text.splitlines()
        self.env = env
        self.path = path
        self.problems: list[Problem] = []

    def add(self, pos: Pos, message: str) -> None:
        self.problems.append(Problem(self.where, pos[0] + 1, pos[1] + 1, message))

    # -- generic shapes

    def keys(self, mapping: dict[Any, Any], allowed: tuple[str, ...]) -> None:
        for key in mapping:
            if key in allowed:
                continue
            hint = _hint(key, allowed) or f" (expected one of: {', '.join(allowed)})"
            self.add(_key_pos(mapping, key), f"unknown key {_show(key)}{hint}")

    def string(self, mapping: Any, key: str, what: str) -> str | None:
        value = mapping[key]
        if isinstance(value, str):
            if not value:
                self.add(_val_pos(mapping, key), f"{what} must not be empty")
                return None
            return self.text(value, _val_pos(mapping, key), what)
        self.add(_val_pos(mapping, key), f"{what} must be a string, got {_kind(value)}")
        return None

    def choice(self, mapping: Any, key: str, what: str, choices: tuple[str, ...]) -> str | None:
        value = mapping[key]
        if isinstance(value, str) and value in choices:
            return str(value)
        shown = _show(value) if isinstance(value, str) else _kind(value)
        self.add(
            _val_pos(mapping, key),
            f"invalid {what} {shown}: expected one of {', '.join(choices)}{_hint(value, choices)}",
        )
        return None

    def word(self, value: Any, pos: Pos, what: str) -> str | None:
        """A string destined for exec (argv, env): plain decimal integers are accepted."""
        if type(value) is int:
            return str(value)
        if not isinstance(value, str):
            self.add(pos, f"{what} must be a string, got {_kind(value)} (quote it)")
            return None
        if "\0" in value:
            self.add(pos, f"{what} must not contain a NUL character")
            return None
        return self.text(value, pos, what)

    def text(self, value: str, pos: Pos, what: str) -> str | None:
        bad = _unpaired_surrogate(value)
        if bad is not None:
            self.add(pos, f"{what} must not contain an unpaired surrogate ({bad})")
            return None
        return str(value)

    def words(self, mapping: Any, key: str, what: str, nonempty: bool = False) -> tuple[str, ...]:
        value = mapping[key]
        if not isinstance(value, list):
            example = "['python3', '-q']" if key == "command" else "['--flag', 'value']"
            self.add(
                _val_pos(mapping, key),
                f"{what} must be a list of strings, e.g. {example}; got {_kind(value)}",
            )
            return ()
        if nonempty and not value:
            self.add(_val_pos(mapping, key), f"{what} must not be empty")
        out = []
        for i, item in enumerate(value):
            word = self.word(item, _item_pos(value, i), f"{what} item")
            if word is not None:
                out.append(word)
        return tuple(out)

    def env_map(self, mapping: Any, key: str) -> dict[str, str]:
        value = mapping[key]
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(
                _val_pos(mapping, key), f"env must be a mapping of NAME: value, got {_kind(value)}"
            )
            return {}
        out: dict[str, str] = {}
        for name, raw in value.items():
            if not isinstance(name, str) or not re.fullmatch(ENV_KEY_PATTERN, name):
                self.add(
                    _key_pos(value, name),
                    f"invalid environment variable name {_show(name)}: "
                    f"must match {ENV_KEY_PATTERN}",
                )
                continue
            word = self.word(raw, _val_pos(value, name), f"env value for {clip(name)}")
            if word is not None:
                out[name] = word
        return out

    def workdir(self, mapping: Any, key: str) -> Path | None:
        raw = self.workdir_text(mapping, key)
        return None if raw is None else self.expand(raw, _val_pos(mapping, key))

    def workdir_text(self, mapping: Any, key: str) -> str | None:
        """The workdir as written, checked for what no host could use (a remote agent's
        workdir is expanded by its host, not here)."""
        raw = self.string(mapping, key, "workdir")
        if raw is not None and "\0" in raw:
            self.add(_val_pos(mapping, key), "workdir must not contain a NUL character")
            return None
        return raw

    def expand(self, raw: str, pos: Pos, what: str = "workdir") -> Path | None:
        missing: list[str] = []

        def var(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            if name not in self.env:
                missing.append(name)
                return match.group(0)
            return self.env[name]

        text = re.sub(r"\$(?:\{(\w+)\}|(\w+))", var, raw)
        if missing:
            self.add(pos, f"{what} {_show(raw)} uses unset variable(s): {', '.join(missing)}")
            return None
        if text == "~" or text.startswith("~/"):
            home = self.env.get("HOME") or os.path.expanduser("~")
            text = home + text[1:]
        elif text.startswith("~"):
            text = os.path.expanduser(text)
        result = Path(text)
        if not result.is_absolute():
            result = self.path.parent.absolute() / result
        return Path(os.path.normpath(result))

    # -- sections

    def roster(self, doc: Any) -> Roster | None:
        if doc is None:
            self.add((0, 0), "roster is empty; expected a mapping with 'version: 1' and 'agents:'")
            return None
        if not isinstance(doc, dict):
            self.add(
                _node_pos(doc, (0, 0)),
                f"roster must be a mapping (version:, agents:, ...), got {_kind(doc)}",
            )
            return None
        self.keys(doc, TOP_KEYS)
        version = self.version(doc)
        transport = (
            self.choice(doc, "transport", "transport", TRANSPORTS) if "transport" in doc else "tmux"
        )
        supervisor = (
            self.choice(doc, "supervisor", "supervisor", SUPERVISORS)
            if "supervisor" in doc
            else "auto"
        )
        socket = self.socket(doc) if "tmux_socket" in doc else DEFAULT_SOCKET
        runtimes, custom_names = self.runtimes(doc)
        hosts, host_names = self.hosts(doc)
        defaults = self.defaults(doc)
        known = tuple(sorted({*runtimes, *custom_names}))
        agents = self.agents(doc, defaults, known, host_names)
        if not host_names:
            self.default_workdir(defaults)  # a one-machine roster: checked even if unused
        notify = self.notify(doc, [a.name for a in agents]) if "notify" in doc else ()
        return Roster(
            path=self.path,
            version=version or SUPPORTED_VERSION,
            transport=transport or "tmux",
            supervisor=Supervisor(supervisor or Supervisor.AUTO),
            tmux_socket=socket or DEFAULT_SOCKET,
            agents=agents,
            runtimes=runtimes,
            notify=notify,
            hosts=hosts,
        )

    def version(self, doc: Any) -> int | None:
        if "version" not in doc:
            self.add(_node_pos(doc, (0, 0)), "missing required key 'version' (add 'version: 1')")
            return None
        value = doc["version"]
        pos = _val_pos(doc, "version")
        if type(value) is not int:
            self.add(pos, f"version must be the integer 1, got {_described(value)}")
            return None
        if value != SUPPORTED_VERSION:
            self.add(
                pos, f"unsupported roster version {_show(value)}; only version 1 is understood"
            )
            return None
        return value

    def socket(self, doc: Any) -> str | None:
        value = self.string(doc, "tmux_socket", "tmux_socket")
        if value is not None and not re.fullmatch(SOCKET_PATTERN, value):
            self.add(
                _val_pos(doc, "tmux_socket"),
                f"invalid tmux_socket {_show(value)}: use letters, digits, '_', '.', '-' "
                "(at most 64, not starting with '.' or '-')",
            )
            return None
        return value

    def defaults(self, doc: Any) -> dict[str, Any]:
        section = doc.get("defaults")
        if section is None:
            return {}
        if not isinstance(section, dict):
            self.add(_val_pos(doc, "defaults"), f"defaults must be a mapping, got {_kind(section)}")
            return {}
        self.keys(section, DEFAULTS_KEYS)
        out: dict[str, Any] = {}
        if "workdir" in section and self.workdir_text(section, "workdir") is not None:
            # Expanded on first use by a local agent: a remote-only fleet may name
            # variables that only its hosts set.
            out["workdir_of"] = section
        if "env" in section:
            out["env"] = self.env_map(section, "env")
        if "restart" in section:
            out["restart"] = self.restart(section)
        if "stuck_after" in section:
            out["stuck_after"] = self.stuck_after(section)
        return out

    def stuck_after(self, mapping: Any) -> float | None:
        value = mapping["stuck_after"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.add(
                _val_pos(mapping, "stuck_after"),
                "stuck_after must be a number of seconds >= 0 (0 = never), "
                f"got {_kind(value)} {_show(value)}",
            )
            return None
        return float(value)

    def restart(self, mapping: Any) -> str | None:
        value = mapping["restart"]
        if isinstance(value, str) and value in RESTART_POLICIES:
            return str(value)
        shown = _show(value)
        if not isinstance(value, str) and not shown.startswith("("):
            shown += f" ({_kind(value)})"
        alias = RESTART_ALIASES.get(str(value).lower()) if isinstance(value, str | bool) else None
        hint = f" (did you mean {alias!r}?)" if alias else _hint(value, RESTART_POLICIES)
        self.add(
            _val_pos(mapping, "restart"),
            f"invalid restart policy {shown}: expected always, on-failure or never{hint}",
        )
        return None

    # -- agents

    def default_workdir(self, defaults: dict[str, Any]) -> Path | None:
        """defaults.workdir expanded here, once (so a problem is reported once)."""
        if "workdir_of" not in defaults:
            return None
        if "workdir" not in defaults:
            defaults["workdir"] = self.workdir(defaults["workdir_of"], "workdir")
        result: Path | None = defaults["workdir"]
        return result

    def agents(
        self,
        doc: Any,
        defaults: dict[str, Any],
        known: tuple[str, ...],
        hosts: tuple[str, ...] = (),
    ) -> tuple[Agent, ...]:
        section = doc.get("agents")
        if section is None:
            return ()
        if not isinstance(section, list):
            self.add(_val_pos(doc, "agents"), f"agents must be a list, got {_kind(section)}")
            return ()
        seen: dict[str, Pos] = {}
        out: list[Agent] = []
        for i, item in enumerate(section):
            agent = self.agent(section, i, item, defaults, known, seen, hosts)
            if agent is not None:
                out.append(agent)
        return tuple(out)

    def agent(
        self,
        section: Any,
        index: int,
        item: Any,
        defaults: dict[str, Any],
        known: tuple[str, ...],
        seen: dict[str, Pos],
        hosts: tuple[str, ...] = (),
    ) -> Agent | None:
        pos = _item_pos(section, index)
        if not isinstance(item, dict):
            self.add(pos, f"agent must be a mapping with name: and runtime:, got {_kind(item)}")
            return None
        self.keys(item, AGENT_KEYS)
        name = self.agent_name(item, pos, seen)
        runtime = self.agent_runtime(item, pos, known)
        host = self.agent_host(item, hosts) if "host" in item else None
        workdir: Path | None = None
        if host is not None:
            if "workdir" in item:
                self.workdir_text(item, "workdir")
        elif "workdir" in item:
            workdir = self.workdir(item, "workdir")
        else:
            workdir = self.default_workdir(defaults)
        args = self.words(item, "args", "args") if "args" in item else ()
        env = dict(defaults.get("env") or {})
        if "env" in item:
            env.update(self.env_map(item, "env"))
        restart = self.restart(item) if "restart" in item else defaults.get("restart")
        stuck = self.stuck_after(item) if "stuck_after" in item else defaults.get("stuck_after")
        if name is None or runtime is None:
            return None
        return Agent(
            name=name,
            runtime=runtime,
            workdir=workdir,
            args=args,
            env=tuple(env.items()),
            restart=RestartPolicy(restart or RestartPolicy.ON_FAILURE),
            stuck_after=DEFAULT_STUCK_AFTER_S if stuck is None else stuck,
            host=host,
        )

    def agent_host(self, item: Any, hosts: tuple[str, ...]) -> str | None:
        """The declared host an agent runs on; `local` (or no `host:`) is this machine."""
        value = self.string(item, "host", "host")
        if value is None or value == LOCAL_HOST:
            return None
        if value not in hosts:
            known = ", ".join(hosts) if hosts else "none: declare it under hosts:"
            match = closest(value, hosts)
            hint = f" (did you mean {match!r}?)" if match else f"; declared hosts: {known}"
            self.add(_val_pos(item, "host"), f"unknown host {value!r}{hint}")
            return None
        return value

    def agent_name(self, item: Any, pos: Pos, seen: dict[str, Pos]) -> str | None:
        if "name" not in item:
            self.add(pos, "agent is missing required key 'name'")
            return None
        name = self.string(item, "name", "agent name")
        if name is None:
            return None
        where = _val_pos(item, "name")
        if not re.fullmatch(NAME_PATTERN, name):
            self.add(
                where,
                f"invalid agent name {_show(name)}: must match ^{NAME_PATTERN}$ "
                "(a lowercase letter, then lowercase letters, digits, '_' or '-'; at most 32) "
                "because it becomes a tmux session, systemd instance and file name",
            )
            return None
        if name in seen:
            self.add(
                where,
                f"duplicate agent name {_show(name)} "
                f"(first defined at line {seen[name][0] + 1})",
            )
            return None
        seen[name] = where
        return name

    def agent_runtime(self, item: Any, pos: Pos, known: tuple[str, ...]) -> str | None:
        if "runtime" not in item:
            self.add(pos, f"agent is missing required key 'runtime' (one of: {', '.join(known)})")
            return None
        runtime = self.string(item, "runtime", "runtime")
        if runtime is None:
            return None
        if runtime not in known:
            match = closest(runtime, known)
            hint = (
                f" (did you mean {match!r}?)" if match else f"; known runtimes: {', '.join(known)}"
            )
            self.add(_val_pos(item, "runtime"), f"unknown runtime {_show(runtime)}{hint}")
            return None
        return runtime

    # -- hosts (docs/hosts.md): every value here ends up in an ssh argv

    def hosts(self, doc: Any) -> tuple[tuple[Host, ...], tuple[str, ...]]:
        """Valid hosts, and every host name that was spelled validly (so agents naming a
        host with a bad entry are not also told it is unknown)."""
        section = doc.get("hosts")
        if section is None:
            return (), ()
        if not isinstance(section, dict):
            self.add(
                _val_pos(doc, "hosts"),
                "hosts must be a mapping of name: {ssh: user@address, ...}, "
                f"got {_kind(section)}",
            )
            return (), ()
        out: list[Host] = []
        names: list[str] = []
        for name, spec in section.items():
            if not self.host_name(section, name):
                continue
            names.append(name)
            host = self.host(section, name, spec)
            if host is not None:
                out.append(host)
        return tuple(out), tuple(names)

    def host_name(self, section: Any, name: Any) -> bool:
        pos = _key_pos(section, name)
        if name == LOCAL_HOST:
            self.add(pos, f"host name {LOCAL_HOST!r} means this machine; name the host otherwise")
            return False
        if not isinstance(name, str) or not re.fullmatch(HOST_NAME_PATTERN, name):
            self.add(
                pos,
                f"invalid host name {name!r}: must match ^{HOST_NAME_PATTERN}$ (lowercase "
                "letters, digits, '.', '_', '-'; at most 32) because it names a control socket",
            )
            return False
        return True

    def host(self, section: Any, name: str, spec: Any) -> Host | None:
        if not isinstance(spec, dict):
            self.add(
                _val_pos(section, name),
                f"host {name!r} must be a mapping with at least ssh: user@address, "
                f"got {_kind(spec)}",
            )
            return None
        before = len(self.problems)
        self.keys(spec, HOST_KEYS)
        target = None
        if "ssh" not in spec:
            self.add(_key_pos(section, name), f"host {name!r} is missing required key 'ssh'")
        else:
            target = self.ssh_target(spec)
        port = self.port(spec) if "port" in spec else None
        identity = self.identity(spec) if "identity" in spec else None
        home = self.host_home(spec) if "home" in spec else None
        if len(self.problems) > before or target is None:
            return None
        return Host(name=name, ssh=target, port=port, identity=identity, home=home)

    def ssh_target(self, spec: Any) -> str | None:
        value = self.string(spec, "ssh", "ssh target")
        if value is None:
            return None
        pos = _val_pos(spec, "ssh")
        if value.startswith("-"):
            problem = "must not start with '-' (ssh would read it as an option)"
        elif any(c.isspace() or not c.isprintable() for c in value):
            problem = "must not contain whitespace or control characters"
        elif not re.fullmatch(SSH_TARGET_PATTERN, value):
            problem = (
                "expected [user@]host: a name from your ssh config, a DNS name or an "
                "address (letters, digits, '.', '_', '-', ':'); the port goes in port:"
            )
        else:
            return value
        self.add(pos, f"invalid ssh target {value!r}: {problem}")
        return None

    def port(self, spec: Any) -> int | None:
        value = spec["port"]
        if type(value) is int and 1 <= value <= 65535:
            return value
        self.add(
            _val_pos(spec, "port"),
            f"port must be an integer from 1 to 65535, got {_kind(value)} {_show(value)}",
        )
        return None

    def identity(self, spec: Any) -> Path | None:
        """A private key file for this host; read by the local ssh, so expanded here."""
        raw = self.string(spec, "identity", "identity")
        if raw is None:
            return None
        pos = _val_pos(spec, "identity")
        if any(not c.isprintable() for c in raw) or "%" in raw:
            self.add(
                pos, "identity must not contain control characters or '%' (ssh expands it)"
            )
            return None
        return self.expand(raw, pos, "identity")

    def host_home(self, spec: Any) -> str | None:
        """The mosaic home on the host: kept as written (`~` is the host's), and given to
        the host's mosaic as one quoted argument."""
        raw = self.string(spec, "home", "home")
        if raw is None:
            return None
        pos = _val_pos(spec, "home")
        if any(not c.isprintable() for c in raw):
            self.add(pos, "home must not contain control characters")
            return None
        if not (raw.startswith("/") or raw == "~" or raw.startswith("~/")):
            self.add(
                pos, f"home {raw!r} must be an absolute path on the host, or start with ~/"
            )
            return None
        return raw

    # -- custom runtimes

    def runtimes(self, doc: Any) -> tuple[dict[str, Runtime], set[str]]:
        """Built-ins plus valid custom runtimes, and every custom name that was spelled
        (so agents naming a broken runtime are not told it is unknown)."""
        merged = builtin_runtimes()
        section = doc.get("runtimes")
        if section is None:
            return merged, set()
        if not isinstance(section, dict):
            self.add(
                _val_pos(doc, "runtimes"),
                f"runtimes must be a mapping of name: definition, got {_kind(section)}",
            )
            return merged, set()
        names: set[str] = set()
        for name, spec in section.items():
            if self.runtime_name(section, name, merged):
                names.add(name)
                runtime = self.runtime(section, name, spec)
                if runtime is not None:
                    merged[name] = runtime
        return merged, names

    def runtime_name(self, section: Any, name: Any, builtins: dict[str, Runtime]) -> bool:
        pos = _key_pos(section, name)
        if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
            self.add(pos, f"invalid runtime name {_show(name)}: must match ^{NAME_PATTERN}$")
            return False
        if name in builtins:
            self.add(pos, f"runtime {name!r} is built in; give the custom runtime another name")
            return False
        return True

    def runtime(self, section: Any, name: str, spec: Any) -> Runtime | None:
        if not isinstance(spec, dict):
            self.add(
                _val_pos(section, name),
                f"runtime {name!r} must be a mapping with at least command:, got {_kind(spec)}",
            )
            return None
        before = len(self.problems)
        self.keys(spec, RUNTIME_KEYS)
        if "command" not in spec:
            self.add(_key_pos(section, name), f"runtime {name!r} is missing required key 'command'")
            command: tuple[str, ...] = ()
        else:
            command = self.words(spec, "command", "command", nonempty=True)
        processes = self.words(spec, "processes", "processes") if "processes" in spec else ()
        regexes: dict[str, Any] = {k: self.regex(spec, k) for k in REGEX_KEYS if k in spec}
        extra = self.runtime_extras(spec)
        if len(self.problems) > before or not command:
            return None
        return Runtime(
            name=name,
            command=command,
            processes=processes or (os.path.basename(command[0]),),
            builtin=False,
            **regexes,
            **extra,
        )

    def runtime_extras(self, spec: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "profile" in spec:
            out["profile"] = self.choice(spec, "profile", "profile", PROFILES)
        if "submit_key" in spec:
            out["submit_key"] = self.string(spec, "submit_key", "submit_key")
        if "quit_keys" in spec:
            out["quit_keys"] = self.words(spec, "quit_keys", "quit_keys")
        if "paste_window_ms" in spec:
            value = spec["paste_window_ms"]
            if type(value) is not int or not 0 <= value <= 10_000:
                self.add(
                    _val_pos(spec, "paste_window_ms"),
                    "paste_window_ms must be an integer from 0 to 10000, "
                    f"got {_described(value)}",
                )
            else:
                out["paste_window_ms"] = value
        for key in ("approve_keys", "deny_keys"):
            if key in spec:
                out[key] = self.words(spec, key, key, nonempty=True)
        if "debounce_ms" in spec:
            value = spec["debounce_ms"]
            if type(value) is not int or not 0 <= value <= 60_000:
                self.add(
                    _val_pos(spec, "debounce_ms"),
                    "debounce_ms must be an integer from 0 to 60000, "
                    f"got {_kind(value)} {_show(value)}",
                )
            else:
                out["debounce_ms"] = value
        return out

    # -- notify

    def notify(self, doc: Any, agents: list[str]) -> tuple[NotifyTarget, ...]:
        section = doc["notify"]
        if section is None:
            return ()
        if not isinstance(section, list):
            self.add(
                _val_pos(doc, "notify"),
                f"notify must be a list of targets (- on: [...]), got {_kind(section)}",
            )
            return ()
        out = []
        for i, item in enumerate(section):
            target = self.notify_target(section, i, item, agents)
            if target is not None:
                out.append(target)
        return tuple(out)

    def notify_target(
        self, section: Any, index: int, item: Any, agents: list[str]
    ) -> NotifyTarget | None:
        pos = _item_pos(section, index)
        if not isinstance(item, dict):
            self.add(pos, f"notify entry must be a mapping with on: and one of "
                          f"{', '.join(NOTIFY_KINDS)}, got {_kind(item)}")  # fmt: skip
            return None
        before = len(self.problems)
        self.keys(item, NOTIFY_KEYS)
        on: tuple[str, ...] = ()
        if "on" not in item:
            self.add(pos, "notify entry is missing required key 'on' (a list of event types)")
        else:
            on = self.names_in(item, "on", "event type", eventtypes.NAMES)
        chosen: tuple[str, ...] = ()
        if "agents" in item:
            chosen = self.names_in(item, "agents", "agent", tuple(agents))
        kinds = [k for k in NOTIFY_KINDS if k in item]
        if len(kinds) != 1:
            what = "none" if not kinds else ", ".join(kinds)
            self.add(pos, f"notify entry needs exactly one of {', '.join(NOTIFY_KINDS)} "
                          f"(got {what})")  # fmt: skip
        command: tuple[str, ...] = ()
        webhook = None
        desktop = False
        if "command" in item:
            command = self.words(item, "command", "notify command", nonempty=True)
        if "webhook" in item:
            webhook = self.webhook(item)
        if "desktop" in item:
            if item["desktop"] is not True:
                self.add(_val_pos(item, "desktop"),
                         f"desktop must be true, got {_kind(item['desktop'])} "
                         f"{_show(item['desktop'])}")  # fmt: skip
            desktop = True
        if len(self.problems) > before:
            return None
        return NotifyTarget(on=on, agents=chosen, command=command, webhook=webhook,
                            desktop=desktop)  # fmt: skip

    def names_in(
        self, mapping: Any, key: str, what: str, choices: tuple[str, ...]
    ) -> tuple[str, ...]:
        value = mapping[key]
        if not isinstance(value, list) or not value:
            self.add(_val_pos(mapping, key),
                     f"{key} must be a non-empty list of {what}s, got {_kind(value)}")  # fmt: skip
            return ()
        out = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item in choices:
                out.append(str(item))
                continue
            shown = repr(item) if isinstance(item, str) else _kind(item)
            hint = _hint(item, choices) or f" (known: {', '.join(choices) or 'none'})"
            self.add(_item_pos(value, i), f"unknown {what} {shown} in notify {key}{hint}")
        return tuple(dict.fromkeys(out))

    def webhook(self, item: Any) -> str | None:
        from urllib.parse import urlsplit

        url = self.string(item, "webhook", "webhook")
        if url is None:
            return None
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok or any(ord(c) < 0x21 for c in url):
            self.add(_val_pos(item, "webhook"),
                     f"webhook must be an http:// or https:// URL with a host, got {url!r}")
            return None
        return url

    def regex(self, spec: Any, key: str) -> str | None:
        value = self.string(spec, key, key)
        if value is None:
            return None
        try:
            re.compile(value, re.MULTILINE)
        except re.error as exc:
            line, col = _val_pos(spec, key)
            offset = self.source_offset(line, col, exc.pos or 0) if exc.pos is not None else 0
            self.add((line, col + offset), f"invalid {key} regex: {exc.msg}")
            return None
        except RecursionError:  # the regex compiler recurses once per nested group
            self.add(_val_pos(spec, key), f"invalid {key} regex: groups nested too deeply")
            return None
        except (OverflowError, ValueError) as exc:  # e.g. a{99999999999}
            self.add(_val_pos(spec, key), f"invalid {key} regex: {exc}")
            return None
        return value

    def source_offset(self, line: int, col: int, index: int) -> int:
        """Where character `index` of a scalar's value sits in its source line, counting the
        opening quote and the escapes that make the source longer than the value."""
        if line >= len(self.lines):
            return 0
        src = self.lines[line][col:]
        if not src or src[0] not in "'\"":
            return index
        quote, i, seen = src[0], 1, 0
        while i < len(src) and seen < index:
            if (quote == "'" and src.startswith("''", i)) or (quote == '"' and src[i] == "\\"):
                i += 2
            else:
                i += 1
            seen += 1
        return i

