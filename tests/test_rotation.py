"""Key rotation (issue 12): the pure state machine with a passed clock, then `jwksdeploy rotate`
through the CLI with local files and against the emulator, tokens checked with PyJWT."""

from __future__ import annotations

from typing import Any

import pytest

from jwksdeploy import rotation
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


def test_revoking_a_next_or_retired_key_just_removes_it() -> None:
    state = rotation.start(one_key(), private("a"), key("b"), T0).state
    step = rotation.revoke(state, private("a", "b"), "b", T0, None)
    assert [(k.kid, k.phase) for k in step.state.keys] == [("a", ACTIVE)]


def test_revoking_an_unknown_kid_is_an_input_error() -> None:
    with pytest.raises(InputError, match='no kid "nope"'):
        rotation.revoke(one_key(), private("a"), "nope", T0, None)


def test_the_recorded_form_round_trips_and_is_checked() -> None:
    state = rotation.mark_published(rotation.start(one_key(), private("a"), key("b"), T0).state, T0)
    text = rotation.to_json(state)
    assert rotation.from_json(text, "test") == state
    two_active = text.replace('"phase":"next"', '"phase":"active"')
    with pytest.raises(InputError, match="2 active keys"):
        rotation.from_json(two_active, "test")
    with pytest.raises(InputError, match="phase"):
        rotation.from_json(text.replace('"phase":"next"', '"phase":"soon"'), "test")
    with pytest.raises(InputError, match="not a time"):
        rotation.from_json(text.replace("2027-01-15T08:00:00Z", "yesterday"), "test")


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
