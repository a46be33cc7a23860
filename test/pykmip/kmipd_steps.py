"""Shared by the PyKMIP scripts: the KMIP versions by name, and a report of steps where each step
records its value or the KMIP failure (status, reason, message) or the client-side error."""
import enum
import traceback

from kmip import enums
from kmip.pie import exceptions as pie_exceptions

VERSIONS = {
    "1.0": enums.KMIPVersion.KMIP_1_0,
    "1.1": enums.KMIPVersion.KMIP_1_1,
    "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.3": enums.KMIPVersion.KMIP_1_3,
    "1.4": enums.KMIPVersion.KMIP_1_4,
    "2.0": enums.KMIPVersion.KMIP_2_0,
}


class Report:
    def __init__(self, version):
        self.data = {"version": version, "steps": {}}

    def step(self, name, fn):
        steps = self.data["steps"]
        try:
            value = fn()
            steps[name] = {"ok": True, "value": value}
            return value
        except pie_exceptions.KmipOperationFailure as e:
            steps[name] = {
                "ok": False,
                "status": e.status.name if e.status else None,
                "reason": e.reason.name if e.reason else None,
                "message": e.message,
            }
        except Exception as e:  # a client-side decode failure is a finding too
            steps[name] = {"ok": False, "error": repr(e), "trace": traceback.format_exc()}
        return None


def plain(v):
    """An attribute value as JSON-friendly data (names of enums, the text of a Name)."""
    if hasattr(v, "name_value"):
        return v.name_value.value
    if hasattr(v, "value"):
        v = v.value
    if isinstance(v, enum.Enum):
        return v.name
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return str(v)
