//! The swap helper of a schedule's page (RSP-235). There is no swap object: a swap of A and B
//! is B over A's window and A over B's window, as overrides. Because an override replaces
//! every layer while it runs (RSP-212), taking A out of a window in which others are on call
//! too needs one override per person who stays; the helper reads who is on call from the
//! final schedule (`/schedule/info`) and writes all of those overrides in one
//! `/schedule/update`, so the API validates and stores them like any other override.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use jiff::tz::TimeZone;
use klaxon_core::error::{ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::FieldErrors;
use super::incidents::{form_pairs, form_value, j, now_secs, page_headers};
use super::schedule_edit::{local_secs, override_people, schedule_id};
use super::schedule_views::{local_input, segment_people, zone};
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/schedules/{id}/swap", post(swap))
}

/// What the swap form shows: A gives up the first window, B the second (optional: empty for
/// B only to take over A's window).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(super) struct SwapForm {
    pub a: String,
    pub a_start: String,
    pub a_end: String,
    pub b: String,
    pub b_start: String,
    pub b_end: String,
}

/// One override to add: `(start, end, person)`.
pub(super) type Cover = (i64, i64, i64);

/// A computed final-schedule segment: its span and who is on call.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Piece {
    pub start: i64,
    pub end: i64,
    pub people: Vec<i64>,
}

pub(super) fn pieces(final_segments: &Value) -> Vec<Piece> {
    let mut out: Vec<Piece> = final_segments
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some(Piece {
                start: s["start"].as_i64()?,
                end: s["end"].as_i64()?,
                people: segment_people(s),
            })
        })
        .collect();
    out.sort_by_key(|p| p.start);
    out
}

/// Why a window cannot be swapped, said for its person.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum SwapRefusal {
    /// `out` is not on call over all of the window (from this instant on).
    NotOnCall(i64),
    /// `out` is on call there through an override, which no added override can take away.
    ByOverride(i64),
}

/// RSP-235 for one window: the overrides that put `inn` in place of `out` over
/// `[start, end)` and keep everyone else who is on call there (RSP-212: the override persons
/// together are the on-call, the layers are ignored). `out` must be on call throughout, and
/// not through an existing override (`overrides` as `(start, end, person)`), because that
/// override would still put them on call. Consecutive pieces of one person become one
/// override.
pub(super) fn replace(
    pieces: &[Piece],
    overrides: &[Cover],
    start: i64,
    end: i64,
    out: i64,
    inn: i64,
) -> Result<Vec<Cover>, SwapRefusal> {
    if let Some(o) = overrides
        .iter()
        .find(|(s, e, p)| *p == out && *s < end && *e > start)
    {
        return Err(SwapRefusal::ByOverride(o.0.max(start)));
    }
    let mut covers: Vec<Cover> = Vec::new();
    let mut at = start;
    for p in pieces.iter().filter(|p| p.end > start && p.start < end) {
        let (s, e) = (p.start.max(start), p.end.min(end));
        if s > at {
            // Nobody is on call in the gap before this piece.
            return Err(SwapRefusal::NotOnCall(at));
        }
        if !p.people.contains(&out) {
            return Err(SwapRefusal::NotOnCall(s));
        }
        let mut people: Vec<i64> = p.people.iter().copied().filter(|x| *x != out).collect();
        if !people.contains(&inn) {
            people.push(inn);
        }
        for person in people {
            match covers
                .iter_mut()
                .find(|(_, ce, cp)| *cp == person && *ce == s)
            {
                Some(c) => c.1 = e,
                None => covers.push((s, e, person)),
            }
        }
        at = e;
    }
    if at < end {
        return Err(SwapRefusal::NotOnCall(at));
    }
    Ok(covers)
}

fn person(raw: &str, input: &str) -> Result<i64, FieldErrors> {
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| FieldErrors::one(input, format!("{input}: pick a person")))
}

fn instant(raw: &str, input: &str, tz: &TimeZone) -> Result<i64, FieldErrors> {
    local_secs(raw, tz).ok_or_else(|| {
        FieldErrors::one(
            input,
            format!("{input}: {:?} is not a date and time", raw.trim()),
        )
    })
}

impl SwapForm {
    fn parse(pairs: &[(String, String)]) -> SwapForm {
        let f = |k: &str| form_value(pairs, k).trim().to_string();
        SwapForm {
            a: f("sw_a"),
            a_start: f("sw_a_start"),
            a_end: f("sw_a_end"),
            b: f("sw_b"),
            b_start: f("sw_b_start"),
            b_end: f("sw_b_end"),
        }
    }

    /// The two windows read in `tz`: `(a, b, a_window, b_window)`.
    #[allow(clippy::type_complexity)]
    fn read(
        &self,
        tz: &TimeZone,
    ) -> Result<(i64, i64, (i64, i64), Option<(i64, i64)>), FieldErrors> {
        let a = person(&self.a, "sw_a")?;
        let b = person(&self.b, "sw_b")?;
        if a == b {
            return Err(FieldErrors::one(
                "sw_b",
                "sw_b: choose someone other than the person giving up the shift",
            ));
        }
        let window = |s: &str, e: &str, si: &str, ei: &str| {
            let start = instant(s, si, tz)?;
            let end = instant(e, ei, tz)?;
            if end <= start {
                return Err(FieldErrors::one(
                    ei,
                    format!("{ei}: must be after the start"),
                ));
            }
            Ok((start, end))
        };
        let wa = window(&self.a_start, &self.a_end, "sw_a_start", "sw_a_end")?;
        let wb = if self.b_start.is_empty() && self.b_end.is_empty() {
            None
        } else {
            let wb = window(&self.b_start, &self.b_end, "sw_b_start", "sw_b_end")?;
            if wb.0 < wa.1 && wa.0 < wb.1 {
                return Err(FieldErrors::one(
                    "sw_b_start",
                    "sw_b_start: the two shifts must not overlap",
                ));
            }
            Some(wb)
        };
        Ok((a, b, wa, wb))
    }
}

/// Every override the swap adds, or the refusal at the input it belongs to.
pub(super) fn plan(
    form: &SwapForm,
    stored: &Value,
    final_segments: &Value,
    tz: &TimeZone,
    names: &BTreeMap<i64, String>,
) -> Result<Vec<Cover>, FieldErrors> {
    let (a, b, wa, wb) = form.read(tz)?;
    let pieces = pieces(final_segments);
    let existing: Vec<Cover> = stored["overrides"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            Some((
                o["start"].as_i64()?,
                o["end"].as_i64()?,
                o["person_id"].as_i64()?,
            ))
        })
        .collect();
    let name = |p: i64| {
        names
            .get(&p)
            .cloned()
            .unwrap_or_else(|| format!("member {p}"))
    };
    let refuse = |r: SwapRefusal, input: &str, who: i64| {
        let msg = match r {
            SwapRefusal::NotOnCall(t) => format!(
                "{input}: {} is not on call from {} in this window",
                name(who),
                local_input(tz, t).replace('T', " ")
            ),
            SwapRefusal::ByOverride(t) => format!(
                "{input}: {} is on call from {} through an override; remove or end it instead",
                name(who),
                local_input(tz, t).replace('T', " ")
            ),
        };
        FieldErrors::one(input, msg)
    };
    let mut covers =
        replace(&pieces, &existing, wa.0, wa.1, a, b).map_err(|r| refuse(r, "sw_a_start", a))?;
    if let Some((s, e)) = wb {
        covers.extend(
            replace(&pieces, &existing, s, e, b, a).map_err(|r| refuse(r, "sw_b_start", b))?,
        );
    }
    Ok(covers)
}

/// The window `/schedule/info` must compute: both shifts.
fn span(form: &SwapForm, tz: &TimeZone) -> Option<(i64, i64)> {
    let (_, _, wa, wb) = form.read(tz).ok()?;
    Some(wb.map_or(wa, |wb| (wa.0.min(wb.0), wa.1.max(wb.1))))
}

fn status_of(e: &klaxon_core::error::ApiError) -> StatusCode {
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The form fragment again, errors beside their inputs and everything typed kept.
async fn form_again(
    state: &AppState,
    viewer: &Viewer,
    id: i64,
    time_zone: &str,
    form: &SwapForm,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    let people = match override_people(state, viewer).await {
        Ok(p) => p,
        Err(e) => return page_error(&e),
    };
    let w = context! {
        schedule_id => id,
        time_zone => time_zone,
        v => j(form),
        people => j(&people),
        errors => j(&errors.0),
    };
    page_headers(
        (
            status,
            view::render("schedule_swap_form.html", context! { w => w }),
        )
            .into_response(),
    )
}

async fn swap(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let here = format!("/schedules/{id}");
    let viewer = match viewer(&state, &Method::POST, &headers, &here).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let id = match schedule_id(&id) {
        Ok(id) => id,
        Err(e) => return page_error(&e),
    };
    let now = now_secs(&state);
    let zone_of = match fetch(
        &state,
        &viewer,
        "/schedule/info",
        json!({"schedule_id": id, "start": now, "end": now + 60}),
    )
    .await
    {
        Ok(s) => s["time_zone"].as_str().unwrap_or("UTC").to_string(),
        Err(e) => return page_error(&e),
    };
    let tz = zone(&zone_of);
    let form = SwapForm::parse(&form_pairs(&body));
    let redraw = |errors: FieldErrors, status: StatusCode| {
        let (state, viewer, form, zone_of) = (&state, &viewer, &form, &zone_of);
        async move { form_again(state, viewer, id, zone_of, form, &errors, status).await }
    };
    let (from, to) = match span(&form, &tz) {
        Some(w) => w,
        None => {
            // `read` names the input; run it again for its message.
            let errors = form.read(&tz).err().unwrap_or_default();
            return redraw(errors, StatusCode::BAD_REQUEST).await;
        }
    };
    let s = match fetch(
        &state,
        &viewer,
        "/schedule/info",
        json!({"schedule_id": id, "start": from, "end": to}),
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            let errors = FieldErrors::one("_form", e.message.clone());
            return redraw(errors, status_of(&e)).await;
        }
    };
    let names: BTreeMap<i64, String> = match override_people(&state, &viewer).await {
        Ok(people) => people
            .iter()
            .filter_map(|p| {
                Some((
                    p["id"].as_str()?.parse().ok()?,
                    p["name"].as_str()?.to_string(),
                ))
            })
            .collect(),
        Err(e) => return page_error(&e),
    };
    let covers = match plan(&form, &s, &s["final_schedule"]["schedules"], &tz, &names) {
        Ok(c) => c,
        Err(errors) => return redraw(errors, StatusCode::BAD_REQUEST).await,
    };
    let mut overrides = s["overrides"].as_array().cloned().unwrap_or_default();
    for (start, end, person) in covers {
        overrides.push(json!({"start": start, "end": end, "person_id": person, "note": "swap"}));
    }
    match call(
        &state,
        &viewer,
        "/schedule/update",
        json!({"schedule_id": id, "overrides": overrides}),
    )
    .await
    {
        Ok(_) => redirect(&headers, &format!("/schedules/{id}")),
        Err(e) => {
            if e.code == ErrorCode::InternalError {
                tracing::error!(error = %e.message, "console swap save failed");
            }
            redraw(FieldErrors::one("_form", e.message.clone()), status_of(&e)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(start: i64, end: i64, people: &[i64]) -> Piece {
        Piece {
            start,
            end,
            people: people.to_vec(),
        }
    }

    // spec: RSP-235 — a swap in a two-person shift: B replaces A, and C, who stays on call,
    // gets an override of their own, because overrides replace every layer (RSP-212).
    #[test]
    fn everyone_who_stays_gets_an_override() {
        let pieces = [piece(0, 100, &[1, 3]), piece(100, 200, &[1, 3])];
        let covers = replace(&pieces, &[], 50, 150, 1, 2).unwrap();
        assert_eq!(covers, vec![(50, 150, 3), (50, 150, 2)]);
    }

    // spec: RSP-235 — A's window with a handoff inside: each piece keeps its own people.
    #[test]
    fn pieces_with_different_people_stay_apart() {
        let pieces = [piece(0, 100, &[1, 3]), piece(100, 200, &[1, 4])];
        let covers = replace(&pieces, &[], 0, 200, 1, 2).unwrap();
        assert_eq!(covers, vec![(0, 100, 3), (0, 200, 2), (100, 200, 4)]);
    }

    #[test]
    fn a_person_not_on_call_throughout_is_refused() {
        let pieces = [piece(0, 100, &[1]), piece(100, 200, &[3])];
        assert_eq!(
            replace(&pieces, &[], 50, 150, 1, 2),
            Err(SwapRefusal::NotOnCall(100))
        );
        // A gap (nobody on call) past the last piece.
        assert_eq!(
            replace(&[piece(0, 100, &[1])], &[], 50, 150, 1, 2),
            Err(SwapRefusal::NotOnCall(100))
        );
        // On call through an override: an added override cannot take them off.
        assert_eq!(
            replace(&[piece(0, 100, &[1])], &[(20, 80, 1)], 0, 100, 1, 2),
            Err(SwapRefusal::ByOverride(20))
        );
    }

    // spec: RSP-235 — the swap of A and B: B over A's window, A over B's window.
    #[test]
    fn a_swap_is_two_sets_of_overrides() {
        let tz = TimeZone::UTC;
        // A (1) on call 2026-01-05 00:00..+1 d, B (2) the day after.
        let day = 1_767_571_200;
        let segments = json!([
            {"start": day, "end": day + 86_400,
             "group": {"members": [{"person_ids": [1]}]}},
            {"start": day + 86_400, "end": day + 2 * 86_400,
             "group": {"members": [{"person_ids": [2]}]}},
        ]);
        let form = SwapForm {
            a: "1".into(),
            a_start: "2026-01-05T00:00".into(),
            a_end: "2026-01-06T00:00".into(),
            b: "2".into(),
            b_start: "2026-01-06T00:00".into(),
            b_end: "2026-01-07T00:00".into(),
        };
        let covers = plan(&form, &json!({}), &segments, &tz, &BTreeMap::new()).unwrap();
        assert_eq!(
            covers,
            vec![(day, day + 86_400, 2), (day + 86_400, day + 2 * 86_400, 1)]
        );
        // Overlapping shifts, the same person twice, no person: refused at their input.
        let overlap = SwapForm {
            b_start: "2026-01-05T12:00".into(),
            ..form.clone()
        };
        let e = plan(&overlap, &json!({}), &segments, &tz, &BTreeMap::new()).unwrap_err();
        assert!(e.0.contains_key("sw_b_start"), "{e:?}");
        let same = SwapForm {
            b: "1".into(),
            ..form.clone()
        };
        let e = plan(&same, &json!({}), &segments, &tz, &BTreeMap::new()).unwrap_err();
        assert!(e.0.contains_key("sw_b"), "{e:?}");
        let nobody = SwapForm {
            a: String::new(),
            ..form.clone()
        };
        let e = plan(&nobody, &json!({}), &segments, &tz, &BTreeMap::new()).unwrap_err();
        assert!(e.0.contains_key("sw_a"), "{e:?}");
        // B is not on call in A's window: the refusal names A's window with B's name.
        let wrong = SwapForm {
            a: "2".into(),
            b: "1".into(),
            ..form
        };
        let mut names = BTreeMap::new();
        names.insert(2, "Bo".to_string());
        let e = plan(&wrong, &json!({}), &segments, &tz, &names).unwrap_err();
        assert!(e.0["sw_a_start"].contains("Bo is not on call"), "{e:?}");
    }
}
