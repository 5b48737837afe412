//! What a schedule's page draws from `/schedule/info` (RSP-227): a timeline of the computed
//! segments (one row per rotation layer, then the final on-call after overrides) and a month
//! calendar of the final on-call per day. Pure functions over the API's answer; every shift
//! comes from the resolver of `klaxon_core::schedule`, none is computed here.

use std::collections::{BTreeSet, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

/// The schedule's zone, UTC when it names none the system knows.
pub(super) fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

/// The instant (Unix seconds) a local date begins in `tz` (RSP-215: a midnight in a gap moves
/// forward, an ambiguous one takes the earlier instant).
pub(super) fn day_start(tz: &TimeZone, date: Date) -> i64 {
    tz.to_ambiguous_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .compatible()
        .map_or(0, |t| t.as_second())
}

/// The local date of instant `secs` in `tz`.
pub(super) fn local_date(tz: &TimeZone, secs: i64) -> Date {
    jiff::Timestamp::from_second(secs)
        .map(|t| tz.to_datetime(t).date())
        .unwrap_or_default()
}

/// `Mon 5 Jan 09:00` in `tz`.
pub(super) fn local_label(tz: &TimeZone, secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| tz.to_datetime(t).strftime("%a %-d %b %H:%M").to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM` (a `datetime-local` input's value) in `tz`.
pub(super) fn local_input(tz: &TimeZone, secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| tz.to_datetime(t).strftime("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// Every person a computed segment (`{group{members[]{person_ids}}}`) names, in order.
pub(super) fn segment_people(seg: &Value) -> Vec<i64> {
    let mut out: Vec<i64> = Vec::new();
    for m in seg["group"]["members"].as_array().into_iter().flatten() {
        for id in m["person_ids"].as_array().into_iter().flatten() {
            if let Some(id) = id.as_i64()
                && !out.contains(&id)
            {
                out.push(id);
            }
        }
    }
    out
}

fn who(people: &[i64], names: &HashMap<String, String>) -> String {
    people
        .iter()
        .map(|p| {
            names
                .get(&p.to_string())
                .cloned()
                .unwrap_or_else(|| format!("member {p}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Percent of the window, to a tenth of a per mille (enough for a minute of a 14-day span).
fn pct(x: f64) -> f64 {
    (x * 10_000.0).round() / 100.0
}

/// One row of bars: each segment of `segments` cut to `[from, to)`, placed by its share of
/// the window. A segment with nobody is left out (the gap shows it).
pub(super) fn bars(
    segments: &Value,
    from: i64,
    to: i64,
    tz: &TimeZone,
    names: &HashMap<String, String>,
) -> Vec<Value> {
    let span = (to - from).max(1) as f64;
    segments
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|seg| {
            let start = seg["start"].as_i64()?.max(from);
            let end = seg["end"].as_i64()?.min(to);
            let people = segment_people(seg);
            if end <= start || people.is_empty() {
                return None;
            }
            Some(json!({
                // The shift as the window shows it: a click on the block takes it over.
                "start": start,
                "end": end,
                "left": pct((start - from) as f64 / span),
                "width": pct((end - start) as f64 / span),
                "who": who(&people, names),
                "people": people,
                "from": local_label(tz, start),
                "to": local_label(tz, end),
            }))
        })
        .collect()
}

/// The timeline's rows: each rotation layer (by its name) and then the final on-call.
pub(super) fn timeline(
    info: &Value,
    from: i64,
    to: i64,
    tz: &TimeZone,
    names: &HashMap<String, String>,
) -> Vec<Value> {
    let layer_names: HashMap<i64, String> = info["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|l| l["mode"].as_i64().unwrap_or(0) == 0)
        .filter_map(|l| {
            Some((
                l["layer_id"].as_i64()?,
                l["layer_name"].as_str().unwrap_or("").to_string(),
            ))
        })
        .collect();
    let mut rows: Vec<Value> = info["schedule_layers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let id = l["layer_id"].as_i64().unwrap_or(0);
            let name = layer_names
                .get(&id)
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| format!("Layer {id}"));
            json!({
                "label": name,
                "final": false,
                "bars": bars(&l["schedules"], from, to, tz, names),
            })
        })
        .collect();
    rows.push(json!({
        "label": "Final on-call",
        "final": true,
        "bars": bars(&info["final_schedule"]["schedules"], from, to, tz, names),
    }));
    rows
}

/// The day marks above the timeline: each local midnight in the window.
pub(super) fn ticks(tz: &TimeZone, from: i64, to: i64) -> Vec<Value> {
    let span = (to - from).max(1) as f64;
    let mut out = Vec::new();
    let mut date = local_date(tz, from);
    for _ in 0..62 {
        let at = day_start(tz, date);
        if at >= to {
            break;
        }
        if at >= from {
            out.push(json!({
                "left": pct((at - from) as f64 / span),
                "label": date.strftime("%a %-d").to_string(),
                "short": date.day(),
                "weekday": date.weekday().to_monday_zero_offset(),
            }));
        }
        let Ok(next) = date.tomorrow() else { break };
        date = next;
    }
    out
}

/// `YYYY-MM` → the first day of that month.
pub(super) fn parse_month(raw: &str) -> Option<Date> {
    let (y, m) = raw.trim().split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let y: i16 = y.parse().ok()?;
    let m: i8 = m.parse().ok()?;
    Date::new(y, m, 1).ok()
}

pub(super) fn month_key(d: Date) -> String {
    d.strftime("%Y-%m").to_string()
}

/// The month's window in `tz`: from its first local midnight to the next month's.
pub(super) fn month_window(tz: &TimeZone, first: Date) -> (i64, i64) {
    let next = first
        .checked_add(jiff::Span::new().months(1))
        .unwrap_or(first);
    (day_start(tz, first), day_start(tz, next))
}

/// One cell per day of the month, Monday-first weeks: who is on call (final, after
/// overrides) at any time of that local day, by name, with the leading blank cells of the
/// first week flagged `pad`.
pub(super) fn month_days(
    tz: &TimeZone,
    first: Date,
    final_segments: &Value,
    names: &HashMap<String, String>,
    today: Date,
) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..first.weekday().to_monday_zero_offset() {
        out.push(json!({"pad": true}));
    }
    let segs: Vec<(i64, i64, Vec<i64>)> = final_segments
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["start"].as_i64()?, s["end"].as_i64()?, segment_people(s))))
        .collect();
    let mut date = first;
    while date.month() == first.month() {
        let Ok(next) = date.tomorrow() else { break };
        let (d0, d1) = (day_start(tz, date), day_start(tz, next));
        let mut seen = BTreeSet::new();
        let mut people = Vec::new();
        for (s, e, ps) in &segs {
            if *s < d1 && *e > d0 {
                for p in ps {
                    if seen.insert(*p) {
                        people.push(*p);
                    }
                }
            }
        }
        let named: Vec<String> = people
            .iter()
            .map(|p| who(std::slice::from_ref(p), names))
            .collect();
        out.push(json!({
            "pad": false,
            "date": date.to_string(),
            "day": date.day(),
            "label": date.strftime("%a %-d %b").to_string(),
            "today": date == today,
            "people": named,
        }));
        date = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: i64, end: i64, people: &[i64]) -> Value {
        json!({"start": start, "end": end,
               "group": {"members": [{"role_id": 0, "person_ids": people}]}})
    }

    fn named() -> HashMap<String, String> {
        HashMap::from([("1".to_string(), "Ann".to_string())])
    }

    // spec: RSP-227 — the bars are the computed segments, cut at the window, by share.
    #[test]
    fn bars_are_placed_by_their_share_of_the_window() {
        let tz = TimeZone::UTC;
        let segs = json!([seg(-50, 25, &[1]), seg(25, 75, &[]), seg(75, 200, &[2])]);
        let b = bars(&segs, 0, 100, &tz, &named());
        assert_eq!(b.len(), 2, "the empty segment is a gap");
        assert_eq!(b[0]["left"], 0.0);
        assert_eq!(b[0]["width"], 25.0);
        assert_eq!(b[0]["who"], "Ann");
        assert_eq!(b[1]["left"], 75.0);
        assert_eq!(b[1]["width"], 25.0);
        assert_eq!(b[1]["who"], "member 2");
    }

    #[test]
    fn the_final_row_comes_after_the_layers() {
        let tz = TimeZone::UTC;
        let info = json!({
            "layers": [{"layer_id": 4, "layer_name": "Day", "mode": 0},
                       {"layer_id": 1, "layer_name": "note", "mode": 1}],
            "schedule_layers": [{"layer_id": 4, "schedules": [seg(0, 10, &[1])]}],
            "final_schedule": {"schedules": [seg(0, 10, &[1])]},
        });
        let rows = timeline(&info, 0, 10, &tz, &named());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["label"], "Day");
        assert_eq!(rows[1]["final"], true);
        assert_eq!(rows[1]["bars"][0]["width"], 100.0);
    }

    #[test]
    fn a_month_has_a_cell_per_day_after_its_monday_padding() {
        let tz = zone("Europe/Berlin");
        // 2026-03-01 is a Sunday: six blank cells lead.
        let first = parse_month("2026-03").unwrap();
        let (from, to) = month_window(&tz, first);
        // March 2026 in Berlin has 31 days, one of them 23 hours long (DST on the 29th).
        assert_eq!(to - from, 31 * 86_400 - 3600);
        let d2 = day_start(&tz, Date::new(2026, 3, 2).unwrap());
        let days = month_days(
            &tz,
            first,
            &json!([seg(d2 + 3600, d2 + 7200, &[1]), seg(d2 + 86_400, to, &[2])]),
            &named(),
            Date::new(2026, 3, 3).unwrap(),
        );
        assert_eq!(days.iter().filter(|d| d["pad"] == true).count(), 6);
        assert_eq!(days.iter().filter(|d| d["pad"] == false).count(), 31);
        assert_eq!(days[6]["people"], json!([]));
        assert_eq!(days[7]["date"], "2026-03-02");
        assert_eq!(days[7]["people"], json!(["Ann"]));
        assert_eq!(days[8]["people"], json!(["member 2"]));
        assert_eq!(days[8]["today"], true);
        assert_eq!(days[36]["people"], json!(["member 2"]));
    }

    #[test]
    fn months_are_read_strictly() {
        assert_eq!(parse_month("2026-11"), Date::new(2026, 11, 1).ok());
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("26-11"), None);
        assert_eq!(parse_month("soon"), None);
        assert_eq!(month_key(Date::new(2026, 1, 1).unwrap()), "2026-01");
    }

    #[test]
    fn day_marks_fall_on_local_midnights() {
        let tz = zone("Europe/Berlin");
        let d = Date::new(2026, 1, 5).unwrap();
        let from = day_start(&tz, d);
        let t = ticks(&tz, from, from + 7 * 86_400);
        assert_eq!(t.len(), 7);
        assert_eq!(t[0]["label"], "Mon 5");
        assert_eq!(t[0]["left"], 0.0);
        assert_eq!(local_input(&tz, from + 9 * 3600), "2026-01-05T09:00");
    }
}
