"""`manage.py rotate_encryption_key` moves every stored value to the current key, and only those."""

import base64
import io
import threading
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from apps.core.crypto import TamperedToken, decrypt
from apps.core.management.commands.rotate_encryption_key import Command
from apps.core.tests.test_crypto import (
    KEY_BYTES,
    NEW_KEY,
    OLD_KEY,
    SecretNote,
    keys,
    legacy_token,
    secret_note_table,
    stored_values,
)

GONE_KEY = f"gone:{base64.b64encode(b'g' * 32).decode()}"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures(secret_note_table.__name__),
]


def rotate(*args: str, target: str = "core.SecretNote") -> str:
    """Runs the command on this module's table only: other apps' tables are theirs to test."""
    out = io.StringIO()
    call_command("rotate_encryption_key", target, *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def notes_under_old_key(count: int) -> list[SecretNote]:
    with keys(OLD_KEY):
        return [
            SecretNote.objects.create(secret=f"tok_{index}", note=f"note {index}") for index in range(count)
        ]


def test_values_under_an_old_key_are_reencrypted_under_the_new_first_key():
    # given
    notes = notes_under_old_key(3)
    blank = SecretNote.objects.create(secret=None, note="")

    # when the new key is put first and the command runs
    with keys(NEW_KEY, OLD_KEY):
        output = rotate()

    # then every value is under the new key, and still says the same
    stored = stored_values(SecretNote)
    for note in notes:
        secret, text = stored[note.pk]
        assert secret.startswith("v2.new.")
        assert text.startswith("v2.new.")
    assert stored[blank.pk] == (None, "")
    with keys(NEW_KEY):  # the old key can go now
        assert [(n.secret, n.note) for n in SecretNote.objects.order_by("pk")] == [
            ("tok_0", "note 0"),
            ("tok_1", "note 1"),
            ("tok_2", "note 2"),
            (None, ""),
        ]
    assert "core.SecretNote.secret: 3 re-encrypted, 0 failed" in output
    assert "core.SecretNote.note: 3 re-encrypted, 0 failed" in output


def test_values_bound_only_to_their_column_are_rewritten_bound_to_their_row():
    # given values written before rows were bound (v1), under the key that is still current
    notes = [SecretNote.objects.create(secret=None, note="") for _ in range(2)]
    with connection.cursor() as cursor:
        for note in notes:
            cursor.execute(
                f"UPDATE {SecretNote._meta.db_table} SET secret = %s WHERE id = %s",  # noqa: S608
                [
                    legacy_token(
                        f"tok_{note.pk}", context="core.SecretNote.secret", kid="new", key=KEY_BYTES
                    ),
                    note.pk,
                ],
            )

    with keys(NEW_KEY):
        # when a dry run, then the rotation runs
        assert "core.SecretNote.secret: 2 would be re-encrypted" in rotate("--dry-run")
        assert all(secret.startswith("v1.new.") for secret, _ in stored_values(SecretNote).values())
        output = rotate()

        # then each is under the current format, bound to its row, and says the same
        assert "core.SecretNote.secret: 2 re-encrypted, 0 failed" in output
        stored = stored_values(SecretNote)
        for note in notes:
            assert stored[note.pk][0].startswith("v2.new.")
            assert (
                decrypt(stored[note.pk][0], context="core.SecretNote.secret", row=str(note.pk))
                == f"tok_{note.pk}"
            )
        # so a copy into the other row no longer decrypts
        with pytest.raises(TamperedToken):
            decrypt(stored[notes[0].pk][0], context="core.SecretNote.secret", row=str(notes[1].pk))
        assert "0 re-encrypted" in rotate()


def test_a_dry_run_counts_what_would_change_and_changes_nothing():
    notes_under_old_key(2)
    before = stored_values(SecretNote)

    with keys(NEW_KEY, OLD_KEY):
        output = rotate("--dry-run")

    assert stored_values(SecretNote) == before
    assert "core.SecretNote.secret: 2 would be re-encrypted, 0 failed (dry run)" in output


def test_a_second_run_changes_nothing():
    notes_under_old_key(2)
    with keys(NEW_KEY, OLD_KEY):
        rotate()
        after_first = stored_values(SecretNote)

        output = rotate()

    assert stored_values(SecretNote) == after_first
    assert "core.SecretNote.secret: 0 re-encrypted, 0 failed" in output


def test_values_already_under_the_current_key_are_left_alone():
    notes_under_old_key(1)
    with keys(NEW_KEY, OLD_KEY):
        current = SecretNote.objects.create(secret="tok_new", note="")
        before = stored_values(SecretNote)[current.pk]

        output = rotate()

    assert stored_values(SecretNote)[current.pk] == before
    assert "core.SecretNote.secret: 1 re-encrypted, 0 failed" in output


def test_large_tables_are_rotated_batch_by_batch_with_progress():
    notes = notes_under_old_key(5)

    with keys(NEW_KEY, OLD_KEY):
        output = rotate("--batch-size", "2")

    assert all(secret.startswith("v2.new.") for secret, _ in stored_values(SecretNote).values())
    assert len(notes) == 5
    secret_lines = [line for line in output.splitlines() if line.startswith("core.SecretNote.secret")]
    assert secret_lines == [
        "core.SecretNote.secret: 2 re-encrypted so far",
        "core.SecretNote.secret: 4 re-encrypted so far",
        "core.SecretNote.secret: 5 re-encrypted so far",
        "core.SecretNote.secret: 5 re-encrypted, 0 failed",
    ]


def test_rows_that_cannot_be_decrypted_are_named_and_the_rest_still_rotated():
    # given one value under a key that is gone and one altered behind the application's back
    with keys(GONE_KEY):
        lost = SecretNote.objects.create(secret="tok_lost", note="")
    good = notes_under_old_key(1)[0]
    altered = notes_under_old_key(1)[0]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {SecretNote._meta.db_table} SET secret = %s WHERE id = %s",  # noqa: S608
            [stored_values(SecretNote)[good.pk][0][:-6] + "AAAA==", altered.pk],
        )

    # when
    with keys(NEW_KEY, OLD_KEY), pytest.raises(CommandError) as excinfo:
        rotate()

    # then the command fails naming both rows
    message = str(excinfo.value)
    assert message.startswith("2 value(s) could not be decrypted")
    assert f"core.SecretNote.secret pk={lost.pk}: encrypted under key id 'gone'" in message
    assert (
        f"core.SecretNote.secret pk={altered.pk}: the value under key id 'old' failed authentication"
        in message
    )
    assert excinfo.value.returncode == 1
    # and the rows it could read are under the new key
    stored = stored_values(SecretNote)
    assert stored[good.pk][0].startswith("v2.new.")
    assert stored[lost.pk][0].startswith("v2.gone.")


def test_a_value_written_while_rotation_waits_for_its_row_is_not_overwritten():
    # given a row under the old key, and the application updating it in an open transaction
    note = notes_under_old_key(1)[0]
    locked, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def application_update():
        try:
            with transaction.atomic():
                changed = SecretNote.objects.get(pk=note.pk)
                changed.secret, changed.note = "tok_changed", "changed"
                changed.save(update_fields=["secret", "note"])
                locked.set()
                release.wait(10)
        except BaseException as exc:  # reported by the assertion on `errors`
            errors.append(exc)
        finally:
            connection.close()

    def rotation():
        try:
            rotate()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    with keys(NEW_KEY, OLD_KEY):
        writer = threading.Thread(target=application_update)
        rotator = threading.Thread(target=rotation)
        writer.start()
        try:
            assert locked.wait(10)
            rotator.start()
            # when the rotation is blocked on the row, the application commits
            _wait_for_a_lock_wait()
        finally:
            release.set()
            writer.join(10)
            if rotator.ident is not None:
                rotator.join(10)

        # then the application's values stand (a rotation that read them before the commit would
        # have written the old ones back), under the current key
        assert errors == []
        stored = stored_values(SecretNote)[note.pk]
        assert all(value.startswith("v2.new.") for value in stored)
        assert decrypt(stored[0], context="core.SecretNote.secret", row=str(note.pk)) == "tok_changed"
        assert decrypt(stored[1], context="core.SecretNote.note", row=str(note.pk)) == "changed"


def _wait_for_a_lock_wait(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the rotation never waited for the row the application holds")


def test_a_database_error_fails_with_a_one_line_reason_naming_the_field():
    notes_under_old_key(1)
    table = SecretNote._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME COLUMN note TO note_moved")
    try:
        with keys(NEW_KEY, OLD_KEY), pytest.raises(CommandError) as excinfo:
            rotate()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RENAME COLUMN note_moved TO note")

    assert str(excinfo.value).startswith("core.SecretNote.note: database error: column")
    assert "\n" not in str(excinfo.value)


def test_a_single_field_can_be_rotated_on_its_own():
    note = notes_under_old_key(1)[0]

    with keys(NEW_KEY, OLD_KEY):
        output = rotate(target="core.SecretNote.secret")

    secret, text = stored_values(SecretNote)[note.pk]
    assert secret.startswith("v2.new.")
    assert text.startswith("v2.old.")
    assert "core.SecretNote.note" not in output


def test_an_unknown_target_is_refused_by_name():
    with (
        keys(NEW_KEY, OLD_KEY),
        pytest.raises(CommandError, match="No EncryptedTextField matches core.Nothing"),
    ):
        call_command("rotate_encryption_key", "core.Nothing", stdout=io.StringIO())


def test_a_malformed_key_setting_fails_with_its_reason_and_changes_nothing():
    notes_under_old_key(1)
    before = stored_values(SecretNote)

    with (
        keys("new:dG9vLXNob3J0", OLD_KEY),
        pytest.raises(CommandError, match="entry 1 .'new'.: the key must be 32"),
    ):
        rotate()

    assert stored_values(SecretNote) == before


def test_an_invalid_batch_size_is_refused():
    with pytest.raises(CommandError, match="batch-size"):
        rotate("--batch-size", "0")


def test_help_describes_the_options():
    text = Command().create_parser("manage.py", "rotate_encryption_key").format_help()

    assert "--dry-run" in text
    assert "--batch-size" in text
    assert "FIELD_ENCRYPTION_KEYS" in text
