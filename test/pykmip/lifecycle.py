#!/usr/bin/python3
"""Drive kmipd with PyKMIP's ProxyKmipClient through the symmetric-key lifecycle.

Usage: lifecycle.py HOST PORT CERT KEY CA VERSION   (VERSION like 1.2 or 2.0)
Prints one JSON object with what the server answered; the vitest test asserts on it.
Every step records either its result or the KMIP failure (status, reason, message).
"""
import json
import os
import sys

from kmip import enums
from kmip.core.factories import attributes as attribute_factories
from kmip.pie import client as pie_client

from kmipd_steps import VERSIONS, Report, plain
from kmip.pie import objects

host, port, cert, key, ca, version = sys.argv[1:7]

run = Report(version)
report = run.data
step = run.step


def attrs_to_json(attrs):
    out = {}
    for a in attrs:
        out.setdefault(a.attribute_name.value, []).append(plain(a.attribute_value))
    return out


factory = attribute_factories.AttributeFactory()
name = "pykmip-%s-%s" % (version, os.getpid())

with pie_client.ProxyKmipClient(
    hostname=host, port=int(port), cert=cert, key=key, ca=ca,
    config_file="/dev/null", kmip_version=VERSIONS[version],
) as c:
    created = {}
    for bits in (128, 192, 256):
        uid = step("create_%d" % bits, lambda b=bits: c.create(
            enums.CryptographicAlgorithm.AES, b,
            name=name if b == 256 else None,
            cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]))
        created[bits] = uid
        if uid:
            for i in (1, 2):
                step("get_%d_%d" % (bits, i), lambda u=uid: c.get(u).value.hex())
    uid = created.get(256)
    if uid:
        step("get_attributes", lambda: attrs_to_json(c.get_attributes(uid, [
            "Cryptographic Algorithm", "Cryptographic Length", "State", "Name", "Object Type", "Unique Identifier",
            "Cryptographic Usage Mask"])[1]))
        step("get_attributes_all", lambda: attrs_to_json(c.get_attributes(uid)[1]))
        step("get_attribute_list", lambda: sorted(c.get_attribute_list(uid)))
        step("locate_by_name", lambda: c.locate(attributes=[
            factory.create_attribute(enums.AttributeType.NAME, name)]))
        step("activate", lambda: c.activate(uid))
        step("state_after_activate", lambda: attrs_to_json(c.get_attributes(uid, ["State"])[1]))
        step("destroy_active", lambda: c.destroy(uid))
        step("revoke", lambda: c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid))
        step("state_after_revoke", lambda: attrs_to_json(c.get_attributes(uid, ["State"])[1]))
        step("destroy", lambda: c.destroy(uid))
        step("state_after_destroy", lambda: attrs_to_json(c.get_attributes(uid, ["State"])[1]))
        step("get_destroyed", lambda: c.get(uid).value.hex())
    material = bytes(range(1, 33))
    reg = step("register", lambda: c.register(objects.SymmetricKey(
        enums.CryptographicAlgorithm.AES, 256, material,
        [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT], name=name + "-reg")))
    report["registered_material"] = material.hex()
    if reg:
        step("get_registered", lambda: c.get(reg).value.hex())
        step("locate_registered", lambda: c.locate(attributes=[
            factory.create_attribute(enums.AttributeType.NAME, name + "-reg")]))
    step("get_unknown", lambda: c.get("00000000-0000-0000-0000-000000000000").value.hex())

print(json.dumps(report))
