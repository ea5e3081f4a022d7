"""The readers every input goes through: bounded reads, the safe YAML loader, settings that
refuse what a cluster would refuse. Each case runs through the CLI as well as the function."""

from __future__ import annotations

from pathlib import Path

import pytest

from jwksdeploy.errors import InputError
from jwksdeploy.files import read_bounded
from jwksdeploy.safeyaml import load_yaml
from jwksdeploy.settings import build_settings, check_image, parse_duration

from .helpers import EXAMPLES, run

JWKS = str(EXAMPLES / "jwks.json")

LAUGHS = "label:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"  {name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


def render_values(tmp_path: Path, text: str, *flags: str) -> tuple[int, str, str]:
    values = tmp_path / "values.yaml"
    values.write_text(text)
    result = run("render", "--values", str(values), "--jwks", JWKS, *flags)
    return result.exit_code, result.stdout, result.stderr


def test_read_bounded_never_reads_past_the_limit() -> None:
    with pytest.raises(InputError, match="larger than 1 KiB"):
        read_bounded("/dev/zero", "JWKS file", 1024)


@pytest.mark.parametrize("flag", ["--jwks", "--values"])
def test_dev_zero_as_an_input_is_refused(flag: str) -> None:
    result = run("render", "-n", "a", "--jwks", JWKS, flag, "/dev/zero")
    assert result.exit_code == 3
    assert "larger than 1024 KiB" in result.stderr


def test_billion_laughs_values_file_is_refused(tmp_path: Path) -> None:
    code, stdout, stderr = render_values(tmp_path, LAUGHS)
    assert code == 3 and stdout == ""
    assert "billion laughs" in stderr


def test_duplicate_keys_in_a_values_file_are_refused(tmp_path: Path) -> None:
    code, _, stderr = render_values(tmp_path, "namespace: a\nname: one\nname: two\n")
    assert code == 3
    assert "the key 'name' appears twice" in stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: 010\n", "'010'"),  # YAML 1.1 reads octal 8
        ("namespace: 12:30\n", "'12:30'"),  # YAML 1.1 reads sexagesimal 750
        ("name: ~\n", "'~'"),  # YAML 1.1 reads null
    ],
)
def test_values_keep_the_text_that_was_written(tmp_path: Path, text: str, expected: str) -> None:
    code, _, stderr = render_values(tmp_path, text)
    assert code == 3
    assert expected in stderr  # refused as the literal text, never as 8, 750 or None


def test_yes_is_text_for_a_label_and_not_a_boolean_for_strict(tmp_path: Path) -> None:
    code, stdout, _ = render_values(tmp_path, "namespace: a\nlabel:\n  enabled: yes\n")
    assert code == 0
    assert "enabled: 'yes'" in stdout
    code, _, stderr = render_values(tmp_path, "namespace: a\nstrict: yes\n")
    assert code == 3 and "true or false" in stderr


def test_values_file_types_are_checked(tmp_path: Path) -> None:
    code, _, stderr = render_values(tmp_path, "namespace: a\nname: [a, b]\n")
    assert code == 3 and "--name" in stderr and "must be text" in stderr


def test_unicode_digits_are_not_a_number(tmp_path: Path) -> None:
    code, _, stderr = render_values(tmp_path, 'namespace: a\nreplicas: "²"\n')
    assert code == 3 and "whole number" in stderr


def test_python_tags_are_refused() -> None:
    with pytest.raises(InputError, match="could not determine a constructor"):
        load_yaml(b"a: !!python/object/apply:os.system [true]\n", "values file")


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(InputError, match="nests deeper"):
        load_yaml(b"[" * 100_000, "values file")
    with pytest.raises(InputError, match="nests deeper"):
        load_yaml(b"a:\n" + b"".join(b" " * i + b"b:\n" for i in range(1, 200)), "f")


def test_kubeconfig_mode_keeps_yaml_types() -> None:
    assert load_yaml(b"a: 1\nb: true\n", "kubeconfig", mode="kubeconfig") == {"a": 1, "b": True}


def test_request_above_limit_is_refused() -> None:
    result = run("render", "-n", "a", "--jwks", JWKS, "--cpu-request", "10m", "--cpu-limit", "1m")
    assert result.exit_code == 3
    assert "--cpu-request 10m is above --cpu-limit 1m" in result.stderr
    result = run("render", "-n", "a", "--jwks", JWKS, "--memory-request", "1Gi")
    assert result.exit_code == 3 and "--memory-limit 64Mi" in result.stderr
    equal = {"cpu-request": "0.2", "cpu-limit": "200m", "namespace": "a"}
    assert build_settings(equal, "a").resources[0] == ("cpu-request", "0.2")


@pytest.mark.parametrize(
    "image", ["UPPER/Img:1", "foo@sha256:abc", "repo/Name", "a//b", "x:tag with space", "-x"]
)
def test_image_references_that_are_not_references_are_refused(image: str) -> None:
    with pytest.raises(InputError, match="not an image reference"):
        check_image(image)
    assert run("render", "-n", "a", "--jwks", JWKS, "--image", image).exit_code == 3


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.25",
        "localhost:5000/team/jwks:dev",
        "release-ci.daocloud.io/skoala/demo/remote-jwks-go:0.1.0",
        "ghcr.io/org/jwks@sha256:" + "a" * 64,
        "ghcr.io/org/jwks:1.0@sha256:" + "b" * 64,
    ],
)
def test_real_image_references_pass(image: str) -> None:
    assert check_image(image) == image


def test_one_node_port_for_several_namespaces_is_refused() -> None:
    result = run("render", "-n", "a", "-n", "b", "--jwks", JWKS, "--node-port", "31456")
    assert result.exit_code == 3
    assert "cluster-wide" in result.stderr
    assert run("render", "--values", str(EXAMPLES / "values.yaml")).exit_code == 0


@pytest.mark.parametrize("text", ["1e400s", "99999999999999999999h", "10000000000000h", "٣s"])
def test_durations_are_bounded(text: str) -> None:
    with pytest.raises(InputError):
        parse_duration(text, "--timeout")
