"""manage.py replay_webhooks: process failed, dead or ignored webhook events again, now."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.webhooks.models import WebhookEvent
from apps.webhooks.selectors import webhook_events_matching
from apps.webhooks.services import webhook_event_replay

REPLAYABLE = [WebhookEvent.Status.DEAD, WebhookEvent.Status.FAILED, WebhookEvent.Status.IGNORED]
DONE = {WebhookEvent.Status.PROCESSED, WebhookEvent.Status.IGNORED}


class Command(BaseCommand):
    help = (
        "Replays webhook events: each gets a fresh set of attempts and is processed now (dead ones "
        "through their dead letter). By default every dead event; --id picks one (Paydesk's whe_… id "
        "or the provider's event id, e.g. evt_…). --dry-run lists them and changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--status", choices=REPLAYABLE, default=None, help="Replay events in this status (default: dead)."
        )
        parser.add_argument(
            "--id", dest="reference", default="", help="One event: whe_… or the provider's id."
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be replayed; change nothing."
        )

    def handle(self, *args, status: str | None, reference: str, dry_run: bool, **options):
        status = status or ("" if reference else WebhookEvent.Status.DEAD)
        events = list(
            webhook_events_matching(reference=reference, status=status).values_list(
                "pk", "provider_event_id", "type", "status"
            )
        )
        if reference and not events:
            raise CommandError(f"no webhook event {reference!r}{f' with status {status}' if status else ''}")
        if dry_run:
            for event_id, provider_event_id, type_, current in events:
                self.stdout.write(f"would replay {event_id} ({provider_event_id}, {type_}, {current})")
            self.stdout.write(f"dry run: {len(events)} event(s) would be replayed; nothing changed")
            return
        failures = 0
        for done, (event_id, provider_event_id, type_, _) in enumerate(events, start=1):
            try:
                event = webhook_event_replay(actor=None, event_id=event_id)
            except ApplicationError as exc:
                failures += 1
                self.stdout.write(f"{event_id} ({provider_event_id}): not replayed: {exc.message}")
                continue
            if event.status in DONE:
                self.stdout.write(
                    f"{event_id} ({provider_event_id}, {type_}): {event.status}: {event.outcome}"
                )
            else:
                failures += 1
                self.stdout.write(
                    f"{event_id} ({provider_event_id}, {type_}): {event.status}: {event.last_error}"
                )
            sys.stderr.write(f"\r{done}/{len(events)} replayed")
        if events:
            sys.stderr.write("\n")
        self.stdout.write(f"replayed {len(events) - failures} of {len(events)} event(s)")
        if failures:
            raise CommandError(f"{failures} event(s) not processed; see above why")
