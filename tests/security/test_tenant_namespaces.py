# ruff: noqa: F811 - the shared API and site fixtures are imported by name
"""Hostile tenants against the namespaces tenants share (DESIGN §6), each attack as a tenant would try it.

1. Colliding Block documents: tenant ``a`` + Block ``b--c`` and tenant ``a--b`` + Block ``c`` (and ``Acme``/
   ``acme``, ``a_b``/``a.b``/``a-b``) once met in one Prefect document, so one tenant's runs used the other's
   token and endpoint, or a save overwrote the other's Block. Through the real API, against a real Prefect.
2. Naming local resources: a tenant's Block whose ``root``/``base_url``, or Git remote ``url``, names a
   folder, server or repository on the worker is refused with a 422 naming the field.
3. Taking over another tenant's site: a Netlify Block whose (fake) API answers the victim's site id, then the
   same name saved again as a local static site. The phases (``task.fn``) and compensation must never hand
   that site id to the new Block.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prefect.blocks.core import Block
from pydantic import SecretStr
from typer.testing import CliRunner

from blocks.base import block_identity
from blocks.catalog import document_name, resolve, resolve_repository, resolve_target, save_block
from blocks.repositories.base import RepositoryState
from blocks.repositories.local_git import LocalGitRepository
from blocks.targets.base import SiteState
from blocks.targets.local_static import LocalStaticSite
from blocks.targets.netlify import NetlifySite
from core.errors import ConfigError, UnknownBlock
from core.files import GeneratedFile
from core.models import Project, Run
from core.models import Tenant as TenantRow
from core.names import is_valid_tenant_id
from core.runtime import get_snapshots
from core.settings import get_settings
from core.store import Store
from flows.compensation import compensate
from tasks.deploy import deploy
from tasks.publish import publish
from tests.conftest import require_tool
from tests.fakes.base import Response
from tests.fakes.netlify import FakeNetlify
from tests.integration.api.conftest import (  # noqa: F401 - fixtures
    Tenant,
    client,
    make_client,
    make_tenant,
    store,
)
from tests.unit.tasks.conftest import sites  # noqa: F401 - fixture

NETLIFY = "/api/blocks/pombolt-netlify"


@pytest.fixture(scope="module", autouse=True)
def prefect_harness() -> Iterator[None]:
    """A real temporary Prefect server: Blocks are saved to and loaded from its API."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


def legacy_tenant(store: Store, tenant_id: str) -> Tenant:
    """A tenant made before tenant ids had a rule (its row is written directly), with an API key."""
    with store.session() as s:
        s.add(TenantRow(id=tenant_id, name=tenant_id))
        s.commit()
    _row, key = store.create_api_key(tenant_id)  # an existing tenant is not checked again
    return Tenant(tenant_id, key)


def put_netlify(client: TestClient, tenant: Tenant, name: str, api_url: str, token: str) -> None:
    r = client.put(f"{NETLIFY}/{name}", json={"api_url": api_url, "token": token}, headers=tenant.headers)
    assert r.status_code == 200, r.text


def listed(client: TestClient, tenant: Tenant) -> dict[str, str]:
    """Name -> api_url of the tenant's Blocks as the API lists them."""
    r = client.get("/api/blocks", headers=tenant.headers)
    assert r.status_code == 200, r.text
    return {b["name"]: b["fields"].get("api_url") for b in r.json()}


def resolved(store: Store, tenant: Tenant, name: str) -> tuple[str, str]:
    """The endpoint and token a run of the tenant would use for its Block ``name``."""
    block = resolve("target", name, tenant_id=tenant.id, store=store)
    assert isinstance(block, NetlifySite)
    return block.api_url, block.token.get_secret_value()


# --- 1. Block documents cannot collide -------------------------------------------------------------
@pytest.mark.parametrize("a_first", [True, False], ids=["a-saves-first", "a--b-saves-first"])
def test_a_plus_b__c_and_a__b_plus_c_are_two_blocks(
    client: TestClient, store: Store, make_tenant: Callable[[str], Tenant], a_first: bool
) -> None:
    a, ab = make_tenant("a"), make_tenant("a--b")
    saves = [(a, "b--c", "https://a.example/api/v1", "tok-a"), (ab, "c", "https://ab.example/api/v1", "tok-ab")]
    for tenant, name, url, token in saves if a_first else reversed(saves):
        put_netlify(client, tenant, name, url, token)

    assert listed(client, a) == {"b--c": "https://a.example/api/v1"}  # the later save overwrote nothing
    assert listed(client, ab) == {"c": "https://ab.example/api/v1"}
    assert resolved(store, a, "b--c") == ("https://a.example/api/v1", "tok-a")  # each run: its own token, its
    assert resolved(store, ab, "c") == ("https://ab.example/api/v1", "tok-ab")  # own endpoint
    docs = {store.find_block(t.id, n).document_name for t, n, *_ in saves}  # type: ignore[union-attr]
    assert len(docs) == 2


@pytest.mark.parametrize("tenant_id", ["Acme", "a_b", "a.b", "ACME", "a b", "-a", "", "x" * 64, "é"])
def test_tenant_ids_outside_the_rule_are_refused_at_creation(store: Store, tenant_id: str) -> None:
    with pytest.raises(ConfigError, match=r"tenant id .* is invalid; use 1-63 lowercase letters"):
        store.create_api_key(tenant_id)
    with pytest.raises(ConfigError, match="tenant id"):
        store.ensure_tenant(tenant_id)
    assert store.ensure_tenant("a-b").id == "a-b"


def test_keys_create_refuses_a_bad_tenant_id_with_a_clear_error(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops.cli import app

    for name in ("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "PREFECT_SERVER_LOGGING_LEVEL"):
        monkeypatch.setenv(name, os.environ.get(name, "WARNING"))  # restored after: boot() only sets defaults
    result = CliRunner().invoke(app, ["keys", "create", "--tenant", "Acme"])
    assert result.exit_code == 2
    assert "tenant id 'Acme' is invalid; use 1-63 lowercase letters" in result.output
    assert CliRunner().invoke(app, ["keys", "create", "--tenant", "acme"]).exit_code == 0


@pytest.mark.parametrize("group", [("Acme", "acme"), ("a_b", "a.b", "a-b")], ids=["case", "punctuation"])
def test_tenants_made_before_the_rule_still_get_their_own_documents(
    client: TestClient, store: Store, make_tenant: Callable[[str], Tenant], group: tuple[str, ...]
) -> None:
    tenants = [make_tenant(t) if is_valid_tenant_id(t) else legacy_tenant(store, t) for t in group]
    for i, tenant in enumerate(tenants):
        put_netlify(client, tenant, "prod", f"https://t{i}.example/api/v1", f"tok-{i}")
    for i, tenant in enumerate(tenants):
        assert listed(client, tenant) == {"prod": f"https://t{i}.example/api/v1"}
        assert resolved(store, tenant, "prod") == (f"https://t{i}.example/api/v1", f"tok-{i}")
    assert len({document_name(t.id, "prod") for t in tenants}) == len(tenants)


def test_document_names_fit_prefect_and_carry_a_fixed_length_tenant_digest() -> None:
    doc = document_name("a", "b--c")
    assert doc.startswith("t-") and doc.endswith("-b--c") and len(doc) == len("t-") + 16 + len("-b--c")
    assert doc != document_name("a--b", "c") and document_name("Acme", "x") != document_name("acme", "x")
    with pytest.raises(ConfigError, match="Block name"):
        document_name("a", "Bad_Name")


def test_a_block_saved_under_the_old_naming_keeps_working_unless_two_tenants_share_it(
    client: TestClient, store: Store, make_tenant: Callable[[str], Tenant]
) -> None:
    acme, a, ab = make_tenant("acme"), make_tenant("a"), make_tenant("a--b")
    # acme's Block, saved before the fix as t-acme--old: it still resolves through its binding
    NetlifySite(token=SecretStr("tok-acme"), api_url="https://acme.example/api/v1").save("t-acme--old")
    store.bind_block("acme", "old", "pombolt-netlify", "t-acme--old")
    assert resolved(store, acme, "old") == ("https://acme.example/api/v1", "tok-acme")
    assert listed(client, acme) == {"old": "https://acme.example/api/v1"}

    # a's b--c and a--b's c met in t-a--b--c before the fix (the last save won): neither may use it now
    NetlifySite(token=SecretStr("tok-ab"), api_url="https://ab.example/api/v1").save("t-a--b--c", overwrite=True)
    store.bind_block("a", "b--c", "pombolt-netlify", "t-a--b--c")
    store.bind_block("a--b", "c", "pombolt-netlify", "t-a--b--c")
    for tenant, name in ((a, "b--c"), (ab, "c")):
        with pytest.raises(UnknownBlock, match="shares its Prefect document with another tenant"):
            resolve("target", name, tenant_id=tenant.id, store=store)
        assert listed(client, tenant) == {}

    # a saves its Block again: the shared document goes, so a--b cannot inherit whatever a left in it
    put_netlify(client, a, "b--c", "https://a.example/api/v1", "tok-a")
    assert resolved(store, a, "b--c") == ("https://a.example/api/v1", "tok-a")
    with pytest.raises(UnknownBlock, match="document is gone; save it again"):
        resolve("target", "c", tenant_id=ab.id, store=store)


# --- 2. Tenants cannot name local resources --------------------------------------------------------
LOCAL_FIELDS = [
    ("pombolt-local-static-site", {"root": "/srv/pombolt/sites"}, "root"),
    ("pombolt-local-static-site", {"base_url": "http://127.0.0.1:8000/victim-1234/"}, "base_url"),
    ("pombolt-local-git", {"root": "/srv/pombolt/repos/victim"}, "root"),
    ("pombolt-git-remote", {"url": "file:///srv/pombolt/repos/victim/shop-1234.git"}, "url"),
    ("pombolt-git-remote", {"url": "/srv/pombolt/repos/victim/shop-1234.git"}, "url"),
    ("pombolt-git-remote", {"url": "../victim/shop-1234.git"}, "url"),
    ("pombolt-git-remote", {"url": "~/repos/x.git"}, "url"),
    ("pombolt-git-remote", {"url": "ext::sh -c touch% /tmp/pwned"}, "url"),
    ("pombolt-git-remote", {"url": "--upload-pack=touch /tmp/pwned"}, "url"),
]


@pytest.mark.parametrize(("slug", "body", "field"), LOCAL_FIELDS, ids=lambda v: str(v)[:40])
def test_fields_naming_worker_resources_are_refused_with_422_naming_the_field(
    client: TestClient, store: Store, make_tenant: Callable[[str], Tenant], slug: str, body: dict[str, str], field: str
) -> None:
    mallory = make_tenant("mallory")
    r = client.put(f"/api/blocks/{slug}/mine", json=body, headers=mallory.headers)
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [["body", field]]
    assert repr(field) in r.json()["detail"][0]["msg"]
    assert store.find_block("mallory", "mine") is None  # nothing was saved
    assert client.get("/api/blocks", headers=mallory.headers).json() == []


@pytest.mark.parametrize(
    ("slug", "body"),
    [
        ("pombolt-local-static-site", {}),  # the operator's default folder and server
        ("pombolt-local-static-site", {"keep_releases": 5, "root": None}),
        ("pombolt-local-git", {"branch": "trunk"}),
        ("pombolt-git-remote", {"url": "https://git.example.com/team/app.git", "token": "t"}),
        ("pombolt-git-remote", {"url": "ssh://git@git.example.com:2222/team/app.git"}),
    ],
)
def test_network_remotes_and_the_operators_defaults_are_allowed(
    client: TestClient, make_tenant: Callable[[str], Tenant], slug: str, body: dict[str, object]
) -> None:
    r = client.put(f"/api/blocks/{slug}/mine", json=body, headers=make_tenant("mallory").headers)
    assert r.status_code == 200, r.text


def test_the_local_cli_tenant_may_name_local_paths(client: TestClient, make_tenant: Callable[[str], Tenant]) -> None:
    local = make_tenant(get_settings().default_tenant)
    r = client.put("/api/blocks/pombolt-local-git/mine", json={"root": "/srv/repos"}, headers=local.headers)
    assert r.status_code == 200, r.text


# --- 3. Provider state belongs to the Block that made it -------------------------------------------
def save(store: Store, tenant_id: str, name: str, block: Block) -> str:
    store.ensure_tenant(tenant_id)
    return save_block(store, tenant_id, name, block)


def new_run(store: Store, tenant_id: str, name: str, target: str = "local-static", repository: str = "none") -> Run:
    store.ensure_tenant(tenant_id)
    project = store.find_project(tenant_id, name) or store.create_project(
        Project(tenant_id=tenant_id, name=name, generator_ref="offline", repository_ref=repository, target_ref=target)
    )
    return store.create_run(project, "a pomodoro timer")


def site_snapshot(tenant_id: str, text: str) -> str:
    return get_snapshots(tenant_id).put([GeneratedFile.text("index.html", text)]).snapshot_id


@pytest.fixture
def netlify() -> Iterator[FakeNetlify]:
    with FakeNetlify() as fake:
        fake.processing_polls = 0
        yield fake


def test_a_type_switch_never_repoints_another_tenants_site(
    store: Store, sites: tuple[Path, str], netlify: FakeNetlify
) -> None:
    root, url = sites
    local_site = LocalStaticSite(root=str(root), base_url=url)
    # the victim's live site
    save(store, "victim", "site", local_site)
    victim_run = new_run(store, "victim", "shop", target="site")
    victim = deploy.fn(victim_run.id, "victim", victim_run.project_id, site_snapshot("victim", "<h1>shop</h1>"), "site")
    victim_id = victim.state.site_id
    assert victim_id and httpx.get(victim.live_url, timeout=10).text == "<h1>shop</h1>"

    # mallory's Netlify Block talks to an API that answers the victim's site id for "its" new site
    forged = {"id": victim_id, "name": "forged", "url": f"{netlify.url}/x", "ssl_url": f"{netlify.url}/x"}
    netlify.sites[victim_id] = {**forged, "published": None}
    netlify.script("POST", r"/api/v1/sites", Response(201, forged))
    save(store, "mallory", "site", NetlifySite(token=SecretStr("t"), api_url=netlify.api_url, poll_interval=0.01))
    run1 = new_run(store, "mallory", "app", target="site")
    first = deploy.fn(run1.id, "mallory", run1.project_id, site_snapshot("mallory", "<h1>pwned</h1>"), "site")
    assert first.state.site_id == victim_id and first.state.created_by_run == run1.id  # the forged state is kept…

    # …then the same name is saved again as a local static site
    save(store, "mallory", "site", local_site)
    # compensation of that run must not remove the victim's site through the new Block
    assert compensate(store, run1, None) == []
    assert httpx.get(victim.live_url, timeout=10).text == "<h1>shop</h1>"
    # and the next deploy starts from a fresh state: mallory's own site, never the victim's
    run2 = new_run(store, "mallory", "app", target="site")
    second = deploy.fn(run2.id, "mallory", run2.project_id, site_snapshot("mallory", "<h1>pwned</h1>"), "site")
    assert second.state.site_id not in (None, victim_id)
    assert httpx.get(victim.live_url, timeout=10).text == "<h1>shop</h1>"
    assert httpx.get(second.live_url, timeout=10).text == "<h1>pwned</h1>"
    saved = SiteState.model_validate(store.get_project(run2.project_id).target_state)
    assert saved.made_by(block_identity(resolve_target("site", tenant_id="mallory", store=store), "site"))


def test_the_same_block_saved_again_keeps_its_site_and_another_document_does_not(
    store: Store, sites: tuple[Path, str]
) -> None:
    root, url = sites
    save(store, "acme", "site", LocalStaticSite(root=str(root), base_url=url))
    run1 = new_run(store, "acme", "app", target="site")
    snap = site_snapshot("acme", "<h1>app</h1>")
    first = deploy.fn(run1.id, "acme", run1.project_id, snap, "site")
    assert first.created and first.state.created_by_run == run1.id

    save(store, "acme", "site", LocalStaticSite(root=str(root), base_url=url, keep_releases=5))  # a new setting
    again = deploy.fn(new_run(store, "acme", "app", target="site").id, "acme", run1.project_id, snap, "site")
    assert again.state.created_by_run == run1.id  # the same document: the state is the Block's own

    store.bind_block("acme", "site", "pombolt-local-static-site", "acme-other")  # another document under that name
    LocalStaticSite(root=str(root), base_url=url).save("acme-other")
    other = deploy.fn(new_run(store, "acme", "app", target="site").id, "acme", run1.project_id, snap, "site")
    assert other.state.created_by_run is None  # a fresh state: it does not inherit what the first Block made


def test_a_repository_state_made_by_another_block_is_never_reused(store: Store, data_dir: Path) -> None:
    require_tool("git", "the local repository Block commits with git")
    save(store, "mallory", "repo", LocalGitRepository(root=str(data_dir / "repos")))
    sibling = new_run(store, "mallory", "sibling", repository="repo")
    theirs = publish.fn(sibling.id, "mallory", sibling.project_id, site_snapshot("mallory", "<h1>s</h1>"), "repo", "fp")

    run = new_run(store, "mallory", "app", repository="repo")
    project = store.get_project(run.project_id)
    forged = RepositoryState(repository_id=theirs.state.repository_id, block="made-by-some-other-block")
    store.update(project, repository_state=forged.model_dump(mode="json"))
    ours = publish.fn(run.id, "mallory", run.project_id, site_snapshot("mallory", "<h1>a</h1>"), "repo", "fp")
    assert ours.state.repository_id != theirs.state.repository_id and ours.created
    assert ours.state.made_by(block_identity(resolve_repository("repo", tenant_id="mallory", store=store), "repo"))


def test_block_identity_is_reference_type_and_document() -> None:
    unsaved = LocalStaticSite()
    assert block_identity(unsaved, "local-static") == block_identity(LocalStaticSite(keep_releases=9), "local-static")
    assert block_identity(unsaved, "local-static") != block_identity(unsaved, "site")
    saved: Block = LocalStaticSite()
    saved.save("identity-probe")
    assert block_identity(saved, "site") != block_identity(unsaved, "site")
    loaded: Block = Block.load("pombolt-local-static-site/identity-probe")  # type: ignore[assignment]
    assert block_identity(saved, "site") == block_identity(loaded, "site")
