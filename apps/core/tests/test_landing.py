"""`/` (where the admin's "View site" leads) is a small page pointing at the API docs and the admin."""

import re

import pytest
from django.contrib import admin

pytestmark = pytest.mark.django_db


def links(html: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', html))


def test_the_landing_page_links_the_api_docs_and_the_admin(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "<title>Paydesk</title>" in html
    assert {"/api/v1/docs", "/admin/"} <= links(html)


def test_every_link_of_the_landing_page_leads_somewhere(client, admin_user):
    hrefs = links(client.get("/").content.decode())
    assert len(hrefs) >= 3
    for href in hrefs:
        anonymous = client.get(href)
        assert anonymous.status_code in (200, 302), href  # the admin sends strangers to its login
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200
    docs = client.get("/api/v1/docs")
    assert b"swagger-ui" in docs.content


def test_the_admins_view_site_link_reaches_the_landing_page(client):
    assert admin.site.site_url == "/"
    assert client.get(admin.site.site_url).status_code == 200
