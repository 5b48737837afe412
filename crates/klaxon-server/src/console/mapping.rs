//! Mapping tables of label enrichment (ingest.md §2.6, ING-070…071; docs/enrichment.md): the
//! list with a form to create one, and one page per table with its rows (paged), a CSV import
//! (a file upload that replaces every row, or nothing) and delete. Every read and write is an
//! Open API call (`/enrichment/mapping/schema/{list,info,create,delete}`,
//! `/enrichment/mapping/data/{list,upload}`), so the checks are the API's own.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::{FieldErrors, split_field};
use super::incidents::{form_pairs, form_value, j, now_secs, page_headers};
use super::multipart;
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

/// Rows a table page shows.
const ROWS_PER_PAGE: i64 = 50;
/// A whole table (up to 100 000 rows) comes in one upload, as for the Open API's upload.
const MAX_UPLOAD_BODY: usize = 32 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mapping-tables", get(list_page).post(create))
        .route("/mapping-tables/{sid}", get(table_page))
        .route(
            "/mapping-tables/{sid}/upload",
            post(upload).layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY)),
        )
        .route("/mapping-tables/{sid}/delete", post(delete))
}

fn status_of(e: &ApiError) -> StatusCode {
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

fn keys(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The create form as typed.
#[derive(Debug, Clone, Default, serde::Serialize)]
struct SchemaForm {
    name: String,
    description: String,
    source_keys: String,
    result_keys: String,
}

/// The input an API error on a schema belongs to.
fn schema_input(field: &str) -> Option<String> {
    let name = field.split(['[', '.']).next().unwrap_or(field);
    Some(
        match name {
            "name" => "name",
            "description" => "description",
            "source_label_keys" => "source_keys",
            "result_label_keys" => "result_keys",
            _ => return None,
        }
        .to_string(),
    )
}

async fn me(state: &AppState, viewer: &Viewer) -> Result<Value, ApiError> {
    super::me(state, viewer).await
}

async fn list_answer(
    state: &AppState,
    viewer: &Viewer,
    form: &SchemaForm,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let tables = match fetch(
        state,
        viewer,
        "/enrichment/mapping/schema/list",
        json!({"limit": 100}),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return page_error(&e),
    };
    let me = match me(state, viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let ctx = context! {
        title => "Mapping tables",
        nav => "channels",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        now => now_secs(state),
        tables => j(&tables["items"]),
        total => j(&tables["total"]),
        v => j(form),
        errors => j(&errors.0),
    };
    page_headers((status, view::render("mapping_tables.html", ctx)).into_response())
}

async fn list_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let viewer = match viewer(&state, &Method::GET, &headers, "/mapping-tables").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    list_answer(
        &state,
        &viewer,
        &SchemaForm::default(),
        &FieldErrors::default(),
        StatusCode::OK,
    )
    .await
}

/// Creates a table; on success its page opens, on a refusal the list page comes back with the
/// message beside the field and everything typed kept.
async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let viewer = match viewer(&state, &Method::POST, &headers, "/mapping-tables").await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let pairs = form_pairs(&body);
    let form = SchemaForm {
        name: form_value(&pairs, "name"),
        description: form_value(&pairs, "description"),
        source_keys: form_value(&pairs, "source_keys"),
        result_keys: form_value(&pairs, "result_keys"),
    };
    let args = json!({
        "name": form.name,
        "description": form.description,
        "source_label_keys": keys(&form.source_keys),
        "result_label_keys": keys(&form.result_keys),
    });
    match fetch(&state, &viewer, "/enrichment/mapping/schema/create", args).await {
        Ok(saved) => {
            let sid = saved["schema_id"].as_str().unwrap_or("");
            redirect(&headers, &format!("/mapping-tables/{sid}"))
        }
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console mapping table create failed");
            }
            let errors = FieldErrors::file(&e.message, schema_input);
            list_answer(&state, &viewer, &form, &errors, status_of(&e)).await
        }
    }
}

async fn table_answer(
    state: &AppState,
    viewer: &Viewer,
    sid: &str,
    p: i64,
    errors: &FieldErrors,
    status: StatusCode,
    imported: Option<Value>,
) -> Response {
    let schema = match fetch(
        state,
        viewer,
        "/enrichment/mapping/schema/info",
        json!({"schema_id": sid}),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return page_error(&e),
    };
    let rows = match fetch(
        state,
        viewer,
        "/enrichment/mapping/data/list",
        json!({"schema_id": sid, "p": p, "limit": ROWS_PER_PAGE}),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return page_error(&e),
    };
    let me = match me(state, viewer).await {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    let columns: Vec<Value> = schema["source_label_keys"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(schema["result_label_keys"].as_array().into_iter().flatten())
        .cloned()
        .collect();
    let total = rows["total"].as_i64().unwrap_or(0);
    let pages = ((total + ROWS_PER_PAGE - 1) / ROWS_PER_PAGE).max(1);
    let ctx = context! {
        title => schema["name"].as_str().unwrap_or("Mapping table").to_string(),
        nav => "channels",
        csrf => viewer.session.csrf_token.clone(),
        me => j(&me),
        now => now_secs(state),
        s => j(&schema),
        columns => j(&columns),
        rows => j(&rows["items"]),
        total => total,
        p => p,
        pages => pages,
        errors => j(&errors.0),
        imported => imported.map(|i| j(&i)),
    };
    page_headers((status, view::render("mapping_table.html", ctx)).into_response())
}

async fn table_page(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/mapping-tables/{sid}");
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let p = q
        .get("p")
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(1);
    let imported = q.get("imported").map(|n| json!({"row_count": n}));
    table_answer(
        &state,
        &viewer,
        &sid,
        p,
        &FieldErrors::default(),
        StatusCode::OK,
        imported,
    )
    .await
}

/// The CSV of an upload form: the text of its `csv` file part.
fn csv_of(headers: &HeaderMap, body: &[u8]) -> Result<String, FieldErrors> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let none = || FieldErrors::one("csv", "csv: choose a CSV file to import");
    let boundary = multipart::boundary(ct).ok_or_else(none)?;
    let part = multipart::parts(body, &boundary)
        .into_iter()
        .find(|p| p.name == "csv")
        .ok_or_else(none)?;
    if part.body.is_empty() {
        return Err(none());
    }
    String::from_utf8(part.body)
        .map_err(|_| FieldErrors::one("csv", "csv: the file is not UTF-8 text"))
}

/// Imports a CSV file: every row of the table is replaced, or nothing when the file is
/// refused (the message then stands beside the file input).
async fn upload(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = format!("/mapping-tables/{sid}");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let outcome = match csv_of(&headers, &body) {
        Err(errors) => Err((errors, StatusCode::BAD_REQUEST)),
        Ok(csv) => match fetch(
            &state,
            &viewer,
            "/enrichment/mapping/data/upload",
            json!({"schema_id": sid, "csv": csv}),
        )
        .await
        {
            Ok(done) => Ok(done),
            Err(e) => {
                if e.code == ErrorCode::InternalError {
                    tracing::error!(error = %e.message, "console mapping table import failed");
                }
                let (field, _) = split_field(&e.message);
                let key = if field.is_some() || e.code == ErrorCode::InvalidParameter {
                    "csv"
                } else {
                    "_form"
                };
                Err((FieldErrors::one(key, e.message.clone()), status_of(&e)))
            }
        },
    };
    match outcome {
        Ok(done) => redirect(
            &headers,
            &format!(
                "/mapping-tables/{sid}?imported={}",
                done["row_count"].as_i64().unwrap_or(0)
            ),
        ),
        Err((errors, status)) => {
            table_answer(&state, &viewer, &sid, 1, &errors, status, None).await
        }
    }
}

/// Deletes a table; a refusal (a rule still names it) is a message for the page's region.
async fn delete(
    State(state): State<AppState>,
    Path(sid): Path<String>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/mapping-tables/{sid}");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    match call(
        &state,
        &viewer,
        "/enrichment/mapping/schema/delete",
        json!({"schema_id": sid}),
    )
    .await
    {
        Ok(_) => redirect(&headers, "/mapping-tables"),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console mapping table delete failed");
            }
            let html = format!("<p>{}</p>", view::escape(&e.message));
            page_headers((status_of(&e), Html(html)).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_errors_go_to_their_inputs() {
        assert_eq!(schema_input("name").as_deref(), Some("name"));
        assert_eq!(
            schema_input("source_label_keys[1]").as_deref(),
            Some("source_keys")
        );
        assert_eq!(
            schema_input("result_label_keys").as_deref(),
            Some("result_keys")
        );
        assert_eq!(schema_input("team_id"), None);
        assert_eq!(keys(" host, ,team "), vec!["host", "team"]);
    }

    #[test]
    fn an_upload_without_a_file_is_named_beside_the_input() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert!(csv_of(&h, b"csv=x").unwrap_err().0.contains_key("csv"));
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=B".parse().unwrap(),
        );
        let body = b"--B\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"a.csv\"\r\n\r\nhost,team\r\n--B--\r\n";
        assert_eq!(csv_of(&h, body).unwrap(), "host,team");
    }
}
