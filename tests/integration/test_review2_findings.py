"""Second review: admin inputs that produced a 500."""

from __future__ import annotations

import pytest

from tests.integration.test_admin import _admin, admin_config


@pytest.mark.parametrize("request_body, param", [
    ({"messages": "x"}, "request.messages"),
    ({"messages": [5]}, "request.messages[0]"),
])
def test_admin_explain_malformed_request_is_a_400_naming_the_field(emu, make_gateway, request_body, param):
    gw = make_gateway(admin_config(emu.url))
    r = _admin(gw, "POST", "/admin/explain", json={"request": request_body})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
