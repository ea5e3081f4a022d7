"""jwksdeploy: render, deploy and check a JWKS server for Envoy-based API gateways."""

__version__ = "0.1.0"
