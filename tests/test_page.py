"""The leaderboard page of the committed results, in a real headless Chromium: what a person would check."""

import io
import json
import shutil
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parent.parent / "results"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason="no Chromium: apt-get install chromium chromium-driver (CI installs them)"),
]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from click.testing import CliRunner

    from separ_eval.cli import cli

    out = tmp_path_factory.mktemp("page") / "leaderboard.html"
    result = CliRunner().invoke(cli, ["leaderboard", str(RESULTS), "--format", "html", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1800"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _published() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def _sa_values(browser) -> list[float]:
    column = [th.text.split("\n")[0] for th in browser.find_elements("css selector", "#runs thead th")].index("SA top1")
    cells = browser.find_elements("css selector", f"#runs tbody tr td:nth-child({column + 1})")
    return [float(cell.get_attribute("data-value") or "-inf") for cell in cells]


def test_the_table_has_one_row_per_results_file_and_sorts_by_sa(page, browser):
    browser.get(page.as_uri())
    rows = browser.find_elements("css selector", "#runs tbody tr")
    files = sorted(p.name for p in RESULTS.glob("*.json"))
    assert len(files) >= 10 and sorted(r.get_attribute("data-file") for r in rows) == files
    before = _sa_values(browser)
    header = next(th for th in browser.find_elements("css selector", "#runs thead th") if th.text.startswith("SA top1"))
    header.click()
    descending = _sa_values(browser)
    assert descending == sorted(before, reverse=True) and descending != before
    header.click()
    assert _sa_values(browser) == sorted(before)


def test_each_targets_chart_holds_one_curve_per_model(page, browser):
    browser.get(page.as_uri())
    published = _published()
    charts = [c for c in browser.find_elements("css selector", "figure.chart") if c.is_displayed()]
    targets = {("code-reversed" if r["target"]["reversed"] else r["target"]["name"]) for r in published}
    assert {c.get_attribute("data-target") for c in charts} == targets  # one shown chart per target
    for chart in charts:
        method = chart.get_attribute("data-method")
        models = {r["model"]["id"] for r in published
                  if ("code-reversed" if r["target"]["reversed"] else r["target"]["name"]) == chart.get_attribute("data-target")
                  and _family(r) == method}
        curves = chart.find_elements("css selector", "path.curve")
        assert sorted(c.get_attribute("data-model") for c in curves) == sorted(models) and len(models) >= 1
        assert chart.find_elements("css selector", "line.diagonal")


def _family(results: dict) -> str:
    from separ_eval.report.naming import seed_family

    return seed_family(results["method"])


def test_filters_hide_rows_and_the_screenshot_is_not_blank(page, browser, tmp_path):
    from PIL import Image
    from selenium.webdriver.support.ui import Select

    browser.get(page.as_uri())
    Select(browser.find_element("id", "filter-target")).select_by_value("code-reversed")
    shown = [r for r in browser.find_elements("css selector", "#runs tbody tr") if r.is_displayed()]
    assert shown and all(r.get_attribute("data-target") == "code-reversed" for r in shown)
    Select(browser.find_element("id", "filter-target")).select_by_value("")
    shot = tmp_path / "leaderboard.png"
    browser.save_screenshot(str(shot))
    image = Image.open(io.BytesIO(shot.read_bytes())).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    dark = sum(count for count, rgb in colours if sum(rgb) < 600)
    assert len(colours) > 50 and dark > 0.01 * image.width * image.height  # text, lines and curves were drawn
