"""The file-system edge: reading inputs and writing outputs, with errors a human can act on."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from .errors import InputError, OutputError

if TYPE_CHECKING:
    from pathlib import Path


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


def _looks_generated(directory: Path) -> bool:
    """True when a directory holds only what --output-dir writes (YAML files, one level deep)."""
    for entry in directory.rglob("*"):
        relative = entry.relative_to(directory)
        if entry.is_dir():
            if len(relative.parts) > 1:
                return False
        elif entry.suffix != ".yaml" or len(relative.parts) > 2:
            return False
    return True


def write_tree(directory: str, files: Mapping[str, str]) -> None:
    """Write files under directory atomically: build a sibling temp dir, then swap it in.

    An existing directory is replaced only when it looks like our own earlier output, so a
    mistyped path can never wipe unrelated files.
    """
    import shutil
    import tempfile
    from pathlib import Path

    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise OutputError(f"--output-dir {directory!r} is a file. Pass a directory path.")
    if target.is_dir() and not _looks_generated(target):
        raise OutputError(
            f"--output-dir {directory!r} holds files jwksdeploy did not write. Pass an empty or "
            "new directory (an earlier jwksdeploy output is replaced as a whole)."
        )
    parent = target.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except OSError as exc:
        raise OutputError(f"cannot create {str(parent)!r}: {exc.strerror}.") from None
    retired = None
    try:
        for relative, content in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            path.chmod(0o644)
        staging.chmod(0o755)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=parent))
            target.rename(retired / "tree")
        staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and not target.exists():
            with contextlib.suppress(OSError):
                (retired / "tree").rename(target)
        raise OutputError(
            f"cannot write {directory!r}: {exc.strerror}. Nothing was changed."
        ) from None
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


@dataclass(frozen=True)
class OutputFile:
    """One file to write; `secret` files get mode 0600 from their first byte."""

    path: str
    content: str
    secret: bool
    replaces: bool = False  # an update of this very file (rotation), not a clobber


def write_files(outputs: list[OutputFile], force: bool) -> None:
    """Write several files all-or-nothing: each goes to a temp file beside its target, and
    only when every temp file is complete are they moved into place.

    Without force an existing target is refused, and the final link is no-clobber (O_EXCL
    semantics), so a file created meanwhile is never overwritten either.
    """
    import tempfile

    for output in outputs:
        if os.path.isdir(output.path):
            raise OutputError(f"{output.path!r} is a directory. Pass a file path.")
        if not force and not output.replaces and os.path.lexists(output.path):
            raise OutputError(
                f"{output.path!r} already exists"
                + (" and may hold a private key" if output.secret else "")
                + ". Pass --force to overwrite it, or choose another path. Nothing was written."
            )
    staged: list[tuple[OutputFile, str]] = []
    created: list[str] = []
    current = ""
    try:
        for output in outputs:
            current = output.path
            directory = os.path.dirname(os.path.abspath(output.path))
            fd, temp = tempfile.mkstemp(prefix=".jwksdeploy-", dir=directory)
            staged.append((output, temp))
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                # mkstemp already creates 0600; public files are widened only once complete.
                handle.write(output.content)
                handle.flush()
                os.fsync(handle.fileno())
            if not output.secret:
                os.chmod(temp, 0o644)
        for output, temp in staged:
            current = output.path
            if force or output.replaces:
                os.replace(temp, output.path)
            else:
                os.link(temp, output.path)
                created.append(output.path)
                os.unlink(temp)
    except FileExistsError:
        _undo(created)
        raise OutputError(
            f"{current!r} appeared while writing. Pass --force to overwrite "
            "it, or choose another path."
        ) from None
    except OSError as exc:
        _undo(created)
        raise OutputError(
            f"cannot write {current!r}: {exc.strerror}. Check that its directory exists and is "
            "writable. Nothing was written."
        ) from None
    finally:
        for _, temp in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _undo(created: list[str]) -> None:
    """Remove files this call created, so a failure leaves nothing half-written."""
    for path in created:
        with contextlib.suppress(OSError):
            os.unlink(path)
