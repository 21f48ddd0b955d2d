"""Domain refusals that carry values read in the reader's language: the English text is the one it always
was, the Arabic one is Arabic with every value still in it, and the error code does not change."""

import re
from decimal import Decimal

import pytest
from django.utils import translation

from core.audit import Actor
from core.exceptions import IllegalTransition, InvalidOperation
from modules.graph import ModuleGraphError, graph_validate
from modules.health import _reports
from modules.tests.support import module
from outbound_webhooks.network import UnsafeWebhookUrl, webhook_url_check_syntax
from payments.models import InvoiceStatus
from payments.services.invoices import invoice_transition
from payments.tests.factories import InvoiceFactory
from usage.models import ThresholdKind
from usage.threshold_services import ThresholdSpec, usage_threshold_create

ARABIC = re.compile("[\u0600-\u06ff]")


def _refusal(raise_it, expected: type[Exception], language: str) -> Exception:
    with translation.override(language), pytest.raises(expected) as caught:
        raise_it()
    return caught.value


def test_a_webhook_address_refusal_names_the_address_in_either_language():
    def check():
        webhook_url_check_syntax(url="http://10.1.2.3/hook")

    english = _refusal(check, UnsafeWebhookUrl, "en")
    arabic = _refusal(check, UnsafeWebhookUrl, "ar")
    assert str(english) == "10.1.2.3 is not a public address."
    assert ARABIC.search(str(arabic)) and "10.1.2.3" in str(arabic)


def test_a_module_graph_error_keeps_both_module_codes_in_arabic():
    def check():
        graph_validate(definitions={"extra": module("extra", "nowhere")})

    english = _refusal(check, ModuleGraphError, "en")
    arabic = _refusal(check, ModuleGraphError, "ar")
    assert str(english) == "Module 'extra' requires 'nowhere', which no app declares."
    assert ARABIC.search(str(arabic)) and "'extra'" in str(arabic) and "'nowhere'" in str(arabic)


def test_a_threshold_refusal_translates_its_message_and_each_field_reason_but_not_its_code():
    def check():
        usage_threshold_create(spec=ThresholdSpec(kind=ThresholdKind.CREDIT_BALANCE, value=Decimal(-1)))

    english = _refusal(check, InvalidOperation, "en")
    arabic = _refusal(check, InvalidOperation, "ar")
    assert english.code == arabic.code == "threshold_invalid"
    assert english.message == "The threshold is not valid."
    assert english.extra["fields"]["value"] == ["The level cannot be negative."]
    assert set(arabic.extra["fields"]) == set(english.extra["fields"]) == {"plan", "value"}
    assert all(ARABIC.search(reason) for reasons in arabic.extra["fields"].values() for reason in reasons)
    assert ARABIC.search(arabic.message)


@pytest.mark.django_db
def test_a_status_transition_refusal_keeps_the_statuses_and_its_code_in_arabic():
    invoice = InvoiceFactory(status=InvoiceStatus.VOID)

    def check():
        invoice_transition(invoice=invoice, to_status=InvoiceStatus.PAID, actor=Actor.system("test"))

    english = _refusal(check, IllegalTransition, "en")
    arabic = _refusal(check, IllegalTransition, "ar")
    assert english.message == "A void invoice cannot become paid."
    assert english.code == arabic.code and arabic.extra == english.extra
    assert ARABIC.search(arabic.message) and "void" in arabic.message and "paid" in arabic.message


def test_a_module_health_check_thread_answers_in_the_requests_language():
    def broken(deep: bool):
        raise RuntimeError("disk full")

    definitions = [module("catalog", health_check=broken), module("quiet")]
    with translation.override("ar"):
        arabic = _reports(definitions, deep=False, budget=5)
    with translation.override("en"):
        english = _reports(definitions, deep=False, budget=5)
    assert english["catalog"].message == "the health check failed: RuntimeError: disk full"
    assert english["quiet"].message == "no health check"
    assert ARABIC.search(arabic["catalog"].message) and "RuntimeError: disk full" in arabic["catalog"].message
    assert ARABIC.search(arabic["quiet"].message)
