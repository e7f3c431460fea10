"""``GET /v1/models/{id}`` through the openai SDK: a route, alias or model the caller may use comes back as an
OpenAI model object; anything else, including what this caller may not use, is a 404 in OpenAI's shape."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.integration.test_policy import DE_KEY, LIMITED_KEY, US_KEY, policy_config


@pytest.fixture
def gw(emu, make_gateway):
    return make_gateway(policy_config(emu.url))


def test_retrieve_route_alias_and_model(gw, client_for):
    client = client_for(gw, api_key=US_KEY)
    route = client.models.retrieve("security-review")
    assert (route.id, route.object, route.owned_by) == ("security-review", "model", "gateway-route")
    assert route.model_extra["models"] == ["fable-5", "gpt-5", "qwen-coder"]
    assert client.models.retrieve("security").id == "security"  # an alias
    model = client.models.retrieve("fable-5")
    assert (model.id, model.owned_by) == ("fable-5", "VendorA")
    listed = {m.id: m.model_dump() for m in client.models.list()}
    for name in ("security-review", "security", "fable-5", "general"):
        assert client.models.retrieve(name).model_dump() == listed[name]  # one visibility rule for both


def test_unknown_or_hidden_is_404_in_openai_shape(gw, client_for):
    with pytest.raises(openai.NotFoundError) as e:
        client_for(gw, api_key=US_KEY).models.retrieve("no-such-model")
    assert e.value.code == "model_not_found" and e.value.body["param"] == "model"
    # Denied by policy to this caller: invisible, as in the list.
    with pytest.raises(openai.NotFoundError):
        client_for(gw, api_key=DE_KEY).models.retrieve("fable-5")
    route = client_for(gw, api_key=DE_KEY).models.retrieve("security-review")
    assert route.model_extra["models"] == ["gpt-5", "qwen-coder"]
    # A key limited to one route and one model sees only those.
    limited = client_for(gw, api_key=LIMITED_KEY)
    assert limited.models.retrieve("general").model_extra["models"] == ["qwen-coder"]
    for hidden in ("security", "security-review", "gpt-5"):
        with pytest.raises(openai.NotFoundError):
            limited.models.retrieve(hidden)
    r = httpx.get(gw.url + "/v1/models/a/b%2Fc", headers={"authorization": f"Bearer {US_KEY}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_retrieve_needs_a_key(gw):
    r = httpx.get(gw.url + "/v1/models/security")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
