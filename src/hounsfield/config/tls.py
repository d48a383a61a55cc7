"""TLS contexts from the settings: HTTPS, the DICOM TLS listener and the DICOM TLS client.

PS3.15 Annex B.1 (The Basic TLS Secure Transport Connection Profile) and B.9 (BCP 195 Non-
Downgrading, which DICOM now recommends) ask for TLS 1.2 or later with the BCP 195 cipher
suites; Python's defaults (`ssl.create_default_context`) already exclude the weak suites, and
the minimum version is set to TLS 1.2 explicitly so that an old OpenSSL policy cannot lower it.
Mutual authentication (a client certificate signed by `tls_ca_file`) is optional for the DICOM
listener, as the profile allows.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from hounsfield.config.settings import ConfigError, Settings


def _check(path: str, what: str) -> str:
    if not path:
        raise ConfigError(f"{what} is needed for TLS but not set")
    if not Path(path).is_file():
        raise ConfigError(f"{what} {path!r} is not a readable file")
    return path


def server_context(settings: Settings, *, verify_client: bool = False) -> ssl.SSLContext:
    """A server context with this archive's certificate; with `verify_client`, peers must
    present a certificate that `tls_ca_file` verifies (mutual TLS)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(
            _check(settings.tls_cert_file, "tls_cert_file"),
            _check(settings.tls_key_file, "tls_key_file"),
        )
    except ssl.SSLError as exc:
        raise ConfigError(f"tls_cert_file / tls_key_file cannot be used: {exc}") from exc
    if verify_client:
        context.load_verify_locations(_check(settings.tls_ca_file, "tls_ca_file"))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(settings: Settings) -> ssl.SSLContext:
    """The context of our associations to remote AEs registered with `"tls": true`: their
    certificate is verified against `tls_ca_file` (system CAs when empty) and their host
    name checked; ours is presented when configured (peers that require mutual TLS)."""
    context = ssl.create_default_context(
        ssl.Purpose.SERVER_AUTH, cafile=settings.tls_ca_file or None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.tls_cert_file:
        context.load_cert_chain(
            _check(settings.tls_cert_file, "tls_cert_file"),
            _check(settings.tls_key_file, "tls_key_file"),
        )
    return context
