//! The console's noise reduction settings with their preview, label enrichment rules, the
//! alert pipeline and mapping tables (docs/console.md): over plain HTTP for exact answers
//! (the preview against the Open API's, saves against what the API then reads), and end to
//! end in a headless Chromium driven over WebDriver, with desktop and 375-px screenshots in
//! `$CARGO_TARGET_DIR/console-screenshots`.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver`; without them it fails
//! when `CI=true` and is skipped with a printed reason otherwise. Every test runs on SQLite,
//! and on PostgreSQL too when `KLAXON_TEST_DATABASE_URL` is set.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::common::browser;

use browser::{
    Browser, browser_sign_in, click, exists, shoot, text_of, type_into, unlabelled_inputs, until,
    value_of,
};
use common::{TestServer, ok};
use fantoccini::Locator;
use serde_json::json;

/// A console client: GETs and htmx POSTs with the session (and the CSRF token when given).
struct Console<'a> {
    t: &'a TestServer,
    cookie: String,
    csrf: String,
}

impl Console<'_> {
    async fn get(&self, path: &str) -> (u16, String) {
        let resp = no_redirects()
            .get(format!("{}{path}", self.t.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        with_token: bool,
    ) -> reqwest::Response {
        let mut req = self
            .t
            .http
            .post(format!("{}{path}", self.t.base))
            .header("cookie", &self.cookie)
            .header("hx-request", "true")
            .header("content-type", content_type)
            .body(body);
        if with_token {
            req = req.header("x-klaxon-csrf", &self.csrf);
        }
        req.send().await.unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.post_raw(
            path,
            "application/x-www-form-urlencoded",
            serde_urlencoded::to_string(form).unwrap().into_bytes(),
            true,
        )
        .await
    }

    /// A `multipart/form-data` POST of one file input, as a browser sends it.
    async fn upload(&self, path: &str, name: &str, file: &str, text: &str) -> reqwest::Response {
        let boundary = "----KlaxonTestBoundary7MA4YWxk";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\n\
             Content-Type: text/csv\r\n\r\n{text}\r\n--{boundary}--\r\n"
        );
        self.post_raw(
            path,
            &format!("multipart/form-data; boundary={boundary}"),
            body.into_bytes(),
            true,
        )
        .await
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The bootstrap channel, with its own grouping switched off so every alert is an incident.
async fn channel(t: &TestServer) -> i64 {
    let channels = ok(t.api("/channel/list", json!({})).await);
    let cid = channels["items"][0]["channel_id"].as_i64().unwrap();
    ok(t.api(
        "/channel/update",
        json!({"channel_id": cid, "group": {"method": "n"}}),
    )
    .await);
    cid
}

/// Three alerts, two of them on host db-1, and a second event of one of them.
async fn push_recent_events(t: &TestServer) {
    for (key, title, host) in [
        ("cpu-db-1", "CPU high on db-1", "db-1"),
        ("disk-db-1", "Disk full on db-1", "db-1"),
        ("cpu-web-2", "CPU high on web-2", "web-2"),
        ("cpu-db-1", "CPU high on db-1", "db-1"),
    ] {
        let (status, body) = t
            .push(json!({"event_status": "Critical", "title_rule": title,
                         "alert_key": key, "labels": {"host": host}}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    t.drained().await;
}

/// `The last N events … would have made M incidents` of a preview fragment.
fn preview_counts(html: &str) -> (i64, i64) {
    let nums: Vec<i64> = html
        .split("<strong>")
        .skip(1)
        .filter_map(|s| s.split("</strong>").next()?.trim().parse().ok())
        .collect();
    assert!(nums.len() >= 2, "{html}");
    (nums[0], nums[1])
}

/// ING-160 through the console: the preview of the settings in the form is the Open API's
/// preview of the same `group{}` (one implementation), it changes with the form and writes
/// nothing; a save stores exactly what the form shows; a refused value is named beside its
/// field with everything typed kept and nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_noise_settings_preview_and_save() {
    noise_settings_over_http("").await;
    if let Some(url) = common::fresh_postgres().await {
        noise_settings_over_http(&url).await;
    }
}

async fn noise_settings_over_http(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let cid = channel(&t).await;
    push_recent_events(&t).await;
    let (cookie, csrf) = common::console_session(t.server.as_ref().unwrap()).await;
    let c = Console {
        t: &t,
        cookie,
        csrf,
    };
    let incidents_before = t.incidents().await.len();
    let stored_before = ok(t.api("/channel/info", json!({"channel_id": cid})).await);

    // Signed out, the page leads to the sign-in form.
    let resp = no_redirects()
        .get(format!("{}/channels/{cid}/noise", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);

    // spec: ING-160 — the page opens with the preview of the stored settings (grouping off:
    // one incident per alert).
    let (status, page) = c.get(&format!("/channels/{cid}/noise")).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"method-n\" checked"), "{page}");
    let api = ok(t
        .api("/channel/grouping/preview", json!({"channel_id": cid}))
        .await);
    // The repeated cpu-db-1 trigger is a duplicate of its alert: counted as in the API.
    let events = api["event_cnt"].as_i64().unwrap();
    assert!(events >= 3, "{api}");
    assert_eq!(api["incident_cnt"], 3);
    assert_eq!(preview_counts(&page), (events, 3));

    // spec: ING-155 — grouping by labels.host in the form: db-1's two alerts become one
    // incident; the fragment agrees with the API's preview of the same group.
    let path = format!("/channels/{cid}/noise/preview");
    let resp = c
        .post(
            &path,
            &[
                ("method", "p"),
                ("dims", "labels.host"),
                ("time_window", "0"),
                ("window_type", "sliding"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    let api = ok(t
        .api(
            "/channel/grouping/preview",
            json!({"channel_id": cid, "group": {"method": "p", "equals": [["labels.host"]]}}),
        )
        .await);
    assert_eq!(api["incident_cnt"], 2);
    assert_eq!(preview_counts(&html), (events, 2));
    assert!(html.contains("Disk full on db-1"), "{html}");
    // spec: ING-157 — by similarity (titles compared): the two CPU alerts are one incident.
    let resp = c
        .post(
            &path,
            &[("method", "i"), ("i_keys", "title"), ("i_threshold", "0.8")],
        )
        .await;
    let html = resp.text().await.unwrap();
    let api = ok(t
        .api(
            "/channel/grouping/preview",
            json!({"channel_id": cid, "group": {"method": "i", "i_keys": ["title"],
                                                "i_score_threshold": 0.8}}),
        )
        .await);
    assert_eq!(
        preview_counts(&html).1,
        api["incident_cnt"].as_i64().unwrap()
    );
    // A value that cannot be previewed is named in the preview.
    let resp = c
        .post(
            &path,
            &[
                ("method", "p"),
                ("dims", "labels.host"),
                ("time_window", "soon"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text().await.unwrap().contains("group.time_window"),
        "the preview names the field"
    );
    // The preview wrote nothing: no incident, the same settings.
    assert_eq!(t.incidents().await.len(), incidents_before);
    assert_eq!(
        ok(t.api("/channel/info", json!({"channel_id": cid})).await)["group"],
        stored_before["group"]
    );

    // spec: RSP-200 — thresholds must increase: refused beside the storm field, typed kept,
    // nothing saved.
    let save = format!("/channels/{cid}/noise");
    let form = |storm: &'static str| {
        vec![
            ("method", "p"),
            ("dims", "labels.host, labels.check"),
            ("strict", "true"),
            ("time_window", "30"),
            ("window_type", "tumbling"),
            ("storm", storm),
            ("flap_mode", "remind"),
            ("max_changes", "5"),
            ("in_mins", "30"),
            ("mute_mins", "0"),
        ]
    };
    let resp = c.post(&save, &form("50, 10")).await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"storm-error\""), "{html}");
    assert!(html.contains("group.storm_thresholds[1]"), "{html}");
    assert!(html.contains("value=\"50, 10\""), "typed kept: {html}");
    assert!(
        html.contains("value=\"labels.host, labels.check\""),
        "{html}"
    );
    // spec: ING-180 — flapping bounds are the API's, named beside their field.
    let mut bad_flap = form("10, 50");
    bad_flap[7] = ("max_changes", "0");
    let resp = c.post(&save, &bad_flap).await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("id=\"max_changes-error\"")
    );
    // Without the CSRF token: refused, nothing changed.
    let resp = c
        .post_raw(
            &save,
            "application/x-www-form-urlencoded",
            serde_urlencoded::to_string(form("10, 50"))
                .unwrap()
                .into_bytes(),
            false,
        )
        .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        ok(t.api("/channel/info", json!({"channel_id": cid})).await)["group"],
        stored_before["group"]
    );

    // spec: ING-155, ING-180 — saved, and read back by the API as the form showed it.
    let resp = c.post(&save, &form("10, 50")).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["hx-redirect"],
        format!("/channels/{cid}/noise?saved=1")
    );
    let info = ok(t.api("/channel/info", json!({"channel_id": cid})).await);
    assert_eq!(info["group"]["method"], "p");
    assert_eq!(
        info["group"]["equals"],
        json!([["labels.host", "labels.check"]])
    );
    assert_eq!(info["group"]["all_equals_required"], true);
    assert_eq!(info["group"]["time_window"], 30);
    assert_eq!(info["group"]["window_type"], "tumbling");
    assert_eq!(info["group"]["storm_thresholds"], json!([10, 50]));
    assert_eq!(info["flapping"]["mode"], "remind");
    assert_eq!(info["flapping"]["max_changes"], 5);
    assert_eq!(info["flapping"]["in_mins"], 30);
    let (_, page) = c.get(&format!("/channels/{cid}/noise?saved=1")).await;
    assert!(page.contains("id=\"saved\""), "{page}");
    assert!(page.contains("id=\"method-p\" checked"), "{page}");
    assert!(page.contains("value=\"10, 50\""), "{page}");
    t.stop().await;
}

/// Enrichment rules and the alert pipeline of an integration through their pages: a refused
/// rule is named beside its input with nothing saved; an added rule is what the API then
/// holds and acts on the next event; disable and delete change the stored list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrichment_and_pipeline_rules_through_their_pages() {
    rules_over_http("").await;
    if let Some(url) = common::fresh_postgres().await {
        rules_over_http(&url).await;
    }
}

async fn integration_id(t: &TestServer, cid: i64) -> i64 {
    let list = ok(t
        .api("/integration/list", json!({"channel_ids": [cid]}))
        .await);
    list["items"][0]["integration_id"].as_i64().unwrap()
}

async fn rules_over_http(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let cid = channel(&t).await;
    let iid = integration_id(&t, cid).await;
    let (cookie, csrf) = common::console_session(t.server.as_ref().unwrap()).await;
    let c = Console {
        t: &t,
        cookie,
        csrf,
    };
    let (status, page) = c.get("/channels").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("id=\"enrichment-link-{iid}\"")),
        "{page}"
    );
    assert!(
        page.contains(&format!("id=\"pipeline-link-{iid}\"")),
        "{page}"
    );
    assert!(page.contains(&format!("id=\"noise-link-{cid}\"")), "{page}");

    // spec: ING-061 — a pattern that is no regular expression: refused beside the pattern.
    let path = format!("/integrations/{iid}/enrichment");
    let rule = |pattern: &'static str| {
        vec![
            ("kind", "extract"),
            ("extract_source", "description"),
            ("pattern", pattern),
            ("result_label", "ip"),
            ("c0_group", "1"),
            ("c0_key", "severity"),
            ("c0_oper", "IN"),
            ("c0_vals", "Critical"),
        ]
    };
    let resp = c.post(&path, &rule("host (\\d+")).await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"pattern-error\""), "{html}");
    assert!(html.contains("rules[0].pattern"), "{html}");
    assert!(html.contains("value=\"host (\\d+\""), "typed kept: {html}");
    let held = ok(t
        .api("/enrichment/info", json!({"integration_id": iid}))
        .await);
    assert_eq!(held["rules"], json!([]));
    // spec: ING-060 — a bad condition is named beside its row.
    let mut bad_cond = rule("host (\\S+)");
    bad_cond[7] = ("c0_vals", "/crit[/");
    let resp = c.post(&path, &bad_cond).await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"c0_vals-error\""), "{html}");

    let resp = c.post(&path, &rule("host (\\S+)")).await;
    assert_eq!(resp.status(), 204);
    let held = ok(t
        .api("/enrichment/info", json!({"integration_id": iid}))
        .await);
    assert_eq!(held["rules"][0]["type"], "extract");
    assert_eq!(held["rules"][0]["pattern"], "host (\\S+)");
    assert_eq!(
        held["rules"][0]["condition"],
        json!([[{"key": "severity", "oper": "IN", "vals": ["Critical"]}]])
    );
    let (_, page) = c.get(&path).await;
    // (The page escapes `/` as `&#x2f;`.)
    assert!(
        page.contains("ip ← &#x2f;host (\\S+)&#x2f; of description"),
        "{page}"
    );
    assert!(page.contains("( severity == Critical )"), "{page}");
    // The next event is enriched by the rule the page saved.
    let (status, body) = t
        .push(
            json!({"event_status": "Critical", "title_rule": "Host down",
                     "alert_key": "enrich-1", "description": "host 10.0.0.9 is down"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    t.drained().await;
    let alert = t
        .alerts()
        .await
        .into_iter()
        .find(|a| a["title"] == "Host down")
        .unwrap();
    assert_eq!(alert["labels"]["ip"], "10.0.0.9", "{alert}");
    // Disable, then delete.
    let resp = c.post(&format!("{path}/0/disable"), &[]).await;
    assert_eq!(resp.status(), 204);
    let held = ok(t
        .api("/enrichment/info", json!({"integration_id": iid}))
        .await);
    assert_eq!(held["rules"][0]["enabled"], false);
    let resp = c.post(&format!("{path}/7/delete"), &[]).await;
    assert_eq!(resp.status(), 404);
    let resp = c.post(&format!("{path}/0/delete"), &[]).await;
    assert_eq!(resp.status(), 204);
    let held = ok(t
        .api("/enrichment/info", json!({"integration_id": iid}))
        .await);
    assert_eq!(held["rules"], json!([]));

    // spec: ING-080 — a pipeline severity rewrite with a bad regex condition: beside the row.
    let path = format!("/integrations/{iid}/pipeline");
    let rewrite = |vals: &'static str| {
        vec![
            ("kind", "severity_reset"),
            ("severity", "Info"),
            ("c0_group", "1"),
            ("c0_key", "labels.env"),
            ("c0_oper", "IN"),
            ("c0_vals", vals),
        ]
    };
    let resp = c.post(&path, &rewrite("/dev[/")).await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"c0_vals-error\""), "{html}");
    assert!(html.contains("&#x2f;dev[&#x2f;"), "typed kept: {html}");
    let held = ok(t
        .api("/alert/pipeline/info", json!({"integration_id": iid}))
        .await);
    assert_eq!(held["rules"], json!([]));
    let resp = c.post(&path, &rewrite("dev")).await;
    assert_eq!(resp.status(), 204);
    let held = ok(t
        .api("/alert/pipeline/info", json!({"integration_id": iid}))
        .await);
    assert_eq!(held["rules"][0]["kind"], "severity_reset");
    assert_eq!(held["rules"][0]["settings"]["severity"], "Info");
    let (_, page) = c.get(&path).await;
    assert!(page.contains("severity ← Info"), "{page}");
    // The next matching event is rewritten.
    let (status, body) = t
        .push(
            json!({"event_status": "Critical", "title_rule": "Dev box hot",
                     "alert_key": "pipe-1", "labels": {"env": "dev"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    t.drained().await;
    let alert = t
        .alerts()
        .await
        .into_iter()
        .find(|a| a["title"] == "Dev box hot")
        .unwrap();
    assert_eq!(alert["alert_severity"], "Info", "{alert}");
    let resp = c.post(&format!("{path}/0/delete"), &[]).await;
    assert_eq!(resp.status(), 204);
    let held = ok(t
        .api("/alert/pipeline/info", json!({"integration_id": iid}))
        .await);
    assert_eq!(held["rules"], json!([]));
    t.stop().await;
}

/// Mapping tables through their pages: a refused schema is named beside its field; a CSV
/// import replaces the rows (or nothing when refused, beside the file input); rows are paged;
/// delete removes the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapping_tables_through_their_pages() {
    mapping_over_http("").await;
    if let Some(url) = common::fresh_postgres().await {
        mapping_over_http(&url).await;
    }
}

async fn mapping_over_http(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let (cookie, csrf) = common::console_session(t.server.as_ref().unwrap()).await;
    let c = Console {
        t: &t,
        cookie,
        csrf,
    };
    let (status, page) = c.get("/mapping-tables").await;
    assert_eq!(status, 200);
    assert!(page.contains("No mapping tables yet"), "{page}");

    // spec: ING-070 — source and result keys must be disjoint.
    let resp = c
        .post(
            "/mapping-tables",
            &[
                ("name", "Hosts"),
                ("source_keys", "host"),
                ("result_keys", "team, host"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"result_keys-error\""), "{html}");
    assert!(html.contains("value=\"team, host\""), "typed kept: {html}");
    let listed = ok(t.api("/enrichment/mapping/schema/list", json!({})).await);
    assert_eq!(listed["total"], 0);

    let resp = c
        .post(
            "/mapping-tables",
            &[
                ("name", "Hosts"),
                ("source_keys", "host"),
                ("result_keys", "team, owner"),
            ],
        )
        .await;
    assert_eq!(resp.status(), 204);
    let to = resp.headers()["hx-redirect"].to_str().unwrap().to_string();
    let sid = to.strip_prefix("/mapping-tables/").unwrap().to_string();
    let listed = ok(t.api("/enrichment/mapping/schema/list", json!({})).await);
    assert_eq!(listed["items"][0]["schema_id"], sid.as_str());

    // spec: ING-071 — a file without the owner column is refused beside the file input, and
    // nothing is imported.
    let upload = format!("/mapping-tables/{sid}/upload");
    let resp = c
        .upload(&upload, "csv", "hosts.csv", "host,team\nweb-1,payments\n")
        .await;
    assert_eq!(resp.status(), 400);
    let html = resp.text().await.unwrap();
    assert!(html.contains("id=\"csv-error\""), "{html}");
    assert!(html.contains("owner"), "{html}");
    // No file chosen: named beside the input too.
    let resp = c.upload(&upload, "csv", "", "").await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("choose a CSV file"));
    let rows = ok(t
        .api("/enrichment/mapping/data/list", json!({"schema_id": sid}))
        .await);
    assert_eq!(rows["total"], 0);

    // 120 rows (one with an empty source skipped): three pages of 50.
    let mut csv = String::from("owner,host,team\n");
    for n in 0..120 {
        csv.push_str(&format!("o{n},web-{n:03},team-{}\n", n % 7));
    }
    csv.push_str("nobody,,none\n");
    let resp = c.upload(&upload, "csv", "hosts.csv", &csv).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(
        resp.headers()["hx-redirect"],
        format!("/mapping-tables/{sid}?imported=120")
    );
    let rows = ok(t
        .api("/enrichment/mapping/data/list", json!({"schema_id": sid}))
        .await);
    assert_eq!(rows["total"], 120);
    let (_, page) = c.get(&format!("/mapping-tables/{sid}")).await;
    assert!(page.contains("Page 1 of 3"), "{page}");
    assert!(
        page.contains("web-000") && !page.contains("web-050"),
        "{page}"
    );
    let (_, page) = c.get(&format!("/mapping-tables/{sid}?p=3")).await;
    assert!(
        page.contains("web-119") && !page.contains("web-049"),
        "{page}"
    );

    // A table an enrichment rule names cannot be deleted (ReferenceExist), then it can.
    let cid = channel(&t).await;
    let iid = integration_id(&t, cid).await;
    ok(t.api(
        "/enrichment/upsert",
        json!({"integration_id": iid, "rules": [{"type": "map", "source": "table", "schema_id": sid}]}),
    )
    .await);
    let resp = c.post(&format!("/mapping-tables/{sid}/delete"), &[]).await;
    assert!(resp.status().is_client_error());
    assert!(resp.text().await.unwrap().contains("is used by"));
    ok(t.api(
        "/enrichment/upsert",
        json!({"integration_id": iid, "rules": []}),
    )
    .await);
    let resp = c.post(&format!("/mapping-tables/{sid}/delete"), &[]).await;
    assert_eq!(resp.status(), 204);
    let listed = ok(t.api("/enrichment/mapping/schema/list", json!({})).await);
    assert_eq!(listed["total"], 0);
    t.stop().await;
}

/// From the channels page: the noise reduction settings, where switching the grouping to
/// "by dimensions" changes the preview at once (nothing saved), a bad window is refused
/// beside its field with the input kept, and a save sticks; an enrichment rule is refused,
/// then created; a mapping table is created and a CSV file imported through the file input;
/// the pipeline page is reached from the channels page. Every page fits 375 px.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noise_settings_enrichment_and_mapping_tables_in_the_browser() {
    noise_pages_in_the_browser("").await;
    if let Some(url) = common::fresh_postgres().await {
        noise_pages_in_the_browser(&url).await;
    }
}

async fn noise_pages_in_the_browser(database_url: &str) {
    let mut t = TestServer::start(database_url).await;
    let Some(browser) = Browser::start().await else {
        t.stop().await;
        return;
    };
    let cid = channel(&t).await;
    let iid = integration_id(&t, cid).await;
    push_recent_events(&t).await;
    let c = &browser.client;
    browser_sign_in(&t, c).await;

    // spec: ING-160 — the preview of the stored settings, then of the form's.
    c.goto(&format!("{}/channels", t.base)).await.unwrap();
    click(c, &format!("#noise-link-{cid}")).await;
    until("the noise settings page", || async {
        c.current_url().await.unwrap().path() == format!("/channels/{cid}/noise")
    })
    .await;
    assert_eq!(unlabelled_inputs(c).await, 0);
    assert!(
        text_of(c, "#preview-summary")
            .await
            .contains("would have made 3 incidents"),
        "{}",
        text_of(c, "#preview").await
    );
    // Keyboard: the grouping choice is reached and changed with keys.
    click(c, "#method-p").await;
    type_into(c, "#dims", "labels.host").await;
    // Leaving the field commits the change (Tab), which refreshes the preview.
    c.find(Locator::Css("#dims"))
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    until("the preview of grouping by host", || async {
        text_of(c, "#preview-summary")
            .await
            .contains("would have made 2 incidents")
    })
    .await;
    shoot(c, "noise-settings-preview").await;
    // Nothing was saved by the preview.
    let info = ok(t.api("/channel/info", json!({"channel_id": cid})).await);
    assert_eq!(info["group"]["method"], "n");

    // spec: ING-150 — a window over 1440 minutes: refused beside the field, typed kept.
    type_into(c, "#time_window", "5000").await;
    click(c, "#save-settings").await;
    until("the window error", || async {
        text_of(c, "#time_window-error")
            .await
            .contains("group.time_window")
    })
    .await;
    assert_eq!(value_of(c, "#time_window").await, "5000");
    assert_eq!(value_of(c, "#dims").await, "labels.host");
    shoot(c, "noise-settings-error").await;
    type_into(c, "#time_window", "60").await;
    click(c, "#save-settings").await;
    until("the saved settings", || async { exists(c, "#saved").await }).await;
    let info = ok(t.api("/channel/info", json!({"channel_id": cid})).await);
    assert_eq!(info["group"]["equals"], json!([["labels.host"]]));
    assert_eq!(info["group"]["time_window"], 60);

    // spec: ING-061 — an enrichment rule, reached from the channels page.
    c.goto(&format!("{}/channels", t.base)).await.unwrap();
    click(c, &format!("#enrichment-link-{iid}")).await;
    until("the enrichment page", || async {
        exists(c, "#enrichment-form").await
    })
    .await;
    assert_eq!(unlabelled_inputs(c).await, 0);
    type_into(c, "#pattern", "host (\\d+").await;
    type_into(c, "#result_label", "ip").await;
    click(c, "#add-rule").await;
    until("the pattern error", || async {
        text_of(c, "#pattern-error").await.contains("pattern")
    })
    .await;
    assert_eq!(value_of(c, "#pattern").await, "host (\\d+");
    shoot(c, "enrichment-error").await;
    type_into(c, "#pattern", "host (\\S+)").await;
    click(c, "#add-rule").await;
    until("the listed rule", || async {
        text_of(c, "#enrichment-rules")
            .await
            .contains("ip ← /host (\\S+)/")
    })
    .await;
    shoot(c, "enrichment").await;
    let held = ok(t
        .api("/enrichment/info", json!({"integration_id": iid}))
        .await);
    assert_eq!(held["rules"][0]["result_label"], "ip");

    // The pipeline page, one link away.
    c.goto(&format!("{}/channels", t.base)).await.unwrap();
    click(c, &format!("#pipeline-link-{iid}")).await;
    until("the pipeline page", || async {
        exists(c, "#pipeline-form").await
    })
    .await;
    assert_eq!(unlabelled_inputs(c).await, 0);
    shoot(c, "pipeline").await;

    // spec: ING-070, ING-071 — a mapping table created by form and filled from a CSV file.
    c.goto(&format!("{}/channels", t.base)).await.unwrap();
    click(c, "#mapping-tables-link").await;
    until("the mapping tables page", || async {
        exists(c, "#table-form").await
    })
    .await;
    type_into(c, "#name", "Owners").await;
    type_into(c, "#source_keys", "host").await;
    type_into(c, "#result_keys", "host").await;
    click(c, "#create-table").await;
    until("the keys error", || async {
        text_of(c, "#result_keys-error")
            .await
            .contains("result_label_keys")
    })
    .await;
    assert_eq!(value_of(c, "#name").await, "Owners");
    type_into(c, "#result_keys", "team").await;
    click(c, "#create-table").await;
    until("the table page", || async {
        exists(c, "#upload-form").await
    })
    .await;
    assert_eq!(unlabelled_inputs(c).await, 0);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("owners.csv");
    std::fs::write(&file, "host,team\ndb-1,storage\nweb-2,frontend\n").unwrap();
    c.find(Locator::Css("#csv"))
        .await
        .unwrap()
        .send_keys(&file.display().to_string())
        .await
        .unwrap();
    click(c, "#import-csv").await;
    until("the imported rows", || async {
        text_of(c, "#rows").await.contains("frontend")
    })
    .await;
    assert!(text_of(c, "#imported").await.contains("2 rows"));
    shoot(c, "mapping-table").await;
    c.goto(&format!("{}/mapping-tables", t.base)).await.unwrap();
    shoot(c, "mapping-tables").await;

    browser.stop().await;
    t.stop().await;
}
