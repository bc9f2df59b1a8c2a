"""The dashboard's budgets (docs/architecture.md, "web"), each as a ratio against its bound.

- CPU of the `mosaic fleet web` process (with the tmux clients and anything else it
  forked) while a page is open on a 50-agent idle fleet, one agent's screen shown, from
  /proc over 30 s: against 3 % of one core (target 1.0).
- Screen-to-page latency: an agent prints `tick N <its clock>` at random intervals; in the
  browser (Debian's chromium, headless, via Playwright) a MutationObserver notes when the
  page's screen first shows each tick. The p95 of (page time - printed time), over 60
  ticks, against 1 s (target 1.0). Both clocks are this machine's.
"""

from __future__ import annotations

import os
import select
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from benchlib import MOSAIC, Row, base_env, rss_kib, run_cmd

AGENTS = 50
MEASURE_S = 30.0
TICKS = 60
CLK_TCK = os.sysconf("SC_CLK_TCK")
CHROMIUM = "/usr/bin/chromium"
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TICKER = (
    "import random, time\n"
    "n = 0\n"
    "while True:\n"
    "    time.sleep(random.uniform(0.3, 0.9))\n"
    "    n += 1\n"
    "    print(f'tick {n} {time.time():.3f}', flush=True)\n"
)
OBSERVER = """() => {
  window.__ticks = {};
  const pre = document.getElementById('screen');
  const look = () => {
    const now = Date.now() / 1000;
    for (const m of pre.textContent.matchAll(/tick (\\d+) (\\d+\\.\\d+)/g)) {
      if (!(m[1] in window.__ticks)) window.__ticks[m[1]] = now - Number(m[2]);
    }
  };
  new MutationObserver(look).observe(pre, {childList: true, subtree: true, characterData: true});
}"""


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15])


def _tree(pid: int) -> list[int]:
    from mosaic.base import procs

    return [pid, *procs.descendants(pid, procs.all_procs())]


def _fleet(tmp: Path) -> dict[str, str]:
    home = tmp / "home"
    (home / "fleet").mkdir(parents=True)
    agents = "".join(f"  - name: a{i:02d}\n    runtime: shell\n" for i in range(AGENTS))
    (home / "fleet" / "roster.yaml").write_text(
        f"version: 1\nagents:\n{agents}  - name: ticker\n    runtime: ticker\n"
        f"runtimes:\n  ticker:\n    command: [python3, {str(tmp / 'ticker.py')!r}]\n"
        "    processes: [python3]\n"
    )
    (tmp / "ticker.py").write_text(TICKER)
    env = {k: v for k, v in base_env().items() if not k.startswith(("TMUX", "MOSAIC_"))}
    env.update(MOSAIC_HOME=str(home), TMUX_TMPDIR=str(tmp), HOME=str(tmp), SHELL="/bin/bash",
               MOSAIC_TMUX_SOCKET=f"bweb{uuid.uuid4().hex[:6]}", MOSAIC_FLEET_SUPERVISOR="tmux")
    return env


def _web(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([MOSAIC, "fleet", "web", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    if not ready:
        raise RuntimeError("bench: the dashboard printed no URL")
    return proc, proc.stdout.readline().decode().strip()


def _measure(tmp: Path) -> tuple[float, float, list[float]]:
    """(% of one core, MiB, latencies in s)."""
    from playwright.sync_api import sync_playwright

    env = _fleet(tmp)
    web = None
    try:
        run_cmd([MOSAIC, "fleet", "start"], env)
        run_cmd([MOSAIC, "fleet", "stop", "ticker"], env)  # idle means idle: back later
        web, url = _web(env)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url + "#a00")
            page.wait_for_function("() => document.querySelectorAll('tr[data-agent]').length"
                                   f" === {AGENTS + 1}", timeout=60_000)  # fmt: skip
            time.sleep(5.0)  # the starts' output and the first status are behind us
            tree = _tree(web.pid)
            before = sum(_cpu_ticks(p) for p in tree)
            t0 = time.monotonic()
            time.sleep(MEASURE_S)
            tree = _tree(web.pid)
            used = sum(_cpu_ticks(p) for p in tree) - before
            cpu = 100.0 * used / CLK_TCK / (time.monotonic() - t0)
            rss = sum(rss_kib(p) for p in tree) / 1024

            run_cmd([MOSAIC, "fleet", "start", "ticker"], env)
            page.click('tr[data-agent="ticker"]')
            page.wait_for_function("() => /tick \\d+/.test("
                                   "document.getElementById('screen').textContent)",
                                   timeout=30_000)  # fmt: skip
            page.evaluate(OBSERVER)
            page.wait_for_function(f"() => Object.keys(window.__ticks).length >= {TICKS + 2}",
                                   timeout=120_000)  # fmt: skip
            ticks: dict[str, float] = page.evaluate("() => window.__ticks")
            browser.close()
        # The first ticks seen may have been on screen before the observer was attached.
        lat = [v for k, v in sorted(ticks.items(), key=lambda kv: int(kv[0]))][2:]
        return cpu, rss, lat
    finally:
        if web is not None:
            web.terminate()
            web.wait(timeout=20)
        subprocess.run([MOSAIC, "fleet", "stop"], env=env, capture_output=True, check=False)


def run() -> list[Row]:
    if shutil.which("tmux") is None or not Path(CHROMIUM).exists():
        return []
    # A tick job of the stopped server may recreate its socket directory meanwhile.
    with tempfile.TemporaryDirectory(prefix="mweb-", dir="/tmp", ignore_cleanup_errors=True) as tmp:
        cpu, rss, lat = _measure(Path(tmp))
    p95 = statistics.quantiles(lat, n=20)[18]
    return [
        Row(f"web CPU, page open, {AGENTS} idle agents", cpu, "bound 3 % of a core", 3.0,
            unit="%", target=1.0),
        Row(f"web RSS, page open, {AGENTS} idle agents", rss, "the watcher's bound 60 MiB", 60.0,
            unit="MiB"),
        Row(f"screen to page p95 ({len(lat)} ticks)", p95, "bound 1 s", 1.0, target=1.0),
        Row(f"screen to page median ({len(lat)} ticks)", statistics.median(lat), "bound 1 s",
            1.0),
    ]  # fmt: skip
