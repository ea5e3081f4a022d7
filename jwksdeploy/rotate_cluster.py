"""The cluster side of `jwksdeploy rotate`: read the served set and the recorded state, publish
a new set through apply's own render + apply path, record the state, keep the issuer's Secret.

Only `kube.client.Cluster` methods are used; the `kubernetes` client stays inside it.
Kept apart from rotate.py (which decides and orders the writes): these are the rotation's
only cluster calls, and `gateway`/`apply --provider` record their cache window through them
without pulling in the rotation steps.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ClusterRejected
from .gateway_record import apply_annotations
from .kube.client import APPLY_CONTENT_TYPE, Cluster
from .rotation_record import GATEWAYS_ANNOTATION, STATE_ANNOTATION

# The state annotation has its own field manager, so a later `jwksdeploy apply` (manager
# `jwksdeploy`, which never sends it) leaves it alone.
ROTATION_MANAGER = "jwksdeploy-rotation"


@dataclass(frozen=True)
class Live:
    """What the instance's ConfigMap holds: the served JWKS text and the recorded state."""

    jwks_text: str | None
    state_text: str | None
    gateways_text: str | None = None


def read_live(cluster: Cluster, namespace: str, configmap: str, name: str) -> Live:
    from .render import JWKS_KEY

    obj = cluster.get("ConfigMap", namespace, configmap)
    if obj is None:
        raise ClusterRejected(
            f"there is no ConfigMap {configmap!r} in namespace {namespace!r}, so instance "
            f"{name!r} is not deployed there. Deploy it first (`jwksdeploy apply -n {namespace} "
            f"--name {name}`), or pass the --namespace and --name you used; `rotate --local` "
            "works on the files alone."
        )
    annotations = obj.get("metadata", {}).get("annotations") or {}
    state = annotations.get(STATE_ANNOTATION)
    gateways = annotations.get(GATEWAYS_ANNOTATION)
    data = obj.get("data") or {}
    return Live(
        data.get(JWKS_KEY),
        state if isinstance(state, str) else None,
        gateways if isinstance(gateways, str) else None,
    )


def record_state(
    cluster: Cluster, namespace: str, configmap: str, state_text: str, dry_run: bool
) -> None:
    """Server-side apply of the one annotation, as ROTATION_MANAGER."""
    metadata = {"name": configmap, "namespace": namespace}
    annotations = {STATE_ANNOTATION: state_text}
    apply_annotations(cluster, metadata, annotations, ROTATION_MANAGER, dry_run)


def publish(
    cluster: Cluster,
    settings: Any,
    jwks_bytes: bytes,
    dry_run: bool,
    on_applied: Callable[[Any], None],
) -> list[str]:
    """Render and apply the instance with a new key set, exactly as `jwksdeploy apply` does
    (the pod template's checksum changes, so the pods roll); returns the render warnings."""
    from .apply import ApplyOptions, Listener, run
    from .render import render_objects

    rendered = render_objects(settings, jwks_bytes, "the rotated key set")
    options = ApplyOptions(
        objects=rendered.objects,
        instance=settings.name,
        dry_run=dry_run,
        wait=False,  # the caller records the new state first, then waits
        prune=False,  # rotation changes the key set only; pruning stays apply's job
    )
    result = run(cluster, options, Listener(applied=on_applied))
    error = result.error()
    if error is not None:
        raise error
    return [str(w) for w in rendered.warnings]


def wait_served(cluster: Cluster, namespace: str, name: str, timeout: float) -> None:
    """Every ready pod serves the new set once the Deployment is rolled out (the server reads
    its file once, at start-up): read from the cluster, never guessed."""
    from .kube.wait import wait_for_rollout

    wait_for_rollout(cluster, namespace, name, timeout, lambda verdict, elapsed: None)


def write_secret(
    cluster: Cluster,
    namespace: str,
    secret: str,
    private: dict[str, Any],
    active_kid: str,
    dry_run: bool,
) -> None:
    """The issuer's Secret: the active private key as a set, and its kid."""
    from .keys import to_json

    active = {"keys": [k for k in private["keys"] if k.get("kid") == active_kid]}

    def encoded(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": secret, "namespace": namespace},
        "type": "Opaque",
        "data": {"jwks.private.json": encoded(to_json(active)), "kid": encoded(active_kid)},
    }
    query = {"fieldManager": ROTATION_MANAGER, "fieldValidation": "Strict", "force": "true"}
    if dry_run:
        query["dryRun"] = "All"
    cluster.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/secrets/{secret}",
        query=query,
        body=body,
        content_type=APPLY_CONTENT_TYPE,
        what=f"Secret {json.dumps(secret)} in {namespace!r}",
    )
