"""Throwaway TLS material for the broker and web-server tests, made at run time with
``cryptography`` (no key is checked in): a CA, broker and web-server certificates for
127.0.0.1 signed by it, and the PEM files Kafka (``ssl.keystore.type=PEM``) and Python's
``ssl`` read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class TlsFiles:
    """``cafile``: the CA certificate clients trust; ``keystore``: the broker's key and
    certificate chain in one PEM file."""

    cafile: Path
    keystore: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str,
          signer: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_ca(directory: Path, name: str = "cspa-test-ca") -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """A self-signed CA: its certificate's path (``directory/NAME.pem``) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(name, key, name, key, ca=True)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(PEM))
    return path, key


def make_broker_tls(directory: Path) -> TlsFiles:
    """A CA and a broker certificate for 127.0.0.1/localhost signed by it."""
    cafile, ca_key = make_ca(directory)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert("127.0.0.1", key, "cspa-test-ca", ca_key, ca=False)
    keystore = directory / "broker-keystore.pem"
    keystore.write_bytes(
        key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(PEM) + cafile.read_bytes())
    keystore.chmod(0o600)
    return TlsFiles(cafile, keystore)


def make_server_cert(directory: Path, ca_key: ec.EllipticCurvePrivateKey, name: str = "server",
                     ca_name: str = "cspa-test-ca") -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1/localhost signed by the CA ``make_ca`` made:
    ``(certificate chain, private key)``, the two files a web server (or
    ``tls_server_config``) reads."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert("127.0.0.1", key, ca_name, ca_key, ca=False)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(PEM))
    key_path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path
