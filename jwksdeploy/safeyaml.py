"""One safe YAML loader for every YAML input (values files, kubeconfigs), and the one rule
for how our YAML output writes a string.

PyYAML's `safe_load` is safe from code execution but not from the rest: it expands aliases
without limit (a "billion laughs" file exhausts memory once anything walks it), keeps the
last of two equal keys, recurses without a depth bound, and applies YAML 1.1's scalar rules
(`010` is 8, `12:30` is 750, `yes` is true). This loader refuses the first three and, for
values files, reads every scalar as the text that was written (YAML's failsafe schema): the
settings layer decides what a field's text means, so nothing changes type silently.

The pure-Python loader is used on purpose: libyaml's composer recurses in C, where a deeply
nested document can overflow the stack instead of raising.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
import yaml.constructor
import yaml.nodes

from .errors import InputError

Mode = Literal["values", "kubeconfig"]

# Line breaks to YAML but not to JSON or Kubernetes: PyYAML's emitter writes them raw, in
# block and single-quoted scalars, and its reader then folds or drops them. Double quotes
# escape them (\\N, \\L, \\P).
YAML_ONLY_BREAKS = "\x85\u2028\u2029"

MAX_NODES = 100_000  # after alias expansion: a values file has dozens, a kubeconfig hundreds
MAX_DEPTH = 64


class _Loader(yaml.SafeLoader):
    """Safe types only; a duplicate key is an error, not a silent override."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:
                    raise yaml.constructor.ConstructorError(
                        None, None, "a mapping key is a list or mapping", key_node.start_mark
                    ) from None
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"the key {str(key)[:60]!r} appears twice in one mapping",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


class _TextLoader(_Loader):
    """The failsafe schema: every plain scalar is the string that was written."""

    yaml_implicit_resolvers: dict[Any, Any] = {}  # noqa: RUF012


def load_yaml(data: bytes, source: str, *, mode: Mode = "values") -> Any:
    """Parse one YAML document, or raise InputError naming the problem and the fix."""
    loader_class = _TextLoader if mode == "values" else _Loader
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{source} is not UTF-8 text (invalid byte at offset {exc.start}). Save it as UTF-8."
        ) from None
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node, source)
        return loader.construct_document(node)
    except RecursionError:
        raise _too_deep(source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise InputError(
            f"{source} cannot be read{where}: {problem}. Fix the YAML and run again."
        ) from None
    except yaml.YAMLError as exc:
        raise InputError(f"{source} is not valid YAML ({exc}). Fix it and run again.") from None
    finally:
        loader.dispose()


def _check_size(root: yaml.Node, source: str) -> None:
    """Refuse documents whose aliases expand past MAX_NODES, or that nest past MAX_DEPTH.

    Sizes are computed once per node (aliases share nodes), iteratively, so the check itself
    costs the size of the file, not of its expansion.
    """
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        key = id(node)
        if depth > MAX_DEPTH:
            raise _too_deep(source)
        if children_done:
            in_progress.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_NODES:
                raise InputError(
                    f"{source} expands to more than {MAX_NODES} values through its anchors and "
                    "aliases (a 'billion laughs' document). Write the values out instead of "
                    "nesting aliases."
                )
            continue
        if key in sizes:
            continue
        if key in in_progress:
            raise InputError(f"{source} has an alias that refers to itself. Remove it.")
        in_progress.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _too_deep(source: str) -> InputError:
    return InputError(
        f"{source} nests deeper than {MAX_DEPTH} levels. No input of jwksdeploy needs that; "
        "check the file."
    )


def string_style(value: str, block: bool) -> str | None:
    """The scalar style that reads back as `value` in every YAML reader: double-quoted when it
    holds a YAML-only line break, else a literal block when `block`, else the emitter's pick."""
    if any(char in value for char in YAML_ONLY_BREAKS):
        return '"'
    return "|" if block else None


def represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """The str representer of PyYAML's safe dumper, with `string_style`."""
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=string_style(value, False))


class SafeDumper(yaml.SafeDumper):
    """yaml.safe_dump's dumper, with strings written so that they read back the same."""


SafeDumper.add_representer(str, represent_str)
