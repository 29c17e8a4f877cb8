//! A real browser for the UI's end-to-end tests: Debian's `chromium`,
//! headless, driven over WebDriver by `chromedriver` started on a free port
//! of 127.0.0.1. Screenshots go to `KIZUNA_TEST_ARTIFACTS` (by default
//! `kizuna-ui-artifacts` in the temporary directory).

use crate::peer::start_on_free_port;
use crate::skip_or_fail;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver listening on `port`; stopped when dropped.
pub struct Chromium {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Chromium {
    /// Starts chromedriver, or `None` when Chromium is not installed (the
    /// test has then been reported as skipped, or failed under
    /// `KIZUNA_TEST_SERVICES=required`).
    pub fn start(test: &str) -> Option<Chromium> {
        let driver = std::env::var("KIZUNA_TEST_CHROMEDRIVER").unwrap_or(CHROMEDRIVER.into());
        if !std::path::Path::new(&driver).exists() || !std::path::Path::new(&chromium()).exists() {
            skip_or_fail(
                test,
                "Chromium",
                "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
            );
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let log_path = dir.path().join("chromedriver.log");
        let (port, child) = start_on_free_port("chromedriver", &log_path, |port| {
            let log = std::fs::File::create(&log_path).expect("the chromedriver log");
            Command::new(&driver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("the log"))
                .stderr(log)
                .spawn()
                .expect("chromedriver starts")
        });
        Some(Chromium {
            port,
            child,
            _dir: dir,
        })
    }

    /// A new headless browser window, `width` × `height` pixels, reading
    /// `language` first.
    pub async fn open(&self, language: &str) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium(),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900",
                         format!("--lang={language}")],
                "prefs": {"intl.accept_languages": language},
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

fn chromium() -> String {
    std::env::var("KIZUNA_TEST_CHROMIUM").unwrap_or(CHROMIUM.into())
}

/// Saves a screenshot of the browser's window as `<test>-<step>.png` in the
/// artifacts directory; returns its path.
pub async fn screenshot(browser: &Client, test: &str, step: &str) -> PathBuf {
    let dir = std::env::var_os("KIZUNA_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("kizuna-ui-artifacts"));
    std::fs::create_dir_all(&dir).expect("the artifacts directory");
    let png = browser.screenshot().await.expect("a screenshot");
    let path = dir.join(format!("{test}-{step}.png"));
    std::fs::write(&path, png).expect("write the screenshot");
    path
}

/// The text of the first element matching `css`, once there is one.
pub async fn text(b: &Client, css: &str) -> String {
    b.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .expect("its text")
}

/// Types `value` into the field matching `css`, replacing what it held.
pub async fn fill(b: &Client, css: &str, value: &str) {
    let field = b.find(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("cleared");
    field.send_keys(value).await.expect("typed");
}

/// Clicks a link or a form's button and waits for the next page: until the
/// page the click was made on is gone (its root element stale).
pub async fn submit(b: &Client, css: &str) {
    let old = b.find(Locator::Css("html")).await.expect("a page");
    b.find(Locator::Css(css))
        .await
        .expect(css)
        .click()
        .await
        .expect("clicked");
    let started = std::time::Instant::now();
    while old.tag_name().await.is_ok() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no new page after clicking {css}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The path of the page the browser shows.
pub async fn path(b: &Client) -> String {
    let url = b.current_url().await.expect("a URL");
    url.path().to_string()
}

/// Chooses the option of value `value` of the select matching `css`.
pub async fn select(b: &Client, css: &str, value: &str) {
    b.find(Locator::Css(css))
        .await
        .expect(css)
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css} = {value}: {e}"));
}
