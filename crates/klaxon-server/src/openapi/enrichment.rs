//! Label enrichment and mapping tables (ingest.md §2.5, §2.6; openapi-compat.md §2.6;
//! docs/enrichment.md): `/enrichment/{info,list,upsert}` for an alert integration's rule list,
//! `/enrichment/mapping/schema/*` for mapping schemas, `/enrichment/mapping/data/*` for
//! their rows, CSV upload and download included, and `/enrichment/mapping/api/*` for the
//! label mapping services that map rules with `source = "api"` call (ING-072…075; the calls
//! themselves are made by the inbox worker, `crate::mapping_api`).
//!
//! Every save is validated whole by the core (`RuleSet::compile_with`, `validate_schema`,
//! `validate_service`, `TableUpload::parse`) and refused with a message naming the field
//! before anything is written.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;

use klaxon_core::enrichment::api::{DEFAULT_RETRY_COUNT, DEFAULT_TIMEOUT_SECS};
use klaxon_core::enrichment::{
    EnrichmentRule, MappingSchema, MappingService, RuleSet, TableUpload, validate_schema,
    validate_service, write_csv,
};
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_store::{
    EnrichmentRecord, Integration, IntegrationFilter, MappingRefusal, MappingRow, SchemaRecord,
    ServiceRecord,
};
use serde_json::{Map, Value, json};

use super::{Args, Caller};
use crate::changes::wire_type;
use crate::state::AppState;
use crate::wire::secs;

pub const PATHS: &[&str] = &[
    "/enrichment/info",
    "/enrichment/list",
    "/enrichment/upsert",
    "/enrichment/mapping/schema/create",
    "/enrichment/mapping/schema/update",
    "/enrichment/mapping/schema/delete",
    "/enrichment/mapping/schema/info",
    "/enrichment/mapping/schema/list",
    "/enrichment/mapping/data/upload",
    "/enrichment/mapping/data/upsert",
    "/enrichment/mapping/data/delete",
    "/enrichment/mapping/data/list",
    DOWNLOAD_PATH,
    "/enrichment/mapping/api/create",
    "/enrichment/mapping/api/update",
    "/enrichment/mapping/api/delete",
    "/enrichment/mapping/api/info",
    "/enrichment/mapping/api/list",
];

/// The one path whose success body is CSV, not the JSON envelope (openapi-compat.md 1.4).
pub const DOWNLOAD_PATH: &str = "/enrichment/mapping/data/download";
/// The upload carries a whole table (up to 100 000 rows) as CSV text inside the JSON body,
/// far above the 1 MiB of other calls.
const UPLOAD_PATH: &str = "/enrichment/mapping/data/upload";
const MAX_UPLOAD_BODY: usize = 32 * 1024 * 1024;
const ROWS_MAX_LIMIT: i64 = 100;

/// The body limit of `path`, when it differs from the Open API default.
pub(crate) fn body_limit(path: &str) -> Option<usize> {
    (path == UPLOAD_PATH).then_some(MAX_UPLOAD_BODY)
}

/// The download's success response: the CSV itself (`text/csv`), with the request id in the
/// usual header. None for every other path.
pub(crate) fn csv_response(path: &str, request_id: &str, data: &Option<Value>) -> Option<Response> {
    if path != DOWNLOAD_PATH {
        return None;
    }
    csv_file(request_id, data, "mapping.csv")
}

/// A CSV success response from `data` (`csv`, the text, and `file_name`), for the endpoints
/// whose success body is a file (openapi-compat.md 1.4).
pub(crate) fn csv_file(
    request_id: &str,
    data: &Option<Value>,
    default_name: &str,
) -> Option<Response> {
    let body = data.as_ref()?.get("csv")?.as_str()?.to_string();
    let name = data
        .as_ref()
        .and_then(|d| d.get("file_name"))
        .and_then(Value::as_str)
        .unwrap_or(default_name)
        .to_string();
    let mut resp = body.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("Flashcat-Request-Id", v);
    }
    Some(resp)
}

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    let result = match path {
        "/enrichment/info" => info(state, caller, args).await.map(Some),
        "/enrichment/list" => list(state, caller, args).await.map(Some),
        "/enrichment/upsert" => upsert(state, caller, args).await.map(Some),
        "/enrichment/mapping/schema/create" => {
            schema_save(state, caller, args, true).await.map(Some)
        }
        "/enrichment/mapping/schema/update" => {
            schema_save(state, caller, args, false).await.map(Some)
        }
        "/enrichment/mapping/schema/delete" => {
            schema_delete(state, caller, args).await.map(|_| None)
        }
        "/enrichment/mapping/schema/info" => schema_info(state, caller, args).await.map(Some),
        "/enrichment/mapping/schema/list" => schema_list(state, caller, args).await.map(Some),
        "/enrichment/mapping/data/upload" => upload(state, caller, args).await.map(Some),
        "/enrichment/mapping/data/upsert" => row_upsert(state, caller, args).await.map(|_| None),
        "/enrichment/mapping/data/delete" => row_delete(state, caller, args).await.map(|_| None),
        "/enrichment/mapping/data/list" => rows_list(state, caller, args).await.map(Some),
        DOWNLOAD_PATH => download(state, caller, args).await.map(Some),
        "/enrichment/mapping/api/create" => service_save(state, caller, args, true).await.map(Some),
        "/enrichment/mapping/api/update" => {
            service_save(state, caller, args, false).await.map(Some)
        }
        "/enrichment/mapping/api/delete" => service_delete(state, caller, args).await.map(|_| None),
        "/enrichment/mapping/api/info" => service_info(state, caller, args).await.map(Some),
        "/enrichment/mapping/api/list" => service_list(state, caller, args).await.map(Some),
        _ => return None,
    };
    Some(result)
}

fn store_err(e: klaxon_store::StoreError) -> ApiError {
    ApiError::internal(e.to_string())
}

fn service_refusal(r: MappingRefusal, service_id: &str) -> ApiError {
    match r {
        MappingRefusal::InUse(ids) => ApiError::new(
            ErrorCode::ReferenceExist,
            format!(
                "mapping service {service_id} is used by the enrichment rules of integration(s) {}",
                ids.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        r => refusal(r, service_id),
    }
}

fn refusal(r: MappingRefusal, schema_id: &str) -> ApiError {
    match r {
        MappingRefusal::ServiceNotFound => ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("mapping service {schema_id} not found"),
        ),

        MappingRefusal::SchemaNotFound => ApiError::new(
            ErrorCode::ResourceNotFound,
            format!("mapping schema {schema_id} not found"),
        ),
        MappingRefusal::KeysFixed => ApiError::invalid(
            "source_label_keys/result_label_keys: the keys of a schema that holds rows cannot change; delete its rows first",
        ),
        MappingRefusal::InUse(ids) => ApiError::new(
            ErrorCode::ReferenceExist,
            format!(
                "mapping schema {schema_id} is used by the enrichment rules of integration(s) {}",
                ids.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        MappingRefusal::Full => ApiError::invalid(format!(
            "a mapping table holds at most {} rows",
            klaxon_core::enrichment::MAX_ROWS
        )),
        MappingRefusal::RowNotFound => ApiError::new(
            ErrorCode::ResourceNotFound,
            "no row has these source values",
        ),
    }
}

// ---- rules ----

fn is_alert(i: &Integration) -> bool {
    wire_type(&i.integration_type).1 == "alert"
}

/// ING-060 / Q-09: an alert integration of the account, dedicated or shared.
async fn alert_integration(
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<Integration, ApiError> {
    let i = state
        .store
        .integration(caller.account_id, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("integration {id} not found"),
            )
        })?;
    if !is_alert(&i) {
        return Err(ApiError::invalid(format!(
            "integration_id: integration {id} is a change integration (enrichment applies to alert integrations)"
        )));
    }
    Ok(i)
}

fn record_json(r: &EnrichmentRecord) -> Value {
    json!({
        "integration_id": r.integration_id,
        "rules": r.rules,
        "updated_by": r.updated_by,
        "updated_at": secs(r.updated_at),
    })
}

async fn info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    alert_integration(state, caller, id).await?;
    let record = state
        .store
        .enrichment_rules(caller.account_id, id)
        .await
        .map_err(store_err)?;
    Ok(record_json(&record))
}

/// `integration_ids` (absent or empty: every alert integration of the account that has rules).
async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let mut ids = args.i64_list("integration_ids")?;
    if ids.is_empty() {
        let mut p = 1;
        loop {
            let filter = IntegrationFilter {
                p,
                limit: 100,
                ..IntegrationFilter::default()
            };
            let page = state
                .store
                .list_integrations(caller.account_id, &filter)
                .await
                .map_err(store_err)?;
            ids.extend(
                page.items
                    .iter()
                    .filter(|i| is_alert(i))
                    .map(|i| i.integration_id),
            );
            if !page.has_next_page {
                break;
            }
            p += 1;
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let records = state
        .store
        .enrichment_rule_lists(caller.account_id, &ids)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = records.iter().map(record_json).collect();
    Ok(json!({
        "items": items,
        "total": items.len(),
        "has_next_page": false,
    }))
}

/// The wire `rules[]`, each element parsed on its own so an error names its position.
fn parse_rules(args: &Args) -> Result<Vec<EnrichmentRule>, ApiError> {
    let raw = match args.raw().get("rules") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::invalid("rules must be an array of rules")),
    };
    raw.iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value::<EnrichmentRule>(v.clone())
                .map_err(|e| ApiError::invalid(format!("rules[{i}]: {e}")))
        })
        .collect()
}

async fn upsert(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = args.required_id("integration_id")?;
    alert_integration(state, caller, id).await?;
    let rules = parse_rules(args)?;
    let named: Vec<String> = rules
        .iter()
        .filter(|r| r.source == "table")
        .map(|r| r.schema_id.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let existing = state
        .store
        .mapping_schemas_by_id(caller.account_id, &named)
        .await
        .map_err(store_err)?;
    let called: Vec<String> = rules
        .iter()
        .filter(|r| r.source == "api")
        .map(|r| r.service_id.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let services = state
        .store
        .mapping_services_by_id(caller.account_id, &called)
        .await
        .map_err(store_err)?;
    RuleSet::compile_with(
        &rules,
        |schema| existing.contains_key(schema),
        |service| services.contains_key(service),
    )?;
    let record = state
        .store
        .save_enrichment_rules(
            caller.account_id,
            id,
            rules,
            caller.member_id,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?;
    Ok(record_json(&record))
}

// ---- schemas ----

fn required_schema_id(args: &Args) -> Result<String, ApiError> {
    args.str("schema_id")?
        .ok_or_else(|| ApiError::invalid("schema_id is required"))
}

fn schema_json(r: &SchemaRecord) -> Value {
    let s = &r.schema;
    json!({
        "schema_id": s.schema_id,
        "name": s.name,
        "description": s.description,
        "team_id": s.team_id,
        "source_label_keys": s.source_label_keys,
        "result_label_keys": s.result_label_keys,
        "row_count": r.row_count,
        "creator_id": r.creator_id,
        "created_at": secs(r.created_at),
        "updated_at": secs(r.updated_at),
    })
}

async fn load_schema(
    state: &AppState,
    caller: &Caller,
    schema_id: &str,
) -> Result<SchemaRecord, ApiError> {
    state
        .store
        .mapping_schema(caller.account_id, schema_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| refusal(MappingRefusal::SchemaNotFound, schema_id))
}

/// Create: every field from the body. Update: absent fields keep their value (Go clients
/// leave zero values out).
async fn schema_save(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    create: bool,
) -> Result<Value, ApiError> {
    let base = if create {
        MappingSchema {
            schema_id: String::new(),
            account_id: caller.account_id,
            name: String::new(),
            description: String::new(),
            team_id: 0,
            source_label_keys: Vec::new(),
            result_label_keys: Vec::new(),
        }
    } else {
        let id = required_schema_id(args)?;
        load_schema(state, caller, &id).await?.schema
    };
    let has = |f: &str| args.raw().get(f).is_some_and(|v| !v.is_null());
    let schema = MappingSchema {
        name: args.str("name")?.unwrap_or(base.name.clone()),
        description: if has("description") {
            args.str("description")?.unwrap_or_default()
        } else {
            base.description.clone()
        },
        team_id: args.i64("team_id")?.unwrap_or(base.team_id),
        source_label_keys: if has("source_label_keys") {
            args.str_list("source_label_keys")?
        } else {
            base.source_label_keys.clone()
        },
        result_label_keys: if has("result_label_keys") {
            args.str_list("result_label_keys")?
        } else {
            base.result_label_keys.clone()
        },
        ..base
    };
    let schema = validate_schema(schema).map_err(|e| ApiError::invalid(e.0))?;
    if schema.team_id < 0 {
        return Err(ApiError::invalid("team_id must not be negative"));
    }
    let id = schema.schema_id.clone();
    let saved = state
        .store
        .save_mapping_schema(schema, caller.member_id, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(|r| refusal(r, &id))?;
    Ok(schema_json(&saved))
}

async fn schema_delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = required_schema_id(args)?;
    state
        .store
        .delete_mapping_schema(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .map_err(|r| refusal(r, &id))
}

async fn schema_info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = required_schema_id(args)?;
    Ok(schema_json(&load_schema(state, caller, &id).await?))
}

fn paging(args: &Args, default_limit: i64) -> Result<(i64, i64), ApiError> {
    let p = args.i64("p")?.filter(|p| *p > 0).unwrap_or(1);
    let limit = args
        .i64("limit")?
        .filter(|l| *l > 0)
        .unwrap_or(default_limit)
        .min(ROWS_MAX_LIMIT);
    Ok((p, limit))
}

async fn schema_list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let (p, limit) = paging(args, 20)?;
    let page = state
        .store
        .mapping_schemas(caller.account_id, p, limit)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = page.items.iter().map(schema_json).collect();
    Ok(super::teams::page_json(&page, items, p, limit))
}

// ---- rows ----

/// `{key: value}` with every key of `keys`: the values in key order. `require` refuses empty
/// values (source values); other members are refused too, so a typo is not dropped silently.
fn values_of(
    field: &str,
    obj: &Map<String, Value>,
    keys: &[String],
    others: &[String],
    require: bool,
) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let v = match obj.get(k) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => return Err(ApiError::invalid(format!("{field}.{k} must be a string"))),
        };
        if require && v.is_empty() {
            return Err(ApiError::invalid(format!("{field}.{k} is required")));
        }
        if v.chars().count() > klaxon_core::enrichment::MAX_VALUE_CHARS {
            return Err(ApiError::invalid(format!(
                "{field}.{k}: at most {} characters",
                klaxon_core::enrichment::MAX_VALUE_CHARS
            )));
        }
        out.push(v);
    }
    if let Some(extra) = obj
        .keys()
        .find(|k| !keys.contains(k) && !others.contains(k))
    {
        return Err(ApiError::invalid(format!(
            "{field}.{extra}: not a key of the schema"
        )));
    }
    Ok(out)
}

fn object<'a>(args: &'a Args, field: &str) -> Result<&'a Map<String, Value>, ApiError> {
    match args.raw().get(field) {
        Some(Value::Object(o)) => Ok(o),
        None | Some(Value::Null) => Err(ApiError::invalid(format!("{field} is required"))),
        Some(_) => Err(ApiError::invalid(format!(
            "{field} must be an object of label name → value"
        ))),
    }
}

fn row_json(s: &MappingSchema, r: &MappingRow) -> Value {
    let mut m = Map::new();
    for (k, v) in s.source_label_keys.iter().zip(&r.source_values) {
        m.insert(k.clone(), json!(v));
    }
    for (k, v) in s.result_label_keys.iter().zip(&r.result_values) {
        m.insert(k.clone(), json!(v));
    }
    Value::Object(m)
}

/// ING-071: `csv` replaces every row, or nothing when the file is refused.
async fn upload(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = required_schema_id(args)?;
    let text = match args.raw().get("csv") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => return Err(ApiError::invalid("csv is required")),
        Some(_) => return Err(ApiError::invalid("csv must be a string (the file's text)")),
    };
    let schema = load_schema(state, caller, &id).await?.schema;
    let parsed =
        TableUpload::parse(&schema, &text).map_err(|e| ApiError::invalid(e.to_string()))?;
    state
        .store
        .replace_mapping_rows(caller.account_id, &id, &parsed, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(|r| refusal(r, &id))?;
    Ok(json!({
        "row_count": parsed.rows.len(),
        "skipped": parsed.skipped,
    }))
}

/// ING-071: `row` `{label: value}` names every source key (non-empty) and any result keys; a
/// row with the same source values is replaced.
async fn row_upsert(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = required_schema_id(args)?;
    let schema = load_schema(state, caller, &id).await?.schema;
    let obj = object(args, "row")?;
    let source = values_of(
        "row",
        obj,
        &schema.source_label_keys,
        &schema.result_label_keys,
        true,
    )?;
    let result = values_of(
        "row",
        obj,
        &schema.result_label_keys,
        &schema.source_label_keys,
        false,
    )?;
    let row = MappingRow {
        source_values: source,
        result_values: result,
    };
    state
        .store
        .upsert_mapping_row(caller.account_id, &id, &row, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(|r| refusal(r, &id))
}

/// `source` `{label: value}` names the row by its source values.
async fn row_delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = required_schema_id(args)?;
    let schema = load_schema(state, caller, &id).await?.schema;
    let obj = object(args, "source")?;
    let source = values_of("source", obj, &schema.source_label_keys, &[], true)?;
    state
        .store
        .delete_mapping_row(caller.account_id, &id, &source, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(|r| refusal(r, &id))
}

/// Rows ordered by source values; `search` keeps rows one of whose source values contains it.
async fn rows_list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = required_schema_id(args)?;
    let schema = load_schema(state, caller, &id).await?.schema;
    let (p, limit) = paging(args, 20)?;
    let search = args.str("search")?.unwrap_or_default();
    let page = state
        .store
        .mapping_rows(caller.account_id, &id, &search, p, limit)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = page.items.iter().map(|r| row_json(&schema, r)).collect();
    Ok(super::teams::page_json(&page, items, p, limit))
}

/// ING-071: the table in the upload format (header = source keys, then result keys).
async fn download(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = required_schema_id(args)?;
    let schema = load_schema(state, caller, &id).await?.schema;
    let page = state
        .store
        .mapping_rows(caller.account_id, &id, "", 1, 0)
        .await
        .map_err(store_err)?;
    let header: Vec<String> = schema
        .source_label_keys
        .iter()
        .chain(&schema.result_label_keys)
        .cloned()
        .collect();
    let records: Vec<Vec<String>> = std::iter::once(header)
        .chain(page.items.into_iter().map(|r| {
            r.source_values
                .into_iter()
                .chain(r.result_values)
                .collect::<Vec<String>>()
        }))
        .collect();
    let csv = write_csv(records.iter().map(Vec::as_slice));
    let safe: String = schema
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(json!({ "csv": csv, "file_name": format!("{safe}.csv") }))
}

// ---- mapping services (ING-072…075) ----

/// `api_id` (the reference's name), or `service_id` as enrichment rules call it.
fn required_service_id(args: &Args) -> Result<String, ApiError> {
    match args.str("api_id")? {
        Some(id) => Ok(id),
        None => args
            .str("service_id")?
            .ok_or_else(|| ApiError::invalid("api_id is required")),
    }
}

fn service_json(r: &ServiceRecord) -> Value {
    let s = &r.service;
    json!({
        "api_id": s.service_id,
        "api_name": s.name,
        "description": s.description,
        "team_id": s.team_id,
        "url": s.url,
        "headers": s.headers,
        "timeout": s.timeout,
        "retry_count": s.retry_count,
        "insecure_skip_verify": s.insecure_skip_verify,
        "status": if s.enabled { "enabled" } else { "disabled" },
        "creator_id": r.creator_id,
        "created_at": secs(r.created_at),
        "updated_at": secs(r.updated_at),
    })
}

async fn load_service(
    state: &AppState,
    caller: &Caller,
    service_id: &str,
) -> Result<ServiceRecord, ApiError> {
    state
        .store
        .mapping_service(caller.account_id, service_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| service_refusal(MappingRefusal::ServiceNotFound, service_id))
}

/// `headers`: an object of strings.
fn headers_arg(args: &Args) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    match args.raw().get("headers") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => {
            let mut out = BTreeMap::new();
            for (k, v) in m {
                let Some(v) = v.as_str() else {
                    return Err(ApiError::invalid(format!("headers.{k} must be a string")));
                };
                out.insert(k.clone(), v.to_string());
            }
            Ok(Some(out))
        }
        Some(_) => Err(ApiError::invalid(
            "headers must be an object of header names and values",
        )),
    }
}

/// A non-negative integer field.
fn count_arg(args: &Args, name: &str) -> Result<Option<u64>, ApiError> {
    match args.i64(name)? {
        None => Ok(None),
        Some(n) => u64::try_from(n)
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("{name} must not be negative"))),
    }
}

/// Create: every field from the body (timeout and retry_count default to 2 s and 1). Update:
/// absent fields keep their value. ING-074 checks run on the result; warnings are returned
/// with the saved service.
async fn service_save(
    state: &AppState,
    caller: &Caller,
    args: &Args,
    create: bool,
) -> Result<Value, ApiError> {
    let base = if create {
        MappingService {
            service_id: String::new(),
            account_id: caller.account_id,
            name: String::new(),
            description: String::new(),
            team_id: 0,
            url: String::new(),
            headers: BTreeMap::new(),
            timeout: DEFAULT_TIMEOUT_SECS,
            retry_count: DEFAULT_RETRY_COUNT,
            insecure_skip_verify: false,
            enabled: true,
        }
    } else {
        let id = required_service_id(args)?;
        load_service(state, caller, &id).await?.service
    };
    let has = |f: &str| args.raw().get(f).is_some_and(|v| !v.is_null());
    let name = match args.str("api_name")? {
        Some(n) => Some(n),
        None => args.str("name")?,
    };
    let enabled = match args.str("status")?.as_deref() {
        None => base.enabled,
        Some("enabled") => true,
        Some("disabled") => false,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "status: {other:?} is not enabled or disabled"
            )));
        }
    };
    let retry_count = match count_arg(args, "retry_count")? {
        None => base.retry_count,
        Some(n) => u32::try_from(n).unwrap_or(u32::MAX),
    };
    let service = MappingService {
        name: name.unwrap_or(base.name.clone()),
        description: if has("description") {
            args.str("description")?.unwrap_or_default()
        } else {
            base.description.clone()
        },
        team_id: args.i64("team_id")?.unwrap_or(base.team_id),
        url: args.str("url")?.unwrap_or(base.url.clone()),
        headers: headers_arg(args)?.unwrap_or(base.headers.clone()),
        timeout: count_arg(args, "timeout")?.unwrap_or(base.timeout),
        retry_count,
        insecure_skip_verify: args
            .bool("insecure_skip_verify")?
            .unwrap_or(base.insecure_skip_verify),
        enabled,
        ..base
    };
    let checked = validate_service(service).map_err(|e| ApiError::invalid(e.0))?;
    let id = checked.service.service_id.clone();
    let saved = state
        .store
        .save_mapping_service(checked.service, caller.member_id, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(|r| service_refusal(r, &id))?;
    let mut out = service_json(&saved);
    if let Some(obj) = out.as_object_mut() {
        obj.insert("warnings".into(), json!(checked.warnings));
    }
    Ok(out)
}

async fn service_delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let id = required_service_id(args)?;
    state
        .store
        .delete_mapping_service(caller.account_id, &id)
        .await
        .map_err(store_err)?
        .map_err(|r| service_refusal(r, &id))
}

async fn service_info(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let id = required_service_id(args)?;
    Ok(service_json(&load_service(state, caller, &id).await?))
}

async fn service_list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let (p, limit) = paging(args, 20)?;
    let page = state
        .store
        .mapping_services(caller.account_id, p, limit)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = page.items.iter().map(service_json).collect();
    Ok(super::teams::page_json(&page, items, p, limit))
}
