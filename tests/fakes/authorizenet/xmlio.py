"""Authorize.Net's XML as the fake reads and writes it, independently of the SDK the gateway uses.

Requests are read with ElementTree into flat dicts of the fields the fake acts on. Answers are
written the way Authorize.Net writes them: a UTF-8 byte-order mark, the XML declaration, the
schema's namespace as the default one, `messages` with `resultCode` and codes, and for
transactions a `transactionResponse` in the schema's order, followed (as real answers are) by an
element the SDK's copy of the schema does not know.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal
from typing import Any

from tests.fakes.authorizenet.book import TEST_CARDS, Outcome

NAMESPACE = "AnetApi/xml/v1/schema/AnetApiSchema.xsd"
BOM = b"\xef\xbb\xbf"
_N = f"{{{NAMESPACE}}}"
# Request fields the fake reads, wherever they are in the document.
_FIELDS = (
    "name",
    "transactionKey",
    "refId",
    "transactionType",
    "amount",
    "currencyCode",
    "dataValue",
    "customerProfileId",
    "paymentProfileId",
    "customerPaymentProfileId",
    "cardNumber",
    "refTransId",
    "invoiceNumber",
    "description",
    "transId",
    "status",
    "limit",
    "offset",
    "action",
    "batchId",
    "firstSettlementDate",
    "lastSettlementDate",
)


def read(body: bytes) -> tuple[str, dict[str, Any]]:
    """(root element, fields) of a request; duplicateWindow read from its setting."""
    root = ET.fromstring(body)  # noqa: S314  (the tests' own gateway is the only client)
    element = root.tag.removeprefix(_N)
    fields: dict[str, Any] = {}
    for node in root.iter():
        tag = node.tag.removeprefix(_N)
        if tag in _FIELDS and tag not in fields and node.text is not None:
            fields[tag] = node.text.strip()
    for setting in root.iter(f"{_N}setting"):
        if setting.findtext(f"{_N}settingName") == "duplicateWindow":
            fields["duplicateWindow"] = setting.findtext(f"{_N}settingValue") or ""
    return element, fields


def _add(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = str(text)
    return child


def _root(element: str, *, ok: bool, code: str, text: str, ref_id: str = "") -> ET.Element:
    root = ET.Element(element)
    root.set("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
    root.set("xmlns:xsd", "http://www.w3.org/2001/XMLSchema")
    root.set("xmlns", NAMESPACE)
    if ref_id:
        _add(root, "refId", ref_id)
    messages = _add(root, "messages")
    _add(messages, "resultCode", "Ok" if ok else "Error")
    message = _add(messages, "message")
    _add(message, "code", code)
    _add(message, "text", text)
    return root


def write(root: ET.Element, *, unknown_before_trans_id: bool = False) -> bytes:
    body = ET.tostring(root, encoding="unicode")
    if unknown_before_trans_id:
        body = body.replace("<transId>", "<brandNewField>1</brandNewField><transId>", 1)
    return BOM + b'<?xml version="1.0" encoding="utf-8"?>' + body.encode()


def refusal(element: str, code: str, text: str) -> ET.Element:
    return _root(element.replace("Request", "Response"), ok=False, code=code, text=text)


def transaction_answer(element: str, outcome: Outcome, *, ref_id: str = "") -> ET.Element:
    approved = outcome.code in ("1", "4")
    root = _root(
        element.replace("Request", "Response"),
        ok=approved,
        code="I00001" if approved else "E00027",
        text="Successful." if approved else "The transaction was unsuccessful.",
        ref_id=ref_id,
    )
    response = _add(root, "transactionResponse")
    _add(response, "responseCode", outcome.code)
    _add(response, "authCode", outcome.auth_code)
    _add(response, "avsResultCode", "Y" if outcome.code != "3" else "P")
    _add(response, "cvvResultCode", "P" if outcome.reason not in ("44", "45", "65") else "N")
    _add(response, "cavvResultCode", "2")
    _add(response, "transId", outcome.trans_id)
    _add(response, "refTransID", outcome.ref_trans_id)
    _add(response, "transHash")
    _add(response, "testRequest", "0")
    _add(response, "accountNumber", f"XXXX{outcome.card.last4}" if outcome.card else "")
    _add(response, "accountType", outcome.card.brand if outcome.card else "")
    if approved:
        notes = _add(_add(response, "messages"), "message")
        _add(notes, "code", outcome.reason)
        _add(notes, "description", outcome.text)
    else:
        problem = _add(_add(response, "errors"), "error")
        _add(problem, "errorCode", outcome.reason)
        _add(problem, "errorText", outcome.text)
    _add(response, "transHashSha2")
    _add(
        response, "SupplementalDataQualificationIndicator", "0"
    )  # real answers carry it; the SDK's schema does not
    return root


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def details(txn: dict[str, Any]) -> ET.Element:
    root = _root("getTransactionDetailsResponse", ok=True, code="I00001", text="Successful.")
    found = _add(root, "transaction")
    _add(found, "transId", txn["transId"])
    if txn["ref_trans_id"]:
        _add(found, "refTransId", txn["ref_trans_id"])
    _add(found, "submitTimeUTC", txn["submitted"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    _add(found, "transactionType", txn["type"])
    _add(found, "transactionStatus", txn["status"])
    _add(found, "responseCode", txn["response_code"])
    _add(found, "responseReasonCode", txn["reason"])
    _add(found, "responseReasonDescription", txn["reason_text"])
    _add(found, "authCode", txn["auth_code"])
    order = _add(found, "order")
    _add(order, "invoiceNumber", txn["invoice"])
    _add(order, "description", txn["description"])
    _add(found, "authAmount", _money(txn["auth_amount"]))
    _add(found, "settleAmount", _money(txn["settle_amount"]))
    card = _add(_add(found, "payment"), "creditCard")
    _add(card, "cardNumber", f"XXXX{TEST_CARDS[txn['card']].last4}")
    _add(card, "expirationDate", "XXXX")
    _add(card, "cardType", TEST_CARDS[txn["card"]].brand)
    _add(found, "recurringBilling", "false")
    _add(found, "product", "Card Not Present")
    _add(found, "marketType", "eCommerce")
    return root


def transaction_list(element: str, transactions: list[dict[str, Any]]) -> ET.Element:
    if not transactions:
        return _root(element, ok=True, code="I00004", text="No records found.")
    root = _root(element, ok=True, code="I00001", text="Successful.")
    listed = _add(root, "transactions")
    for txn in transactions:
        summary = _add(listed, "transaction")
        _add(summary, "transId", txn["transId"])
        _add(summary, "submitTimeUTC", txn["submitted"].strftime("%Y-%m-%dT%H:%M:%SZ"))
        _add(summary, "submitTimeLocal", txn["submitted"].strftime("%Y-%m-%dT%H:%M:%S"))
        _add(summary, "transactionStatus", txn["status"])
        if txn["invoice"]:
            _add(summary, "invoiceNumber", txn["invoice"])
        _add(summary, "accountType", TEST_CARDS[txn["card"]].brand)
        _add(summary, "accountNumber", f"XXXX{TEST_CARDS[txn['card']].last4}")
        _add(summary, "settleAmount", _money(txn["settle_amount"] or txn["auth_amount"]))
        _add(summary, "marketType", "eCommerce")
        _add(summary, "product", "Card Not Present")
    _add(root, "totalNumInResultSet", len(transactions))
    return root


def batch_list(batches: list[dict[str, Any]]) -> ET.Element:
    if not batches:
        return _root("getSettledBatchListResponse", ok=True, code="I00004", text="No records found.")
    root = _root("getSettledBatchListResponse", ok=True, code="I00001", text="Successful.")
    listed = _add(root, "batchList")
    for batch in batches:
        item = _add(listed, "batch")
        _add(item, "batchId", batch["batchId"])
        _add(item, "settlementTimeUTC", batch["settled"].strftime("%Y-%m-%dT%H:%M:%SZ"))
        _add(item, "settlementTimeLocal", batch["settled"].strftime("%Y-%m-%dT%H:%M:%S"))
        _add(item, "settlementState", "settledSuccessfully")
        _add(item, "paymentMethod", "creditCard")
    return root


def payment_profile(customer: str, payment: str, card_name: str) -> ET.Element:
    root = _root("getCustomerPaymentProfileResponse", ok=True, code="I00001", text="Successful.")
    profile = _add(root, "paymentProfile")
    _add(profile, "customerProfileId", customer)
    _add(profile, "customerPaymentProfileId", payment)
    card = _add(_add(profile, "payment"), "creditCard")
    _add(card, "cardNumber", f"XXXX{TEST_CARDS[card_name].last4}")
    _add(card, "expirationDate", "XXXX")
    _add(card, "cardType", TEST_CARDS[card_name].brand)
    return root
