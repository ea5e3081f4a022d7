"""`jwksdeploy gateway`, and the gateway flags `apply --provider` shares with it.

Parses, calls `gateway.build`, prints; warnings go to stderr, the configuration to stdout.
"""

from __future__ import annotations

from typing import Any

import click

from .common import (
    F,
    dry_run_option,
    echo,
    resolve_url,
    stack_options,
    url_lookup_options,
    vocab_option,
)
from .examples import EPILOGS

# What `gateway.build` knows; kept here so --help need not import the gateway module
# (tests/test_gateway.py checks the two agree).
PROVIDERS = ("contour", "envoy", "istio", "envoy-gateway")
DEFAULT_TRUSTED_CA = "/etc/ssl/certs/ca-certificates.crt"  # gateway.DEFAULT_TRUSTED_CA
# What `apply --provider` checks its gateway flags against before it applies anything: the
# real URL exists only once the Service does. Never fetched; http like every URL apply prints.
PLACEHOLDER_URL = "http://127.0.0.1:30000/jwks"


def record_option(command: F) -> F:
    """`--record/--no-record`: keep the emitted cache window on the instance for `rotate`."""
    return click.option(
        "--record/--no-record",
        default=True,
        show_default=True,
        help="With a cluster (-n lookup, or apply): record how long this configuration lets "
        "the gateway cache the key set, as an annotation on the instance's ConfigMap (its "
        "metadata only: the served keys and the pods stay as they are); `jwksdeploy rotate` "
        "waits that long before a new key signs.",
    )(command)


def print_record(record: Any) -> None:
    """What `record_cache_window` did, on stderr."""
    text = f"{record.window} ({record.why})"
    if record.error is not None:
        echo(
            f"warning: {record.namespace}: the gateway's cache window of {text} was not "
            f"recorded: {record.error.report()} Pass `--cache-window {record.window}` "
            "to `jwksdeploy rotate` (or more, if another gateway caches longer).",
            err=True,
        )
    elif not record.recorded:
        echo(
            f"note: {record.namespace}: the gateway's cache window of {text} was not recorded: "
            f"there is no ConfigMap {record.configmap!r} yet"
            f"{' (dry run)' if record.dry_run else ''}.",
            err=True,
        )
    else:
        would = "would record" if record.dry_run else "recorded"
        echo(
            f"{record.namespace}: {would} the gateway's cache window for `jwksdeploy rotate`: "
            f"{record.key} caches the key set for {text}, on configmap/{record.configmap}",
            err=True,
        )


def policy_options(command: F) -> F:
    """The source's JWT-policy fields and what each target needs to be complete."""
    options = [
        vocab_option(
            "issuer",
            aliases=("--iss",),
            metavar="ISS",
            help="Required iss claim (else not checked).",
        ),
        vocab_option(
            "audience",
            "audiences",
            aliases=("--aud",),
            multiple=True,
            metavar="AUD",
            help="Allowed aud, repeatable (else not checked).",
        ),
        click.option(
            "--forward/--no-forward",
            default=None,
            help="Pass the token on to the backend.  [default: the gateway's, no]",
        ),
        click.option(
            "--cache-duration",
            metavar="DURATION",
            help="How long the gateway caches the JWKS, e.g. 5m.  [default: the gateway's]",
        ),
        vocab_option(
            "fetch-timeout",
            "fetch_timeout",
            metavar="DURATION",
            help="JWKS fetch timeout, e.g. 1s.  [default: the gateway's; 1s for envoy]",
        ),
        click.option(
            "--fqdn", metavar="HOST", help="contour: the virtual host's domain (required)."
        ),
        click.option(
            "--tls-secret",
            metavar="SECRET",
            help="contour: the virtual host's TLS Secret; [NAMESPACE/]NAME.",
        ),
        click.option(
            "--target-route",
            multiple=True,
            metavar="ROUTE",
            help="envoy-gateway: an HTTPRoute to protect, repeatable (all go into targetRefs).",
        ),
        click.option(
            "--selector",
            multiple=True,
            metavar="K=V",
            help="istio: workload label to select, repeatable.",
        ),
        click.option(
            "--cluster",
            metavar="NAME",
            help="envoy: the JWKS cluster's name.  [default: <name>-jwks]",
        ),
        click.option(
            "--backend",
            metavar="SERVICE:PORT",
            help="contour: add a catch-all route to this Service port.",
        ),
        click.option(
            "--require-token",
            is_flag=True,
            help="istio: also emit an AuthorizationPolicy that denies requests without a "
            "valid token.",
        ),
        click.option(
            "--dns-lookup-family",
            type=click.Choice(["auto", "v4", "v6", "all"]),
            help="contour, envoy: how the gateway resolves the JWKS host.  [default: the "
            "gateway's]",
        ),
        click.option(
            "--token-header",
            metavar="NAME[:PREFIX]",
            help="envoy, istio, envoy-gateway: read the token from this header, after "
            "PREFIX (e.g. 'Authorization:Token ').  [default: Authorization: Bearer]",
        ),
        click.option(
            "--trusted-ca",
            metavar="PATH",
            help="envoy, https URL: CA bundle inside the Envoy container that must sign the "
            f"JWKS server's certificate.  [default: {DEFAULT_TRUSTED_CA}]",
        ),
        click.option(
            "--ca-secret",
            metavar="SECRET",
            help="contour, https URL: Secret (key ca.crt) with the CA that must sign the "
            "JWKS server's certificate; [NAMESPACE/]NAME.",
        ),
        click.option(
            "--subject-name",
            metavar="NAME",
            help="contour, envoy: the name the JWKS server's certificate must carry.  "
            "[default: the URL's host]",
        ),
        vocab_option(
            "insecure-skip-jwks-verify",
            "insecure_skip_jwks_verify",
            is_flag=True,
            help="contour, https URL without --ca-secret: accept that Contour does not verify "
            "the JWKS server's certificate (anyone on the path could swap the keys).",
        ),
        click.option(
            "--policy-namespace",
            metavar="NS",
            help="Namespace of the generated object.  [default: none; kubectl's current]",
        ),
    ]
    return stack_options(command, options)


def build_gateway(
    provider: str, name: str, url: str, params: dict[str, Any], name_flag: str = "--name"
) -> Any:
    """Flags -> validated options -> GatewayConfig (objects + warnings). `name_flag` is the
    flag `name` came from, for the message when it is refused."""
    from ..gateway import build, gateway_options
    from ..settings import parse_pairs

    options = gateway_options(
        provider,
        name,
        url,
        issuer=params["issuer"],
        audiences=tuple(params["audiences"]),
        forward=params["forward"],
        cache_duration=params["cache_duration"],
        timeout=params["fetch_timeout"],
        fqdn=params["fqdn"],
        tls_secret=params["tls_secret"],
        target_routes=tuple(params["target_route"]),
        selector=tuple(parse_pairs("--selector", params["selector"])),
        cluster=params["cluster"],
        namespace=params["policy_namespace"],
        dns_lookup_family=params["dns_lookup_family"],
        require_token=params["require_token"],
        backend=params["backend"],
        token_header=params["token_header"],
        trusted_ca=params["trusted_ca"],
        ca_secret=params["ca_secret"],
        subject_name=params["subject_name"],
        insecure_skip_jwks_verify=params["insecure_skip_jwks_verify"],
        timeout_flag="--fetch-timeout",
        name_flag=name_flag,
    )
    return build(options)


POLICY_PARAMS = (
    "issuer",
    "audiences",
    "forward",
    "cache_duration",
    "fetch_timeout",
    "fqdn",
    "tls_secret",
    "target_route",
    "selector",
    "cluster",
    "policy_namespace",
    "dns_lookup_family",
    "require_token",
    "backend",
    "token_header",
    "trusted_ca",
    "ca_secret",
    "subject_name",
    "insecure_skip_jwks_verify",
)


URL_FROM = ("service", "node-port")


@click.command("gateway", epilog=EPILOGS["gateway"])
@vocab_option(
    "provider", required=True, type=click.Choice(PROVIDERS), help="The gateway to configure."
)
@vocab_option(
    "provider-name",
    "provider_name",
    metavar="NAME",
    help="Provider (and object) name.  [default: the --name]",
)
@url_lookup_options(name_aliases=("--deployment",))
@vocab_option(
    "url-from",
    type=click.Choice(URL_FROM),
    help="With --namespace, build the URL without reading the cluster: service = the "
    "in-cluster http://NAME.NS.svc.cluster.local:PORT/jwks (gateway in the same cluster); "
    "node-port = http://ADDRESS:NODE-PORT/jwks (needs --address and --node-port).",
)
@vocab_option(
    "port",
    type=int,
    default=8080,
    show_default=True,
    metavar="PORT",
    help="With --url-from service: the Service port render used.",
)
@vocab_option(
    "node-port",
    type=int,
    metavar="PORT",
    help="With --url-from node-port: the fixed --node-port render used.",
)
@policy_options
@vocab_option("output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@vocab_option(
    "output-dir",
    metavar="DIR",
    help="Write one file per object under DIR/<provider>/ (render's output may share DIR).",
)
@vocab_option(
    "force",
    is_flag=True,
    help="With --output-dir: also overwrite files jwksdeploy did not write, or edited since.",
)
@record_option
@dry_run_option(
    "With -n lookup: client: record nothing; server (bare --dry-run): send the record with "
    "dryRun=All. The configuration is printed either way."
)
def gateway_command(
    provider: str,
    provider_name: str | None,
    url: str | None,
    namespace: str | None,
    instance: str,
    address: str | None,
    kubeconfig: str | None,
    context: str | None,
    url_from: str | None,
    port: int,
    node_port: int | None,
    output: str,
    output_dir: str | None,
    force: bool,
    record: bool,
    dry_run: str,
    **params: Any,
) -> None:
    """Print the gateway's JWT provider configuration, pointed at the deployed JWKS.

    Targets: a Contour HTTPProxy, Envoy's jwt_authn filter and its cluster, an Istio
    RequestAuthentication, or an Envoy Gateway SecurityPolicy.
    """
    if url_from is not None:
        url = url_from_flags(url_from, url, namespace, instance, address, port, node_port)
        namespace = None
    example = "jwksdeploy gateway --provider contour --url https://jwks.example.com/jwks"
    url = resolve_url(url, namespace, instance, address, kubeconfig, context, example)
    name = provider_name or instance
    name_flag = "--provider-name" if provider_name else "--name"
    config = build_gateway(provider, name, url, params, name_flag)
    for warning in config.warnings:
        echo(f"warning: {warning}", err=True)
    print_gateway(config, provider, output, output_dir, force)
    if namespace is not None and record and dry_run != "client":
        from ..gateway_record import record_cache_window
        from ..kube.client import connect
        from ..settings import Settings

        configmap = Settings(namespaces=(namespace,), name=instance).configmap_name
        print_record(
            record_cache_window(
                connect(kubeconfig, context),
                namespace,
                configmap,
                f"{provider}/{name}",
                config,
                dry_run == "server",
            )
        )
    elif record and dry_run == "none":
        _say_unrecorded(config)


def _say_unrecorded(config: Any) -> None:
    """Without a cluster nothing is recorded: one line saying what `rotate` should be told."""
    from ..rotation import DEFAULT_CACHE_WINDOW

    window = config.cache_window_text  # exact: a rounded-down window is unsafe for rotate
    if config.cache_window > DEFAULT_CACHE_WINDOW:
        echo(
            f"warning: this configuration caches the key set for {window} "
            f"({config.cache_window_why}), longer than the 20m `jwksdeploy rotate` assumes; "
            "nothing was recorded (no cluster: -n NS records it), so pass "
            f"`--cache-window {window}` to rotate.",
            err=True,
        )
    else:
        echo(
            f"note: the cache window ({window}, {config.cache_window_why}) was not recorded (no "
            f"cluster; -n NS records it): `jwksdeploy rotate` waits 20m unless you pass "
            f"--cache-window {window}.",
            err=True,
        )


def url_from_flags(
    url_from: str,
    url: str | None,
    namespace: str | None,
    instance: str,
    address: str | None,
    port: int,
    node_port: int | None,
) -> str:
    """The JWKS URL `render`'s objects will have, from flags alone (no cluster read)."""
    from ..checks import check_dns1123_label, check_object_name
    from ..errors import InputError

    if url is not None:
        raise InputError("--url-from builds the URL, so --url cannot be given with it. Drop one.")
    if namespace is None:
        raise InputError(
            f"--url-from {url_from} needs -n/--namespace: the namespace render deployed to, "
            f"e.g. `jwksdeploy gateway --provider istio -n envoy-yang --url-from {url_from}`."
        )
    namespace = check_dns1123_label("--namespace", namespace)
    name = check_object_name(instance)
    if url_from == "service":
        if not 1 <= port <= 65535:
            raise InputError(f"--port {port} is not a port (1-65535).")
        return f"http://{name}.{namespace}.svc.cluster.local:{port}/jwks"
    if node_port is None or address is None:
        raise InputError(
            "--url-from node-port needs --node-port (the fixed nodePort given to render) and "
            "--address (a node's address the gateway can reach), e.g. `--url-from node-port "
            "--node-port 31456 --address 10.0.0.12`."
        )
    if not 1 <= node_port <= 65535:
        raise InputError(f"--node-port {node_port} is not a port (1-65535).")
    from ..checks import check_address

    check_address(address)  # "x/y" would make http://x/y:PORT/jwks, another URL
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{node_port}/jwks"


def print_gateway(
    config: Any, provider: str, output: str, output_dir: str | None, force: bool = False
) -> None:
    from ..gateway import output_files, to_json, to_yaml

    if output_dir:
        from ..writes import write_tree

        files = output_files(config, provider)
        written = write_tree(output_dir, files, f"gateway {provider}", force)
        for note in written.notes(output_dir):
            echo(f"note: {note}", err=True)
        echo(f"wrote {len(files)} file(s) under {output_dir}", err=True)
    elif output == "json":
        echo(to_json(config, provider), nl=False, data="json")
    else:
        echo(to_yaml(config), nl=False, data="yaml")


def client_dry_run_gateways(
    objects: list[dict[str, Any]],
    provider: str,
    name: str,
    policy: dict[str, Any],
    address: str | None,
) -> list[tuple[str, str, Any]]:
    """`apply --dry-run=client --provider`: each namespace's (namespace, where the URL comes
    from, configuration), for the URL known without a cluster: the NodePort URL when the
    render fixes --node-port and --address is given, else the in-cluster Service name (as
    `gateway --url-from service`), which a NodePort or LoadBalancer Service also has."""
    services = [obj for obj in objects if obj["kind"] == "Service"]
    found = []
    for service in services:
        namespace = service["metadata"]["namespace"]
        port = service["spec"]["ports"][0]
        instance = service["metadata"]["name"]
        if service["spec"].get("type") != "ClusterIP" and "nodePort" in port and address:
            url = url_from_flags(
                "node-port", None, namespace, instance, address, port["port"], port["nodePort"]
            )
            how = "--address and the fixed --node-port"
        else:
            url = url_from_flags("service", None, namespace, instance, None, port["port"], None)
            how = (
                "the in-cluster Service name; a real apply prints the node's address and "
                "nodePort, or pass --address and --node-port"
                if service["spec"].get("type") != "ClusterIP"
                else "the in-cluster Service name"
            )
        suffix = f"-{namespace}" if len(services) > 1 else ""
        found.append((namespace, how, build_gateway(provider, f"{name}{suffix}", url, policy)))
    return found


def print_client_dry_run_gateways(
    gateways: list[tuple[str, str, Any]], provider: str, output: str
) -> None:
    """What a real apply prints of the gateway, after the objects of a client dry run: the
    URL and warnings on stderr, the configuration on stdout (-o json: in the List already)."""
    for namespace, how, config in gateways:
        echo(f"{namespace}: JWKS URL {config.url} ({how}; dry run: client)", err=True)
        for warning in config.warnings:
            echo(f"warning: {warning}", err=True)
        if output in ("text", "yaml"):
            print_gateway(config, provider, "yaml", None)
