"""`jwksdeploy serve`: the JWKS over HTTP on this machine, for development and tests.

Parses, calls serve.py, prints; http.server and the JWKS checks are imported when it runs.
"""

from __future__ import annotations

import sys

import click

from .common import DEFAULT_PUBLIC, echo, vocab_option
from .examples import EPILOGS

# Off 8080 (kubectl's address when it has no kubeconfig) and off well-known ports (8089:
# Splunk, 8090: Confluence), so a local `serve &` never answers another tool.
SERVE_PORT = 8099


@click.command("serve", epilog=EPILOGS["serve"])
@vocab_option("jwks", "path", default=DEFAULT_PUBLIC, show_default=True, metavar="PATH")
@vocab_option(
    "listen",
    "listen",
    aliases=("--address",),
    default="127.0.0.1",
    show_default=True,
    metavar="HOST",
    help="Listen address (0.0.0.0 in a container).",
)
@vocab_option(
    "port",
    default=SERVE_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="0 picks a free port. Not 8080: that is where kubectl looks without a kubeconfig.",
)
@click.option(
    "--max-age",
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="Cache-Control max-age of /jwks; keep it short so a rotated set spreads quickly.",
)
@click.option(
    "--access-log",
    type=click.Choice(["text", "json", "off"]),
    default="text",
    show_default=True,
    help="One line per request on stderr; the query string (it may hold a token) is dropped.",
)
@click.option(
    "--max-connections",
    default=4096,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    metavar="N",
    help="Open connections at most; beyond it a client gets 503.",
)
@click.option(
    "--idle-timeout",
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="Close a kept-alive connection idle this long.",
)
@click.option(
    "--header-timeout",
    default="10s",
    show_default=True,
    metavar="DURATION",
    help="A request must arrive whole within this (else 408).",
)
@click.option(
    "--shutdown-grace",
    default="10s",
    show_default=True,
    metavar="DURATION",
    help="On SIGTERM, how long requests in flight may take to finish.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    metavar="N",
    help="Processes sharing the port (SO_REUSEPORT); --max-connections is per process.",
)
def serve_command(
    path: str,
    listen: str,
    port: int,
    max_age: str,
    access_log: str,
    max_connections: int,
    idle_timeout: str,
    header_timeout: str,
    shutdown_grace: str,
    workers: int,
) -> None:
    """Serve a JWKS like the remote-jwks-go image: /jwks, /valid, /healthz, else `success`.

    The file is read once at start-up, as the image does. Stops cleanly on SIGTERM or Ctrl-C,
    finishing the requests in flight.
    """
    from ..durations import parse_duration
    from ..files import read_input
    from ..jwks import enforce, lint_jwks, parse_jwks
    from ..serve import Limits, bind, run_until_signalled

    limits = Limits(
        max_connections=max_connections,
        idle_timeout=_connection_timeout(idle_timeout, "--idle-timeout"),
        header_timeout=_connection_timeout(header_timeout, "--header-timeout"),
        max_age=int(parse_duration(max_age, "--max-age")),
        shutdown_grace=parse_duration(shutdown_grace, "--shutdown-grace"),
    )
    data = read_input(path, "JWKS file")
    document = parse_jwks(data, f"JWKS file {path!r}")
    for warning in enforce(lint_jwks(document), strict=False):
        echo(str(warning), err=True)
    server = bind(
        listen, port, data, document, sys.stderr, limits, access_log, reuse_port=workers > 1
    )
    host, bound = str(server.server_address[0]), server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    echo(f"serving {path} on http://{shown}:{bound}/jwks (Ctrl-C to stop)", err=True)
    run_until_signalled(server, workers)
    echo("stopped", err=True)


def _connection_timeout(text: str, flag: str) -> float:
    """A connection deadline of serve: 0 would close every connection before its first byte,
    so it is refused rather than quietly raised."""
    from ..durations import parse_duration
    from ..errors import InputError

    seconds = parse_duration(text, flag)
    if seconds < 0.001:
        raise InputError(
            f"{flag} {text!r} is shorter than 1ms, so no request could arrive in time. Use a "
            "duration like 10s."
        )
    return seconds
