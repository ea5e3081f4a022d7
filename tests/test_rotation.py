"""Key rotation (issue 12): the pure state machine with a passed clock, then `jwksdeploy rotate`
through the CLI with local files and against the emulator, tokens checked with PyJWT."""

from __future__ import annotations

from typing import Any

import pytest

from jwksdeploy import rotation, rotation_record
from jwksdeploy.errors import InputError, TooEarly
from jwksdeploy.rotation import ACTIVE, NEXT, RETIRED, KeyRecord, State

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z
WINDOW = 1200.0
TTL = 3600.0


def key(kid: str) -> dict[str, Any]:
    return {
        "kty": "oct",
        "kid": kid,
        "alg": "HS256",
        "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXg",
    }


def private(*kids: str) -> dict[str, Any]:
    return {"keys": [key(kid) for kid in kids]}


def one_key() -> State:
    return rotation.initial_state(["a"], T0, WINDOW, TTL)


# --- the state machine ------------------------------------------------------------------------


def test_a_fresh_set_has_its_newest_key_active_and_older_ones_retired_from_now() -> None:
    state = rotation.initial_state(["old", "new"], T0, WINDOW, TTL)
    assert [(k.kid, k.phase) for k in state.keys] == [("old", RETIRED), ("new", ACTIVE)]
    assert state.record("old") == KeyRecord("old", RETIRED, retired=T0)


def test_start_publishes_next_and_refuses_a_second_start() -> None:
    step = rotation.start(one_key(), private("a"), key("b"), T0)
    assert step.publish
    assert [(k.kid, k.phase) for k in step.state.keys] == [("a", ACTIVE), ("b", NEXT)]
    assert [k["kid"] for k in step.private["keys"]] == ["a", "b"]
    published = rotation.mark_published(step.state, T0 + 30)
    with pytest.raises(TooEarly) as refused:
        rotation.start(published, step.private, key("c"), T0 + 40)
    assert refused.value.safe_at == T0 + 30 + WINDOW
    with pytest.raises(InputError, match="already in the set"):
        rotation.start(one_key(), private("a"), key("a"), T0)


def test_promote_is_refused_until_the_cache_window_after_publication_then_succeeds() -> None:
    state = rotation.start(one_key(), private("a"), key("b"), T0).state
    with pytest.raises(TooEarly, match="has not been seen served") as unseen:
        rotation.promote(state, private("a", "b"), T0 + 5000)
    assert unseen.value.safe_at is None
    state = rotation.mark_published(state, T0 + 10)
    assert rotation.mark_published(state, T0 + 99) == state, "the first sighting counts"
    safe = T0 + 10 + WINDOW
    with pytest.raises(TooEarly) as early:
        rotation.promote(state, private("a", "b"), safe - 1)
    assert early.value.safe_at == safe
    assert rotation.when(safe) in str(early.value) and "in 1s" in str(early.value)
    step = rotation.promote(state, private("a", "b"), safe)
    assert not step.publish, "promotion changes who signs, not what is served"
    assert [(k.kid, k.phase) for k in step.state.keys] == [("a", RETIRED), ("b", ACTIVE)]
    assert step.state.record("a") == KeyRecord("a", RETIRED, retired=safe)
    assert step.state.record("b") == KeyRecord("b", ACTIVE, published=T0 + 10, promoted=safe)


def test_promote_without_a_next_key_is_refused() -> None:
    with pytest.raises(TooEarly, match="no next key"):
        rotation.promote(one_key(), private("a"), T0)


def test_finish_waits_for_the_max_token_ttl_plus_the_cache_window_after_promotion() -> None:
    state = rotation.mark_published(rotation.start(one_key(), private("a"), key("b"), T0).state, T0)
    promoted_at = T0 + WINDOW
    state = rotation.promote(state, private("a", "b"), promoted_at).state
    safe = promoted_at + TTL + WINDOW
    with pytest.raises(TooEarly) as early:
        rotation.finish(state, private("a", "b"), safe - 1)
    assert early.value.safe_at == safe
    step = rotation.finish(state, private("a", "b"), safe)
    assert step.publish
    assert [(k.kid, k.phase) for k in step.state.keys] == [("b", ACTIVE)]
    assert [k["kid"] for k in step.private["keys"]] == ["b"]
    with pytest.raises(TooEarly, match="no retired key"):
        rotation.finish(step.state, step.private, safe)


def test_due_names_each_step_in_turn_with_its_time() -> None:
    state = one_key()
    assert rotation.due(state) == rotation.Due(None, None, rotation.due(state).reason)
    assert rotation.due(state, rotate_after=86400).at == 0.0, "an unknown age is due now"
    state = rotation.start(state, private("a"), key("b"), T0).state
    assert rotation.due(state).step == "promote" and rotation.due(state).at is None
    state = rotation.mark_published(state, T0)
    assert rotation.due(state) == rotation.Due("promote", T0 + WINDOW, rotation.due(state).reason)
    state = rotation.promote(state, private("a", "b"), T0 + WINDOW).state
    assert rotation.due(state).step == "finish"
    assert rotation.due(state).at == T0 + WINDOW + TTL + WINDOW
    state = rotation.finish(state, private("a", "b"), T0 + 3 * WINDOW + TTL).state
    assert rotation.due(state, rotate_after=86400) == rotation.Due(
        "start", T0 + WINDOW + 86400, rotation.due(state, 86400).reason
    )


def test_revoking_the_active_key_promotes_the_next_one_at_once_and_names_the_windows() -> None:
    state = rotation.mark_published(rotation.start(one_key(), private("a"), key("b"), T0).state, T0)
    now = T0 + 100
    step = rotation.revoke(state, private("a", "b"), "a", now, None)
    assert [(k.kid, k.phase) for k in step.state.keys] == [("b", ACTIVE)]
    assert [k["kid"] for k in step.private["keys"]] == ["b"]
    assert step.publish
    text = " ".join(step.notes)
    assert rotation.when(now + WINDOW) in text, "the revoked key may be trusted until then"
    assert rotation.when(T0 + WINDOW) in text, "b was published at T0: fetched by T0+window"
    assert "restart" in text


def test_revoking_the_only_key_uses_the_replacement() -> None:
    now = T0
    step = rotation.revoke(one_key(), private("a"), "a", now, key("z"))
    assert [(k.kid, k.phase) for k in step.state.keys] == [("z", ACTIVE)]
    assert [k["kid"] for k in step.private["keys"]] == ["z"]
    assert any(rotation.when(now + WINDOW) in note and '"z"' in note for note in step.notes)
    with pytest.raises(InputError, match="no next key"):
        rotation.revoke(one_key(), private("a"), "a", now, None)


def test_a_replacement_made_active_by_revoke_is_published_when_its_rollout_is_seen() -> None:
    step = rotation.revoke(one_key(), private("a"), "a", T0, key("z"))
    assert step.state.record("z") == KeyRecord("z", ACTIVE, promoted=T0)
    served = rotation.mark_published(step.state, T0 + 5)
    assert served.record("z") == KeyRecord("z", ACTIVE, published=T0 + 5, promoted=T0)
    assert rotation.mark_published(one_key(), T0) == one_key(), "an old active key stays unknown"


def test_revoking_a_next_or_retired_key_just_removes_it() -> None:
    state = rotation.start(one_key(), private("a"), key("b"), T0).state
    step = rotation.revoke(state, private("a", "b"), "b", T0, None)
    assert [(k.kid, k.phase) for k in step.state.keys] == [("a", ACTIVE)]


def test_revoking_an_unknown_kid_is_an_input_error() -> None:
    with pytest.raises(InputError, match='no kid "nope"'):
        rotation.revoke(one_key(), private("a"), "nope", T0, None)


def test_the_recorded_form_round_trips_and_is_checked() -> None:
    state = rotation.mark_published(rotation.start(one_key(), private("a"), key("b"), T0).state, T0)
    text = rotation_record.to_json(state)
    assert rotation_record.from_json(text, "test") == state
    two_active = text.replace('"phase":"next"', '"phase":"active"')
    with pytest.raises(InputError, match="2 active keys"):
        rotation_record.from_json(two_active, "test")
    with pytest.raises(InputError, match="phase"):
        rotation_record.from_json(text.replace('"phase":"next"', '"phase":"soon"'), "test")
    with pytest.raises(InputError, match="not a time"):
        rotation_record.from_json(text.replace("2027-01-15T08:00:00Z", "yesterday"), "test")


def test_a_recorded_time_in_the_future_is_clock_skew() -> None:
    state = rotation.mark_published(rotation.start(one_key(), private("a"), key("b"), T0).state, T0)
    rotation.check_clock(state, T0 - rotation.CLOCK_TOLERANCE, "test")
    with pytest.raises(InputError, match="ahead of this machine's clock"):
        rotation.check_clock(state, T0 - 3600, "test")


def test_reconcile_names_kids_missing_from_either_side() -> None:
    with pytest.raises(InputError, match=r'unrecorded kids "b".*not in the set "a"'):
        rotation.reconcile(one_key(), ["b"], "test")
    rotation.reconcile(one_key(), ["a"], "test")


def test_token_signing_rules() -> None:
    state = rotation.start(one_key(), private("a"), key("b"), T0).state
    state = rotation.mark_published(state, T0)
    assert rotation.signing_check(state, "a", T0, force=False) is None
    with pytest.raises(TooEarly) as early:
        rotation.signing_check(state, "b", T0 + 1, force=False)
    assert early.value.safe_at == T0 + WINDOW
    assert "warning" in str(rotation.signing_check(state, "b", T0, force=True))
    state = rotation.promote(state, private("a", "b"), T0 + WINDOW).state
    with pytest.raises(InputError, match="retired"):
        rotation.signing_check(state, "a", T0 + WINDOW, force=True)


# --- the cache window the gateways recorded ---------------------------------------------------

ENVOY = rotation.GatewayWindow(600.0, "Envoy's default remote_jwks.cache_duration")
ISTIO = rotation.GatewayWindow(1200.0, "istiod's default PILOT_JWT_PUB_KEY_REFRESH_INTERVAL")


def test_the_window_is_the_flag_else_the_longest_recorded_else_the_state_s() -> None:
    state = one_key()
    assert rotation.resolve_cache_window(state, None, {}, "cm") == state
    flagged = rotation.resolve_cache_window(state, 90.0, {"istio/a": ISTIO}, "cm")
    assert (flagged.cache_window, flagged.cache_window_from) == (90.0, rotation.WINDOW_FLAG)
    both = {"envoy/a": ENVOY, "istio/a": ISTIO}
    recorded = rotation.resolve_cache_window(state, None, both, "ConfigMap 'c'")
    assert recorded.cache_window == 1200.0
    assert recorded.cache_window_from.startswith("recorded on ConfigMap 'c': istio/a caches")
    assert "the longest of 2 gateways" in rotation.window_origin_text(recorded)
    shorter = rotation.resolve_cache_window(state, None, {"envoy/a": ENVOY}, "cm")
    assert shorter.cache_window == 600.0, "a recorded window replaces the 20m guess"
    # A --cache-window given at an earlier step stays unless a gateway records a longer one.
    earlier = rotation.resolve_cache_window(state, 900.0, {}, "cm")
    assert rotation.resolve_cache_window(earlier, None, {"envoy/a": ENVOY}, "cm") == earlier
    longer = rotation.resolve_cache_window(earlier, None, both, "cm")
    assert longer.cache_window == 1200.0
    assert "no gateway recorded one" in rotation.window_origin_text(state)


def test_the_window_s_origin_is_recorded_and_an_older_record_reads_as_the_default() -> None:
    state = rotation.resolve_cache_window(one_key(), None, {"envoy/a": ENVOY}, "cm")
    assert rotation_record.from_json(rotation_record.to_json(state), "test") == state
    document = json.loads(rotation_record.to_json(one_key()))
    del document["cacheWindowFrom"]
    assert rotation_record.from_json(json.dumps(document), "test").cache_window_from == "default"
    document["cacheWindowFrom"] = 7
    with pytest.raises(InputError, match="cacheWindowFrom"):
        rotation_record.from_json(json.dumps(document), "test")


def test_the_gateway_record_round_trips_and_is_checked() -> None:
    windows = {"istio/a": ISTIO, "envoy/a": ENVOY}
    text = rotation_record.gateway_windows_json(windows)
    assert text.index("envoy/a") < text.index("istio/a"), "sorted: same record, same text"
    assert rotation_record.parse_gateway_windows(text, "cm") == windows
    assert rotation_record.parse_gateway_windows(None, "cm") == {}
    long_why = json.dumps({"envoy/a": {"seconds": 1, "why": "x" * 201}})
    two_lines = json.dumps({"envoy/a": {"seconds": 1, "why": "a\nb"}})
    for bad in (
        "[]",
        '{"envoy/a": 600}',
        '{"envoy/a": {"seconds": -1, "why": ""}}',
        "{",
        long_why,
        two_lines,
    ):
        with pytest.raises(InputError, match=rotation_record.GATEWAYS_ANNOTATION):
            rotation_record.parse_gateway_windows(bad, "cm")


# --- the CLI on local files -------------------------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

import jwt as pyjwt  # noqa: E402

from .helpers import run, serving  # noqa: E402


class Files:
    """A key pair in tmp_path and the rotate flags that name it; time moves with `at`."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.private = tmp_path / "jwks.private.json"
        self.public = tmp_path / "jwks.json"
        self.record = tmp_path / "jwks.private.rotation.json"
        self.monkeypatch = monkeypatch
        self.base = float(int(time.time()))
        result = run(
            "jwks", "generate", "--private-out", str(self.private), "--out", str(self.public)
        )
        assert result.exit_code == 0, result.stderr
        self.first = self.kids()[0]

    def at(self, seconds: float) -> None:
        self.monkeypatch.setenv("JWKSDEPLOY_NOW", str(self.base + seconds))

    def rotate(self, *args: str) -> Any:
        return run(
            "rotate", *args, "--local", "--private", str(self.private), "--jwks", str(self.public)
        )

    def kids(self) -> list[str]:
        return [k["kid"] for k in json.loads(self.private.read_text())["keys"]]

    def snapshot(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in self.private.parent.iterdir() if p.is_file()}

    def token(self, *args: str) -> Any:
        return run("token", "--private", str(self.private), *args)


import time  # noqa: E402


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Files:
    return Files(tmp_path, monkeypatch)


def verifies(token: str, jwks: bytes) -> bool:
    """PyJWT, an independent verifier, against the set served over HTTP on 127.0.0.1."""
    with serving(jwks) as url:
        client = pyjwt.PyJWKClient(url, cache_keys=False)
        try:
            key = client.get_signing_key_from_jwt(token)
            pyjwt.decode(token, key.key, algorithms=["ES256"])
        except (pyjwt.PyJWTError, pyjwt.PyJWKClientError):
            return False
    return True


def test_the_local_cycle_refuses_each_early_step_with_its_time(files: Files) -> None:
    files.at(0)
    old_token = files.token().stdout.strip()
    started = files.rotate("start")
    assert started.exit_code == 0, started.stderr
    first, second = files.kids()
    assert first == files.first
    assert f"promote at {rotation.when(files.base + 1200)}" in started.stdout

    # token keeps signing with the active key, refuses the next one unless allowed
    assert pyjwt.get_unverified_header(files.token().stdout.strip())["kid"] == first
    refused = files.token("--kid", second)
    assert refused.exit_code == 12 and "--allow-next" in refused.stderr
    assert rotation.when(files.base + 1200) in refused.stderr

    files.at(1199)
    before = files.snapshot()
    early = files.rotate("promote")
    assert early.exit_code == 12
    assert f"safe at {rotation.when(files.base + 1200)} (in 1s)" in early.stderr
    assert files.snapshot() == before, "a refusal changes nothing"

    files.at(1200)
    promoted = files.rotate("promote")
    assert promoted.exit_code == 0, promoted.stderr
    new_token = files.token().stdout.strip()
    assert pyjwt.get_unverified_header(new_token)["kid"] == second
    retired = files.token("--kid", first, "--allow-next")
    assert retired.exit_code == 3 and "retired" in retired.stderr
    served = files.public.read_bytes()
    assert verifies(old_token, served) and verifies(new_token, served)

    finish_at = files.base + 1200 + 3600 + 1200
    files.at(finish_at - files.base - 1)
    early = files.rotate("finish")
    assert early.exit_code == 12 and rotation.when(finish_at) in early.stderr
    files.at(finish_at - files.base)
    done = files.rotate("finish")
    assert done.exit_code == 0, done.stderr
    assert files.kids() == [second]
    assert not verifies(old_token, files.public.read_bytes())
    assert verifies(new_token, files.public.read_bytes())


def test_run_does_at_most_one_step_per_call(files: Files) -> None:
    files.at(0)
    nothing = files.rotate("run")
    assert nothing.exit_code == 0 and "nothing due" in nothing.stdout
    assert files.rotate("run", "--rotate-after", "720h").exit_code == 0, "unknown age: start"
    assert len(files.kids()) == 2
    again = files.rotate("run", "--rotate-after", "720h")
    assert "nothing due; next: promote at" in again.stdout and len(files.kids()) == 2
    files.at(5 * 3600)
    assert "promote:" in files.rotate("run").stdout
    assert "nothing due; next: finish" in files.rotate("run").stdout
    files.at(10 * 3600)
    assert "finish:" in files.rotate("run").stdout
    assert len(files.kids()) == 1
    last = files.rotate("run", "--rotate-after", "720h", "-o", "json")
    assert last.exit_code == 0, last.stderr
    assert json.loads(last.stdout)["step"] is None
    assert json.loads(last.stdout)["next"]["step"] == "start", "once the new key is 720h old"


def test_status_exits_13_when_a_step_is_due(files: Files) -> None:
    files.at(0)
    assert files.rotate("start").exit_code == 0
    waiting = files.rotate("status", "-o", "json")
    assert waiting.exit_code == 0, waiting.stderr
    document = json.loads(waiting.stdout)
    assert document["next"] == {
        "step": "promote",
        "at": rotation.when(files.base + 1200),
        "reason": document["next"]["reason"],
    }
    assert [k["phase"] for k in document["state"]["keys"]] == ["active", "next"]
    files.at(1200)
    due = files.rotate("status")
    assert due.exit_code == 13 and "due now" in due.stdout


def test_revoke_promotes_a_replacement_and_names_the_window(files: Files) -> None:
    files.at(0)
    result = files.rotate("revoke", "--kid", files.first)  # a thumbprint may start with '-'
    assert result.exit_code == 0, result.stderr
    [replacement] = files.kids()
    assert replacement != files.first
    assert f"until {rotation.when(files.base + 1200)}" in result.stdout
    assert pyjwt.get_unverified_header(files.token().stdout.strip())["kid"] == replacement
    unknown = files.rotate("revoke", "nope")
    assert unknown.exit_code == 3 and 'no kid "nope"' in unknown.stderr


def test_revoke_takes_a_kid_that_starts_with_a_dash(tmp_path: Path) -> None:
    # One RFC 7638 thumbprint in 64 starts with '-', which reads as an option: --kid takes it.
    private, public = tmp_path / "jwks.private.json", tmp_path / "jwks.json"
    keys = ["--private", str(private), "--jwks", str(public)]
    assert run("jwks", "generate", "--kid", "-4dash", *keys).exit_code == 0
    result = run("rotate", "revoke", "--kid", "-4dash", "--local", *keys)
    assert result.exit_code == 0, result.stderr
    assert "-4dash" not in [k["kid"] for k in json.loads(private.read_text())["keys"]]
    both = run("rotate", "revoke", "a", "--kid", "b", "--local", *keys)
    assert both.exit_code == 3 and "once" in both.stderr
    neither = run("rotate", "revoke", "--local", *keys)
    assert neither.exit_code == 3 and "--kid" in neither.stderr


def test_bad_records_are_refused_and_nothing_changes(files: Files) -> None:
    files.at(0)
    assert files.rotate("start").exit_code == 0
    document = json.loads(files.record.read_text())
    two_active = json.loads(json.dumps(document))
    for key in two_active["state"]["keys"]:
        key["phase"] = "active"
    files.record.write_text(json.dumps(two_active))
    before = files.snapshot()
    result = files.rotate("promote")
    assert result.exit_code == 3 and "2 active keys" in result.stderr
    assert files.token().exit_code == 3
    assert files.snapshot() == before

    files.record.write_text(json.dumps(document))
    files.at(-7200)  # this machine's clock is two hours behind the record
    before = files.snapshot()
    skewed = files.rotate("promote")
    assert skewed.exit_code == 3 and "ahead of this machine's clock" in skewed.stderr
    assert files.snapshot() == before


def test_dry_run_changes_no_file(files: Files) -> None:
    files.at(0)
    before = files.snapshot()
    result = files.rotate("start", "--dry-run=client")
    assert result.exit_code == 0 and "would have" in result.stdout
    assert files.snapshot() == before


def test_every_rotate_command_has_help() -> None:
    for name in ("start", "promote", "finish", "status", "run", "revoke"):
        result = run("rotate", name, "--help")
        assert result.exit_code == 0 and "Usage" in result.stdout, name
    assert os.environ.get("JWKSDEPLOY_NOW") is None


# --- against the cluster (the emulator, or JWKSDEPLOY_TEST_KUBECONFIG) ------------------------

from .kube import Kube  # noqa: E402


def served_jwks(kube: Kube, configmap: str = "jwks-config") -> bytes:
    """The bytes every pod of the rolled-out Deployment serves: the ConfigMap it mounts."""
    obj = kube.read("ConfigMap", configmap)
    assert obj is not None
    return str(obj["data"]["jwks.json"]).encode()


def recorded(kube: Kube, configmap: str = "jwks-config") -> dict[str, Any]:
    obj = kube.read("ConfigMap", configmap)
    assert obj is not None
    result: dict[str, Any] = json.loads(
        obj["metadata"]["annotations"][rotation_record.STATE_ANNOTATION]
    )
    return result


def test_the_cluster_cycle_start_promote_finish(
    kube: Kube, files: Files, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = ("--private", str(files.private), "--jwks", str(files.public))
    target = ("-n", kube.namespace, *keys)
    applied = kube.jwksdeploy("apply", "-n", kube.namespace, "--jwks", str(files.public), "--wait")
    assert applied.exit_code == 0, applied.stderr
    files.at(0)
    old_token = files.token().stdout.strip()

    started = kube.jwksdeploy("rotate", "start", *target)
    assert started.exit_code == 0, started.stderr
    first, second = files.kids()
    assert first == files.first
    assert json.loads(served_jwks(kube))["keys"][1]["kid"] == second
    state = recorded(kube)
    assert [k["phase"] for k in state["keys"]] == ["active", "next"]
    assert state["keys"][1]["published"] == rotation.when(files.base)
    assert verifies(old_token, served_jwks(kube))

    files.at(600)
    early = kube.jwksdeploy("rotate", "promote", *target)
    assert early.exit_code == 12, early.stderr
    assert f"safe at {rotation.when(files.base + 1200)} (in 10m)" in early.stderr

    files.at(1200)
    promoted = kube.jwksdeploy("rotate", "promote", *target)
    assert promoted.exit_code == 0, promoted.stderr
    new_token = files.token().stdout.strip()
    assert pyjwt.get_unverified_header(new_token)["kid"] == second
    assert verifies(new_token, served_jwks(kube)) and verifies(old_token, served_jwks(kube))

    files.at(1200 + 3600 + 1199)
    early = kube.jwksdeploy("rotate", "finish", *target)
    assert early.exit_code == 12 and "(in 1s)" in early.stderr
    files.at(1200 + 3600 + 1200)
    finished = kube.jwksdeploy("rotate", "finish", *target)
    assert finished.exit_code == 0, finished.stderr
    assert [k["kid"] for k in json.loads(served_jwks(kube))["keys"]] == [second]
    assert verifies(new_token, served_jwks(kube)) and not verifies(old_token, served_jwks(kube))
    assert [k["phase"] for k in recorded(kube)["keys"]] == ["active"]

    status = kube.jwksdeploy("rotate", "status", *target, "-o", "json")
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["next"]["step"] is None


def _deployed(kube: Kube, files: Files) -> tuple[str, ...]:
    applied = kube.jwksdeploy("apply", "-n", kube.namespace, "--jwks", str(files.public), "--wait")
    assert applied.exit_code == 0, applied.stderr
    return ("-n", kube.namespace, "--private", str(files.private), "--jwks", str(files.public))


def secret_data(kube: Kube, name: str) -> dict[str, str] | None:
    import base64

    status, answer = kube.call("GET", f"/api/v1/namespaces/{kube.namespace}/secrets/{name}")
    if status == 404:
        return None
    assert status == 200, answer
    return {k: base64.b64decode(v).decode() for k, v in answer["data"].items()}


def test_the_issuer_secret_changes_only_at_promote(kube: Kube, files: Files) -> None:
    target = (*_deployed(kube, files), "--private-secret", "issuer-key")
    files.at(0)
    assert kube.jwksdeploy("rotate", "start", *target).exit_code == 0
    assert secret_data(kube, "issuer-key") is None, "start does not touch the Secret"
    first, second = files.kids()
    files.at(1200)
    promoted = kube.jwksdeploy("rotate", "promote", *target)
    assert promoted.exit_code == 0, promoted.stderr
    data = secret_data(kube, "issuer-key")
    assert data is not None and data["kid"] == second
    assert [k["kid"] for k in json.loads(data["jwks.private.json"])["keys"]] == [second]
    files.at(1200 + 4800)
    assert kube.jwksdeploy("rotate", "finish", *target).exit_code == 0
    assert secret_data(kube, "issuer-key") == data, "finish does not touch it either"
    assert first not in json.dumps(data)


def test_revoke_on_the_cluster_serves_the_replacement_at_once(kube: Kube, files: Files) -> None:
    target = _deployed(kube, files)
    files.at(0)
    revoked = kube.jwksdeploy("rotate", "revoke", "--kid", files.first, *target)
    assert revoked.exit_code == 0, revoked.stderr
    [replacement] = files.kids()
    assert [k["kid"] for k in json.loads(served_jwks(kube))["keys"]] == [replacement]
    assert f"until {rotation.when(files.base + 1200)}" in revoked.stdout
    token = files.token().stdout.strip()
    assert pyjwt.get_unverified_header(token)["kid"] == replacement
    assert verifies(token, served_jwks(kube))


def test_run_on_the_cluster_is_idempotent(kube: Kube, files: Files) -> None:
    target = _deployed(kube, files)
    files.at(0)
    first = kube.jwksdeploy("rotate", "run", "--rotate-after", "720h", *target)
    assert first.exit_code == 0 and first.stdout.startswith("start:"), first.stderr
    served = served_jwks(kube)
    second = kube.jwksdeploy("rotate", "run", "--rotate-after", "720h", *target)
    assert second.exit_code == 0 and second.stdout.startswith("nothing due; next: promote at")
    assert served_jwks(kube) == served and len(files.kids()) == 2


def test_the_cluster_contradicting_the_files_is_refused(kube: Kube, files: Files) -> None:
    target = _deployed(kube, files)
    # Another key set was applied by hand: the cluster serves a kid the files do not hold.
    elsewhere = files.private.parent / "elsewhere"
    elsewhere.mkdir()
    assert (
        run(
            "jwks",
            "generate",
            "--private-out",
            str(elsewhere / "p.json"),
            "--out",
            str(elsewhere / "j.json"),
        ).exit_code
        == 0
    )
    assert (
        kube.jwksdeploy(
            "apply", "-n", kube.namespace, "--jwks", str(elsewhere / "j.json"), "--wait"
        ).exit_code
        == 0
    )
    files.at(0)
    before = (files.snapshot(), served_jwks(kube))
    result = kube.jwksdeploy("rotate", "start", *target)
    assert result.exit_code == 3 and "the cluster and the local files disagree" in result.stderr
    assert (files.snapshot(), served_jwks(kube)) == before


def test_a_plain_apply_keeps_the_rotation_record(kube: Kube, files: Files) -> None:
    target = _deployed(kube, files)
    files.at(0)
    assert kube.jwksdeploy("rotate", "start", *target).exit_code == 0
    state = recorded(kube)
    again = kube.jwksdeploy("apply", "-n", kube.namespace, "--jwks", str(files.public), "--wait")
    assert again.exit_code == 0, again.stderr
    assert recorded(kube) == state, "the record has its own field manager"


def test_the_cluster_record_wins_over_the_local_copy(kube: Kube, files: Files) -> None:
    target = _deployed(kube, files)
    files.at(0)
    assert kube.jwksdeploy("rotate", "start", *target).exit_code == 0
    document = json.loads(files.record.read_text())
    document["state"]["cacheWindowSeconds"] = 60
    files.record.write_text(json.dumps(document))
    status = kube.jwksdeploy("rotate", "status", *target)
    assert "the cluster wins" in status.stderr
    assert f"promote at {rotation.when(files.base + 1200)}" in status.stdout


def test_dry_run_on_the_cluster_changes_nothing(kube: Kube, files: Files) -> None:
    target = _deployed(kube, files)
    files.at(0)
    before = (files.snapshot(), kube.read("ConfigMap", "jwks-config"))
    result = kube.jwksdeploy("rotate", "start", *target, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "(dry run)" in result.stderr and "would have" in result.stdout
    assert (files.snapshot(), kube.read("ConfigMap", "jwks-config")) == before


# --- the shipped CronJob ----------------------------------------------------------------------


def test_the_rotation_cronjob_example_is_valid_and_least_privileged() -> None:
    import click
    import kubernetes_validate
    import yaml

    from jwksdeploy.cli import cli

    from .helpers import EXAMPLES

    documents = list(yaml.safe_load_all((EXAMPLES / "rotation" / "cronjob.yaml").read_text()))
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == [
        "CronJob",
        "PersistentVolumeClaim",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    for document in documents:
        kubernetes_validate.validate(document, "1.32", strict=True)
    [role] = [d for d in documents if d["kind"] == "Role"]
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert not {"delete", "deletecollection", "update"} & set(rule["verbs"]), rule
    # The container's arguments are flags `rotate run` has.
    [cronjob] = [d for d in documents if d["kind"] == "CronJob"]
    [container] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[:2] == ["rotate", "run"]
    context = click.Context(cli)
    group = cli.get_command(context, "rotate")
    assert isinstance(group, click.Group)
    command = group.get_command(context, "run")
    assert command is not None
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert {a for a in args[2:] if a.startswith("--")} <= known
    parsed = command.make_context("run", list(args[2:]))
    assert parsed.params["private_secret"] == "jwks-issuer-key"


@pytest.mark.emulator_only
def test_a_rollout_not_seen_complete_blocks_promote_until_start_sees_it(
    kube: Kube, files: Files
) -> None:
    target = _deployed(kube, files)
    assert kube.emulator is not None
    kube.emulator.auto_ready = False  # the new pods never become ready by themselves
    files.at(0)
    stuck = kube.jwksdeploy("rotate", "start", *target, "--timeout", "1s")
    assert stuck.exit_code == 10, stuck.stderr
    first, second = files.kids()
    assert [k["phase"] for k in recorded(kube)["keys"]] == ["active", "next"]
    assert "published" not in recorded(kube)["keys"][1]
    files.at(7200)
    refused = kube.jwksdeploy("rotate", "promote", *target)
    assert refused.exit_code == 12 and "not been seen served" in refused.stderr
    kube.emulator.set_deployment_ready(kube.namespace, "remote-jwks-go")
    again = kube.jwksdeploy("rotate", "start", *target)
    assert again.exit_code == 0, again.stderr
    assert files.kids() == [first, second], "the same key, not another"
    assert recorded(kube)["keys"][1]["published"] == rotation.when(files.base + 7200)
    early = kube.jwksdeploy("rotate", "promote", *target)
    assert early.exit_code == 12 and rotation.when(files.base + 7200 + 1200) in early.stderr


# --- the cache window `apply --provider` and `gateway -n` record -------------------------------


def gateway_record(kube: Kube, configmap: str = "jwks-config") -> dict[str, Any] | None:
    obj = kube.read("ConfigMap", configmap)
    assert obj is not None
    text = (obj["metadata"].get("annotations") or {}).get(rotation_record.GATEWAYS_ANNOTATION)
    return None if text is None else dict(json.loads(text))


def test_apply_with_a_provider_records_its_window_and_rotate_waits_for_it(
    kube: Kube, files: Files
) -> None:
    target = _deployed(kube, files)
    configmap, deployment = (
        kube.read("ConfigMap", "jwks-config"),
        kube.read("Deployment", "remote-jwks-go"),
    )
    assert configmap is not None and deployment is not None
    gateway = ("--address", "127.0.0.1", "--provider", "envoy", "--cache-duration", "5m")
    dry = kube.jwksdeploy("apply", *target[:2], "--jwks", str(files.public), *gateway, "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert "would record" in dry.stderr and gateway_record(kube) is None
    applied = kube.jwksdeploy("apply", *target[:2], "--jwks", str(files.public), *gateway)
    assert applied.exit_code == 0, applied.stderr
    assert "recorded the gateway's cache window for `jwksdeploy rotate`" in applied.stderr
    assert gateway_record(kube) == {
        "envoy/remote-jwks-go": {"seconds": 300, "why": "--cache-duration"}
    }
    after = kube.read("ConfigMap", "jwks-config")
    rolled = kube.read("Deployment", "remote-jwks-go")
    assert after is not None and rolled is not None
    assert after["data"] == configmap["data"], "the served bytes are untouched"
    assert rolled["spec"]["template"] == deployment["spec"]["template"], "no pod rolls"
    assert rolled["metadata"]["generation"] == deployment["metadata"]["generation"]
    again = kube.jwksdeploy("apply", *target[:2], "--jwks", str(files.public), "--wait")
    assert again.exit_code == 0, again.stderr
    assert gateway_record(kube) is not None, "a plain apply keeps the record (own manager)"

    files.at(0)
    assert kube.jwksdeploy("rotate", "start", *target).exit_code == 0
    files.at(299)
    early = kube.jwksdeploy("rotate", "promote", *target)
    assert (
        early.exit_code == 12 and "cache window (5m)" in early.stderr and "(in 1s)" in early.stderr
    )
    status = kube.jwksdeploy("rotate", "status", *target, "-o", "json")
    window = json.loads(status.stdout)["cacheWindow"]
    assert window["seconds"] == 300
    assert "envoy/remote-jwks-go caches for 5m (--cache-duration)" in window["from"]
    files.at(300)
    promoted = kube.jwksdeploy("rotate", "promote", *target)
    assert promoted.exit_code == 0, promoted.stderr
    assert recorded(kube)["cacheWindowSeconds"] == 300


def test_gateway_with_a_namespace_records_and_rotate_takes_the_longest(
    kube: Kube, files: Files
) -> None:
    target = _deployed(kube, files)
    lookup = ("gateway", "-n", kube.namespace, "--address", "127.0.0.1")
    skipped = kube.jwksdeploy(*lookup, "--provider", "envoy", "--no-record")
    assert skipped.exit_code == 0, skipped.stderr
    client = kube.jwksdeploy(*lookup, "--provider", "envoy", "--dry-run=client")
    assert client.exit_code == 0 and "record" not in client.stderr
    dry = kube.jwksdeploy(*lookup, "--provider", "envoy", "--dry-run")
    assert dry.exit_code == 0 and "would record" in dry.stderr
    assert gateway_record(kube) is None
    envoy = kube.jwksdeploy(*lookup, "--provider", "envoy", "--cache-duration", "30m")
    assert envoy.exit_code == 0, envoy.stderr
    assert "remote_jwks" in envoy.stdout, "the configuration is printed as before"
    istio = kube.jwksdeploy(*lookup, "--provider", "istio", "--issuer", "i", "--provider-name", "m")
    assert istio.exit_code == 0, istio.stderr
    assert gateway_record(kube) == {
        "envoy/remote-jwks-go": {"seconds": 1800, "why": "--cache-duration"},
        "istio/m": {"seconds": 1200, "why": "istiod's default PILOT_JWT_PUB_KEY_REFRESH_INTERVAL"},
    }
    status = kube.jwksdeploy("rotate", "status", *target)
    assert status.exit_code == 0, status.stderr
    assert "cache window 30m" in status.stdout
    assert "envoy/remote-jwks-go caches for 30m (--cache-duration), the longest of 2" in (
        status.stdout
    )
    flagged = kube.jwksdeploy("rotate", "status", *target, "--cache-window", "1m")
    assert "cache window 1m" in flagged.stdout and "from: --cache-window" in flagged.stdout


@pytest.mark.emulator_only
def test_a_refused_record_is_a_warning_and_the_configuration_still_prints(
    kube: Kube, files: Files
) -> None:
    _deployed(kube, files)
    assert kube.emulator is not None
    kube.emulator.fail("PATCH", "configmaps", 403, 'configmaps "jwks-config" is forbidden')
    result = kube.jwksdeploy(
        "gateway", "-n", kube.namespace, "--address", "127.0.0.1", "--provider", "envoy"
    )
    assert result.exit_code == 0, result.stderr
    assert "remote_jwks" in result.stdout
    [line] = [x for x in result.stderr.splitlines() if "not recorded" in x]
    assert line.startswith("warning: ") and "forbidden" in line and "--cache-window" in line
    assert gateway_record(kube) is None


# ---------------------------------------------------------------------------------------------
# Moved from the hostile suites (issue 9): rotation records and clocks that are no time
# ---------------------------------------------------------------------------------------------
# The local mirror and the ConfigMap annotation are read by the same checked reader.

from .helpers import corrupt, key_pair_files  # noqa: E402
from .refusals import assert_refused, invoke, snapshot  # noqa: E402


@pytest.fixture
def rotating(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A local key pair with a rotation started; returns the mirror's document."""
    monkeypatch.setenv("JWKSDEPLOY_NOW", "1800000000")
    assert invoke("jwks", "generate").code == 0
    started = invoke("rotate", "start", "--local")
    assert started.code == 0, started.describe()
    document: dict[str, Any] = json.loads((tmp_path / "jwks.private.rotation.json").read_text())
    return document


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize(
    "field, value",
    [
        ("cacheWindowSeconds", 1e300),
        ("cacheWindowSeconds", 10**30),
        ("maxTokenTtlSeconds", 10**18),
        ("maxTokenTtlSeconds", 1e300),
    ],
)
@pytest.mark.parametrize("step", ["status", "promote", "run"])
def test_a_rotation_record_with_an_overflowing_window_is_refused(
    field: str,
    value: float,
    step: str,
    rotating: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A recorded window past year 9999 is refused like the flags (exit 3, nothing changed): it
    raised OverflowError (or EOVERFLOW) formatting a date, exit 70, at status or once promote was
    due (issue 9, second campaign)."""
    rotating["state"][field] = value
    (tmp_path / "jwks.private.rotation.json").write_text(json.dumps(rotating))
    monkeypatch.setenv("JWKSDEPLOY_NOW", str(1800000000 + 10**7))  # every step is due
    before = snapshot(tmp_path)
    outcome = invoke("rotate", step, "--local")
    assert_refused(outcome, 3, before=before, after=snapshot(tmp_path), mentions=[field])


@pytest.mark.usefixtures("in_tmp")
def test_a_huge_value_in_a_record_gives_a_short_error(
    rotating: dict[str, Any], tmp_path: Path
) -> None:
    """A 900 KB kid in the record is cut in the one-line error: it was echoed whole (issue 9,
    second campaign)."""
    rotating["state"]["keys"][1]["kid"] = "k" * 900_000
    (tmp_path / "jwks.private.rotation.json").write_text(json.dumps(rotating))
    outcome = invoke("rotate", "status", "--local")
    assert_refused(outcome, 3)
    assert len(outcome.stderr) < 10_000
    assert "characters left out" in outcome.stderr


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.parametrize("now", ["nan", "inf", "1e400", "-1", "-inf"])
@pytest.mark.parametrize("step", ["status", "finish"])
def test_a_clock_that_is_not_a_time_is_refused(
    now: str, step: str, rotating: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JWKSDEPLOY_NOW must be a time (exit 3): inf made every step due at once (finish would drop
    the old key now) and nan made none due, silently (issue 9, second campaign)."""
    monkeypatch.setenv("JWKSDEPLOY_NOW", now)
    before = snapshot(tmp_path)
    outcome = invoke("rotate", step, "--local")
    assert_refused(outcome, 3, mentions=["JWKSDEPLOY_NOW"], before=before, after=snapshot(tmp_path))


@pytest.mark.usefixtures("in_tmp")
@pytest.mark.emulator_only
def test_rotation_annotation_with_an_overflowing_window(kube: Kube, tmp_path: Path) -> None:
    """The ConfigMap's rotation annotation is read by the same checked reader as the mirror."""
    key_pair_files(tmp_path)
    ns = ["-n", kube.namespace, "--kubeconfig", kube.kubeconfig]
    assert invoke("apply", *ns, "--no-wait").code == 0
    record = {
        "keys": [{"kid": "pair-1", "phase": "active"}],
        "cacheWindowSeconds": 1e300,
        "maxTokenTtlSeconds": 3600,
    }
    annotations = {"rotation.jwksdeploy.io/state": json.dumps(record)}
    corrupt(
        kube, "configmaps", "jwks-config", lambda o: o["metadata"].update(annotations=annotations)
    )
    for step in ("status", "promote", "run"):
        assert_refused(invoke("rotate", step, *ns), 3, mentions=["cacheWindowSeconds"])


# --- one rotation model: rotate.run(), and `jwks rotate`/`generate --add-to` as its spellings ---

from jwksdeploy import keys  # noqa: E402
from jwksdeploy import rotate as rotate_core  # noqa: E402
from jwksdeploy.rotate_session import RotateOptions  # noqa: E402


def test_keep_newest_drops_only_retired_keys_whose_tokens_expired() -> None:
    started = rotation.start(one_key(), private("a"), key("b"), T0)
    with pytest.raises(InputError, match="the active key"):
        rotation.keep_newest(started, 1, T0)
    with pytest.raises(InputError, match="--keep 1 or more"):
        rotation.keep_newest(started, 0, T0)
    assert rotation.keep_newest(started, 2, T0) == started, "nothing beyond --keep"
    promoted = rotation.promote(
        rotation.mark_published(started.state, T0), started.private, T0 + WINDOW
    )
    again = rotation.start(promoted.state, promoted.private, key("c"), T0 + WINDOW)
    safe = T0 + WINDOW + TTL + WINDOW
    with pytest.raises(TooEarly) as early:
        rotation.keep_newest(again, 2, safe - 1)
    assert early.value.safe_at == safe and rotation.when(safe) in str(early.value)
    kept = rotation.keep_newest(again, 2, safe)
    assert [k.kid for k in kept.state.keys] == ["b", "c"] and kept.dropped == ["a"]
    assert [k["kid"] for k in kept.private["keys"]] == ["b", "c"]


def test_the_key_pair_check_needs_every_private_half_and_the_same_keys() -> None:
    first = keys.generate(keys.key_spec(), kid="a")
    public = keys.public_set({"keys": [first]})
    keys.refuse_out_of_step({"keys": [first]}, public, "p.json", "j.json")
    with pytest.raises(InputError, match="no private half"):
        keys.refuse_out_of_step(public, public, "p.json", "j.json")
    other = keys.public_set({"keys": [keys.generate(keys.key_spec(), kid="b")]})
    with pytest.raises(InputError, match="out of step") as refused:
        keys.refuse_out_of_step({"keys": [first]}, other, "p.json", "j.json")
    assert "jwksdeploy jwks public --private p.json --jwks j.json --force" in str(refused.value)


def test_run_takes_a_step_on_local_files_and_says_what_comes_next(files: Files) -> None:
    files.at(0)
    options = RotateOptions(str(files.private), str(files.public))
    nothing = rotate_core.run(options, rotate_core.StepOptions("run"))
    assert nothing.step is None and nothing.next.step is None
    result = rotate_core.run(options, rotate_core.StepOptions("start", kid="second"))
    assert result.step is not None and result.step.name == "start"
    assert result.new_key is not None and result.new_key["kid"] == "second"
    assert "d" in result.new_key and result.public_text is None
    assert files.kids() == [files.first, "second"]
    assert [k["kid"] for k in json.loads(files.public.read_text())["keys"]] == files.kids()
    assert result.next.step == "promote" and result.next.at == files.base + 1200
    status = rotate_core.status(options)
    assert status.local and not status.pending and not status.due_now
    assert [(k.kid, k.phase) for k in status.state.keys] == [
        (files.first, ACTIVE),
        ("second", NEXT),
    ]
    files.at(1200)
    assert rotate_core.status(options).due_now
    promoted = rotate_core.run(options, rotate_core.StepOptions("run"))
    assert promoted.step is not None and promoted.step.name == "promote"
    assert promoted.step.state.active.kid == "second"


def test_jwks_rotate_and_rotate_start_local_write_the_same_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JWKSDEPLOY_NOW", "1800000000")
    for spelling in ("jwks-rotate", "add-to", "rotate-start"):
        folder = tmp_path / spelling
        folder.mkdir()
        private, public = folder / "jwks.private.json", folder / "jwks.json"
        made = run(
            "jwks", "generate", "--kid", "first", "--private", str(private), "--jwks", str(public)
        )
        assert made.exit_code == 0, made.stderr
        command = {
            "jwks-rotate": ["jwks", "rotate", "--jwks", str(public), "--private", str(private)],
            "add-to": ["jwks", "generate", "--add-to", str(public), "--private", str(private)],
            "rotate-start": [
                "rotate",
                "start",
                "--local",
                "--jwks",
                str(public),
                "--private",
                str(private),
            ],
        }[spelling]
        result = run(*command, "--kid", "second")
        assert result.exit_code == 0, (spelling, result.stderr)
        record = json.loads((folder / "jwks.private.rotation.json").read_text())
        assert record == {
            "pendingFrom": None,
            "state": {
                "cacheWindowFrom": "default",
                "cacheWindowSeconds": 1200.0,
                "keys": [
                    {"kid": "first", "phase": "active"},
                    {"kid": "second", "phase": "next", "published": "2027-01-15T08:00:00Z"},
                ],
                "maxTokenTtlSeconds": 3600.0,
            },
        }, spelling
        assert [k["kid"] for k in json.loads(public.read_text())["keys"]] == ["first", "second"]
        promote = run(
            "rotate", "promote", "--local", "--jwks", str(public), "--private", str(private)
        )
        assert promote.exit_code == 12 and "too early to promote" in promote.stderr


def test_add_to_with_out_dash_prints_the_public_set_and_keeps_the_pair_in_step(
    tmp_path: Path,
) -> None:
    """Fixed: the public set on stdout left the --add-to file behind the private set, so the
    next step refused the pair as out of step."""
    private, public = tmp_path / "jwks.private.json", tmp_path / "jwks.json"
    assert run("jwks", "generate", "--private", str(private), "--jwks", str(public)).exit_code == 0
    result = run(
        "jwks", "generate", "--add-to", str(public), "--private", str(private), "--out", "-"
    )
    assert result.exit_code == 0, result.stderr
    printed = json.loads(result.stdout)
    assert [k["kid"] for k in printed["keys"]] == [
        k["kid"] for k in json.loads(private.read_text())["keys"]
    ]
    assert len(printed["keys"]) == 2 and all("d" not in k for k in printed["keys"])
    assert json.loads(public.read_text()) == printed
    assert "updated" in result.stderr and "stdout" not in result.stderr
    status = run("rotate", "status", "--local", "--private", str(private), "--jwks", str(public))
    assert "out of step" not in status.stderr, status.stderr


def test_a_private_set_with_a_public_only_key_is_refused_by_every_step(files: Files) -> None:
    """Fixed: the key-pair check returned early when a key of the private set had no private
    half, so `rotate start` went on with sets out of step and overwrote the public set."""
    files.at(0)
    stripped = keys.public_set(json.loads(files.private.read_text()))
    files.private.write_text(json.dumps(stripped))
    other = keys.public_set({"keys": [keys.generate(keys.key_spec(), kid="elsewhere")]})
    files.public.write_text(json.dumps(other))
    before = files.snapshot()
    for step in ("start", "status"):
        result = files.rotate(step)
        assert result.exit_code == 3, (step, result.stderr)
        assert "no private half" in result.stderr and "Traceback" not in result.stderr
    assert files.snapshot() == before


def test_run_on_the_cluster_publishes_records_and_reports_through_the_listener(
    kube: Kube, files: Files
) -> None:
    from jwksdeploy.kube.client import connect
    from jwksdeploy.settings import build_settings

    applied = kube.jwksdeploy("apply", "-n", kube.namespace, "--jwks", str(files.public), "--wait")
    assert applied.exit_code == 0, applied.stderr
    files.at(0)
    settings = build_settings({"namespace": kube.namespace}, kube.namespace)
    options = RotateOptions(
        str(files.private), str(files.public), settings, lambda: connect(kube.kubeconfig)
    )
    heard: list[str] = []
    listen = rotate_core.Listener(applied=lambda obj: heard.append(f"{obj.kind}/{obj.outcome}"))
    dry = rotate_core.run(options, rotate_core.StepOptions("start", dry_run="client"), listen)
    assert dry.step is not None and heard == [] and len(files.kids()) == 1
    result = rotate_core.run(options, rotate_core.StepOptions("start", timeout=120), listen)
    assert result.step is not None and result.new_key is not None
    assert "ConfigMap/configured" in heard and "Deployment/configured" in heard
    assert [k["kid"] for k in json.loads(served_jwks(kube))["keys"]] == files.kids()
    assert [k["phase"] for k in recorded(kube)["keys"]] == ["active", "next"]
    status = rotate_core.status(options)
    assert not status.local and status.namespace == kube.namespace and not status.pending
    assert status.next.step == "promote" and status.next.at is not None
