from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, models, transaction
from django.db.models.functions import Cast

from apps.core.crypto import DecryptionError, EncryptedTextField, current_token_prefix, decrypt

# Enough to point at the damage; the count says how much there is.
FAILURES_NAMED = 10


@dataclass
class _Outcome:
    label: str
    reencrypted: int = 0
    failures: list[str] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Re-encrypts every EncryptedTextField value that is not under the current key (the first of "
        "FIELD_ENCRYPTION_KEYS) and format (v2: bound to its row's primary key; v1 values, bound "
        "to their column only, are rewritten). Deploy the new key list everywhere first (new key first, old keys "
        "still listed), then run this; once it exits 0 the old keys can be removed. Rows are locked "
        "and committed batch by batch, so it can run while the application writes. Prints progress "
        "and a summary per field; exits non-zero naming the rows it could not decrypt."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "targets",
            nargs="*",
            metavar="app_label.Model[.field]",
            help="Only these models or fields (default: every EncryptedTextField of every model).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count (and try to decrypt) what would be re-encrypted; change nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=_positive_int,
            default=500,
            help="Rows locked and re-encrypted per transaction (default: 500).",
        )

    def handle(self, *args, targets: list[str], dry_run: bool, batch_size: int, **options) -> None:
        fields = _select(_encrypted_fields(), targets)
        if not fields:
            self.stdout.write("No model has an EncryptedTextField; nothing to do.")
            return
        try:
            prefix = current_token_prefix()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc))
        outcomes = []
        for model, encrypted in fields:
            try:
                outcomes.append(
                    self._rotate(model, encrypted, prefix=prefix, batch_size=batch_size, dry_run=dry_run)
                )
            except DatabaseError as exc:
                # Batches already committed stay rotated; a rerun picks up where this stopped.
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise CommandError(f"{model._meta.label}.{encrypted.name}: database error: {reason}")
        failures = [failure for outcome in outcomes for failure in outcome.failures]
        if failures:
            named = "; ".join(failures[:FAILURES_NAMED])
            more = f"; and {len(failures) - FAILURES_NAMED} more" if len(failures) > FAILURES_NAMED else ""
            raise CommandError(f"{len(failures)} value(s) could not be decrypted: {named}{more}")

    def _rotate(
        self,
        model: type[models.Model],
        encrypted: EncryptedTextField,
        *,
        prefix: str,
        batch_size: int,
        dry_run: bool,
    ) -> _Outcome:
        outcome = _Outcome(label=f"{model._meta.label}.{encrypted.name}")
        done = "would be re-encrypted" if dry_run else "re-encrypted"
        # The raw column (cast so the field does not decrypt it) tells stale tokens from current ones.
        stale = (
            model._base_manager.annotate(_stored=Cast(encrypted.name, output_field=models.TextField()))
            .filter(**{f"{encrypted.name}__isnull": False})
            .exclude(_stored="")
            .exclude(_stored__startswith=prefix)
            .order_by("pk")
        )
        last_pk = None
        while True:
            with transaction.atomic(durable=True):
                batch = stale if last_pk is None else stale.filter(pk__gt=last_pk)
                if not dry_run:
                    # A row written meanwhile is re-read after its writer commits (and skipped if it
                    # is now current), so rotation never puts back a value the application replaced.
                    batch = batch.select_for_update()
                rows = list(batch.values_list("pk", "_stored")[:batch_size])
                if not rows:
                    break
                for pk, stored in rows:
                    self._reencrypt(model, encrypted, pk=pk, stored=stored, outcome=outcome, dry_run=dry_run)
                last_pk = rows[-1][0]
            self.stdout.write(f"{outcome.label}: {outcome.reencrypted:,} {done} so far")
        self.stdout.write(
            f"{outcome.label}: {outcome.reencrypted:,} {done}, {len(outcome.failures):,} failed"
            + (" (dry run)" if dry_run else "")
        )
        return outcome

    def _reencrypt(
        self,
        model: type[models.Model],
        encrypted: EncryptedTextField,
        *,
        pk: object,
        stored: str,
        outcome: _Outcome,
        dry_run: bool,
    ) -> None:
        try:
            plaintext = decrypt(stored, context=encrypted.encryption_context or outcome.label, row=str(pk))
        except DecryptionError as exc:
            failure = f"{outcome.label} pk={pk}: {exc.reason}"
            self.stderr.write(failure)
            outcome.failures.append(failure)
            return
        if not dry_run:
            # Under the current key and format, bound to this row.
            model._base_manager.filter(pk=pk).update(**{encrypted.name: encrypted.seal(plaintext, pk=pk)})
        outcome.reencrypted += 1


def _encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    found = [
        (model, model_field)
        for model in apps.get_models()
        if not model._meta.proxy
        # Local fields only: a multi-table child's inherited fields are rotated on its parent.
        for model_field in model._meta.local_concrete_fields
        if isinstance(model_field, EncryptedTextField)
    ]
    return sorted(found, key=lambda pair: (pair[0]._meta.label, pair[1].name))


def _select(
    fields: list[tuple[type[models.Model], EncryptedTextField]], targets: list[str]
) -> list[tuple[type[models.Model], EncryptedTextField]]:
    if not targets:
        return fields
    labels = {target: target.lower() for target in targets}
    unknown = [
        target
        for target, label in labels.items()
        if not any(_matches(model, encrypted, label) for model, encrypted in fields)
    ]
    if unknown:
        raise CommandError(
            f"No EncryptedTextField matches {', '.join(unknown)} (expected app_label.Model[.field])."
        )
    return [
        (model, encrypted)
        for model, encrypted in fields
        if any(_matches(model, encrypted, label) for label in labels.values())
    ]


def _matches(model: type[models.Model], encrypted: EncryptedTextField, label: str) -> bool:
    return label in (model._meta.label_lower, f"{model._meta.label_lower}.{encrypted.name.lower()}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value
