# Copyright (c) 2026, pgha maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.pgha.patroni.plugins.module_utils import _patroni_yml as pyml

CONFIG = """\
scope: c1
name: c1m1
restapi:
  listen: 10.0.0.11:8008
  connect_address: 10.0.0.11:8008
etcd3:
  hosts: [10.0.0.11:2379]
postgresql:
  listen: 10.0.0.11:5432
  authentication:
    superuser: {username: postgres, password: pgsecret}
"""


def test_load_missing_file(tmp_path):
    path = tmp_path / "nope.yml"
    with pytest.raises(pyml.PatroniYmlError) as e:
        pyml.load(str(path))
    assert str(e.value) == (f"{path} does not exist; give the path of the Patroni configuration file "
                            "(nothing was written)")


def test_load_not_yaml():
    with pytest.raises(pyml.PatroniYmlError) as e:
        pyml.load("/etc/patroni/patroni.yml", "scope: c1\nrestapi: [unclosed\n")
    assert str(e.value) == ("/etc/patroni/patroni.yml is not valid YAML at line 3, column 1: expected ',' or ']', "
                            "but got '<stream end>'; fix the file, nothing was written")


def test_load_not_patroni():
    with pytest.raises(pyml.PatroniYmlError) as e:
        pyml.load("/etc/x.yml", "global:\n  maxconn: 100\nrestapi: {}\n")
    assert str(e.value) == ("/etc/x.yml is not a Patroni configuration: top-level key(s) scope, postgresql not "
                            "found; nothing was written")
    with pytest.raises(pyml.PatroniYmlError, match="its top level is list, not a mapping"):
        pyml.load("/etc/x.yml", "- a\n- b\n")


@pytest.mark.parametrize("entry,msg", [
    ("10.0.0.0/33", "allowlist entry '10.0.0.0/33' is not a valid CIDR network: "
                    "'10.0.0.0/33' does not appear to be an IPv4 or IPv6 network"),
    ("10.0.0.1/24", "allowlist entry '10.0.0.1/24' is not a valid CIDR network: "
                    "10.0.0.1/24 has host bits set; did you mean 10.0.0.0/24?"),
    ("10.0.0.300", "allowlist entry '10.0.0.300' is neither an IP address, a CIDR network nor a host name"),
])
def test_invalid_allowlist_entries(entry, msg):
    data = pyml.load("p", CONFIG)
    with pytest.raises(pyml.PatroniYmlError) as e:
        pyml.apply(data, {"allowlist": ["10.0.0.0/24", entry]}, None)
    assert str(e.value) == msg


def test_apply_keeps_everything_else_and_is_idempotent():
    data = pyml.load("p", CONFIG)
    wanted = {"certfile": "/t/api.crt", "keyfile": "/t/api.key", "cafile": "/t/ca.crt", "verify_client": "optional",
              "authentication": {"username": "api", "password": "pw"}, "allowlist": ["10.0.0.0/24", "lb1"],
              "allowlist_include_members": True}
    ctl = {"cacert": "/t/ca.crt", "certfile": "/t/c.crt", "keyfile": "/t/c.key",
           "authentication": {"username": "api", "password": "pw"}}
    new, changed, warnings = pyml.apply(data, wanted, ctl)
    assert changed == ["restapi.certfile", "restapi.keyfile", "restapi.cafile", "restapi.verify_client",
                       "restapi.authentication", "restapi.allowlist", "restapi.allowlist_include_members",
                       "ctl.cacert", "ctl.certfile", "ctl.keyfile", "ctl.authentication"]
    assert warnings == []
    assert new["postgresql"] == data["postgresql"] and new["etcd3"] == data["etcd3"] and new["name"] == "c1m1"
    assert "certfile" not in data["restapi"]  # the input is not modified
    assert pyml.api_url(new) == "https://10.0.0.11:8008"
    assert pyml.needs_rebind(changed)
    again, changed2, dummy = pyml.apply(pyml.load("p", pyml.dump(new)), wanted, ctl)
    assert changed2 == [] and again == new


def test_dual_stack_listen_gets_mapped_entries():
    data = pyml.load("p", CONFIG.replace("listen: 10.0.0.11:8008", "listen: '*:8008'"))
    wanted = {"allowlist": ["10.0.0.0/24", "192.0.2.10", "fd00::/64", "lb1"], "allowlist_include_members": True}
    new, dummy, warnings = pyml.apply(data, wanted, None)
    assert new["restapi"]["allowlist"] == ["10.0.0.0/24", "192.0.2.10", "fd00::/64", "lb1",
                                           "::ffff:10.0.0.0/120", "::ffff:192.0.2.10"]
    assert len(warnings) == 2 and "'lb1' is a host name" in warnings[0] and "allowlist_include_members" in warnings[1]


@pytest.mark.parametrize("listen,dual", [("*:8008", True), (":8008", True), ("[::]:8008", True), ("::", True),
                                         ("0.0.0.0:8008", False), ("10.0.0.1:8008", False), ("[fd00::1]:8008", False)])
def test_is_dual_stack(listen, dual):
    assert pyml.is_dual_stack(listen) is dual


def test_verify_client_needs_tls_and_ca():
    data = pyml.load("p", CONFIG)
    with pytest.raises(pyml.PatroniYmlError, match="verify_client optional needs restapi.certfile"):
        pyml.apply(data, {"verify_client": "optional"}, None)
    with pytest.raises(pyml.PatroniYmlError, match="verify_client required needs restapi.cafile"):
        pyml.apply(data, {"verify_client": "required", "certfile": "/c"}, None)


def test_masked_hides_every_password_and_flags_changes():
    data = pyml.load("p", CONFIG)
    new = pyml.apply(data, {"authentication": {"username": "api", "password": "topsecret"}}, None)[0]
    text = pyml.dump(pyml.masked(new, data))
    assert "topsecret" not in text and "pgsecret" not in text
    assert "password: '********'" in text
    new2 = pyml.apply(new, {"authentication": {"username": "api", "password": "other"}}, None)[0]
    assert "password: '******** (changed)'" in pyml.dump(pyml.masked(new2, new))


def test_empty_string_removes_setting():
    data = pyml.load("p", CONFIG)
    new = pyml.apply(data, {"certfile": "/c", "keyfile": "/k"}, None)[0]
    back, changed, dummy = pyml.apply(new, {"certfile": "", "keyfile": ""}, None)
    assert changed == ["restapi.certfile", "restapi.keyfile"] and back == data


COMMENTED = """\
---
# cluster c1, managed by the DBA team: ask before changing the scope
scope: c1
name: c1m1   # this host

# REST API: see the runbook
restapi:
  listen: 10.0.0.11:8008
  connect_address: 10.0.0.11:8008

etcd3:
  hosts: ["10.0.0.11:2379"]   # quoting kept
postgresql:
  listen: 10.0.0.11:5432
  # keep in step with pg_hba
  authentication:
    superuser: {username: postgres, password: pgsecret}
"""


def test_splice_rewrites_only_the_changed_section():
    before = pyml.load("p", COMMENTED)
    after, changed, dummy = pyml.apply(before, {"certfile": "/etc/patroni/api.crt", "keyfile": "/etc/patroni/api.key"},
                                       {"cacert": "/etc/patroni/ca.crt"})
    text = pyml.splice(COMMENTED, before, after)
    assert pyml.load("p", text) == after
    # everything outside restapi is byte for byte the user's, comments, quoting and flow style included
    head, rest = COMMENTED.split("restapi:\n", 1)
    tail = rest[rest.index("\netcd3:") + 1:]
    assert text.startswith(head + "restapi:\n")
    assert tail in text
    assert "  certfile: /etc/patroni/api.crt\n" in text
    # the new ctl section goes at the end
    assert text.endswith("ctl:\n  cacert: /etc/patroni/ca.crt\n")


def test_splice_drops_a_removed_section_and_keeps_the_rest():
    with_ctl = COMMENTED + "# client side\nctl:\n  insecure: true\n"
    before = pyml.load("p", with_ctl)
    after = {k: v for k, v in before.items() if k != "ctl"}
    text = pyml.splice(with_ctl, before, after)
    assert pyml.load("p", text) == after
    assert text.startswith(COMMENTED)
    assert "insecure" not in text


def test_splice_without_changes_is_the_same_text():
    before = pyml.load("p", COMMENTED)
    assert pyml.splice(COMMENTED, before, before) == COMMENTED


@pytest.mark.parametrize("text", [
    "{scope: c1, restapi: {listen: ':8008'}, postgresql: {}}\n",          # flow style at the top
    "scope: c1\nrestapi:\n  listen: ':8008'\npostgresql: {}\n...\n",   # an explicit document end
    "'scope': c1\nrestapi:\n  listen: ':8008'\npostgresql: {}\n",        # a quoted key
])
def test_splice_declines_layouts_it_cannot_keep(text):
    before = pyml.load("p", text)
    after, dummy, dummy2 = pyml.apply(before, {"certfile": "/x.crt"}, None)
    assert pyml.splice(text, before, after) is None


def test_tags_set_convert_and_remove():
    data = pyml.load("p", CONFIG + "tags:\n  nofailover: false\n  zone: a\n")
    new, changed, dummy = pyml.apply(data, None, None, tags={"noloadbalance": "true", "failover_priority": "2",
                                                             "zone": None})
    # Patroni truth-tests its boolean tags: a string "true"/"false" must become a YAML boolean
    assert new["tags"] == {"nofailover": False, "noloadbalance": True, "failover_priority": 2}
    assert sorted(changed) == ["tags.failover_priority", "tags.noloadbalance", "tags.zone"]
    again, changed, dummy = pyml.apply(new, None, None, tags={"noloadbalance": True, "failover_priority": 2})
    assert changed == [] and again == new
    # a quoted "false" already in the file is not the boolean Patroni needs: it is rewritten
    quoted = pyml.load("p", CONFIG + "tags:\n  noloadbalance: 'false'\n")
    fixed, changed, dummy = pyml.apply(quoted, None, None, tags={"noloadbalance": False})
    assert fixed["tags"] == {"noloadbalance": False} and changed == ["tags.noloadbalance"]


def test_removing_the_last_tag_removes_the_section_and_splice_keeps_the_rest():
    text = CONFIG + "# placement\ntags:\n  noloadbalance: true\n"
    before = pyml.load("p", text)
    after, changed, dummy = pyml.apply(before, None, None, tags={"noloadbalance": None})
    assert "tags" not in after and changed == ["tags.noloadbalance"]
    assert pyml.splice(text, before, after) == CONFIG + "# placement\n"
    untouched, changed, dummy = pyml.apply(pyml.load("p", CONFIG + "tags: {}\n"), None, None, tags={"x": None})
    assert changed == [] and untouched["tags"] == {}


@pytest.mark.parametrize("tags, msg", [
    ({"noloadbalance": "maybe"}, "tags.noloadbalance 'maybe' is not a boolean; Patroni tests this tag for truth, so "
                                 "give true or false (or null to remove it); nothing was written"),
    ({"failover_priority": "high"}, "tags.failover_priority 'high' is not an integer; give a whole number (or null "
                                    "to remove it); nothing was written"),
    ({"failover_priority": True}, "tags.failover_priority True is not an integer; give a whole number (or null to "
                                  "remove it); nothing was written"),
])
def test_bad_tag_values_are_refused(tags, msg):
    with pytest.raises(pyml.PatroniYmlError) as e:
        pyml.apply(pyml.load("p", CONFIG), None, None, tags=tags)
    assert str(e.value) == msg
