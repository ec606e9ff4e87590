"""An InputSerializer refuses a field it does not declare (400 `parameter_unknown` naming it, at
any depth); free-form objects keep any key."""

import pytest
from rest_framework import serializers

from apps.core.exception_handler import api_exception_handler
from apps.core.fields import AmountField, MetadataField, TextField
from apps.core.serializers import InputSerializer


class AddressInput(InputSerializer):
    city = TextField(max_length=100)


class OrderInput(InputSerializer):
    amount = AmountField()
    shipping = AddressInput(required=False)
    lines = serializers.ListField(child=AddressInput(), required=False)
    metadata = MetadataField(required=False)
    id = serializers.CharField(read_only=True)


def error_of(data) -> dict:
    serializer = OrderInput(data=data)
    with pytest.raises(serializers.ValidationError) as raised:
        serializer.is_valid(raise_exception=True)
    response = api_exception_handler(raised.value, {})
    assert response is not None
    assert response.status_code == 400
    return response.data["error"]


def test_an_unknown_field_is_named_before_the_missing_ones():
    error = error_of({"amout": 100})
    assert (error["code"], error["param"]) == ("parameter_unknown", "amout")
    assert error["message"] == "Received unknown parameter: amout"


def test_an_unknown_field_of_a_nested_object_is_named_by_its_path():
    error = error_of({"amount": 100, "shipping": {"city": "Oslo", "zip": "0150"}})
    assert (error["code"], error["param"]) == ("parameter_unknown", "shipping.zip")
    assert error["message"] == "Received unknown parameter: shipping.zip"


def test_an_unknown_field_in_a_list_of_objects_is_named_by_its_index():
    error = error_of({"amount": 100, "lines": [{"city": "Oslo"}, {"city": "Rome", "x": 1}]})
    assert (error["code"], error["param"]) == ("parameter_unknown", "lines[1].x")


def test_a_read_only_field_is_not_input():
    assert error_of({"amount": 100, "id": "pay_1"})["param"] == "id"


def test_free_form_metadata_keeps_any_key():
    serializer = OrderInput(data={"amount": 100, "metadata": {"anything": "goes", "amout": 1}})
    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["metadata"] == {"anything": "goes", "amout": 1}


def test_other_errors_keep_their_codes():
    assert error_of({})["code"] == "parameter_missing"
    assert error_of({"amount": "10"})["code"] == "parameter_invalid"
    assert error_of(["amount"])["code"] == "parameter_invalid"
