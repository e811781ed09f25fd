"""Make the Docker secrets docker-compose.yml reads, in ./secrets (never committed).

    .venv/bin/python tools/compose_secrets.py          # once, before `docker compose up`

Writes a throwaway CA and the worker's TLS certificate (for the names ``worker``,
``localhost`` and ``127.0.0.1``), the worker's web configuration (exporter-toolkit format:
TLS and a bcrypt-hashed user each for Prometheus and for the report), the passwords those
clients send, and Grafana's admin password. Existing files are kept: run it again after
deleting one to renew it. For a demonstration stack; a council issues real certificates
from its own CA (docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sys
from ipaddress import IPv4Address
from pathlib import Path

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[1]
PEM = serialization.Encoding.PEM
USERS = ("prometheus", "report")  # web users; each gets a password file
DAYS = 365


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
          signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("worker"), x509.DNSName("localhost"),
             x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.write_bytes(data)
    path.chmod(mode)
    print(f"wrote {path}")


def make(out: Path) -> None:
    """The secrets in ``out``, each file only if it is not there yet."""
    out.mkdir(mode=0o700, exist_ok=True)
    if not (out / "worker.key").exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        key = ec.generate_private_key(ec.SECP256R1())
        # Readable by the containers' users (Docker secrets from files keep the mode).
        _write(out / "ca.pem", _cert("cspa-compose-ca", ca_key, "cspa-compose-ca", ca_key,
                                     True).public_bytes(PEM), 0o644)
        _write(out / "worker.pem", _cert("worker", key, "cspa-compose-ca", ca_key,
                                         False).public_bytes(PEM), 0o644)
        _write(out / "worker.key", key.private_bytes(
            PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o644)
    users = {}
    for user in USERS:
        path = out / f"{user}-password"
        if not path.exists():
            _write(path, secrets.token_urlsafe(24).encode(), 0o644)
        users[user] = bcrypt.hashpw(path.read_bytes().strip(), bcrypt.gensalt(12)).decode()
    # Paths as the worker sees them: each secret is mounted as /run/secrets/NAME, NAME
    # its key in docker-compose.yml's top-level secrets.
    _write(out / "web-config.yml", json.dumps({
        "tls_server_config": {"cert_file": "/run/secrets/worker_cert",
                              "key_file": "/run/secrets/worker_key"},
        "basic_auth_users": users}, indent=1).encode(), 0o644)
    if not (out / "grafana-admin-password").exists():
        _write(out / "grafana-admin-password", secrets.token_urlsafe(18).encode(), 0o644)


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "secrets")
