"""`mosaic fleet web`: the live dashboard; the server is `mosaic.web.server`, imported only
when this command runs (aiohttp costs every other command nothing)."""

from __future__ import annotations

import click

from mosaic.cli.common import paths_of
from mosaic.errors import UsageError

HELP = """Serve the fleet's live dashboard and its JSON API until interrupted.

Prints the URL to open; it carries the access token (kept in <home>/fleet/run/web.token),
which the page trades for a cookie. Listens on 127.0.0.1 unless --host says otherwise
(then it warns: anyone who can reach the port and learns the token can type into your
agents); --cert/--key serve HTTPS.

\b
  mosaic fleet web --open                      open it in your browser
  mosaic fleet web --host 0.0.0.0 --cert c.pem --key k.pem
"""


@click.command("web", help=HELP, short_help="Serve the live dashboard (and its JSON API).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0: any free one).")  # fmt: skip
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS certificate (PEM) to serve HTTPS; needs --key.")  # fmt: skip
@click.option("--key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="TLS private key (PEM) for --cert.")  # fmt: skip
@click.pass_context
def web_cmd(
    ctx: click.Context,
    host: str,
    port: int,
    open_browser: bool,
    cert: str | None,
    key: str | None,
) -> None:
    from pathlib import Path

    if (cert is None) != (key is None):
        raise UsageError("--cert and --key go together (HTTPS needs both)")
    from mosaic.web.server import Options, serve

    options = Options(host, port, Path(cert) if cert else None, Path(key) if key else None,
                      open_browser)  # fmt: skip
    ctx.exit(serve(paths_of(ctx), options))
