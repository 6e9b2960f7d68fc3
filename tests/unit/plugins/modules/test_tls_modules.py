# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The TLS modules and patroni_yml run end to end in-process, on files made with cryptography."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.pgha.patroni.plugins.module_utils import _tls
from ansible_collections.pgha.patroni.plugins.modules import (patroni_tls_ca, patroni_tls_certificate,
                                                              patroni_tls_csr, patroni_tls_install,
                                                              patroni_tls_reload, patroni_yml)


class Exit(Exception):
    pass


class Fail(Exception):
    pass


@pytest.fixture(autouse=True)
def _module_exits(monkeypatch):
    def exit_json(self, **kw):
        raise Exit(kw)

    def fail_json(self, **kw):
        raise Fail(kw)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)


def run(mod, args, check=False, diff=False):
    args = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args):
        with pytest.raises((Exit, Fail)) as e:
            mod.main()
    failed = isinstance(e.value, Fail)
    return failed, e.value.args[0]


@pytest.fixture
def ca_files(tmp_path):
    cert, key = tmp_path / "ca.crt", tmp_path / "ca.key"
    failed, res = run(patroni_tls_ca, {"certificate_path": str(cert), "private_key_path": str(key)})
    assert not failed and res["changed"] and res["created"]
    return cert, key, res["certificate"]


def test_ca_created_then_idempotent(ca_files):
    cert, key, pem = ca_files
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    failed, res = run(patroni_tls_ca, {"certificate_path": str(cert), "private_key_path": str(key)}, diff=True)
    assert not failed and not res["changed"] and res["certificate"] == pem
    assert "PRIVATE" not in json.dumps(res)


def test_ca_key_mismatch_names_both_paths(ca_files, tmp_path):
    cert = ca_files[0]
    other = tmp_path / "other.key"
    other.write_bytes(_tls.private_key_pem(_tls.generate_private_key()))
    failed, res = run(patroni_tls_ca, {"certificate_path": str(cert), "private_key_path": str(other)})
    assert failed
    assert res["msg"] == (f"CA private key {other} does not match CA certificate {cert} (their public keys differ); "
                          "give the key that belongs to this certificate")


def test_ca_missing_with_create_false(tmp_path):
    failed, res = run(patroni_tls_ca, {"certificate_path": str(tmp_path / "c"), "private_key_path": str(tmp_path / "k"),
                                       "create": False})
    assert failed and "do not exist and create=false" in res["msg"]
    assert os.listdir(tmp_path) == []


def _member(tmp_path, ca_files, sans, connect="10.0.0.11:8008", current=""):
    key_path = tmp_path / "api.key"
    failed, csr = run(patroni_tls_csr, {"private_key_path": str(key_path), "common_name": "c1m1",
                                        "certificate_path": str(tmp_path / "api.crt")})
    assert not failed, csr
    failed, signed = run(patroni_tls_certificate, {
        "csr": csr["csr"], "ca_certificate_path": str(ca_files[0]), "ca_private_key_path": str(ca_files[1]),
        "connect_address": connect, "subject_alt_names": sans, "current_certificate": csr["current_certificate"]})
    return key_path, csr, failed, signed


def test_full_flow_and_second_run_unchanged(tmp_path, ca_files):
    key_path, csr, failed, signed = _member(tmp_path, ca_files, ["c1m1", "10.0.0.11"])
    assert not failed and signed["issued"] and signed["subject_alt_names"] == ["10.0.0.11", "c1m1"]
    assert csr["key_created"] and stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert "PRIVATE" not in json.dumps(csr)
    install = {"certificate": signed["certificate"], "certificate_path": str(tmp_path / "api.crt"),
               "private_key_path": str(key_path), "ca_certificate": ca_files[2],
               "ca_certificate_path": str(tmp_path / "ca-installed.crt")}
    failed, res = run(patroni_tls_install, install, diff=True)
    assert not failed and res["certificate_changed"] and res["ca_changed"] and "PRIVATE" not in json.dumps(res)
    # second round: same key, current certificate valid -> nothing reissued, nothing rewritten
    key_path, csr2, failed, signed2 = _member(tmp_path, ca_files, ["c1m1", "10.0.0.11"])
    assert not csr2["key_created"] and not csr2["changed"]
    assert not signed2["changed"] and signed2["certificate"] == signed["certificate"]
    failed, res = run(patroni_tls_install, install)
    assert not failed and not res["changed"]
    # a new SAN triggers renewal with the reason given
    failed, signed3 = _member(tmp_path, ca_files, ["c1m1", "10.0.0.11", "db1.example.com"])[2:]
    assert signed3["issued"] and signed3["renewal_reasons"][0].startswith("subject alternative names differ")


def test_sans_missing_connect_address_refused(tmp_path, ca_files):
    failed, res = _member(tmp_path, ca_files, ["c1m1", "10.0.0.12"])[2:]
    assert failed
    assert res["msg"] == ("subject_alt_names ['c1m1', '10.0.0.12'] do not contain the connect address 10.0.0.11 "
                          "(from connect_address '10.0.0.11:8008'); clients verify that name, add it to the list")


def test_install_refuses_mismatched_pair_and_writes_nothing(tmp_path, ca_files):
    key_path, dummy, failed, signed = _member(tmp_path, ca_files, ["10.0.0.11"])
    cert_path = tmp_path / "api.crt"
    cert_path.write_text("old content")
    other_key = tmp_path / "other.key"
    other_key.write_bytes(_tls.private_key_pem(_tls.generate_private_key()))
    serial = format(_tls.load_certificate(signed["certificate"], "x").serial_number, "x")
    failed, res = run(patroni_tls_install, {"certificate": signed["certificate"], "certificate_path": str(cert_path),
                                            "private_key_path": str(other_key)})
    assert failed
    assert res["msg"] == (f"certificate for {cert_path} (serial {serial}) does not match private key {other_key} "
                          "(their public keys differ); nothing was installed. Sign a certificate from a CSR of "
                          "this key")
    assert cert_path.read_text() == "old content"


def test_install_refuses_wrong_key_passphrase(tmp_path, ca_files):
    key = _tls.generate_private_key()
    key_path = tmp_path / "enc.key"
    key_path.write_bytes(_tls.private_key_pem(key, "right-one"))
    cert = _tls.sign_certificate(_tls.build_csr(key, "x"), _tls.load_certificate_file(str(ca_files[0])),
                                 _tls.load_private_key_file(str(ca_files[1])), "server", ["10.0.0.11"], 10)
    failed, res = run(patroni_tls_install, {"certificate": _tls.certificate_pem(cert).decode(),
                                            "certificate_path": str(tmp_path / "api.crt"),
                                            "private_key_path": str(key_path), "private_key_passphrase": "bad-one"})
    assert failed and res["msg"].startswith(f"private key {key_path} cannot be opened with the given passphrase")
    assert not (tmp_path / "api.crt").exists()


PATRONI_YML = """\
scope: c1
name: c1m1
restapi:
  listen: 10.0.0.11:8008
  connect_address: 10.0.0.11:8008
postgresql:
  authentication:
    replication: {username: replicator, password: replsecret}
"""


def test_patroni_yml_missing_not_yaml_not_patroni(tmp_path):
    missing = tmp_path / "missing.yml"
    failed, res = run(patroni_yml, {"path": str(missing), "restapi": {"verify_client": "none"}})
    assert failed and res["msg"] == (f"{missing} does not exist; give the path of the Patroni configuration file "
                                     "(nothing was written)")
    assert not missing.exists()
    bad = tmp_path / "bad.yml"
    bad.write_text("scope: [x\n")
    failed, res = run(patroni_yml, {"path": str(bad), "restapi": {"verify_client": "none"}})
    assert failed and res["msg"].startswith(f"{bad} is not valid YAML at line 2")
    assert bad.read_text() == "scope: [x\n"
    other = tmp_path / "haproxy.yml"
    other.write_text("global: {}\n")
    failed, res = run(patroni_yml, {"path": str(other), "restapi": {"verify_client": "none"}})
    assert failed and res["msg"] == (f"{other} is not a Patroni configuration: top-level key(s) scope, restapi, "
                                     "postgresql not found; nothing was written")
    assert os.listdir(tmp_path) == ["bad.yml", "haproxy.yml"]


def test_patroni_yml_invalid_cidr_changes_nothing(tmp_path):
    path = tmp_path / "patroni.yml"
    path.write_text(PATRONI_YML)
    failed, res = run(patroni_yml, {"path": str(path), "restapi": {"allowlist": ["10.0.0.0/24", "10.0.0.0/40"]}})
    assert failed and res["msg"] == ("allowlist entry '10.0.0.0/40' is not a valid CIDR network: '10.0.0.0/40' "
                                     "does not appear to be an IPv4 or IPv6 network")
    assert path.read_text() == PATRONI_YML


def test_patroni_yml_refuses_mismatched_tls_files(tmp_path, ca_files):
    path = tmp_path / "patroni.yml"
    path.write_text(PATRONI_YML)
    key_path, dummy, failed, signed = _member(tmp_path, ca_files, ["10.0.0.11"])
    (tmp_path / "api.crt").write_text(signed["certificate"])
    other = tmp_path / "other.key"
    other.write_bytes(_tls.private_key_pem(_tls.generate_private_key()))
    failed, res = run(patroni_yml, {"path": str(path), "restapi": {"certfile": str(tmp_path / "api.crt"),
                                                                   "keyfile": str(other)}})
    assert failed and res["msg"] == (f"restapi.certfile {tmp_path / 'api.crt'} does not match private key {other} "
                                     f"(their public keys differ); {path} was not changed, because Patroni would "
                                     "leave its REST API dead on reload")
    assert path.read_text() == PATRONI_YML


def test_patroni_yml_change_keeps_mode_backs_up_masks(tmp_path, ca_files):
    path = tmp_path / "patroni.yml"
    path.write_text(PATRONI_YML)
    os.chmod(path, 0o640)
    args = {"path": str(path), "restapi": {"authentication": {"username": "api", "password": "apisecret"},
                                           "allowlist": ["10.0.0.0/24"], "allowlist_include_members": True},
            "ctl": {"cacert": ca_files[0].as_posix(), "authentication": {"username": "api", "password": "apisecret"}}}
    failed, res = run(patroni_yml, args, check=True, diff=True)
    assert not failed and res["changed"] and path.read_text() == PATRONI_YML
    assert "apisecret" not in json.dumps(res) and "replsecret" not in json.dumps(res)
    failed, res = run(patroni_yml, args, diff=True)
    assert not failed and res["changed"] and res["api_url"] == "http://10.0.0.11:8008"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert open(res["backup_file"]).read() == PATRONI_YML
    assert "replsecret" in path.read_text() and "apisecret" in path.read_text()
    failed, res = run(patroni_yml, args)
    assert not failed and not res["changed"]


@pytest.fixture
def warned(monkeypatch):
    seen = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: seen.append(msg))
    return seen


def test_patroni_yml_keeps_comments_outside_the_sections_it_changes(tmp_path, warned):
    path = tmp_path / "patroni.yml"
    commented = "# owned by the DBA team\n" + PATRONI_YML.replace("postgresql:\n", "# ask before changing\npostgresql:\n")
    path.write_text(commented)
    failed, res = run(patroni_yml, {"path": str(path), "restapi": {"allowlist": ["10.0.0.0/24"]}})
    assert not failed and res["changed"] and warned == []
    text = path.read_text()
    assert text.startswith("# owned by the DBA team\nscope: c1\n")
    assert text.endswith(commented[commented.index("# ask before changing"):])
    assert "  allowlist:\n  - 10.0.0.0/24\n" in text


def test_patroni_yml_rewrites_a_flow_style_file_whole_with_a_warning(tmp_path, warned):
    path = tmp_path / "patroni.yml"
    path.write_text("{scope: c1, restapi: {listen: '10.0.0.11:8008'}, postgresql: {}}  # one line\n")
    failed, res = run(patroni_yml, {"path": str(path), "restapi": {"allowlist": ["10.0.0.0/24"]}})
    assert not failed and res["changed"]
    assert warned == [f"{path}: its layout could not be kept (flow style, a second document or a quoted "
                      "top-level key), so the whole file was rewritten and its comments dropped; the backup "
                      "keeps them"]
    assert "# one line" in open(res["backup_file"]).read()
    assert "allowlist:\n  - 10.0.0.0/24" in path.read_text()


def test_patroni_yml_check_mode_tolerates_files_not_made_yet(tmp_path):
    path = tmp_path / "patroni.yml"
    path.write_text(PATRONI_YML)
    args = {"path": str(path), "restapi": {"certfile": str(tmp_path / "api.crt"), "keyfile": str(tmp_path / "api.key")}}
    failed, res = run(patroni_yml, args, check=True)
    assert not failed and res["changed"] and path.read_text() == PATRONI_YML
    failed, res = run(patroni_yml, args)
    assert failed and res["msg"] == (f"cannot read certificate {tmp_path / 'api.crt'}: No such file or directory; "
                                     f"{path} was not changed, because Patroni would leave its REST API dead on reload")


def test_reload_dry_run_sends_nothing_even_before_files_exist(tmp_path):
    failed, res = run(patroni_tls_reload, {"api_url": "https://10.0.0.11:8008", "ca_path": str(tmp_path / "ca.crt"),
                                           "certificate_path": str(tmp_path / "api.crt"),
                                           "reload_command": ["false"]}, check=True)
    assert not failed and res["changed"] and res["elapsed"] == 0.0
