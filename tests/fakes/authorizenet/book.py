"""The fake Authorize.Net's own state: transactions, nonces, customer profiles, settled batches, and
the rules Authorize.Net applies to them (what each request does, or why it is refused).

Each operation returns an `Outcome`: a transaction answer (responseCode, reason, transId...) or a
whole-request refusal (an E000nn message), which `xmlio` renders as Authorize.Net's XML.
"""

from __future__ import annotations

import base64
import itertools
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

APPROVED_TEXT = "This transaction has been approved."
DUPLICATE_TEXT = "A duplicate transaction has been submitted."
DEFAULT_WINDOW_SECONDS = 120


@dataclass(frozen=True)
class TestCard:
    brand: str  # accountType, as Authorize.Net writes it
    last4: str
    response_code: str = "1"  # 1 approve, 2 decline, 3 error, 4 hold for review
    reason: str = "1"
    text: str = APPROVED_TEXT


TEST_CARDS = {
    "visa": TestCard("Visa", "1111"),
    "mastercard": TestCard("MasterCard", "0015"),
    "amex": TestCard("AmericanExpress", "0002"),
    "declined": TestCard("Visa", "0027", "2", "2", "This transaction has been declined."),
    "cvcMismatch": TestCard("Visa", "0035", "2", "44", "This transaction has been declined."),
    "fraudDeclined": TestCard(
        "Visa",
        "0043",
        "2",
        "251",
        "The transaction was declined as a result of triggering a Fraud Detection Suite filter.",
    ),
    "expired": TestCard("Visa", "0050", "3", "8", "The credit card has expired."),
    "held": TestCard(
        "Visa", "0068", "4", "253", "Your order has been received. Thank you for your business!"
    ),
}


@dataclass
class Outcome:
    """What a request did: a transaction answer (`code` set), or a refusal (`error` = (E-code, text))."""

    code: str = ""
    reason: str = ""
    text: str = ""
    trans_id: str = "0"
    ref_trans_id: str = ""
    auth_code: str = ""
    card: TestCard | None = None
    error: tuple[str, str] | None = None
    body: dict[str, Any] = field(default_factory=dict)  # what a look-up answers


def refused(code: str, text: str) -> Outcome:
    return Outcome(error=(code, text))


def error(reason: str, text: str, **fields: Any) -> Outcome:
    return Outcome(code="3", reason=reason, text=text, **fields)


HELD = frozenset({"FDSPendingReview", "FDSAuthorizedPendingReview"})
UNSETTLED = frozenset(
    {
        "authorizedPendingCapture",
        "capturedPendingSettlement",
        "refundPendingSettlement",
        "declined",
        "voided",
        *HELD,
    }
)


class Book:
    """Transactions by transId; every method is called with the server's lock held."""

    def __init__(self) -> None:
        self.transactions: dict[str, dict[str, Any]] = {}
        self.nonces: dict[str, str] = {}  # dataValue -> card name
        self.spent: set[str] = set()
        self.profiles: dict[tuple[str, str], str] = {}  # (customer, payment profile) -> card name
        self.batches: list[dict[str, Any]] = []
        self._ids = itertools.count(60_000_000_001)

    # --- what a client-side integration makes -----------------------------------------------------
    def nonce(self, card: str) -> str:
        assert card in TEST_CARDS, card
        value = base64.b64encode(b'{"token":"' + secrets.token_hex(24).encode() + b'","v":"1.1"}').decode()
        self.nonces[value] = card
        return value

    def profile(self, card: str) -> tuple[str, str]:
        assert card in TEST_CARDS, card
        ids = (str(500_000 + len(self.profiles) * 2 + 1), str(600_000 + len(self.profiles) * 2 + 1))
        self.profiles[ids] = card
        return ids

    # --- transactions ------------------------------------------------------------------------------
    def charge(self, request: dict[str, Any]) -> Outcome:
        card_name = self._card_of(request)
        if isinstance(card_name, Outcome):
            return card_name
        card = TEST_CARDS[card_name]
        duplicate = self._duplicate(request, card_name)
        if duplicate is not None:
            return duplicate
        if request.get("dataValue"):
            self.spent.add(request["dataValue"])
        capture = request["transactionType"] == "authCaptureTransaction"
        if card.response_code == "3":
            return error(card.reason, card.text, card=card)
        status = {
            "1": "capturedPendingSettlement" if capture else "authorizedPendingCapture",
            "2": "declined",
            "4": "FDSPendingReview" if capture else "FDSAuthorizedPendingReview",
        }[card.response_code]
        txn = self._new(request, card_name, status=status)
        if status == "capturedPendingSettlement":
            txn["settle_amount"] = txn["auth_amount"]
        return self._answer(txn, card.response_code, card.reason, card.text)

    def prior_auth_capture(self, request: dict[str, Any]) -> Outcome:
        txn = self.transactions.get(request.get("refTransId", ""))
        if txn is None:
            return error("16", "The transaction cannot be found.")
        if txn["status"] == "capturedPendingSettlement" or txn["status"] == "settledSuccessfully":
            return error("311", "This transaction has already been captured.", trans_id=txn["transId"])
        if txn["status"] != "authorizedPendingCapture":
            return error("16", "The transaction cannot be found.")
        amount = Decimal(request.get("amount") or txn["auth_amount"])
        if amount > txn["auth_amount"]:
            return error(
                "47",
                "The amount requested for settlement cannot be greater than the original amount authorized.",
            )
        txn.update(
            status="capturedPendingSettlement", settle_amount=amount, type="priorAuthCaptureTransaction"
        )
        return self._answer(txn, "1", "1", APPROVED_TEXT)

    def void(self, request: dict[str, Any]) -> Outcome:
        txn = self.transactions.get(request.get("refTransId", ""))
        if txn is None:
            return error("16", "The transaction cannot be found.")
        if txn["status"] == "voided":
            return error("310", "This transaction has already been voided.", trans_id=txn["transId"])
        if txn["status"] not in {"authorizedPendingCapture", "capturedPendingSettlement", *HELD}:
            return error("16", "The transaction cannot be found.")
        txn["status"] = "voided"
        return self._answer(txn, "1", "1", APPROVED_TEXT)

    def refund(self, request: dict[str, Any]) -> Outcome:
        original = self.transactions.get(request.get("refTransId", ""))
        if original is None or original["status"] != "settledSuccessfully":
            return error("54", "The referenced transaction does not meet the criteria for issuing a credit.")
        if request.get("cardNumber") != TEST_CARDS[original["card"]].last4:
            return error("54", "The referenced transaction does not meet the criteria for issuing a credit.")
        amount = Decimal(request["amount"])
        if amount > original["settle_amount"] - original["refunded"]:
            return error(
                "55",
                "The sum of credits against the referenced transaction would exceed original debit amount.",
            )
        duplicate = self._duplicate(request, original["card"])
        if duplicate is not None:
            return duplicate
        original["refunded"] += amount
        txn = self._new(request, original["card"], status="refundPendingSettlement")
        txn.update(ref_trans_id=original["transId"], settle_amount=amount)
        outcome = self._answer(txn, "1", "1", APPROVED_TEXT)
        outcome.ref_trans_id = original["transId"]
        return outcome

    def decide_held(self, request: dict[str, Any]) -> Outcome:
        txn = self.transactions.get(request.get("refTransId", ""))
        if txn is None or txn["status"] not in HELD:
            return error("16", "The transaction cannot be found.")
        if request.get("action") == "approve":
            captured = txn["status"] == "FDSPendingReview"
            txn["status"] = "capturedPendingSettlement" if captured else "authorizedPendingCapture"
            if captured:
                txn["settle_amount"] = txn["auth_amount"]
        else:
            txn["status"] = "voided"
        return self._answer(txn, "1", "1", APPROVED_TEXT)

    def settle(self) -> str:
        """The daily settlement: captured charges and refunds settle, and every transaction no
        longer pending leaves the unsettled list for the new batch."""
        batch = {
            "batchId": str(9_000_000 + len(self.batches) + 1),
            "settled": datetime.now(UTC),
            "transactions": [],
        }
        for txn in self.transactions.values():
            if txn["batch"] is not None or txn["status"] in {"authorizedPendingCapture", *HELD}:
                continue
            txn["status"] = {
                "capturedPendingSettlement": "settledSuccessfully",
                "refundPendingSettlement": "refundSettledSuccessfully",
            }.get(txn["status"], txn["status"])
            txn["batch"] = batch["batchId"]
            batch["transactions"].append(txn["transId"])
        self.batches.append(batch)
        return batch["batchId"]

    # --- helpers --------------------------------------------------------------------------------
    def _card_of(self, request: dict[str, Any]) -> str | Outcome:
        if request.get("dataValue"):
            value = request["dataValue"]
            if value not in self.nonces or value in self.spent:
                return refused("E00114", "Invalid OTS Token.")
            return self.nonces[value]
        profile = (request.get("customerProfileId", ""), request.get("paymentProfileId", ""))
        if profile in self.profiles:
            return self.profiles[profile]
        return refused("E00040", "The record cannot be found.")

    def _duplicate(self, request: dict[str, Any], card_name: str) -> Outcome | None:
        window = timedelta(seconds=int(request.get("duplicateWindow") or DEFAULT_WINDOW_SECONDS))
        since = datetime.now(UTC) - window
        for txn in self.transactions.values():
            same = (txn["request_type"], txn["auth_amount"], txn["invoice"], txn["card"]) == (
                request["transactionType"],
                Decimal(request["amount"]),
                request.get("invoiceNumber", ""),
                card_name,
            )
            if same and txn["submitted"] >= since:
                return error(
                    "11",
                    DUPLICATE_TEXT,
                    trans_id=txn["transId"],
                    auth_code=txn["auth_code"],
                    card=TEST_CARDS[txn["card"]],
                )
        return None

    def _new(self, request: dict[str, Any], card_name: str, *, status: str) -> dict[str, Any]:
        trans_id = str(next(self._ids))
        txn = {
            "transId": trans_id,
            "type": request["transactionType"],
            "request_type": request["transactionType"],
            "status": status,
            "auth_amount": Decimal(request["amount"]),
            "settle_amount": Decimal("0.00"),
            "refunded": Decimal("0.00"),
            "invoice": request.get("invoiceNumber", ""),
            "description": request.get("description", ""),
            "ref_trans_id": "",
            "card": card_name,
            "reason": TEST_CARDS[card_name].reason,
            "reason_text": TEST_CARDS[card_name].text,
            "response_code": TEST_CARDS[card_name].response_code,
            "auth_code": secrets.token_hex(3).upper() if status != "declined" else "000000",
            "submitted": datetime.now(UTC),
            "batch": None,
        }
        self.transactions[trans_id] = txn
        return txn

    def _answer(self, txn: dict[str, Any], code: str, reason: str, text: str) -> Outcome:
        return Outcome(
            code=code,
            reason=reason,
            text=text,
            trans_id=txn["transId"],
            auth_code=txn["auth_code"],
            card=TEST_CARDS[txn["card"]],
        )

    # --- look-ups -------------------------------------------------------------------------------
    def unsettled(self, *, held_only: bool) -> list[dict[str, Any]]:
        listed = [
            txn
            for txn in self.transactions.values()
            if txn["batch"] is None and txn["status"] in UNSETTLED and ((txn["status"] in HELD) == held_only)
        ]
        return sorted(listed, key=lambda txn: txn["submitted"], reverse=True)

    def settled_batches(self, first: datetime, last: datetime) -> list[dict[str, Any]]:
        return [batch for batch in self.batches if first <= batch["settled"] <= last]

    def batch(self, batch_id: str) -> list[dict[str, Any]] | None:
        found = next((batch for batch in self.batches if batch["batchId"] == batch_id), None)
        return None if found is None else [self.transactions[trans_id] for trans_id in found["transactions"]]
