"""The pages in Debian's chromium (driven by Playwright's Python package, no downloaded browser)
against the real platform: gunicorn, a Celery worker process and the embedded default (a SQLite
file and the filesystem broker). A student logs in, drops an MNIST model on the upload form, sees
its status go to scored without reloading, and the leaderboard open in another tab shows its row.
Then two more students' scorecards (overlapping speed intervals, one with a numerics warning) are
recorded through the platform's lifecycle: the open speed board shows them tied, naming the
hardware class the worker registered, and the student's page shows the warning.
Screenshots of both pages, desktop and phone sized, go to /tmp for a person to look at.
"""

from __future__ import annotations

import json
import re
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
    for student in ("ann", "bob", "cat"):
        stack.manage(env, "create_user", student, "--password", PASSWORD)
    teacher_token = stack.manage(env, "create_user", "teacher", "--role", "instructor").strip()
    stack.manage(env, "create_competition", "course", "--title", "Course competition",
                 "--description", "Small MNIST models, ranked live.", "--tracks", "mnist",
                 "--organizer", "teacher")
    port = stack.free_port()
    logs = (tmp_path / "worker.log", tmp_path / "web.log")
    worker = stack.start_worker(env, logs[0])
    # Uploads are checked by a worker of the validation queue where the platform has one.
    validator = (stack.start_validator(env, tmp_path / "validator.log", concurrency=1)
                 if hasattr(stack, "start_validator") else None)
    web = stack.start_web(env, port, logs[1])
    base = f"http://127.0.0.1:{port}"
    try:
        stack.wait_for(lambda: _answers(base), 60, "gunicorn to answer", logs, every=0.2)
        baseline = requests.post(
            f"{base}/api/submissions/", headers={"Authorization": f"Token {teacher_token}"},
            data={"competition": "course", "track": "mnist", "baseline": "true"},
            files={"file": ("linear-baseline.onnx", GOOD_MODELS["mnist_linear"]())}, timeout=60)
        assert baseline.status_code == 201, baseline.text
        yield base, logs, env
    finally:
        stack.stop(web)
        stack.stop(worker)
        if validator is not None:
            stack.stop(validator)


SATURATION = ("This model's INT8 kernels saturate on this CPU: its logits differ by up to 1.15 "
              "from the exact execution of the same graph. Quantize weights to 7 bits "
              "(reduce_range); see docs/compression.md.")
# Scorecards recorded through the lifecycle, as a worker records the evaluator's: bob's and cat's
# speed intervals overlap (a tie on the speed board); cat's carries a numerics warning.
RECORDED = [
    {"user": "bob", "label": "bob-fast.onnx", "speed_index": 2.0, "ci": [1.92, 2.08],
     "size_bytes": 20_000, "warnings": []},
    {"user": "cat", "label": "cat-int8.onnx", "speed_index": 1.95, "ci": [1.88, 2.02],
     "size_bytes": 10_000, "warnings": [SATURATION]},
]
RECORD_SCRIPT = """
import json
from django.contrib.auth import get_user_model
from django.utils import timezone
from competitions.models import Track
from hardware.models import HardwareClass
from submissions import lifecycle
from submissions.models import Status, Submission
from tests.platform.helpers import scorecard

track = Track.objects.get(competition__slug="course", slug="mnist")
scored_on = HardwareClass.objects.order_by("first_seen", "id").first().name
numerics = {"inputs": 64, "max_abs_diff": 1.15, "class_agreement": 0.95, "tolerance": 0.06,
            "ok": False, "reference": "onnxruntime, graph optimizations off"}
for row in json.loads(%r):
    # Made in the scoring state with its claim token, so the running worker never takes it.
    submission = Submission.objects.create(
        track=track, user=get_user_model().objects.get(username=row["user"]), label=row["label"],
        sha256="0" * 64, size_bytes=row["size_bytes"], artifact_path="none",
        status=Status.SCORING, attempts=1, scoring_started_at=timezone.now())
    card = scorecard(accuracy=0.95, latency_ms=0.021, size_bytes=row["size_bytes"],
                     speed_index=row["speed_index"], speed_index_ci=row["ci"],
                     warnings=row["warnings"], numerics=numerics if row["warnings"] else None,
                     provenance={"hardware_class": scored_on})
    print("RECORDED", row["user"], lifecycle.record_scorecard(submission.pk, 1, card, scored_on),
          scored_on)
"""


def record_scorecards(env: dict) -> list[list[str]]:
    """[user, new status, hardware class] of each recorded scorecard."""
    out = stack.manage(env, "shell", "-v", "0", "-c", RECORD_SCRIPT % json.dumps(RECORDED))
    return [line.split()[1:] for line in out.splitlines() if line.startswith("RECORDED ")]


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

    base, logs, env = platform_url
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
    expect(board.locator('th[aria-sort="ascending"]')).to_have_text(re.compile(r"^Latency"))
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
        re.compile(r"ann-cnn\.onnx was received and is (queued for scoring|being checked)"),
        timeout=60_000)
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

    # Two more scorecards: overlapping speed intervals (tied) and a numerics warning.
    board.get_by_role("tab", name="Speed").click()
    expect(board.locator("td.empty")).to_have_text("No eligible submissions yet.")
    recorded = record_scorecards(env)
    assert [row[:2] for row in recorded] == [["bob", "scored"], ["cat", "scored"]], recorded
    scored_on = recorded[0][2]
    # The open speed board picks them up by itself: one rank, marked tied, smaller model first.
    expect(board.locator('tr[data-username="cat"] td').first).to_have_text("1 tied")
    expect(board.locator('tr[data-username="bob"] td').first).to_have_text("1 tied")
    expect(board.locator("tbody tr").first).to_have_attribute("data-username", "cat")
    expect(board.locator(".tie-note")).to_contain_text("overlapping 95% intervals")
    expect(board.locator("p.hardware")).to_contain_text(scored_on)
    expect(board.locator("p.hardware")).to_contain_text("reference model runs in")
    assert board.evaluate("window.loadedOnce") is True
    board.screenshot(path=str(SCREENSHOTS / "arena-leaderboard-tie-desktop.png"), full_page=True)

    cat = browser.new_context(viewport=DESKTOP).new_page()
    cat.goto(f"{base}/accounts/login/?next=/c/course/me/")
    cat.get_by_label("Username").fill("cat")
    cat.get_by_label("Password").fill(PASSWORD)
    cat.get_by_role("button", name="Log in").click()
    warning = cat.locator('li.submission:has-text("cat-int8.onnx")').get_by_role("note")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("INT8 kernels saturate on this CPU")
    expect(warning).to_contain_text("Quantize weights to 7 bits")
    expect(cat.locator('li.submission:has-text("cat-int8.onnx") dl.scores')).to_contain_text(
        "Numerics check")
    cat.screenshot(path=str(SCREENSHOTS / "arena-student-warning-desktop.png"), full_page=True)
    cat.context.close()
    context.close()
