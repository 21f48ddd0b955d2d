import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from billing_project.tests.api_support import staff_client


@pytest.mark.django_db
def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert "ApiError" in schema["components"]["schemas"]


@pytest.mark.django_db
def test_every_operation_documents_its_errors_and_every_post_its_idempotency_key(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert len(operations) >= 35
    for path, method, op in operations:
        errors = {code: r for code, r in op["responses"].items() if code.startswith("4")}
        assert errors, f"{method} {path} documents no error"
        for response in errors.values():
            assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ApiError"}
        if path != "/api/v1/auth/token/":
            assert "X-RateLimit-Remaining" in op["responses"]["200" if "200" in op["responses"] else "201"]["headers"]
            assert "Retry-After" in op["responses"]["429"]["headers"], path
        if method == "post" and path != "/api/v1/auth/token/":
            assert any(p["name"] == "Idempotency-Key" for p in op.get("parameters", [])), path


@pytest.mark.django_db
def test_schema_and_docs_are_served():
    assert APIClient().get("/api/schema/").status_code == 200
    assert staff_client().get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_the_printable_invoice_is_documented_as_html_and_its_errors_as_json(tmp_path):
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(target))
    responses = yaml.safe_load(target.read_text())["paths"]["/api/v1/invoices/{id}/html/"]["get"]["responses"]
    assert list(responses["200"]["content"]) == ["text/html"]
    assert list(responses["404"]["content"]) == ["application/json"]
