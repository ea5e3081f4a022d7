"""One concept, one flag, one meaning: every command is walked (lazy ones included) and its
flags are checked against the vocabulary in jwksdeploy/cli_common.py."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from typing import Any

import click
import pytest

from jwksdeploy.cli import cli
from jwksdeploy.cli_common import VOCABULARY, VocabOption

from .helpers import run


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    """Every leaf command through list_commands/get_command, so lazy ones are loaded too."""
    found: list[tuple[str, click.Command]] = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix}{name} "))
        else:
            found.append((f"{prefix}{name}", command))
    return found


COMMANDS = _commands(cli)
FLAG_CONCEPT = {
    flag: key
    for key, concept in VOCABULARY.items()
    for declared in concept.flags
    for flag in declared.split("/")
}
ALIASES = {alias for concept in VOCABULARY.values() for alias in concept.aliases}


def _visible(param: click.Option) -> list[str]:
    opts = param.visible_opts() if isinstance(param, VocabOption) else list(param.opts)
    return [*opts, *param.secondary_opts]


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]


def test_the_walk_reaches_the_lazy_commands() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"gateway", "token", "verify", "serve", "jwks generate", "render", "diff"} <= names


def test_one_flag_name_means_one_concept() -> None:
    """A flag two commands share is a vocabulary concept, or one shared option definition."""
    meanings: dict[str, set[Any]] = defaultdict(set)
    users: dict[str, list[str]] = defaultdict(list)
    for name, command in COMMANDS:
        for param in _options(command):
            if param.hidden:
                continue
            for flag in _visible(param):
                concept = getattr(param, "concept", None) or FLAG_CONCEPT.get(flag)
                if isinstance(param, VocabOption):
                    # An option that names its concept carries exactly that concept's flags.
                    assert FLAG_CONCEPT.get(flag) == concept, (name, flag, concept)
                meanings[flag].add(concept or (param.name, param.help))
                users[flag].append(name)
    mixed = {
        flag: (sorted(map(str, found)), users[flag])
        for flag, found in meanings.items()
        if len(found) > 1
    }
    assert not mixed, mixed


def test_one_concept_has_one_visible_name() -> None:
    """Old spellings are hidden aliases of their concept and never shown as flags."""
    for name, command in COMMANDS:
        visible = {flag for p in _options(command) if not p.hidden for flag in _visible(p)}
        for param in _options(command):
            hidden = (
                [*param.opts, *param.secondary_opts]
                if param.hidden
                else [o for o in param.opts if o not in _visible(param)]
            )
            for flag in hidden:
                if flag.startswith("--"):
                    assert flag in ALIASES, (name, flag, "an unregistered hidden flag")
                    assert flag not in visible, (name, flag)
            if isinstance(param, VocabOption):
                concept = VOCABULARY[param.concept]
                assert set(param.hidden_aliases) <= set(concept.aliases), (name, param.name)
                declared = {f for d in concept.flags for f in d.split("/")}
                assert set(_visible(param)) == declared, (name, param.name)
        for flag in visible:
            assert flag not in ALIASES or flag in FLAG_CONCEPT, (name, flag, "an old spelling")


def test_the_issues_old_spellings_are_gone_from_help() -> None:
    """Issue 11's list: the concept names are the ones --help shows."""
    checks = {
        "token": (["--issuer", "--audience", "--private"], ["--iss ", "--aud ", "--key "]),
        "verify": (["--issuer", "--audience", "--request-timeout"], ["--iss ", "--timeout"]),
        "gateway": (["--name", "--provider-name", "--fetch-timeout"], ["--deployment"]),
        "apply": (["--provider", "--provider-name", "--fetch-timeout"], ["--gateway "]),
        "jwks check": (["--jwks"], []),
        "jwks public": (["--private", "--jwks"], ["--out "]),
    }
    for command, (shown, hidden) in checks.items():
        result = run(*command.split(), "--help")
        assert result.exit_code == 0, result.output
        for flag in shown:
            assert flag in result.stdout, (command, flag)
        for flag in hidden:
            assert flag not in result.stdout, (command, flag)


@pytest.mark.parametrize("name", [name for name, _ in COMMANDS])
def test_every_command_has_help(name: str) -> None:
    result = run(*name.split(), "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage: ")


def test_old_spellings_still_work(tmp_path: Any) -> None:
    """Hidden aliases: `token --iss/--aud/--key`, `gateway --deployment`."""
    private = tmp_path / "p.json"
    public = tmp_path / "j.json"
    made = run("jwks", "generate", "--private-out", str(private), "--out", str(public))
    assert made.exit_code == 0, made.stderr
    old = run("token", "--key", str(private), "--iss", "i", "--aud", "a")
    new = run("token", "--private", str(private), "--issuer", "i", "--audience", "a")
    assert old.exit_code == new.exit_code == 0
    assert _claims(old.stdout)["iss"] == _claims(new.stdout)["iss"] == "i"
    assert _claims(old.stdout)["aud"] == _claims(new.stdout)["aud"] == "a"
    assert json.loads(public.read_text())["keys"]


def _claims(token: str) -> dict[str, Any]:
    payload = token.strip().split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def test_no_arguments_prints_help_and_exits_0() -> None:
    result = run()
    assert result.exit_code == 0
    assert "Usage: " in result.stdout and "render" in result.stdout


def test_a_mistyped_command_suggests_the_nearest() -> None:
    result = run("gatway")
    assert result.exit_code == 2
    assert "Did you mean 'gateway'?" in result.stderr
