# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.pgha.patroni.plugins.module_utils import _tls


@pytest.fixture(scope="module")
def ca():
    key = _tls.generate_private_key("ecdsa")
    return key, _tls.create_ca(key, "test CA", 30)


def _server_cert(ca, sans=("10.0.0.11", "c1m1"), days=100, key=None, usage="server"):
    ca_key, ca_cert = ca
    key = key or _tls.generate_private_key("ecdsa")
    csr = _tls.build_csr(key, "c1m1", list(sans))
    return key, _tls.sign_certificate(csr, ca_cert, ca_key, usage, list(sans), days)


def test_order_sans_puts_connect_address_first():
    assert _tls.order_sans("10.0.0.11:8008", ["c1m1", "10.0.0.11", "C1M1", "::1"]) == ["10.0.0.11", "c1m1", "::1"]


def test_order_sans_ipv6_connect_address():
    assert _tls.order_sans("[fd00::11]:8008", ["fd00:0::11"]) == ["fd00::11"]


def test_order_sans_refuses_list_without_connect_address():
    with pytest.raises(_tls.TLSError) as e:
        _tls.order_sans("10.0.0.11:8008", ["c1m1", "10.0.0.12"])
    assert str(e.value) == (
        "subject_alt_names ['c1m1', '10.0.0.12'] do not contain the connect address 10.0.0.11 "
        "(from connect_address '10.0.0.11:8008'); clients verify that name, add it to the list")


def test_normalize_san_rejects_junk():
    with pytest.raises(_tls.TLSError, match="neither an IP address nor a valid DNS name"):
        _tls.normalize_san("bad host!")


def test_signed_certificate_has_sans_in_order_and_chains(ca):
    key, cert = _server_cert(ca, sans=["10.0.0.11", "c1m1", "localhost"])
    assert _tls.certificate_sans(cert) == ["10.0.0.11", "c1m1", "localhost"]
    assert _tls.issued_by(cert, ca[1])
    assert _tls.key_matches_certificate(key, cert)
    # a leaf never outlives its CA
    assert _tls.not_valid_after(cert) <= _tls.not_valid_after(ca[1])


def test_renewal_reasons_empty_for_good_certificate(ca):
    key, cert = _server_cert(ca, days=20)
    assert _tls.renewal_reasons(cert, ca[1], ["10.0.0.11", "c1m1"], _tls.public_key_der(key), 10, "server") == []


def test_renewal_reasons_window_sans_ca_key_usage(ca):
    key, cert = _server_cert(ca, days=5)
    other_ca = (_tls.generate_private_key(), None)
    other_ca = (other_ca[0], _tls.create_ca(other_ca[0], "other CA", 30))
    reasons = _tls.renewal_reasons(cert, other_ca[1], ["10.0.0.11"], _tls.public_key_der(_tls.generate_private_key()),
                                   10, "client")
    assert reasons[0].startswith("expires ") and reasons[0].endswith("within the renewal window of 10 days")
    assert reasons[1] == "subject alternative names differ: has ['10.0.0.11', 'c1m1'], wants ['10.0.0.11']"
    assert reasons[2:] == ["not signed by the current CA", "issued for a different private key",
                           "lacks the client authentication usage"]


def test_issued_by_rsa_ca():
    ca_key = _tls.generate_private_key("rsa", 2048)
    ca_cert = _tls.create_ca(ca_key, "rsa CA", 10)
    key, cert = _server_cert((ca_key, ca_cert))
    assert _tls.issued_by(cert, ca_cert)
    assert _tls.key_type_of(ca_key) == "rsa"


def test_key_passphrase_messages(tmp_path):
    key = _tls.generate_private_key()
    path = tmp_path / "k.pem"
    path.write_bytes(_tls.private_key_pem(key, "s3cret"))
    assert _tls.key_matches_certificate(_tls.load_private_key_file(str(path), "s3cret"), _tls.build_csr(key, "x"))
    with pytest.raises(_tls.TLSError) as e:
        _tls.load_private_key_file(str(path), None)
    assert str(e.value) == f"private key {path} is encrypted but no passphrase was given"
    with pytest.raises(_tls.TLSError) as e:
        _tls.load_private_key_file(str(path), "n0tit")
    assert str(e.value).startswith(f"private key {path} cannot be opened with the given passphrase")
    assert "s3cret" not in str(e.value) and "n0tit" not in str(e.value)


def test_check_pair_mismatch_message(ca):
    cert = _server_cert(ca)[1]
    with pytest.raises(_tls.TLSError) as e:
        _tls.check_pair(_tls.generate_private_key(), cert, "/k", "/c")
    assert str(e.value) == "certificate /c does not match private key /k (their public keys differ)"


def test_write_atomic_mode_and_no_leftovers(tmp_path):
    target = tmp_path / "api.key"
    _tls.write_atomic(str(target), b"data", 0o600)
    assert target.read_bytes() == b"data"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert os.listdir(tmp_path) == ["api.key"]


def test_not_valid_after_is_naive_utc(ca):
    value = _tls.not_valid_after(ca[1])
    assert value.tzinfo is None
    assert value > _tls._utcnow()


def test_owner_ids_leave_unset_owner_and_group_alone():
    assert _tls.owner_ids(None, None) == (-1, -1)
    assert _tls.owner_ids("root", "root") == (0, 0)


def test_owner_ids_name_the_missing_user():
    with pytest.raises(_tls.TLSError) as info:
        _tls.owner_ids("pgha-no-such-user", None)
    assert str(info.value) == ("owner/group \"getpwnam(): name not found: 'pgha-no-such-user'\" does not exist on "
                               "this host; create the user or change owner/group")


def test_fix_file_attributes_asks_for_mode_owner_and_group_only():
    calls = []

    class Module:
        def set_fs_attributes_if_different(self, file_args, changed, diff=None):
            calls.append((file_args, changed, diff))
            return True

    diff = {"before": {}, "after": {}}
    assert _tls.fix_file_attributes(Module(), "/etc/patroni/tls/key.pem", 0o600, "postgres", None, diff) is True
    assert calls == [({"path": "/etc/patroni/tls/key.pem", "mode": "0600", "owner": "postgres", "group": None,
                       "secontext": None, "attributes": None}, False, diff)]
