"""The examples each command's --help ends with (kubectl's and Helm's habit); render's sit in
cli/render.py, so `--help` imports nothing more. A test parses every line, so an example can
never name a flag that does not exist."""

from __future__ import annotations

from .common import examples

EPILOGS = {
    "apply": examples(
        "jwksdeploy apply -n envoy-yang --jwks jwks.json",
        "# what would change, without changing it",
        "jwksdeploy apply -n envoy-yang --dry-run=server",
        "# the server and an Istio RequestAuthentication pointed at it, at once",
        "jwksdeploy apply -n envoy-yang --provider istio --issuer https://issuer.example "
        "--audience api",
    ),
    "gateway": examples(
        "# after apply: the URL is read back from the cluster",
        "jwksdeploy gateway --provider istio -n envoy-yang --issuer https://issuer.example",
        "# offline: the in-cluster URL of what render deployed",
        "jwksdeploy gateway --provider envoy-gateway --url-from service -n envoy-yang "
        "--target-route api",
        "# any JWKS URL",
        "jwksdeploy gateway --provider envoy --url http://10.0.0.12:31456/jwks",
    ),
    "token": examples(
        "TOKEN=$(jwksdeploy token --issuer https://issuer.example --audience api)",
        "jwksdeploy token --private jwks.private.json --ttl 5m --claim scope=read",
        'jwksdeploy token inspect "$TOKEN" --jwks jwks.json',
    ),
    "verify": examples(
        "# offline, against the public set",
        'jwksdeploy verify --jwks jwks.json --token "$TOKEN" --issuer https://issuer.example',
        "# a live JWKS server, and that it serves exactly jwks.json",
        "jwksdeploy verify --url http://127.0.0.1:8099/jwks --jwks jwks.json",
        "# the deployed server, found through the cluster",
        'jwksdeploy verify -n envoy-yang --token "$TOKEN"',
        "# does the gateway refuse bad tokens?",
        "jwksdeploy verify --through https://api.example.com/orders --audience api",
    ),
    "jwks generate": examples(
        "# an ES256 pair: jwks.private.json (0600) and jwks.json",
        "jwksdeploy jwks generate",
        "jwksdeploy jwks generate --kty RSA --size 3072 --private keys/rsa.private.json "
        "--jwks keys/rsa.json",
        "# the source document's HMAC recipe (a shared secret: prefer the default)",
        "jwksdeploy jwks generate --kty oct --size 256 --alg HS256",
    ),
    "serve": examples(
        "# a free port, printed on stderr",
        "jwksdeploy serve --port 0",
        "jwksdeploy serve --jwks jwks.json --listen 0.0.0.0 --port 8099",
    ),
    "rotate": examples(
        "jwksdeploy rotate status -n envoy-yang",
        "jwksdeploy rotate start -n envoy-yang",
        "jwksdeploy rotate promote -n envoy-yang",
        "jwksdeploy rotate finish -n envoy-yang",
    ),
}
