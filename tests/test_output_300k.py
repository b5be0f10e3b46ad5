"""The 300K-output beta on batches: long answers go through the beta namespace with its header;
where the beta cannot help (realtime, an uncovered model, over 300,000) the call is refused
before anything is sent.

The simulator is the judge: it answers a request over the model's standard cap only in a batch
created with ``anthropic-beta: output-300k-2026-03-24`` (else the row comes back errored), and a
recording WSGI wrapper shows what each create carried on the wire.
"""

from __future__ import annotations

import anthropic
import httpx2
import pytest

import batchkit  # noqa: F401  (registers df.claude)
from batchkit import BatchkitWarning, Job
from batchkit.backends.batches import MessageBatches
from batchkit.core.options import Options, RequestParams, RunOptions
from batchkit.core.plan import chunk_requests, make_line
from batchkit.core.results import CODE_STATUS
from batchkit.costs.prices import OUTPUT_300K_BETA, _greater_than, load_prices, output_betas
from batchkit.errors import InvalidOptionError
from tests.conftest import frame, make_sim


def _recording_client(sim) -> tuple[anthropic.Anthropic, list[tuple[str, str, str | None]]]:
    """An SDK client on ``sim`` and the (method, path, anthropic-beta) of every call it makes."""
    seen: list[tuple[str, str, str | None]] = []
    app = sim.wsgi_app

    def recording(environ, start_response):
        seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], environ.get("HTTP_ANTHROPIC_BETA")))
        return app(environ, start_response)

    client = sim.client(http_client=httpx2.Client(transport=httpx2.WSGITransport(app=recording)))
    return client, seen


def _creates(seen):
    return [beta for method, path, beta in seen if method == "POST" and path.endswith("/v1/messages/batches")]


def _body(model: str, max_tokens: int, n: int = 2) -> bytes:
    params = b'{"max_tokens":%d,"messages":[{"content":"hi %d","role":"user"}],"model":"%s"}'
    lines = {f"k{i}": make_line(f"k{i}", params % (max_tokens, i, model.encode())) for i in range(n)}
    return chunk_requests(lines)[0].body


def test_a_batch_over_the_standard_cap_goes_through_the_beta_namespace_and_is_answered():
    sim = make_sim()
    client, seen = _recording_client(sim)
    out = frame(3).claude.batch(
        "Say {t}", output="a", model="claude-opus-4-6", max_tokens=200_000, client=client, progress=False
    )
    assert out["a"].tolist() == ["re:Say row 0", "re:Say row 1", "re:Say row 2"]  # not errored: the cap was 300K
    assert _creates(seen) == [OUTPUT_300K_BETA]
    assert sim.stats()["requests_errored"] == 0
    # retrieve and results of the beta batch went through their usual paths
    assert any(m == "GET" and p.endswith("/results") for m, p, _ in seen)


def test_a_batch_within_the_standard_cap_stays_in_the_ga_namespace():
    sim = make_sim()
    client, seen = _recording_client(sim)
    out = frame(2).claude.batch(
        "Say {t}", output="a", model="claude-opus-4-6", max_tokens=128_000, client=client, progress=False
    )
    assert out["a"].notna().all()
    assert _creates(seen) == [None]


def test_the_header_is_what_makes_the_difference_on_the_simulator():
    """Without the beta the simulator errors the same long request: the header is really needed."""
    sim = make_sim()
    client = sim.client()
    body = _body("claude-opus-4-6", 200_000)
    plain = client.post("/v1/messages/batches", content=body, cast_to=anthropic.types.messages.MessageBatch)
    beta = MessageBatches(client, betas_for=output_betas).send(body)
    statuses = {
        batch_id: {CODE_STATUS[c] for c in MessageBatches(client).collect(batch_id).statuses}
        for batch_id in (plain.id, beta.id)
    }
    assert statuses == {plain.id: {"errored"}, beta.id: {"succeeded"}}


def test_a_long_batch_can_be_canceled_and_collected():
    from batchkit.simulator import Processing

    sim = make_sim(processing=Processing(fixed_latency=60.0, per_request=0.0))
    backend = MessageBatches(sim.client(), betas_for=output_betas)
    sent = backend.send(_body("claude-sonnet-4-6", 250_000, n=3))
    assert backend.track(sent.id).state == "in_progress"
    assert backend.cancel(sent.id).state in ("canceling", "ended")
    sim.advance(5)
    assert backend.track(sent.id).state == "ended"
    assert {CODE_STATUS[c] for c in backend.collect(sent.id).statuses} == {"canceled"}


def test_output_betas_reads_each_model_cap():
    assert output_betas(_body("claude-opus-4-6", 128_000)) == ()
    assert output_betas(_body("claude-opus-4-6", 128_001)) == (OUTPUT_300K_BETA,)
    assert output_betas(_body("claude-sonnet-4-6", 64_001)) == (OUTPUT_300K_BETA,)
    # Fable 5 is not covered, but its 100K answers fit its standard cap: no beta
    assert output_betas(_body("claude-fable-5", 100_000)) == ()
    # over its cap: the call's checks refused it unless the caller's table marks it covered
    assert output_betas(_body("claude-sonnet-4-5", 100_000)) == (OUTPUT_300K_BETA,)
    # a model the user marked as covered, with its own cap
    table = load_prices(
        {"claude-opus-6": {"input": 5, "output": 25, "max_output_tokens": 32_000, "batch_output_300k": True}}
    )
    assert output_betas(_body("claude-opus-6", 40_000), table) == (OUTPUT_300K_BETA,)
    # unknown to the built-in table: the header once it asks for more than any covered model's cap
    assert output_betas(_body("claude-opus-6", 40_000)) == ()
    assert output_betas(_body("claude-opus-6", 100_000)) == (OUTPUT_300K_BETA,)
    # max_tokens in a prompt's text is not a request's max_tokens
    tricky = _body("claude-opus-4-6", 20).replace(b'"hi 0"', b'"\\"max_tokens\\":999999"')
    assert output_betas(tricky) == ()


@pytest.mark.parametrize("n", [9, 10, 64_000, 99_999, 100_000, 128_000, 199_999])
def test_the_over_cap_pattern_matches_exactly_the_larger_numbers(n):
    import re

    pattern = re.compile(b"(?:" + _greater_than(n) + b")$")
    for value in {0, 1, n - 1, n, n + 1, n * 10, n + 10 ** len(str(n))} - {-1}:
        assert bool(pattern.match(str(value).encode())) == (value > n), value


def test_a_model_the_caller_marks_covered_gets_the_beta():
    sim = make_sim()
    client, seen = _recording_client(sim)
    with pytest.raises(InvalidOptionError):
        frame(2).claude.batch("Say {t}", output="a", model="claude-sonnet-4-5", max_tokens=100_000, client=client)
    with pytest.warns(BatchkitWarning, match="invalid_request_error"):
        out = frame(2).claude.batch(
            "Say {t}",
            output="a",
            model="claude-sonnet-4-5",
            max_tokens=100_000,
            client=client,
            prices={"claude-sonnet-4-5": {"batch_output_300k": True}},
            progress=False,
        )
    assert _creates(seen) == [OUTPUT_300K_BETA]
    # the simulator's own list does not cover it, so the API's verdict comes back per row
    assert out["a"].isna().all() and set(Job.of(out).outcomes()["error_type"]) == {"invalid_request_error"}


def test_an_uncovered_model_is_refused_before_any_call():
    sim = make_sim()
    client = sim.client()
    with pytest.raises(InvalidOptionError) as info:
        frame(2).claude.batch("Say {t}", model="claude-haiku-4-5", max_tokens=100_000, client=client)
    message = str(info.value)
    assert "does not cover claude-haiku-4-5" in message and "max_tokens=64,000 or less" in message
    assert "claude-opus-4-6" in message  # a model it covers
    with pytest.raises(InvalidOptionError, match="300,000 at most"):
        frame(2).claude.batch("Say {t}", model="claude-opus-4-6", max_tokens=300_001, client=client)
    stats = sim.stats()
    assert stats["batches_created"] == 0 and stats["messages_answered"] == 0


def test_estimate_says_the_worst_case_per_row_is_large():
    est = frame(4).claude.estimate("Say {t}", model="claude-opus-4-6", max_tokens=300_000)
    note = next(n for n in est.notes if "output-300k" in n)
    assert "300,000 output tokens" in note and "over an hour" in note
    assert est.upper_bound("batch") > 4 * 300_000 * 12.5 / 1e6  # every row at the cap, batch price


def _in_mode(mode: str, **params) -> Options:
    """Options for ``mode`` — through the ``mode=`` option once it exists, else set on the run options."""
    if "mode" in RunOptions.names():
        return Options.build({**params, "mode": mode})
    run = RunOptions()
    object.__setattr__(run, "mode", mode)
    return Options(RequestParams(**params), run)


@pytest.mark.parametrize("mode", ["realtime", "auto"])
def test_realtime_is_refused_before_any_call(mode):
    with pytest.raises(InvalidOptionError) as info:
        _in_mode(mode, model="claude-opus-4-6", max_tokens=200_000)
    assert "Message Batches API only" in str(info.value) and "mode='batch'" in str(info.value)
    assert _in_mode("batch", model="claude-opus-4-6", max_tokens=200_000).params.max_tokens == 200_000
    assert _in_mode(mode, model="claude-opus-4-6", max_tokens=100_000).params.max_tokens == 100_000


def test_the_betas_a_unit_was_planned_with_are_what_its_create_carries():
    """Planned betas win over a scan of the body: decided once, with the call's own table."""
    from batchkit.backends import UnitPlan
    from batchkit.core.models import unit_betas

    sim = make_sim()
    client, seen = _recording_client(sim)
    backend = MessageBatches(client, betas_for=output_betas)
    planned = unit_betas("batch", max_tokens=200_000, output_cap=load_prices().get("claude-opus-4-6").max_output_tokens)
    assert planned == (OUTPUT_300K_BETA,)
    long_one = backend.send(_body("claude-opus-4-6", 200_000), UnitPlan(betas=planned))
    # planned without betas (a cap the call's prices= raised): no header, although the default table would add it
    raised = backend.send(_body("claude-opus-4-6", 200_000, n=1), UnitPlan(betas=()))
    assert _creates(seen) == [OUTPUT_300K_BETA, None]
    statuses = {b: {CODE_STATUS[c] for c in backend.collect(b).statuses} for b in (long_one.id, raised.id)}
    assert statuses == {long_one.id: {"succeeded"}, raised.id: {"errored"}}  # the simulator keeps the real cap


def test_unit_betas_only_for_batches_over_the_cap():
    from batchkit.core.models import OUTPUT_300K_BETA as PLANNED_BETA
    from batchkit.core.models import unit_betas

    assert PLANNED_BETA == OUTPUT_300K_BETA
    assert unit_betas("batch", max_tokens=128_001, output_cap=128_000) == (OUTPUT_300K_BETA,)
    assert unit_betas("batch", max_tokens=128_000, output_cap=128_000) == ()
    assert unit_betas("realtime", max_tokens=200_000, output_cap=128_000) == ()
    assert unit_betas("batch", max_tokens=200_000, output_cap=None) == ()


def _stored_betas(out) -> list[str | None]:
    job = Job.of(out)
    return [b["betas"] for b in job.store.batches() if b["job_id"] == job.job_id]


def test_a_cap_the_call_lowers_plans_the_beta_and_its_unit_stores_it():
    """The call's own table decides at planning: 100,000 is within opus' built-in cap, over the
    64,000 this call's prices= gives it — so its unit is planned, stored and sent with the beta."""
    sim = make_sim()
    client, seen = _recording_client(sim)
    out = frame(2).claude.batch(
        "Say {t}",
        output="a",
        model="claude-opus-4-6",
        max_tokens=100_000,
        client=client,
        prices={"claude-opus-4-6": {"max_output_tokens": 64_000, "batch_output_300k": True}},
        progress=False,
    )
    assert out["a"].notna().all()
    assert _creates(seen) == [OUTPUT_300K_BETA]
    assert _stored_betas(out) == [OUTPUT_300K_BETA]


def test_a_cap_the_call_raises_plans_no_beta_and_its_unit_stores_none():
    """200,000 is over opus' built-in cap but within the 256,000 this call's prices= claims: no
    beta is planned (the simulator keeps the real cap, so the rows come back errored)."""
    sim = make_sim()
    client, seen = _recording_client(sim)
    with pytest.warns(BatchkitWarning, match="invalid_request_error"):
        out = frame(2).claude.batch(
            "Say {t}",
            output="a",
            model="claude-opus-4-6",
            max_tokens=200_000,
            client=client,
            prices={"claude-opus-4-6": {"max_output_tokens": 256_000}},
            progress=False,
        )
    assert _creates(seen) == [None]
    assert _stored_betas(out) == [""]
    assert out["a"].isna().all()


def test_a_unit_planned_before_the_store_kept_betas_still_goes_out_right(monkeypatch):
    """A unit whose stored betas are NULL (planned by an older batchkit) gets them from its body,
    against the call's own table."""
    import batchkit.engine.units as units

    monkeypatch.setattr(units, "planned_betas", lambda *args, **kwargs: None)
    sim = make_sim()
    client, seen = _recording_client(sim)
    out = frame(2).claude.batch(
        "Say {t}", output="a", model="claude-opus-4-6", max_tokens=200_000, client=client, progress=False
    )
    assert _stored_betas(out) == [None]
    assert out["a"].notna().all() and _creates(seen) == [OUTPUT_300K_BETA]
    seen.clear()
    out = frame(3).claude.batch(
        "Say {t}",
        output="a",
        model="claude-opus-4-6",
        max_tokens=100_000,
        client=client,
        prices={"claude-opus-4-6": {"max_output_tokens": 64_000, "batch_output_300k": True}},
        progress=False,
    )
    assert _stored_betas(out) == [None]
    assert out["a"].notna().all() and _creates(seen) == [OUTPUT_300K_BETA]  # the call's cap, not the built-in one


def test_a_retry_of_rows_a_truncated_retry_sent_under_the_beta_goes_out_under_it_again():
    """Rows retried with ``max_tokens`` over the standard cap carry it in their stored requests; when
    some come back with a transient error, the job's automatic retry plans them from the store —
    and must send them under the beta again (without it the API refuses every one)."""
    import pandas as pd

    from batchkit.simulator import Faults, Processing, SimConfig, Simulator

    config = SimConfig(processing=Processing.instant(), seed=3, faults=Faults(errored_rate={"overloaded_error": 0.4}))
    sim = Simulator(config=config, responder=lambda params: "word " * 40)
    client, seen = _recording_client(sim)
    df = pd.DataFrame({"t": [f"r{i}" for i in range(20)]})
    job = df.claude.submit("{t}", model="claude-opus-4-6", max_tokens=5, client=client, poll_interval=0.01)
    job.wait()
    assert (job.outcomes()["status"] == "truncated").all()
    before = len(_creates(seen))
    job.retry(truncated=True, max_tokens=200_000)
    outcomes = job.outcomes()
    # none refused for its max_tokens; only the simulated transient fault may outlast the retries
    assert set(outcomes["error_type"].dropna()) <= {"overloaded_error"}
    assert (outcomes["status"] == "succeeded").sum() >= 15
    later = _creates(seen)[before:]
    assert len(later) >= 2, "the transient errors should have needed a second batch"
    assert later == [OUTPUT_300K_BETA] * len(later)


def test_a_model_the_price_table_does_not_know_gets_the_beta_from_its_requests_as_before():
    """A model let through with ``check_model=False`` has no cap in the table: its unit is planned
    without stored betas, and the create carries the beta once a request asks for more than any
    covered model's standard cap (the rule :func:`output_betas` has always applied)."""
    sim = make_sim()
    client, seen = _recording_client(sim)
    job = frame(2).claude.submit(
        "Say {t}", model="claude-opus-6", check_model=False, max_tokens=100_000, client=client, poll_interval=0.01
    )
    job.wait()
    assert [unit["betas"] for unit in job.store.batches(job_id=job.job_id)] == [None]
    assert _creates(seen) == [OUTPUT_300K_BETA]
