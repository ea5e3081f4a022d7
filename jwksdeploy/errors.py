"""One exception tree; each class carries the exit code the CLI turns it into.

The table in docs/reference.md ("Exit codes") is generated from EXIT_CODES below and checked
by a test, so the two never drift.
"""

from __future__ import annotations

INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE: 1 is kubectl diff's "something differs"


class JwksDeployError(Exception):
    """Base of every error we expect; its message is one paragraph for a human.

    What a command had done when the error came is data on the error (set by the command,
    never by rewriting its text), and `report()` turns it into the sentences the CLI prints
    after the message. Classes that carry data build their message in `format_message()`."""

    exit_code = INTERNAL_ERROR
    title = "internal error"
    # A pre-flight refusal: no write happened (`left_behind`: namespaces created for the dry
    # run that could not be deleted again).
    changed_nothing = False
    left_behind: tuple[str, ...] = ()
    # What had landed when it failed: (kind, name, outcome) in the order applied.
    landed: tuple[tuple[str, str, str], ...] = ()

    def refused_before_writes(self, left_behind: tuple[str, ...] = ()) -> JwksDeployError:
        """Mark this error as found by a dry run before any write; returns self."""
        self.changed_nothing = True
        self.left_behind = left_behind
        return self

    def after_writes(self, landed: tuple[tuple[str, str, str], ...]) -> JwksDeployError:
        """Record what had already changed when this error came; returns self."""
        self.landed = landed
        return self

    def format_message(self) -> str:
        """The paragraph shown to a human; classes that carry data build it from that data."""
        return str(self.args[0]) if self.args else ""

    def report(self) -> str:
        """The message with what was (not) changed and whether running again converges."""
        text = str(self)
        if self.changed_nothing:
            text += " Nothing was changed: a dry run found this before any write."
            if self.left_behind:
                names = ", ".join(repr(n) for n in self.left_behind)
                text += (
                    f" Except: namespace {names}, created for the dry run, could not be deleted "
                    "again; delete it yourself (kubectl delete namespace NAME)."
                )
        if self.landed:
            done = ", ".join(
                f"{kind.lower()}/{name} {outcome}" for kind, name, outcome in self.landed
            )
            text += f" Already applied: {done}. {self._converges()}"
        return text

    def _converges(self) -> str:
        recreated = {(kind, name) for kind, name, outcome in self.landed if outcome != "deleted"}
        gone = [
            (kind, name)
            for kind, name, outcome in self.landed
            if outcome == "deleted" and (kind, name) not in recreated
        ]
        if gone:
            return (
                f"The endpoint is down: {gone[0][0].lower()}/{gone[0][1]} was deleted and not "
                "created again; run the command again (without --recreate) to create it."
            )
        if isinstance(self, (ClusterUnreachable, WaitTimeout)):
            return "Running the command again converges once the API server answers."
        if isinstance(self, Forbidden):
            return "Running the command again converges once that permission is granted."
        return (
            "Fix the cause above, then run the command again; the objects already applied "
            "keep serving as before."
        )


class NamespacesFailed(JwksDeployError):
    """Some namespaces of a multi-namespace run failed; exits with the first one's code."""

    def __init__(
        self, failures: list[tuple[str, JwksDeployError]], total: int, others: str
    ) -> None:
        names = ", ".join(namespace for namespace, _ in failures)
        super().__init__(f"{len(failures)} of {total} namespaces failed ({names}); {others}.")
        self.failures = tuple(failures)
        self.exit_code = failures[0][1].exit_code

    def report(self) -> str:
        each = " ".join(f"[{ns}] {error.report()}" for ns, error in self.failures)
        return f"{self} {each}"


class Differences(JwksDeployError):
    """`diff`: applying would change something; `status`: the live JWKS differs from --jwks or
    the rollout is incomplete (kubectl diff's convention; not a failure of the command)."""

    exit_code = 1
    title = "differences"


class InputError(JwksDeployError):
    """A flag, values file, JWKS file or key file is malformed or out of range."""

    exit_code = 3
    title = "invalid input"


class JwksRejected(JwksDeployError):
    """The JWKS failed its checks (private material, duplicates, or warnings under --strict)."""

    exit_code = 4
    title = "JWKS rejected"


class OutputError(JwksDeployError):
    """Writing files failed; nothing was left half-written."""

    exit_code = 5
    title = "cannot write output"


class ClusterUnreachable(JwksDeployError):
    """No kubeconfig, the API server cannot be reached, or it refused our credentials (401)."""

    exit_code = 6
    title = "cluster unreachable"


class Forbidden(JwksDeployError):
    """The API server answered 403 for a verb on a resource."""

    exit_code = 7
    title = "forbidden"


class Conflict(JwksDeployError):
    """Server-side apply conflicted with another field manager (409)."""

    exit_code = 8
    title = "conflict"


class ClusterRejected(JwksDeployError):
    """The API server refused an object (422/400) or a namespace or object is missing."""

    exit_code = 9
    title = "rejected by the cluster"


class WaitTimeout(JwksDeployError):
    """Pods did not become ready, objects did not go away, or a request timed out."""

    exit_code = 10
    title = "timed out"


class VerificationFailed(JwksDeployError):
    """A live endpoint, served JWKS or token did not pass verification."""

    exit_code = 11
    title = "verification failed"


class TooEarly(JwksDeployError):
    """A rotation step was asked for before it is safe; the message says when it will be."""

    exit_code = 12
    title = "too early"

    def __init__(self, message: str, safe_at: float | None = None) -> None:
        super().__init__(message)
        self.safe_at = safe_at


# --- answers of the API server, carrying what they are about -------------------------------


class NotFound(JwksDeployError):
    """A 404 for `target` (kind and name, or a path); callers decide whether it is an error."""

    exit_code = ClusterRejected.exit_code

    def __init__(self, target: str, detail: str = "") -> None:
        self.target = target
        self.detail = detail  # the Status document's message
        super().__init__(self.format_message())

    def format_message(self) -> str:
        return self.detail or f"{self.target} not found"


class WatchRefused(JwksDeployError):
    """The API server will not watch this resource for us (403, 405...): poll instead."""

    exit_code = Forbidden.exit_code

    def __init__(self, kind: str, status: int) -> None:
        self.kind = kind
        self.status = status
        super().__init__(self.format_message())

    def format_message(self) -> str:
        return f"watch of {self.kind} refused ({self.status})"


class WatchExpired(JwksDeployError):
    """410 Gone: the resourceVersion is too old to resume from; list again."""

    exit_code = WaitTimeout.exit_code

    def __init__(self, kind: str = "") -> None:
        self.kind = kind
        super().__init__(self.format_message())

    def format_message(self) -> str:
        return f"watch of {self.kind} expired" if self.kind else "watch expired"


class ApplyConflict(Conflict):
    """A 409 from server-side apply, with the managers and fields the API server named in
    its Status details (both empty for an optimistic-concurrency 409)."""

    def __init__(
        self, message: str, managers: list[str] | None = None, fields: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.managers = managers or []
        self.fields = fields or []


class FieldConflict(ApplyConflict):
    """The 409 of one apply request, its text built from the Status it answered with."""

    def __init__(
        self,
        target: str,
        managers: list[str],
        fields: list[str],
        summary: str,
        flag: str = "--force-conflicts",
    ) -> None:
        self.target = target
        self.summary = summary  # the first line of the Status message
        self.flag = flag  # the CLI's way to take the fields over
        self.managers = managers
        self.fields = fields
        Conflict.__init__(self, self.format_message())

    def format_message(self) -> str:
        owners = ", ".join(self.managers) or "another client"
        where = f" ({', '.join(self.fields)})" if self.fields else ""
        return (
            f"applying {self.target} conflicts with fields managed by {owners}{where} (409): "
            f"{self.summary} Another tool set these fields; re-run with {self.flag} to take "
            "them over, or remove them from the other tool."
        )


class ForeignObject(ApplyConflict):
    """A live object that is not ours (`why`: the label that decided) and that another tool
    manages: refused before any write unless its fields are taken over (`flag`)."""

    def __init__(
        self,
        kind: str,
        name: str,
        namespace: str,
        managers: list[str],
        field_manager: str,
        why: str,
        flag: str = "--force-conflicts",
    ) -> None:
        self.kind, self.name, self.namespace = kind, name, namespace
        self.field_manager = field_manager
        self.why = why
        self.flag = flag
        self.managers = managers
        self.fields: list[str] = []
        Conflict.__init__(self, self.format_message())

    def format_message(self) -> str:
        return (
            f"{self.kind} {self.name!r} in {self.namespace!r} exists and is not ours ({self.why}): "
            f"it is managed by {', '.join(self.managers)}, not by {self.field_manager} or "
            f"kubectl. Nothing was changed. Re-run with {self.flag} to take its fields over, "
            "or remove it from the other tool first."
        )


class AccessDenied(Forbidden):
    """A 403 for `verb` on `resource`, in `namespace` or at cluster scope."""

    def __init__(self, verb: str, resource: str, namespace: str | None, detail: str) -> None:
        self.verb = verb
        self.resource = resource
        self.namespace = namespace
        self.detail = detail  # the Status document's message
        super().__init__(self.format_message())

    def format_message(self) -> str:
        where = f" in namespace {self.namespace!r}" if self.namespace else " at cluster scope"
        return (
            f"the API server denied {self.verb} on {self.resource}{where} (403 Forbidden): "
            f"{self.detail} Ask an administrator for RBAC permission to {self.verb} "
            f"{self.resource}, or use a context that has it."
        )


class RequestTimedOut(WaitTimeout):
    """The API server accepted a request and did not answer it within `timeout` seconds."""

    def __init__(
        self, server: str, verb: str, path: str, timeout: float, flag: str = "--request-timeout"
    ) -> None:
        self.server = server
        self.verb = verb  # the HTTP method
        self.path = path
        self.timeout = timeout
        self.flag = flag  # the CLI's way to wait longer
        super().__init__(self.format_message())

    def format_message(self) -> str:
        return (
            f"the API server at {self.server} did not answer {self.verb} {self.path} within "
            f"{self.timeout:g}s. Check the cluster's health or raise {self.flag}."
        )


class NamespaceMissing(ClusterRejected):
    """An object was sent to a namespace that does not exist."""

    def __init__(
        self, namespace: str | None, detail: str, flag: str = "--create-namespace"
    ) -> None:
        self.namespace = namespace
        self.detail = detail  # the API server's own words (the 404's message)
        self.flag = flag  # the CLI's way to create it
        super().__init__(self.format_message())

    def format_message(self) -> str:
        return (
            f"namespace {self.namespace!r} does not exist ({self.detail}). Create it, or pass "
            f"{self.flag} to let jwksdeploy create it."
        )


class Interrupted(JwksDeployError):
    """The user interrupted a wait (Ctrl-C)."""

    exit_code = 130


class RolloutFailed(WaitTimeout):
    """The rollout cannot succeed without a change from the user (same exit code as a wait
    that runs out of time: the pods did not become ready)."""

    def __init__(
        self,
        name: str,
        namespace: str,
        reason: str,
        subject: str,
        events: list[str],
        elapsed: float,
    ) -> None:
        self.name = name  # the Deployment
        self.namespace = namespace
        self.reason = reason  # the object's own reason (ImagePullBackOff, ...)
        self.subject = subject  # which object says so (a pod, the Deployment)
        self.events = events  # the latest warning events
        self.elapsed = elapsed  # seconds waited
        super().__init__(self.format_message())

    def format_message(self) -> str:
        tail = f" Latest warnings: {'; '.join(self.events)}." if self.events else ""
        return (
            f"the rollout of Deployment {self.name!r} in {self.namespace!r} cannot succeed: "
            f"{self.subject}: {self.reason} (after {self.elapsed:.0f}s).{tail} Fix the cause "
            "(image, quota, ConfigMap, ...) and run apply again."
        )


class RolloutTimedOut(WaitTimeout):
    """The Deployment was not ready when the wait's time ran out."""

    def __init__(
        self,
        name: str,
        namespace: str,
        timeout: float,
        progress: str,
        reasons: list[str],
        flag: str = "--timeout",
    ) -> None:
        self.name = name  # the Deployment
        self.namespace = namespace
        self.timeout = timeout
        self.progress = progress  # how far the rollout got ("1/2 pods available")
        self.reasons = reasons  # the pods' waiting reasons and warning events
        self.flag = flag  # the CLI's way to wait longer
        super().__init__(self.format_message())

    def format_message(self) -> str:
        return (
            f"Deployment {self.name!r} in {self.namespace!r} was not ready after "
            f"{self.timeout:g}s ({self.progress}): "
            f"{'; '.join(self.reasons) or 'no pod reported a reason'}. Fix the cause and run "
            f"apply again, or raise {self.flag}."
        )


class IngressTimedOut(WaitTimeout):
    """A LoadBalancer Service got no ingress address within the wait's time."""

    def __init__(
        self,
        name: str,
        namespace: str,
        timeout: float,
        flag: str = "--timeout",
        address_flag: str = "--address",
    ) -> None:
        self.name = name  # the Service
        self.namespace = namespace
        self.timeout = timeout  # the whole command's
        self.flag = flag  # the CLI's way to wait longer
        self.address_flag = address_flag  # the CLI's way to give the address
        super().__init__(self.format_message())

    def format_message(self) -> str:
        return (
            f"the LoadBalancer Service {self.name!r} in {self.namespace!r} got no ingress "
            f"address within {self.flag} ({self.timeout:g}s). Check the cluster's load "
            f"balancer controller, raise {self.flag}, or pass {self.address_flag}."
        )


class StillThere(WaitTimeout):
    """Deleted objects still exist when the wait's time ran out (a finalizer may hold them)."""

    def __init__(
        self, objects: list[tuple[str, str]], namespace: str | None, timeout: float
    ) -> None:
        self.objects = objects  # (kind, name) of each one still there
        self.namespace = namespace
        self.timeout = timeout
        super().__init__(self.format_message())

    def format_message(self) -> str:
        kind, name = self.objects[0]
        namespace = self.namespace
        where = f" in {namespace!r}" if namespace else ""
        return (
            f"{', '.join(f'{k} {n!r}' for k, n in self.objects)}{where} still exist(s) "
            f"{self.timeout:g}s after deletion (a finalizer may hold it). Check `kubectl get "
            f"{kind.lower()} {name}{f' -n {namespace}' if namespace else ''} -o yaml`."
        )


STEP_DUE = 13  # `rotate status` when a rotation step is due now

EXIT_CODES: list[tuple[int, str]] = [
    (0, "success"),
    (1, " ".join((Differences.__doc__ or "").split())),
    (2, "usage error: unknown flag, missing argument, bad choice (reported by Click)"),
    *[
        (cls.exit_code, (cls.__doc__ or "").strip())
        for cls in (
            InputError,
            JwksRejected,
            OutputError,
            ClusterUnreachable,
            Forbidden,
            Conflict,
            ClusterRejected,
            WaitTimeout,
            VerificationFailed,
            TooEarly,
        )
    ],
    (STEP_DUE, "`rotate status`: a rotation step is due now (not an error)."),
    (
        INTERNAL_ERROR,
        "unexpected internal error (please report it; set JWKSDEPLOY_DEBUG=1 for a traceback)",
    ),
]
