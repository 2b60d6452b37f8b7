"""An instructor runs a course from the browser, in Debian's chromium against the real platform
(gunicorn, a scoring worker and a validator, the embedded default database and broker): the
instructor turns sign-up by link on; a student joins by the link, signs up, makes a team with a
second student (teams turned on, invite, accept: one row on the board), uploads a model
through the form and marks it final once it is scored; the deadline passes (set on the
organizer's set-up page); the student sees the winners page; the instructor downloads the grade
CSV. Screenshots go to /tmp, or to docs/images/ with ARENA_DOCS_SCREENSHOTS=1 (the pictures in
docs/instructors.md)."""

from __future__ import annotations

import csv
import io
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.browser.test_pages import CHROMIUM_ARGS, DESKTOP, _answers, browser  # noqa: F401
from tests.conftest import REPO_ROOT
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.integration import platform_stack as stack

pytestmark = [pytest.mark.integration, pytest.mark.browser]
SHOTS = (REPO_ROOT / "docs" / "images" if os.environ.get("ARENA_DOCS_SCREENSHOTS")
         else Path("/tmp"))
TEACHER_PASSWORD = "teacher-long-password"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"instructors-{name}.png"), full_page=True)


@pytest.fixture
def course_stack(tmp_path, prepared_mnist_dir):
    env = stack.stack_env(ARENA_VAR_DIR=tmp_path / "var", ARENA_DATA_DIR=prepared_mnist_dir)
    stack.manage(env, "migrate", "--noinput", "-v", "0")
    stack.manage(env, "create_user", "prof", "--role", "instructor", "--password",
                 TEACHER_PASSWORD)
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    stack.manage(env, "create_competition", "cs329", "--title", "CS 329: Tiny Models",
                 "--tracks", "mnist", "--organizer", "prof", "--unlisted", "--start", start,
                 "--accuracy-floor", "0")
    port = stack.free_port()
    logs = (tmp_path / "worker.log", tmp_path / "validator.log", tmp_path / "web.log")
    worker = stack.start_worker(env, logs[0])
    validator = stack.start_validator(env, logs[1], concurrency=1)
    web = stack.start_web(env, port, logs[2])
    base = f"http://127.0.0.1:{port}"
    try:
        stack.wait_for(lambda: _answers(base), 60, "gunicorn to answer", logs, every=0.2)
        yield base, logs
    finally:
        for process in (web, worker, validator):
            stack.stop(process)


def log_in(page, base: str, username: str, password: str, then: str) -> None:
    page.goto(f"{base}/accounts/login/?next={then}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.mark.timeout(540)
def test_an_instructor_runs_a_course_from_the_browser(course_stack, browser):  # noqa: F811
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    base, logs = course_stack
    prof = browser.new_context(viewport=DESKTOP, accept_downloads=True).new_page()
    log_in(prof, base, "prof", TEACHER_PASSWORD, "/c/cs329/organize/enrollment/")
    expect(prof.get_by_role("heading", name=re.compile("Enrollment"))).to_be_visible()
    prof.get_by_role("button", name="Turn sign-up on").click()
    join_url = prof.locator("[data-join-url]").inner_text().strip()
    assert re.fullmatch(rf"{re.escape(base)}/join/[\w-]+/", join_url), join_url
    shot(prof, "enrollment")

    # A student who has no account yet opens the link, signs up and lands on their page.
    ann = browser.new_context(viewport=DESKTOP).new_page()
    ann.goto(join_url)
    expect(ann.get_by_role("heading", name="Sign up for CS 329: Tiny Models")).to_be_visible()
    ann.get_by_label("Username").fill("ann")
    ann.get_by_label("E-mail").fill("ann@uni.example")
    ann.get_by_label("Password").fill("ann-long-password")
    ann.get_by_role("button", name="Sign up and join").click()
    expect(ann.get_by_role("heading", name=re.compile("Your submissions"))).to_be_visible()
    expect(ann.locator(".messages")).to_contain_text("you have joined CS 329")

    # Teams: the instructor turns them on; bob signs up by the link too; ann makes a team and
    # invites bob, who accepts on his page (before either has a score: teams form before).
    prof.goto(f"{base}/c/cs329/organize/")
    prof.get_by_label("Teams enabled").check()
    prof.get_by_role("button", name="Save").click()
    expect(prof.locator(".messages")).to_contain_text("Saved.")
    bob = browser.new_context(viewport=DESKTOP).new_page()
    bob.goto(join_url)
    bob.get_by_label("Username").fill("bob")
    bob.get_by_label("E-mail").fill("bob@uni.example")
    bob.get_by_label("Password").fill("bob-long-password")
    bob.get_by_role("button", name="Sign up and join").click()
    expect(bob.get_by_role("heading", name=re.compile("Your submissions"))).to_be_visible()
    ann.reload()
    ann.get_by_label("Team name").fill("Tiny Ones")
    ann.get_by_role("button", name="Make a team").click()
    expect(ann.locator(".messages")).to_contain_text("Team Tiny Ones is made")
    ann.get_by_label("Invite a classmate (their username)").fill("bob")
    ann.get_by_role("button", name="Invite").click()
    expect(ann.locator(".messages")).to_contain_text("bob is invited to Tiny Ones")
    bob.reload()
    expect(bob.locator('[data-invitation="Tiny Ones"]')).to_contain_text("ann")
    bob.get_by_role("button", name="Accept").click()
    expect(bob.locator(".messages")).to_contain_text("You are now in team Tiny Ones")
    expect(bob.locator("[data-team]")).to_contain_text("ann, bob")
    shot(bob, "team")

    # The upload form, then the scored submission is marked final.
    ann.locator("input[type=file]").set_input_files(files=[{
        "name": "ann-cnn.onnx", "mimeType": "application/octet-stream",
        "buffer": GOOD_MODELS["mnist_cnn"]()}])
    ann.get_by_role("button", name="Upload and score").click()
    expect(ann.locator("[data-upload-status]")).to_have_text(
        re.compile(r"ann-cnn\.onnx was received"), timeout=60_000)
    row = ann.locator('li.submission:has-text("ann-cnn.onnx")')
    expect(row).to_have_attribute("data-status", "scored", timeout=200_000)
    ann.reload()
    ann.locator('li.submission:has-text("ann-cnn.onnx")').get_by_role(
        "button", name="Mark as final").click()
    expect(ann.locator(".messages")).to_contain_text("is now one of your final submissions")
    expect(ann.locator('li.submission:has-text("ann-cnn.onnx") [data-final]')).to_be_visible()
    shot(ann, "student-final")
    # The team has one row on the board, named by the team and the member who submitted.
    ann.goto(f"{base}/c/cs329/")
    board = ann.locator("table.board tbody tr:not(.baseline)")
    expect(board).to_have_count(1)
    expect(board.first).to_contain_text("Tiny Ones")
    expect(board.first).to_contain_text("team · ann")

    # The results page says nothing before the deadline.
    ann.goto(f"{base}/c/cs329/results/")
    expect(ann.locator("main")).to_contain_text("announced after the deadline")

    # The instructor moves the deadline to a minute or two from now on the set-up page (the
    # form has minutes), and it passes: ann's upload was before it, so it stays ranked.
    prof.goto(f"{base}/c/cs329/organize/")
    shot(prof, "setup")
    deadline = (datetime.now(UTC) + timedelta(minutes=2)).replace(second=0, microsecond=0)
    prof.locator("#id_c-deadline").fill(deadline.strftime("%Y-%m-%dT%H:%M"))
    prof.get_by_role("button", name="Save").click()
    expect(prof.locator(".messages")).to_contain_text("Saved.")
    time.sleep(max(0.0, (deadline - datetime.now(UTC)).total_seconds()) + 1)

    # The winners page, as the student sees it.
    ann.goto(f"{base}/c/cs329/results/")
    expect(ann.locator('[data-winner="accuracy"]')).to_contain_text("Tiny Ones")
    expect(ann.locator("[data-rank-changes]")).to_contain_text("ann")
    shot(ann, "results")
    # ... and the student can no longer change final picks or see organizer pages.
    assert ann.goto(f"{base}/c/cs329/organize/submissions/").status == 404

    # The instructor's list of every submission, then the grade CSV.
    prof.goto(f"{base}/c/cs329/organize/submissions/")
    expect(prof.locator("[data-submissions-table]")).to_contain_text("ann")
    expect(prof.locator("[data-submissions-table]")).to_contain_text("final")
    shot(prof, "submissions")
    prof.goto(f"{base}/c/cs329/results/")
    prof.get_by_label("Speed rank").check()
    with prof.expect_download() as download:
        prof.get_by_role("button", name="Download grades (CSV)").click()
    text = Path(download.value.path()).read_text()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Student", "SIS Login ID", "Email address",
                       "mnist best accuracy (private)", "mnist accuracy rank",
                       "mnist speed rank", "mnist beat the baseline"]
    assert rows[1][1:3] == ["ann", "ann@uni.example"] and rows[1][4] == "1", rows
    # bob, ann's team-mate, gets the team's result.
    assert rows[2][1] == "bob" and rows[2][3:5] == rows[1][3:5], rows
    assert 0.0 < float(rows[1][3]) <= 1.0  # the zoo's model is untrained: any accuracy
    shot(prof, "grades")
