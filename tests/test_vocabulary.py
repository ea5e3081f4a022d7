"""One concept, one flag, one meaning: every command is walked (lazy ones included) and its
flags are checked against the vocabulary in jwksdeploy/cli/common.py."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import click
import pytest

from jwksdeploy.cli import cli
from jwksdeploy.cli.common import VOCABULARY, VocabOption

from .helpers import EXAMPLES, run


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    """Every leaf command through list_commands/get_command, so lazy ones are loaded too."""
    found: list[tuple[str, click.Command]] = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            if command.invoke_without_command:  # `token` signs by itself, `token inspect` too
                found.append((f"{prefix}{name}", command))
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
    nested = run("jwks", "genrate")
    assert nested.exit_code == 2
    assert "Did you mean 'generate'?" in nested.stderr


# --- kubectl and Helm habits ----------------------------------------------------------------

JWKS = str(EXAMPLES / "jwks-rsa.json")


def _render_json(*args: str) -> list[dict[str, Any]]:
    result = run("render", "--jwks", JWKS, "-o", "json", *args)
    assert result.exit_code == 0, result.stderr
    items: list[dict[str, Any]] = json.loads(result.stdout)["items"]
    return items


def _deployment(items: list[dict[str, Any]]) -> dict[str, Any]:
    return next(item for item in items if item["kind"] == "Deployment")


def test_set_is_the_flag_by_its_long_name() -> None:
    flags = _render_json("-n", "a", "--replicas", "2", "--label", "team=x")
    sets = _render_json("--set", "namespace=a", "--set", "replicas=2", "--set", "label=team=x")
    assert flags == sets
    assert _deployment(sets)["spec"]["replicas"] == 2


def test_set_is_checked_like_the_flag() -> None:
    for item, expected in (
        ("replicas=two", "'two' is not a valid integer"),
        ("replicas=0", "--replicas"),
        ("service-type=Nope", "--set service-type=Nope"),
        ("no-such-flag=1", "expected NAME=VALUE with NAME a long flag"),
        ("replicas", "expected NAME=VALUE"),
    ):
        result = run("render", "--jwks", JWKS, "-n", "a", "--set", item)
        assert result.exit_code == 3, (item, result.output)
        assert result.stderr.startswith("error: ") and expected in result.stderr, result.stderr
        assert result.stdout == ""


def test_set_and_the_same_flag_together_is_refused() -> None:
    result = run("render", "--jwks", JWKS, "-n", "a", "--replicas", "2", "--set", "replicas=3")
    assert result.exit_code == 3
    assert "--replicas was given both" in result.stderr


def test_values_files_repeat_and_later_ones_win(tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    first.write_text("namespace: a\nreplicas: 2\nlabel:\n  team: x\n")
    second = tmp_path / "second.yaml"
    second.write_text("replicas: 3\nlabel:\n  tier: y\n")
    items = _render_json("-f", str(first), "-f", str(second))
    assert _deployment(items)["spec"]["replicas"] == 3
    labels = _deployment(items)["metadata"]["labels"]
    assert labels["team"] == "x" and labels["tier"] == "y"
    assert {item["metadata"]["namespace"] for item in items} == {"a"}
    flag_wins = _render_json("-f", str(first), "-f", str(second), "--replicas", "4")
    assert _deployment(flag_wins)["spec"]["replicas"] == 4


def test_render_says_when_the_kubeconfig_chose_the_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "contexts:\n- name: c\n  context: {cluster: k, user: u, namespace: team-a}\n"
        "clusters:\n- name: k\n  cluster: {server: 'https://127.0.0.1:1'}\n"
        "users:\n- name: u\n  user: {}\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    chosen = run("render", "--jwks", JWKS)
    assert chosen.exit_code == 0, chosen.stderr
    assert "namespace: team-a" in chosen.stdout
    notes = [line for line in chosen.stderr.splitlines() if "kubeconfig" in line]
    assert len(notes) == 1 and "'team-a'" in notes[0] and "-n" in notes[0]
    pinned = run("render", "--jwks", JWKS, "-n", "b")
    assert "kubeconfig" not in pinned.stderr
    monkeypatch.setenv("JWKSDEPLOY_NAMESPACE", "c")
    assert "kubeconfig" not in run("render", "--jwks", JWKS).stderr


def test_dry_run_takes_an_optional_value() -> None:
    for args in (["--dry-run=client"], ["--dry-run", "client"]):
        result = run("apply", "--jwks", JWKS, "-n", "a", *args, "-o", "name")
        assert result.exit_code == 0, result.stderr
        assert "configmap/jwks-config" in result.stdout
    bad = run("apply", "--jwks", JWKS, "-n", "a", "--dry-run=maybe")
    assert bad.exit_code == 2 and "'maybe' is not one of" in bad.stderr


def test_field_manager_is_checked() -> None:
    result = run("apply", "--jwks", JWKS, "-n", "a", "--field-manager", "", "--dry-run=client")
    assert result.exit_code == 3 and "--field-manager" in result.stderr


# --- gateway --url-from -------------------------------------------------------------------


def _gateway_url(*args: str) -> Any:
    return run("gateway", "--provider", "istio", "--issuer", "i", "-o", "json", *args)


def test_url_from_service_is_the_in_cluster_url() -> None:
    result = _gateway_url("-n", "envoy-yang", "--url-from", "service")
    assert result.exit_code == 0, result.stderr
    [policy] = json.loads(result.stdout)["items"]
    uri = policy["spec"]["jwtRules"][0]["jwksUri"]
    assert uri == "http://remote-jwks-go.envoy-yang.svc.cluster.local:8080/jwks"
    named = _gateway_url("-n", "b", "--name", "keys", "--port", "80", "--url-from", "service")
    [policy] = json.loads(named.stdout)["items"]
    assert policy["spec"]["jwtRules"][0]["jwksUri"] == "http://keys.b.svc.cluster.local:80/jwks"


def test_url_from_node_port_needs_the_port_and_an_address() -> None:
    result = _gateway_url(
        "-n", "a", "--url-from", "node-port", "--node-port", "31456", "--address", "127.0.0.1"
    )
    assert result.exit_code == 0, result.stderr
    [policy] = json.loads(result.stdout)["items"]
    assert policy["spec"]["jwtRules"][0]["jwksUri"] == "http://127.0.0.1:31456/jwks"
    for args, expected in (
        (["-n", "a", "--url-from", "node-port", "--address", "127.0.0.1"], "--node-port"),
        (["-n", "a", "--url-from", "node-port", "--node-port", "31456"], "--address"),
        (["--url-from", "service"], "-n/--namespace"),
        (["-n", "a", "--url-from", "service", "--url", "http://127.0.0.1/jwks"], "--url"),
        (["-n", "Bad_NS", "--url-from", "service"], "--namespace"),
    ):
        bad = _gateway_url(*args)
        assert bad.exit_code == 3, (args, bad.output)
        assert expected in bad.stderr and bad.stdout == ""


def test_the_readme_concept_table_is_the_vocabulary() -> None:
    readme = (EXAMPLES.parent / "docs" / "reference.md").read_text()
    block = readme.split("<!-- vocabulary:")[1].split("<!-- /vocabulary -->")[0]
    rows = [line for line in block.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(VOCABULARY) + 1
    for row, concept in zip(rows[1:], VOCABULARY.values(), strict=True):
        meaning, flags, old = (cell.strip() for cell in row.strip("|").split(" | "))
        assert meaning == concept.meaning
        assert flags == ", ".join(f"`{f}`" for f in concept.flags)
        assert old == ", ".join(f"`{a}`" for a in concept.aliases)


def test_the_tutorials_commands_parse() -> None:
    """Every `jwksdeploy ...` command of the README's tutorial names real commands and flags
    (parsed by Click, not run: they need a cluster)."""
    import re
    import shlex

    readme = (EXAMPLES.parent / "README.md").read_text()
    tutorial = readme.split("## Tutorial")[1].split("\n## ")[0]
    found = re.findall(r"`(jwksdeploy [^`]*)`", tutorial.replace("\n   ", " "))
    commands = [c for c in found if "..." not in c and "COMMAND" not in c]
    assert len(commands) >= 10, commands
    for line in commands:
        args = shlex.split(line.split(">")[0])[1:]
        group: click.Command = cli
        context = click.Context(cli, info_name="jwksdeploy")
        while isinstance(group, click.Group) and args:
            found_command = group.get_command(context, args[0])
            assert found_command is not None, line
            context = click.Context(found_command, parent=context, info_name=args[0])
            group, args = found_command, args[1:]
        if args:
            group.make_context(str(context.info_name), list(args), parent=context.parent)
