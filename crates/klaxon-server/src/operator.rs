//! The operator API (service-agreement.md §15; docs/saas.md "Operator access"): the
//! operator's staff, authenticated by a staff token (`klaxon admin staff add`), look at a
//! tenant. Mounted under `/operator/` on SaaS nodes only; a self-hosted node has no staff
//! and answers these paths as unknown routes (SVC-4xx). Kept apart from the tenant Open API:
//! its own authentication, its own routes, and not in the tenant OpenAPI document.
//!
//! Default deny (SVC-220): without a grant staff see the SVC-223 metadata only (entity,
//! service state, billing book, usage counters) and the grants they may select. Tenant data
//! needs the `grant_id` of a grant the tenant gave them; `klaxon_saas::grant::check` decides,
//! reading the grant from the database on every call, so a revocation applies to the next
//! call (SVC-221's 60 s) and expiry needs no job. Reads reuse the tenant Open API handlers
//! (`openapi::perform`) acting as the owner, so staff see exactly what the tenant would.
//!
//! Every call is appended to `saas_audit`; every read of tenant data is also appended to the
//! tenant's own audit log (SVC-222: object type and ids, action, time, staff id, grant id).

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Extensions, HeaderMap, Method, Uri, header};
use axum::response::Response;
use axum::routing::any;
use jiff::Timestamp;
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use klaxon_core::permissions::Actor;
use klaxon_saas::grant::{self, Need, Staff};
use klaxon_store::{StaffAccess, StaffRecord};
use serde_json::{Value, json};

use crate::envelope::{failure, success};
use crate::openapi::{Args, Caller};
use crate::state::{AppState, new_request_id};

/// Largest operator request body: they carry ids and filters only.
const MAX_BODY: usize = 64 * 1024;

/// Every operator path that reads (the changes are `operator_tenant::PATHS`).
pub const PATHS: &[&str] = &[
    "/operator/tenant/info",
    "/operator/grant/list",
    "/operator/channel/list",
    "/operator/channel/info",
    "/operator/incident/list",
    "/operator/incident/info",
];

pub fn routes() -> Router<AppState> {
    PATHS
        .iter()
        .chain(crate::operator_tenant::PATHS)
        .fold(Router::new(), |r, path| r.route(path, any(serve)))
}

async fn serve(
    State(state): State<AppState>,
    uri: Uri,
    method: Method,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> Response {
    let request_id = new_request_id();
    let ip = crate::openapi::client_ip(&extensions);
    match call(
        &state,
        uri.path(),
        &method,
        &headers,
        body,
        &request_id,
        &ip,
    )
    .await
    {
        Ok(data) => success(&request_id, Some(data)),
        Err(e) => failure(&request_id, Surface::OpenApi, &e),
    }
}

fn store_err(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("operator api: {e}"))
}

fn denied(reason: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::AccessDenied, reason)
}

/// The staff member of a `Authorization: Bearer` staff token; 401 otherwise.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<StaffRecord, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "a staff token is required (Authorization: Bearer …)",
        ));
    }
    state
        .store
        .staff_by_token(token)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "the staff token is invalid"))
}

async fn call(
    state: &AppState,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
    ip: &str,
) -> Result<Value, ApiError> {
    if method != Method::POST {
        return Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("method {method} is not allowed, use POST"),
        ));
    }
    let staff = authenticate(state, headers).await?;
    let args = crate::openapi::read_body(headers, body, MAX_BODY).await?;
    let account_id = args.required_id("account_id")?;
    let ctx = Ctx {
        state,
        staff: &staff,
        account_id,
        args: &args,
        request_id,
        ip,
    };
    let result = ctx.run(path).await;
    // Every call is an operator record, refusals included, with the outcome.
    let outcome = match &result {
        Ok(_) => "ok".to_string(),
        Err(e) => format!("{}: {}", e.code.as_str(), e.message),
    };
    let detail = json!({
        "path": path,
        "grant_id": args.i64("grant_id").ok().flatten().unwrap_or(0),
        "request_id": request_id,
        "result": outcome,
    })
    .to_string();
    if let Err(e) = state
        .store
        .record_operator_call(account_id, state.clock.now(), staff.staff_id, path, &detail)
        .await
    {
        tracing::error!(error = %e, path, "cannot append the operator call to saas_audit");
    }
    result
}

struct Ctx<'a> {
    state: &'a AppState,
    staff: &'a StaffRecord,
    account_id: i64,
    args: &'a Args,
    request_id: &'a str,
    ip: &'a str,
}

impl Ctx<'_> {
    async fn run(&self, path: &str) -> Result<Value, ApiError> {
        if self
            .state
            .store
            .account(self.account_id)
            .await
            .map_err(store_err)?
            .is_none()
        {
            return Err(ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("account_id: no account {}", self.account_id),
            ));
        }
        match path {
            "/operator/tenant/info" => self.tenant_info().await,
            "/operator/grant/list" => self.grant_list().await,
            "/operator/channel/list" => self.channel_list().await,
            "/operator/channel/info" => self.channel_info().await,
            "/operator/incident/list" => self.incident_list().await,
            "/operator/incident/info" => self.incident_info().await,
            // Terminations and packs (SVC-072, SVC-231 … SVC-235): changes, not reads.
            other => crate::operator_tenant::dispatch(
                self.state,
                other,
                self.account_id,
                self.args,
                &klaxon_store::staff_actor(self.staff.staff_id),
            )
            .await
            .unwrap_or_else(|| Err(ApiError::new(ErrorCode::RouteNotFound, "no such route"))),
        }
    }

    fn now(&self) -> Result<Timestamp, ApiError> {
        Timestamp::from_millisecond(self.state.clock.now())
            .map_err(|e| ApiError::internal(format!("clock: {e}")))
    }

    /// SVC-223: what staff see without a grant. No UBD: the entity and contact, the
    /// service state, the billing book's totals and content-free counters.
    async fn tenant_info(&self) -> Result<Value, ApiError> {
        let saas = self
            .state
            .saas
            .as_deref()
            .ok_or_else(|| ApiError::internal("the operator API runs in SaaS mode only"))?;
        let account = self
            .state
            .store
            .account(self.account_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "account_id: unknown"))?;
        let billing = self
            .state
            .store
            .saas_tenant(&saas.settings, self.account_id, self.state.clock.now())
            .await
            .map_err(store_err)?;
        let book = match &billing {
            Some(b) => {
                let l = b.book.ledger();
                let c = b.currency;
                json!({
                    "profile": match b.profile {
                        klaxon_saas::mode::BillingProfile::Commercial => "commercial",
                        klaxon_saas::mode::BillingProfile::Exempt => "exempt",
                    },
                    "state": b.state.to_string(),
                    "since": b.since.as_second(),
                    "purge_at": b.purge_at.map_or(0, |p| p.as_second()),
                    "edition": b.edition,
                    "region": b.region,
                    "currency": c.code,
                    "cash": c.format(l.cash()),
                    "bonus": c.format(l.bonus_total()),
                    "payable_total": c.format(b.payable_total),
                    "ledger_entries": l.entries().len(),
                })
            }
            None => json!({"state": "active", "ledger_entries": 0}),
        };
        let counters: serde_json::Map<String, Value> = self
            .state
            .store
            .usage_counters(self.account_id)
            .await
            .map_err(store_err)?
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        Ok(json!({
            "account_id": account.account_id,
            "account_name": account.account_name,
            "contact_email": account.email,
            "billing": book,
            "usage": counters,
            "grants": self.usable_grants().await?,
        }))
    }

    /// The grants naming this staff member that are active or yet to start: the ones the
    /// staff member may select (SVC-221).
    async fn usable_grants(&self) -> Result<Vec<Value>, ApiError> {
        let now = self.now()?;
        let grants = self
            .state
            .store
            .grants(self.account_id)
            .await
            .map_err(store_err)?;
        Ok(grants
            .iter()
            .filter(|g| g.grant.names(self.staff.staff_id, self.staff.role))
            .filter(|g| {
                matches!(
                    g.grant.status(now),
                    grant::Status::Active | grant::Status::Scheduled
                )
            })
            .map(|g| crate::openapi::render_grant(g, now))
            .collect())
    }

    async fn grant_list(&self) -> Result<Value, ApiError> {
        let items = self.usable_grants().await?;
        Ok(json!({"items": items, "total": items.len()}))
    }

    /// The selected grant, checked for `need` on `channel` (SVC-220/221). Read from the
    /// database on every call: revocation is effective on the next call.
    async fn grant_for(&self, need: &Need, channel: Option<i64>) -> Result<grant::Grant, ApiError> {
        let grant_id = self.args.i64("grant_id")?.unwrap_or(0);
        if grant_id <= 0 {
            return Err(denied(
                "no grant selected: tenant data needs the grant_id of an access grant from the tenant (SVC-220)",
            ));
        }
        let g = self
            .state
            .store
            .grant(self.account_id, grant_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| denied(format!("grant {grant_id} is not a grant of this tenant")))?;
        let staff = Staff {
            staff_id: self.staff.staff_id,
            role: self.staff.role,
        };
        grant::check(&g.grant, staff, self.account_id, need, channel, self.now()?)
            .map_err(denied)?;
        Ok(g.grant)
    }

    /// The tenant's own Open API read, acting as its owner. Only the read paths of this
    /// module come here, so nothing the tenant owns is changed.
    async fn read(&self, path: &str, args: Args) -> Result<Value, ApiError> {
        let owner = self
            .state
            .store
            .owner_member_id(self.account_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| ApiError::internal("the tenant has no owner"))?;
        let caller = Caller {
            account_id: self.account_id,
            member_id: owner,
            // Like an account-level key: acts as the owner and takes no licence.
            account_key: true,
            actor: Actor::owner(owner),
            origin: crate::audit::Origin {
                source: "staff",
                request_id: self.request_id.to_string(),
                ip: self.ip.to_string(),
                app_key_id: 0,
                user_agent: String::new(),
            },
        };
        Ok(crate::openapi::perform(self.state, &caller, path, &args)
            .await?
            .unwrap_or(Value::Null))
    }

    /// SVC-222: the read goes into the tenant's audit log and the operator records.
    async fn log(&self, grant_id: i64, operation: &str, object_type: &str, ids: Vec<String>) {
        let mut object_ids = ids.join(",");
        if object_ids.len() > 4000 {
            let mut end = 4000;
            while !object_ids.is_char_boundary(end) {
                end -= 1;
            }
            object_ids.truncate(end);
        }
        let access = StaffAccess {
            account_id: self.account_id,
            at: self.state.clock.now(),
            staff_id: self.staff.staff_id,
            grant_id,
            lawful_request_id: 0,
            operation: operation.to_string(),
            object_type: object_type.to_string(),
            object_ids,
            request_id: self.request_id.to_string(),
            ip: self.ip.to_string(),
            is_write: false,
        };
        if let Err(e) = self.state.store.record_staff_access(&access).await {
            tracing::error!(error = %e, operation, "cannot append the staff access record");
        }
    }

    /// The channel filter of a list: the staff member's `channel_ids` (each inside the
    /// grant's filter), or the grant's filter itself.
    fn channel_filter(&self, g: &grant::Grant) -> Result<Vec<i64>, ApiError> {
        let asked = self.args.i64_list("channel_ids")?;
        let allowed = &g.terms.channel_ids;
        if allowed.is_empty() {
            return Ok(asked);
        }
        if let Some(outside) = asked.iter().find(|c| !allowed.contains(c)) {
            return Err(denied(format!(
                "grant {} does not cover channel {outside}",
                g.grant_id
            )));
        }
        Ok(if asked.is_empty() {
            allowed.clone()
        } else {
            asked
        })
    }

    /// The request as the tenant handler takes it, without the operator's own fields.
    fn tenant_args(&self, channel_ids: Option<Vec<i64>>) -> Args {
        let mut map = self.args.raw().clone();
        map.remove("account_id");
        map.remove("grant_id");
        if let Some(ids) = channel_ids {
            if ids.is_empty() {
                map.remove("channel_ids");
            } else {
                map.insert("channel_ids".into(), json!(ids));
            }
        }
        Args::new(map)
    }

    fn ids_of(data: &Value, key: &str) -> Vec<String> {
        data["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| match &i[key] {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn channel_list(&self) -> Result<Value, ApiError> {
        let g = self.grant_for(&Need::ReadConfig, None).await?;
        let filter = self.channel_filter(&g)?;
        let data = self
            .read("/channel/list", self.tenant_args(Some(filter)))
            .await?;
        self.log(
            g.grant_id,
            "channel:read:list",
            "channel",
            Self::ids_of(&data, "channel_id"),
        )
        .await;
        Ok(data)
    }

    async fn channel_info(&self) -> Result<Value, ApiError> {
        let id = self.args.required_id("channel_id")?;
        let g = self.grant_for(&Need::ReadConfig, Some(id)).await?;
        let data = self.read("/channel/info", self.tenant_args(None)).await?;
        self.log(
            g.grant_id,
            "channel:read:info",
            "channel",
            vec![id.to_string()],
        )
        .await;
        Ok(data)
    }

    async fn incident_list(&self) -> Result<Value, ApiError> {
        let g = self.grant_for(&Need::ReadIncidents, None).await?;
        let filter = self.channel_filter(&g)?;
        let data = self
            .read("/incident/list", self.tenant_args(Some(filter)))
            .await?;
        self.log(
            g.grant_id,
            "incident:read:list",
            "incident",
            Self::ids_of(&data, "incident_id"),
        )
        .await;
        Ok(data)
    }

    async fn incident_info(&self) -> Result<Value, ApiError> {
        let g = self.grant_for(&Need::ReadIncidents, None).await?;
        let data = self.read("/incident/info", self.tenant_args(None)).await?;
        // The channel is known only once the incident is loaded: an incident outside the
        // grant's channels is refused and its data is not returned.
        let channel = data["channel_id"].as_i64().unwrap_or(0);
        let staff = Staff {
            staff_id: self.staff.staff_id,
            role: self.staff.role,
        };
        grant::check(
            &g,
            staff,
            self.account_id,
            &Need::ReadIncidents,
            Some(channel),
            self.now()?,
        )
        .map_err(denied)?;
        let id = data["incident_id"].as_str().unwrap_or_default().to_string();
        self.log(g.grant_id, "incident:read:info", "incident", vec![id])
            .await;
        Ok(data)
    }
}
