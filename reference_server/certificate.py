"""The server's DTLS identity: a self-signed ECDSA P-256 certificate and its SDP fingerprint.

WebRTC peers authenticate each other by certificate fingerprint (RFC 8122, RFC 8827), not by
a CA chain, so a freshly generated self-signed certificate is all a server needs. Wall-clock
time is read only in `Certificate.generate`, and only when the caller passes no `not_before`:
a certificate needs a validity period, and nothing else here depends on time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

# RFC 8122 §5 hash function names (the IANA "Hash Function Textual Names" registry) that
# a=fingerprint may carry, mapped to their hash constructors; md2/md5 are deliberately absent.
FINGERPRINT_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha-1": hashes.SHA1,
    "sha-224": hashes.SHA224,
    "sha-256": hashes.SHA256,
    "sha-384": hashes.SHA384,
    "sha-512": hashes.SHA512,
}


class CertificateError(Exception):
    """A certificate or key that cannot serve as the DTLS identity, or an unknown hash name."""


def fingerprint_of_der(der: bytes, algorithm: str = "sha-256") -> str:
    """Fingerprint of a DER certificate as SDP writes it: uppercase hex pairs joined by colons.

    The algorithm name is matched case-insensitively, as SDP tokens are.
    """
    hash_type = FINGERPRINT_ALGORITHMS.get(algorithm.lower())
    if hash_type is None:
        known = ", ".join(FINGERPRINT_ALGORITHMS)
        raise CertificateError(
            f"unknown fingerprint algorithm {algorithm!r} (expected one of {known})"
        )
    digest = hashes.Hash(hash_type())
    digest.update(der)
    return ":".join(f"{byte:02X}" for byte in digest.finalize())


@dataclass(frozen=True)
class Certificate:
    """A private key and the certificate that carries its public half."""

    private_key: ec.EllipticCurvePrivateKey
    x509: x509.Certificate

    @classmethod
    def generate(
        cls,
        *,
        common_name: str = "rtcgate",
        not_before: datetime | None = None,
        days: int = 30,
    ) -> Certificate:
        """A new self-signed ECDSA P-256 certificate with a random serial number.

        Pass `not_before` for a deterministic validity period; the default starts one day
        in the past so that peers whose clocks run slightly behind still accept it.
        """
        if days <= 0:
            raise CertificateError(f"validity of {days} days is not positive")
        if not_before is None:
            not_before = datetime.now(UTC) - timedelta(days=1)
        private_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(private_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + timedelta(days=days))
            .sign(private_key, hashes.SHA256())
        )
        return cls(private_key=private_key, x509=certificate)

    @classmethod
    def load(cls, cert_pem: bytes, key_pem: bytes) -> Certificate:
        """Load an operator-provided PEM certificate and unencrypted PEM EC private key."""
        try:
            certificate = x509.load_pem_x509_certificate(cert_pem)
        except ValueError:
            raise CertificateError("certificate PEM could not be parsed") from None
        try:
            private_key = serialization.load_pem_private_key(key_pem, password=None)
        except TypeError:
            raise CertificateError(
                "private key PEM is encrypted; an unencrypted key is required"
            ) from None
        except ValueError:
            raise CertificateError("private key PEM could not be parsed") from None
        if not isinstance(private_key, ec.EllipticCurvePrivateKey):
            raise CertificateError(
                f"private key is {type(private_key).__name__.removesuffix('PrivateKey')}, "
                "expected an EC private key"
            )
        if _public_key_der(private_key.public_key()) != _public_key_der(certificate.public_key()):
            raise CertificateError("private key does not match the certificate's public key")
        return cls(private_key=private_key, x509=certificate)

    def fingerprint(self, algorithm: str = "sha-256") -> str:
        """The value for this certificate's SDP a=fingerprint line."""
        return fingerprint_of_der(self.x509.public_bytes(serialization.Encoding.DER), algorithm)


def _public_key_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
