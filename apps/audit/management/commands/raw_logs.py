from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser
from pymongo.errors import PyMongoError

from apps.audit import mongo
from apps.audit.rawlog import raw_log_find


class Command(BaseCommand):
    help = (
        "Prints the raw-log documents the MongoDB sink holds for a payment (every gateway request and "
        "response, and the emails about it) or for a request's correlation id, oldest first, one JSON "
        "object per line. Reads only; needs MONGO_URL."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--payment", metavar="PAY_ID", help="A payment id (pay_…).")
        which.add_argument("--correlation-id", metavar="ID", help="The X-Correlation-ID of a request.")

    def handle(self, *args, payment: str | None, correlation_id: str | None, **options) -> None:
        if not mongo.enabled():
            raise CommandError("MONGO_URL is not set: the raw-log sink is off")
        try:
            documents = raw_log_find(payment_id=payment, correlation_id=correlation_id)
        except PyMongoError as exc:
            raise CommandError(f"MongoDB is unreachable: {type(exc).__name__}")
        for document in documents:
            self.stdout.write(json.dumps(document, default=str, sort_keys=True))
        self.stderr.write(f"{len(documents)} document(s)")
