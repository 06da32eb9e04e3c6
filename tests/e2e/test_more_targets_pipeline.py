"""``pombolt run --target <saved block>`` to the Cloudflare Pages and Vercel fakes, through the real pipeline.

The Block is saved for the tenant with ``blocks.catalog.save_block``; the run goes through Prefect (so the
global rate limits ``cloudflare-api``/``vercel-api`` are taken for real), deploys to the fake, and ``verify``
fetches the live URL the fake serves. Running again with the same requirements deploys again (deploy is not
cached) and must upload nothing, which the fake's request log shows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect.blocks.core import Block
from pydantic import SecretStr
from typer.testing import CliRunner

from blocks.catalog import save_block
from blocks.targets.cloudflare_pages import CloudflarePagesSite
from blocks.targets.vercel import VercelProject
from core.runtime import get_store
from core.settings import get_settings
from ops.cli import app
from tests.fakes.base import FakeService
from tests.fakes.cloudflare import FakeCloudflare
from tests.fakes.vercel import FakeVercel
from usecases.setup import ensure_limits

pytestmark = pytest.mark.e2e

TOKEN = "e2e_provider_token_0123456789abcdef"
ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
REQ = "a pomodoro timer with a task list and dark mode"


def _cloudflare(fake: FakeService, project: str) -> tuple[Block, str, str]:
    assert isinstance(fake, FakeCloudflare)
    block = CloudflarePagesSite(
        api_token=SecretStr(TOKEN),
        account_id=ACCOUNT,
        project_name=project,
        api_url=fake.api_url,
        site_url=fake.site_url(project),
    )
    return (
        block,
        r"/client/v4/pages/assets/upload",
        rf"/client/v4/accounts/{ACCOUNT}/pages/projects/{project}/deployments",
    )


def _vercel(fake: FakeService, project: str) -> tuple[Block, str, str]:
    assert isinstance(fake, FakeVercel)
    block = VercelProject(
        token=SecretStr(TOKEN), project_name=project, api_url=fake.url, site_url=fake.site_url(project)
    )
    return block, r"/v2/files", r"/v13/deployments"


PROVIDERS: dict[str, tuple[Callable[[], FakeService], Callable[[FakeService, str], tuple[Block, str, str]]]] = {
    "cloudflare": (lambda: FakeCloudflare(tokens={TOKEN}), _cloudflare),
    "vercel": (lambda: FakeVercel(tokens={TOKEN}), _vercel),
}


@pytest.fixture(autouse=True)
def isolated(data_dir: Path) -> Iterator[Path]:
    ensure_limits()  # what 'pombolt init' does: the provider limits are used with strict=True
    yield data_dir


def pombolt(*args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(app, list(args))
    lines = result.stdout.strip().splitlines()
    return result.exit_code, json.loads(lines[-1]) if lines else {}, result.stderr


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_run_deploys_to_the_saved_target_and_an_unchanged_rerun_uploads_nothing(provider: str) -> None:
    make_fake, make_block = PROVIDERS[provider]
    project = f"pb-{uuid.uuid4().hex[:10]}"
    with make_fake() as fake:
        block, upload_path, create_path = make_block(fake, project)
        tenant = get_settings().default_tenant
        store = get_store()
        store.ensure_tenant(tenant)
        save_block(store, tenant, f"my-{provider}", block)

        code, report, err = pombolt("run", REQ, "--name", project, "--target", f"my-{provider}", "--json")
        assert code == 0, err
        assert report["status"] == "verified"
        assert report["live_url"] == fake.site_url(project)
        assert fake.count("POST", upload_path) >= 1
        assert TOKEN not in json.dumps(report) and TOKEN not in err

        fake.clear_log()
        code, again, err = pombolt("run", REQ, "--name", project, "--target", f"my-{provider}", "--json")
        assert code == 0, err
        assert again["status"] == "verified" and again["live_url"] == report["live_url"]
        assert fake.count("POST", create_path) >= 1  # it really deployed again
        assert fake.count("POST", upload_path) == 0  # and uploaded nothing


def test_provider_limits_are_strict_inside_a_run_and_a_no_op_outside() -> None:
    from prefect import flow

    from core.concurrency import CLOUDFLARE_LIMIT, VERCEL_LIMIT, provider_slot
    from core.errors import ConfigError

    @flow
    def take(name: str) -> None:
        provider_slot(name)

    take(CLOUDFLARE_LIMIT)  # exists (ensure_limits): one slot taken
    take(VERCEL_LIMIT)
    with pytest.raises(ConfigError, match="'no-such-api' is missing"):
        take("no-such-api")
    provider_slot("no-such-api")  # outside a run: nothing to ask, nothing raised
