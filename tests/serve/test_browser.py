"""The page in a real browser (Debian chromium + chromedriver through Selenium): upload a clip,
see the label and the bar chart; saves a screenshot. Skips, saying why, without a browser."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from .conftest import LIMIT, running_server
from .media import write_wav
from .test_server import StubPredictor


def _driver():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no browser: install Debian's chromium and chromium-driver "
                    "(apt-get install chromium chromium-driver) to run the page test")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=900,800"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_page_uploads_and_renders(tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from mmer_jax.serve.app import create_app

    driver = _driver()
    rng = np.random.default_rng(0)
    wav = write_wav(tmp_path / "clip.wav", (rng.standard_normal(16000) * 3000).astype(np.int16))
    try:
        with running_server(create_app(StubPredictor(), max_upload_bytes=LIMIT)) as url:
            driver.get(url + "/")
            WebDriverWait(driver, 20).until(
                lambda d: "stub" in d.find_element(By.ID, "meta").text)
            driver.find_element(By.ID, "file").send_keys(os.path.abspath(wav))
            driver.find_element(By.ID, "send").click()
            WebDriverWait(driver, 20).until(
                lambda d: d.find_element(By.ID, "label").text == "angry")
            bars = driver.find_elements(By.CSS_SELECTOR, "#chart .bar")
            assert [b.find_element(By.TAG_NAME, "span").text for b in bars] == ["calm", "angry"]
            assert "75.0%" in bars[1].text
            shot = tmp_path / "page.png"
            driver.save_screenshot(str(shot))
            assert shot.stat().st_size > 1000
            # Issue 33: a failed upload leaves no "…" placeholder, and window/hop reach the server.
            bad = tmp_path / "notes.xyz"
            bad.write_bytes(b"abc")
            driver.find_element(By.ID, "file").send_keys(str(bad))
            driver.find_element(By.ID, "send").click()
            WebDriverWait(driver, 20).until(
                lambda d: "unsupported file type" in d.find_element(By.ID, "error").text)
            assert driver.find_element(By.ID, "label").text == ""
            driver.find_element(By.ID, "file").send_keys(os.path.abspath(wav))
            driver.find_element(By.ID, "window").send_keys("0.5")
            driver.find_element(By.ID, "send").click()
            WebDriverWait(driver, 20).until(
                lambda d: d.find_element(By.ID, "label").text == "angry")
            assert "window(s) of 0.5 s" in driver.find_element(By.ID, "scored").text
    finally:
        driver.quit()
