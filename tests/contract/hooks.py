"""Schemathesis hooks for the contract run of `make test`.

`cargo lambda watch`, the local stand-in for API Gateway, turns each HTTP request
into a JSON event, and it cannot carry bytes that are not UTF-8 (in a body or a
header value): it answers 500 itself and never calls the function. API Gateway
does not have that limit, so such cases would test the emulator, not Fleetgate;
they are left out. Every other negative case (wrong types, bad formats, missing
or unknown fields, out-of-range values, odd paths and parameters) still runs.
"""
import schemathesis


def _is_text(value):
    if isinstance(value, (bytes, bytearray)):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True


@schemathesis.hook
def filter_body(ctx, body):
    return _is_text(body)


@schemathesis.hook
def filter_headers(ctx, headers):
    return all(isinstance(v, str) and v.isascii() for v in (headers or {}).values())
