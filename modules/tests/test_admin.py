import pytest

from billing_project.tests.admin_helpers import staff_user
from modules.models import ModuleChange
from modules.selectors import module_config, module_enabled

pytestmark = pytest.mark.django_db

PAGE = "/admin/modules/modulestate/"


def test_the_modules_page_lists_every_module_with_state_health_and_buttons(admin_client):
    page = admin_client.get(PAGE).content.decode()

    assert 'data-module="stripe"' in page and 'data-module="platform"' in page
    assert f'href="{PAGE}stripe/switch/disable/"' in page
    assert f'href="{PAGE}catalog/switch/disable/"' not in page  # core modules have no switch
    assert f'href="{PAGE}invoicing/configure/"' in page


def test_disabling_asks_for_a_confirmation_naming_every_module_it_cascades_to(admin_client):
    confirm = admin_client.get(f"{PAGE}invoicing/switch/disable/").content.decode()

    assert "Disable Invoicing and the billing run?" in confirm
    for name in ("Collection and dunning", "Stripe", "Manual payments"):
        assert name in confirm
    assert module_enabled(code="invoicing")  # a GET changes nothing

    response = admin_client.post(f"{PAGE}invoicing/switch/disable/", follow=True)

    assert not module_enabled(code="stripe") and not module_enabled(code="invoicing")
    assert "Disabled: stripe, reports, paypal, manual, lemonsqueezy, dunning, invoicing." in response.content.decode()


def test_enabling_names_the_requirements_it_enables_too(admin_client):
    admin_client.post(f"{PAGE}invoicing/switch/disable/")

    confirm = admin_client.get(f"{PAGE}stripe/switch/enable/").content.decode()
    admin_client.post(f"{PAGE}stripe/switch/enable/")

    assert "Invoicing and the billing run" in confirm and "because Stripe requires them" in confirm
    assert module_enabled(code="stripe") and module_enabled(code="invoicing")


def test_the_configuration_form_refuses_a_bad_value_naming_the_field(admin_client):
    refused = admin_client.post(f"{PAGE}invoicing/configure/", {"lag_degraded_minutes": "-5"})
    saved = admin_client.post(f"{PAGE}invoicing/configure/", {"lag_degraded_minutes": "45"})

    assert refused.status_code == 200 and "must be at least 1." in refused.content.decode()
    assert saved.status_code == 302 and module_config(code="invoicing") == {"lag_degraded_minutes": 45}


def test_a_core_module_is_refused_with_a_message(admin_client):
    response = admin_client.post(f"{PAGE}catalog/switch/disable/", follow=True)

    assert "core module and cannot be disabled" in response.content.decode()
    assert not ModuleChange.objects.exists()


def test_viewing_needs_the_view_permission_and_switching_its_own(client):
    client.force_login(staff_user("modules.view_modulestate"))

    page = client.get(PAGE)

    assert page.status_code == 200 and "/switch/" not in page.content.decode()
    assert client.post(f"{PAGE}usage/switch/disable/").status_code == 403
    assert client.get(f"{PAGE}usage/configure/").status_code == 403
    assert module_enabled(code="usage")
