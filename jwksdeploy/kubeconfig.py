"""Kubeconfig files, read by us before the client sees them: bounded, safely parsed, merged
as kubectl merges them, and with every file they point at (CA, client certificate and key,
tokenFile) read bounded and inlined, so the client never opens a file itself.

The client's own loader reads whole files without a limit (`/dev/zero` runs until
MemoryError), keeps the last of two equal keys, and raises whatever its parsing meets. Here
every problem becomes one ClusterUnreachable sentence that names the file and never its
secrets.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

from .errors import ClusterUnreachable, InputError

MAX_KUBECONFIG_BYTES = 4 << 20
MAX_REFERENCED_BYTES = 1 << 20  # a CA bundle, certificate, key or token
SECTIONS = {"clusters": "cluster", "users": "user", "contexts": "context"}
# (section entry, file key, inlined data key, base64-encode the file)
FILE_KEYS = (
    ("cluster", "certificate-authority", "certificate-authority-data", True),
    ("user", "client-certificate", "client-certificate-data", True),
    ("user", "client-key", "client-key-data", True),
    ("user", "tokenFile", "token", False),
)
SECRET_KEYS = ("token", "client-key-data", "password")
# An exec argument that is a subcommand or flag name (get-token, --region) holds no secret,
# and blanking it would blank that word in every message (`kubectl` is a common plugin).
_PLAIN_WORD = re.compile(r"-{0,2}[a-z][a-z0-9-]*\Z")
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # visible ASCII: what a bearer token can be
# The kubeconfig fields that are booleans; every other scalar is read as the text written,
# as kubectl reads a string field (`namespace: 010` is "010", not 8).
BOOLEAN_KEYS = ("insecure-skip-tls-verify", "disable-compression", "provideClusterInfo")
_BOOLEANS = {
    **dict.fromkeys(("true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"), False),
}


@dataclass(frozen=True)
class Kubeconfig:
    """One merged kubeconfig, ready for the client, and the files it came from."""

    document: dict[str, Any]
    context: str
    sources: tuple[str, ...]

    def secrets(self) -> list[str]:
        """Every secret value, so messages can be scrubbed of them (see `scrub`)."""
        return secrets_of(self.document)


def secrets_of(document: dict[str, Any]) -> list[str]:
    """The values of a kubeconfig that no message may show: tokens, keys, passwords, the
    userinfo of server and proxy URLs, auth-provider settings and an exec plugin's command,
    arguments and environment values (a plugin is often handed a secret that way)."""
    found: list[str] = []
    for entry in document.get("users") or []:
        user = (entry.get("user") if isinstance(entry, dict) else None) or {}
        if not isinstance(user, dict):
            continue
        found.extend(str(user[k]) for k in SECRET_KEYS if user.get(k))
        if user.get("username") and user.get("password"):
            found.append(f"{user['username']}:{user['password']}")  # a Basic header's text
        key = user.get("client-key-data")
        if isinstance(key, str):
            with contextlib.suppress(binascii.Error, ValueError):
                found.append(base64.b64decode(key).decode("utf-8"))  # the PEM text itself
        provider = user.get("auth-provider")
        if isinstance(provider, dict) and isinstance(provider.get("config"), dict):
            found.extend(str(v) for v in provider["config"].values() if v)
        plugin = user.get("exec")
        if isinstance(plugin, dict):
            command = str(plugin.get("command") or "")
            if os.sep in command:  # a path can name a user; `kubectl` or `aws` names none
                found.append(command)
            for argument in map(str, plugin.get("args") or []):
                if not _PLAIN_WORD.match(argument):
                    found.extend((argument, argument.partition("=")[2]))  # --token=VALUE
            found.extend(
                str(e.get("value") or "") for e in plugin.get("env") or [] if isinstance(e, dict)
            )
    for entry in document.get("clusters") or []:
        cluster = (entry.get("cluster") if isinstance(entry, dict) else None) or {}
        if isinstance(cluster, dict):
            for key in ("server", "proxy-url"):
                found.extend(_userinfo(cluster.get(key)))
    return [secret for secret in found if secret]


def _userinfo(url: Any) -> list[str]:
    """The user:password of a URL (and each part), which no message may show."""
    if not isinstance(url, str) or "@" not in url:
        return []
    userinfo = url.partition("://")[2].rpartition("@")[0]
    return [userinfo, *userinfo.split(":", 1)]


def _unusable(path: str, problem: str) -> ClusterUnreachable:
    return ClusterUnreachable(
        f"kubeconfig {path!r} {problem}. Fix it, or pass another file with --kubeconfig."
    )


def candidate_paths(explicit: str | None) -> tuple[list[str], bool]:
    """(paths, explicit?) as kubectl picks them: --kubeconfig, else $KUBECONFIG, else
    ~/.kube/config."""
    if explicit:
        return [os.path.expanduser(explicit)], True
    env = os.environ.get("KUBECONFIG")
    if env:
        return [os.path.expanduser(p) for p in env.split(os.pathsep) if p], False
    return [os.path.join(os.path.expanduser("~"), ".kube", "config")], False


def read_document(path: str) -> dict[str, Any] | None:
    """One kubeconfig file, bounded and safely parsed; None when it is empty."""
    from .files import read_bounded
    from .safeyaml import load_yaml

    try:
        data = read_bounded(path, "kubeconfig", MAX_KUBECONFIG_BYTES)
        document = load_yaml(data, f"kubeconfig {path!r}", mode="values")
    except InputError as exc:
        raise ClusterUnreachable(str(exc)) from None
    if document is None or document == "":
        return None
    if not isinstance(document, dict):
        raise _unusable(
            path, f"is not a kubeconfig: its top level is a {type(document).__name__}, not a map"
        )
    _type_booleans(document, path)
    return document


def _type_booleans(root: dict[str, Any], path: str) -> None:
    """Turn the text of BOOLEAN_KEYS into booleans (YAML 1.1 spellings, as kubectl's parser
    takes them); any other text there is refused rather than read as true."""
    stack: list[Any] = [root]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in BOOLEAN_KEYS and not isinstance(item, bool):
                    if not isinstance(item, str) or item not in _BOOLEANS:
                        raise _unusable(path, f"has {key} that is not true or false")
                    value[key] = _BOOLEANS[item]
                else:
                    stack.append(item)


def _entries(document: dict[str, Any], section: str, path: str) -> list[dict[str, Any]]:
    entries = document.get(section)
    if entries is None:
        return []
    inner = SECTIONS[section]
    if not isinstance(entries, list) or not all(
        isinstance(e, dict)
        and isinstance(e.get("name"), str)
        and isinstance(e.get(inner) or {}, dict)
        for e in entries
    ):
        raise _unusable(
            path, f"has a malformed {section!r}: it must be a list of {{name, {inner}}}"
        )
    return entries


def _resolve(entry: dict[str, Any], base: str) -> dict[str, Any]:
    """File references made absolute against the directory of the file that defines them."""
    out = dict(entry)
    for _, key, _, _ in FILE_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            out[key] = os.path.join(base, os.path.expanduser(value))
    exec_config = out.get("exec")
    if isinstance(exec_config, dict):
        command = exec_config.get("command")
        if isinstance(command, str) and os.sep in command and not os.path.isabs(command):
            out["exec"] = {**exec_config, "command": os.path.join(base, command)}
    return out


def merge(paths: list[str]) -> tuple[dict[str, Any], list[str]]:
    """kubectl's merge: the first file that sets current-context wins, and the first
    definition of each cluster, user and context name wins."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    named: dict[str, dict[str, dict[str, Any]]] = {section: {} for section in SECTIONS}
    read = []
    for path in paths:
        document = read_document(path)
        read.append(path)
        if document is None:
            continue
        base = os.path.dirname(os.path.abspath(path))
        current = document.get("current-context")
        if current is not None and not isinstance(current, str):
            raise _unusable(path, "has a current-context that is not a string")
        if current and "current-context" not in merged:
            merged["current-context"] = current
        for section, inner in SECTIONS.items():
            for entry in _entries(document, section, path):
                if entry["name"] not in named[section]:
                    body = entry.get(inner) or {}
                    if inner in ("cluster", "user"):
                        body = _resolve(body, base)
                    named[section][entry["name"]] = {"name": entry["name"], inner: body}
    for section in SECTIONS:
        merged[section] = list(named[section].values())
    return merged, read


def _inline(body: dict[str, Any], where: str, source: str) -> dict[str, Any]:
    """Read the files a cluster or user entry points at (bounded) and inline them; check
    that inlined certificate data is base64."""
    out = dict(body)
    for kind, file_key, data_key, encode in FILE_KEYS:
        if kind != where:
            continue
        if data_key in out and out[data_key] not in (None, ""):
            value = out[data_key]
            if encode:
                try:
                    base64.b64decode(str(value).encode(), validate=True)
                except (binascii.Error, ValueError):
                    raise _unusable(
                        source, f"has {data_key} that is not valid base64 (in its {where} entry)"
                    ) from None
            elif not isinstance(value, str):
                raise _unusable(source, f"has a {data_key} that is not a string")
            elif not _HEADER_SAFE.fullmatch(value):
                # client-go sends it as is and Go's net/http refuses the header ("invalid
                # header field value"); the Python client's error would quote it whole.
                raise _unusable(
                    source,
                    f"has a {data_key} (in its {where} entry) with a line break, space, control "
                    "or non-ASCII character, which no HTTP header can carry (a `token: |` "
                    "block keeps its final line break). Write the token on one line, as "
                    "`token: <value>` or `token: |-`",
                )
            out.pop(file_key, None)
            continue
        path = out.pop(file_key, None)
        if path is None:
            continue
        if not isinstance(path, str) or not path:
            raise _unusable(source, f"has a {file_key} that is not a path")
        from .files import read_bounded

        try:
            data = read_bounded(path, file_key, MAX_REFERENCED_BYTES)
        except InputError as exc:
            problem = str(exc).split(". ")[0].rstrip(".")
            raise ClusterUnreachable(
                f"kubeconfig {source!r} names a {file_key} that cannot be used: {problem}. "
                "Fix the path in the kubeconfig."
            ) from None
        if encode:
            out[data_key] = base64.b64encode(data).decode()
        else:
            try:
                token = data.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise _unusable(source, f"names a {file_key} {path!r} that is not text") from None
            if not token or any(c in token for c in "\r\n\x00"):
                raise _unusable(source, f"names a {file_key} {path!r} that holds no single token")
            out[data_key] = token
    return out


def load(explicit: str | None, context: str | None) -> Kubeconfig | None:
    """The merged kubeconfig for --kubeconfig/$KUBECONFIG/~/.kube/config, with the chosen
    context's files inlined; None when no kubeconfig file exists (and none was named)."""
    paths, named = candidate_paths(explicit)
    if named and not os.path.lexists(paths[0]):
        raise ClusterUnreachable(
            f"kubeconfig {explicit!r} (--kubeconfig) does not exist. Check the path, or drop "
            "--kubeconfig to use $KUBECONFIG or ~/.kube/config."
        )
    present = [p for p in paths if os.path.lexists(p)]
    if not present:
        return None
    document, sources = merge(present)
    source = sources[0] if len(sources) == 1 else os.pathsep.join(sources)
    chosen = context or document.get("current-context")
    if not chosen:
        raise _unusable(source, "sets no current-context. Pass --context")
    contexts = {c["name"]: c.get("context") or {} for c in document["contexts"]}
    if chosen not in contexts:
        known = ", ".join(sorted(contexts)) or "none"
        raise _unusable(source, f"has no context {chosen!r} (it has: {known})")
    entry = contexts[chosen]
    for section, key in (("clusters", "cluster"), ("users", "user")):
        wanted = entry.get(key)
        if key == "cluster" and not isinstance(wanted, str):
            raise _unusable(source, f"has a context {chosen!r} that names no cluster")
        if key == "cluster":
            _check_server(document, str(wanted), source)
        for item in document[section]:
            if item["name"] == wanted:
                item[key] = _inline(item.get(key) or {}, key, source)
    document["current-context"] = chosen
    loaded = Kubeconfig(document, chosen, tuple(sources))
    _SEEN[:] = loaded.secrets()  # one kubeconfig per run; a test process loads many
    return loaded


def _check_server(document: dict[str, Any], cluster: str, source: str) -> None:
    """The chosen cluster must exist and name an http(s) server, or nothing can be reached."""
    import urllib.parse

    bodies = [c.get("cluster") or {} for c in document["clusters"] if c["name"] == cluster]
    if not bodies:
        raise _unusable(source, f"has no cluster {cluster!r} (its context names it)")
    server = bodies[0].get("server")
    try:
        parsed = urllib.parse.urlsplit(server) if isinstance(server, str) else None
        ok = parsed is not None and parsed.scheme in ("http", "https") and bool(parsed.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise _unusable(
            source, f"has a cluster {cluster!r} without an http(s) server address (`server:`)"
        )
    if bodies[0].get("proxy-url") not in (None, ""):
        _check_proxy(bodies[0]["proxy-url"], cluster, source)


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


def _check_proxy(proxy: Any, cluster: str, source: str) -> None:
    """A proxy-url the client can use: urllib3 raises on anything else at the first request.
    The value is not quoted: a proxy URL may carry a password."""
    import importlib.util
    import urllib.parse

    try:
        parsed = urllib.parse.urlsplit(proxy) if isinstance(proxy, str) else None
        ok = parsed is not None and parsed.scheme in PROXY_SCHEMES and bool(parsed.hostname)
        if parsed is not None:
            parsed.port  # noqa: B018 -- raises ValueError on a port that is not one
    except ValueError:
        ok = False
    if not ok:
        raise _unusable(
            source,
            f"has a cluster {cluster!r} whose proxy-url is not a proxy address: it must look "
            "like http://proxy.example:3128 (or https://, socks5://)",
        )
    assert parsed is not None
    if parsed.scheme.startswith("socks") and importlib.util.find_spec("socks") is None:
        raise _unusable(
            source,
            f"has a cluster {cluster!r} with a socks5 proxy-url, which needs the PySocks "
            "package (`pip install PySocks`); install it or use an http(s) proxy",
        )


def namespace_of(explicit: str | None, context: str | None) -> str | None:
    """The namespace of the current (or named) context, as kubectl picks it; None when no
    kubeconfig exists or the context sets none. A kubeconfig that cannot be read, or whose
    namespace is not text, is an error: a render must not silently fall back."""
    paths, named = candidate_paths(explicit)
    present = [p for p in paths if os.path.lexists(p)]
    if named and not present:
        raise _unusable(str(explicit), "does not exist")
    if not present:
        return None
    document, sources = merge(present)
    chosen = context or document.get("current-context")
    matching = [c.get("context") or {} for c in document["contexts"] if c["name"] == chosen]
    if not chosen or not matching:
        return None
    namespace = matching[0].get("namespace")
    if namespace is None or namespace == "":
        return None
    if not isinstance(namespace, str):
        raise _unusable(
            os.pathsep.join(sources), f"has a context {chosen!r} whose namespace is not text"
        )
    return namespace


def default_namespace(explicit: str | None = None, context: str | None = None) -> str:
    """$JWKSDEPLOY_NAMESPACE, else the kubeconfig context's namespace, else 'default'."""
    return os.environ.get("JWKSDEPLOY_NAMESPACE") or namespace_of(explicit, context) or "default"


REDACTED = "<redacted>"
MIN_SECRET = 4  # shorter values are too common to blank out of a sentence
# What the client's exceptions hold whatever the kubeconfig said: an Authorization header's
# credentials (an exec plugin's token is never in the file) and a URL's userinfo.
_CREDENTIALS = re.compile(r"\b(Bearer|Basic)(\s|\\[tn ]|%20)+[^\s'\"\\,;)>]+")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s'\"]*@")
_SEEN: list[str] = []  # the secrets of the kubeconfig this process loaded last


def spellings(secret: str) -> set[str]:
    """A secret as a message may show it: as is, trimmed, each line of it (a PEM key), and
    as repr(), bytes repr(), JSON, base64 and percent-encoding render it."""
    import urllib.parse

    forms = {secret, secret.strip(), *secret.splitlines()}
    for form in list(forms):
        raw = form.encode("utf-8", "surrogatepass")
        forms |= {
            repr(form)[1:-1],
            repr(raw)[2:-1],
            json.dumps(form)[1:-1],
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
            urllib.parse.quote(form, safe=""),
        }
    return {form.strip() for form in forms if len(form.strip()) >= MIN_SECRET}


def scrub(text: str, secrets: list[str] | None = None) -> str:
    """The one scrubber: `text` with every spelling of the given secrets (and of the
    kubeconfig loaded last) replaced, and any Bearer/Basic credential or URL userinfo
    blanked whatever its source. Used on every message that carries a client's text."""
    forms: set[str] = set()
    for secret in [*(secrets or []), *_SEEN]:
        forms |= spellings(secret)
    if forms:
        # whole values only: an exec argument "fail" must not blank the middle of "failed"
        alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
        text = re.sub(f"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", REDACTED, text)
    text = _CREDENTIALS.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
