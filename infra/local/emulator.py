"""The local stack's AWS emulator: moto's server application (moto[server], Apache-2.0),
answering one request at a time.

Run as `python infra/local/emulator.py -H 127.0.0.1 -p 8000` with the moto venv's python
(infra/lib.sh does). It serves what `moto_server` serves (DynamoDB, DynamoDB Streams, SQS,
..., and `POST /moto-api/reset`), with one difference, on purpose:

moto's own `moto_server` runs requests on parallel threads, but its DynamoDB backend is
not thread-safe. TransactWriteItems deep-copies every table it touches so it can roll
back, and a write on another thread meanwhile fails it with "dictionary changed size
during iteration" (an HTTP 500 that DynamoDB never gives); worse, a rollback restores
that copy over the other threads' writes, which are then silently lost. DynamoDB has
neither problem, so tests on it must not see them: one lock around the application
keeps the backend serial while connections stay concurrent.

It is served by waitress (ZPL 2.1) rather than werkzeug's development server, which
closes every connection after one answer: the functions would reconnect on every
DynamoDB call, and the benchmark could not see whether they reuse one connection.

The same deep copy makes every transaction cost time in proportion to the whole table
(110 ms at 1,500 items, measured: a soak of a few thousand writes then times out). So a
transaction here backs up only the items it touches, and on cancellation puts exactly
those back and drops the stream records its partial writes made (a cancelled
transaction leaves no trace in DynamoDB's stream either). This relies on the lock above
(nothing else writes meanwhile) and on moto's internals at the pinned version
(infra/bootstrap.sh): a moto upgrade must re-check `transact_write_items`.
"""
import argparse
import copy
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import serve


def serial(app):
    lock = threading.Lock()

    def application(environ, start_response):
        with lock:
            # The whole answer is produced under the lock: the backend acts while it is built.
            return [b"".join(app(environ, start_response))]

    return application


def item_backed_up_transactions():
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class TablesAreNotCopied:
        """Stands in for the `copy` module inside moto's DynamoDB backend."""

        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = TablesAreNotCopied
    original = models.DynamoDBBackend.transact_write_items

    def touched_keys(backend, transact_items):
        for entry in transact_items:
            for op_type, op in entry.items():
                table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                if table is None:
                    continue
                key = op.get("Item") if op_type == "Put" else op.get("Key")
                try:
                    hash_value = DynamoType(key[table.hash_key_attr])
                    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
                except (KeyError, TypeError):
                    continue  # moto itself refuses such a request
                yield table, hash_value, range_value

    def transact_write_items(self, transact_items):
        backups = [
            (table, h, r, copy.deepcopy(table.get_item(h, r)))
            for table, h, r in touched_keys(self, transact_items)
        ]
        streams = {
            id(table): (table.stream_shard, len(table.stream_shard.items))
            for table, _, _, _ in backups
            if table.stream_shard is not None
        }
        try:
            return original(self, transact_items)
        except Exception:
            for table, h, r, before in reversed(backups):
                if r is not None:
                    if before is None:
                        table.items[h].pop(r, None)
                    else:
                        table.items[h][r] = before
                elif before is None:
                    table.items.pop(h, None)
                else:
                    table.items[h] = before
            for shard, length in streams.values():
                del shard.items[length:]
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=8000)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    item_backed_up_transactions()
    app = DomainDispatcherApplication(create_backend_app)
    serve(serial(app), host=args.host, port=args.port, threads=8, ident="moto", _quiet=True)


if __name__ == "__main__":
    main()
