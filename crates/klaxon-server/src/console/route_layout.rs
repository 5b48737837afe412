//! The default route and the section dividers of a shared integration's routes (ingest.md
//! §1.3.2, ING-091, ING-095). The default route takes the events no rule matched; sections
//! are named dividers between rules, stored and versioned with them. A save is one
//! `/route/upsert` of the whole route based on the version the page showed — the rules as
//! they are, the new default and sections — so the API's checks, version lock and history
//! apply exactly as for an API client.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use klaxon_core::error::ApiError;
use minijinja::context;
use serde_json::{Value, json};

use super::forms::{FieldErrors, indexed};
use super::incidents::{form_pairs, form_value, j, page_headers};
use super::route_edit::{Rules, channels, conflict_text, refusal_status};
use super::routing::integration_id;
use super::{call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

/// Empty section rows the form offers past the used ones.
const SPARE_ROWS: usize = 2;

/// Section dividers to save, each `(name, rule index it precedes)`, with the form row of each.
type Dividers = (Vec<(Value, usize)>, Vec<usize>);

/// One divider row of the form, as typed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(super) struct SectionRow {
    pub name: String,
    /// The 1-based rule the divider precedes (`rules + 1`: after the last rule).
    pub before: String,
}

/// What the form shows: the typed (or stored) values, kept after a refusal.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub(super) struct LayoutForm {
    /// The route version the page showed: the save is based on it (the version lock).
    pub version: String,
    pub default: Vec<String>,
    pub sections: Vec<SectionRow>,
}

impl LayoutForm {
    pub(super) fn of_route(route: &Value) -> LayoutForm {
        let rules = Rules::of(route);
        LayoutForm {
            version: route["version"].as_i64().unwrap_or(0).to_string(),
            default: route["default"]["channel_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c.to_string().trim_matches('"').to_string())
                .collect(),
            sections: rules
                .sections()
                .iter()
                .map(|(name, at)| SectionRow {
                    name: name.as_str().unwrap_or("").to_string(),
                    before: (at + 1).to_string(),
                })
                .collect(),
        }
    }

    fn parse(pairs: &[(String, String)]) -> LayoutForm {
        let mut sections = Vec::new();
        for k in 0.. {
            let name_key = format!("s{k}_name");
            if !pairs.iter().any(|(key, _)| *key == name_key) {
                break;
            }
            sections.push(SectionRow {
                name: form_value(pairs, &name_key),
                before: form_value(pairs, &format!("s{k}_before"))
                    .trim()
                    .to_string(),
            });
        }
        LayoutForm {
            version: form_value(pairs, "version").trim().to_string(),
            default: pairs
                .iter()
                .filter(|(k, v)| k == "default_channel" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
            sections,
        }
    }

    /// The form with spare empty rows to add dividers.
    fn padded(mut self, rules: usize) -> LayoutForm {
        self.sections.retain(|s| !s.name.trim().is_empty());
        let last = (rules + 1).to_string();
        self.sections.extend((0..SPARE_ROWS).map(|_| SectionRow {
            name: String::new(),
            before: last.clone(),
        }));
        self
    }

    /// The dividers to save (`(name, rule index it precedes)`) and the form row of each; a
    /// row with a name but no valid place is refused beside its place.
    fn dividers(&self, rules: usize) -> Result<Dividers, FieldErrors> {
        let mut out = Vec::new();
        let mut rows = Vec::new();
        for (k, s) in self.sections.iter().enumerate() {
            if s.name.trim().is_empty() {
                continue;
            }
            let before = s
                .before
                .parse::<usize>()
                .ok()
                .filter(|b| *b >= 1 && *b <= rules + 1)
                .ok_or_else(|| {
                    FieldErrors::one(
                        &format!("s{k}_before"),
                        format!(
                            "sections: {:?} is not a place between the rules (1 to {})",
                            s.before,
                            rules + 1
                        ),
                    )
                })?;
            out.push((json!(s.name.trim()), before - 1));
            rows.push(k);
        }
        Ok((out, rows))
    }
}

/// The input an API error field belongs to: `sections[i].name` → the row's name, the
/// default route → its channel list.
fn input_of(field: &str, rows: &[usize]) -> Option<String> {
    if field.starts_with("default") {
        return Some("default".into());
    }
    let (i, rest) = indexed(field, "sections")?;
    let row = rows.get(i)?;
    Some(if rest.starts_with("position") {
        format!("s{row}_before")
    } else {
        format!("s{row}_name")
    })
}

/// The form's context for `route_layout_form.html`.
pub(super) fn layout_ctx(
    integration_id: i64,
    rules: usize,
    channels: &[Value],
    form: LayoutForm,
    errors: &FieldErrors,
) -> minijinja::Value {
    let places: Vec<(String, String)> = (1..=rules + 1)
        .map(|p| {
            let label = if p > rules {
                "after the last rule".to_string()
            } else {
                format!("before rule {p}")
            };
            (p.to_string(), label)
        })
        .collect();
    context! {
        integration_id => integration_id,
        channels => j(&channels),
        places => places,
        v => j(&form.padded(rules)),
        errors => j(&errors.0),
    }
}

/// Saves the default route and dividers as a new version; a refusal comes back beside its
/// input with everything chosen kept, and nothing is saved.
pub(super) async fn save(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = format!("/integrations/{raw}/routing");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let loaded = async {
        let id = integration_id(&raw)?;
        let route = fetch(
            &state,
            &viewer,
            "/route/info",
            json!({"integration_id": id}),
        )
        .await?;
        let channels = channels(&state, &viewer).await?;
        Ok::<_, ApiError>((id, route, channels))
    }
    .await;
    let (id, route, channels) = match loaded {
        Ok(l) => l,
        Err(e) => return page_error(&e),
    };
    let mut rules = Rules::of(&route);
    let count = rules.rules.len();
    let form = LayoutForm::parse(&form_pairs(&body));
    let outcome = match form.dividers(count) {
        Err(errors) => Err((errors, StatusCode::BAD_REQUEST)),
        Ok((dividers, rows)) => {
            rules.set_sections(dividers);
            let (cases, sections) = rules.wire();
            let default: Vec<Value> = form
                .default
                .iter()
                .map(|s| s.parse::<i64>().map_or_else(|_| json!(s), |n| json!(n)))
                .collect();
            let version = form
                .version
                .parse::<i64>()
                .map_or_else(|_| json!(form.version), |n| json!(n));
            let args = json!({
                "integration_id": id,
                "version": version,
                "cases": cases,
                "sections": sections,
                "default": {"channel_ids": default},
            });
            match call(&state, &viewer, "/route/upsert", args).await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let status = refusal_status(&e, "default route save");
                    let mut errors = FieldErrors::file(&e.message, |f| input_of(f, &rows));
                    if let Some(m) = errors.0.get_mut("_form") {
                        *m = conflict_text(&e);
                    }
                    Err((errors, status))
                }
            }
        }
    };
    match outcome {
        Ok(()) => redirect(&headers, &format!("/integrations/{id}/routing")),
        Err((errors, status)) => page_headers(
            (
                status,
                view::render(
                    "route_layout_form.html",
                    context! { layout => layout_ctx(id, count, &channels, form, &errors) },
                ),
            )
                .into_response(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Value {
        json!({
            "version": 4,
            "cases": [
                {"id": "a", "if": [], "channel_ids": [1], "fallthrough": false},
                {"id": "b", "if": [], "channel_ids": [2], "fallthrough": false},
            ],
            "sections": [{"name": "Databases", "position": 1}],
            "default": {"channel_ids": [3]},
        })
    }

    // spec: ING-095 (the save is based on the version shown), §1.3.2 (sections, default route)
    #[test]
    fn a_stored_route_fills_the_form_and_the_form_makes_dividers() {
        let f = LayoutForm::of_route(&route());
        assert_eq!(f.version, "4");
        assert_eq!(f.default, vec!["3"]);
        assert_eq!(
            f.sections,
            vec![SectionRow {
                name: "Databases".into(),
                before: "2".into()
            }]
        );
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(
            "version=4&default_channel=3&default_channel=1&s0_name=Web&s0_before=1\
             &s1_name=&s1_before=3&s2_name=Tail&s2_before=3",
        )
        .unwrap();
        let f = LayoutForm::parse(&pairs);
        assert_eq!(f.default, vec!["3", "1"]);
        let (dividers, rows) = f.dividers(2).unwrap();
        assert_eq!(dividers, vec![(json!("Web"), 0), (json!("Tail"), 2)]);
        assert_eq!(rows, vec![0, 2]);
        let mut rules = Rules::of(&route());
        rules.set_sections(dividers);
        let (_, sections) = rules.wire();
        assert_eq!(
            sections,
            json!([{"name": "Web", "position": 0}, {"name": "Tail", "position": 2}])
        );
        // The API's errors go beside their inputs.
        assert_eq!(
            input_of("sections[1].name", &rows).as_deref(),
            Some("s2_name")
        );
        assert_eq!(
            input_of("default.channel_ids", &rows).as_deref(),
            Some("default")
        );
    }

    #[test]
    fn a_divider_without_a_place_is_refused_beside_it() {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str("version=1&s0_name=Web&s0_before=9").unwrap();
        let e = LayoutForm::parse(&pairs).dividers(2).unwrap_err();
        assert!(e.0["s0_before"].contains("1 to 3"), "{:?}", e.0);
    }
}
