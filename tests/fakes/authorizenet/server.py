"""An Authorize.Net look-alike on 127.0.0.1: the XML API (`POST /xml/v1/request.api`) over real HTTP.

It answers as Authorize.Net does: the body starts with a byte-order mark, `messages.resultCode` is
"Ok" or "Error" with its codes (E00007 for bad credentials, E00040 for a record that is not there,
E00114 for a nonce that is unknown or already used), and a transaction request gets a
`transactionResponse` (responseCode 1 approved, 2 declined, 3 error, 4 held for review) followed by
an element the SDK's schema does not know (`SupplementalDataQualificationIndicator`, as real answers).

Requests: createTransactionRequest (authOnly, authCapture, priorAuthCapture, void, refund),
getTransactionDetailsRequest, getUnsettledTransactionListRequest (optionally `pendingApproval`),
getSettledBatchListRequest, getTransactionListRequest, updateHeldTransactionRequest,
getCustomerPaymentProfileRequest. Rules as Authorize.Net's: a nonce pays once; a charge or refund
sent again within its duplicate window with the same amount, invoice number and card is answered
responseCode 3, reason 11, with the first transaction's id; a capture may be partial (the rest is
released); a refund needs a settled charge (`settle()` runs the daily settlement) and the card's
last four digits; a held transaction is decided with updateHeldTransaction.

Test cards, as nonces (`nonce(card)`) or customer profiles (`profile(card)`): see
`book.TEST_CARDS` (visa, mastercard approve; declined; cvcMismatch; fraudDeclined; expired;
held for review).

Scripting (each applies to the next n requests that pass authentication): FakeStripe's
(tests/fakes/threaded_fake.py: `fail_next`, `fail_after_charge_next`, `hang_next`, `recover`), and
`garble_next(n)` (done, then half an answer), `processor_error_next(n, reason)` (a responseCode 3 for that reason, nothing done),
`unknown_element_next(n)` (an element the SDK does not know, before the transId).
Inspection: `requests`, `transactions`, `charges_made`, `transaction(trans_id)`.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.fakes.authorizenet import xmlio
from tests.fakes.authorizenet.book import Book, Outcome
from tests.fakes.threaded_fake import QuietServer, ThreadedFake

API_PATH = "/xml/v1/request.api"
LOGIN_ID = "paydesk-fake-login"
TRANSACTION_KEY = "fake-transaction-key"  # nosec B105 - a test double's credential


@dataclass(frozen=True)
class RecordedRequest:
    element: str
    fields: dict[str, Any]

    @property
    def kind(self) -> str:
        """The transaction type of a createTransactionRequest, else the request's element."""
        return self.fields.get("transactionType") or self.element


class _Handler(BaseHTTPRequestHandler):
    server: QuietServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        status, body = self.server.fake.handle(self.path, self.rfile.read(length))
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped waiting (a scripted hang)

    def log_message(self, format: str, *args: Any) -> None:
        return


class FakeAuthorizeNet(ThreadedFake):
    """`with FakeAuthorizeNet() as anet:`; point AUTHORIZENET_API_URL at `anet.url`."""

    handler = _Handler

    def __init__(self, *, login_id: str = LOGIN_ID, transaction_key: str = TRANSACTION_KEY) -> None:
        super().__init__()
        self.login_id, self.transaction_key = login_id, transaction_key
        self.book = Book()
        self._requests: list[RecordedRequest] = []
        self._processor_errors: deque[str] = deque()
        self._garbled = self._unknown_elements = 0

    @property
    def url(self) -> str:
        return f"{self.origin}{API_PATH}"

    # --- what a client-side integration makes ---------------------------------------------------
    def nonce(self, card: str = "visa") -> str:
        """An Accept.js nonce of a test card, as Paydesk takes it: `anet_nonce:<dataValue>`."""
        with self._lock:
            return f"anet_nonce:{self.book.nonce(card)}"

    def profile(self, card: str = "visa") -> str:
        """A stored customer payment profile: `anet_profile:<customerProfileId>/<paymentProfileId>`."""
        with self._lock:
            customer, payment = self.book.profile(card)
        return f"anet_profile:{customer}/{payment}"

    def settle(self) -> str:
        with self._lock:
            return self.book.settle()

    # --- the merchant's dashboard: changes made at Authorize.Net, not through Paydesk --------------
    def dashboard_decide(self, trans_id: str, *, approve: bool) -> None:
        with self._lock:
            outcome = self.book.decide_held(
                {"refTransId": trans_id, "action": "approve" if approve else "decline"}
            )
        assert outcome.code == "1", outcome

    def dashboard_void(self, trans_id: str) -> None:
        with self._lock:
            outcome = self.book.void({"refTransId": trans_id})
        assert outcome.code == "1", outcome

    # --- scripting (besides ThreadedFake's) ----------------------------------------------------
    def garble_next(self, n: int = 1) -> None:
        with self._lock:
            self._garbled += n

    def processor_error_next(self, n: int = 1, reason: str = "19") -> None:
        with self._lock:
            self._processor_errors.extend([reason] * n)

    def unknown_element_next(self, n: int = 1) -> None:
        with self._lock:
            self._unknown_elements += n

    # --- inspection -----------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def sent(self, kind: str) -> list[RecordedRequest]:
        """The requests of one kind: a transaction type (authCaptureTransaction...) or an element."""
        return [request for request in self.requests if request.kind == kind]

    @property
    def transactions(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self.book.transactions.values()))

    @property
    def charges_made(self) -> int:
        """Charges that took (or hold) money: approved or held authorizations and captures."""
        return sum(
            txn["type"] in {"authCaptureTransaction", "authOnlyTransaction", "priorAuthCaptureTransaction"}
            and txn["status"] != "declined"
            for txn in self.transactions
        )

    def transaction(self, trans_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.book.transactions[trans_id])

    # --- requests -------------------------------------------------------------------------------
    def handle(self, path: str, body: bytes) -> tuple[int, bytes]:
        if path != API_PATH:
            return 404, b"Not Found"
        try:
            element, fields = xmlio.read(body)
        except Exception:
            return 200, xmlio.write(xmlio.refusal("ErrorRequest", "E00003", "The XML could not be parsed."))
        with self._lock:
            self._requests.append(RecordedRequest(element, fields))
            if (fields.get("name"), fields.get("transactionKey")) != (self.login_id, self.transaction_key):
                return 200, xmlio.write(
                    xmlio.refusal(
                        element, "E00007", "User authentication failed due to invalid authentication values."
                    )
                )
            script = self._next_script()
            failure, lose = script.failure, script.lose_answer
            garble = failure is None and not lose and self._garbled > 0
            self._garbled -= garble
            unknown = self._unknown_elements > 0
            self._unknown_elements -= unknown
            processor_error = (
                self._processor_errors.popleft()
                if failure is None and element == "createTransactionRequest" and self._processor_errors
                else None
            )
            if failure is not None:
                status, answer = failure, b"<html>Service Unavailable</html>"
            elif processor_error is not None:
                outcome = Outcome(
                    code="3",
                    reason=processor_error,
                    text="An error occurred during processing. Please try again.",
                )
                status, answer = (
                    200,
                    xmlio.write(xmlio.transaction_answer(element, outcome, ref_id=fields.get("refId", ""))),
                )
            else:
                status, answer = (
                    200,
                    xmlio.write(self._execute(element, fields), unknown_before_trans_id=unknown),
                )
        if lose:
            status, answer = 500, b"<html>Internal Server Error</html>"
        if garble:
            answer = answer[: len(answer) // 2]
        self._wait(script.hang)
        return status, answer

    def _execute(self, element: str, fields: dict[str, Any]) -> Any:
        book = self.book
        if element == "createTransactionRequest":
            operation = {
                "authCaptureTransaction": book.charge,
                "authOnlyTransaction": book.charge,
                "priorAuthCaptureTransaction": book.prior_auth_capture,
                "voidTransaction": book.void,
                "refundTransaction": book.refund,
            }.get(fields.get("transactionType", ""))
            if operation is None:
                return xmlio.refusal(element, "E00003", "The transaction type is not supported.")
            return self._answer(element, operation(fields), fields)
        if element == "updateHeldTransactionRequest":
            return self._answer(element, book.decide_held(fields), fields)
        if element == "getTransactionDetailsRequest":
            txn = book.transactions.get(fields.get("transId", ""))
            return (
                xmlio.details(txn) if txn else xmlio.refusal(element, "E00040", "The record cannot be found.")
            )
        if element == "getUnsettledTransactionListRequest":
            listed = book.unsettled(held_only=fields.get("status") == "pendingApproval")
            return xmlio.transaction_list("getUnsettledTransactionListResponse", _page(listed, fields))
        if element == "getSettledBatchListRequest":
            first, last = (
                datetime.fromisoformat(fields[name]) for name in ("firstSettlementDate", "lastSettlementDate")
            )
            return xmlio.batch_list(book.settled_batches(first, last))
        if element == "getTransactionListRequest":
            listed = book.batch(fields.get("batchId", ""))
            if listed is None:
                return xmlio.refusal(element, "E00040", "The record cannot be found.")
            return xmlio.transaction_list("getTransactionListResponse", _page(listed, fields))
        if element == "getCustomerPaymentProfileRequest":
            key = (fields.get("customerProfileId", ""), fields.get("customerPaymentProfileId", ""))
            card = book.profiles.get(key)
            return (
                xmlio.payment_profile(*key, card)
                if card
                else xmlio.refusal(element, "E00040", "The record cannot be found.")
            )
        return xmlio.refusal(element, "E00003", f"The element '{element}' is not supported here.")

    @staticmethod
    def _answer(element: str, outcome: Outcome, fields: dict[str, Any]) -> Any:
        if outcome.error is not None:
            return xmlio.refusal(element, *outcome.error)
        return xmlio.transaction_answer(element, outcome, ref_id=fields.get("refId", ""))


def _page(listed: list[dict[str, Any]], fields: dict[str, Any]) -> list[dict[str, Any]]:
    limit = int(fields.get("limit") or 1000)
    offset = int(fields.get("offset") or 1)
    return listed[(offset - 1) * limit : offset * limit]
