//! Editing the rules of a shared integration's routes (ingest.md §2.8): change a rule's
//! conditions, channels and flow, delete it, or move it up or down. Each change is one
//! `/route/upsert` of the whole route based on the version the page showed, exactly as an
//! API client saves it, so every check, the version lock, the history, the diff and rollback
//! (ING-095) are the API's own.

use std::ops::Range;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use klaxon_core::error::{ApiError, ErrorCode, Surface};
use minijinja::context;
use serde_json::{Value, json};

use super::forms::{FieldErrors, indexed};
use super::incidents::{form_pairs, form_value, j, page_headers};
use super::noise::{MORE_ROWS, Row, groups_of, padded_rows, parse_rows, rows_of};
use super::routing::integration_id;
use super::{Viewer, call, fetch, page_error, redirect, view, viewer};
use crate::state::AppState;

/// A route as rules. The wire form shows a rule whose conditions have several alternative
/// groups as consecutive cases with the same id (ingest.md §1.5.3); moving or deleting must
/// take all of them, and section dividers (which name case positions) must follow.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Rules {
    pub(super) rules: Vec<Vec<Value>>,
    /// Each divider's name and the rule it precedes (`rules.len()`: after the last).
    sections: Vec<(Value, usize)>,
}

impl Rules {
    pub(super) fn of(route: &Value) -> Rules {
        let mut rules: Vec<Vec<Value>> = Vec::new();
        let mut starts: Vec<usize> = Vec::new();
        let cases = route["cases"].as_array().cloned().unwrap_or_default();
        for (i, case) in cases.iter().enumerate() {
            let id = case["id"].as_str().unwrap_or("");
            match rules.last_mut() {
                Some(last) if !id.is_empty() && last[0]["id"].as_str() == Some(id) => {
                    last.push(case.clone());
                }
                _ => {
                    starts.push(i);
                    rules.push(vec![case.clone()]);
                }
            }
        }
        let sections = route["sections"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let at = s["position"].as_u64().unwrap_or(0) as usize;
                // The rule starting at (or holding) that case; past the end stays past it.
                let rule = starts.iter().rposition(|st| *st <= at).unwrap_or(0);
                let rule = if at >= cases.len() { rules.len() } else { rule };
                (s["name"].clone(), rule)
            })
            .collect();
        Rules { rules, sections }
    }

    /// The cases of rule `k` in the wire list.
    fn span(&self, k: usize) -> Range<usize> {
        let start: usize = self.rules[..k.min(self.rules.len())]
            .iter()
            .map(Vec::len)
            .sum();
        start..start + self.rules.get(k).map_or(0, Vec::len)
    }

    /// The section dividers: each one's name and the rule it precedes.
    pub(super) fn sections(&self) -> &[(Value, usize)] {
        &self.sections
    }

    /// Replaces the section dividers (each `(name, rule it precedes)`).
    pub(super) fn set_sections(&mut self, sections: Vec<(Value, usize)>) {
        self.sections = sections;
    }

    /// `cases` and `sections` of the upsert body.
    pub(super) fn wire(&self) -> (Value, Value) {
        let cases: Vec<Value> = self.rules.iter().flatten().cloned().collect();
        let sections: Vec<Value> = self
            .sections
            .iter()
            .map(|(name, r)| json!({"name": name, "position": self.span(*r).start}))
            .collect();
        (Value::Array(cases), Value::Array(sections))
    }

    fn delete(&mut self, k: usize) {
        self.rules.remove(k);
        for (_, r) in &mut self.sections {
            if *r > k {
                *r -= 1;
            }
        }
    }

    /// Swaps rules `k` and `k + 1`; dividers stay where they are, between positions.
    fn swap_down(&mut self, k: usize) {
        self.rules.swap(k, k + 1);
    }

    /// The dividers' indices in the order they appear among the rules. The layout form lets
    /// a person list them in any order, so the list order alone does not say which comes
    /// first; two at one place keep their list order (the earlier one is then empty).
    fn in_place_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.sections.len()).collect();
        order.sort_by_key(|i| (self.sections[*i].1, *i));
        order
    }

    /// The section rule `k` belongs to: the last divider at or above it; `None` above the
    /// first divider.
    pub(super) fn section_of(&self, k: usize) -> Option<usize> {
        self.in_place_order()
            .into_iter()
            .rfind(|i| self.sections[*i].1 <= k)
    }

    /// Moves rule `k` to the end of section `to` (`None`: the rules above the first
    /// divider) and answers its new index. The other rules keep their order and every
    /// divider keeps the rules it had, so only this rule changes section.
    fn move_to_section(&mut self, k: usize, to: Option<usize>) -> usize {
        if self.section_of(k) == to {
            return k;
        }
        let rule = self.rules.remove(k);
        for (_, r) in &mut self.sections {
            if *r > k {
                *r -= 1;
            }
        }
        let order = self.in_place_order();
        // The dividers after the target section in place order: the rule goes just above
        // the first of them, and all of them move down by the one rule.
        let after = match to {
            None => 0,
            Some(s) => order
                .iter()
                .position(|i| *i == s)
                .map_or(order.len(), |q| q + 1),
        };
        let at = order
            .get(after)
            .map_or(self.rules.len(), |i| self.sections[*i].1);
        self.rules.insert(at, rule);
        for i in &order[after..] {
            self.sections[*i].1 += 1;
        }
        at
    }

    /// The section choices of the edit form: `(value, name)` in place order, `none` first
    /// for the rules above the first divider.
    fn section_choices(&self) -> Vec<(String, String)> {
        let mut out = vec![(
            NO_SECTION.to_string(),
            "None (above the first section)".to_string(),
        )];
        out.extend(self.in_place_order().into_iter().map(|i| {
            (
                i.to_string(),
                self.sections[i].0.as_str().unwrap_or("").to_string(),
            )
        }));
        out
    }
}

/// The section choice of the rules above the first divider.
const NO_SECTION: &str = "none";

/// The form value of a rule's section.
fn section_value(section: Option<usize>) -> String {
    section.map_or_else(|| NO_SECTION.to_string(), |s| s.to_string())
}

/// The section a form value names; a value that names none is refused beside the choice.
fn parse_section(raw: &str, rules: &Rules) -> Result<Option<usize>, FieldErrors> {
    if raw == NO_SECTION {
        return Ok(None);
    }
    raw.parse::<usize>()
        .ok()
        .filter(|s| *s < rules.sections.len())
        .map(Some)
        .ok_or_else(|| {
            FieldErrors::one(
                "section",
                format!("section: {raw:?} is not one of the route's sections"),
            )
        })
}

/// What the edit form shows: the typed (or stored) values, kept after a refusal.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
struct EditForm {
    /// The route version the page showed: the save is based on it (the version lock).
    version: String,
    name: String,
    enabled: bool,
    rows: Vec<Row>,
    chosen: Vec<String>,
    flow: String,
    /// The section the rule is in, as a [`section_value`]; a different one moves the rule
    /// to the end of that section. Empty (a form without the choice): it stays put.
    section: String,
    /// Set by "Add condition rows": the form is drawn again with more rows, nothing saved.
    more_rows: String,
}

impl EditForm {
    fn of_rule(version: i64, cases: &[Value]) -> EditForm {
        let first = cases.first().cloned().unwrap_or(Value::Null);
        let groups: Vec<Value> = cases
            .iter()
            .map(|c| c["if"].clone())
            .filter(|g| g.as_array().is_some_and(|a| !a.is_empty()))
            .collect();
        EditForm {
            version: version.to_string(),
            name: first["name"].as_str().unwrap_or("").to_string(),
            enabled: first["enabled"].as_bool().unwrap_or(true),
            rows: rows_of(&Value::Array(groups)),
            chosen: first["channel_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c.to_string().trim_matches('"').to_string())
                .collect(),
            flow: if first["fallthrough"].as_bool().unwrap_or(false) {
                "continue"
            } else {
                "stop"
            }
            .into(),
            section: String::new(),
            more_rows: String::new(),
        }
    }

    fn parse(pairs: &[(String, String)]) -> EditForm {
        EditForm {
            version: form_value(pairs, "version").trim().to_string(),
            name: form_value(pairs, "name"),
            enabled: !form_value(pairs, "enabled").is_empty(),
            rows: parse_rows(pairs, "c"),
            chosen: pairs
                .iter()
                .filter(|(k, v)| k == "channel" && !v.is_empty())
                .map(|(_, v)| v.clone())
                .collect(),
            flow: form_value(pairs, "flow"),
            section: form_value(pairs, "section").trim().to_string(),
            more_rows: form_value(pairs, "more_rows"),
        }
    }

    /// What the editor draws: two empty rows past the last used one, more when asked.
    fn padded(mut self) -> EditForm {
        self.rows = padded_rows(self.rows);
        if self.more_rows == "c" {
            let group = self.rows.last().map_or(1, |r| r.group.parse().unwrap_or(1));
            self.rows.extend((0..MORE_ROWS).map(|_| Row::empty(group)));
        }
        self
    }

    /// The rule's new cases (one per condition group, all with the stored case's id and
    /// whatever else the form does not show), and the row each condition came from.
    fn cases(&self, stored: &[Value]) -> Result<(Vec<Value>, Vec<Vec<usize>>), FieldErrors> {
        let (groups, at) = groups_of(&self.rows, "c")?;
        let mut base = stored.first().cloned().unwrap_or_else(|| json!({}));
        let channel_ids: Vec<Value> = self
            .chosen
            .iter()
            .map(|s| s.parse::<i64>().map_or_else(|_| json!(s), |n| json!(n)))
            .collect();
        base["name"] = json!(self.name.trim());
        base["enabled"] = json!(self.enabled);
        base["channel_ids"] = Value::Array(channel_ids);
        base["fallthrough"] = json!(self.flow == "continue");
        let groups = groups.as_array().cloned().unwrap_or_default();
        if groups.is_empty() {
            // No conditions: the rule matches every event.
            base["if"] = json!([]);
            return Ok((vec![base], at));
        }
        let cases = groups
            .into_iter()
            .map(|g| {
                let mut c = base.clone();
                c["if"] = g;
                c
            })
            .collect();
        Ok((cases, at))
    }
}

/// The input of the edited rule an API error names: `cases[N]…` with `N` inside the rule's
/// new cases (`first`, `count`), rows by `at[group][condition]`.
fn edit_input(field: &str, first: usize, count: usize, at: &[Vec<usize>]) -> Option<String> {
    let (n, rest) = indexed(field, "cases")?;
    let g = n.checked_sub(first).filter(|g| *g < count)?;
    if rest.starts_with("channel_ids") {
        return Some("channels".into());
    }
    if rest.starts_with("name") {
        return Some("name".into());
    }
    if rest.starts_with("fallthrough") {
        return Some("flow".into());
    }
    let Some((c, part)) = indexed(rest, "if") else {
        return rest.starts_with("if").then(|| "c_rows".to_string());
    };
    let row = *at.get(g)?.get(c)?;
    let input = if part.starts_with("oper") {
        "oper"
    } else if part.starts_with("vals") {
        "vals"
    } else {
        "key"
    };
    Some(format!("c{row}_{input}"))
}

/// A 1-based rule position of the URL → its index in `rules`.
fn rule_index(raw: &str, rules: &Rules) -> Result<usize, ApiError> {
    raw.parse::<usize>()
        .ok()
        .filter(|p| *p >= 1 && *p <= rules.rules.len())
        .map(|p| p - 1)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ResourceNotFound,
                format!("the routes have no rule {raw}"),
            )
        })
}

pub(super) async fn channels(state: &AppState, viewer: &Viewer) -> Result<Vec<Value>, ApiError> {
    Ok(
        fetch(state, viewer, "/channel/list", json!({"limit": 100})).await?["items"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    )
}

fn form_ctx(
    integration: &Value,
    position: usize,
    channels: &[Value],
    sections: Vec<(String, String)>,
    form: EditForm,
    errors: &FieldErrors,
) -> minijinja::Value {
    context! {
        integration => j(integration),
        position => position,
        channels => j(&channels),
        // Only a route with sections offers the choice.
        sections => if sections.len() > 1 { sections } else { Vec::new() },
        v => j(&form.padded()),
        errors => j(&errors.0),
    }
}

/// The edit page of the rule at `position` (1-based) of the current version.
pub(super) async fn edit_page(
    State(state): State<AppState>,
    Path((raw, pos)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let next = format!("/integrations/{raw}/routing/rules/{pos}");
    let viewer = match viewer(&state, &Method::GET, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let result = async {
        let id = integration_id(&raw)?;
        let integration = fetch(
            &state,
            &viewer,
            "/integration/info",
            json!({"integration_id": id}),
        )
        .await?;
        let route = fetch(&state, &viewer, "/route/info", json!({"integration_id": id})).await?;
        let rules = Rules::of(&route);
        let k = rule_index(&pos, &rules)?;
        let mut form = EditForm::of_rule(route["version"].as_i64().unwrap_or(0), &rules.rules[k]);
        form.section = section_value(rules.section_of(k));
        let channels = channels(&state, &viewer).await?;
        let me = super::me(&state, &viewer).await?;
        Ok::<_, ApiError>(context! {
            title => format!("Rule {} of {}", k + 1, integration["integration_name"].as_str().unwrap_or("")),
            nav => "channels",
            csrf => viewer.session.csrf_token.clone(),
            me => j(&me),
            f => form_ctx(&integration, k + 1, &channels, rules.section_choices(), form, &FieldErrors::default()),
        })
    }
    .await;
    match result {
        Ok(ctx) => page_headers(view::render("route_rule.html", ctx).into_response()),
        Err(e) => page_error(&e),
    }
}

pub(super) fn refusal_status(e: &ApiError, what: &str) -> StatusCode {
    if e.code == ErrorCode::InternalError {
        tracing::error!(error = %e.message, "console route {what} failed");
    }
    StatusCode::from_u16(e.code.http_status(Surface::OpenApi)).unwrap_or(StatusCode::BAD_REQUEST)
}

/// The version lock's refusal in words a person acts on.
pub(super) fn conflict_text(e: &ApiError) -> String {
    if e.message.contains("version conflict") {
        format!(
            "The routes were changed by someone else since this page was loaded ({}). Nothing was saved: look at the current version and try again.",
            e.message
        )
    } else {
        e.message.clone()
    }
}

/// Saves the edited rule as a new version; a refusal comes back beside its input with
/// everything typed kept, and nothing is saved.
pub(super) async fn save_edit(
    State(state): State<AppState>,
    Path((raw, pos)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = format!("/integrations/{raw}/routing/rules/{pos}");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let loaded = async {
        let id = integration_id(&raw)?;
        let integration = fetch(
            &state,
            &viewer,
            "/integration/info",
            json!({"integration_id": id}),
        )
        .await?;
        let route = fetch(
            &state,
            &viewer,
            "/route/info",
            json!({"integration_id": id}),
        )
        .await?;
        let rules = Rules::of(&route);
        let k = rule_index(&pos, &rules)?;
        Ok::<_, ApiError>((id, integration, route, rules, k))
    }
    .await;
    let (id, integration, route, mut rules, k) = match loaded {
        Ok(l) => l,
        Err(e) => return page_error(&e),
    };
    let form = EditForm::parse(&form_pairs(&body));
    let choices = rules.section_choices();
    let section = if form.section.is_empty() {
        Ok(rules.section_of(k))
    } else {
        parse_section(&form.section, &rules)
    };
    let outcome = if !form.more_rows.is_empty() {
        Err((FieldErrors::default(), StatusCode::OK))
    } else {
        match section.and_then(|to| Ok((to, form.cases(&rules.rules[k])?))) {
            Err(errors) => Err((errors, StatusCode::BAD_REQUEST)),
            Ok((to, (cases, at))) => {
                let count = cases.len();
                rules.rules[k] = cases;
                let k = rules.move_to_section(k, to);
                let first = rules.span(k).start;
                let (cases, sections) = rules.wire();
                let version = form
                    .version
                    .parse::<i64>()
                    .map_or_else(|_| json!(form.version), |n| json!(n));
                let args = json!({
                    "integration_id": id,
                    "version": version,
                    "cases": cases,
                    "sections": sections,
                    "default": route["default"],
                });
                match call(&state, &viewer, "/route/upsert", args).await {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        let status = refusal_status(&e, "rule save");
                        let mut errors =
                            FieldErrors::file(&e.message, |f| edit_input(f, first, count, &at));
                        if let Some(m) = errors.0.get_mut("_form") {
                            *m = conflict_text(&e);
                        }
                        Err((errors, status))
                    }
                }
            }
        }
    };
    match outcome {
        Ok(()) => redirect(&headers, &format!("/integrations/{id}/routing")),
        Err((errors, status)) => match channels(&state, &viewer).await {
            Ok(channels) => page_headers(
                (
                    status,
                    view::render(
                        "route_edit_form.html",
                        context! { f => form_ctx(&integration, k + 1, &channels, choices, form, &errors) },
                    ),
                )
                    .into_response(),
            ),
            Err(e) => page_error(&e),
        },
    }
}

/// Moves a rule up or down, or deletes it, as a new version based on the one the page
/// showed (`version` of the form). A refusal is a fragment for the page's message region.
pub(super) async fn act(
    State(state): State<AppState>,
    Path((raw, pos, verb)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = format!("/integrations/{raw}/routing");
    let viewer = match viewer(&state, &Method::POST, &headers, &next).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let pairs = form_pairs(&body);
    let result = async {
        let id = integration_id(&raw)?;
        let route = fetch(
            &state,
            &viewer,
            "/route/info",
            json!({"integration_id": id}),
        )
        .await?;
        let mut rules = Rules::of(&route);
        let k = rule_index(&pos, &rules)?;
        match verb.as_str() {
            "delete" => rules.delete(k),
            "up" if k > 0 => rules.swap_down(k - 1),
            "down" if k + 1 < rules.rules.len() => rules.swap_down(k),
            "up" | "down" => {
                return Err(ApiError::invalid(format!(
                    "rule {} is already the {} one",
                    k + 1,
                    if verb == "up" { "first" } else { "last" }
                )));
            }
            _ => {
                return Err(ApiError::new(ErrorCode::ResourceNotFound, "no such action"));
            }
        }
        let (cases, sections) = rules.wire();
        let v = form_value(&pairs, "version");
        let version = v
            .trim()
            .parse::<i64>()
            .map_or_else(|_| json!(v), |n| json!(n));
        call(
            &state,
            &viewer,
            "/route/upsert",
            json!({
                "integration_id": id,
                "version": version,
                "cases": cases,
                "sections": sections,
                "default": route["default"],
            }),
        )
        .await?;
        Ok::<_, ApiError>(id)
    }
    .await;
    match result {
        Ok(id) => redirect(&headers, &format!("/integrations/{id}/routing")),
        Err(e) => {
            let status = refusal_status(&e, &verb);
            let html = format!(
                "<p>{}</p><p><a href=\"/integrations/{}/routing\">Show the current version</a></p>",
                view::escape(&conflict_text(&e)),
                view::escape(&raw)
            );
            page_headers((status, Html(html)).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> Value {
        json!({
            "version": 4,
            "cases": [
                {"id": "a", "name": "A", "if": [{"key": "severity", "oper": "IN", "vals": ["Critical"]}],
                 "channel_ids": [1], "fallthrough": false, "routing_mode": "standard"},
                {"id": "b", "name": "B", "if": [{"key": "labels.env", "oper": "IN", "vals": ["prod"]}],
                 "channel_ids": [2], "fallthrough": true},
                {"id": "b", "name": "B", "if": [{"key": "labels.env", "oper": "IN", "vals": ["stage"]}],
                 "channel_ids": [2], "fallthrough": true},
                {"id": "c", "name": "C", "if": [], "channel_ids": [3], "fallthrough": false}
            ],
            "sections": [{"name": "Later", "position": 3}],
            "default": {"channel_ids": [1]}
        })
    }

    // spec: ING-095 (a rule with alternatives is several cases with one id; it moves whole)
    #[test]
    fn cases_with_one_id_are_one_rule_and_move_together() {
        let mut r = Rules::of(&route());
        assert_eq!(r.rules.len(), 3);
        assert_eq!(r.span(1), 1..3);
        // The divider precedes rule C (case 3).
        assert_eq!(r.wire().1, json!([{"name": "Later", "position": 3}]));
        r.swap_down(0);
        let (cases, sections) = r.wire();
        let ids: Vec<&str> = cases
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["b", "b", "a", "c"]);
        assert_eq!(sections, json!([{"name": "Later", "position": 3}]));
        r.delete(0);
        let (cases, sections) = r.wire();
        assert_eq!(cases.as_array().unwrap().len(), 2);
        // Rule C is now the second rule: the divider still precedes it.
        assert_eq!(sections, json!([{"name": "Later", "position": 1}]));
    }

    // spec: §1.3.2 (sections are named dividers between rules), ING-095
    #[test]
    fn a_rule_moves_to_the_end_of_another_section() {
        // Rules a, b, c, d; "Web" precedes b, "Databases" precedes d.
        let route = json!({
            "cases": (["a", "b", "c", "d"].map(|id| json!({"id": id, "if": []}))),
            "sections": [{"name": "Web", "position": 1}, {"name": "Databases", "position": 3}],
        });
        let ids = |r: &Rules| -> Vec<String> {
            r.rules
                .iter()
                .map(|c| c[0]["id"].as_str().unwrap().to_string())
                .collect()
        };
        let r = Rules::of(&route);
        assert_eq!(
            [0, 1, 2, 3].map(|k| r.section_of(k)),
            [None, Some(0), Some(0), Some(1)]
        );
        // a into Web: it ends Web; Web now starts at b (index 0), Databases still at d.
        let mut m = r.clone();
        assert_eq!(m.move_to_section(0, Some(0)), 2);
        assert_eq!(ids(&m), ["b", "c", "a", "d"]);
        assert_eq!(
            m.wire().1,
            json!([{"name": "Web", "position": 0}, {"name": "Databases", "position": 3}])
        );
        // d out of every section: it ends the rules above the first divider.
        let mut m = r.clone();
        assert_eq!(m.move_to_section(3, None), 1);
        assert_eq!(ids(&m), ["a", "d", "b", "c"]);
        assert_eq!(
            m.wire().1,
            json!([{"name": "Web", "position": 2}, {"name": "Databases", "position": 4}])
        );
        assert_eq!(m.section_of(1), None);
        // b into Databases (the last section): the end of all rules.
        let mut m = r.clone();
        assert_eq!(m.move_to_section(1, Some(1)), 3);
        assert_eq!(ids(&m), ["a", "c", "d", "b"]);
        assert_eq!(m.section_of(3), Some(1));
        assert_eq!(m.section_of(1), Some(0));
        // Its own section: nothing moves.
        let mut m = r.clone();
        assert_eq!(m.move_to_section(2, Some(0)), 2);
        assert_eq!(m, r);
        // The choices in place order, then a bad one refused beside the choice.
        let listed_backwards = json!({
            "cases": route["cases"],
            "sections": [{"name": "Databases", "position": 3}, {"name": "Web", "position": 1}],
        });
        let b = Rules::of(&listed_backwards);
        let names: Vec<String> = b.section_choices().into_iter().map(|(_, n)| n).collect();
        assert_eq!(names[1..], ["Web".to_string(), "Databases".to_string()]);
        assert_eq!(b.section_of(3), Some(0));
        assert_eq!(parse_section("none", &b).unwrap(), None);
        assert_eq!(parse_section("1", &b).unwrap(), Some(1));
        let e = parse_section("7", &b).unwrap_err();
        assert!(e.0["section"].contains("not one of"), "{:?}", e.0);
    }

    #[test]
    fn an_edited_rule_keeps_its_id_and_what_the_form_does_not_show() {
        let r = Rules::of(&route());
        let mut f = EditForm::of_rule(4, &r.rules[1]);
        assert_eq!(f.rows.len(), 2);
        assert_eq!(f.rows[1].group, "2");
        assert_eq!(f.chosen, vec!["2"]);
        assert_eq!(f.flow, "continue");
        f.rows.truncate(1);
        f.chosen = vec!["3".into(), "1".into()];
        f.flow = "stop".into();
        let (cases, at) = f.cases(&r.rules[1]).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0]["id"], "b");
        assert_eq!(cases[0]["channel_ids"], json!([3, 1]));
        assert_eq!(cases[0]["fallthrough"], false);
        assert_eq!(at, vec![vec![0]]);
        // No conditions: one case that matches every event.
        f.rows.clear();
        let (cases, _) = f.cases(&r.rules[0]).unwrap();
        assert_eq!(cases[0]["if"], json!([]));
        assert_eq!(cases[0]["routing_mode"], "standard");
    }

    #[test]
    fn errors_of_the_edited_rule_go_to_their_inputs() {
        let at = vec![vec![0, 2], vec![3]];
        assert_eq!(
            edit_input("cases[1].if[1].vals[0]", 1, 2, &at).as_deref(),
            Some("c2_vals")
        );
        assert_eq!(
            edit_input("cases[2].if[0].key", 1, 2, &at).as_deref(),
            Some("c3_key")
        );
        assert_eq!(
            edit_input("cases[1].channel_ids", 1, 2, &at).as_deref(),
            Some("channels")
        );
        // Another rule's problem belongs to no input of this form.
        assert_eq!(edit_input("cases[0].channel_ids", 1, 2, &at), None);
        assert_eq!(edit_input("default.channel_ids", 1, 2, &at), None);
    }
}
