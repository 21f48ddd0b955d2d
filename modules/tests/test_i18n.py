"""Modules in the reader's language: names, descriptions and configuration help on the admin's modules page,
the door's refusal, the configuration's reasons and `manage.py modules`; codes stay machine words."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import translation

from core.audit import Actor
from modules.registry import module_definition
from modules.services import ModuleConfigInvalid, module_configure, module_disable

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")
PAGE = "/admin/modules/modulestate/"
ARABIC = {"HTTP_ACCEPT_LANGUAGE": "ar"}


def test_a_definitions_name_and_description_follow_the_active_language():
    credits = module_definition(code="credits")

    with translation.override("ar"):
        arabic = (str(credits.name), str(credits.description))
    with translation.override("en"):
        english = (str(credits.name), str(credits.description))

    assert arabic == ("الأرصدة المدفوعة مسبقًا",
                      "منح الأرصدة، والدفتر الذي لا يُضاف إليه إلا قيود جديدة، والأرصدة، وتعبئة الخطط، وانتهاء "
                      "الصلاحية، وباقات الأرصدة.")
    assert english == ("Prepaid credits",
                       "Credit grants, the append-only ledger, balances, plan refills, expiry and credit packs.")
    assert credits.code == "credits"


def test_the_modules_page_in_arabic_names_every_module_in_arabic(admin_client):
    page = admin_client.get(PAGE, **ARABIC).content.decode()

    for name in ("الأرصدة المدفوعة مسبقًا", "الفوترة ودورة الفوترة", "التحصيل والمطالبة", "قياس الاستخدام",
                 "المدفوعات اليدوية (نقدًا أو بشيك أو بتحويل مصرفي)", "قناة الدفع Stripe (docs/providers.md).",
                 "قاعدة البيانات والذاكرة المؤقتة ولوحة تبديل الوحدات نفسها."):
        assert name in page
    assert "Prepaid credits" not in page and "Invoicing and the billing run" not in page
    assert 'data-module="credits"' in page and "<code>credits</code>" in page  # codes stay as they are
    assert ">Stripe<" in page  # a brand is not translated


def test_the_confirmation_in_arabic_names_the_cascade_in_arabic(admin_client):
    confirm = admin_client.get(f"{PAGE}invoicing/switch/disable/", **ARABIC).content.decode()

    assert "الفوترة ودورة الفوترة" in confirm and "التحصيل والمطالبة" in confirm
    assert "Collection and dunning" not in confirm


def test_the_configuration_form_in_arabic_explains_its_field_and_refuses_in_arabic(admin_client):
    form = admin_client.get(f"{PAGE}invoicing/configure/", **ARABIC).content.decode()
    refused = admin_client.post(f"{PAGE}invoicing/configure/", {"lag_degraded_minutes": "-5"}, **ARABIC)

    assert "يبلّغ /healthz عن تراجع الفوترة" in form
    assert "يجب ألا تقل القيمة عن 1." in refused.content.decode()


def test_a_closed_api_door_answers_in_the_language_the_request_asks_for(client):
    module_disable(code="credits", actor=ACTOR)

    arabic = client.get("/api/v1/credits/balance/", **ARABIC)
    english = client.get("/api/v1/credits/balance/", HTTP_ACCEPT_LANGUAGE="en")

    assert arabic.status_code == english.status_code == 404
    assert arabic.json()["error"] == {
        "type": "not_found", "code": "module_disabled", "fields": {}, "details": {"module": "credits"},
        "message": "وحدة «الأرصدة المدفوعة مسبقًا» (credits) معطّلة، لذا فنقطة النهاية هذه غير متاحة."}
    assert english.json()["error"]["message"] == ("The Prepaid credits module (credits) is disabled, so this "
                                                  "endpoint is unavailable.")


def test_a_closed_door_follows_the_language_cookie_staff_chose(client):
    module_disable(code="usage", actor=ACTOR)
    client.cookies["django_language"] = "ar"

    answer = client.get("/api/v1/meters/")

    assert answer.status_code == 404 and answer.json()["error"]["message"].startswith("وحدة «قياس الاستخدام»")


def test_configuration_refusals_are_worded_in_the_active_language():
    with translation.override("ar"), pytest.raises(ModuleConfigInvalid) as refused:
        module_configure(code="invoicing", changes={"lag_degraded_minutes": "soon"}, actor=ACTOR)

    assert refused.value.message == "الإعداد lag_degraded_minutes: يجب أن تكون القيمة عددًا صحيحًا."
    assert refused.value.extra["fields"] == {"lag_degraded_minutes": ["يجب أن تكون القيمة عددًا صحيحًا."]}


def test_the_modules_command_writes_in_the_operators_language(monkeypatch):
    monkeypatch.setenv("LANG", "ar_YE.UTF-8")
    out = StringIO()

    call_command("modules", "disable", "dunning", stdout=out)
    call_command("modules", "disable", "dunning", stdout=out)
    call_command("modules", "list", stdout=out)

    lines = out.getvalue().splitlines()
    assert lines[:2] == ["عُطِّلت: dunning", "الوحدة dunning معطّلة من قبل؛ لم يتغير شيء."]
    assert lines[2].split() == ["الرمز", "الإصدار", "مفعّل", "تتطلب", "السلامة"]
    assert next(line for line in lines if line.startswith("dunning")).split()[:3] == ["dunning", "1.0.0", "لا"]
