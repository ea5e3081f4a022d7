"""Settings are validated in one place that reports every bad value at once; a single bad value
keeps its own one-paragraph message."""

from __future__ import annotations

import itertools

import pytest

from jwksdeploy.errors import InputError
from jwksdeploy.settings import InvalidValues, build_settings

from .helpers import EXAMPLES, run

JWKS = str(EXAMPLES / "jwks.json")
BAD = {
    "namespace": (["-n", "BAD_NS"], "--namespace 'BAD_NS' is invalid"),
    "port": (["--port", "0"], "--port 0 is invalid: a port is 1-65535"),
    "replicas": (["--replicas", "500"], "--replicas 500 is invalid: it must be 1-100"),
    "memory": (["--memory-limit", "lots"], "--memory-limit 'lots' is invalid"),
}


def test_render_names_every_bad_value_at_once() -> None:
    result = run("render", "--jwks", JWKS, "-n", "BAD_NS", "--port", "0", "--replicas", "500")
    assert result.exit_code == 3
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: 3 values are invalid: (1) --namespace 'BAD_NS' is invalid")
    assert "(2) --replicas 500 is invalid" in line and "(3) --port 0 is invalid" in line


@pytest.mark.parametrize(
    "chosen",
    [c for n in range(1, len(BAD) + 1) for c in itertools.combinations(sorted(BAD), n)],
)
def test_each_combination_of_bad_values_is_named(chosen: tuple[str, ...]) -> None:
    args = [arg for key in chosen for arg in BAD[key][0]]
    result = run("render", "--jwks", JWKS, *(args if "namespace" in chosen else ["-n", "a", *args]))
    assert result.exit_code == 3 and result.stdout == ""
    for key in BAD:
        assert (BAD[key][1] in result.stderr) == (key in chosen), key
    assert ("values are invalid" in result.stderr) == (len(chosen) > 1)


def test_one_bad_value_keeps_its_own_message() -> None:
    with pytest.raises(InputError) as refused:
        build_settings({"port": 0}, "a")
    assert type(refused.value) is InputError
    assert (
        str(refused.value) == "--port 0 is invalid: a port is 1-65535. Pick a port in that range."
    )


def test_several_bad_values_carry_each_error() -> None:
    with pytest.raises(InvalidValues) as refused:
        build_settings({"port": 0, "replicas": 0, "service-type": "Bad"}, "a")
    assert [str(p).split(" is invalid")[0] for p in refused.value.problems] == [
        "--replicas 0",
        "--port 0",
        "--service-type 'Bad'",
    ]
    assert refused.value.exit_code == 3


def test_a_check_that_needs_a_bad_value_is_not_reported_twice() -> None:
    """--node-port is checked against the Service type only when the type itself is valid."""
    with pytest.raises(InputError) as refused:
        build_settings({"service-type": "Bad", "node-port": 30001}, "a")
    assert type(refused.value) is InputError
    assert "--service-type 'Bad' is invalid" in str(refused.value)
