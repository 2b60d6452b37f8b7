"""The pages in Debian's chromium (driven by Playwright's Python package, no downloaded browser)
against the real platform: gunicorn, a Celery worker process and the embedded default (a SQLite
file and the filesystem broker). A student logs in, drops an MNIST model on the upload form, sees
its status go to scored without reloading, and the leaderboard open in another tab shows its row.
Screenshots of both pages, desktop and phone sized, go to /tmp for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.conftest import require
from tests.evaluator.model_zoo import GOOD_MODELS
from tests.integration import platform_stack as stack

pytestmark = [pytest.mark.integration, pytest.mark.browser]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
SCREENSHOTS = Path("/tmp")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct-horse-battery"


@pytest.fixture
def platform_url(tmp_path, prepared_mnist_dir):
    """A running platform with a course (MNIST track), a student, an instructor and a scored
    instructor baseline; yields (base URL, logs)."""
    env = stack.stack_env(ARENA_VAR_DIR=tmp_path / "var", ARENA_DATA_DIR=prepared_mnist_dir)
    stack.manage(env, "migrate", "--noinput", "-v", "0")
    stack.manage(env, "create_user", "ann", "--password", PASSWORD)
    teacher_token = stack.manage(env, "create_user", "teacher", "--role", "instructor").strip()
    stack.manage(env, "create_competition", "course", "--title", "Course competition",
                 "--description", "Small MNIST models, ranked live.", "--tracks", "mnist",
                 "--organizer", "teacher")
    port = stack.free_port()
    logs = (tmp_path / "worker.log", tmp_path / "web.log")
    worker = stack.start_worker(env, logs[0])
    web = stack.start_web(env, port, logs[1])
    base = f"http://127.0.0.1:{port}"
    try:
        stack.wait_for(lambda: _answers(base), 60, "gunicorn to answer", logs, every=0.2)
        baseline = requests.post(
            f"{base}/api/submissions/", headers={"Authorization": f"Token {teacher_token}"},
            data={"competition": "course", "track": "mnist", "baseline": "true"},
            files={"file": ("linear-baseline.onnx", GOOD_MODELS["mnist_linear"]())}, timeout=60)
        assert baseline.status_code == 201, baseline.text
        yield base, logs
    finally:
        stack.stop(web)
        stack.stop(worker)


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/", timeout=2).ok
    except requests.RequestException:
        return False


@pytest.fixture
def browser():
    require(CHROMIUM.exists(), "chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def drop_file(page, selector: str, name: str, content: bytes) -> None:
    """Drop a file on ``selector`` the way a person dragging it from their desktop does."""
    page.evaluate(
        """([selector, name, bytes]) => {
            const data = new DataTransfer();
            data.items.add(new File([new Uint8Array(bytes)], name));
            const zone = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true,
                                                        cancelable: true}));
            }
        }""",
        [selector, name, list(content)],
    )


def assert_polling_pauses_while_hidden(page) -> None:
    """Count the page's refresh requests with a fast refresh: they stop while the tab is hidden
    and one goes out at once when it is shown again."""
    page.evaluate("""() => {
        window.refreshes = 0;
        const fetchOriginal = window.fetch;
        window.fetch = (...args) => { window.refreshes += 1; return fetchOriginal(...args); };
        document.querySelector("[data-leaderboard]").dataset.refreshSeconds = "0.2";
        window.setHidden = (hidden) => {
            Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
            document.dispatchEvent(new Event("visibilitychange"));
        };
        window.setHidden(false);
    }""")
    page.wait_for_function("window.refreshes >= 3", timeout=10_000)
    page.evaluate("window.setHidden(true)")
    page.wait_for_timeout(300)  # let a request in flight finish
    paused_at = page.evaluate("window.refreshes")
    page.wait_for_timeout(1500)
    assert page.evaluate("window.refreshes") == paused_at, "it kept polling while hidden"
    page.evaluate("window.setHidden(false)")
    assert page.evaluate("window.refreshes") == paused_at + 1, "no refresh when shown again"
    page.evaluate('document.querySelector("[data-leaderboard]").dataset.refreshSeconds = "1"')


@pytest.mark.timeout(300)
def test_student_uploads_through_the_form_and_the_leaderboard_updates_itself(
        platform_url, browser):
    from playwright.sync_api import expect

    # Every page update here waits on a poll or a real worker; give a slow CI machine room.
    expect.set_options(timeout=15_000)

    base, logs = platform_url
    context = browser.new_context(viewport=DESKTOP)
    board = context.new_page()
    board.goto(f"{base}/c/course/")
    expect(board.get_by_role("heading", name="Course competition")).to_be_visible()
    expect(board.get_by_role("tab", name="Accuracy")).to_have_attribute("aria-selected", "true")
    # The instructor's baseline is scored by the worker and shows up as a marked, unranked row.
    expect(board.locator('tr.baseline th[scope="row"]')).to_contain_text(
        "teacher", timeout=120_000)
    expect(board.locator("tr.baseline td").first).to_have_text("Baseline")
    board.evaluate("window.loadedOnce = true")  # gone if anything reloads the page
    assert_polling_pauses_while_hidden(board)

    # Keyboard: arrow keys move between the category tabs and load the chosen board in place.
    board.get_by_role("tab", name="Accuracy").focus()
    board.keyboard.press("ArrowRight")
    expect(board.get_by_role("tab", name="Speed")).to_have_attribute("aria-selected", "true")
    expect(board.get_by_role("tab", name="Speed")).to_be_focused()
    expect(board.locator('th[aria-sort="ascending"]')).to_have_text("Latency")
    assert "category=speed" in board.url
    board.keyboard.press("ArrowLeft")
    expect(board.locator('th[aria-sort="descending"]')).to_have_text("Accuracy")

    # The student logs in on the login page and drops a model on the upload form.
    student = context.new_page()
    student.goto(f"{base}/c/course/me/")
    assert "/accounts/login/" in student.url
    student.get_by_label("Username").fill("ann")
    student.get_by_label("Password").fill(PASSWORD)
    student.get_by_role("button", name="Log in").click()
    expect(student.get_by_role("heading", name="Your submissions")).to_be_visible()
    student.evaluate("window.loadedOnce = true")
    drop_file(student, "[data-dropzone]", "ann-cnn.onnx", GOOD_MODELS["mnist_cnn"]())
    expect(student.locator("[data-chosen]")).to_contain_text("ann-cnn.onnx")
    student.get_by_role("button", name="Upload and score").click()
    expect(student.locator("[data-upload-status]")).to_have_text(
        "ann-cnn.onnx was received and is queued for scoring.", timeout=60_000)
    expect(student.locator("#upload-progress")).to_have_attribute("value", "100")
    row = student.locator('li.submission:has-text("ann-cnn.onnx")')
    expect(row).to_be_visible()
    expect(row).to_have_attribute("data-status", "scored", timeout=150_000)
    expect(row.locator("dl.scores")).to_contain_text("Accuracy (public)")
    assert student.evaluate("window.loadedOnce") is True  # updated in place, never reloaded
    student.screenshot(path=str(SCREENSHOTS / "arena-student-desktop.png"), full_page=True)

    # The leaderboard tab shows ann's row, ranked first, without a reload.
    board.bring_to_front()
    expect(board.locator('tr[data-username="ann"] td').first).to_have_text("1", timeout=30_000)
    assert board.evaluate("window.loadedOnce") is True
    expect(board.locator("svg[role=img] circle.point")).to_have_count(2)
    board.screenshot(path=str(SCREENSHOTS / "arena-leaderboard-desktop.png"), full_page=True)

    phone = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                has_touch=True)
    phone_page = phone.new_page()
    phone_page.goto(f"{base}/c/course/")
    expect(phone_page.locator('tr[data-username="ann"]')).to_be_visible()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a phone"
    phone_page.screenshot(path=str(SCREENSHOTS / "arena-leaderboard-phone.png"), full_page=True)
    phone_page.goto(f"{base}/accounts/login/?next=/c/course/me/")
    phone_page.get_by_label("Username").fill("ann")
    phone_page.get_by_label("Password").fill(PASSWORD)
    phone_page.get_by_role("button", name="Log in").click()
    expect(phone_page.locator('li.submission[data-status="scored"]')).to_be_visible()
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the student page is {width} px wide on a phone"
    phone_page.screenshot(path=str(SCREENSHOTS / "arena-student-phone.png"), full_page=True)
    phone.close()
    context.close()
