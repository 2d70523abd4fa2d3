"""The OpenAPI schema is valid and complete enough that generation raises no warning."""

from django.core.management import call_command


def test_the_schema_validates_without_warnings(tmp_path):
    path = tmp_path / "schema.yml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))

    text = path.read_text()
    assert "/api/v1/memories/add-batch/" in text and "/api/v1/namespaces/purge/" in text
    assert "ErrorEnvelope" in text and "securitySchemes" in text
