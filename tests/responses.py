"""Reading the API's response envelope in tests."""


def bad_fields(response) -> set[str]:
    """The fields a 400 ``VALIDATION_ERROR`` names (fails the test on any other answer)."""
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    return set(response.json()["error"]["details"]["fields"])
