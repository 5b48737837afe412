//! A headless Chromium behind chromedriver for the console's browser tests, and the small
//! helpers they share (screenshots at desktop and phone widths, polling waits, form input).
//! Included with `#[path]` by the test files that drive a browser (the other test binaries
//! share `common` but have no use for a browser).
//!
//! The browser needs Debian's `chromium` and `chromium-driver` (/usr/bin/chromium,
//! /usr/bin/chromedriver). Without them a test fails when `CI=true` and is skipped with a
//! printed reason otherwise.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::common::TestServer;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium behind its own chromedriver, with a fresh profile.
pub struct Browser {
    pub client: Client,
    driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `None` (after printing why) when Chromium is not installed and this is not CI.
    pub async fn start() -> Option<Browser> {
        let missing: Vec<&str> = [CHROMIUM, CHROMEDRIVER]
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        if !missing.is_empty() {
            let why = format!(
                "{} not installed (apt-get install chromium chromium-driver)",
                missing.join(" and ")
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("the console browser test cannot run in CI: {why}");
            }
            eprintln!("SKIPPED console browser test: {why}");
            return None;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let driver = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{url}/status")).send().await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-quic".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--hide-scrollbars".to_string(),
            "--window-size=1280,900".to_string(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_string(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a WebDriver session");
        Some(Browser {
            client,
            driver,
            _profile: profile,
        })
    }

    pub async fn stop(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}

/// Where the screenshots go: `$CARGO_TARGET_DIR/console-screenshots`, else the workspace's
/// `target/console-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Screenshots of the current page at desktop and phone widths.
pub async fn shoot(c: &Client, name: &str) {
    let dir = screenshot_dir();
    for (label, width, height) in [("desktop", 1280, 900), ("phone", 375, 812)] {
        c.set_window_size(width, height).await.unwrap();
        // Let the layout settle at the new width.
        tokio::time::sleep(Duration::from_millis(150)).await;
        // The page must fit the width: nothing wider than the viewport (no sideways scroll).
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap_or(0) <= 0,
            "{name} is wider than {width} px by {overflow}"
        );
        // Every page that is photographed is also audited at both widths: readable contrast,
        // every control named and on the screen (issue: the console works at 375 px and meets
        // WCAG 2.1 AA).
        let problems = audit(c).await;
        assert!(
            problems.is_empty(),
            "{name} at {width} px: {}",
            problems.join("; ")
        );
        // The whole page, not just the first screen: grow the window to the page's height.
        let full = c
            .execute("return document.documentElement.scrollHeight", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0)
            .min(4000) as u32;
        let chrome = c
            .execute("return window.outerHeight - window.innerHeight", vec![])
            .await
            .unwrap()
            .as_u64()
            .unwrap_or(0) as u32;
        if full > height - chrome {
            c.set_window_size(width, full + chrome).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let png = c.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}-{label}.png")), png).unwrap();
        if width == 1280 {
            // After the picture, so the ring does not show in it.
            let unringed = keyboard_focus(c, 12).await;
            assert!(
                unringed.is_empty(),
                "{name}: keyboard focus without a visible ring: {}",
                unringed.join("; ")
            );
        }
    }
    c.set_window_size(1280, 900).await.unwrap();
}

/// Waits (polling, no page reload) until `check` holds.
pub async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

pub async fn value_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// How many visible form controls of the page have neither a `<label>` nor an `aria-label`.
pub async fn unlabelled_inputs(c: &Client) -> i64 {
    c.execute(
        "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')] \
         .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).length",
        vec![],
    )
    .await
    .unwrap()
    .as_i64()
    .unwrap()
}

pub async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Signs in through the form with the first-start owner credentials.
pub async fn browser_sign_in(t: &TestServer, c: &Client) {
    let server = t.server.as_ref().unwrap();
    let email = server.bootstrap().owner_email.clone();
    let password = server.owner_password().unwrap().to_string();
    c.goto(&format!("{}/signin", t.base)).await.unwrap();
    type_into(c, "#email", &email).await;
    type_into(c, "#password", &password).await;
    click(c, "form button[type=submit]").await;
    until("the incident list", || async {
        c.current_url().await.unwrap().path() == "/incidents"
    })
    .await;
}

/// Sets a form control's value by script (date and time inputs take keys by locale).
pub async fn set_value(c: &Client, id: &str, value: &str) {
    c.execute(
        "document.getElementById(arguments[0]).value = arguments[1]; return true",
        vec![json!(id), json!(value)],
    )
    .await
    .unwrap();
}

pub async fn accept_confirms(c: &Client) {
    c.execute(
        "window.confirm = function () { return true; }; return true",
        vec![],
    )
    .await
    .unwrap();
}

pub async fn attr_of(c: &Client, css: &str, name: &str) -> Option<String> {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .attr(name)
        .await
        .unwrap()
}

pub async fn exists(c: &Client, css: &str) -> bool {
    c.find_all(Locator::Css(css))
        .await
        .map(|v| !v.is_empty())
        .unwrap_or(false)
}

/// A server whose clock the test holds (it starts at the wall clock, so the session cookie
/// the browser gets is current).
pub async fn clocked_server(
    database_url: &str,
) -> (TestServer, std::sync::Arc<crate::common::ManualClock>) {
    clocked_server_with(database_url, |_| {}).await
}

/// [`clocked_server`] with its configuration changed first (mail, SMS providers, …).
pub async fn clocked_server_with(
    database_url: &str,
    tweak: impl FnOnce(&mut klaxon_server::Config),
) -> (TestServer, std::sync::Arc<crate::common::ManualClock>) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::common::test_config(dir.path(), database_url);
    tweak(&mut config);
    let clock = std::sync::Arc::new(crate::common::ManualClock(
        std::sync::atomic::AtomicI64::new(crate::common::wall_ms()),
    ));
    let server = klaxon_server::start_with_clock(config, clock.clone())
        .await
        .unwrap();
    let b = server.bootstrap().clone();
    let t = TestServer {
        base: server.base_url().to_string(),
        app_key: b.app_key.clone(),
        integration_key: b.integration_key.clone(),
        server: Some(server),
        dir,
        http: reqwest::Client::new(),
        database_url: database_url.to_string(),
    };
    (t, clock)
}

/// Whether the focused element shows a solid focus outline (`:focus-visible`), and its id.
pub async fn focus_ring(c: &Client) -> (String, bool) {
    let v = c
        .execute(
            "const e = document.activeElement; const s = getComputedStyle(e); \
             return [e.id, s.outlineStyle === 'solid' && parseFloat(s.outlineWidth) >= 2]",
            vec![],
        )
        .await
        .unwrap();
    (
        v[0].as_str().unwrap_or("").to_string(),
        v[1].as_bool().unwrap_or(false),
    )
}

/// Presses Tab in the focused element.
pub async fn tab(c: &Client) {
    c.active_element()
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
}

/// Marks the element, so that [`redrawn`] can tell when htmx has replaced it.
pub async fn mark(c: &Client, id: &str) {
    c.execute(
        "document.getElementById(arguments[0]).dataset.stale = '1'; return true",
        vec![json!(id)],
    )
    .await
    .unwrap();
}

/// Waits until the element marked by [`mark`] was drawn anew (the answer was swapped in).
pub async fn redrawn(c: &Client, id: &str) {
    until("the element redrawn", || async {
        c.execute(
            "const e = document.getElementById(arguments[0]); return !!e && !e.dataset.stale",
            vec![json!(id)],
        )
        .await
        .map(|v| v == json!(true))
        .unwrap_or(false)
    })
    .await;
}

/// Checks or unchecks a checkbox by clicking it, as a person would.
pub async fn tick(c: &Client, css: &str, on: bool) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    let checked = e.prop("checked").await.unwrap().as_deref() == Some("true");
    if checked != on {
        e.click().await.unwrap();
    }
}

/// Picks the option with `value` of a `<select>` by clicking it.
pub async fn choose(c: &Client, select: &str, value: &str) {
    c.find(Locator::Css(&format!("{select} option[value='{value}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The visible texts of the page whose contrast with their background is below WCAG 2.1 AA
/// (4.5:1, or 3:1 for large text: 24 px, or 18.66 px bold), as `text (ratio)`. The
/// background is the nearest opaque one behind the element (the page's white at the top).
pub async fn low_contrast(c: &Client) -> Vec<String> {
    let v = c
        .execute(
            r#"
            const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
            const lum = ([r, g, b]) => {
              const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
              return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
            };
            const behind = e => {
              for (; e; e = e.parentElement) {
                const c = rgb(getComputedStyle(e).backgroundColor);
                if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
              }
              return [255, 255, 255];
            };
            const out = [];
            for (const e of document.querySelectorAll('body *')) {
              const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
              if (!own || e.closest('[hidden], option, script, style, noscript')) continue;
              const r = e.getBoundingClientRect();
              if (r.width === 0 || r.height === 0) continue;
              const s = getComputedStyle(e);
              if (s.visibility !== 'visible' || parseFloat(s.opacity) === 0) continue;
              const a = lum(rgb(s.color)), b = lum(behind(e));
              const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
              const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight) >= 700;
              const large = size >= 24 || (bold && size >= 18.66);
              if (ratio < (large ? 3 : 4.5))
                out.push(e.textContent.trim().slice(0, 40) + ' (' + ratio.toFixed(2) + ')');
            }
            return out;
            "#,
            vec![],
        )
        .await
        .unwrap();
    v.as_array()
        .into_iter()
        .flatten()
        .map(|s| s.as_str().unwrap_or("").to_string())
        .collect()
}

/// What keeps the current page from being usable at the current width, as readable lines:
/// texts below WCAG 2.1 AA contrast (`low_contrast`), visible form controls without a name
/// (a `<label>`, `aria-label` or `aria-labelledby`), and visible controls (fields, buttons,
/// links) that reach outside the screen horizontally, so a phone user could not see or tap
/// them. Controls inside an element that scrolls sideways on purpose (a wide table in an
/// `overflow-x: auto` box) are reachable by scrolling that box and are not counted.
pub async fn audit(c: &Client) -> Vec<String> {
    let mut out: Vec<String> = low_contrast(c)
        .await
        .into_iter()
        .map(|t| format!("low contrast: {t}"))
        .collect();
    let layout = c
        .execute(
            r#"
            const w = document.documentElement.clientWidth;
            const out = [];
            const visible = e => {
              const r = e.getBoundingClientRect();
              const s = getComputedStyle(e);
              return r.width > 0 && r.height > 0 && s.visibility === 'visible'
                && !e.closest('[hidden], details:not([open]) > :not(summary)');
            };
            const scrolls = e => {
              for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
                const o = getComputedStyle(p).overflowX;
                if (o === 'auto' || o === 'scroll') return true;
              }
              return false;
            };
            const named = e => (e.labels && e.labels.length) || e.getAttribute('aria-label')
              || e.getAttribute('aria-labelledby');
            const what = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
              + (e.name ? '[name=' + e.name + ']' : '')
              + ' "' + (e.textContent || e.value || '').trim().slice(0, 30) + '"';
            for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
              if (visible(e) && !named(e)) out.push('no label: ' + what(e));
            }
            for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]')) {
              if (!visible(e) || scrolls(e)) continue;
              const r = e.getBoundingClientRect();
              // Entirely off to the left is the visually-hidden pattern (a skip link shown on
              // focus), not a clipped control.
              if (r.right <= 0) continue;
              if (r.left < -1 || r.right > w + 1)
                out.push('outside the screen: ' + what(e) + ' at ' + Math.round(r.left) + '..' + Math.round(r.right));
            }
            return out;
            "#,
            vec![],
        )
        .await
        .unwrap();
    out.extend(
        layout
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s.as_str().unwrap_or("").to_string()),
    );
    out
}

/// Presses Tab `presses` times from the top of the page and returns the focused elements
/// that show no focus ring (a solid outline of at least 2 px), so a keyboard user always sees
/// where they are. Tabbing moves focus only: no field changes, no form is sent.
pub async fn keyboard_focus(c: &Client, presses: usize) -> Vec<String> {
    c.execute(
        "window.__klaxonFocus = document.activeElement; \
         if (document.activeElement) document.activeElement.blur(); window.scrollTo(0, 0); \
         return true",
        vec![],
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    for _ in 0..presses {
        let Ok(active) = c.active_element().await else {
            break;
        };
        if active.send_keys("\u{E004}").await.is_err() {
            break;
        }
        let v = c
            .execute(
                "const e = document.activeElement; \
                 if (!e || e === document.body) return null; \
                 const s = getComputedStyle(e); \
                 const ring = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2; \
                 return [e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' \"' \
                   + (e.textContent || e.value || '').trim().slice(0, 30) + '\"', ring]",
                vec![],
            )
            .await
            .unwrap();
        if v.is_null() {
            break;
        }
        if !v[1].as_bool().unwrap_or(false) {
            out.push(v[0].as_str().unwrap_or("").to_string());
        }
    }
    // The focus goes back where the page had it (an autofocused field stays focused).
    c.execute(
        "const e = window.__klaxonFocus; \
         if (e && e !== document.body && e.focus) e.focus(); else document.activeElement.blur(); \
         window.scrollTo(0, 0); return true",
        vec![],
    )
    .await
    .unwrap();
    out
}
