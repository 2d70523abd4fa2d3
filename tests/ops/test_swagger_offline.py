"""``/api/docs/`` works offline: served by ``manage.py serve`` (collectstatic + WhiteNoise),
Swagger UI's page loads its JS, CSS and favicon from this server (drf-spectacular-sidecar)
and names no other host; the schema it renders answers too."""

import re
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.processes import served

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = "/api/docs/"
URL = re.compile(r"""https?://[^\s"'<>)]+""")
ASSET = re.compile(r"""(?:src|href)="([^"]+)\"""")


@pytest.fixture
def docs(tmp_path):
    with served(tmp_path, ANIMA_WEB_WORKERS="1") as server:
        page = httpx.get(server.base + DOCS, timeout=30)
        assert page.status_code == 200
        yield server.base, page.text


def test_the_docs_page_names_no_other_host(docs):
    base, html = docs

    hosts = {urlsplit(url).netloc for url in URL.findall(html)}

    assert hosts <= {urlsplit(base).netloc}
    assert '"validatorUrl": null' in html  # no badge fetched from validator.swagger.io


def test_the_docs_page_assets_and_schema_answer_from_this_server(docs):
    base, html = docs
    assets = ASSET.findall(html)

    assert {asset.rsplit("/", 1)[-1] for asset in assets} >= {
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "favicon-32x32.png",
    }
    for asset in assets:
        response = httpx.get(urljoin(base + DOCS, asset), timeout=30)
        assert response.status_code == 200, asset
        assert len(response.content) > 0
    schema_url = re.search(r'url: "([^"]+)"', html).group(1)
    schema = httpx.get(urljoin(base + DOCS, schema_url), headers={"Accept": "application/json"}, timeout=30)
    assert schema.status_code == 200 and "/api/v1/memories/add" in schema.text
