"""Settings that fail loudly.

Every option is declared once, in `defaults.toml`, which also documents it. A TOML file and
`HOUNSFIELD_*` environment variables override the defaults; an unknown key or a value that does
not have the default's type stops start-up with a message naming the key, so a typo never
silently leaves an archive running with a setting the operator did not mean.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

ENV_PREFIX = "HOUNSFIELD_"
_NOT_SETTINGS = {"HOUNSFIELD_CONFIG", "HOUNSFIELD_REQUIRE_SERVICES"}
_DUPLICATE_POLICIES = ("keep-first", "reject")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# s3/gs/az need the optional obstore package; bootstrap says which extra when it is missing.
_INDEX_SCHEMES = ("sqlite://", "postgresql://", "postgres://")
_BLOB_SCHEMES = ("file://", "memory://", "s3://", "gs://", "az://")
# redis/amqp/nats need optional clients; bootstrap names the extra when one is missing.
_BUS_SCHEMES = ("inprocess://", "redis://", "rediss://", "amqp://", "amqps://", "nats://", "tls://")
_CACHE_SCHEMES = ("memory://", "redis://", "rediss://", "none://")
#: Public-key JWS algorithms (RFC 7518 3.1, RFC 8037); none and HMAC are never accepted.
_JWT_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


class ConfigError(ValueError):
    """A setting is unknown or invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str
    http_port: int
    dimse_port: int
    ae_title: str
    dimse_enabled: bool
    dimse_max_pdu: int
    dimse_max_associations: int
    dimse_acse_timeout: int
    dimse_idle_timeout: int
    dimse_timeout: int
    dimse_require_called_ae: bool
    dimse_allowed_calling_aes: tuple[str, ...]
    tls_cert_file: str
    tls_key_file: str
    tls_ca_file: str
    http_tls: bool
    dimse_tls_port: int
    dimse_tls_verify_client: bool
    data_dir: Path
    index_url: str
    index_migrate: bool
    blob_url: str
    bus_url: str
    cache_url: str
    webhook_urls: tuple[str, ...]
    webhook_secret: str
    webhook_max_attempts: int
    jobs_concurrency: int
    jobs_lease_seconds: int
    jobs_retry_base_seconds: int
    jobs_retry_max_seconds: int
    jobs_retention_seconds: int
    series_stable_seconds: int
    study_stable_seconds: int
    htj2k_copies: bool
    htj2k_copy_partitions: tuple[str, ...]
    htj2k_copy_modalities: tuple[str, ...]
    retention_days: tuple[str, ...]
    default_partition: str
    duplicate_policy: str
    bulk_data_threshold: int
    pending_grace_seconds: int
    durable: bool
    qido_max_limit: int
    max_request_bytes: int
    cors_origins: tuple[str, ...]
    rate_limit_per_minute: int
    allow_unauthenticated: bool
    auth_api_keys: bool
    auth_oidc_issuer: str
    auth_oidc_audience: str
    auth_oidc_jwks_url: str
    auth_oidc_algorithms: tuple[str, ...]
    auth_clock_skew_seconds: int
    auth_jwks_min_refresh_seconds: int
    auth_roles_claim: str
    auth_partitions_claim: str
    http_workers: int
    dimse_workers: int
    log_level: str
    audit_enabled: bool
    audit_queue_size: int
    audit_transfer_window: int
    audit_syslog_url: str
    audit_syslog_ca_file: str
    audit_syslog_cert_file: str
    audit_syslog_key_file: str
    deidentify_salt: str

    @property
    def authentication_enabled(self) -> bool:
        """Whether HTTP requests must carry credentials (OIDC tokens or API keys)."""
        return bool(self.auth_oidc_issuer) or self.auth_api_keys

    @property
    def staging_dir(self) -> Path:
        """Local directory where uploads are written before they enter the blob store."""
        return self.data_dir / "staging"


def _defaults() -> dict[str, Any]:
    text = resources.files("hounsfield.config").joinpath("defaults.toml").read_text()
    return tomllib.loads(text)


def _coerce(key: str, raw: Any, default: Any, origin: str) -> Any:
    """Convert a value to the default's type; environment values arrive as strings."""
    where = f"{origin} setting {key!r}"
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in (
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        ):
            return raw.lower() in ("1", "true", "yes", "on")
        raise ConfigError(f"{where}: expected a boolean (true/false), got {raw!r}")
    if isinstance(default, int):
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            try:
                return int(raw.strip())
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected an integer, got {raw!r}")
    if isinstance(default, list):
        if isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            return tuple(raw)
        if isinstance(raw, str):
            return tuple(v.strip() for v in raw.split(",") if v.strip())
        raise ConfigError(f"{where}: expected a list of strings, got {raw!r}")
    if isinstance(raw, str):
        return raw
    raise ConfigError(f"{where}: expected a string, got {raw!r}")


def _validate(values: dict[str, Any]) -> None:
    def port(key: str) -> None:
        if not 0 <= values[key] <= 65535:
            raise ConfigError(f"setting {key!r}: {values[key]} is not a TCP port (0-65535)")

    port("http_port")
    port("dimse_port")
    port("dimse_tls_port")
    if values["http_tls"] or values["dimse_tls_port"]:
        for key in ("tls_cert_file", "tls_key_file"):
            if not values[key]:
                raise ConfigError(
                    f"setting {key!r} is required when http_tls or dimse_tls_port is set"
                )
    for entry in values["retention_days"]:
        partition, sep, days = entry.partition("=")
        if not sep or not partition.strip() or not days.strip().isdigit() or int(days) < 1:
            raise ConfigError(
                f"setting 'retention_days': {entry!r} is not <partition>=<days> (days >= 1)"
            )
    if values["dimse_tls_verify_client"] and not values["tls_ca_file"]:
        raise ConfigError("setting 'dimse_tls_verify_client' needs 'tls_ca_file' (the client CA)")
    aet = values["ae_title"]
    if not 1 <= len(aet) <= 16 or "\\" in aet or not aet.isprintable() or not aet.strip():
        raise ConfigError(
            f"setting 'ae_title': {aet!r} is not a valid AE title (1-16 characters, PS3.5 6.2)"
        )
    if values["duplicate_policy"] not in _DUPLICATE_POLICIES:
        raise ConfigError(
            f"setting 'duplicate_policy': {values['duplicate_policy']!r} is not one of "
            f"{', '.join(_DUPLICATE_POLICIES)}"
        )
    if values["log_level"].upper() not in _LOG_LEVELS:
        raise ConfigError(
            f"setting 'log_level': {values['log_level']!r} is not one of {_LOG_LEVELS}"
        )
    values["log_level"] = values["log_level"].upper()
    for url in values["webhook_urls"]:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"setting 'webhook_urls': {url!r} is not an http(s) URL")
    for key in (
        "bulk_data_threshold",
        "qido_max_limit",
        "http_workers",
        "dimse_workers",
        "webhook_max_attempts",
        "jobs_lease_seconds",
        "jobs_retry_base_seconds",
        "jobs_retry_max_seconds",
        "audit_queue_size",
    ):
        if values[key] < 1:
            raise ConfigError(f"setting {key!r}: must be at least 1, got {values[key]}")
    if values["dimse_max_pdu"] and not 4096 <= values["dimse_max_pdu"] <= (1 << 26):
        raise ConfigError(
            f"setting 'dimse_max_pdu': {values['dimse_max_pdu']} is outside 4096-67108864 "
            "(or 0 for unlimited)"
        )
    for aet in values["dimse_allowed_calling_aes"]:
        if not 1 <= len(aet) <= 16 or "\\" in aet:
            raise ConfigError(
                f"setting 'dimse_allowed_calling_aes': {aet!r} is not a valid AE title"
            )
    if values["dimse_workers"] > 1 and values["dimse_enabled"] and values["dimse_port"] == 0:
        # Each worker binds the port itself (SO_REUSEPORT): port 0 would give each its own.
        raise ConfigError("setting 'dimse_port': must not be 0 when dimse_workers > 1")
    if values["dimse_max_associations"] < 1:
        raise ConfigError(
            "setting 'dimse_max_associations': must be at least 1, "
            f"got {values['dimse_max_associations']}"
        )
    for key in (
        "pending_grace_seconds",
        "max_request_bytes",
        "dimse_acse_timeout",
        "dimse_idle_timeout",
        "dimse_timeout",
        "jobs_concurrency",
        "jobs_retention_seconds",
        "rate_limit_per_minute",
        "series_stable_seconds",
        "study_stable_seconds",
        "audit_transfer_window",
    ):
        if values[key] < 0:
            raise ConfigError(f"setting {key!r}: must not be negative, got {values[key]}")
    syslog = values["audit_syslog_url"]
    if syslog and not syslog.startswith(("tcp://", "tls://")):
        raise ConfigError(
            f"setting 'audit_syslog_url': {syslog!r} must be tcp://host:port or tls://host:port"
        )
    for key, schemes in (
        ("index_url", _INDEX_SCHEMES),
        ("blob_url", _BLOB_SCHEMES),
        ("bus_url", _BUS_SCHEMES),
        ("cache_url", _CACHE_SCHEMES),
    ):
        if not values[key].startswith(schemes):
            raise ConfigError(
                f"setting {key!r}: {values[key]!r} has an unsupported scheme "
                f"(supported: {', '.join(schemes)})"
            )


def _validate_auth(values: dict[str, Any]) -> None:
    issuer = values["auth_oidc_issuer"]
    if issuer:
        if not issuer.startswith(("https://", "http://")):
            raise ConfigError(f"setting 'auth_oidc_issuer': {issuer!r} is not an http(s) URL")
        if not values["auth_oidc_audience"]:
            raise ConfigError(
                "setting 'auth_oidc_audience' is required with auth_oidc_issuer: the `aud` "
                "tokens for this archive carry"
            )
    jwks = values["auth_oidc_jwks_url"]
    if jwks and not jwks.startswith(("https://", "http://")):
        raise ConfigError(f"setting 'auth_oidc_jwks_url': {jwks!r} is not an http(s) URL")
    algorithms = values["auth_oidc_algorithms"]
    refused = [a for a in algorithms if a not in _JWT_ALGORITHMS]
    if refused or not algorithms:
        raise ConfigError(
            f"setting 'auth_oidc_algorithms': {', '.join(refused) or 'an empty list'} not "
            f"allowed (choose from {', '.join(_JWT_ALGORITHMS)})"
        )
    for key in ("auth_clock_skew_seconds", "auth_jwks_min_refresh_seconds"):
        if values[key] < 0:
            raise ConfigError(f"setting {key!r}: must not be negative, got {values[key]}")
    for key in ("auth_roles_claim", "auth_partitions_claim"):
        if not values[key].strip():
            raise ConfigError(f"setting {key!r}: must name a token claim")


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then the TOML file, then HOUNSFIELD_* variables; validated as a whole."""
    env = os.environ if environ is None else environ
    defaults = _defaults()
    values: dict[str, Any] = {k: _coerce(k, v, v, "default") for k, v in defaults.items()}
    if config_file is None and env.get("HOUNSFIELD_CONFIG"):
        config_file = Path(env["HOUNSFIELD_CONFIG"])
    if config_file is not None:
        try:
            from_file = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read configuration file {config_file}: {exc}") from exc
        for key, raw in from_file.items():
            if key not in defaults:
                raise ConfigError(f"unknown setting {key!r} in {config_file}")
            values[key] = _coerce(key, raw, defaults[key], str(config_file))
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in defaults:
            raise ConfigError(f"unknown setting {name} in the environment")
        values[key] = _coerce(key, raw, defaults[key], "environment")
    data_dir = Path(values["data_dir"]).expanduser().resolve()
    values["data_dir"] = data_dir
    if not values["index_url"]:
        values["index_url"] = f"sqlite:///{data_dir / 'index.db'}"
    if not values["blob_url"]:
        values["blob_url"] = f"file://{data_dir / 'blobs'}"
    _validate(values)
    _validate_auth(values)
    fields = {f.name for f in dataclasses.fields(Settings)}
    return Settings(**{k: v for k, v in values.items() if k in fields})
