#!/usr/bin/python3
"""Every symmetric-key management method of PyKMIP's ProxyKmipClient beyond the basic lifecycle:
rekey, check, locate paging, modify/delete/set attribute.

Usage: symmetric-methods.py HOST PORT CERT KEY CA VERSION
Prints one JSON object; the vitest test asserts on it.
"""
import json
import os
import sys

from kmip import enums
from kmip.core import objects as cobjects
from kmip.core import primitives
from kmip.core.factories import attributes as attribute_factories
from kmip.pie import client as pie_client

from kmipd_steps import VERSIONS, Report, plain

host, port, cert, key, ca, version = sys.argv[1:7]
V = VERSIONS[version]
v2 = version.startswith("2")
run = Report(version)
report = run.data
step = run.step
factory = attribute_factories.AttributeFactory()


def attrs(c, uid, names):
    return {a.attribute_name.value: plain(a.attribute_value) for a in c.get_attributes(uid, names)[1]}


tag = "%s-%s" % (version, os.getpid())
with pie_client.ProxyKmipClient(hostname=host, port=int(port), cert=cert, key=key, ca=ca,
                                config_file="/dev/null", kmip_version=V) as c:
    mask = [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]
    uid = step("create", lambda: c.create(enums.CryptographicAlgorithm.AES, 256, name="m-" + tag,
                                           cryptographic_usage_mask=mask))
    step("activate", lambda: c.activate(uid))
    step("check_ok", lambda: c.check(uid, cryptographic_usage_mask=[enums.CryptographicUsageMask.ENCRYPT]))
    if not v2:
        # PyKMIP 0.10 reads the payload of a failed Check even when there is none; kmipd sends one
        # at 1.x (1.4 §4.10) but not at 2.x, where the 2.1 baseline case BL-M-2 expects none.
        step("check_bad_mask", lambda: c.check(uid, cryptographic_usage_mask=[enums.CryptographicUsageMask.SIGN]))
    new = step("rekey", lambda: c.rekey(uid=uid))
    if new:
        step("rekey_differs", lambda: c.get(new).value.hex() != c.get(uid).value.hex())
        step("rekey_attrs", lambda: attrs(c, new, ["State", "Name", "Cryptographic Length"]))

    # Modify / delete attributes.
    if v2:
        step("set_attribute", lambda: c.set_attribute(uid, attribute_name="Sensitive", attribute_value=True))
        step("after_set", lambda: attrs(c, uid, ["Sensitive"]))
        step("modify_attribute", lambda: c.modify_attribute(uid, new_attribute=cobjects.NewAttribute(
            attribute=primitives.Boolean(False, enums.Tags.SENSITIVE)))[0])
        step("after_modify", lambda: attrs(c, uid, ["Sensitive"]))
        step("delete_attribute", lambda: c.delete_attribute(uid, attribute_reference=cobjects.AttributeReference(
            vendor_identification="", attribute_name="Sensitive"))[0])
        step("after_delete", lambda: attrs(c, uid, ["Sensitive"]))
    else:
        # After the rekey the Name moved to the new key: rename that one, then delete its Name.
        step("modify_attribute", lambda: plain(c.modify_attribute(new, attribute=factory.create_attribute(
            enums.AttributeType.NAME, "renamed-" + tag))[1]))
        step("after_modify", lambda: attrs(c, new, ["Name"]))
        step("modify_readonly", lambda: c.modify_attribute(new, attribute=factory.create_attribute(
            enums.AttributeType.CRYPTOGRAPHIC_LENGTH, 128)))
        step("delete_attribute", lambda: plain(c.delete_attribute(new, attribute_name="Name")[1]))
        step("after_delete", lambda: attrs(c, new, ["Name"]))

    # Cryptographic services: kmipd never uses a KEK itself (it is unwrapped only to answer a Get),
    # so these get a clean Operation Not Supported, and the connection keeps working.
    params = {"cryptographic_algorithm": enums.CryptographicAlgorithm.AES,
              "block_cipher_mode": enums.BlockCipherMode.CBC,
              "padding_method": enums.PaddingMethod.PKCS5}
    step("encrypt", lambda: c.encrypt(b"plaintext", uid=uid, cryptographic_parameters=params, iv_counter_nonce=b"\0" * 16))
    step("decrypt", lambda: c.decrypt(b"\0" * 16, uid=uid, cryptographic_parameters=params, iv_counter_nonce=b"\0" * 16))
    step("mac", lambda: c.mac(b"data", uid=uid, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256))
    step("after_crypto", lambda: attrs(c, uid, ["State"]))

    # Locate with paging and a storage status mask.
    group = "grp-" + tag
    made = []
    for i in range(3):
        made.append(c.create(enums.CryptographicAlgorithm.AES, 128, name="p%d-%s" % (i, tag)))
    report["made"] = made
    step("locate_all_symmetric", lambda: len(c.locate(attributes=[
        factory.create_attribute(enums.AttributeType.OBJECT_TYPE, enums.ObjectType.SYMMETRIC_KEY)])) >= 3)
    step("locate_max", lambda: c.locate(maximum_items=2, attributes=[
        factory.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_LENGTH, 128),
        factory.create_attribute(enums.AttributeType.STATE, enums.State.PRE_ACTIVE)]))
    if version not in ("1.0", "1.1", "1.2"):
        step("locate_offset", lambda: c.locate(offset_items=1, maximum_items=1, attributes=[
            factory.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_LENGTH, 128),
            factory.create_attribute(enums.AttributeType.STATE, enums.State.PRE_ACTIVE)]))
    step("locate_online", lambda: c.locate(storage_status_mask=1, attributes=[
        factory.create_attribute(enums.AttributeType.NAME, "p0-" + tag)]))
print(json.dumps(report))
