"""The wallet and transaction objects of API.md, declared once: what the wallets API returns and
what the events API (apps.events) carries in an event's `data.object`. `OutputSerializer`s: written
straight from their declared fields, equal to DRF's own output (apps/core/tests/test_serializers.py)."""

from __future__ import annotations

from rest_framework import serializers

from apps.core.serializers import OutputSerializer, TimestampField


class WalletOutputSerializer(OutputSerializer):
    id = serializers.CharField()
    currency = serializers.CharField()
    balance = serializers.IntegerField(help_text="Minor units of the currency.")
    status = serializers.CharField()
    created_at = TimestampField()


class TransactionOutputSerializer(OutputSerializer):
    id = serializers.CharField()
    type = serializers.CharField()
    status = serializers.CharField()
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    source_wallet = serializers.CharField(source="source_wallet_id", allow_null=True)
    destination_wallet = serializers.CharField(source="destination_wallet_id", allow_null=True)
    description = serializers.CharField(allow_null=True)
    failure_code = serializers.CharField(allow_null=True)
    failure_message = serializers.CharField(allow_null=True)
    created_at = TimestampField()
