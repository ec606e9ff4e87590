"""A local server that speaks Authorize.Net's XML API, for the tests (see `server`)."""

from tests.fakes.authorizenet.book import TEST_CARDS
from tests.fakes.authorizenet.server import LOGIN_ID, TRANSACTION_KEY, FakeAuthorizeNet

__all__ = ["LOGIN_ID", "TEST_CARDS", "TRANSACTION_KEY", "FakeAuthorizeNet"]
