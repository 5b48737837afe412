//! `/incident/bulk-delete` (a Klaxon route; service-agreement.md SVC-183, SVC-184;
//! docs/data-retention.md): an account administrator deletes the incidents that started in a
//! time range, with everything that belongs to them, and the alerts of that range that never
//! joined an incident. `dry_run` answers the counts and deletes nothing; more than 1,000
//! objects need `confirm_phrase`. The audit hook records the call with the counts of the
//! answer (`openapi::perform`).

use klaxon_core::error::ApiError;
use klaxon_core::retention::{self, CONFIRM_ABOVE, MAX_BULK_OBJECTS};
use klaxon_store::{BulkDeletion, DeletionCounts};
use serde_json::{Value, json};

use super::{Args, Caller};
use crate::state::AppState;

pub const PATHS: &[&str] = &["/incident/bulk-delete"];

pub async fn dispatch(
    state: &AppState,
    caller: &Caller,
    path: &str,
    args: &Args,
) -> Option<Result<Option<Value>, ApiError>> {
    match path {
        "/incident/bulk-delete" => Some(bulk_delete(state, caller, args).await.map(Some)),
        _ => None,
    }
}

fn answer(dry_run: bool, counts: &DeletionCounts) -> Value {
    let objects = counts.objects();
    json!({
        "dry_run": dry_run,
        "deleted": !dry_run,
        "objects": objects,
        "counts": counts,
        "irreversible": true,
        "confirm_required": objects > CONFIRM_ABOVE,
        "confirm_phrase": if objects > CONFIRM_ABOVE {
            retention::confirm_phrase(objects)
        } else {
            String::new()
        },
    })
}

async fn bulk_delete(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let (start, end) = retention::bulk_range(args.i64("start_time")?, args.i64("end_time")?)?;
    let dry_run = args.bool("dry_run")?.unwrap_or(false);
    let phrase = args.str("confirm_phrase")?;
    // The phrase is checked against the counts of this very transaction, so the number the
    // administrator confirmed is the number deleted.
    let mut refusal = None;
    let outcome = state
        .store
        .bulk_delete_incidents(caller.account_id, start, end, MAX_BULK_OBJECTS, |counts| {
            if dry_run {
                return false;
            }
            match retention::confirmed(counts.objects(), phrase.as_deref()) {
                Ok(()) => true,
                Err(e) => {
                    refusal = Some(e);
                    false
                }
            }
        })
        .await
        .map_err(|e| ApiError::internal(format!("cannot delete incidents: {e}")))?;
    match outcome {
        BulkDeletion::TooMany { objects } => Err(ApiError::invalid(format!(
            "start_time, end_time: the range holds {objects} incidents and alerts, more than \
             the {MAX_BULK_OBJECTS} one deletion may remove; narrow the range (nothing was deleted)"
        ))),
        BulkDeletion::RolledBack(counts) => match refusal {
            Some(e) => Err(e),
            None => Ok(answer(true, &counts)),
        },
        BulkDeletion::Deleted(counts) => {
            tracing::info!(
                account_id = caller.account_id,
                member_id = caller.member_id,
                incidents = counts.incidents,
                alerts = counts.alerts,
                "bulk deletion of incidents"
            );
            Ok(answer(false, &counts))
        }
    }
}
