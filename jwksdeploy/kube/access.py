"""What the client needs from a loaded kubeconfig to reach its cluster (pure): the server,
TLS material and one credential, picked in the official loader's order (auth-provider,
token, exec plugin, username/password), so the client's Configuration is filled without
importing its kubeconfig loader (OAuth and pydantic, ~150 ms) on every cluster command."""

from __future__ import annotations

import base64
import contextlib
import datetime
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..kubeconfig import Kubeconfig
from ..terminal import printable

# An exec plugin's run: (its kubeconfig entry, the cluster entry) -> its ExecCredential status.
RunPlugin = Callable[[dict[str, Any], dict[str, Any]], Any]
# The official loader runs an exec plugin again this long before its token expires.
EXPIRY_MARGIN = datetime.timedelta(minutes=5)


@dataclass(frozen=True)
class Access:
    """The chosen context's server, TLS files' contents and credentials."""

    host: str
    https: bool
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    verify_ssl: bool | None = None  # None: the client's default (verify)
    tls_server_name: str | None = None
    proxy: str | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None
    exec_config: dict[str, Any] | None = None
    cluster: dict[str, Any] = field(default_factory=dict)  # for an exec plugin's cluster info
    auth_provider: bool = False  # only the official loader speaks gcp/oidc


def _pem(entry: dict[str, Any], key: str) -> bytes | None:
    value = entry.get(key)
    return base64.b64decode(str(value)) if value else None  # checked base64 by kubeconfig


def access_of(loaded: Kubeconfig) -> Access:
    """The Access of the loaded context (whose files `kubeconfig.load` already inlined)."""
    document = loaded.document
    context = next(
        c.get("context") or {} for c in document["contexts"] if c["name"] == loaded.context
    )
    cluster = next(
        c.get("cluster") or {} for c in document["clusters"] if c["name"] == context["cluster"]
    )
    users = [u.get("user") or {} for u in document["users"] if u["name"] == context.get("user")]
    user: dict[str, Any] = users[0] if users else {}
    host = str(cluster["server"]).rstrip("/")
    https = host.startswith("https")
    skip = cluster.get("insecure-skip-tls-verify")
    return Access(
        host=host,
        https=https,
        ca_pem=_pem(cluster, "certificate-authority-data") if https else None,
        cert_pem=_pem(user, "client-certificate-data") if https else None,
        key_pem=_pem(user, "client-key-data") if https else None,
        verify_ssl=None if skip is None else not skip,
        tls_server_name=cluster.get("tls-server-name"),
        proxy=cluster.get("proxy-url"),
        token=str(user["token"]) if user.get("token") else None,
        username=user.get("username") if "password" in user else None,
        password=user.get("password") if "username" in user else None,
        exec_config=user["exec"] if isinstance(user.get("exec"), dict) else None,
        cluster=cluster,
        auth_provider="auth-provider" in user,
    )


def expired(expiry: str) -> bool:
    """Whether an exec plugin's expirationTimestamp (RFC 3339) is within EXPIRY_MARGIN."""
    try:
        ends = datetime.datetime.fromisoformat(expiry.replace("Z", "+00:00"))
    except ValueError:
        return False
    if ends.tzinfo is None:
        return False
    return ends - EXPIRY_MARGIN <= datetime.datetime.now(datetime.UTC)


class ClientLog(logging.Handler):
    """The client logs exec-plugin failures with logging.error(), whose first call would
    install a root handler printing every library's records raw (with the plugin's stderr,
    arguments and tokens). This handler is installed first: it shows the client's own errors
    as one scrubbed line and drops everything else."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.name != "root" or record.levelno < logging.ERROR:
            return
        from ..kubeconfig import scrub

        text = printable(scrub(record.getMessage()))
        sys.stderr.write(f"warning: the Kubernetes client says: {text}\n")


def route_client_logs() -> None:
    """Install ClientLog once, before the client can log anything."""
    root = logging.getLogger()
    if not any(isinstance(handler, ClientLog) for handler in root.handlers):
        root.addHandler(ClientLog())


@contextlib.contextmanager
def private_folder() -> Iterator[str]:
    """A folder only we can read, for the files the client writes from the kubeconfig's
    inlined data (the client key among them); removed when the block ends, also on SIGTERM
    (a CI timeout), which Python would otherwise end without running this `finally`."""
    import shutil
    import signal
    import tempfile

    folder = tempfile.mkdtemp(prefix="jwksdeploy-kubeconfig-")
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main else None

    def terminated(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    if in_main:
        signal.signal(signal.SIGTERM, terminated)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def write_private(folder: str, data: bytes) -> str:
    """A file in our private folder holding data (mode 0600: it may be a client key)."""
    import tempfile

    fd, name = tempfile.mkstemp(dir=folder)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    return name


class PluginNode(dict[str, Any]):
    """The kubeconfig node ExecProvider reads (its `safe_get` and `value`)."""

    def safe_get(self, key: str) -> Any:
        return self.get(key)

    @property
    def value(self) -> dict[str, Any]:
        return dict(self)


def client_says(text: str) -> None:
    """One scrubbed warning line, as ClientLog shows the client's own errors."""
    from ..kubeconfig import scrub

    sys.stderr.write(f"warning: the Kubernetes client says: {printable(scrub(text))}\n")


def _use_exec_plugin(access: Access, configuration: Any, folder: str, run: RunPlugin) -> bool:
    """Run the kubeconfig's exec credential plugin and set what it returns, as the official
    loader does: a failure is one scrubbed warning, and the next credential (username and
    password) is tried. True when it gave a credential."""
    assert access.exec_config is not None
    try:
        status = run(access.exec_config, access.cluster)
        if "token" in status:
            configuration.api_key["BearerToken"] = f"Bearer {status['token']}"
            expiry = status.get("expirationTimestamp")
            if expiry:
                configuration.refresh_api_key_hook = _refresher(access, folder, str(expiry), run)
            return True
        if "clientCertificateData" in status:
            if "clientKeyData" not in status:
                client_says("exec: missing clientKeyData field in plugin output")
                return False
            configuration.cert_file = write_private(
                folder, status["clientCertificateData"].encode()
            )
            configuration.key_file = write_private(folder, status["clientKeyData"].encode())
            return True
        client_says("exec: missing token or clientCertificateData field in plugin output")
    except Exception as exc:
        client_says(str(exc))
    return False


def _refresher(access: Access, folder: str, expiry: str, run: RunPlugin) -> Any:
    """The client's refresh hook: run the plugin again once its token nears its expiry."""

    def refresh(configuration: Any) -> None:
        if expired(expiry):
            configuration.refresh_api_key_hook = None
            _use_exec_plugin(access, configuration, folder, run)

    return refresh


def configure(configuration: Any, access: Access, folder: str, run: RunPlugin) -> None:
    """Fill the client's Configuration from the kubeconfig, in the official loader's order:
    token, exec plugin, username/password; then server, TLS and proxy."""
    if access.token:
        configuration.api_key["BearerToken"] = f"Bearer {access.token}"
    elif not (access.exec_config and _use_exec_plugin(access, configuration, folder, run)) and (
        access.username is not None and access.password is not None
    ):
        basic = f"{access.username}:{access.password}".encode("latin-1")  # as urllib3 does
        configuration.api_key["BearerToken"] = f"Basic {base64.b64encode(basic).decode()}"
    configuration.host = access.host
    if access.https:
        if access.ca_pem:
            configuration.ssl_ca_cert = write_private(folder, access.ca_pem)
        if not configuration.cert_file and access.cert_pem:
            configuration.cert_file = write_private(folder, access.cert_pem)
        if not configuration.key_file and access.key_pem:
            configuration.key_file = write_private(folder, access.key_pem)
    if access.verify_ssl is not None:
        configuration.verify_ssl = access.verify_ssl
    if access.tls_server_name is not None:
        configuration.tls_server_name = access.tls_server_name
    if access.proxy is not None:
        configuration.proxy = access.proxy


def defer_init(package: str) -> None:
    """Let `package`'s submodules be imported without running its __init__ now.

    `import kubernetes.client.rest` runs `kubernetes/__init__`, which imports every part of
    the client (its kubeconfig loader with OAuth and requests, the dynamic client, streams,
    informers: ~150 ms). The package module is made from its spec as the import system
    would, and runs its __init__ the first time anyone asks it for a name it lacks, so other
    code in the process still sees the whole package."""
    if package in sys.modules:
        return
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or spec.loader is None:
        return  # not installed: the import that follows says so
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def complete(name: str) -> Any:
        module.__dict__.pop("__getattr__", None)
        loader.exec_module(module)
        return getattr(module, name)

    module.__getattr__ = complete  # type: ignore[method-assign]
    sys.modules[package] = module
