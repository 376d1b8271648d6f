#!/usr/bin/env python3
"""Drives the web console of a running `shellctl serve` in headless Chromium.

Usage: console_test.py BASE_URL TOKEN SCREENSHOT_PNG

Run by crates/shellctl/tests/console.rs with the venv of scripts/browser-venv
(Selenium, Debian's chromium and chromedriver). Like a person would: enter
the token in the page's form, start jobs from the form, watch their output
arrive, answer a prompt through the input line, press keys with the key
buttons, terminate a job with its button, and watch the list change, all
without reloading the page; then 12,000 lines of output (the page keeps the
last 5,000), a reload (the token is kept, the list is complete), and /docs.
Every wait is a WebDriverWait on the DOM (never a fixed sleep), and no step
is timed. Prints "console ok" on success; saves a screenshot of the console
(a job waiting for an answer) to SCREENSHOT_PNG.
"""

import sys

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

# A bound on each wait that only a broken console (or server) reaches.
WAIT_SECONDS = 60

GREETING_SCRIPT = """for i in 1 2 3; do echo "line $i"; done
read -p 'name? ' n
echo "hello $n"
"""
KEYS_SCRIPT = """read -p 'key? ' k
echo "got [$k]"
"""
DEMO_SCRIPT = """echo "building release 1.4.2"
for step in fetch compile test package; do echo "  $step: ok"; done
printf 'Deploy to production? [y/N] '
read answer
[ "$answer" = y ] && echo deployed || echo "not deployed"
"""


class Console:
    def __init__(self, driver, base):
        self.driver = driver
        self.base = base

    def wait(self, what, condition):
        """Waits until `condition(driver)` is truthy; names `what` on timeout."""
        try:
            return WebDriverWait(
                self.driver,
                WAIT_SECONDS,
                ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
            ).until(condition)
        except TimeoutException:
            raise AssertionError(
                f"timed out waiting for {what}\n"
                f"status: {self.text('job-status')!r}, error: {self.text('job-error')!r}\n"
                f"output: {self.text('output')!r}\n"
                f"connection: {self.text('connection')!r}"
            ) from None

    def el(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def text(self, element_id):
        # textContent, not .text: the output pane scrolls, and Selenium's
        # .text leaves out what it deems not rendered.
        try:
            return self.driver.execute_script(
                "const e = document.getElementById(arguments[0]);"
                "return e ? e.textContent : null;",
                element_id,
            )
        except Exception:  # noqa: BLE001 (only for the failure message)
            return None

    def row_cell(self, job_id, column):
        return self.driver.find_element(
            By.CSS_SELECTOR, f'tr[data-job-id="{job_id}"] .col-{column}'
        ).text

    def start_job(self, script, label=""):
        """Starts a job from the form; returns its id once its page is open."""
        previous = self.text("job-id") if self.el("job-detail").is_displayed() else None
        self.el("run-script").send_keys(script)
        if label:
            self.el("run-label").send_keys(label)
        self.el("run-submit").click()
        return self.wait(
            "the new job's page",
            lambda d: (
                d.current_url.split("#", 1)[-1].startswith("/jobs/")
                and self.text("job-id") not in ("", previous)
                and self.text("job-id")
            ),
        )

    def wait_status(self, job_id, status):
        self.wait(f"job page status {status}", lambda d: self.text("job-status") == status)
        self.wait(
            f"list status {status} of {job_id}",
            lambda d: self.row_cell(job_id, "status") == status,
        )

    def wait_output(self, needle):
        self.wait(f"{needle!r} in the output", lambda d: needle in self.text("output"))

    def wait_input_enabled(self):
        self.wait("the input line to be enabled", lambda d: self.el("input-text").is_enabled())


# The stream parser of console.js, fed in pieces of every size: `id`,
# `event`, multi-line `data`, comments, CRLF, lone CR and LF line ends (a
# CRLF split between two pieces too), a field without a colon, an empty id.
SSE_CHECK = r"""
const stream = 'id: 1\r\nevent: a\r\ndata: x\r\ndata: y\r\n\r\n: keep-alive\n\n'
  + 'id: 2\revent: b\rdata:z\r\rdata\n\nid\nevent: c\ndata: after\n\n';
const results = [];
for (const size of [1, 2, 3, 5, 1000]) {
  const cursor = { lastEventId: '' };
  const events = [];
  const parser = new SseParser(cursor, (e) => events.push([e.type, e.data, e.lastEventId]));
  for (let i = 0; i < stream.length; i += size) parser.feed(stream.slice(i, i + size));
  results.push(events);
}
return results;
"""
SSE_EXPECTED = [["a", "x\ny", "1"], ["b", "z", "2"], ["message", "", "2"], ["c", "after", ""]]


def run(driver, base, token, screenshot):
    console = Console(driver, base)
    driver.get(base + "/")

    for events in driver.execute_script(SSE_CHECK):
        assert events == SSE_EXPECTED, events
    shown = driver.execute_script(
        r"return [plainLine('a\x1b[31mred\x1b[0m\r', false),"
        r" plainLine('10%\r50%\r100%', false), plainLine('wait\x1b[3', true)]"
    )
    assert shown == ["ared", "100%", "wait"], shown

    # No token yet: the first request gets a 401, and the page asks for one.
    console.wait("the token form", lambda d: d.find_element(By.ID, "auth-token").is_displayed())
    assert not console.el("app").is_displayed()
    console.el("auth-token").send_keys(token, Keys.ENTER)
    console.wait("the live job list", lambda d: console.text("connection") == "Live")
    assert console.el("app").is_displayed()
    assert token not in driver.current_url
    stored = driver.execute_script("return sessionStorage.getItem('shellctl.token')")
    assert stored == token, stored
    assert driver.execute_script("return localStorage.length") == 0
    # A mark on this page: were the page reloaded, it would be gone.
    driver.execute_script("window.consoleTestMark = 'same page'")

    # A job that prints, then asks a question; the answer goes through the
    # input line.
    greeting = console.start_job(GREETING_SCRIPT, label="greeting")
    console.wait_output("line 3")
    console.wait_output("name? ")
    console.wait(
        "the job's row in the list",
        lambda d: console.row_cell(greeting, "label") == "greeting"
        and console.row_cell(greeting, "status") == "running",
    )
    # The screen view shows the prompt as the terminal draws it.
    driver.find_element(By.CSS_SELECTOR, 'label[for="view-both"]').click()
    console.wait("the prompt on the screen", lambda d: "name?" in console.text("screen"))
    console.wait_input_enabled()
    console.el("input-text").send_keys("console")
    console.el("input-submit").click()
    console.wait_output("hello console")
    console.wait_status(greeting, "exited")
    console.wait("exit code 0", lambda d: console.text("job-exit") == "exit code 0")
    console.wait("exit code 0 in the list", lambda d: console.row_cell(greeting, "exit") == "0")
    assert not console.el("input-text").is_enabled()

    # Key buttons: `q` then Enter answer a read.
    keyed = console.start_job(KEYS_SCRIPT)
    console.wait_output("key? ")
    console.wait_input_enabled()
    driver.find_element(By.CSS_SELECTOR, '.keys button[data-key="q"]').click()
    console.wait("the q on the screen", lambda d: "key? q" in console.text("screen"))
    driver.find_element(By.CSS_SELECTOR, '.keys button[data-key="Enter"]').click()
    console.wait_output("got [q]")
    console.wait_status(keyed, "exited")

    # A long job, ended with the Terminate button.
    sleeper = console.start_job("sleep 600", label="sleeper")
    console.wait_status(sleeper, "running")
    console.wait("the Terminate button", lambda d: console.el("terminate").is_enabled())
    console.el("terminate").click()
    console.wait_status(sleeper, "terminated")
    assert not console.el("terminate").is_enabled()

    # The list shows every job with its last status, and it changed live.
    for job_id, status in ((greeting, "exited"), (keyed, "exited"), (sleeper, "terminated")):
        assert console.row_cell(job_id, "status") == status, job_id
    assert driver.execute_script("return window.consoleTestMark") == "same page"

    # Back to the first job through its link in the list: the whole output
    # again, from the stream (the job has ended).
    driver.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{greeting}"] a').click()
    console.wait("the first job's page", lambda d: console.text("job-id") == greeting)
    console.wait_output("hello console")
    console.wait("its status", lambda d: console.text("job-status") == "exited")

    # Long output: the page keeps the last 5,000 lines and says so.
    counter = console.start_job("seq 1 12000", label="long")
    console.wait_status(counter, "exited")
    console.wait_output("\n12000\n")
    console.wait(
        "the note on dropped lines",
        lambda d: console.text("output-note") == "7,000 earlier lines not shown (the page keeps the last 5,000).",
    )
    assert console.text("output").startswith("7001\n"), console.text("output")[:40]

    # For the screenshot (the README shows it): a job waiting for an answer,
    # its output and its screen side by side.
    demo = console.start_job(DEMO_SCRIPT, label="deploy")
    console.wait_output("Deploy to production? [y/N] ")
    console.wait("the question on the screen", lambda d: "[y/N]" in console.text("screen"))
    console.wait("the list row", lambda d: console.row_cell(demo, "status") == "running")

    # A policy violation would mean part of the page silently did not work.
    violations = [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]
    assert not violations, violations

    driver.execute_script("document.activeElement && document.activeElement.blur()")
    driver.save_screenshot(screenshot)
    console.el("input-text").send_keys("n", Keys.ENTER)
    console.wait_output("not deployed")
    console.wait_status(demo, "exited")

    # A reload: the token is still in this tab, and the list, loaded
    # afresh, shows labels and exit codes too (v1's list has neither; the
    # console looks them up).
    driver.refresh()
    console.wait("the live job list after a reload", lambda d: console.text("connection") == "Live")
    assert not console.el("auth").is_displayed()
    for job_id, status, label, exit_code in (
        (greeting, "exited", "greeting", "0"),
        (sleeper, "terminated", "sleeper", ""),
        (demo, "exited", "deploy", "0"),
    ):
        console.wait(
            f"the reloaded row of {label}",
            lambda d: (
                console.row_cell(job_id, "status"),
                console.row_cell(job_id, "label"),
                console.row_cell(job_id, "exit"),
            )
            == (status, label, exit_code),
        )

    # /docs: Swagger UI when its CDN answers; offline (as on the test
    # machines), the route list drawn from /openapi.json.
    driver.get(base + "/docs")
    console.wait(
        "the API docs",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#swagger-ui .opblock, #swagger-ui li code"),
    )
    # (Swagger UI breaks paths with zero-width spaces.)
    docs = driver.find_element(By.ID, "swagger-ui").text.replace("\u200b", "")
    assert "/v1/jobs/{id}/events" in docs, docs[:2000]
    violations = [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]
    assert not violations, violations


def main():
    base, token, screenshot = sys.argv[1:4]
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        "--force-prefers-reduced-motion",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        run(driver, base, token, screenshot)
    finally:
        driver.quit()
    print("console ok")


if __name__ == "__main__":
    main()
