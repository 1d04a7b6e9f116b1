//! A real headless Chromium for the page tests (payment pages, the merchant's cabinet), driven
//! through WebDriver: Debian's `chromium` and `chromium-driver`, started per browser with its own
//! throw-away profile, so tests never share cookies and never need a fixed port.
//!
//! Owns starting and stopping `chromedriver`, the browser's options (JavaScript on or off, the
//! window size, the language) and where screenshots go (`target/screenshots/`). It must never
//! leave a browser or driver process behind: both die with the [`Browser`].

use std::path::{Path, PathBuf};
use std::process::Stdio;

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::GUARD;

/// How the browser is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scripts run (false: the no-JS shopper, every page must work with plain forms).
    pub javascript: bool,
    /// Window width in CSS pixels (360: a phone).
    pub width: u32,
    /// Window height in CSS pixels.
    pub height: u32,
    /// The browser's preferred language (`Accept-Language`), e.g. `en` or `ru`.
    pub language: &'static str,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            javascript: true,
            width: 1280,
            height: 900,
            language: "en",
        }
    }
}

impl Options {
    /// The no-JS shopper.
    pub fn without_javascript() -> Options {
        Options {
            javascript: false,
            ..Options::default()
        }
    }

    /// A phone: 360 CSS pixels wide.
    pub fn phone() -> Options {
        Options {
            width: 360,
            height: 780,
            ..Options::default()
        }
    }
}

/// A headless Chromium under its own `chromedriver`. Closing is best done with [`Browser::close`];
/// dropping it kills both processes anyway.
pub struct Browser {
    client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser").finish_non_exhaustive()
    }
}

impl Browser {
    /// Starts `chromedriver` on a port of its choosing and a headless Chromium behind it.
    /// Panics when either is missing (`bash scripts/deps.sh` installs them).
    pub async fn start(options: Options) -> Browser {
        let profile = tempfile::tempdir().expect("a temp dir for the browser profile");
        // A driver that exits before it listens (seen once on a loaded machine) gets one more try.
        let (driver, port) = match spawn_driver().await {
            Ok(started) => started,
            Err(first) => spawn_driver().await.unwrap_or_else(|second| {
                panic!("chromedriver did not start: {first}; again: {second}")
            }),
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&options, profile.path()))
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("chromedriver starts a headless Chromium");
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    /// The WebDriver session, for everything this module does not wrap.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("the page opens");
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("the browser answers")
            .to_string()
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("the browser answers")
    }

    /// The visible text of the element `css`, waiting up to the guard time for it to appear.
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css)
            .await
            .text()
            .await
            .expect("the element has text")
    }

    /// Waits up to the guard time for the element `css` and returns it.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(GUARD)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} on the page: {e}"))
    }

    /// Whether the element `css` is on the page now (no waiting).
    pub async fn has(&self, css: &str) -> bool {
        match self.client.find(Locator::Css(css)).await {
            Ok(_) => true,
            Err(e) if e.is_no_such_element() => false,
            Err(e) => panic!("the browser failed to look for {css}: {e}"),
        }
    }

    /// Types `text` into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.wait_for(css).await;
        field.clear().await.expect("the field clears");
        field.send_keys(text).await.expect("the field takes keys");
    }

    /// Clicks the element `css`.
    pub async fn click(&self, css: &str) {
        self.wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Waits up to the guard time until the current URL starts with `prefix`.
    pub async fn wait_for_url(&self, prefix: &str) -> String {
        crate::eventually(&format!("the browser at {prefix}"), async || {
            self.url().await.starts_with(prefix)
        })
        .await;
        self.url().await
    }

    /// Saves a PNG of the window as `target/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("the browser draws");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("target/screenshots can be made");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot is written");
        path
    }

    /// Ends the session and stops the browser and its driver.
    pub async fn close(self) {
        // A session that is already gone is closed enough.
        let _ = self.client.close().await;
    }
}

/// `target/screenshots`, under `CARGO_TARGET_DIR` when set.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

fn driver_binary() -> &'static str {
    "chromedriver"
}

/// Chromium's binary: Debian names it `chromium`; elsewhere chromedriver finds its own Chrome.
fn browser_binary() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// Starts `chromedriver` on a port of its choosing and reads its "started successfully on port N"
/// line; what it said instead when it does not.
async fn spawn_driver() -> Result<(Child, u16), String> {
    let mut driver = Command::new(driver_binary())
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver runs (apt-get install chromium-driver)");
    let stdout = driver
        .stdout
        .take()
        .expect("chromedriver's stdout is piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut said = Vec::new();
    let found = tokio::time::timeout(GUARD, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let port = line
                .split("on port ")
                .nth(1)
                .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok());
            if let Some(port @ 1..) = port {
                return Some(port);
            }
            said.push(line);
        }
        None
    })
    .await;
    // Keep draining its stdout so that chromedriver never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    match found {
        Ok(Some(port)) => Ok((driver, port)),
        Ok(None) => Err(format!(
            "it exited ({:?}) after saying {said:?}",
            driver.try_wait().ok().flatten()
        )),
        Err(_) => Err(format!("no port within {GUARD:?}; it said {said:?}")),
    }
}

fn capabilities(options: &Options, profile: &Path) -> Capabilities {
    let mut args = vec![
        "--headless=new".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--no-first-run".to_owned(),
        "--no-default-browser-check".to_owned(),
        "--disable-extensions".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-features=Translate,PasswordManagerOnboarding".to_owned(),
        format!("--window-size={},{}", options.width, options.height),
        format!("--lang={}", options.language),
        format!("--user-data-dir={}", profile.display()),
    ];
    // Chromium refuses its sandbox as root (CI containers run as root).
    if is_root() {
        args.push("--no-sandbox".to_owned());
    }
    let mut chrome = json!({
        "args": args,
        "prefs": {
            "intl.accept_languages": options.language,
            // 2 = blocked: the browser runs no script at all, as a shopper with JS off.
            "profile.managed_default_content_settings.javascript":
                if options.javascript { 1 } else { 2 },
        },
    });
    // Headless Chromium will not make a window narrower than 500 pixels: a phone's width is
    // emulated instead, so that the page really lays out at it.
    if options.width < 500 {
        chrome["mobileEmulation"] = json!({
            "deviceMetrics": { "width": options.width, "height": options.height, "pixelRatio": 1.0 },
        });
    }
    if let Some(binary) = browser_binary() {
        chrome["binary"] = json!(binary);
    }
    let mut caps = Capabilities::new();
    caps.insert("goog:chromeOptions".to_owned(), chrome);
    caps
}

fn is_root() -> bool {
    // The effective uid is not in std; the owner of /proc/self is this process's uid.
    std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata("/proc/self").expect("/proc/self is readable"),
    ) == 0
}
