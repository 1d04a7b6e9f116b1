//! The browser harness itself: Chromium starts headless, runs scripts only when asked to, and
//! draws screenshots where the page tests look for them.

use testkit::browser::{Browser, Options};

/// A page whose paragraph says `js` only when scripts run.
const PAGE: &str = "data:text/html,<p id=x>static</p><script>document.getElementById('x').textContent='js'</script>";

#[tokio::test]
async fn scripts_run_when_javascript_is_on() {
    let browser = Browser::start(Options::default()).await;
    browser.goto(PAGE).await;
    assert_eq!(browser.text("#x").await, "js");
    browser.close().await;
}

#[tokio::test]
async fn no_script_runs_when_javascript_is_off() {
    let browser = Browser::start(Options::without_javascript()).await;
    browser.goto(PAGE).await;
    assert_eq!(browser.text("#x").await, "static");
    browser.close().await;
}

#[tokio::test]
async fn a_screenshot_is_a_png_under_target() {
    let browser = Browser::start(Options::phone()).await;
    browser.goto(PAGE).await;
    let path = browser.screenshot("testkit-browser-self-test").await;
    let png = std::fs::read(&path).expect("the screenshot exists");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG: {}", path.display());
    browser.close().await;
}
