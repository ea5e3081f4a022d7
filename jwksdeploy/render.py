"""Settings + JWKS bytes -> Kubernetes objects, through the Jinja2 templates. Pure: no I/O
beyond reading the templates shipped with the package.

The rendered text is parsed back and checked, so the objects we hand on are exactly the
ones the templates describe and no option value can add a key or a document.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import jinja2
import yaml

from . import jwks as jwkslib
from .errors import InputError, JwksDeployError
from .kube.resources import INSTANCE, KIND_ORDER, MANAGED_BY, MANAGED_BY_VALUE
from .safeyaml import string_style
from .settings import Settings

JWKS_KEY = "jwks.json"
JWKS_PATH = "/app/jwks.json"
CONTAINER_NAME = "remote-jwks-go"
APP_NAME = "jwks-server"
CHECKSUM_ANNOTATION = "checksum/jwks"
MAX_CONFIGMAP_BYTES = 1024 * 1024
TEMPLATE_FILES = {
    "ConfigMap": "configmap.yaml.j2",
    "Service": "service.yaml.j2",
    "Deployment": "deployment.yaml.j2",
    "PodDisruptionBudget": "poddisruptionbudget.yaml.j2",
}
TEMPLATES = tuple((kind, TEMPLATE_FILES[kind]) for kind in KIND_ORDER)


@dataclass(frozen=True)
class ServerPreset:
    """How one --server runs in the pod: the rest of the manifests do not change."""

    container: str
    command: tuple[str, ...]
    args: tuple[str, ...]  # "{port}" is the container port
    probe_path: str
    config_mount: str  # where the ConfigMap goes; a file path is a subPath mount of the JWKS
    writable_dirs: tuple[tuple[str, str], ...] = ()  # (volume name, path) as emptyDir
    config_template: str | None = None  # another ConfigMap key, rendered from this template


NGINX_DIR = "/etc/jwks"
SERVER_PRESETS = {
    # The source document's image and command line, unchanged.
    "remote-jwks-go": ServerPreset(
        CONTAINER_NAME, ("main",), ("jwks", "-c", JWKS_PATH), "/", JWKS_PATH
    ),
    # examples/image/: `jwksdeploy serve`, with a probe that is not the catch-all.
    "jwksdeploy": ServerPreset(
        "jwksdeploy",
        ("jwksdeploy",),
        ("serve", "--jwks", JWKS_PATH, "--listen", "0.0.0.0", "--port", "{port}"),
        "/healthz",
        JWKS_PATH,
    ),
    # nginx's unprivileged image with our nginx.conf; it writes only its pid and temp files.
    "nginx": ServerPreset(
        "nginx",
        ("nginx",),
        ("-e", "stderr", "-c", f"{NGINX_DIR}/nginx.conf"),
        "/healthz",
        NGINX_DIR,
        (("tmp", "/tmp"), ("cache", "/var/cache/nginx")),
        "nginx.conf.j2",
    ),
}
CONFIG_CHECKSUM_ANNOTATION = "checksum/server-config"

_SURROGATE_PAIR = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


@dataclass(frozen=True)
class Rendered:
    """The objects of one render, in apply order, and the JWKS warnings to show."""

    objects: list[dict[str, Any]]
    warnings: list[jwkslib.Finding]


def template_dir() -> str:
    """The templates inside an installed wheel, else the checkout's top-level templates/."""
    here = os.path.dirname(os.path.abspath(__file__))
    packaged = os.path.join(here, "templates")
    if os.path.isdir(packaged):
        return packaged
    return os.path.join(os.path.dirname(here), "templates")


def quote(value: object) -> str:
    """A JSON rendering of value, ASCII-only, that YAML reads back as the same value.

    JSON escapes astral characters as surrogate pairs, which YAML would read as two broken
    characters; they become YAML's \\UXXXXXXXX escape instead.
    """
    text = json.dumps(value, ensure_ascii=True, sort_keys=True)

    def astral(match: re.Match[str]) -> str:
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}"

    return _SURROGATE_PAIR.sub(astral, text)


COMPILED_PACKAGE = "compiled_templates"


def compiled_dir() -> str:
    """The templates as Python modules, compiled when the package was built (see
    `compile_templates`): loading them costs an import, not a Jinja compile."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), COMPILED_PACKAGE)


def _new_environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    environment = jinja2.Environment(
        # No bytecode cache on disk: it loads pickles, and a cache directory another user can
        # write (a shared XDG_CACHE_HOME) would run their code. The shipped compiled modules
        # sit in the package itself, as trusted as its other code.
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["q"] = quote
    return environment


@cache
def _environment() -> jinja2.Environment:
    """The compiled templates when they were compiled by this Jinja2, else the sources
    (compiled in memory: Jinja2's generated code is only promised to its own version)."""
    from .compiled_templates import JINJA2_VERSION

    if getattr(jinja2, "__version__", None) == JINJA2_VERSION:
        return _new_environment(jinja2.ModuleLoader(compiled_dir()))
    return _source_environment(template_dir())


@cache
def _source_environment(directory: str) -> jinja2.Environment:
    return _new_environment(jinja2.FileSystemLoader(directory))


def compile_templates(target: str, source: str | None = None) -> None:
    """Write templates/*.j2 as Python modules into target, with the Jinja2 version that
    compiled them (`python -m jwksdeploy.render` refreshes the package's copy)."""
    os.makedirs(target, exist_ok=True)
    environment = _source_environment(source or template_dir())
    environment.compile_templates(
        target, filter_func=lambda name: name.endswith(".j2"), zip=None, ignore_errors=False
    )
    with open(os.path.join(target, "__init__.py"), "w", encoding="utf-8") as marker:
        marker.write(
            '"""Generated by `python -m jwksdeploy.render` from templates/: do not edit."""\n\n'
            f"JINJA2_VERSION = {jinja2.__version__!r}\n"
        )


def jwks_checksum(jwks_text: str) -> str:
    """sha256 over the canonical JSON of the ConfigMap data, as kustomize hashes its data."""
    canonical = json.dumps({JWKS_KEY: jwks_text}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def recommended_selector(settings: Settings) -> dict[str, str]:
    """The stable pair that selects the pods; it never changes for a given --name."""
    return {"app.kubernetes.io/name": APP_NAME, INSTANCE: settings.name}


def selector_labels(settings: Settings) -> dict[str, str]:
    """What selects the pods: the recommended pair, or with --selector-compat source the
    source document's `app: <name>`, which a hand-made Deployment's immutable selector holds."""
    if settings.selector_compat == "source":
        return {"app": settings.name}
    return recommended_selector(settings)


def object_labels(settings: Settings) -> dict[str, str]:
    labels = dict(settings.labels)
    labels["app"] = settings.name  # the source document's label, kept for existing selectors
    labels.update(recommended_selector(settings))
    labels["app.kubernetes.io/component"] = "jwks"
    labels[MANAGED_BY] = MANAGED_BY_VALUE
    if settings.version_label:
        labels["app.kubernetes.io/version"] = settings.version_label
    return labels


def check_jwks(
    data: bytes, strict: bool, source: str = "the JWKS file"
) -> tuple[str, list[jwkslib.Finding]]:
    """Parse and lint the JWKS; return its text (the exact bytes, decoded) and the warnings."""
    document = jwkslib.parse_jwks(data, source)
    warnings = jwkslib.enforce(jwkslib.lint_jwks(document), strict)
    if len(data) + len(JWKS_KEY) > MAX_CONFIGMAP_BYTES:
        raise InputError(
            f"{source} is {len(data)} bytes; a ConfigMap holds at most 1 MiB. "
            "Drop retired keys from the set."
        )
    return data.decode("utf-8"), warnings


def render_objects(
    settings: Settings, jwks_bytes: bytes, source: str = "the JWKS file"
) -> Rendered:
    """All objects for every namespace in settings, in apply order (ConfigMap first)."""
    jwks_text, warnings = check_jwks(jwks_bytes, settings.strict, source)
    first = settings.namespaces[0]
    templated = _render_namespace(settings, jwks_text, first)
    objects: list[dict[str, Any]] = []
    # Objects differ between namespaces only in metadata.namespace (the templates use it
    # nowhere else), so the other namespaces are copies: 100 namespaces cost ~1.5x one.
    # marshal makes the deep copy in C, three times faster than a JSON round trip.
    for namespace in settings.namespaces:
        for obj in templated:
            if namespace != first:
                obj = marshal.loads(marshal.dumps(obj))
                obj["metadata"]["namespace"] = namespace
            objects.append(obj)
    return Rendered(objects=objects, warnings=warnings)


def _render_namespace(settings: Settings, jwks_text: str, namespace: str) -> list[dict[str, Any]]:
    """Render every template for one namespace and parse each back, checked."""
    environment = _environment()
    annotations = dict(settings.annotations)
    preset = SERVER_PRESETS[settings.server]
    server_config: dict[str, str] = {}
    pod_annotations = {**annotations, CHECKSUM_ANNOTATION: jwks_checksum(jwks_text)}
    if preset.config_template is not None:
        text = environment.get_template(preset.config_template).render(
            port=settings.container_port, jwks_dir=NGINX_DIR, jwks_key=JWKS_KEY
        )
        server_config[preset.config_template.removesuffix(".j2")] = text
        # The server reads its configuration once, so a new one must roll the pods too.
        pod_annotations[CONFIG_CHECKSUM_ANNOTATION] = hashlib.sha256(text.encode()).hexdigest()
    resources = dict(settings.resources)
    context = {
        "namespace": namespace,
        "name": settings.name,
        "configmap_name": settings.configmap_name,
        "labels": object_labels(settings),
        "selector": selector_labels(settings),
        "annotations": annotations,
        "pod_annotations": pod_annotations,
        "jwks_key": JWKS_KEY,
        "jwks_path": JWKS_PATH,
        "jwks_text": jwks_text,
        "image": settings.image,
        "image_pull_policy": settings.image_pull_policy,
        "image_pull_secrets": list(settings.image_pull_secrets),
        "container_name": preset.container,
        "command": list(preset.command),
        "args": [a.replace("{port}", str(settings.container_port)) for a in preset.args],
        "probe_path": preset.probe_path,
        "config_mount": preset.config_mount,
        "config_sub_path": JWKS_KEY if preset.config_mount == JWKS_PATH else None,
        "writable_dirs": [{"name": n, "path": p} for n, p in preset.writable_dirs],
        "server_config": server_config,
        "container_port": settings.container_port,
        "replicas": settings.replicas,
        "port": settings.port,
        "node_port": settings.node_port,
        "service_type": settings.service_type,
        "resources": {
            "requests": {"cpu": resources["cpu-request"], "memory": resources["memory-request"]},
            "limits": {"cpu": resources["cpu-limit"], "memory": resources["memory-limit"]},
        },
    }
    objects = []
    for kind, template in TEMPLATES:
        if kind == "PodDisruptionBudget" and settings.replicas < 2:
            continue
        text = environment.get_template(template).render(context)
        objects.append(_parse_back(text, kind, namespace, settings, jwks_text, server_config))
    return objects


def _parse_back(
    text: str,
    kind: str,
    namespace: str,
    settings: Settings,
    jwks_text: str,
    server_config: dict[str, str],
) -> dict[str, Any]:
    """Parse one rendered template and check it is the single object it should be."""
    documents = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    expected_name = settings.configmap_name if kind == "ConfigMap" else settings.name
    problem = None
    if len(documents) != 1 or not isinstance(documents[0], dict):
        problem = f"produced {len(documents)} documents"
    else:
        obj = documents[0]
        meta = obj.get("metadata", {})
        if (obj.get("kind"), meta.get("name"), meta.get("namespace")) != (
            kind,
            expected_name,
            namespace,
        ):
            problem = "produced the wrong kind, name or namespace"
        elif kind == "ConfigMap" and obj.get("data") != {JWKS_KEY: jwks_text, **server_config}:
            problem = "did not carry the JWKS bytes unchanged"
        elif meta.get("labels", {}).get(MANAGED_BY) != MANAGED_BY_VALUE:
            problem = "lost the managed-by label"
        else:
            return obj
    # Only a broken template can get here: values are quoted and validated before rendering.
    raise JwksDeployError(f"the {kind} template {problem}; this is a bug in jwksdeploy.")


# libyaml when present (PyYAML's wheels ship it): parsing back 100 namespaces of objects is
# ten times faster. Both emitters write the same indentless block style that kubectl prints.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """Block style, multi-line strings as literal blocks, no anchors, no line folding."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = string_style(value, block="\n" in value)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


_DUMP_OPTIONS: dict[str, Any] = {
    "sort_keys": False,
    "default_flow_style": False,
    "allow_unicode": True,
    "width": 2**31 - 1,
    "indent": 2,
}


def dump_yaml(obj: Any) -> str:
    """One YAML document, keys in template order, deterministic."""
    text: str = yaml.dump(obj, Dumper=_Dumper, **_DUMP_OPTIONS)
    return text


def to_yaml_stream(objects: list[dict[str, Any]]) -> str:
    """Multi-document YAML, each document introduced by `---`: exactly `---` + dump_yaml
    of each object.

    PyYAML's representer and resolver are Python even over libyaml's emitter: one dump per
    object was 80% of a 1,000-namespace render. Objects that differ only in
    metadata.namespace (every namespace after the first) are dumped once, with a
    placeholder, and the namespace's own one-line scalar is put in its place.
    """
    layouts: dict[str, tuple[str, str] | None] = {}
    scalars: dict[str, str | None] = {}
    documents = []
    for obj in objects:
        shape = _shape_without_namespace(obj)
        namespace = obj["metadata"]["namespace"] if shape is not None else None
        if namespace is not None and namespace not in scalars:
            scalars[namespace] = _one_line_scalar(namespace)
        scalar = scalars.get(namespace) if namespace is not None else None
        if shape is None or scalar is None:
            documents.append(dump_yaml(obj))
            continue
        if shape not in layouts:
            layouts[shape] = _layout_around_namespace(obj)
        layout = layouts[shape]
        documents.append(dump_yaml(obj) if layout is None else scalar.join(layout))
    return "".join(f"---\n{document}" for document in documents)


_NAMESPACE_PLACEHOLDER = "jwksdeploy-namespace-placeholder-2f9c81d4"


def _shape_without_namespace(obj: Any) -> str | None:
    """A key equal for two objects exactly when they differ at most in metadata.namespace
    (key order and types included: the repr of builtin containers and scalars shows both),
    or None when obj is not a mapping with a string metadata.namespace."""
    metadata = obj.get("metadata") if type(obj) is dict else None
    if type(metadata) is not dict or type(metadata.get("namespace")) is not str:
        return None
    return repr({**obj, "metadata": {**metadata, "namespace": None}})


def _one_line_scalar(value: str) -> str | None:
    """How the emitter writes value as a mapping value, when that is one line: then the
    text does not depend on where in the document it stands."""
    text = dump_yaml({"k": value})
    if not text.startswith("k: ") or text.count("\n") != 1:
        return None
    return text[len("k: ") : -1]


def _layout_around_namespace(obj: dict[str, Any]) -> tuple[str, str] | None:
    """The object's document split around its namespace's scalar, or None if the
    placeholder cannot be found once and only once."""
    text = dump_yaml({**obj, "metadata": {**obj["metadata"], "namespace": _NAMESPACE_PLACEHOLDER}})
    before, found, after = text.partition(f"namespace: {_NAMESPACE_PLACEHOLDER}\n")
    if not found or _NAMESPACE_PLACEHOLDER in after or _NAMESPACE_PLACEHOLDER in before:
        return None
    return before + "namespace: ", "\n" + after


def to_json_list(objects: list[dict[str, Any]]) -> str:
    """A `v1` List, as `kubectl get -o json` prints several objects."""
    document = {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": objects}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def file_name(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"


def output_files(objects: list[dict[str, Any]]) -> dict[str, str]:
    """Relative path -> content for --output-dir: one file per object and a kustomization.yaml
    per namespace listing them in apply order."""
    files: dict[str, str] = {}
    by_namespace: dict[str, list[str]] = {}
    for obj in objects:
        namespace = obj["metadata"]["namespace"]
        name = file_name(obj)
        files[f"{namespace}/{name}"] = dump_yaml(obj)
        by_namespace.setdefault(namespace, []).append(name)
    for namespace, names in by_namespace.items():
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": names,
        }
        files[f"{namespace}/kustomization.yaml"] = dump_yaml(kustomization)
    return dict(sorted(files.items()))


if __name__ == "__main__":
    compile_templates(compiled_dir())
