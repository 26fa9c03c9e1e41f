"""The authorizer as a Python function would do it (boto3 + awslambdaric): the
same offline checksum check, SHA-256, strongly consistent GetItem and policy.
It is the peer README compares the Rust authorizer's cold start and latency with."""
import hashlib
import os
import zlib

import boto3

_table = boto3.resource("dynamodb").Table(os.environ["KEYS_TABLE"])
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _checksum(text):
    value, digits = zlib.crc32(text.encode()), ""
    for _ in range(6):
        digits = _BASE62[value % 62] + digits
        value //= 62
    return digits


def handler(event, context):
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    key = headers.get("x-api-key", "")
    if not key.startswith("fg_test_") or len(key) != 44 or _checksum(key[:-6]) != key[-6:]:
        raise Exception("Unauthorized")
    item = _table.get_item(Key={"key_hash": hashlib.sha256(key.encode()).hexdigest()}, ConsistentRead=True).get("Item")
    if not item or item.get("revoked_at"):
        raise Exception("Unauthorized")
    arn = event["methodArn"].split("/")
    return {
        "principalId": item["key_id"],
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "/".join(arn[:2]) + "/*/*"}]},
        "context": {"tenant_id": item["tenant_id"], "key_id": item["key_id"], "scopes": " ".join(item["scopes"])},
    }
