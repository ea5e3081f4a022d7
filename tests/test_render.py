"""`jwksdeploy render`: objects, defaults from the source document, outputs and checks."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from jwksdeploy import render
from jwksdeploy.errors import InputError
from jwksdeploy.settings import DEFAULT_IMAGE, build_settings

from .helpers import EXAMPLES, REPO, ec_key, jwks_bytes, oct_key, rsa_public, run

GOLDEN_ARGS = ("render", "--jwks", str(EXAMPLES / "jwks.json"), "--namespace", "envoy-yang")


def objects_of(stdout: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(stdout) if d is not None]


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def rendered(**values: Any) -> list[dict[str, Any]]:
    settings_ = build_settings({"namespace": "envoy-yang", **values}, "default")
    return render.render_objects(settings_, jwks_bytes(rsa_public())).objects


def test_defaults_match_the_source_document() -> None:
    result = run(*GOLDEN_ARGS)
    assert result.exit_code == 0, result.stderr
    objects = objects_of(result.stdout)
    assert [o["kind"] for o in objects] == ["ConfigMap", "Service", "Deployment"]
    configmap, service, deployment = objects
    assert configmap["metadata"]["name"] == "jwks-config"
    assert configmap["data"]["jwks.json"] == (EXAMPLES / "jwks.json").read_text()
    assert service["metadata"]["name"] == "remote-jwks-go"
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": 8080, "targetPort": "http"}
    ]
    assert deployment["metadata"]["name"] == "remote-jwks-go"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == DEFAULT_IMAGE
    assert container["command"] == ["main"]
    assert container["args"] == ["jwks", "-c", "/app/jwks.json"]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    (mount,) = container["volumeMounts"]
    assert (mount["mountPath"], mount["subPath"]) == ("/app/jwks.json", "jwks.json")
    assert pod["volumes"] == [{"name": "config", "configMap": {"name": "jwks-config"}}]
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        65534,
        65534,
    )
    for obj in objects:
        assert obj["metadata"]["namespace"] == "envoy-yang"
    assert "symmetric-key" in result.stderr
    assert "symmetric-key" not in result.stdout


def test_golden_file_matches(update_golden: bool) -> None:
    golden = EXAMPLES / "rendered-source.yaml"
    result = run(*GOLDEN_ARGS)
    assert result.exit_code == 0
    if update_golden:
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text(), (
        "examples/rendered-source.yaml drifted; review and regenerate with "
        "`python -m pytest tests/test_render.py -k golden --update-golden`"
    )


def test_output_is_byte_identical_across_runs_and_processes() -> None:
    first = run(*GOLDEN_ARGS, "-n", "b", "-n", "a").stdout
    second = run(*GOLDEN_ARGS, "-n", "b", "-n", "a").stdout
    assert first == second
    namespaces = [o["metadata"]["namespace"] for o in objects_of(first)]
    assert namespaces == ["envoy-yang"] * 3 + ["b"] * 3 + ["a"] * 3


def test_hardening_and_recommended_labels() -> None:
    objects = rendered()
    deployment = by_kind(objects, "Deployment")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {
        "app.kubernetes.io/name": "jwks-server",
        "app.kubernetes.io/instance": "remote-jwks-go",
    }
    assert by_kind(objects, "Service")["spec"]["selector"] == selector
    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "jwksdeploy"
    assert labels["app.kubernetes.io/version"] == "0.1.0"
    assert labels["app.kubernetes.io/component"] == "jwks"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/", "port": "http"}
    assert container["resources"]["limits"]["memory"] == "64Mi"
    assert "topologySpreadConstraints" not in pod


def test_checksum_follows_the_jwks_so_pods_roll() -> None:
    def checksum(data: bytes) -> str:
        settings_ = build_settings({"namespace": "a"}, "default")
        objects = render.render_objects(settings_, data).objects
        annotations = by_kind(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        value: str = annotations["checksum/jwks"]
        return value

    one, two = jwks_bytes(rsa_public()), jwks_bytes(rsa_public(), ec_key(kid="new"))
    assert checksum(one) == checksum(one) == render.jwks_checksum(one.decode())
    assert checksum(one) != checksum(two)


def test_replicas_add_a_disruption_budget_and_spread() -> None:
    objects = rendered(replicas=3)
    assert [o["kind"] for o in objects][-1] == "PodDisruptionBudget"
    pdb = by_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    deployment = by_kind(objects, "Deployment")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert deployment["spec"]["replicas"] == 3


def test_custom_name_derives_every_object_name() -> None:
    objects = rendered(name="jwks-staging")
    names = {o["kind"]: o["metadata"]["name"] for o in objects}
    assert names == {
        "ConfigMap": "jwks-staging-jwks",
        "Service": "jwks-staging",
        "Deployment": "jwks-staging",
    }
    volume = by_kind(objects, "Deployment")["spec"]["template"]["spec"]["volumes"][0]
    assert volume["configMap"]["name"] == "jwks-staging-jwks"


def test_service_options() -> None:
    service = by_kind(rendered(**{"node-port": 31456, "port": 80}), "Service")
    assert service["spec"]["ports"][0]["nodePort"] == 31456
    assert service["spec"]["ports"][0]["port"] == 80
    cluster_ip = by_kind(rendered(**{"service-type": "ClusterIP"}), "Service")
    assert cluster_ip["spec"]["type"] == "ClusterIP"
    assert "nodePort" not in cluster_ip["spec"]["ports"][0]


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"node-port": 8080}, "outside the node port range 30000-32767"),
        ({"node-port": 31000, "service-type": "ClusterIP"}, "ClusterIP"),
        ({"namespace": "Envoy_Yang"}, "DNS-1123 label"),
        ({"namespace": "a" * 64}, "DNS-1123 label"),
        ({"name": "1jwks"}, "DNS-1035"),
        ({"label": {"bad key!": "x"}}, "--label key"),
        ({"label": {"team": "a b"}}, "--label value"),
        ({"label": {"app.kubernetes.io/name": "x"}}, "set by jwksdeploy"),
        ({"cpu-limit": "lots"}, "quantity"),
        ({"replicas": 0}, "1-100"),
        ({"port": 70000}, "1-65535"),
        ({"image": "has space"}, "image reference"),
        ({"image-pull-secret": ["Bad_Secret"]}, "DNS-1123 subdomain"),
        # A trailing newline must not slip past a `$` anchor (it did, with re.match).
        ({"namespace": "envoy-yang\n"}, "DNS-1123 label"),
        ({"name": "jwks\n"}, "DNS-1035"),
        ({"label": {"team\n": "x"}}, "--label key"),
        ({"label": {"team": "x\n"}}, "--label value"),
        ({"cpu-limit": "10m\n"}, "quantity"),
        ({"image-pull-secret": ["secret\n"]}, "DNS-1123 subdomain"),
    ],
)
def test_invalid_settings_are_refused(values: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        build_settings({"namespace": "envoy-yang", **values}, "default")
    assert fragment in str(caught.value)


def test_node_port_range_flag_widens_the_check() -> None:
    service = by_kind(rendered(**{"node-port": 8080, "node-port-range": "1-9000"}), "Service")
    assert service["spec"]["ports"][0]["nodePort"] == 8080


@pytest.mark.parametrize("replicas", [1, 2])
@pytest.mark.parametrize("service_type", ["NodePort", "ClusterIP", "LoadBalancer"])
def test_everything_rendered_validates_against_kubernetes_1_32(
    replicas: int, service_type: str
) -> None:
    objects = rendered(
        replicas=replicas,
        **{"service-type": service_type, "image-pull-secret": ["regcred"]},
        label={"team": "gw"},
        annotation={"example.com/note": "free text: {x}"},
    )
    for obj in objects:
        kubernetes_validate.validate(obj, "1.32", strict=True)


# --- through the CLI ---------------------------------------------------------------------


def test_private_key_is_refused_with_exit_4_and_no_output(tmp_path: Path) -> None:
    path = tmp_path / "private.json"
    secret_d = "c2VjcmV0LWQtbWF0ZXJpYWw"
    path.write_bytes(jwks_bytes({**ec_key(), "kid": "sig-1", "d": secret_d}))
    out = tmp_path / "out"
    result = run("render", "--jwks", str(path), "-n", "a", "--output-dir", str(out))
    assert result.exit_code == 4
    assert result.stdout == ""
    assert 'key "sig-1": contains private key material (d)' in result.stderr
    assert secret_d not in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_strict_turns_warnings_into_exit_4() -> None:
    result = run(*GOLDEN_ARGS, "--strict")
    assert result.exit_code == 4
    assert "symmetric-key" in result.stderr
    assert "--strict" in result.stderr
    assert result.stdout == ""


def test_missing_jwks_file_names_the_fix(tmp_path: Path) -> None:
    result = run("render", "--jwks", str(tmp_path / "nope.json"), "-n", "a")
    assert result.exit_code == 3
    assert "jwksdeploy jwks generate" in result.stderr


def test_jwks_from_stdin_keeps_the_exact_bytes() -> None:
    data = b'{"keys":[\n  %s\n]}\n\n' % json.dumps(rsa_public()).encode()
    result = run("render", "--jwks", "-", "-n", "a", input=data)
    assert result.exit_code == 0, result.stderr
    configmap = objects_of(result.stdout)[0]
    assert configmap["data"]["jwks.json"].encode() == data


def test_json_output_is_a_v1_list() -> None:
    result = run(*GOLDEN_ARGS, "-o", "json")
    document = json.loads(result.stdout)
    assert (document["apiVersion"], document["kind"]) == ("v1", "List")
    assert document["items"] == objects_of(run(*GOLDEN_ARGS).stdout)


def test_values_file_with_flag_override(tmp_path: Path) -> None:
    result = run(
        "render",
        "--values",
        str(EXAMPLES / "values.yaml"),
        "-n",
        "only-this",
        "--node-port",
        "31456",
    )
    assert result.exit_code == 0, result.stderr
    objects = objects_of(result.stdout)
    assert {o["metadata"]["namespace"] for o in objects} == {"only-this"}
    assert by_kind(objects, "Service")["spec"]["ports"][0]["nodePort"] == 31456
    assert by_kind(objects, "ConfigMap")["metadata"]["labels"]["team"] == "gateway"
    assert len([o for o in objects if o["kind"] == "PodDisruptionBudget"]) == 1


def test_values_file_unknown_key_is_an_error(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("namespace: a\nreplica: 2\n")
    result = run("render", "--values", str(values), "--jwks", str(EXAMPLES / "jwks.json"))
    assert result.exit_code == 3
    assert "unknown key 'replica'" in result.stderr


def test_namespace_defaults_env_then_kubeconfig_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def namespaces() -> set[str]:
        result = run("render", "--jwks", str(EXAMPLES / "jwks.json"))
        return {o["metadata"]["namespace"] for o in objects_of(result.stdout)}

    assert namespaces() == {"default"}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "current-context": "gw",
                "contexts": [{"name": "gw", "context": {"cluster": "c", "namespace": "from-kc"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'missing'}{os.pathsep}{kubeconfig}")
    assert namespaces() == {"from-kc"}
    monkeypatch.setenv("JWKSDEPLOY_NAMESPACE", "from-env")
    assert namespaces() == {"from-env"}


def test_output_dir_writes_files_and_kustomizations(tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    result = run(*GOLDEN_ARGS, "-n", "second", "--output-dir", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.yaml"))
    assert files == [
        "envoy-yang/configmap-jwks-config.yaml",
        "envoy-yang/deployment-remote-jwks-go.yaml",
        "envoy-yang/kustomization.yaml",
        "envoy-yang/service-remote-jwks-go.yaml",
        "second/configmap-jwks-config.yaml",
        "second/deployment-remote-jwks-go.yaml",
        "second/kustomization.yaml",
        "second/service-remote-jwks-go.yaml",
    ]
    kustomization = yaml.safe_load((out / "envoy-yang" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == [
        "configmap-jwks-config.yaml",
        "service-remote-jwks-go.yaml",
        "deployment-remote-jwks-go.yaml",
    ]
    stdout_objects = objects_of(run(*GOLDEN_ARGS, "-n", "second").stdout)
    from_files = [
        yaml.safe_load((out / ns / name).read_text())
        for ns in ("envoy-yang", "second")
        for name in yaml.safe_load((out / ns / "kustomization.yaml").read_text())["resources"]
    ]
    assert from_files == stdout_objects
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    # A second run replaces our own earlier output (the manifest records what that is).
    result = run(*GOLDEN_ARGS, "--output-dir", str(out))
    assert result.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [".jwksdeploy-manifest.json", "envoy-yang"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_output_dir_refuses_foreign_directory_and_leaves_it(tmp_path: Path) -> None:
    out = tmp_path / "src"
    (out / "envoy-yang").mkdir(parents=True)
    (out / "main.py").write_text("print('mine')\n")
    (out / "envoy-yang" / "service-remote-jwks-go.yaml").write_text("kind: Service\n")
    result = run(*GOLDEN_ARGS, "--output-dir", str(out))
    assert result.exit_code == 5
    assert "did not write" in result.stderr
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "envoy-yang",
        "envoy-yang/service-remote-jwks-go.yaml",
        "main.py",
    ]


def test_bad_input_never_leaves_a_half_written_dir(tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    result = run(*GOLDEN_ARGS, "--node-port", "1", "--output-dir", str(out))
    assert result.exit_code == 3
    assert list(tmp_path.iterdir()) == []


def test_every_command_has_help() -> None:
    import click

    from jwksdeploy.cli import cli

    assert run("--version").stdout.startswith("jwksdeploy, version ")
    # list_commands, not cli.commands: most commands are loaded lazily
    for name in cli.list_commands(click.Context(cli)):
        result = run(name, "--help")
        assert result.exit_code == 0
        assert "Usage:" in result.stdout


# --- no value can inject YAML ------------------------------------------------------------

arbitrary_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=40
)


@settings(max_examples=150, deadline=None)
@given(
    value=arbitrary_text,
    slot=st.sampled_from(
        ["annotation", "label", "namespace", "name", "image", "image-pull-secret"]
    ),
)
def test_any_string_is_refused_or_lands_verbatim_as_one_scalar(value: str, slot: str) -> None:
    values: dict[str, Any] = {"namespace": "ns"}
    if slot == "annotation":
        values["annotation"] = {"example.com/v": value}
    elif slot == "label":
        values["label"] = {"team": value}
    elif slot == "image-pull-secret":
        values[slot] = [value]
    else:
        values[slot] = value
    try:
        settings_ = build_settings(values, "default")
    except InputError:
        return
    objects = render.render_objects(settings_, jwks_bytes(rsa_public())).objects
    text = render.to_yaml_stream(objects)
    reparsed = objects_of(text)
    assert reparsed == objects
    assert len(reparsed) == 3
    deployment = by_kind(reparsed, "Deployment")
    meta = deployment["metadata"]
    found = {
        "annotation": lambda: meta["annotations"]["example.com/v"],
        "label": lambda: meta["labels"]["team"],
        "namespace": lambda: meta["namespace"],
        "name": lambda: meta["name"],
        "image": lambda: deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "image-pull-secret": lambda: deployment["spec"]["template"]["spec"]["imagePullSecrets"][0][
            "name"
        ],
    }[slot]()
    assert found == value
    expected_keys = {"apiVersion", "kind", "metadata", "spec"}
    assert set(deployment) == expected_keys


def test_quote_round_trips_astral_and_control_characters() -> None:
    for value in ["😀", "\x00\x85\u2028", "a: b\n- c", "{{ x }}", "'\"", "\ud7ff\ue000"]:
        assert yaml.safe_load(render.quote(value)) == value


def test_templates_are_found_in_the_checkout() -> None:
    assert render.template_dir() == str(REPO / "templates")
    assert oct_key()  # the helper itself stays importable


def test_pure_python_yaml_fallback_writes_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Determinism across machines: without libyaml the output must not change."""
    objects = rendered(replicas=2, annotation={"example.com/n": "x: y\n  z"})
    with_libyaml = render.to_yaml_stream(objects)

    class PureDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    PureDumper.add_representer(str, render._represent_str)
    monkeypatch.setattr(render, "_Dumper", PureDumper)
    assert render.to_yaml_stream(objects) == with_libyaml


def test_many_namespaces_equal_each_namespace_rendered_alone() -> None:
    together = rendered(namespace=["one", "two", "three"], replicas=2)
    alone = [obj for ns in ("one", "two", "three") for obj in rendered(namespace=ns, replicas=2)]
    assert together == alone
    assert together[0] is not together[4]


@pytest.mark.parametrize(
    "args",
    [
        ["render", "--jwks", str(EXAMPLES / "jwks.json"), "-n", "a"],
        ["--help"],
        ["apply", "--help"],
        ["jwks", "check", str(EXAMPLES / "jwks.json")],
        ["token", "--help"],
    ],
)
def test_render_and_help_never_import_the_client_or_crypto(args: list[str]) -> None:
    import subprocess
    import sys

    code = (
        "import sys\nfrom jwksdeploy.cli import cli\n"
        f"try:\n    cli({args!r}, standalone_mode=False)\n"
        "finally:\n    print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('kubernetes', 'urllib3', 'joserfc', 'cryptography')), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_compiled_templates_match_the_sources(tmp_path: Path, update_golden: bool) -> None:
    """The shipped modules are exactly what this Jinja2 compiles from templates/ today."""
    shipped = Path(render.compiled_dir())
    if update_golden:
        render.compile_templates(str(shipped))
    render.compile_templates(str(tmp_path))
    fresh = {p.name: p.read_bytes() for p in tmp_path.glob("*.py")}
    assert {p.name: p.read_bytes() for p in shipped.glob("*.py")} == fresh, (
        "jwksdeploy/compiled_templates/ is stale: run `python -m jwksdeploy.render`"
    )
    assert len(fresh) == len(list((REPO / "templates").glob("*.j2"))) + 1


def test_render_loads_compiled_templates_and_compiles_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import jinja2

    def no_compiling(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a template was compiled at run time")

    render._environment.cache_clear()
    monkeypatch.setattr(jinja2.Environment, "compile", no_compiling)
    try:
        assert isinstance(render._environment().loader, jinja2.ModuleLoader)
        objects = rendered(replicas=2, server="nginx")
    finally:
        render._environment.cache_clear()
    assert [o["kind"] for o in objects] == [k for k, _ in render.TEMPLATES]


def test_another_jinja2_compiles_the_sources_with_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jinja2's generated code is only promised to its own version: any other falls back."""
    import jinja2

    from jwksdeploy import compiled_templates

    expected = render.to_yaml_stream(rendered(replicas=2, server="nginx"))
    render._environment.cache_clear()
    monkeypatch.setattr(compiled_templates, "JINJA2_VERSION", "0.0-another")
    try:
        assert isinstance(render._environment().loader, jinja2.FileSystemLoader)
        assert render.to_yaml_stream(rendered(replicas=2, server="nginx")) == expected
    finally:
        render._environment.cache_clear()


NAMESPACES = st.one_of(
    st.sampled_from(["123", "null", "true", "yes", "0x1F", "1e3", "~", "-", "a b", "x\ny", ""]),
    st.sampled_from([render._NAMESPACE_PLACEHOLDER, "ns-1", "envoy-yang"]),
    st.text(max_size=8),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), NAMESPACES)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), NAMESPACES, st.one_of(st.just({}), VALUES)), max_size=8)
)
def test_yaml_stream_is_each_object_dumped_alone(docs: list[tuple[int, str, Any]]) -> None:
    """Reusing one dump per shape never changes a byte, whatever the namespace or values."""
    bodies = [{"a": 1, "b": "x: y"}, {"a": 1.0, "b": True}, {"b": "x: y", "a": 1}]
    objects: list[dict[str, Any]] = [
        {"kind": "K", "metadata": {"name": "n", "namespace": ns}, **bodies[shape], "v": value}
        for shape, ns, value in docs
    ]
    expected = "".join(f"---\n{render.dump_yaml(obj)}" for obj in objects)
    assert render.to_yaml_stream(objects) == expected


def test_yaml_stream_of_many_namespaces_is_each_dumped_alone() -> None:
    objects = rendered(namespace=[f"ns-{i}" for i in range(5)] + ["123", "null"], replicas=2)
    expected = "".join(f"---\n{render.dump_yaml(obj)}" for obj in objects)
    assert render.to_yaml_stream(objects) == expected
    assert "namespace: '123'\n" in expected and "namespace: 'null'\n" in expected


def test_short_and_long_option_spellings_parse_as_click_parses_them() -> None:
    """render's parser skips click's did-you-mean detour for `-n`, and nothing else."""
    jwks = str(EXAMPLES / "jwks.json")
    result = run("render", "--jwks", jwks, "-nfoo", "-n", "bar", "--namespace=baz", "-n", "qux")
    assert result.exit_code == 0, result.stderr
    namespaces = [o["metadata"]["namespace"] for o in objects_of(result.stdout)]
    assert namespaces == [ns for ns in ("foo", "bar", "baz", "qux") for _ in range(3)]
    typo = run("render", "--jwks", jwks, "--nmespace", "x")
    assert typo.exit_code == 2
    assert "No such option '--nmespace'. (Did you mean one of: '--name', '--namespace'?)" in (
        typo.stderr
    )
    unknown = run("render", "--jwks", jwks, "-q", "x")
    assert unknown.exit_code == 2 and "No such option '-q'." in unknown.stderr


# ---------------------------------------------------------------------------------------------
# Moved from the hostile suites (issue 9): the template cache and the lazy client
# ---------------------------------------------------------------------------------------------
# A cache planted by someone else never runs code; render never imports the Kubernetes client.

import hashlib  # noqa: E402
import pickle  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from .refusals import process_env, snapshot, spawn  # noqa: E402


class _Plant:
    """Unpickled from a planted cache file: writes a marker file (proof that code ran)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        code = f"open({self.path!r}, 'w').write('pwned')"
        return (exec, (code,))


def _bytecode_payload(marker_path: Path) -> bytes:
    """What jinja2.FileSystemBytecodeCache reads: its magic header, then a pickle it loads."""
    from jinja2.bccache import bc_magic

    return bc_magic + pickle.dumps(_Plant(str(marker_path)), 2)


@pytest.mark.usefixtures("in_tmp")
def test_render_never_loads_a_planted_template_cache(tmp_path: Path, jwks_file: Path) -> None:
    """A cache in a shared XDG_CACHE_HOME, written by someone else, must never run code."""
    cache = tmp_path / "shared-cache"
    pwned = tmp_path / "pwned"
    env = {**_env_for(tmp_path), "XDG_CACHE_HOME": str(cache)}
    first = spawn("render", "--jwks", str(jwks_file), "-n", "a", cwd=tmp_path, env=env)
    assert first.code == 0, first.describe()
    written = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    # Plant a payload where the cache would be read from: every file the first run wrote,
    # and the jinja default names in every directory under the cache.
    folders = {p.parent for p in written} | {
        cache / "jwksdeploy" / "templates",
        cache / "jwksdeploy",
    }
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
    for path in written:
        path.write_bytes(_bytecode_payload(pwned))
    if os.geteuid() == 0:
        for path in [*written, *folders]:
            os.chown(path, 65534, 65534)  # planted by another user
    second = spawn("render", "--jwks", str(jwks_file), "-n", "a", cwd=tmp_path, env=env)
    assert not pwned.exists(), "a planted template cache ran code"
    assert second.code == 0, second.describe()
    assert second.stdout == first.stdout


@pytest.mark.usefixtures("in_tmp")
def test_render_leaves_no_cache_others_can_write(tmp_path: Path, jwks_file: Path) -> None:
    """If render keeps a cache at all, only the user can write it (no group/world bits)."""
    cache = tmp_path / "cache"
    env = {**_env_for(tmp_path), "XDG_CACHE_HOME": str(cache)}
    out = spawn("render", "--jwks", str(jwks_file), "-n", "a", cwd=tmp_path, env=env)
    assert out.code == 0, out.describe()
    for path in [cache / "jwksdeploy", *(cache / "jwksdeploy").rglob("*")]:
        if path.exists():
            assert path.stat().st_mode & 0o022 == 0, f"{path} is writable by others"


def _env_for(tmp_path: Path) -> dict[str, str]:
    from .refusals import process_env

    return process_env(tmp_path)


def _jinja_cache_payload(marker_path: Path) -> bytes:
    from jinja2.bccache import bc_magic

    class Plant:
        def __reduce__(self) -> tuple[Any, ...]:
            return (exec, (f"open({str(marker_path)!r}, 'w').write('pwned')",))

    return bc_magic + pickle.dumps(Plant(), 2)


@pytest.mark.usefixtures("in_tmp")
def test_jinjas_cache_files_planted_by_another_user_never_run(
    tmp_path: Path, jwks_file: Path
) -> None:
    """Plant, in a shared XDG_CACHE_HOME, the exact files jinja's FileSystemBytecodeCache
    would load for our templates (the old cache location), owned by someone else: render runs
    none of them and writes nothing there (issue 9, repro 9)."""
    cache = tmp_path / "shared-cache"
    folder = cache / "jwksdeploy" / "templates"
    folder.mkdir(parents=True)
    pwned = tmp_path / "pwned"
    import jwksdeploy.render as render_module

    template_dirs = {str(REPO / "templates")}
    with_dir = getattr(render_module, "template_dir", None)
    if callable(with_dir):
        template_dirs.add(str(with_dir()))
    for directory in template_dirs:
        for template in Path(directory).glob("*.j2"):
            filename = os.path.normpath(os.path.join(directory, template.name))
            key = hashlib.sha1(f"{template.name}|{filename}".encode()).hexdigest()
            (folder / f"__jinja2_{key}.cache").write_bytes(_jinja_cache_payload(pwned))
    for path in (cache, cache / "jwksdeploy", folder, *folder.iterdir()):
        path.chmod(0o777)
        if os.geteuid() == 0:
            os.chown(path, 65534, 65534)
    env = process_env(tmp_path, XDG_CACHE_HOME=str(cache))
    before = snapshot(cache)
    out = spawn("render", "--jwks", str(jwks_file), "-n", "a", cwd=tmp_path, env=env)
    assert out.code == 0, out.describe()
    assert not pwned.exists(), "render loaded a planted bytecode cache and ran its code"
    assert snapshot(cache) == before, "render wrote into a cache directory others can write"


@pytest.mark.usefixtures("in_tmp")
def test_render_never_imports_the_kubernetes_client(tmp_path: Path, jwks_file: Path) -> None:
    """The client stays a lazy import: render never loads it (issue 9, repro 11)."""
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['jwksdeploy', 'render', '--jwks', {str(jwks_file)!r}, '-n', 'a']\n"
        "try:\n    runpy.run_module('jwksdeploy', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('KUBERNETES-LOADED' if 'kubernetes' in sys.modules else 'KUBERNETES-NOT-LOADED')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=process_env(tmp_path),
        capture_output=True,
        timeout=60,
    )
    assert b"KUBERNETES-NOT-LOADED" in done.stdout, done.stdout[-500:] + done.stderr[-500:]
