# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This module_utils is PRIVATE and should only be used by this collection.
# Breaking changes can happen at any time.

"""Certificate logic for the pgha.patroni TLS modules, on top of ``cryptography``.

Works with cryptography 38 (Debian 12 targets) up to the current release, so it avoids
APIs that only exist in newer versions (``verify_directly_issued_by``, ``*_utc`` dates).
"""

from __future__ import annotations

import datetime
import grp
import ipaddress
import os
import pwd
import re
import tempfile
import traceback
import typing as t

from ansible.module_utils.basic import missing_required_lib

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_CRYPTOGRAPHY = True

# A certificate is backdated a little so members whose clocks lag behind the CA host accept it at once.
BACKDATE = datetime.timedelta(minutes=5)
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class TLSError(Exception):
    """A certificate or key problem that the user has to fix; the message says what and where."""


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def not_valid_after(cert) -> datetime.datetime:
    """Naive-UTC expiry, on old and new cryptography alike."""
    value = getattr(cert, "not_valid_after_utc", None)
    if value is not None:
        return value.replace(tzinfo=None)
    return cert.not_valid_after


def read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def to_bytes_pem(data) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else data


def load_certificate(data, where: str):
    try:
        return x509.load_pem_x509_certificate(to_bytes_pem(data))
    except ValueError as e:
        raise TLSError(f"{where} is not a PEM certificate: {e}") from None


def load_certificate_file(path: str):
    try:
        data = read_file(path)
    except OSError as e:
        raise TLSError(f"cannot read certificate {path}: {e.strerror}") from None
    return load_certificate(data, path)


def load_private_key(data, where: str, passphrase: str | None = None):
    """Load a PEM key; a wrong or missing passphrase gets its own message because that is what users hit."""
    pw = passphrase.encode("utf-8") if passphrase else None
    try:
        return serialization.load_pem_private_key(to_bytes_pem(data), password=pw)
    except TypeError:
        if pw is None:
            raise TLSError(f"private key {where} is encrypted but no passphrase was given") from None
        raise TLSError(f"private key {where} is not encrypted but a passphrase was given; "
                       "drop the passphrase or encrypt the key") from None
    except ValueError as e:
        if pw is not None:
            raise TLSError(f"private key {where} cannot be opened with the given passphrase "
                           f"(wrong passphrase or not a PEM key): {e}") from None
        raise TLSError(f"{where} is not a PEM private key: {e}") from None


def load_private_key_file(path: str, passphrase: str | None = None):
    try:
        data = read_file(path)
    except OSError as e:
        raise TLSError(f"cannot read private key {path}: {e.strerror}") from None
    return load_private_key(data, path, passphrase)


def public_key_der(obj) -> bytes:
    """DER SubjectPublicKeyInfo of a key, certificate or CSR: the one thing to compare for 'same key'."""
    pub = obj.public_key()
    return pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_matches_certificate(key, cert) -> bool:
    return public_key_der(key) == public_key_der(cert)


def check_pair(key, cert, key_where: str, cert_where: str, what: str = "certificate") -> None:
    if not key_matches_certificate(key, cert):
        raise TLSError(f"{what} {cert_where} does not match private key {key_where} "
                       "(their public keys differ)")


def generate_private_key(key_type: str = "ecdsa", rsa_key_size: int = 3072):
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        if rsa_key_size < 2048:
            raise TLSError(f"RSA key size {rsa_key_size} is too small; use 2048 or more")
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_key_size)
    raise TLSError(f"unknown key type {key_type!r}; use ecdsa or rsa")


def key_type_of(key) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ecdsa"
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa"
    return type(key).__name__


def private_key_pem(key, passphrase: str | None = None) -> bytes:
    if passphrase:
        enc = serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
    else:
        enc = serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def certificate_pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def csr_pem(csr) -> bytes:
    return csr.public_bytes(serialization.Encoding.PEM)


def fingerprint(cert) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":")


def split_host(address: str) -> str:
    """Host part of a Patroni address: 'h:8008', '[::1]:8008', '10.0.0.1', 'h'."""
    address = address.strip()
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise TLSError(f"address {address!r} has an opening '[' without a closing ']'")
        return address[1:end]
    if address.count(":") == 1:
        return address.rsplit(":", 1)[0]
    return address


def normalize_san(value: str) -> str:
    """Canonical text of one SAN: IPs in compressed form, DNS names lower-case; rejects junk early."""
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        pass
    name = text.lower().rstrip(".")
    labels = name.split(".")
    if name.startswith("*."):
        labels = labels[1:]
    if not name or len(name) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        raise TLSError(f"subject alternative name {value!r} is neither an IP address nor a valid DNS name")
    return name


def order_sans(connect_address: str, sans: list) -> list:
    """Connect address first (Patroni checks it), then the others once each; refuse if it was not listed."""
    connect_host = normalize_san(split_host(connect_address))
    normalized = []
    for s in sans:
        n = normalize_san(s)
        if n not in normalized:
            normalized.append(n)
    if connect_host not in normalized:
        raise TLSError(f"subject_alt_names {normalized} do not contain the connect address {connect_host} "
                       f"(from connect_address {connect_address!r}); clients verify that name, add it to the list")
    normalized.remove(connect_host)
    return [connect_host] + normalized


def san_general_names(sans: list) -> list:
    names = []
    for s in sans:
        n = normalize_san(s)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            names.append(x509.DNSName(n))
    return names


def certificate_sans(cert) -> list:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = []
    for name in ext:
        if isinstance(name, x509.IPAddress):
            out.append(str(name.value))
        elif isinstance(name, x509.DNSName):
            out.append(name.value.lower())
    return out


def common_name_of(name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return attrs[0].value if attrs else ""


def _name(common_name: str, organization: str | None = None):
    attrs = []
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _sign_hash(key):
    # Ed25519-style keys take no hash; everything we create is EC or RSA, which take SHA-256.
    return hashes.SHA256()


def is_ca_certificate(cert) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def create_ca(key, common_name: str, valid_days: int, organization: str | None = None):
    now = _utcnow()
    name = _name(common_name, organization)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, _sign_hash(key))


def build_csr(key, common_name: str, sans: list | None = None):
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(common_name))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(san_general_names(sans)), critical=False)
    return builder.sign(key, _sign_hash(key))


def load_csr(data, where: str = "csr"):
    try:
        csr = x509.load_pem_x509_csr(to_bytes_pem(data))
    except ValueError as e:
        raise TLSError(f"{where} is not a PEM certificate signing request: {e}") from None
    if not csr.is_signature_valid:
        raise TLSError(f"{where} has an invalid signature; make a new CSR from the member's key")
    return csr


def sign_certificate(csr, ca_cert, ca_key, usage: str, sans: list, valid_days: int, common_name: str | None = None):
    """Issue a server or client certificate for the CSR's key; SANs come from the caller, not the CSR."""
    now = _utcnow()
    cn = common_name or common_name_of(csr.subject) or (sans[0] if sans else "patroni")
    not_after = now + datetime.timedelta(days=valid_days)
    # A leaf must not outlive its CA: verifiers reject it once the CA expires anyway.
    not_after = min(not_after, not_valid_after(ca_cert))
    eku = ExtendedKeyUsageOID.SERVER_AUTH if usage == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    ec_key = isinstance(csr.public_key(), ec.EllipticCurvePublicKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=not ec_key, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(san_general_names(sans)), critical=False)
    return builder.sign(ca_key, _sign_hash(ca_key))


def issued_by(cert, ca_cert) -> bool:
    """True when ca_cert's key signed cert (issuer name and signature), without newer cryptography helpers."""
    if cert.issuer != ca_cert.subject:
        return False
    pub = ca_cert.public_key()
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                       cert.signature_hash_algorithm)
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            pub.verify(cert.signature, cert.tbs_certificate_bytes)
    except InvalidSignature:
        return False
    return True


def renewal_reasons(cert, ca_cert, sans: list, public_key_der_bytes: bytes | None, renew_before_days: int,
                    usage: str) -> list:
    """Why the current certificate must be reissued; an empty list means keep it."""
    reasons = []
    remaining = not_valid_after(cert) - _utcnow()
    if remaining < datetime.timedelta(days=renew_before_days):
        reasons.append(f"expires {not_valid_after(cert).isoformat()}Z, within the renewal window of "
                       f"{renew_before_days} days")
    current = certificate_sans(cert)
    wanted = [normalize_san(s) for s in sans]
    if current != wanted:
        reasons.append(f"subject alternative names differ: has {current}, wants {wanted}")
    if not issued_by(cert, ca_cert):
        reasons.append("not signed by the current CA")
    if public_key_der_bytes is not None and public_key_der(cert) != public_key_der_bytes:
        reasons.append("issued for a different private key")
    try:
        ekus = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        ekus = []
    wanted_eku = ExtendedKeyUsageOID.SERVER_AUTH if usage == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    if wanted_eku not in ekus:
        reasons.append(f"lacks the {usage} authentication usage")
    return reasons


def describe_certificate(cert) -> dict:
    """Public facts about a certificate, for results and diffs (never anything secret)."""
    return {
        "subject": common_name_of(cert.subject),
        "issuer": common_name_of(cert.issuer),
        "serial": format(cert.serial_number, "x"),
        "not_after": not_valid_after(cert).isoformat() + "Z",
        "subject_alt_names": certificate_sans(cert),
        "sha256_fingerprint": fingerprint(cert),
    }


def write_atomic(path: str, data: bytes, mode: int, uid: int = -1, gid: int = -1) -> None:
    """Write via a temp file in the target directory and rename, so readers never see half a file.

    The temp file is created with the final mode from the start: a key is never world-readable, not even briefly.
    """
    directory = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".pgha-tls-", dir=directory)
    try:
        os.fchmod(fd, mode)
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ----------------------------------------------------------------------------------------------------------------
# What the TLS modules share around the certificate logic


def owner_ids(owner: str | None, group: str | None) -> tuple[int, int]:
    """uid and gid for os.fchown; -1 leaves that one as it is."""
    uid = gid = -1
    try:
        if owner:
            uid = pwd.getpwnam(owner).pw_uid
        if group:
            gid = grp.getgrnam(group).gr_gid
    except KeyError as e:
        raise TLSError(f"owner/group {e} does not exist on this host; create the user or change owner/group")
    return uid, gid


def fix_file_attributes(module: t.Any, path: str, mode: int, owner: str | None, group: str | None,
                        diff: dict[str, t.Any] | None = None) -> bool:
    """Correct mode, owner and group of a file whose content is already right; True when something changed."""
    file_args = {"path": path, "mode": format(mode, "04o"), "owner": owner, "group": group,
                 "secontext": None, "attributes": None}
    return module.set_fs_attributes_if_different(file_args, False, diff)


def run_tls_module(module: t.Any, run: t.Callable[[t.Any], dict[str, t.Any]]) -> None:
    """main() of a TLS module after its AnsibleModule: the one place where TLSError becomes the task's failure.
    ``run`` returns the result with a ``diff`` that is only kept in diff mode."""
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    try:
        result = run(module)
    except TLSError as e:
        module.fail_json(msg=str(e))
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
