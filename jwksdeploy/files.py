"""The file-system edge: reading inputs and writing outputs, with errors a human can act on."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import yaml

from .errors import InputError

if TYPE_CHECKING:
    pass


def read_input(path: str, what: str) -> bytes:
    """The bytes of a file, or of stdin for '-'."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise InputError(
            f"{what} {path!r} does not exist. Pass the right path, or create one with "
            "`jwksdeploy jwks generate --out jwks.json`."
            if what == "JWKS file"
            else f"{what} {path!r} does not exist. Check the path."
        ) from None
    except IsADirectoryError:
        raise InputError(f"{what} {path!r} is a directory. Pass a file.") from None
    except OSError as exc:
        raise InputError(f"{what} {path!r} cannot be read: {exc.strerror}.") from None


def relative_to_file(path: str, anchor_file: str) -> str:
    """A path from a values file is relative to that file (as kustomize does), not to $PWD."""
    if path == "-" or os.path.isabs(path) or anchor_file == "-":
        return path
    return os.path.join(os.path.dirname(anchor_file), path)


def read_values(path: str) -> Any:
    """A --values YAML file, parsed safely."""
    data = read_input(path, "values file")
    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InputError(
            f"values file {path!r} is not valid YAML{where}. Fix the syntax and run again."
        ) from None


def kubeconfig_paths(explicit: str | None = None) -> list[str]:
    """The kubeconfig files kubectl would read: --kubeconfig, else $KUBECONFIG, else ~/.kube."""
    if explicit:
        return [explicit]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [p for p in env.split(os.pathsep) if p]
    return [os.path.join(os.path.expanduser("~"), ".kube", "config")]


def kubeconfig_namespace(explicit: str | None = None, context: str | None = None) -> str | None:
    """The namespace of the current (or named) context, merged as kubectl merges files:
    the first file that sets current-context wins, and the first definition of a context wins."""
    current = context
    contexts: dict[str, Any] = {}
    for path in kubeconfig_paths(explicit):
        try:
            with open(path, "rb") as handle:
                document = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(document, dict):
            continue
        if current is None and document.get("current-context"):
            current = str(document["current-context"])
        for entry in document.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") not in contexts:
                contexts[str(entry.get("name"))] = entry.get("context") or {}
    if current and isinstance(contexts.get(current), dict):
        namespace = contexts[current].get("namespace")
        return str(namespace) if namespace else None
    return None


def default_namespace(explicit_kubeconfig: str | None = None, context: str | None = None) -> str:
    """$JWKSDEPLOY_NAMESPACE, else the kubeconfig context's namespace, else 'default'."""
    return (
        os.environ.get("JWKSDEPLOY_NAMESPACE")
        or kubeconfig_namespace(explicit_kubeconfig, context)
        or "default"
    )
