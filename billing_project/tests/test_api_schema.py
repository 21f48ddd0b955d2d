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
            success = next(code for code in ("200", "201", "204") if code in op["responses"])
            assert "X-RateLimit-Remaining" in op["responses"][success]["headers"]
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


def _operations():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return schema, [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]


@pytest.mark.django_db
def test_every_operation_documents_the_errors_its_shape_can_produce():
    _, operations = _operations()
    lenient = {"ordering", "page_size", "cursor"}
    for path, method, op in operations:
        documented = set(op["responses"])
        params = op.get("parameters", [])
        query = {p["name"] for p in params if p["in"] == "query"}
        where = f"{method.upper()} {path}"
        assert {"401", "403"} <= documented, where
        if "requestBody" in op or query - lenient:
            assert "400" in documented, where
        if "requestBody" in op:
            assert "415" in documented, where
        if any(p["in"] == "path" for p in params) or "cursor" in query:
            assert "404" in documented, where
        if method == "post":
            assert "409" in documented, where
        if path != "/api/v1/auth/token/":
            assert "429" in documented, where


@pytest.mark.django_db
def test_single_objects_are_objects_and_only_list_endpoints_are_paginated_envelopes():
    schema, operations = _operations()
    components = schema["components"]["schemas"]

    def body(path, method="get", status="200"):
        return schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]

    assert body("/api/v1/usage/summary/") == {"$ref": "#/components/schemas/UsageSummary"}
    assert body("/api/v1/entitlements/") == {"$ref": "#/components/schemas/Entitlements"}
    assert body("/api/v1/customers/me/") == {"$ref": "#/components/schemas/Customer"}
    # An action answering many=True is a bare array: it does not paginate.
    assert body("/api/v1/checkout/credit-packs/")["type"] == "array"
    for path, method, op in operations:
        is_list = method == "get" and any(p["name"] == "cursor" for p in op.get("parameters", []))
        response = op["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema")
        if is_list:
            envelope = components[response["$ref"].rsplit("/", 1)[1]]
            assert set(envelope["properties"]) == {"next", "previous", "results"}, path
            assert envelope["properties"]["results"]["type"] == "array", path
        elif response is not None and "$ref" in response:
            assert not response["$ref"].rsplit("/", 1)[1].startswith("Paginated"), path


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete", "options"])
@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/invoices/1/nope/", "/api/v2/plans/", "/api/"])
def test_an_unknown_api_path_answers_the_json_404_shape(method, path):
    response = getattr(staff_client(), method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == {"type": "not_found", "code": "not_found",
                                        "message": "No such API endpoint.", "fields": {}}


@pytest.mark.django_db
def test_an_unknown_api_path_is_a_json_404_even_without_credentials():
    response = APIClient().get("/api/v1/nope/", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"


@pytest.mark.django_db
def test_an_api_path_without_its_trailing_slash_redirects_a_get_and_names_the_path_otherwise():
    client = staff_client()
    response = client.get("/api/v1/plans?is_active=true")
    assert response.status_code == 301
    assert response["Location"] == "/api/v1/plans/?is_active=true"
    response = client.post("/api/v1/plans", {"code": "x"})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No such API endpoint. Paths end with a slash: /api/v1/plans/"


@pytest.mark.django_db
def test_the_docs_page_loads_only_our_own_static_files_and_the_app_serves_them():
    import re

    from django.test import Client

    page = staff_client().get("/api/docs/").content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(urls) >= 4  # css, favicon, bundle, preset
    for url in urls:
        assert url.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/"), url
        # Served by the app itself (WhiteNoise), not only by runserver: the tests run with DEBUG off.
        response = Client().get(url)
        assert response.status_code == 200, url
        assert b"".join(response.streaming_content)
    assert '"validatorUrl": null' in page  # Swagger UI would fetch a badge from validator.swagger.io
