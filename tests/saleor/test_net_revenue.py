"""Net revenue: cancellations and refunds of recovered orders reach the carts, through Saleor's real
order hooks (``orderCancel``; refunds reported by a payment app with ``transactionEventReport``)."""

import logging
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from saleor.account.models import Group
from saleor.order import OrderStatus
from saleor.payment import ChargeStatus, TransactionEventType, TransactionKind
from saleor.payment.models import Payment

from saleor_cart_recovery.experiments.report_json import report_data
from saleor_cart_recovery.models import CartStatus, RecoveryCart
from saleor_cart_recovery.plugin import CartRecoveryPlugin
from saleor_cart_recovery.saleor_host.shop import SaleorShop, order_ref
from saleor_cart_recovery.shop import OrderLookup

from .utils import create_checkout, gid, mutate

ORDER_CANCEL = """
mutation ($id: ID!) {
  orderCancel(id: $id) {
    order { id status }
    errors { field message code }
  }
}
"""
# What a payment app sends when its provider confirms a refund.
TRANSACTION_EVENT_REPORT = """
mutation ($token: UUID, $type: TransactionEventTypeEnum!, $amount: PositiveDecimal, $psp: String!) {
  transactionEventReport(token: $token, type: $type, amount: $amount, pspReference: $psp) {
    alreadyProcessed
    transaction { refundedAmount { amount } }
    errors { field message code }
  }
}
"""


@pytest.fixture
def recovered_order(api_client, cart_recovery, channel_USD, stocked_variant, complete_checkout):
    """A tracked cart whose checkout became an order (fully charged through a transaction item):
    the order hook recorded it on the cart, nothing refunded, not cancelled."""
    token = create_checkout(api_client, channel_USD, stocked_variant, quantity=2)
    order = complete_checkout(token)
    cart = RecoveryCart.objects.get(checkout_token=token)
    assert (cart.status, cart.order_id) == (CartStatus.CONVERTED, str(order.pk))
    assert (cart.order_total, cart.order_refunded, cart.order_cancelled) == (
        order.total_gross_amount,
        Decimal(0),
        False,
    )
    return order


@pytest.fixture
def order_manager(staff_api_client, permission_manage_orders):
    """Staff with MANAGE_ORDERS in every channel (the Dashboard's order managers)."""
    group = Group.objects.create(name="Order managers", restricted_access_to_channels=False)
    group.permissions.add(permission_manage_orders)
    staff_api_client.user.groups.add(group)
    return staff_api_client


@pytest.fixture
def payment_app(app_api_client, permission_manage_payments):
    """A payment app (HANDLE_PAYMENTS) reporting refunds its provider confirmed."""
    app_api_client.app.permissions.add(permission_manage_payments)

    def report_refund(order, amount: Decimal, psp_reference: str) -> Decimal:
        transaction = order.payment_transactions.get()
        variables = {
            "token": str(transaction.token),
            "type": TransactionEventType.REFUND_SUCCESS.upper(),
            "amount": amount,
            "psp": psp_reference,
        }
        payload = mutate(app_api_client, TRANSACTION_EVENT_REPORT, variables, "transactionEventReport")
        assert payload["alreadyProcessed"] is False
        return Decimal(str(payload["transaction"]["refundedAmount"]["amount"]))

    return report_refund


def cancel(client, order) -> dict:
    return mutate(client, ORDER_CANCEL, {"id": gid(order)}, "orderCancel")


def cart_of(order) -> RecoveryCart:
    return RecoveryCart.objects.get(order_id=str(order.pk))


def test_cancelling_the_order_in_saleor_marks_its_cart_cancelled(recovered_order, order_manager):
    # when staff cancel the recovered order in the Dashboard
    payload = cancel(order_manager, recovered_order)

    # then Saleor cancelled it, and the cart it converted knows
    assert payload["order"]["status"] == "CANCELED"
    cart = cart_of(recovered_order)
    assert (cart.status, cart.order_cancelled, cart.order_refunded) == (
        CartStatus.CONVERTED,
        True,
        Decimal(0),
    )


def test_a_partial_then_a_full_refund_reach_the_cart(recovered_order, payment_app):
    total = recovered_order.total_gross_amount

    # when the payment app reports a partial refund (Saleor calls order_refunded only)
    assert payment_app(recovered_order, Decimal("4.00"), "refund-1") == Decimal("4.00")

    # then the cart carries the amount refunded so far
    assert cart_of(recovered_order).order_refunded == Decimal("4.00")

    # when it reports the rest (Saleor calls order_refunded, then order_fully_refunded); with
    # order_refunded left out, order_fully_refunded alone must bring the cart up to date
    passed_over = mock.patch.object(
        CartRecoveryPlugin,
        "order_refunded",
        lambda self, order, previous_value, webhooks=None: previous_value,
    )
    with passed_over:
        assert payment_app(recovered_order, total - Decimal("4.00"), "refund-2") == total

    # then the whole total is refunded on the cart; the order itself stays as it was
    cart = cart_of(recovered_order)
    assert (cart.order_refunded, cart.order_cancelled, cart.order_total) == (total, False, total)


def test_a_failing_refund_hook_is_logged_and_the_cancellation_still_succeeds(
    recovered_order, order_manager, monkeypatch, caplog
):
    # given recording refunds blows up
    def broken(order, *, at):
        raise RuntimeError("database on fire")

    monkeypatch.setattr("saleor_cart_recovery.plugin.record_refund", broken)
    caplog.set_level(logging.ERROR, logger="saleor_cart_recovery")

    # when staff cancel the order
    payload = cancel(order_manager, recovered_order)

    # then Saleor cancelled it as usual
    assert payload["order"]["status"] == "CANCELED"
    recovered_order.refresh_from_db()
    assert recovered_order.status == OrderStatus.CANCELED
    # and the failure was logged with its traceback, the cart left as it was
    failures = [r for r in caplog.records if "could not record refunds" in r.getMessage()]
    assert failures and failures[0].exc_info[1].args == ("database on fire",)
    assert cart_of(recovered_order).order_cancelled is False


def test_find_orders_reads_refunds_and_cancellation(recovered_order, order_manager, payment_app):
    shop = SaleorShop()
    lookup = OrderLookup(
        recovered_order.checkout_token, "main", "shopper@example.com", recovered_order.created_at
    )

    # given a partial refund reported by the payment app
    payment_app(recovered_order, Decimal("3.50"), "refund-1")

    # then the send path's order lookup sees it, in its one query
    with CaptureQueriesContext(connection) as queries:
        found = shop.find_orders([lookup])[lookup.checkout_token]
    assert len(queries.captured_queries) == 1
    assert (found.id, found.refunded, found.cancelled) == (str(recovered_order.pk), Decimal("3.50"), False)

    # when staff cancel the order, then the lookup says so
    cancel(order_manager, recovered_order)
    found = shop.find_orders([lookup])[lookup.checkout_token]
    assert (found.refunded, found.cancelled) == (Decimal("3.50"), True)


def test_legacy_payments_refunds_count_from_every_payment(recovered_order):
    # given, besides the transaction item's refund, two legacy payments: successful refunds on
    # both (the first is not the order's last payment), a failed refund and a capture
    recovered_order.payment_transactions.update(refunded_value=Decimal("1.00"))
    for charge_status, refunds in [
        (ChargeStatus.PARTIALLY_REFUNDED, [("2.00", True), ("9.00", False)]),
        (ChargeStatus.FULLY_CHARGED, [("0.25", True)]),
    ]:
        payment = Payment.objects.create(
            gateway="mirumee.payments.dummy",
            order=recovered_order,
            total=Decimal("5.00"),
            captured_amount=Decimal("5.00"),
            currency="USD",
            charge_status=charge_status,
        )
        payment.transactions.create(
            kind=TransactionKind.CAPTURE,
            is_success=True,
            amount=Decimal("5.00"),
            currency="USD",
            gateway_response={},
        )
        for amount, success in refunds:
            payment.transactions.create(
                kind=TransactionKind.REFUND,
                is_success=success,
                amount=Decimal(amount),
                currency="USD",
                gateway_response={},
            )

    # then the hooks' reading and the send path's reading agree: 1.00 + 2.00 + 0.25
    with CaptureQueriesContext(connection) as queries:
        ref = order_ref(recovered_order)
    assert len(queries.captured_queries) == 1
    assert (ref.refunded, ref.cancelled) == (Decimal("3.25"), False)
    lookup = OrderLookup(recovered_order.checkout_token, "main", "", recovered_order.created_at)
    assert SaleorShop().find_orders([lookup])[lookup.checkout_token].refunded == Decimal("3.25")


def test_report_shows_the_refunded_order_net(recovered_order, payment_app):
    total = recovered_order.total_gross_amount

    # when part of the recovered order is refunded
    payment_app(recovered_order, Decimal("4.00"), "refund-1")

    # then the report shows its revenue gross, refunded and net; the order still counts as kept
    [report] = report_data(channel="main")
    money = lambda amount: str(amount.quantize(Decimal("0.01")))  # noqa: E731
    assert report["treated"]["revenue"] == {
        "gross": money(total),
        "refunded": "4.00",
        "net": money(total - Decimal("4.00")),
    }
    assert (report["treated"]["orders"], report["treated"]["converted"]) == (1, 1)
