"""The status page shows the fleet's view (the shared store, every replica's workers, their heartbeats) in a real
headless browser, signed in on one replica of a 2 replicas x 2 workers fleet."""

from __future__ import annotations

from tests.fleet.conftest import ADMIN_KEY, wait_for_workers
from tests.integration.test_status_browser import WAIT, browser  # noqa: F401 - the browser fixture

FLEET_JS = """
const rows = Array.from(document.querySelectorAll('[data-testid=fleet-worker]'));
const store = document.querySelector('[data-testid=fleet-store]');
const section = document.getElementById('fleet-section');
return {shown: section ? !section.hidden : false, store: store ? store.textContent : '',
        workers: rows.map(r => [r.dataset.replica, r.querySelector('.badge').textContent])};
"""


def test_the_status_page_shows_every_replica_and_worker(fleet, browser):  # noqa: F811
    from selenium.common.exceptions import JavascriptException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    gp = fleet.gps[0]
    wait_for_workers(gp, 4)
    wait = WebDriverWait(browser, WAIT, poll_frequency=0.1, ignored_exceptions=(JavascriptException,))
    browser.get(gp.url + "/status?refresh=0.5")
    wait.until(lambda d: d.find_element(By.ID, "key")).send_keys(ADMIN_KEY)
    browser.find_element(By.ID, "login-submit").click()
    s = wait.until(lambda d: (lambda x: x if len(x["workers"]) >= 4 else False)(d.execute_script(FLEET_JS)))
    assert s["shown"] and "shared state store: up" in s["store"]
    assert len({rep for rep, _ in s["workers"]}) == 2  # two replicas, each with its two workers
    assert [state for _, state in s["workers"]] == ["live"] * 4
    errors = [e for e in browser.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]
    assert errors == [], errors
