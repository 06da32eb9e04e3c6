"""Tests of the fake-service base (tests/fakes/base.py) and the Prism proxy helper, over real loopback."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import require_prism
from tests.fakes.base import FakeService, FaultPlan, Request, Response, route
from tests.fakes.prism import PrismProxy, assert_no_violations, contracts_dir


class EchoService(FakeService):
    """A small fake with a stateful counter, an echo route and a failing route."""

    name = "echo"

    def __init__(self, tokens: set[str] | None = None, port: int = 0) -> None:
        super().__init__(tokens=tokens or set(), port=port)
        self.hits = 0

    @route("GET", r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)")
    def get_repo(self, request: Request) -> Response:
        self.hits += 1
        return Response(
            200, {"owner": request.params["owner"], "repo": request.params["repo"], "n": self.hits}
        )

    @route("POST", r"/echo")
    def echo(self, request: Request) -> Response:
        return Response(201, {"got": request.json(), "q": request.query, "ua": request.headers.get("x-test")})

    @route("GET", r"/secure")
    def secure(self, request: Request) -> Response:
        return self.require_bearer(request) or Response(200, {"ok": True})

    @route("GET", r"/boom")
    def boom(self, request: Request) -> Response:
        raise RuntimeError("kaput")


@pytest.fixture
def svc() -> Iterator[EchoService]:
    with EchoService(tokens={"good-token"}) as service:
        yield service


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as c:
        yield c


def test_routes_with_named_groups(svc: EchoService, client: httpx.Client) -> None:
    r = client.get(f"{svc.url}/repos/octo/hello")
    assert r.status_code == 200
    assert r.json() == {"owner": "octo", "repo": "hello", "n": 1}
    assert client.get(f"{svc.url}/repos/octo/hello").json()["n"] == 2  # keep-alive, state kept


def test_unknown_route_is_404_json(svc: EchoService, client: httpx.Client) -> None:
    r = client.get(f"{svc.url}/nope")
    assert r.status_code == 404
    assert "no route" in r.json()["message"]
    assert client.post(f"{svc.url}/repos/octo/hello").status_code == 404  # wrong method


def test_handler_exception_is_500_and_logged(svc: EchoService, client: httpx.Client) -> None:
    r = client.get(f"{svc.url}/boom")
    assert r.status_code == 500
    assert "RuntimeError: kaput" in r.json()["message"]
    entry = svc.last("GET", r"/boom")
    assert entry.status == 500
    assert entry.error is not None and "kaput" in entry.error


def test_request_log_keeps_headers_body_and_query(svc: EchoService, client: httpx.Client) -> None:
    r = client.post(
        f"{svc.url}/echo?a=1&b=x", json={"k": "v"}, headers={"X-Test": "yes", "Authorization": "Bearer s3"}
    )
    assert r.status_code == 201
    assert r.json() == {"got": {"k": "v"}, "q": {"a": "1", "b": "x"}, "ua": "yes"}
    entry = svc.last()
    assert (entry.method, entry.path, entry.query, entry.status) == (
        "POST",
        "/echo",
        {"a": "1", "b": "x"},
        201,
    )
    assert entry.headers["authorization"] == "Bearer s3"  # case-insensitive
    assert entry.json() == {"k": "v"}
    assert entry.faulted is None and not entry.scripted
    assert svc.count("POST") == 1 and svc.count(path_re=r"/echo") == 1 and svc.count("GET") == 0
    svc.clear_log()
    assert svc.requests() == []


def test_chunked_request_body_is_decoded(svc: EchoService, client: httpx.Client) -> None:
    r = client.post(f"{svc.url}/echo", content=iter([b'{"k":', b' "chunked"}']))
    assert r.json()["got"] == {"k": "chunked"}
    assert svc.last().headers["transfer-encoding"] == "chunked"


def test_require_bearer(svc: EchoService, client: httpx.Client) -> None:
    assert client.get(f"{svc.url}/secure").status_code == 401
    assert client.get(f"{svc.url}/secure", headers={"Authorization": "Bearer bad"}).status_code == 401
    assert client.get(f"{svc.url}/secure", headers={"Authorization": "bearer good-token"}).status_code == 200


def test_scripted_reply_is_consumed_then_handler_answers(svc: EchoService, client: httpx.Client) -> None:
    svc.script("GET", r"/repos/.+", Response(409, {"message": "conflict"}), times=2)
    svc.script("GET", r"/repos/.+", Response(202, b"raw", {"X-Scripted": "2"}))
    statuses = [client.get(f"{svc.url}/repos/o/r").status_code for _ in range(4)]
    assert statuses == [409, 409, 202, 200]
    assert svc.hits == 1
    assert [e.scripted for e in svc.requests()] == [True, True, True, False]
    assert svc.pending_scripts() == 0


def _statuses(svc: FakeService, client: httpx.Client, plan: FaultPlan, n: int = 30) -> list[int]:
    svc.set_fault_plan(plan)
    return [client.get(f"{svc.url}/repos/o/r").status_code for _ in range(n)]


def test_fault_plan_is_deterministic_per_seed(svc: EchoService, client: httpx.Client) -> None:
    rates = {503: 0.3, 429: 0.1}
    first = _statuses(svc, client, FaultPlan(seed=7, rates=rates))
    again = _statuses(svc, client, FaultPlan(seed=7, rates=rates))
    other = _statuses(svc, client, FaultPlan(seed=8, rates=rates))
    assert first == again
    assert first != other
    assert {503, 200} <= set(first)
    faulted = [e.faulted for e in svc.requests()[:30]]
    assert faulted == [None if s == 200 else str(s) for s in first]


def test_fault_plan_only_and_max_faults(svc: EchoService, client: httpx.Client) -> None:
    svc.set_fault_plan(FaultPlan(seed=1, rates={503: 1.0}, only=[("GET", r"/repos/.+")], max_faults=2))
    assert client.post(f"{svc.url}/echo", json=1).status_code == 201  # not covered
    assert [client.get(f"{svc.url}/repos/o/r").status_code for _ in range(3)] == [503, 503, 200]
    svc.clear_faults()
    assert client.get(f"{svc.url}/repos/o/r").status_code == 200


def test_fault_plan_rejects_bad_rates() -> None:
    with pytest.raises(ValueError):
        FaultPlan(rates={503: 0.8}, drop_rate=0.5)


def test_retry_after_header(svc: EchoService, client: httpx.Client) -> None:
    svc.set_fault_plan(FaultPlan(seed=3, rates={429: 1.0}, retry_after=1))
    r = client.get(f"{svc.url}/repos/o/r")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert r.json()["status"] == 429
    assert svc.hits == 0  # the handler did not run


def test_dropped_connection_is_a_transport_error(svc: EchoService, client: httpx.Client) -> None:
    svc.set_fault_plan(FaultPlan(seed=1, drop_rate=1.0, max_faults=1))
    with pytest.raises(httpx.TransportError):
        client.get(f"{svc.url}/repos/o/r")
    assert svc.last().faulted == "drop" and svc.last().status is None
    assert svc.hits == 0
    assert client.get(f"{svc.url}/repos/o/r").status_code == 200  # the client recovers


def test_truncated_body_is_a_protocol_error(svc: EchoService, client: httpx.Client) -> None:
    svc.set_fault_plan(FaultPlan(seed=1, truncate_rate=1.0, max_faults=1))
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{svc.url}/repos/o/r")
    assert svc.last().faulted == "truncate"
    assert svc.hits == 1  # the handler ran: the work happened, the answer was lost
    assert client.get(f"{svc.url}/repos/o/r").status_code == 200


def test_latency_is_added(svc: EchoService, client: httpx.Client) -> None:
    svc.set_fault_plan(FaultPlan(seed=1, latency=(0.1, 0.15)))
    started = time.monotonic()
    assert client.get(f"{svc.url}/repos/o/r").status_code == 200
    assert time.monotonic() - started >= 0.1
    assert 0.1 <= svc.last().latency <= 0.15


def test_stop_frees_the_port(client: httpx.Client) -> None:
    svc = EchoService().start()
    url, port = svc.url, svc.port
    assert client.get(f"{url}/repos/o/r").status_code == 200  # leaves a keep-alive connection open
    svc.stop()
    svc.stop()  # idempotent
    with pytest.raises(httpx.TransportError):
        client.get(f"{url}/repos/o/r")
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    with EchoService(port=port) as again:
        assert httpx.get(f"{again.url}/repos/o/r", timeout=5).status_code == 200


def test_add_route_at_run_time(client: httpx.Client) -> None:
    with FakeService() as svc:
        svc.add_route(
            "*", r"/any/(?P<x>\d+)", lambda req: Response(200, {"x": req.params["x"], "m": req.method})
        )
        assert client.put(f"{svc.url}/any/42").json() == {"x": "42", "m": "PUT"}


# ----- Prism in front of a fake ---------------------------------------------------------------------


def valid_github_user() -> dict[str, object]:
    """A `private-user` object that satisfies the GitHub contract for GET /user."""
    base = "https://api.github.com/users/octocat"
    return {
        "login": "octocat",
        "id": 1,
        "user_view_type": "private",
        "node_id": "MDQ6VXNlcjE=",
        "avatar_url": "https://github.com/images/error/octocat_happy.gif",
        "gravatar_id": "",
        "url": base,
        "html_url": "https://github.com/octocat",
        "followers_url": f"{base}/followers",
        "following_url": f"{base}/following{{/other_user}}",
        "gists_url": f"{base}/gists{{/gist_id}}",
        "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/subscriptions",
        "organizations_url": f"{base}/orgs",
        "repos_url": f"{base}/repos",
        "events_url": f"{base}/events{{/privacy}}",
        "received_events_url": f"{base}/received_events",
        "type": "User",
        "site_admin": False,
        "name": "monalisa octocat",
        "company": None,
        "blog": "",
        "location": None,
        "email": None,
        "hireable": None,
        "bio": None,
        "public_repos": 2,
        "public_gists": 1,
        "followers": 20,
        "following": 0,
        "created_at": "2008-01-14T04:33:35Z",
        "updated_at": "2008-01-14T04:33:35Z",
        "private_gists": 0,
        "total_private_repos": 0,
        "owned_private_repos": 0,
        "disk_usage": 0,
        "collaborators": 0,
        "two_factor_authentication": True,
    }


@pytest.fixture(scope="module")
def prism_bin() -> str:
    return require_prism()


def test_prism_proxy_flags_contract_violations(prism_bin: str, tmp_path: os.PathLike[str]) -> None:
    contract = contracts_dir() / "github.prism.openapi.json"
    with FakeService() as fake:
        fake.add_route("GET", r"/user", lambda req: Response(200, valid_github_user()))
        with (
            PrismProxy(contract, fake.url, prism_bin, log_dir=tmp_path) as prism,
            httpx.Client(timeout=10) as c,
        ):
            ok = c.get(f"{prism.url}/user", headers={"Authorization": "Bearer t"})
            assert ok.status_code == 200, prism.log_text()
            assert_no_violations(ok.headers)
            assert ok.json()["login"] == "octocat"
            assert fake.last("GET", "/user").headers["authorization"] == "Bearer t"

            broken = {k: v for k, v in valid_github_user().items() if k not in ("node_id", "login")}
            fake.script("GET", r"/user", Response(200, broken))
            bad = c.get(f"{prism.url}/user")
            assert bad.status_code == 500
            with pytest.raises(AssertionError, match="contract violations"):
                assert_no_violations(bad.headers)
            assert "node_id" in bad.headers["sl-violations"]


def test_fault_plan_decide_without_a_server() -> None:
    def run(seed: int) -> list[str | None]:
        plan = FaultPlan(seed=seed, rates={500: 0.5}, only=("POST", r"/deploys/.+"))
        assert plan.decide("GET", "/deploys/1") == (None, 0.0)  # not covered, draws nothing
        return [plan.decide("POST", "/deploys/1")[0] for _ in range(20)]

    assert run(1) == run(1)
    assert set(run(1)) == {None, "500"}


def test_concurrent_requests_share_state_safely(svc: EchoService) -> None:
    def get(_: int) -> int:
        return httpx.get(f"{svc.url}/repos/o/r", timeout=5).json()["n"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = sorted(pool.map(get, range(24)))
    assert seen == list(range(1, 25))
    assert svc.count("GET") == 24
