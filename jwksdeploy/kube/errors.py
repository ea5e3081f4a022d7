"""What an API server's answer means, decided as data: (status, Status document, verb,
path) in, one of our errors out. No I/O here, so every mapping is table-tested.

The data comes from the Status document's fields (`message`, `details.causes`), never from
a pattern over its message: the message is shown, not parsed.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import (
    AccessDenied,
    ClusterRejected,
    ClusterUnreachable,
    FieldConflict,
    JwksDeployError,
    NotFound,
)

VERBS = {"GET": "get", "PATCH": "patch", "DELETE": "delete", "POST": "create"}
# The API server writes each field manager conflict as one cause whose message is
# `conflict with "<manager>"...` and whose field is the field path (apimachinery's
# merge.Conflict): the manager is only there.
_CAUSE_MANAGER = re.compile(r'conflict with "([^"]+)"')


def describe_request(method: str, path: str) -> tuple[str, str, str | None]:
    """(verb, resource, namespace) of a request path, as RBAC names them."""
    parts = [p for p in path.split("/") if p]
    namespace = None
    if "namespaces" in parts:
        index = parts.index("namespaces")
        if index + 2 < len(parts):
            namespace = parts[index + 1]
            parts = parts[index + 2 :]
        else:
            parts = parts[index:]
    else:
        parts = parts[2:] if parts[:1] == ["api"] else parts[3:]
    resource = parts[0] if parts else path
    verb = VERBS.get(method, method.lower())
    if method == "GET" and len(parts) < 2:
        verb = "list"
    return verb, resource, namespace


def causes(status: Any) -> list[dict[str, Any]]:
    """details.causes of a Status, whatever shape a hostile server gave either."""
    details = status.get("details") if isinstance(status, dict) else None
    found = details.get("causes") if isinstance(details, dict) else None
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def conflicting_managers(status: Any) -> list[str]:
    """The field managers a 409 Status names in its details.causes."""
    found: set[str] = set()
    for cause in causes(status):
        found.update(_CAUSE_MANAGER.findall(str(cause.get("message", ""))))
    return sorted(found)


def conflicting_fields(status: Any) -> list[str]:
    """The field paths a 409 Status names in its details.causes."""
    return sorted({str(c["field"]) for c in causes(status) if c.get("field")})


def not_an_api(server: str, status: int, method: str, path: str) -> ClusterUnreachable:
    return ClusterUnreachable(
        f"the server at {server} is not a Kubernetes API: it answered {method} {path} "
        f"with {status} and no Kubernetes object. Check the kubeconfig's server address "
        "(`kubectl cluster-info` prints the right one)."
    )


def malformed(server: str, method: str, path: str, reason: str) -> ClusterUnreachable:
    return ClusterUnreachable(
        f"the server at {server} answered {method} {path} with {reason}, which no "
        "Kubernetes API server sends. Check the kubeconfig's server address and any proxy "
        "in front of the API server."
    )


def api_error(
    status: int, document: Any, method: str, path: str, *, server: str, what: str = ""
) -> JwksDeployError:
    """The error of a non-2xx answer; `what` names the object for a human (else the path)."""
    message = str(document.get("message", "")) if isinstance(document, dict) else ""
    target = what or path
    if status == 401:
        return ClusterUnreachable(
            f"the API server at {server} refused our credentials (401 Unauthorized). "
            "Log in again or refresh the kubeconfig's token or certificate."
        )
    if status == 403:
        verb, resource, namespace = describe_request(method, path)
        return AccessDenied(verb, resource, namespace, message)
    if status == 404:
        if not isinstance(document, dict) or document.get("kind") != "Status":
            return not_an_api(server, status, method, path)
        return NotFound(target, message)
    if status == 409:
        summary = message.splitlines()[0] if message else "conflict"
        return FieldConflict(
            target, conflicting_managers(document), conflicting_fields(document), summary
        )
    if status in (400, 422):
        return ClusterRejected(
            f"the API server rejected {target} ({status}): {message} Fix the value it "
            "names and run again."
        )
    if status == 429 or status >= 500:
        return ClusterUnreachable(
            f"the API server at {server} answered {status} for {target}: {message} "
            "It is overloaded or failing; try again shortly."
        )
    return ClusterRejected(f"the API server answered {status} for {target}: {message}")
