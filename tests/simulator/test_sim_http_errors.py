"""Auth, versions, envelope validation, size limits, messages, count_tokens and models."""

from __future__ import annotations

import anthropic
import httpx2
import msgspec
import pytest
from anthropic.types.messages import MessageBatch
from simtools import MODEL, request, requests

from batchkit.simulator import Processing, SimConfig, Simulator


def raw(sim: Simulator, method: str, path: str, **kw) -> httpx2.Response:
    headers = {"anthropic-version": "2023-06-01", "x-api-key": "k", **kw.pop("headers", {})}
    with httpx2.Client(transport=httpx2.WSGITransport(app=sim.wsgi_app), base_url="http://sim.local") as http:
        return http.request(method, path, headers=headers, **kw)


def test_auth_accepts_bearer_and_x_api_key_and_rejects_missing(sim: Simulator) -> None:
    assert raw(sim, "GET", "/v1/models").status_code == 200
    assert raw(sim, "GET", "/v1/models", headers={"x-api-key": "", "authorization": "Bearer abc"}).status_code == 200
    response = raw(sim, "GET", "/v1/models", headers={"x-api-key": ""})
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert body["request_id"] == response.headers["request-id"]


def test_restricted_api_keys(sim: Simulator) -> None:
    locked = Simulator(SimConfig(api_keys=frozenset({"sk-good"})))
    with pytest.raises(anthropic.AuthenticationError):
        locked.client(api_key="sk-bad", max_retries=0).models.list()
    assert locked.client(api_key="sk-good").models.list().data


def test_anthropic_version_is_required_and_checked(sim: Simulator) -> None:
    assert raw(sim, "GET", "/v1/models", headers={"anthropic-version": "2026-10-21"}).status_code == 200
    missing = raw(sim, "GET", "/v1/models", headers={"anthropic-version": ""})
    assert missing.status_code == 400 and "anthropic-version" in missing.json()["error"]["message"]
    assert raw(sim, "GET", "/v1/models", headers={"anthropic-version": "1999-01-01"}).status_code == 400


def test_every_response_has_a_request_id_and_says_it_is_the_simulator(sim: Simulator) -> None:
    for method, path in [
        ("GET", "/v1/models"),
        ("GET", "/v1/nope"),
        ("GET", "/_sim/stats"),
        ("POST", "/v1/messages/batches"),
        ("POST", "/_sim/clock/advance"),
    ]:
        response = raw(sim, method, path)
        assert response.headers["request-id"].startswith("req_")
        assert response.headers["x-batchkit-simulator"]  # the real API never sends it


def test_control_endpoints_need_a_key_a_json_body_and_a_local_origin(sim: Simulator) -> None:
    def post(headers: dict[str, str], content: bytes = b'{"seconds": 5}') -> httpx2.Response:
        return raw(sim, "POST", "/_sim/clock/advance", headers=headers, content=content)

    json_ = {"content-type": "application/json"}
    assert post({**json_, "x-api-key": ""}).status_code == 401
    assert post({"content-type": "text/plain"}).status_code == 415
    assert post({"content-type": "application/x-www-form-urlencoded"}, b"seconds=5").status_code == 415
    refused = post({**json_, "origin": "https://example.com"})
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"
    assert post({**json_, "origin": "null"}).status_code == 403
    assert raw(sim, "GET", "/_sim/stats", headers={"origin": "http://evil.localhost.example.com"}).status_code == 403
    assert raw(sim, "GET", "/_sim/stats", headers={"x-api-key": ""}).status_code == 401
    before = sim.clock.timestamp()
    assert post({**json_, "origin": "http://localhost:8888"}).json()["advanced"] == 5
    assert post({**json_, "origin": "http://[::1]:3000"}).status_code == 200
    assert post({**json_, "content-type": "application/json; charset=utf-8"}).status_code == 200
    assert sim.clock.timestamp() >= before + 15
    assert raw(sim, "GET", "/_sim/clock/advance").status_code == 405
    locked = Simulator(SimConfig(api_keys=frozenset({"sk-good"})))
    assert raw(locked, "GET", "/_sim/stats").status_code == 401  # the key the API would refuse
    assert raw(locked, "GET", "/_sim/stats", headers={"x-api-key": "sk-good"}).status_code == 200


@pytest.mark.parametrize("seconds", [1e300, float("nan"), float("inf"), -1.0, 10**400, True, "5"])
def test_a_clock_advance_that_would_break_the_clock_is_refused_and_changes_nothing(seconds: object) -> None:
    sim = Simulator(SimConfig(time_scale=1e-9, start_time=1_000_000.0))
    with pytest.raises(ValueError):
        sim.advance(seconds)  # type: ignore[arg-type]
    assert sim.clock.timestamp() == pytest.approx(1_000_000.0)
    assert sim.stats()["clock"].startswith("1970-01-12")
    sim.advance(60)
    assert sim.clock.timestamp() == pytest.approx(1_000_060.0)


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf")])
def test_a_time_scale_that_is_not_a_positive_finite_number_is_refused(scale: float) -> None:
    from batchkit.simulator import SimClock

    with pytest.raises(ValueError, match="time_scale"):
        SimClock(time_scale=scale)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "Invalid JSON"),
        (b"{}", "requests: Field required"),
        (b'{"requests": 5}', "valid list"),
        (b'{"requests": []}', "at least 1 item"),
        (msgspec.json.encode({"requests": [{"params": {}}]}), "requests.0.custom_id: Field required"),
        (
            msgspec.json.encode({"requests": [request("a" * 65)]}),
            "requests.0.custom_id: String should have at most 64 characters",
        ),
        (msgspec.json.encode({"requests": [request("has space")]}), "should match pattern"),
        (
            msgspec.json.encode({"requests": [request("a"), request("b"), request("a")]}),
            "requests.2.custom_id: Duplicate",
        ),
        (msgspec.json.encode({"requests": [{"custom_id": "a"}]}), "requests.0.params: Field required"),
        (msgspec.json.encode({"requests": [request("a\n")]}), "should match pattern"),
        (msgspec.json.encode({"requests": [{**request("a"), "extra": 1}]}), "requests.0.extra: Extra inputs"),
        (msgspec.json.encode({"requests": [request("a")], "model": "x"}), "model: Extra inputs"),
        (b'{"requests": [{"custom_id": "a\xff", "params": {}}]}', "Invalid JSON"),
    ],
)
def test_create_envelope_errors_are_400(client: anthropic.Anthropic, body: bytes, fragment: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.post("/v1/messages/batches", content=body, cast_to=MessageBatch)
    assert info.value.type == "invalid_request_error"
    assert fragment in info.value.api_message


@pytest.mark.parametrize("bad", [b'"\xff"', b"1e400"])
def test_params_with_a_value_that_is_not_valid_json_make_that_request_errored(
    sim: Simulator, client: anthropic.Anthropic, bad: bytes
) -> None:
    # Params are read when a request is processed (as the API checks them), so a value that
    # is not valid JSON errors that request alone; the envelope around it was well-formed.
    good = msgspec.json.encode(request("b"))
    body = b'{"requests": [{"custom_id": "a", "params": {"x": ' + bad + b"}}, " + good + b"]}"
    batch = client.post("/v1/messages/batches", content=body, cast_to=MessageBatch)
    sim.advance(3600)
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["b"].type == "succeeded"
    assert results["a"].type == "errored" and results["a"].error.error.type == "invalid_request_error"
    assert "params: Invalid JSON" in results["a"].error.error.message


def test_more_than_the_request_limit_is_400() -> None:
    small = Simulator(SimConfig(max_requests_per_batch=3))
    with pytest.raises(anthropic.BadRequestError, match="at most 3 items"):
        small.client(max_retries=0).messages.batches.create(requests=requests(4))


def test_body_over_the_size_limit_is_413_and_not_retried() -> None:
    tiny = Simulator(SimConfig(max_batch_body_bytes=2_000))
    client = tiny.client()  # default retries: a 413 must not be retried
    with pytest.raises(anthropic.RequestTooLargeError) as info:
        client.messages.batches.create(requests=requests(40))
    assert info.value.status_code == 413 and info.value.body["error"]["type"] == "request_too_large"
    assert tiny.stats()["batches.create"] == 1
    assert client.messages.batches.create(requests=requests(2)).request_counts.processing == 2


def test_unknown_route_and_wrong_method(sim: Simulator) -> None:
    assert raw(sim, "GET", "/v1/unknown").status_code == 404
    assert raw(sim, "PUT", "/v1/messages/batches").status_code == 405


# --------------------------------------------------------------------------- messages


def test_messages_create_answers_with_standard_tier(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Describe the Roman aqueducts"}]
    )
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.usage.service_tier == "standard" and message.stop_reason == "end_turn"
    assert "aqueducts" in message.content[0].text.lower()
    again = client.messages.create(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Describe the Roman aqueducts"}]
    )
    assert again.content[0].text == message.content[0].text  # deterministic


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model: Field required"),
        ({"model": MODEL, "messages": [{"role": "user", "content": "x"}]}, "max_tokens: Field required"),
        ({"model": MODEL, "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 5, "messages": []}, "at least one message"),
        ({"model": MODEL, "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": 7}]}, "content"),
        ({"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "bogus"}]}]}, "type"),
        ({"model": MODEL, "max_tokens": 5, "stream": "yes", "messages": [{"role": "user", "content": "x"}]}, "stream"),
        ({"model": MODEL, "max_tokens": 5, "top_p": 0.9, "messages": [{"role": "user", "content": "x"}]}, "top_p"),
        (
            {"model": MODEL, "max_tokens": 5, "whatever": 1, "messages": [{"role": "user", "content": "x"}]},
            "Extra inputs",
        ),
    ],
)
def test_messages_validation_is_400(client: anthropic.Anthropic, params: dict, fragment: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.post("/v1/messages", body=params, cast_to=object)
    assert fragment in info.value.api_message


def test_unknown_model_is_404_and_listed_ids_all_work(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    reference_ids = [
        "claude-fable-5-2",
        "claude-mythos-5-2",
        "claude-haiku-5-5",
        "claude-sonnet-5-5",
        "claude-fable-5-1",
        "claude-opus-5-5",
        "claude-mythos-5-1",
        "claude-sonnet-5",
        "claude-fable-5",
        "claude-mythos-5",
        "claude-opus-5",
        "claude-opus-4-8",
        "claude-opus-4-7",
        "claude-mythos-preview",
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        "claude-opus-4-5",
        "claude-opus-4-5-20251101",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
        "claude-3-5-haiku-20241022",
        "claude-sonnet-4-20250514",
        "claude-sonnet-4-0",
        "claude-opus-4-1",
        "claude-opus-4-0",
        "claude-3-7-sonnet-20250219",
        "claude-3-opus-20240229",
    ]
    for model in reference_ids:
        body = {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        assert client.post("/v1/messages", body=body, cast_to=object)["model"] == model


def test_count_tokens_follows_the_documented_estimate(client: anthropic.Anthropic) -> None:
    # 3 + (4 + ceil(11/4)) = 10
    assert (
        client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hello world"}]).input_tokens
        == 10
    )
    tool = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}
    system = "You are terse."
    expected = 3 + 4 + 3 + 4 + (len(msgspec.json.encode(tool)) + 3) // 4
    got = client.messages.count_tokens(
        model=MODEL, system=system, tools=[tool], messages=[{"role": "user", "content": "hello world"}]
    ).input_tokens
    assert got == expected
    korean = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "안녕하세요"}])
    assert korean.input_tokens == 3 + 4 + 4  # 15 UTF-8 bytes → 4 tokens
    message = client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hello world"}])
    assert message.usage.input_tokens == 10


def test_models_list_retrieve_and_pagination(client: anthropic.Anthropic) -> None:
    page = client.models.list(limit=5)
    assert len(page.data) == 5 and page.has_more and page.first_id == page.data[0].id
    every = [m.id for m in client.models.list(limit=4)]
    assert len(every) == len(set(every)) and "claude-haiku-4-5" in every
    assert "claude-3-opus-20240229" not in every  # retired models only on request
    retired = [m.id for m in client.models.list(lifecycle=["retired"])]
    assert "claude-3-opus-20240229" in retired
    back = client.models.list(limit=2, before_id=every[4])
    assert [m.id for m in back.data] == every[2:4]
    info = client.models.retrieve("claude-sonnet-4-6")
    assert info.display_name == "Claude Sonnet 4.6" and info.type == "model" and info.capabilities is not None
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-nope")


def test_instant_processing_preset_ends_batches_on_the_next_call() -> None:
    sim = Simulator(SimConfig(processing=Processing.instant()))
    client = sim.client(_strict_response_validation=True)
    created = client.messages.batches.create(requests=requests(3))
    assert created.processing_status == "in_progress"
    assert client.messages.batches.retrieve(created.id).processing_status == "ended"
