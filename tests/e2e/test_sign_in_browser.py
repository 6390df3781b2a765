"""Sign-in with a real OpenID Connect provider (`oidc-provider-mock`, started here) and a real
headless Chromium against `streamlit run app.py` with an ``[auth]`` section in its secrets.

What each test tries: a visitor who has not signed in (a browser on a shared ``?run=`` link, and a
plain HTTP client) gets the sign-in page only and none of the workspace; a forged session cookie
counts as not signed in; an account from a domain not on the allow-list is refused; a signed-in
person sees the workbench with their name as the reviewer (not typed) and can sign out; a
provider that is down at sign-in time gives a clear refusal, no traceback; Bob cannot delete
Alice's run or evaluation (the buttons are greyed out) but can delete his own, and Alice, an admin,
deletes Bob's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from app_server import ROOT, free_port, start_app, stop_app
from page_checks import SCREENS, screenshot, settle
from playwright.sync_api import Page, expect

SECRET_PROMPT = "Quarterly numbers, confidential: revenue 4.2M"
USERS = [
    {"sub": "alice-001", "email": "alice@example.org", "email_verified": True, "name": "Alice Admin"},
    {"sub": "bob-002", "email": "bob@example.org", "email_verified": True, "name": "<b>Bob</b>"},
    {"sub": "mallory-003", "email": "mallory@evil.example", "email_verified": True, "name": "Mallory"},
]


def wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """A running OpenID Connect provider with three predefined accounts; yields its URL."""
    port = free_port()
    claims = [arg for user in USERS for arg in ("--user-claims", json.dumps(user))]
    log = open(tmp_path_factory.mktemp("oidc") / "provider.log", "w")  # noqa: SIM115 - closed below
    command = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port), *claims]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/.well-known/openid-configuration")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@dataclass(frozen=True)
class Seeded:
    """What the workspace holds before the browsers come: ids of runs and evaluations."""

    run: int  # the secret run (imported: no author, an admin's to delete)
    alice_run: int
    bob_run: int
    alice_evaluation: int
    bob_evaluation: int
    bob_draft: int


def _person(user: dict):
    from workspace.owners import Author

    return Author(user["name"], user["sub"], user["email"])


def _authored(opened, who) -> tuple[int, int, int]:
    """A run and two evaluations made by ``who`` as the app would store them."""
    from salience.core.types import Generation, GenerationSettings
    from salience.evaluation.runs import Check, parse_data, plan_evaluation
    from salience.prompts.variant import Variant
    from workspace.evaluations import create_evaluation

    generation = Generation(f"{who.name}'s prompt", " ok", (1, 2), "max_new_tokens", 0.5, 0.1)
    run = opened.record_run(generation, "embedded", "float32", GenerationSettings(max_new_tokens=8), by=who)
    plan = plan_evaluation(
        [Variant("a", "L {x}"), Variant("b", "I {x}")], parse_data("x\n1\n"), [Check("contains", "y")]
    )
    first = create_evaluation(opened, f"{who.sub} evaluation", plan, by=who)
    second = create_evaluation(opened, f"{who.sub} draft", plan, by=who)
    return run, first, second


def seed_workspace(data: Path) -> Seeded:
    """A saved run whose prompt no one signed out may ever see, and Alice's and Bob's records."""
    from workspace.store import Workspace

    data.mkdir(parents=True, exist_ok=True)
    opened = Workspace.open(f"sqlite:///{data / 'workspace.sqlite3'}")
    try:
        when = "2026-11-01T10:00:00+00:00"
        version = {
            "kind": "template_version",
            "id": 1,
            "template": "q",
            "text": SECRET_PROMPT,
            "variables": {},
        }
        run = {
            "kind": "run",
            "id": 1,
            "template_version_id": 1,
            "prompt": SECRET_PROMPT,
            "variables": {},
            "model": "embedded",
            "precision": "float32",
            "settings": {"max_new_tokens": 8, "stop_sequences": ["\n"], "temperature": 0.0},
            "output": " fine",
            "stop_reason": "end_of_text",
            "tokens": 2,
            "seconds": 0.5,
            "first_token_seconds": 0.1,
            "created_at": when,
        }
        opened.import_jsonl("".join(json.dumps(r) + "\n" for r in (version, run)))
        secret = opened.runs()[0].id
        alice_run, alice_evaluation, _ = _authored(opened, _person(USERS[0]))
        bob_run, bob_evaluation, bob_draft = _authored(opened, _person(USERS[1]))
        return Seeded(secret, alice_run, bob_run, alice_evaluation, bob_evaluation, bob_draft)
    finally:
        opened.close()


@pytest.fixture(scope="module")
def team_app(provider, tmp_path_factory, tiny_model_spec):
    """The app with sign-in on (allow-list @example.org, admin alice), on a tiny model; yields
    (URL, id of the seeded run)."""
    folder = tmp_path_factory.mktemp("team")
    seeded = seed_workspace(folder / "data")
    secrets = folder / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "a-long-random-cookie-secret-for-tests-only-0123456789"\n'
        'client_id = "workbench"\n'
        'client_secret = "workbench-client-secret"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n'
        "\n[access]\n"
        'allowed = ["@example.org"]\n'
        'admins = ["alice@example.org"]\n'
    )
    env = {"WORKBENCH_MODEL": tiny_model_spec, "GEMMA_WORKBENCH_DATA": str(folder / "data")}
    env.pop("GEMMA_WORKBENCH_ENGINE", None)
    process, url = start_app(ROOT / "app.py", env=env, args=("--secrets.files", str(secrets)))
    try:
        yield url, seeded
    finally:
        stop_app(process)


@pytest.fixture
def page(browser) -> Page:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    yield context.new_page()
    context.close()


def sign_in_button(page: Page):
    return page.get_by_role("button", name="Sign in")


def sign_in_as(page: Page, url: str, sub: str) -> None:
    page.goto(url)
    sign_in_button(page).click(timeout=60_000)
    page.locator(f"button[name='sub'][value='{sub}']").click(timeout=30_000)  # the provider's page
    page.wait_for_url(f"{url}/**", timeout=30_000)


def test_a_visitor_not_signed_in_gets_only_the_sign_in_page(team_app, page):
    url, seeded = team_app
    run_id = seeded.run
    page.goto(f"{url}/history?run={run_id}")
    expect(sign_in_button(page)).to_be_visible(timeout=60_000)
    settle(page)  # Streamlit is idle and the page has stopped changing: nothing else will arrive
    text = page.locator("body").inner_text()
    assert SECRET_PROMPT not in text and "Workbench" not in text and "History" not in text
    assert page.get_by_test_id("stSidebarNavLink").count() == 0
    screenshot(page, "signin-unauthenticated")


def test_a_plain_http_client_gets_no_workspace(team_app):
    url, seeded = team_app
    run_id = seeded.run
    with urllib.request.urlopen(f"{url}/history?run={run_id}", timeout=10) as answer:
        body = answer.read().decode("utf-8", "replace")
    assert SECRET_PROMPT not in body and "workbench-client-secret" not in body


def test_a_forged_session_cookie_counts_as_not_signed_in(team_app, page):
    url, seeded = team_app
    run_id = seeded.run
    host = url.split("//", 1)[1].split(":")[0]
    page.context.add_cookies(
        [{"name": "_streamlit_user", "value": "forged-" + "x" * 40, "domain": host, "path": "/"}]
    )
    page.goto(f"{url}/history?run={run_id}")
    expect(sign_in_button(page)).to_be_visible(timeout=60_000)
    assert SECRET_PROMPT not in page.locator("body").inner_text()


def test_a_domain_not_on_the_allow_list_is_refused(team_app, page):
    url, seeded = team_app
    run_id = seeded.run
    sign_in_as(page, url, "mallory-003")
    expect(page.get_by_text("is not on this workbench's allow-list")).to_be_visible(timeout=60_000)
    page.goto(f"{url}/history?run={run_id}")
    expect(page.get_by_text("is not on this workbench's allow-list")).to_be_visible(timeout=60_000)
    assert SECRET_PROMPT not in page.locator("body").inner_text()
    screenshot(page, "signin-refused")


def test_signed_in_the_workbench_opens_with_the_name_from_the_sign_in(team_app, page):
    url, seeded = team_app
    run_id = seeded.run
    sign_in_as(page, url, "alice-001")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Signed in as Alice Admin (alice@example.org) · admin")).to_be_visible(
        timeout=120_000
    )
    reviewer = sidebar.get_by_role("textbox", name="Your name (for review notes)")
    expect(reviewer).to_have_value("Alice Admin", timeout=30_000)
    expect(reviewer).to_be_disabled()
    screenshot(page, "signin-signed-in")
    page.goto(f"{url}/history?run={run_id}")
    expect(page.get_by_text(SECRET_PROMPT).first).to_be_visible(timeout=120_000)
    sidebar.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click(timeout=30_000)  # the provider's own page
    expect(sign_in_button(page)).to_be_visible(timeout=60_000)
    page.goto(f"{url}/history?run={run_id}")  # signed out: the shared link shows nothing again
    expect(sign_in_button(page)).to_be_visible(timeout=60_000)
    assert SECRET_PROMPT not in page.locator("body").inner_text()


def test_a_display_name_with_html_is_shown_as_text(team_app, page):
    url, _ = team_app
    sign_in_as(page, url, "bob-002")
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_text("Signed in as <b>Bob</b> (bob@example.org)")).to_be_visible(timeout=120_000)
    assert sidebar.locator("b", has_text="Bob").count() == 0


@pytest.mark.skipif(os.environ.get("CI_NO_PROVIDER_DOWN") == "1", reason="opted out")
def test_a_provider_down_at_sign_in_gives_a_clear_refusal(provider, tmp_path, browser):
    """A second app whose provider address answers nothing."""
    down = f"http://127.0.0.1:{free_port()}"
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        'cookie_secret = "another-long-random-cookie-secret-for-tests-0123"\n'
        'client_id = "workbench"\n'
        'client_secret = "workbench-client-secret"\n'
        f'server_metadata_url = "{down}/.well-known/openid-configuration"\n'
    )
    env = {"WORKBENCH_MODEL": "gguf:/nonexistent.gguf", "GEMMA_WORKBENCH_DATA": str(tmp_path / "data")}
    process, url = start_app(ROOT / "app.py", env=env, args=("--secrets.files", str(secrets)))
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = context.new_page()
        page.goto(url)
        sign_in_button(page).click(timeout=60_000)
        page.wait_for_load_state()
        text = page.locator("body").inner_text(timeout=30_000)
        expect(page.get_by_text("The sign-in service does not answer just now")).to_be_visible(timeout=30_000)
        text = page.locator("body").inner_text()
        assert "Traceback" not in text and "workbench-client-secret" not in text
        SCREENS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENS / "signin-provider-down-1440x900.png"))
    finally:
        context.close()
        stop_app(process)


def test_a_50_mb_upload_is_refused_by_the_box(team_app, page, tmp_path):
    url, _ = team_app
    sign_in_as(page, url, "bob-002")
    box = page.get_by_test_id("stFileUploader").filter(has_text="Your prompts (JSONL)")
    expect(box).to_be_visible(timeout=120_000)
    expect(box).to_contain_text("5MB per file")
    big = tmp_path / "big.jsonl"  # a file on disk: the browser reads it itself, where a buffer
    big.write_bytes(b'{"prompt": "x"}\n' * 3_200_000)  # would cross Playwright's pipe as base64
    box.locator("input[type=file]").set_input_files(big, timeout=120_000)  # 50 MB through the browser
    expect(box).to_contain_text("File must be 5.0MB or smaller", timeout=30_000)
    assert "Traceback" not in page.locator("body").inner_text()
    screenshot(page, "upload-refused", focus=page.get_by_text("Sample prompt").first)


def _delete_evaluation_button(page: Page, evaluation_id: int):
    return page.locator(f".st-key-eval-list-del-{evaluation_id} button").first


def _open_evaluations(page: Page, url: str) -> None:
    page.goto(f"{url}/history")
    page.get_by_role("tab", name="Evaluations").click(timeout=120_000)


def test_one_person_cannot_delete_anothers_run_or_evaluation(team_app, page):
    url, seeded = team_app
    sign_in_as(page, url, "bob-002")
    page.goto(f"{url}/history?run={seeded.alice_run}")
    delete_run = page.get_by_role("button", name="Delete run")
    expect(delete_run).to_be_disabled(timeout=120_000)  # Alice's run: read-only for Bob
    _open_evaluations(page, url)
    expect(_delete_evaluation_button(page, seeded.alice_evaluation)).to_be_disabled(timeout=60_000)
    expect(page.get_by_text("alice-001 evaluation")).to_be_visible()
    own = _delete_evaluation_button(page, seeded.bob_draft)
    expect(own).to_be_enabled()  # his own
    own.click()
    expect(page.locator(f".st-key-eval-list-del-{seeded.bob_draft}")).to_have_count(0, timeout=60_000)
    expect(_delete_evaluation_button(page, seeded.alice_evaluation)).to_be_disabled()
    screenshot(page, "signin-read-only-evaluation")
    page.get_by_role("tab", name="Import / export").click()  # an import could claim any author
    expect(page.get_by_text("Only admins can import here")).to_be_visible(timeout=30_000)


def test_an_admin_deletes_anothers_run_and_evaluation(team_app, page):
    url, seeded = team_app
    sign_in_as(page, url, "alice-001")
    page.goto(f"{url}/history?run={seeded.bob_run}")
    expect(page.get_by_text("by <b>Bob</b>").first).to_be_visible(timeout=120_000)  # the author, as text
    delete_run = page.get_by_role("button", name="Delete run")
    expect(delete_run).to_be_enabled()
    delete_run.click()
    expect(page.get_by_role("button", name="Delete run")).to_have_count(0, timeout=60_000)
    page.goto(f"{url}/history?run={seeded.bob_run}")
    expect(page.get_by_text(f"There is no run '{seeded.bob_run}'")).to_be_visible(timeout=60_000)
    _open_evaluations(page, url)
    theirs = _delete_evaluation_button(page, seeded.bob_evaluation)
    expect(theirs).to_be_enabled(timeout=60_000)
    theirs.click()
    expect(page.locator(f".st-key-eval-list-del-{seeded.bob_evaluation}")).to_have_count(0, timeout=60_000)
