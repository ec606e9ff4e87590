"""An OutputSerializer's fast path writes exactly what DRF's own serialization of its fields writes."""

from datetime import UTC, datetime
from types import SimpleNamespace

from rest_framework import serializers

from apps.core.serializers import ConstantField, OptionalTextField, OutputSerializer, TimestampField


class ThingSerializer(OutputSerializer):
    id = serializers.CharField(source="pk")
    object = ConstantField("thing")
    count = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["a", "b"])
    note = OptionalTextField()
    owner = serializers.CharField(source="owner.name", allow_null=True)
    tags = serializers.ListField(child=serializers.CharField())
    extra = serializers.DictField()
    flag = serializers.BooleanField()
    at = TimestampField(allow_null=True)
    created_at = TimestampField()


def drf_representation(serializer_class, instance):
    return serializers.Serializer.to_representation(serializer_class(), instance)


def thing(**changes):
    values = {
        "pk": "th_1",
        "count": 3,
        "kind": "a",
        "note": "hello",
        "owner": SimpleNamespace(name="ada"),
        "tags": ["x", "y"],
        "extra": {"k": "v"},
        "flag": True,
        "at": datetime(2026, 12, 3, 12, 45, 9, 123456, tzinfo=UTC),
        "created_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    }
    return SimpleNamespace(**{**values, **changes})


def test_fast_output_equals_drf_serialization_of_the_declared_fields():
    for instance in (thing(), thing(note="", at=None, flag=False, tags=[], extra={}, count=0)):
        assert ThingSerializer.represent(instance) == drf_representation(ThingSerializer, instance)
        assert ThingSerializer(instance).data == ThingSerializer.represent(instance)


def test_the_output_fields_write_the_api_forms():
    assert ThingSerializer.represent(thing()) == {
        "id": "th_1",
        "object": "thing",
        "count": 3,
        "kind": "a",
        "note": "hello",
        "owner": "ada",
        "tags": ["x", "y"],
        "extra": {"k": "v"},
        "flag": True,
        "at": "2026-12-03T12:45:09.123456Z",
        "created_at": "2026-01-02T03:04:05Z",
    }
    blank = ThingSerializer.represent(thing(note="", at=None))
    assert (blank["note"], blank["at"]) == (None, None)


def test_a_timestamp_reads_as_drfs_own_datetime_field_writes_it():
    """The wallets' and transactions' `created_at` moved from DRF's DateTimeField to TimestampField:
    the same text for every instant the database gives (aware, UTC), with or without microseconds."""
    for instant in (
        datetime(2026, 12, 3, 12, 45, 9, 123456, tzinfo=UTC),
        datetime(2026, 12, 3, 12, 45, 9, tzinfo=UTC),
        datetime(2027, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    ):
        assert TimestampField().to_representation(instant) == serializers.DateTimeField().to_representation(
            instant
        )
