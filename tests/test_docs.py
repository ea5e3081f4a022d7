"""The README's reference stays true to the code."""

from __future__ import annotations

import re
from typing import Any

from jwksdeploy.cli import cli
from jwksdeploy.errors import EXIT_CODES

from .helpers import REPO

README = (REPO / "README.md").read_text()
REFERENCE = (REPO / "docs" / "reference.md").read_text()
DOCS = README + "".join(path.read_text() for path in sorted((REPO / "docs").glob("*.md")))


def test_exit_code_table_matches_the_error_tree() -> None:
    block = REFERENCE.split("<!-- exit-codes:")[1].split("<!-- /exit-codes -->")[0]
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
                assert f"`{flag}" in DOCS or f"{flag}" in DOCS, flag


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
        assert f"jwksdeploy {name}" in DOCS, name
        for param in command.params:
            if getattr(param, "hidden", False):
                continue  # an old spelling kept as a hidden alias
            old = getattr(param, "hidden_aliases", ())
            for flag in getattr(param, "opts", []):
                if flag.startswith("--") and flag != "--help" and flag not in old:
                    assert flag in DOCS, f"{name} {flag}"


def test_the_readme_gateway_examples_run() -> None:
    import shlex

    from .helpers import run

    lines = [line for line in REFERENCE.splitlines() if line.startswith("jwksdeploy gateway ")]
    assert len(lines) == 4
    for line in lines:
        args = shlex.split(line.replace("-n envoy-yang", "--url http://10.0.0.12:31456/jwks"))
        result = run(*args[1:])
        assert result.exit_code == 0, (line, result.stderr)


def test_the_quick_start_prints_examples_rendered_yaml(update_golden: bool) -> None:
    """examples/rendered.yaml is exactly what the Quick start's first line prints."""
    import shlex

    from .helpers import run

    section = README.split("## Quick start")[1].split("##")[0]
    install = section.split("```sh")[1].split("```")[0].strip().splitlines()[0]
    args = shlex.split(install.split("&&")[-1].strip())[1:]
    result = run(*[str(REPO / a) if a.startswith("examples/") else a for a in args])
    golden = REPO / "examples" / "rendered.yaml"
    if update_golden:
        golden.write_text(result.stdout)
    assert result.exit_code == 0 and result.stdout == golden.read_text()
    assert "examples/rendered.yaml" in section


def test_the_first_screen_is_an_install_and_the_quick_start() -> None:
    first_screen = README.split("## Tutorial")[0]
    assert len(first_screen.splitlines()) <= 60
    install = first_screen.split("## Install")[1].split("## Quick start")[0]
    assert "pipx install" in install and "pip wheel" in install
    assert "pip install jwksdeploy" not in README  # a name the project does not own


def test_the_reference_has_a_table_of_contents_of_its_sections() -> None:
    import re

    headings = [
        line
        for line in REFERENCE.split("```")[0::2]
        for line in line.splitlines()
        if re.match(r"^##+ ", line)
    ]
    toc = (REPO / "docs" / "README.md").read_text() + REFERENCE.split("## Concepts")[0]
    for heading in headings:
        title = heading.lstrip("#").strip().replace("`", "")
        assert f"[{title}]" in toc, title


def test_no_example_installs_a_name_the_project_does_not_own() -> None:
    for path in sorted((REPO / "examples").rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".yml", ".sh", ""):
            assert "pip install jwksdeploy" not in path.read_text(errors="replace"), path
    ci = (REPO / "examples" / "ci" / "github-actions.yaml").read_text()
    assert 'pip install "jwksdeploy @ git+${JWKSDEPLOY_GIT}@${JWKSDEPLOY_REF}"' in ci
