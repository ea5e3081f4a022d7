"""A new user's first ten minutes: installing, the first keys, the messages they read, the
habits they bring from kubectl and Helm, and the README tutorial run end to end."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest

from jwksdeploy.cli import cli
from jwksdeploy.cli.common import VOCABULARY

from .helpers import REPO, run

# Old spellings that still parse but are never shown: no flag of any concept spells them.
VISIBLE = {flag for concept in VOCABULARY.values() for flag in concept.flags}
HIDDEN = sorted({alias for concept in VOCABULARY.values() for alias in concept.aliases} - VISIBLE)
HIDDEN_FLAG = re.compile(
    r"(?<![\w-])(" + "|".join(re.escape(flag) for flag in HIDDEN) + r")(?![\w-])"
)


def _all_commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found.extend(_all_commands(command, (*path, name)))
        else:
            found.append((*path, name))
    return found


def _string_literals(source: str) -> list[str]:
    return [
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def test_the_hidden_spellings_come_from_the_vocabulary() -> None:
    assert "--out" in HIDDEN and "--private-out" in HIDDEN and "--iss" in HIDDEN
    assert "--timeout" not in HIDDEN  # an old spelling of one concept, the flag of another


def test_no_message_of_the_package_names_a_hidden_spelling() -> None:
    package = REPO / "jwksdeploy"
    found = []
    for path in sorted(package.rglob("*.py")):
        if "compiled_templates" in path.parts:
            continue
        for text in _string_literals(path.read_text()):
            if text in HIDDEN:
                continue  # the declaration of the hidden alias itself
            found += [f"{path.relative_to(REPO)}: {text!r}" for _ in HIDDEN_FLAG.finditer(text)]
    assert found == []


@pytest.mark.parametrize("path", _all_commands(cli), ids=" ".join)
def test_no_help_names_a_hidden_spelling(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")
    assert result.exit_code == 0, result.output
    assert HIDDEN_FLAG.findall(result.output) == []


def _documented_commands() -> list[tuple[str, str]]:
    """Every `jwksdeploy ...` command in the README, docs/ and examples/."""
    sources = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    sources += sorted(p for p in (REPO / "examples").rglob("*") if p.suffix in (".yaml", ".sh"))
    found = []
    for source in sources:
        for line in source.read_text().splitlines():
            for command in re.findall(r"(jwksdeploy [^`|)]*)", line):
                found.append((source.name, command))
    return found


def test_no_documented_command_uses_a_hidden_spelling() -> None:
    commands = _documented_commands()
    assert len(commands) > 50
    assert [c for c in commands if HIDDEN_FLAG.search(c[1])] == []


# --- a private key never lands in git -------------------------------------------------------

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git_init(folder: Path) -> None:
    subprocess.run(["git", "init", "-q", str(folder)], check=True)


@needs_git
def test_generate_refuses_a_private_set_git_would_track(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _git_init(tmp_path)
    monkeypatch.chdir(tmp_path)
    refused = run("jwks", "generate")
    assert refused.exit_code == 5 and refused.stdout == ""
    assert "git work tree" in refused.stderr and "echo 'jwks.private.json' >> .gitignore" in (
        refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [".git"]  # nothing half-written
    (tmp_path / "keys").mkdir()
    nested = run("jwks", "generate", "--private", "keys/signing.json", "--jwks", "pub.json")
    assert nested.exit_code == 5 and not (tmp_path / "keys" / "signing.json").exists()
    # An oct "public" set is the shared secret itself.
    oct_set = run("jwks", "generate", "--kty", "oct", "--private", str(tmp_path.parent / "x"))
    assert oct_set.exit_code == 5 and "jwks.json" in oct_set.stderr


@needs_git
def test_generate_writes_where_git_ignores_it_or_outside_a_work_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = tmp_path / "clone"
    _git_init(clone)
    (clone / ".gitignore").write_text("*.private.json\n")
    monkeypatch.chdir(clone)
    assert run("jwks", "generate").exit_code == 0
    assert (clone / "jwks.private.json").stat().st_mode & 0o777 == 0o600
    status = subprocess.run(
        ["git", "status", "--porcelain"], capture_output=True, text=True, check=True
    )
    assert "private" not in status.stdout  # `git add -A` would not commit it
    outside = tmp_path / "outside"
    outside.mkdir()
    elsewhere = run("jwks", "generate", "--private", str(outside / "p.json"), "--force")
    assert elsewhere.exit_code == 0, elsewhere.stderr


def test_the_repositorys_own_gitignore_ignores_private_sets() -> None:
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "jwks.private.json" in ignored and "*.private.json" in ignored


# --- messages that say the fix ----------------------------------------------------------------


def test_the_kubeconfig_namespace_note_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "current-context: gw\n"
        "contexts:\n- name: gw\n  context: {cluster: c, namespace: envoy-yang}\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("JWKSDEPLOY_NAMESPACE", raising=False)
    result = run("render", "--jwks", str(REPO / "examples" / "jwks-rsa.json"))
    assert result.exit_code == 0
    assert (
        "note: namespace 'envoy-yang' comes from the kubeconfig's current context; pass -n"
        in result.stderr
    )


def test_a_missing_key_file_says_generate_makes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for args in (["token"], ["render", "-n", "a"], ["jwks", "public"]):
        result = run(*args)
        assert result.exit_code == 3, args
        assert "does not exist" in result.stderr and "`jwksdeploy jwks generate`" in (
            result.stderr
        ), args


@pytest.mark.parametrize(
    ("args", "offline"),
    [
        (["gateway", "--provider", "envoy", "-n", "gw"], "--url-from service"),
        (["verify", "-n", "gw"], "--jwks FILE --token TOKEN verifies a token offline"),
    ],
)
def test_no_cluster_says_what_works_offline(
    args: list[str], offline: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    result = run(*args)
    assert result.exit_code == 6 and result.stdout == ""
    assert "--url URL" in result.stderr and offline in result.stderr


@pytest.mark.parametrize("text", ["500us", "500µs", "10ns"])
def test_a_sub_millisecond_duration_says_the_rule(text: str) -> None:
    url = "http://127.0.0.1:31456/jwks"
    result = run("gateway", "--provider", "envoy", "--url", url, "--cache-duration", text)
    assert result.exit_code == 3
    assert "at least 1ms, in whole milliseconds" in result.stderr


# --- habits of kubectl and Helm users ---------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "ours"),
    [
        ("template", "render"),
        ("install", "apply"),
        ("upgrade", "apply"),
        ("uninstall", "delete"),
        ("gatway", "gateway"),
    ],
)
def test_another_tools_command_names_ours(typed: str, ours: str) -> None:
    result = run(typed)
    assert result.exit_code == 2
    assert f"No such command {typed!r}. Did you mean {ours!r}?" in result.stderr


def test_version_without_a_cluster_reports_and_succeeds() -> None:
    import json
    import platform

    from jwksdeploy import __version__

    text = run("version")
    assert text.exit_code == 0, text.stderr
    assert f"jwksdeploy: {__version__}\n" in text.stdout
    assert "Server: not reachable (no kubeconfig found" in text.stdout
    document = json.loads(run("version", "-o", "json").stdout)
    assert document["jwksdeploy"] == __version__
    assert document["python"] == platform.python_version()
    assert document["kubernetesClient"].startswith("37.")
    assert document["server"] is None
    assert "server" not in json.loads(run("version", "--client", "-o", "json").stdout)


@pytest.mark.cluster
def test_version_names_a_reachable_server(kube: object) -> None:
    import json

    kubeconfig = str(kube.kubeconfig)
    result = run("version", "-o", "json", "--kubeconfig", kubeconfig)
    assert result.exit_code == 0, result.stderr
    server = json.loads(result.stdout)["server"]
    assert isinstance(server, dict) and "gitVersion" in server
    text = run("version", "--kubeconfig", kubeconfig)
    assert f"Server: {server['gitVersion']}\n" in text.stdout


def test_version_against_a_dead_server_still_succeeds(tmp_path: Path) -> None:
    import socket

    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n"
    )
    result = run("version", "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 0 and "Server: not reachable (cannot reach" in result.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_drive_click_completion(shell: str) -> None:
    result = run("completion", shell)
    assert result.exit_code == 0
    assert "_JWKSDEPLOY_COMPLETE" in result.stdout
    assert run("completion", "tcsh").exit_code == 2


def test_completion_completes_lazy_commands() -> None:
    import os
    import sys

    env = {
        **os.environ,
        "_JWKSDEPLOY_COMPLETE": "bash_complete",
        "COMP_WORDS": "jwksdeploy ver",
        "COMP_CWORD": "1",
    }
    script = "from jwksdeploy.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.split() == ["plain,verify", "plain,version"]


RSA = str(REPO / "examples" / "jwks-rsa.json")


def test_a_values_key_typo_names_the_nearest_key(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("replicaz: 2\n")
    result = run("render", "-n", "a", "--jwks", RSA, "-f", str(values))
    assert result.exit_code == 3 and result.stdout == ""
    assert "unknown key 'replicaz'" in result.stderr
    assert result.stderr.rstrip().endswith("Did you mean 'replicas'?")


def test_a_set_name_typo_names_the_nearest_flag() -> None:
    result = run("render", "-n", "a", "--jwks", RSA, "--set", "replicaz=2")
    assert result.exit_code == 3
    assert result.stderr.rstrip().endswith("Did you mean 'replicas'?")


def test_set_takes_commas_as_helm_does() -> None:
    import yaml

    result = run("render", "-n", "a", "--jwks", RSA, "--set", "replicas=3,port=9000")
    assert result.exit_code == 0, result.stderr
    objects = {o["kind"]: o for o in yaml.safe_load_all(result.stdout)}
    assert objects["Deployment"]["spec"]["replicas"] == 3
    assert objects["Service"]["spec"]["ports"][0]["port"] == 9000
    escaped = run("render", "-n", "a", "--jwks", RSA, "--set", r"annotation=a=x\,y")
    objects = {o["kind"]: o for o in yaml.safe_load_all(escaped.stdout)}
    assert objects["Deployment"]["metadata"]["annotations"]["a"] == "x,y"
    assert run("render", "-n", "a", "--jwks", RSA, "--set", "replicas=3,9").exit_code == 3


def test_render_f_with_a_jwks_hints_at_jwks() -> None:
    result = run("render", "-n", "a", "-f", RSA)
    assert result.exit_code == 3 and result.stdout == ""
    assert "is a JWKS" in result.stderr and "--jwks" in result.stderr


# --- examples in --help -----------------------------------------------------------------------

EXAMPLED = ["render", "apply", "gateway", "token", "verify", "jwks generate", "serve", "rotate"]


def _parse(line: str) -> None:
    """Parse a `jwksdeploy ...` command line with Click (not run: some need a cluster)."""
    import shlex

    args = shlex.split(line)[1:]
    group: click.Command = cli
    context = click.Context(cli, info_name="jwksdeploy")
    while isinstance(group, click.Group) and args and not args[0].startswith("-"):
        found = group.get_command(context, args[0])
        assert found is not None, line
        context = click.Context(found, parent=context, info_name=args[0])
        group, args = found, args[1:]
    group.make_context(str(context.info_name), list(args), parent=context.parent)


@pytest.mark.parametrize("name", EXAMPLED)
def test_help_ends_with_examples_that_parse(name: str) -> None:
    result = run(*name.split(), "--help")
    assert result.exit_code == 0
    examples = result.stdout.split("\n  Examples:\n")[1].splitlines()
    commands = [re.sub(r"^.*\$\(|\)$", "", line.strip()) for line in examples]
    commands = [c for c in commands if c.startswith("jwksdeploy ")]
    assert len(commands) >= 2, result.stdout
    for command in commands:
        assert command.startswith(f"jwksdeploy {name.split()[0]}"), command
        _parse(command)


def test_serve_does_not_default_to_kubectls_port() -> None:
    help_text = run("serve", "--help").stdout
    assert "Not 8080" in " ".join(help_text.split())  # says why not kubectl's port
    context = click.Context(cli)
    serve = cli.get_command(context, "serve")
    assert serve is not None
    port = next(p for p in serve.params if p.name == "port")
    assert port.default == 8099


# --- the README tutorial, run as written ------------------------------------------------------


def _tutorial_script() -> str:
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- tutorial: no cluster -->\n```sh\n")[1].split("```")[0]
    return block


@needs_git
def test_the_readme_tutorial_runs_without_a_cluster(tmp_path: Path) -> None:
    """In a fresh clone's shape (a git work tree with the repository's .gitignore), with the
    venv's bin on PATH as `source .venv/bin/activate` puts it; everything on 127.0.0.1."""
    import os
    import sys

    script = _tutorial_script()
    for step in (
        "jwks generate",
        "serve --port 0",
        "token inspect",
        "verify --jwks",
        "verify --through",
        "gateway --provider istio --url-from service",
    ):
        assert f"jwksdeploy {step}" in script, step
    clone = tmp_path / "clone"
    _git_init(clone)
    shutil.copy(REPO / ".gitignore", clone / ".gitignore")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    guarded = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script
    done = subprocess.run(
        ["bash", "-c", guarded], cwd=clone, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "unverified" in done.stdout  # token inspect
    assert "ok: token verified" in done.stdout
    assert "ok: valid token: expected passed (2xx), got 200" in done.stdout
    assert "127.0.0.1" in (clone / "serve.log").read_text()
    policy = (clone / "jwt.yaml").read_text()
    assert "kind: RequestAuthentication" in policy
    assert "remote-jwks-go.envoy-yang.svc.cluster.local" in policy
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert "private" not in status.stdout  # the key stays out of `git add -A`
