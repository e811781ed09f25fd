"""TLS and basic authentication for the worker's web server (issue 26.3).

``CSPA_WEB_CONFIG_FILE`` names a web configuration in the Prometheus exporter-toolkit
format (the one ``node_exporter --web.config.file`` reads)::

    tls_server_config:
      cert_file: /run/secrets/worker.pem
      key_file: /run/secrets/worker.key
      client_ca_file: /run/secrets/ca.pem        # optional
      client_auth_type: RequireAndVerifyClientCert  # optional
    basic_auth_users:
      prometheus: $2b$12$...                      # bcrypt hash

It protects every route of Faust's web server (an aiohttp middleware, so routes Faust
registers itself are covered too); ``/live`` is served apart (``stream.worker.liveness``)
and stays open. Without a file the worker binds to loopback only; a non-loopback
``CSPA_WEB_HOST`` is refused unless ``CSPA_WEB_INSECURE=true``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml  # type: ignore[import-untyped]  # no stubs installed
from aiohttp import web

from stream.settings import Settings

log = logging.getLogger("cspa.worker")

#: exporter-toolkit's client_auth_type values -> what Python's ssl does for each
CLIENT_AUTH = {"NoClientCert": ssl.CERT_NONE, "RequestClientCert": ssl.CERT_OPTIONAL,
               "RequireAnyClientCert": ssl.CERT_REQUIRED,
               "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
               "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
TLS_KEYS = {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"}
#: successful (user, password) checks remembered: a scrape every 15 s costs no bcrypt
CACHE_LIMIT = 64
REALM = 'Basic realm="cspa", charset="UTF-8"'


class WebConfigError(ValueError):
    """The web configuration file is unreadable or not in the expected format."""


@dataclass(frozen=True)
class WebConfig:
    """What a web configuration file asks for."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    client_auth_type: str = "NoClientCert"
    users: Mapping[str, bytes] = field(default_factory=dict)  # user -> bcrypt hash


def load(path: Path) -> WebConfig:
    """Read and check ``path`` (errors name the file and the key, never a hash)."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise WebConfigError(f"CSPA_WEB_CONFIG_FILE {path}: cannot read: "
                             f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    if not isinstance(doc, dict) or set(doc) - {"tls_server_config", "basic_auth_users"}:
        raise WebConfigError(f"CSPA_WEB_CONFIG_FILE {path}: expected only tls_server_config "
                             "and basic_auth_users")
    tls = doc.get("tls_server_config") or {}
    users = doc.get("basic_auth_users") or {}
    if not isinstance(tls, dict) or set(tls) - TLS_KEYS:
        raise WebConfigError(f"CSPA_WEB_CONFIG_FILE {path}: tls_server_config takes "
                             f"{', '.join(sorted(TLS_KEYS))}")
    if bool(tls.get("cert_file")) != bool(tls.get("key_file")):
        raise WebConfigError(f"CSPA_WEB_CONFIG_FILE {path}: cert_file and key_file go together")
    auth = tls.get("client_auth_type", "NoClientCert")
    if auth not in CLIENT_AUTH:
        raise WebConfigError(f"CSPA_WEB_CONFIG_FILE {path}: client_auth_type must be one of "
                             f"{', '.join(CLIENT_AUTH)}")
    if not isinstance(users, dict) or not all(
            isinstance(h, str) and h.startswith(("$2a$", "$2b$", "$2y$")) for h in users.values()):
        raise WebConfigError(f"CSPA_WEB_CONFIG_FILE {path}: basic_auth_users maps each user "
                             "to a bcrypt hash ($2b$...)")

    if not users and not tls.get("cert_file"):
        raise WebConfigError(f"CSPA_WEB_CONFIG_FILE {path}: protects nothing (neither "
                             "tls_server_config nor basic_auth_users)")

    def rel(key: str) -> Path | None:  # relative to the file, as exporter-toolkit reads them
        return path.parent / tls[key] if tls.get(key) else None

    return WebConfig(rel("cert_file"), rel("key_file"), rel("client_ca_file"), auth,
                     {str(u): h.encode() for u, h in users.items()})


def server_context(config: WebConfig) -> ssl.SSLContext | None:
    """The TLS context of the web server (None: plain HTTP)."""
    if config.cert_file is None or config.key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.cert_file, config.key_file)
    if config.client_ca_file is not None:
        context.load_verify_locations(config.client_ca_file)
    context.verify_mode = CLIENT_AUTH[config.client_auth_type]
    return context


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes.

    A success is remembered as an HMAC of (user, password) under a key of this process,
    so later scrapes skip bcrypt (about 0.2 s at cost 12); the password itself is kept
    nowhere. Comparisons are constant-time; an unknown user costs a bcrypt check too.
    """

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self.users = dict(users)
        self._key = secrets.token_bytes(32)
        self._good: dict[bytes, None] = {}  # insertion-ordered: the oldest go first
        self._dummy = bcrypt.hashpw(b"no such user", bcrypt.gensalt(4))

    def allows(self, header: str | None) -> bool:
        """Whether the header carries a known user and the right password."""
        credentials = _decode(header)
        if credentials is None:
            return False
        user, password = credentials
        tag = hmac.digest(self._key, user.encode() + b"\0" + password.encode(), hashlib.sha256)
        if any(hmac.compare_digest(tag, good) for good in self._good):
            return True
        hashed = self.users.get(user)
        ok = bcrypt.checkpw(password.encode(), hashed or self._dummy) and hashed is not None
        if ok:
            if len(self._good) >= CACHE_LIMIT:
                del self._good[next(iter(self._good))]
            self._good[tag] = None
        return ok


def _decode(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        text = base64.b64decode(header[6:], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep else None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(auth: BasicAuth) -> Any:
    """An aiohttp middleware answering 401 to any request ``auth`` does not allow."""

    @web.middleware
    async def require_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not auth.allows(request.headers.get("Authorization")):
            return web.Response(status=401, text="401 Unauthorized\n",
                                headers={"WWW-Authenticate": REALM})
        return await handler(request)

    return require_auth


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(settings: Settings) -> str | None:
    """Why the worker must not start its web server as configured (None: it may)."""
    if settings.web_config_file is not None:
        try:
            config = load(settings.web_config_file)
            server_context(config)
        except (WebConfigError, OSError, ssl.SSLError) as exc:
            return f"refusing to start: {exc}"
        return None
    if is_loopback(settings.web_host) or settings.web_insecure:
        return None
    return (f"refusing to start: CSPA_WEB_HOST={settings.web_host} is not loopback and no "
            "CSPA_WEB_CONFIG_FILE protects the endpoints (/cells, /due...). Give a web "
            "configuration (TLS, basic auth), or set CSPA_WEB_INSECURE=true to serve them "
            "open to that network")


def protect(app: Any, settings: Settings) -> None:
    """Give Faust's web server (``app``: a Faust app) TLS and basic auth as configured.

    Raises WebConfigError when ``refusal`` would; warns when serving open beyond loopback.
    """
    why = refusal(settings)
    if why is not None:
        raise WebConfigError(why)
    if settings.web_config_file is None:
        if not is_loopback(settings.web_host):
            log.warning("web server open without authentication host=%s "
                        "(CSPA_WEB_INSECURE=true)", settings.web_host)
        return
    config = load(settings.web_config_file)
    app.conf.web_ssl_context = server_context(config)
    if config.cert_file is None:
        log.warning("web server without TLS: basic-auth passwords cross the network in clear")
    if config.users:
        app.web.web_app.middlewares.append(middleware(BasicAuth(config.users)))
    log.info("web server protected tls=%s basic_auth_users=%d",
             config.cert_file is not None, len(config.users))


def hash_password(password: str, rounds: int = 12) -> str:
    """A bcrypt hash for ``basic_auth_users`` (``python -c`` helper for operators)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()
