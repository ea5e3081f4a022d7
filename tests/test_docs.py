"""The README's reference stays true to the code."""

from __future__ import annotations

import re
from typing import Any

from jwksdeploy.cli import cli
from jwksdeploy.errors import EXIT_CODES

from .helpers import REPO

README = (REPO / "README.md").read_text()


def test_exit_code_table_matches_the_error_tree() -> None:
    block = README.split("<!-- exit-codes:")[1].split("<!-- /exit-codes -->")[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", block, flags=re.MULTILINE)
    assert [(int(code), text) for code, text in rows] == EXIT_CODES


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.split("## Quick start")[1].split("##")[0]
    block = section.split("```sh")[1].split("```")[0]
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    install, test = (command.strip() for command in commands)
    assert "jwksdeploy render" in install and "[test]" not in install  # the tool alone
    assert "'.[test]'" in test and "pytest" in test
    ci = (REPO / ".ci" / "run").read_text()
    assert test in ci.splitlines()


def test_the_quick_start_example_renders_without_a_warning() -> None:
    import shlex

    from .helpers import run

    section = README.split("## Quick start")[1].split("##")[0]
    install = section.split("```sh")[1].split("```")[0].strip().splitlines()[0]
    render = install.split("&&")[-1].strip()
    args = shlex.split(render)
    assert args[0].endswith("jwksdeploy")
    result = run(*args[1:])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "" and "kind: Deployment" in result.stdout


def test_every_render_flag_is_documented() -> None:
    for param in cli.commands["render"].params:
        for flag in getattr(param, "opts", []):
            if flag.startswith("--"):
                assert f"`{flag}" in README or f"{flag}" in README, flag


def _commands(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    import click

    found = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            if command.invoke_without_command:  # `token` signs by itself, `token inspect` too
                found.append((f"{prefix}{name}", command))
            found.extend(_commands(command, f"{prefix}{name} "))
        else:
            found.append((f"{prefix}{name}", command))
    return found


def test_every_command_and_flag_is_in_the_readme() -> None:
    for name, command in _commands(cli):
        assert f"jwksdeploy {name}" in README, name
        for param in command.params:
            if getattr(param, "hidden", False):
                continue  # an old spelling kept as a hidden alias
            old = getattr(param, "hidden_aliases", ())
            for flag in getattr(param, "opts", []):
                if flag.startswith("--") and flag != "--help" and flag not in old:
                    assert flag in README, f"{name} {flag}"


def test_the_readme_gateway_examples_run() -> None:
    import shlex

    from .helpers import run

    lines = [line for line in README.splitlines() if line.startswith("jwksdeploy gateway ")]
    assert len(lines) == 4
    for line in lines:
        args = shlex.split(line.replace("-n envoy-yang", "--url http://10.0.0.12:31456/jwks"))
        result = run(*args[1:])
        assert result.exit_code == 0, (line, result.stderr)
