"""Field encryption: tokens, keys and rotation support, and EncryptedTextField on PostgreSQL."""

import base64
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.apps import apps
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import connection, models, transaction
from django.test import override_settings
from django.test.utils import isolate_apps

from apps.core.crypto import (
    EncryptedTextField,
    MalformedToken,
    TamperedToken,
    UnknownKeyId,
    check_field_encryption_keys,
    current_key_id,
    decrypt,
    encrypt,
    needs_rotation,
)

CONTEXT = "vault.Card.number_token"
ROW = "card_01"  # the primary key of the row a value belongs to
KEY_BYTES = bytes(range(200, 232))  # base64 spells it with '/' and '+' in standard, '_' and '-' urlsafe
OLD_KEY = f"old:{base64.b64encode(b'o' * 32).decode()}"
NEW_KEY = f"new:{base64.urlsafe_b64encode(KEY_BYTES).decode()}"


def keys(*entries: str):
    return override_settings(FIELD_ENCRYPTION_KEYS=list(entries))


class SecretNote(models.Model):
    """A table only these tests create: see `secret_note_table`."""

    secret = EncryptedTextField(null=True, blank=True)
    note = EncryptedTextField(blank=True, default="")

    class Meta:
        app_label = "core"
        managed = False

    def __str__(self) -> str:
        return f"note {self.pk}"


def _unregister(model: type[models.Model]) -> None:
    del apps.all_models[model._meta.app_label][model._meta.model_name]
    apps.clear_cache()


# Declared here, registered only while a test has its table: no other test (nor a rotation run
# elsewhere in the suite) ever sees a model whose table does not exist.
_unregister(SecretNote)


@pytest.fixture
def secret_note_table():
    apps.register_model("core", SecretNote)
    try:
        with connection.schema_editor() as editor:
            editor.create_model(SecretNote)
        yield SecretNote
        # Inside a test transaction the rollback drops the table; a transactional test must.
        if not connection.in_atomic_block:
            with connection.schema_editor() as editor:
                editor.delete_model(SecretNote)
    finally:
        _unregister(SecretNote)


def stored_values(model: type[models.Model]) -> dict[int, tuple[str | None, str | None]]:
    """What the database really holds, read around the field."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, secret, note FROM {model._meta.db_table}")  # noqa: S608
        return {pk: (secret, note) for pk, secret, note in cursor.fetchall()}


# --- tokens ---------------------------------------------------------------------------------------


@keys(NEW_KEY)
def test_encrypt_then_decrypt_returns_the_text():
    for text in ["tok_visa", "café ☕ — 東京", "x" * 10_000, ""]:
        assert decrypt(encrypt(text, context=CONTEXT, row=ROW), context=CONTEXT, row=ROW) == text


@keys(NEW_KEY)
def test_a_token_names_version_and_key_and_hides_the_text():
    token = encrypt("tok_mastercard", context=CONTEXT, row=ROW)

    version, kid, payload = token.split(".")
    assert (version, kid) == ("v2", "new")
    assert "tok_mastercard" not in token
    assert base64.urlsafe_b64decode(payload)  # url-safe: fits a URL, a header or a CSV cell


@keys(NEW_KEY)
def test_the_same_text_encrypts_differently_every_time():
    assert encrypt("tok_visa", context=CONTEXT, row=ROW) != encrypt("tok_visa", context=CONTEXT, row=ROW)


@keys(NEW_KEY)
def test_a_token_moved_to_another_column_does_not_decrypt():
    token = encrypt("tok_visa", context=CONTEXT, row=ROW)

    with pytest.raises(TamperedToken, match="another field") as excinfo:
        decrypt(token, context="accounts.User.email", row=ROW)
    assert excinfo.value.context == "accounts.User.email"


@keys(NEW_KEY)
@pytest.mark.parametrize("position", [0, 11, 12, 20, -1])
def test_a_token_altered_anywhere_does_not_decrypt(position):
    # given a token with one bit flipped in its nonce, ciphertext or tag
    version, kid, payload = encrypt("tok_visa", context=CONTEXT, row=ROW).split(".")
    blob = bytearray(base64.urlsafe_b64decode(payload))
    blob[position] ^= 0x01
    altered = f"{version}.{kid}.{base64.urlsafe_b64encode(bytes(blob)).decode()}"

    # then
    with pytest.raises(TamperedToken, match="failed authentication"):
        decrypt(altered, context=CONTEXT, row=ROW)


@keys(NEW_KEY)
def test_a_truncated_token_does_not_decrypt():
    token = encrypt("tok_visa", context=CONTEXT, row=ROW)

    with pytest.raises(TamperedToken):
        decrypt(token[:-8], context=CONTEXT, row=ROW)
    with pytest.raises(TamperedToken, match="truncated"):
        decrypt("v1.new.AAAA", context=CONTEXT, row=ROW)


@keys(NEW_KEY)
@pytest.mark.parametrize(
    "value", ["tok_visa", "", "v3.new.AAAA", "v1..AAAA", "v1.new", "v1.new.not*base64", None]
)
def test_a_value_that_is_no_token_is_named_as_such(value):
    with pytest.raises(MalformedToken, match=r"not an encrypted value") as excinfo:
        decrypt(value, context=CONTEXT, row=ROW)
    assert str(excinfo.value).startswith(CONTEXT)


def test_a_token_under_a_key_no_longer_configured_names_its_key_id():
    with keys(OLD_KEY):
        token = encrypt("tok_visa", context=CONTEXT, row=ROW)

    with keys(NEW_KEY), pytest.raises(UnknownKeyId, match="key id 'old'"):
        decrypt(token, context=CONTEXT, row=ROW)


def test_the_first_key_encrypts_and_every_key_decrypts():
    # given values written before the rotation
    with keys(OLD_KEY):
        old_token = encrypt("tok_visa", context=CONTEXT, row=ROW)

    # when the new key is put first
    with keys(NEW_KEY, OLD_KEY):
        new_token = encrypt("tok_visa", context=CONTEXT, row=ROW)

        # then both read, only the old one asks for rotation
        assert current_key_id() == "new"
        assert new_token.startswith("v2.new.")
        assert (
            decrypt(old_token, context=CONTEXT, row=ROW)
            == decrypt(new_token, context=CONTEXT, row=ROW)
            == "tok_visa"
        )
        assert needs_rotation(old_token) is True
        assert needs_rotation(new_token) is False


def test_needs_rotation_refuses_what_is_not_a_token():
    with keys(NEW_KEY), pytest.raises(MalformedToken):
        needs_rotation("tok_visa")


def test_a_key_reads_the_same_in_standard_and_urlsafe_base64_with_or_without_padding():
    standard = base64.b64encode(KEY_BYTES).decode()
    urlsafe = base64.urlsafe_b64encode(KEY_BYTES).decode()
    assert "/" in standard
    assert "_" in urlsafe

    with keys(f"k:{standard}"):
        token = encrypt("tok_visa", context=CONTEXT, row=ROW)
    for spelling in [urlsafe, urlsafe.rstrip("="), standard.rstrip("=")]:
        with keys(f"k:{spelling}"):
            assert decrypt(token, context=CONTEXT, row=ROW) == "tok_visa"


def test_a_comma_separated_string_setting_is_read_as_a_list():
    with override_settings(FIELD_ENCRYPTION_KEYS=f"{NEW_KEY}, {OLD_KEY}"):
        assert current_key_id() == "new"


SECRET_KEY_MATERIAL = base64.b64encode(b"s" * 16).decode()


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        ([SECRET_KEY_MATERIAL], "must read 'kid:base64-key'"),
        ([f"a.b:{SECRET_KEY_MATERIAL}"], "must read 'kid:base64-key'"),
        ([f"short:{SECRET_KEY_MATERIAL}"], "must be 32 bytes"),
        ([f"bad:{SECRET_KEY_MATERIAL}!!"], "must be 32 bytes"),
        ([NEW_KEY, NEW_KEY], "appears twice"),
    ],
)
def test_a_malformed_key_setting_is_refused_without_echoing_the_key(entries, reason):
    with keys(*entries):
        with pytest.raises(ImproperlyConfigured, match=reason) as excinfo:
            encrypt("tok_visa", context=CONTEXT, row=ROW)
        assert SECRET_KEY_MATERIAL not in str(excinfo.value)
        assert NEW_KEY.split(":")[1] not in str(excinfo.value)

        # and `manage.py check` says so before the first save does
        errors = check_field_encryption_keys()
        assert [error.id for error in errors] == ["core.E101"]
        assert reason in errors[0].msg


def test_without_keys_tests_use_a_dev_key_derived_from_the_secret_key():
    with keys(), override_settings(SECRET_KEY="one-secret-key-for-this-test-0123456789abcdef"):
        token = encrypt("tok_visa", context=CONTEXT, row=ROW)
        assert current_key_id() == "dev"
        assert check_field_encryption_keys() == []

    with keys(), override_settings(SECRET_KEY="one-secret-key-for-this-test-0123456789abcdef"):
        assert decrypt(token, context=CONTEXT, row=ROW) == "tok_visa"
    # another SECRET_KEY derives another key: the cached key followed the setting
    with (
        keys(),
        override_settings(SECRET_KEY="another-secret-key-entirely-0123456789abcdef"),
        pytest.raises(TamperedToken),
    ):
        decrypt(token, context=CONTEXT, row=ROW)


def test_without_keys_local_development_with_debug_uses_the_dev_key():
    with keys(), override_settings(SETTINGS_MODULE="config.settings.local", DEBUG=True):
        assert encrypt("tok_visa", context=CONTEXT, row=ROW).startswith("v2.dev.")


def test_without_keys_production_settings_refuse_to_encrypt():
    with keys(), override_settings(SETTINGS_MODULE="config.settings.production", DEBUG=False):
        with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS is empty"):
            encrypt("tok_visa", context=CONTEXT, row=ROW)
        assert [error.id for error in check_field_encryption_keys()] == ["core.E101"]


def test_encryption_needs_a_context():
    with keys(NEW_KEY), pytest.raises(ValueError, match="context is required"):
        encrypt("tok_visa", context="", row=ROW)


# --- EncryptedTextField --------------------------------------------------------------------------


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
def test_the_column_holds_ciphertext_and_the_model_the_text():
    # when
    note = SecretNote.objects.create(secret="tok_visa", note="call back at 555-0142")

    # then the database holds tokens only
    secret, stored_note = stored_values(SecretNote)[note.pk]
    assert secret.startswith("v2.new.")
    assert stored_note.startswith("v2.new.")
    assert "tok_visa" not in secret
    assert "555-0142" not in stored_note
    # and every read gives the text back
    fetched = SecretNote.objects.get(pk=note.pk)
    assert (fetched.secret, fetched.note) == ("tok_visa", "call back at 555-0142")
    assert list(SecretNote.objects.values_list("secret", flat=True)) == ["tok_visa"]


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
def test_empty_and_null_values_are_stored_as_they_are():
    note = SecretNote.objects.create(secret=None, note="")

    assert stored_values(SecretNote)[note.pk] == (None, "")
    fetched = SecretNote.objects.get(pk=note.pk)
    assert (fetched.secret, fetched.note) == (None, "")


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
def test_updates_through_the_queryset_take_a_value_sealed_for_the_row():
    note = SecretNote.objects.create(secret="tok_visa")
    field = SecretNote._meta.get_field("secret")

    SecretNote.objects.filter(pk=note.pk).update(secret=field.seal("tok_mastercard", pk=note.pk))

    assert "tok_mastercard" not in stored_values(SecretNote)[note.pk][0]
    note.refresh_from_db()
    assert note.secret == "tok_mastercard"


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
def test_plain_text_through_the_queryset_is_refused_and_nothing_is_written():
    # an UPDATE knows no row to bind the value to
    note = SecretNote.objects.create(secret="tok_visa")
    before = stored_values(SecretNote)

    with (
        pytest.raises(FieldError, match=r"core\.SecretNote\.secret is encrypted for its row"),
        transaction.atomic(),
    ):
        SecretNote.objects.filter(pk=note.pk).update(secret="tok_mastercard")

    assert stored_values(SecretNote) == before


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
def test_a_ciphertext_copied_into_another_column_does_not_decrypt():
    # given someone with database access copies one column's value into another
    note = SecretNote.objects.create(secret="tok_visa", note="")
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {SecretNote._meta.db_table} SET note = secret")  # noqa: S608

    # then reading it fails loudly instead of handing out the other column's secret
    with pytest.raises(TamperedToken, match=r"^core\.SecretNote\.note: "):
        SecretNote.objects.get(pk=note.pk)


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
def test_a_ciphertext_copied_into_another_row_of_the_same_column_does_not_decrypt():
    # given someone with database access copies one customer's token over another's, same column
    victim = SecretNote.objects.create(secret="tok_victims_card", note="")
    attacker = SecretNote.objects.create(secret="tok_attackers_card", note="")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {SecretNote._meta.db_table} SET secret = %s WHERE id = %s",  # noqa: S608
            [stored_values(SecretNote)[victim.pk][0], attacker.pk],
        )

    # then the copy is refused wherever it is read, naming the field and never the plaintext
    with pytest.raises(TamperedToken, match=r"^core\.SecretNote\.secret: .*another field or row") as excinfo:
        SecretNote.objects.get(pk=attacker.pk)
    assert "tok_victims_card" not in str(excinfo.value)
    with pytest.raises(TamperedToken):
        list(SecretNote.objects.filter(pk=attacker.pk).values_list("secret", flat=True))
    # and the row it was copied from still reads
    assert SecretNote.objects.get(pk=victim.pk).secret == "tok_victims_card"


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
def test_a_row_whose_key_the_database_assigns_is_bound_to_that_key():
    # SecretNote's id is an AutoField: the sequence gives it before the insert
    note = SecretNote.objects.create(secret="tok_visa", note="")

    secret, _ = stored_values(SecretNote)[note.pk]
    assert decrypt(secret, context="core.SecretNote.secret", row=str(note.pk)) == "tok_visa"
    with pytest.raises(TamperedToken):
        decrypt(secret, context="core.SecretNote.secret", row=str(note.pk + 1))
    # and a later save keeps it bound to the same row
    note.secret = "tok_mastercard"
    note.save()
    assert SecretNote.objects.get(pk=note.pk).secret == "tok_mastercard"


def legacy_token(plaintext: str, *, context: str, kid: str, key: bytes) -> str:
    """A value as Paydesk wrote it before rows were bound (`v1`: the context alone is the AAD),
    built here with AES-GCM directly, not with the code under test."""
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
    return f"v1.{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
def test_a_value_written_before_rows_were_bound_still_reads():
    note = SecretNote.objects.create(secret=None, note="")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {SecretNote._meta.db_table} SET secret = %s WHERE id = %s",  # noqa: S608
            [legacy_token("tok_visa", context="core.SecretNote.secret", kid="new", key=KEY_BYTES), note.pk],
        )

    assert SecretNote.objects.get(pk=note.pk).secret == "tok_visa"
    assert needs_rotation(stored_values(SecretNote)[note.pk][0]) is True


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
@pytest.mark.parametrize(
    "lookup", ["secret", "secret__exact", "secret__icontains", "secret__startswith", "secret__in"]
)
def test_searching_an_encrypted_field_is_refused_with_the_reason(lookup):
    value = ["tok_visa"] if lookup.endswith("__in") else "tok_visa"

    with pytest.raises(FieldError, match=r"core\.SecretNote\.secret is encrypted .* can't be searched"):
        SecretNote.objects.filter(**{lookup: value}).exists()


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
def test_a_transform_on_an_encrypted_field_is_refused():
    with pytest.raises(FieldError, match="can't be searched"):
        SecretNote.objects.filter(secret__lower="tok_visa").exists()


@keys(NEW_KEY)
@pytest.mark.django_db
@pytest.mark.usefixtures("secret_note_table")
def test_isnull_is_the_one_lookup_allowed():
    with_secret = SecretNote.objects.create(secret="tok_visa")
    without_secret = SecretNote.objects.create(secret=None)

    assert list(SecretNote.objects.filter(secret__isnull=False)) == [with_secret]
    assert list(SecretNote.objects.filter(secret__isnull=True)) == [without_secret]


def test_the_context_is_the_model_label_and_field_name():
    assert SecretNote._meta.get_field("secret").encryption_context == "core.SecretNote.secret"
    assert SecretNote._meta.get_field("note").encryption_context == "core.SecretNote.note"


@pytest.mark.parametrize(
    ("field", "expected_kwargs"),
    [
        (EncryptedTextField(null=True, blank=True), {"null": True, "blank": True}),
        (
            EncryptedTextField(context="vault.Card.card_token"),
            {"context": "vault.Card.card_token"},
        ),
    ],
)
def test_the_field_deconstructs_for_migrations(field, expected_kwargs):
    name, path, args, kwargs = field.deconstruct()

    assert path == "apps.core.crypto.EncryptedTextField"
    assert (args, kwargs) == ([], expected_kwargs)
    assert EncryptedTextField(*args, **kwargs).deconstruct()[1:] == (path, args, kwargs)


@isolate_apps("apps.core")
def test_a_pinned_context_survives_renaming_the_model():
    class RenamedNote(models.Model):  # noqa: DJ008
        secret = EncryptedTextField(context="core.SecretNote.secret")

        class Meta:
            app_label = "core"

    assert RenamedNote._meta.get_field("secret").encryption_context == "core.SecretNote.secret"


@isolate_apps("apps.core")
@pytest.mark.parametrize("option", [{"unique": True}, {"db_index": True}, {"primary_key": True}])
def test_a_unique_or_indexed_encrypted_field_fails_the_system_check(option):
    class Indexed(models.Model):  # noqa: DJ008
        secret = EncryptedTextField(**option)

        class Meta:
            app_label = "core"

    errors = Indexed._meta.get_field("secret").check()

    assert "core.E102" in [error.id for error in errors]
