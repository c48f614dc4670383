from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from reference_server.certificate import (
    FINGERPRINT_ALGORITHMS,
    Certificate,
    CertificateError,
    fingerprint_of_der,
)

NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)


def pem_pair(certificate: Certificate) -> tuple[bytes, bytes]:
    cert_pem = certificate.x509.public_bytes(serialization.Encoding.PEM)
    key_pem = certificate.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def test_generate_makes_a_self_signed_p256_certificate() -> None:
    certificate = Certificate.generate(common_name="gate-1", not_before=NOT_BEFORE, days=7)
    cert = certificate.x509
    assert isinstance(certificate.private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(certificate.private_key.curve, ec.SECP256R1)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "gate-1"
    assert cert.not_valid_before_utc == NOT_BEFORE
    assert cert.not_valid_after_utc == NOT_BEFORE + timedelta(days=7)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    cert.verify_directly_issued_by(cert)  # raises if the self-signature is wrong


def test_generate_defaults_to_a_validity_that_started_a_day_ago() -> None:
    cert = Certificate.generate().x509
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=30)
    assert cert.not_valid_before_utc < datetime.now(UTC) - timedelta(hours=23)


def test_generate_uses_fresh_keys_and_random_serials() -> None:
    first = Certificate.generate(not_before=NOT_BEFORE)
    second = Certificate.generate(not_before=NOT_BEFORE)
    assert first.x509.serial_number != second.x509.serial_number
    assert first.fingerprint() != second.fingerprint()


def test_generate_rejects_a_non_positive_validity() -> None:
    with pytest.raises(CertificateError, match="^validity of 0 days is not positive$"):
        Certificate.generate(days=0)


def test_fingerprint_of_der_matches_fips_180_abc_vectors() -> None:
    assert fingerprint_of_der(b"abc") == (
        "BA:78:16:BF:8F:01:CF:EA:41:41:40:DE:5D:AE:22:23:"
        "B0:03:61:A3:96:17:7A:9C:B4:10:FF:61:F2:00:15:AD"
    )
    assert fingerprint_of_der(b"abc", "sha-1") == (
        "A9:99:3E:36:47:06:81:6A:BA:3E:25:71:78:50:C2:6C:9C:D0:D8:9D"
    )


@pytest.mark.parametrize("algorithm", sorted(FINGERPRINT_ALGORITHMS))
def test_fingerprint_hashes_the_der_certificate(algorithm: str) -> None:
    certificate = Certificate.generate(not_before=NOT_BEFORE)
    der = certificate.x509.public_bytes(serialization.Encoding.DER)
    expected = hashlib.new(algorithm.replace("-", ""), der).hexdigest().upper()
    fingerprint = certificate.fingerprint(algorithm)
    assert re.fullmatch(r"[0-9A-F]{2}(:[0-9A-F]{2})+", fingerprint)
    assert fingerprint.replace(":", "") == expected


def test_fingerprint_algorithm_names_are_case_insensitive() -> None:
    certificate = Certificate.generate(not_before=NOT_BEFORE)
    assert certificate.fingerprint("SHA-256") == certificate.fingerprint("sha-256")


def test_unknown_fingerprint_algorithm_is_rejected() -> None:
    with pytest.raises(CertificateError) as caught:
        fingerprint_of_der(b"abc", "md5")
    assert str(caught.value) == (
        "unknown fingerprint algorithm 'md5' "
        "(expected one of sha-1, sha-224, sha-256, sha-384, sha-512)"
    )


def test_load_round_trips_a_generated_certificate() -> None:
    original = Certificate.generate(not_before=NOT_BEFORE)
    loaded = Certificate.load(*pem_pair(original))
    assert loaded.x509 == original.x509
    assert loaded.fingerprint() == original.fingerprint()


def test_load_rejects_unparsable_certificate_pem() -> None:
    _, key_pem = pem_pair(Certificate.generate(not_before=NOT_BEFORE))
    with pytest.raises(CertificateError, match="^certificate PEM could not be parsed$"):
        Certificate.load(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", key_pem)


def test_load_rejects_unparsable_key_pem() -> None:
    cert_pem, _ = pem_pair(Certificate.generate(not_before=NOT_BEFORE))
    with pytest.raises(CertificateError, match="^private key PEM could not be parsed$"):
        Certificate.load(cert_pem, b"not a key")


def test_load_rejects_a_key_that_does_not_match() -> None:
    cert_pem, _ = pem_pair(Certificate.generate(not_before=NOT_BEFORE))
    _, other_key_pem = pem_pair(Certificate.generate(not_before=NOT_BEFORE))
    with pytest.raises(
        CertificateError, match="^private key does not match the certificate's public key$"
    ):
        Certificate.load(cert_pem, other_key_pem)


def test_load_rejects_an_encrypted_key() -> None:
    certificate = Certificate.generate(not_before=NOT_BEFORE)
    cert_pem, _ = pem_pair(certificate)
    encrypted = certificate.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(
        CertificateError, match="^private key PEM is encrypted; an unencrypted key is required$"
    ):
        Certificate.load(cert_pem, encrypted)


def test_load_rejects_a_non_ec_key() -> None:
    cert_pem, _ = pem_pair(Certificate.generate(not_before=NOT_BEFORE))
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(CertificateError, match="^private key is RSA, expected an EC private key$"):
        Certificate.load(cert_pem, rsa_pem)
