"""The API answers a service error by its kind, whatever the keys name (issue #10)."""

from __future__ import annotations

from pitpass.api.errors import from_service_error
from pitpass.services.errors import ServiceError


def test_a_conflict_is_409_whatever_it_names() -> None:
    error = from_service_error(ServiceError.conflict("member", "already decided"))
    assert error.status == 409
    assert error.body.error == "conflict"
    assert error.body.error_description == "already decided"


def test_a_field_error_is_400_whatever_it_names() -> None:
    error = from_service_error(ServiceError.field("client", "too long"))
    assert error.status == 400
    assert [(f.field, f.message) for f in error.body.fields] == [("client", "too long")]


def test_field_errors_carry_the_rfc_7591_code_of_the_field() -> None:
    uris = ServiceError.fields({"redirect_uris": "redirect URI 2: bad", "redirect_uris.1": "bad"})
    assert from_service_error(uris).body.error == "invalid_redirect_uri"
    assert [f.field for f in from_service_error(uris).body.fields] == ["redirect_uris[1]"]
    name = ServiceError.field("client_name", "taken")
    assert from_service_error(name).body.error == "invalid_client_metadata"
    message = ServiceError.field("message", "write one")
    assert from_service_error(message).body.error == "invalid_request"
