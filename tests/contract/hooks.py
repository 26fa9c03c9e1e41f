"""Checks of our own for the schemathesis contract runs (infra/test.sh loads this
module through SCHEMATHESIS_HOOKS and names the checks with -c).

Schemathesis' built-in checks only look at one response against the document: a
read-only key whose writes all succeeded, or a full-fleet key refused everywhere,
would still pass them. These two make the run able to fail on authorisation.
CONTRACT_KEY_KIND says which key the run uses: "full-fleet" or "read-only".
"""

import os

import schemathesis

WRITES = {"POST", "PUT", "PATCH", "DELETE"}

# What the document promises a full-fleet key for schema-valid input: (method, path)
# -> accepted statuses, and the 409 codes that valid input can still meet (a VIN or an
# Idempotency-Key that an earlier generated request already used). Routes that take an
# id of an existing record (GET/PUT /vehicles/{id}, POST /inspections) are left out:
# a schema-valid id or vehicle_id need not exist, and their 404/422 are promised too.
PROMISED = {
    ("GET", "/me"): ({200}, set()),
    ("GET", "/vehicles"): ({200}, set()),
    ("GET", "/inspections"): ({200}, set()),
    ("GET", "/inspection-templates"): ({200}, set()),
    ("POST", "/vehicles"): ({201}, {"vin_taken", "idempotency_key_reused"}),
    ("GET", "/webhooks"): ({200}, set()),
}


def _kind():
    return os.environ.get("CONTRACT_KEY_KIND", "")


def _code(response):
    try:
        return response.json().get("code")
    except Exception:  # not JSON: no code
        return None


def _sent_our_key(response):
    # The request as sent: the coverage phase also sends requests without the key.
    return response.request.headers.get("X-API-Key") == os.environ.get("CONTRACT_KEY")


def _not_before(after, before):
    import datetime

    try:
        return datetime.datetime.fromisoformat(after) >= datetime.datetime.fromisoformat(before)
    except ValueError:
        return False


@schemathesis.check
def read_only_key_cannot_write(ctx, response, case):
    """Every write with the read-only key is a 403 insufficient_scope."""
    if _kind() != "read-only" or case.method.upper() not in WRITES or not _sent_our_key(response):
        return None
    # Before the function runs, the gateway may answer for itself: no route for a
    # generated path (404) or a body over the WAF limit (413). Nothing else.
    if response.status_code in (404, 413) and _code(response) in ("not_found", "payload_too_large"):
        return None
    if response.status_code != 403 or _code(response) != "insufficient_scope":
        raise AssertionError(
            f"a read-only key's {case.method} {case.path} got {response.status_code} {_code(response)}, "
            "expected 403 insufficient_scope"
        )
    return True


@schemathesis.check
def full_fleet_key_gets_what_the_document_promises(ctx, response, case):
    """Schema-valid requests with the full-fleet key succeed where the document says they do."""
    if _kind() != "full-fleet" or case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    promised = PROMISED.get((case.method.upper(), case.path))
    if promised is None or not _sent_our_key(response):
        return None
    query = case.query or {}
    # A cursor is opaque: a schema-valid string is not one the API issued (400 is promised).
    if "cursor" in query:
        return None
    # A window that ends before it starts is a promised 400 no schema can state.
    if "performed_after" in query and "performed_before" in query and _not_before(
        query["performed_after"], query["performed_before"]
    ):
        return None
    accepted, conflicts = promised
    if response.status_code in accepted:
        return True
    if response.status_code == 409 and _code(response) in conflicts:
        return True
    raise AssertionError(
        f"valid input to {case.method} {case.path} with a full-fleet key got {response.status_code} "
        f"{_code(response)}, expected {sorted(accepted)}"
    )


@schemathesis.hook
def before_load_schema(context, raw_schema):
    """Pins the document's clock-relative bounds for today's run: a schema cannot say
    "next year", so the document marks such fields with `x-maximum: next-year`."""
    import datetime

    next_year = datetime.datetime.now(datetime.timezone.utc).year + 1

    def pin(node):
        if isinstance(node, dict):
            if node.get("x-maximum") == "next-year":
                node["maximum"] = next_year
            for value in node.values():
                pin(value)
        elif isinstance(node, list):
            for value in node:
                pin(value)

    pin(raw_schema)
