"""Each command imports only what it uses: `python -X importtime` lists every module a real
process loads, and everything beyond the import floor must be on a short, explained list."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import EXAMPLES

FLOOR = "import click, jinja2, yaml"
# Loaded beyond the floor, each for a reason of its own.
ALLOWED = {
    "runpy",  # `python -m`; the console script does not load it
    "dataclasses",  # Settings, Rendered and the option vocabulary are dataclasses
    "copy",  # dataclasses' own import
    # click's gettext looks up the locale the first time a help text is translated
    "locale",
    "_locale",
}


def imported(*args: str) -> set[str]:
    """The modules a fresh interpreter loads for args (``-c CODE`` or ``-m jwksdeploy ...``)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return {
        line.rpartition("|")[2].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and not line.endswith("| package")
    }


@pytest.fixture(scope="module")
def floor() -> set[str]:
    return imported("-c", FLOOR)


def beyond_floor(floor: set[str], *args: str) -> set[str]:
    """Modules beyond the floor, ours and the compiled templates left out."""
    ours = ("jwksdeploy", "_jinja2_module_templates_")
    return {m for m in imported("-m", "jwksdeploy", *args) - floor if not m.startswith(ours)}


def test_render_imports_nothing_beyond_the_floor_it_does_not_use(floor: set[str]) -> None:
    extra = beyond_floor(floor, "render", "--jwks", str(EXAMPLES / "jwks.json"), "-n", "a")
    assert extra <= ALLOWED, f"render imports {sorted(extra - ALLOWED)} it does not use"


def test_render_to_a_directory_imports_only_the_writer(floor: set[str], tmp_path: Path) -> None:
    args = ("render", "--jwks", str(EXAMPLES / "jwks.json"), "-n", "a")
    extra = beyond_floor(floor, *args, "--output-dir", str(tmp_path / "out"))
    writer = {"fcntl", "secrets", "hmac", "random", "bisect", "_random", "_sha512"}
    assert extra <= ALLOWED | writer, sorted(extra - ALLOWED - writer)


def test_help_imports_nothing_beyond_the_floor(floor: set[str]) -> None:
    extra = beyond_floor(floor, "--help")
    formatter = {"textwrap", "click._textwrap"}  # click wraps the help text with them
    assert extra <= ALLOWED | formatter, f"--help imports {sorted(extra - ALLOWED - formatter)}"


def test_oct_keys_import_no_crypto_library(floor: set[str], tmp_path: Path) -> None:
    out, private = str(tmp_path / "jwks.json"), str(tmp_path / "private.json")
    args = ("jwks", "generate", "--kty", "oct", "--out", out, "--private-out", private)
    modules = imported("-m", "jwksdeploy", *args)
    crypto = sorted(
        m for m in modules if m.split(".")[0] in ("joserfc", "cryptography", "_cffi_backend")
    )
    assert crypto == []


def test_help_lists_the_commands_without_importing_them() -> None:
    modules = imported("-m", "jwksdeploy", "--help")
    ours = sorted(m for m in modules if m.startswith("jwksdeploy."))
    assert ours == [
        "jwksdeploy.cli",
        "jwksdeploy.cli.common",
        "jwksdeploy.cli.render",
        "jwksdeploy.errors",
        "jwksdeploy.terminal",  # the one printer's escaping, split from errors.py
    ]


@pytest.mark.parametrize("limit", [20, 45, 60, 74, 120, 200])
def test_help_listing_says_what_each_lazy_command_says(limit: int) -> None:
    import click

    from jwksdeploy.cli import LAZY_COMMANDS, LAZY_HELP, cli

    assert set(LAZY_HELP) == set(LAZY_COMMANDS)
    ctx = click.Context(cli)
    for name, text in LAZY_HELP.items():
        command = cli.get_command(ctx, name)
        assert command is not None and not command.hidden and not command.deprecated
        stand_in = click.Command(name, help=text)
        assert stand_in.get_short_help_str(limit) == command.get_short_help_str(limit), (
            f"LAZY_HELP[{name!r}] in jwksdeploy/cli/__init__.py no longer matches its docstring"
        )
