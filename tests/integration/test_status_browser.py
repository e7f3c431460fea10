"""The status page in a real headless browser: Debian's chromium + chromedriver driven by Selenium (nothing is
downloaded at run time). Sign in through the form, see routes and models, withdraw a model through the admin API
and see the page show it as withdrawn (with its reason, as text) after its own refresh; no console errors.

``SAVE_SCREENSHOT=1`` also writes ``docs/status-page.png``.

If chromium or chromedriver is missing this test FAILS (it does not skip): install them with
``apt-get install -y chromium chromium-driver`` (``make test`` does, through scripts/ensure-system-deps.sh).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import GATEWAY_KEY
from tests.integration.test_admin import ADMIN_KEY, _withdraw, admin_config

CHROMIUM = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "status-page.png"
WAIT = 10  # seconds, upper bound for any one wait
MSG = [{"role": "user", "content": "Please do a security review of this login handler."}]
XSS_REASON = 'Commerce directive <img src=x onerror="window.__pwned=1"><b>bold</b>'


@pytest.fixture
def browser(tmp_path, monkeypatch):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:  # pragma: no cover - the test extra installs it
        pytest.fail(f"selenium is not installed ({e}); run: .venv/bin/pip install -e '.[test]'")
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    if missing:
        pytest.fail(f"the status page browser test needs Debian's chromium and chromedriver; missing: "
                    f"{', '.join(missing)}. Install with: apt-get install -y chromium chromium-driver")
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,1250", f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    except Exception as e:  # noqa: BLE001 - any start failure must fail the test, loudly
        pytest.fail(f"chromium could not be started through {CHROMEDRIVER}: {e}")
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


SNAPSHOT_JS = """
const all = (sel, root) => Array.from((root || document).querySelectorAll(sel));
const state = (el) => { const b = el.querySelector('[data-testid=state]'); return b ? b.textContent : null; };
const routes = {}, hops = {}, models = {};
for (const r of all('[data-testid=route]')) {
  routes[r.dataset.route] = all('[data-testid=hop]', r).map(h => h.dataset.model);
  hops[r.dataset.route] = Object.fromEntries(all('[data-testid=hop]', r).map(h => [h.dataset.model, state(h)]));
}
for (const m of all('[data-testid=model]')) { models[m.dataset.model] = {state: state(m), text: m.textContent}; }
const updated = document.getElementById('updated'), config = document.getElementById('config');  // null mid-login
return {ticks: updated ? Number(updated.dataset.ticks || 0) : 0, routes: routes, hop_states: hops,
        models: models, config: config ? config.textContent : '',
        failovers: all('[data-testid=failover]').map(e => e.textContent),
        unsafe: all('main img, main b, main script, main iframe').length};
"""


def snapshot(driver):
    return driver.execute_script(SNAPSHOT_JS)


def snapshot_if(driver, cond):
    """The snapshot when ``cond`` holds for it, else False (for ``WebDriverWait.until``)."""
    s = snapshot(driver)
    return s if cond(s) else False


def test_status_page_in_a_real_browser(emu, make_gateway, browser):
    from selenium.common.exceptions import JavascriptException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    cfg = admin_config(emu.url)
    cfg["policies"] = [{"name": "export-control-2026-06", "deny": {"models": ["fable-5"]},
                        "unless": {"jurisdiction": ["US"]}, "reason": "Commerce Department directive of 2026-06-12"}]
    cfg["keys"][0]["attributes"] = {"jurisdiction": "US"}
    gw = make_gateway(cfg)
    # One failover for the "recent failovers" table.
    emu.set("fable-5", "overloaded")
    r = httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {GATEWAY_KEY}"},
                   json={"model": "security", "messages": MSG}, timeout=10)
    assert r.status_code == 200 and r.headers["x-gateway-attempts"].endswith("gpt-5=ok")
    emu.set("fable-5", "healthy")

    d = browser
    wait = WebDriverWait(d, WAIT, poll_frequency=0.1, ignored_exceptions=(JavascriptException,))  # mid-navigation

    # Not signed in: the login form. Sign in through it.
    d.get(gw.url + "/status?refresh=0.5")
    key_input = wait.until(lambda drv: drv.find_element(By.ID, "key"))
    key_input.send_keys(ADMIN_KEY)
    d.find_element(By.ID, "login-submit").click()

    # The page loads and shows every route with its chain and every model. (The page rebuilds its DOM on every
    # poll, so read it in one script call rather than through element handles that go stale.)
    wait.until(lambda drv: snapshot(drv)["ticks"] >= 1)
    assert ADMIN_KEY not in d.current_url and ADMIN_KEY not in d.page_source
    assert d.execute_script("return document.cookie") == ""  # the session cookie is HttpOnly
    s = snapshot(d)
    assert s["routes"] == {"security-review": ["fable-5", "gpt-5", "qwen-coder"], "general": ["gpt-5", "qwen-coder"]}
    assert set(s["models"]) == {"fable-5", "gpt-5", "qwen-coder"}
    assert s["models"]["gpt-5"]["state"] == "ok"
    assert "export-control-2026-06" in s["models"]["fable-5"]["text"]
    assert "ops-oncall" in s["config"] and gw.gateway.runtime.version in s["config"]
    s = wait.until(lambda drv: snapshot_if(drv, lambda x: x["failovers"]))
    assert "security-review" in s["failovers"][0] and "transient" in s["failovers"][0]

    # Withdraw a model through the admin API; the page shows it after its own refresh, reason as plain text.
    ticks = s["ticks"]
    r = _withdraw(gw, name="fable-5", reason=XSS_REASON, actor="jane@corp")
    assert r.status_code == 201, r.text
    s = wait.until(lambda drv: snapshot_if(drv, lambda x: x["models"]["fable-5"]["state"] == "withdrawn"))
    assert s["ticks"] > ticks  # no reload: one of the page's own polls did it
    assert XSS_REASON in s["models"]["fable-5"]["text"] and "jane@corp" in s["models"]["fable-5"]["text"]
    assert s["hop_states"]["security-review"]["fable-5"] == "withdrawn"
    assert s["unsafe"] == 0 and d.execute_script("return window.__pwned === undefined")

    if os.environ.get("SAVE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert d.save_screenshot(str(SCREENSHOT))

    errors = [e for e in d.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]
    assert errors == [], errors
