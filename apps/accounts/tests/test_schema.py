import pytest

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/v1/auth/register", "post"): {"201", "400", "409", "429"},
    ("/api/v1/auth/login", "post"): {"200", "400", "401", "429"},
    ("/api/v1/auth/refresh", "post"): {"200", "400", "401"},
    ("/api/v1/auth/logout", "post"): {"204", "400", "401"},
    ("/api/v1/auth/me", "get"): {"200", "401"},
    ("/api/v1/auth/password", "post"): {"204", "400", "401", "429"},
    ("/api/v1/auth/password-reset", "post"): {"202", "400", "429"},
    ("/api/v1/auth/password-reset/confirm", "post"): {"204", "400"},
    ("/api/v1/api-keys", "get"): {"200", "400", "401", "403"},
    ("/api/v1/api-keys", "post"): {"201", "400", "401", "403"},
    ("/api/v1/api-keys/{api_key_id}", "delete"): {"204", "401", "403", "404"},
}


def test_every_auth_operation_is_in_the_schema_with_its_errors(api_client):
    schema = api_client.get("/api/v1/schema", {"format": "json"}).json()

    for (path, method), statuses in OPERATIONS.items():
        operation = schema["paths"][path][method]
        # Its own errors at least; every operation also documents the envelope's common statuses.
        assert set(operation["responses"]) >= statuses, (path, method)
        for status in set(operation["responses"]) - {"200", "201", "202", "204"}:
            content = operation["responses"][status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/ErrorEnvelope"}
    assert set(schema["components"]["securitySchemes"]) >= {"jwtAuth", "apiKeyAuth"}
    assert schema["paths"]["/api/v1/auth/login"]["post"]["security"] == [{}]
    assert "key" in schema["components"]["schemas"]["ApiKeyCreated"]["properties"]
    assert "key" not in schema["components"]["schemas"]["ApiKey"]["properties"]
