"""GET from a worker's web server with the credentials it asks for (issue 26.3).

Workers given ``CSPA_WEB_CONFIG_FILE`` answer only over TLS (``https://``) and with
basic auth. ``report``, ``due`` and the bench read what to send from the settings:
``CSPA_WEB_USERNAME``, ``CSPA_WEB_PASSWORD`` (or ``CSPA_WEB_PASSWORD_FILE``) and
``CSPA_WEB_CAFILE``, the CA that signed the workers' certificates.
"""

from __future__ import annotations

import base64
import ssl
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from stream.settings import Settings


@dataclass(frozen=True)
class WebClient:
    """Credentials and trust for the workers' endpoints (none: plain loopback HTTP)."""

    username: str = ""
    password: SecretStr = field(default=SecretStr(""), repr=False)
    cafile: Path | None = None

    @classmethod
    def of(cls, settings: Settings) -> WebClient:
        return cls(settings.web_username, settings.web_password, settings.web_cafile)

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header, if a user is set."""
        if not self.username:
            return {}
        pair = f"{self.username}:{self.password.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}

    def context(self) -> ssl.SSLContext:
        """TLS context trusting ``cafile`` (the system's CAs without one)."""
        return ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)

    def get(self, url: str, timeout: float, accept: str = "*/*",
            limit: int = -1) -> bytes:
        """The body at ``url`` (at most ``limit`` bytes read, -1: all). Raises OSError
        (``urllib.error.HTTPError`` for a status >= 400, 401 for wrong credentials)."""
        request = urllib.request.Request(url, headers={"Accept": accept, **self.headers()})
        context = self.context() if url.startswith("https:") else None
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            body: bytes = response.read(limit)
        return body
