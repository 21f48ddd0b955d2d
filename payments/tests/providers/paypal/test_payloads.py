import pytest

from payments.providers.paypal.payloads import PayPalCapture, PayPalRefund, amount_from_paypal, amount_to_paypal


@pytest.mark.parametrize(("amount", "currency", "value"), [(999, "USD", "9.99"), (1000, "JPY", "1000"),
                                                           (1234, "KWD", "1.234"), (5, "EUR", "0.05")])
def test_amounts_round_trip_between_minor_units_and_paypal_strings(amount, currency, value):
    assert amount_to_paypal(amount, currency) == value
    assert amount_from_paypal(value, currency) == amount


@pytest.mark.parametrize("value", ["9.999", "abc", None, "NaN"])
def test_a_value_that_is_not_an_exact_amount_is_refused(value):
    with pytest.raises(ValueError):
        amount_from_paypal(value, "USD")


def test_a_capture_reads_its_order_and_our_id_from_a_webhook_resource():
    capture = PayPalCapture.from_payload({
        "id": "CAP1", "status": "PENDING", "amount": {"currency_code": "USD", "value": "12.50"},
        "custom_id": "payment-4", "update_time": "2026-01-02T03:04:05Z",
        "supplementary_data": {"related_ids": {"order_id": "ORD1"}}})
    assert (capture.order_id, capture.amount, capture.custom_id, capture.updated_at.isoformat()) == \
        ("ORD1", 1250, "payment-4", "2026-01-02T03:04:05+00:00")


def test_a_refund_finds_its_capture_in_the_up_link():
    refund = PayPalRefund.from_payload({"id": "R1", "status": "PENDING",
                                        "amount": {"currency_code": "USD", "value": "1.00"},
                                        "links": [{"rel": "up", "href": "https://api-m.paypal.com/v2/payments/captures/CAP9"}]})
    assert (refund.capture_id, refund.refund_status, refund.amount) == ("CAP9", "pending", 100)
