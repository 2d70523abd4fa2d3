"""The start-up system checks of memories/checks.py against the real test database."""

import numpy as np
import pytest
from django.core import checks

from memories.checks import MIN_PGVECTOR, _version, check_embedding_space, check_pgvector_version
from tests.factories import DIM as DIMENSIONS, make_memories

pytestmark = pytest.mark.django_db


def one_memory(model_id=None):
    return make_memories([{"content": "a stored memory", "vector": np.ones(DIMENSIONS)}], model_id=model_id)


def ids(errors) -> list[str]:
    return [error.id for error in errors]


def test_normal_configuration_has_no_errors():
    assert check_pgvector_version(databases=["default"]) == []
    assert check_embedding_space(databases=["default"]) == []


def test_rows_of_the_configured_model_give_no_error():
    one_memory()

    assert check_embedding_space(databases=["default"]) == []


def test_other_dimensions_than_the_column_is_e004(settings):
    settings.ANIMA_EMBEDDING_DIMENSIONS = 768

    errors = check_embedding_space(databases=["default"])

    assert ids(errors) == ["anima.E004"]
    assert isinstance(errors[0], checks.Error)
    assert "768" in errors[0].msg
    assert f"vector({DIMENSIONS})" in errors[0].msg
    assert "ANIMA_EMBEDDING_DIMENSIONS" in errors[0].msg
    assert errors[0].hint


@pytest.mark.parametrize("other_model", ["some-other-model", "a-model-sorting-first"])
def test_rows_of_another_model_are_e005(other_model):
    # One name sorts after the configured model's, one before: both index probes count.
    one_memory(model_id=other_model)

    errors = check_embedding_space(databases=["default"])

    assert ids(errors) == ["anima.E005"]
    assert isinstance(errors[0], checks.Error)
    assert other_model in errors[0].msg
    assert "sentence-transformers/all-MiniLM-L6-v2" in errors[0].msg


def test_rows_of_another_model_among_matching_ones_are_e005():
    one_memory()
    make_memories([{"content": "another memory", "vector": np.ones(DIMENSIONS)}], model_id="some-other-model")

    assert ids(check_embedding_space(databases=["default"])) == ["anima.E005"]


def test_other_model_configured_against_stored_rows_is_e005(settings):
    one_memory()
    settings.ANIMA_EMBEDDING_MODEL = "text-embedding-3-small"

    errors = check_embedding_space(databases=["default"])

    assert ids(errors) == ["anima.E005"]
    assert "sentence-transformers/all-MiniLM-L6-v2" in errors[0].msg


def test_wrong_dimensions_and_model_report_both(settings):
    one_memory(model_id="some-other-model")
    settings.ANIMA_EMBEDDING_DIMENSIONS = 768

    assert ids(check_embedding_space(databases=["default"])) == ["anima.E004", "anima.E005"]


def test_checks_do_nothing_unless_asked_for_the_database(settings):
    one_memory(model_id="some-other-model")
    settings.ANIMA_EMBEDDING_DIMENSIONS = 768

    assert check_embedding_space(databases=None) == []
    assert check_pgvector_version(databases=None) == []
    assert check_embedding_space(databases=["other"]) == []


def test_checks_are_registered_under_the_database_tag(settings):
    settings.ANIMA_EMBEDDING_DIMENSIONS = 768

    with_database = checks.run_checks(tags=[checks.Tags.database], databases=["default"])
    without_database = checks.run_checks(tags=[checks.Tags.database], databases=None)

    assert "anima.E004" in ids(with_database)
    assert "anima.E004" not in ids(without_database)


@pytest.mark.parametrize(
    ("version", "new_enough"),
    [("0.7.4", False), ("0.8.0", True), ("0.8.1", True), ("0.10.0", True), ("1.0", True)],
)
def test_pgvector_versions_compare_numerically(version, new_enough):
    assert (_version(version) >= MIN_PGVECTOR) is new_enough
