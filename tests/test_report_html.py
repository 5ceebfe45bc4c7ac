"""leaderboard.html in a real headless Chromium: it renders without script errors, sorts and filters.

The page keeps its view in the URL fragment (`#sort=KEY:asc|desc&suite=S&precision=P`) and applies
it on load, so `chromium --headless --dump-dom URL#...` shows the DOM after sorting/filtering with no
extra driver. Needs Debian's `chromium` (apt-get install -y chromium); skipped when it is absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report import make_result

from embedbench.report import build_report
from embedbench.results import read_results, write_result

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
EVIL = '<img src=x onerror="document.title=\'pwned\'">"&\''


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if path:
            return path
    return None


BROWSER = find_browser()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium: install it with `apt-get install -y chromium`")


class Page(HTMLParser):
    """The parts of a dumped DOM the tests look at."""

    def __init__(self) -> None:
        super().__init__()
        self.root: dict[str, str | None] = {}
        self.entries: list[dict] = []  # tbody.entry in document order
        self.headers: list[dict[str, str | None]] = []
        self.tags: set[str] = set()
        self.title = ""
        self._in_title = False
        self._cell: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if tag == "html":
            self.root = a
        elif tag == "title":
            self._in_title = True
        elif tag == "tbody" and "entry" in (a.get("class") or ""):
            self.entries.append({"attrs": a, "hidden": "hidden" in a, "cells": {}})
        elif tag == "th" and a.get("data-key"):
            self.headers.append(a)
        elif tag == "td" and self.entries and a.get("data-key"):
            self._cell = a
            self.entries[-1]["cells"][a["data-key"]] = a

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def visible(self) -> list[dict]:
        return [e for e in self.entries if not e["hidden"]]


def load(page: Path, fragment: str, tmp_path: Path) -> tuple[Page, str]:
    """Open page#fragment in headless Chromium; return the parsed DOM after the scripts ran, and the log."""
    profile = tmp_path / f"profile-{abs(hash(fragment))}"
    cmd = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom",
           page.resolve().as_uri() + (f"#{fragment}" if fragment else "")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    parsed = Page()
    parsed.feed(proc.stdout)
    return parsed, proc.stderr


def console_errors(log: str) -> list[str]:
    lines = [line for line in log.splitlines() if "CONSOLE" in line]
    return [line for line in lines if re.search(r"Uncaught|Error|error", line)]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("html")
    results = root / "results"
    for model in ("a", "b"):
        for precision in ("fp32", "int8", "binary"):
            for task in ("T1", "T2"):
                write_result(results, *make_result(model, precision, 64, task))
    write_result(results, *make_result("c", "int8", 64, "T1", suite="other"))
    write_result(results, *make_result(EVIL, "fp32", 64, "T1"))
    build_report(results, root / "out")
    scores = {(r.model, r.precision, r.task): r.main_score for r in read_results(results)}
    return root / "out" / "leaderboard.html", scores


def order(page: Page) -> list[str]:
    return [e["attrs"]["data-order"] for e in page.visible()]


def t1_values(page: Page) -> list[float | None]:
    return [float(v) if (v := e["cells"]["s/T1"].get("data-value")) else None for e in page.visible()]


def test_renders_without_script_errors(site, tmp_path: Path) -> None:
    page, log = load(site[0], "", tmp_path)
    assert page.root.get("data-ready") == "1", "the page script did not finish"
    assert not page.root.get("data-js-errors"), page.root.get("data-js-errors")
    assert not console_errors(log), console_errors(log)
    assert len(page.entries) == 8 and not [e for e in page.entries if e["hidden"]]
    assert page.title == "embedbench leaderboard"  # the hostile model name did not run as markup
    assert "img" not in page.tags


def test_sorting_a_column_reorders_rows(site, tmp_path: Path) -> None:
    path, _ = site
    initial, _ = load(path, "", tmp_path)
    desc, log = load(path, "sort=s/T1:desc", tmp_path)
    asc, _ = load(path, "sort=s/T1:asc", tmp_path)
    assert not console_errors(log)
    values = t1_values(desc)
    assert values[-1] is None, "the row without a score sorts last"
    measured = values[:-1]
    assert None not in measured and measured == sorted(measured, reverse=True)
    assert t1_values(asc) == sorted(measured) + [None]
    assert order(desc) != order(initial) and sorted(order(desc)) == sorted(order(initial))
    header = next(h for h in desc.headers if h["data-key"] == "s/T1")
    assert header.get("aria-sort") == "descending"


def test_filters_hide_rows_and_columns(site, tmp_path: Path) -> None:
    path, scores = site
    int8, log = load(path, "precision=int8", tmp_path)
    assert not console_errors(log)
    assert {e["attrs"]["data-precision"] for e in int8.visible()} == {"int8"}
    assert len(int8.visible()) == 3 and len(int8.entries) == 8
    other, _ = load(path, "suite=other", tmp_path)
    assert len(other.visible()) == 1
    hidden_headers = {h["data-key"] for h in other.headers if "hidden" in h}
    assert {"T2", "s/T1", "s:mean"} <= hidden_headers and not {"other:mean", "other/T1", "model"} & hidden_headers
    both, _ = load(path, "suite=s&precision=fp32&sort=s/T1:desc", tmp_path)
    values = t1_values(both)
    assert len(values) == 3 and values == sorted(values, reverse=True)
    assert values[0] == max(v for (m, p, t), v in scores.items() if p == "fp32" and t == "T1")


def test_numbers_carry_provenance(site) -> None:
    html = site[0].read_text()
    assert "dataset hash: data-T1" in html and "model revision: r1" in html
    assert "embedbench 0.1.0 @ 0123456789abcdef0123456789abcdef01234567" in html
    assert "date: 2026-03-01T00:00:00+00:00" in html
    assert html.count('class="details"') == 8


def test_page_is_self_contained(site) -> None:
    html = site[0].read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(" not in html
    assert EVIL not in html and "&lt;img src=x onerror=" in html


# --- real clicks, through the DevTools protocol over a pipe (stdlib only, no websocket package) ---

class DevTools:
    """Minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, browser: str, profile: Path) -> None:
        import os

        self._child_in, self._to_child = os.pipe()    # chromium reads fd 3 <- we write _to_child
        self._from_child, self._child_out = os.pipe()  # chromium writes fd 4 -> we read _from_child
        child_in, child_out = self._child_in, self._child_out

        def fds() -> None:  # in the child: move the pipe ends to fds 3 and 4, which chromium expects
            import fcntl

            high_in, high_out = fcntl.fcntl(child_in, fcntl.F_DUPFD, 10), fcntl.fcntl(child_out, fcntl.F_DUPFD, 10)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.proc = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False, preexec_fn=fds)
        os.close(child_in)
        os.close(child_out)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, timeout: float = 30.0) -> dict:
        import json
        import os
        import select
        import time

        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:
                    assert "error" not in reply, reply["error"]
                    return reply.get("result", {})
                if "method" in reply:
                    self.events.append(reply)
            left = deadline - time.monotonic()
            assert left > 0, f"no reply to {method}"
            ready, _, _ = select.select([self._from_child], [], [], left)
            if ready:
                chunk = os.read(self._from_child, 1 << 16)
                assert chunk, "chromium closed the pipe"
                self._buffer += chunk

    def open(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Runtime.enable")
        self.send("Page.enable")
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.documentElement.dataset.ready === '1'")

    def eval(self, expression: str) -> object:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout: float = 20.0) -> None:
        """Poll `condition`; while a navigation is under way the document (or context) may not exist yet."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.eval(f"Boolean(document.documentElement && ({condition}))"):
                    return
            except AssertionError:
                pass
            assert time.monotonic() < deadline, f"timed out waiting for {condition}"
            time.sleep(0.05)

    def errors(self) -> list[dict]:
        return [e for e in self.events if e["method"] == "Runtime.exceptionThrown"
                or (e["method"] == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")]

    def close(self) -> None:
        import contextlib
        import os

        with contextlib.suppress(Exception):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


ROWS_JS = ("Array.from(document.querySelectorAll('#leaderboard tbody.entry')).filter(b => !b.hidden)"
           ".map(b => b.querySelector('td[data-key=\"s/T1\"]').getAttribute('data-value'))")


def test_clicks_sort_filter_and_expand(site, tmp_path: Path) -> None:
    path, _ = site
    tools = DevTools(BROWSER, tmp_path / "profile")
    try:
        tools.open(path.resolve().as_uri())
        header = "document.querySelector('th[data-key=\"s/T1\"] button')"
        tools.eval(f"{header}.click()")
        first = [float(v) for v in tools.eval(ROWS_JS) if v]
        assert first == sorted(first, reverse=True) and len(first) == 7
        assert tools.eval("location.hash") == "#sort=s%2FT1:desc"
        tools.eval(f"{header}.click()")
        again = [float(v) for v in tools.eval(ROWS_JS) if v]
        assert again == sorted(first)
        tools.eval("var s = document.getElementById('filter-precision'); s.value = 'binary';"
                   "s.dispatchEvent(new Event('change'))")
        assert len(tools.eval(ROWS_JS)) == 2
        assert tools.eval("location.hash").endswith("precision=binary")
        toggle = "document.querySelector('#leaderboard tbody.entry:not([hidden]) button.toggle')"
        details = f"document.getElementById({toggle}.getAttribute('aria-controls'))"
        assert tools.eval(f"{details}.hidden") is True
        tools.eval(f"{toggle}.click()")
        assert tools.eval(f"{details}.hidden") is False
        assert "dataset hash" in tools.eval(f"{details}.textContent")
        assert tools.eval(f"{toggle}.getAttribute('aria-expanded')") == "true"
        assert tools.errors() == [] and not tools.eval("document.documentElement.dataset.jsErrors")
    finally:
        tools.close()
