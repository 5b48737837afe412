//! Building the template variables (response.md RSP-343) from stored state, and choosing the
//! template a send uses (RSP-340). Shared by delivery and by `/template/preview`, so a preview
//! renders exactly what would be sent (RSP-356).

use std::collections::HashMap;

use klaxon_core::model::{Incident, Millis};
use klaxon_core::template::{
    AlertVars, AssignedTo, ImageVars, MAX_ALERTS, Person, Responder, TemplateRecord, Vars,
};
use klaxon_store::{AlertFilter, Paging, Store, StoreError};

/// What a firing adds to the incident (RSP-343 `FireType`, `NotifyReason`, `RepeatIndex`).
#[derive(Debug, Clone, Default)]
pub struct Firing {
    pub fire_type: String,
    pub reason: String,
    pub repeat_index: i64,
    /// The notification's one-click action link (`ActionUrl`), when its channel has one.
    pub action_url: String,
}

fn secs(ms: Millis) -> i64 {
    ms / 1000
}

/// The root object for `inc`. `names` maps member ids to display names and e-mails (members
/// not in it show with an empty name).
pub async fn incident_vars(
    store: &Store,
    inc: &Incident,
    base_url: &str,
    names: &HashMap<i64, (String, String)>,
    firing: &Firing,
) -> Result<Vars, StoreError> {
    let (channel_name, mute_minutes) = if inc.channel_id == 0 {
        (String::new(), 0)
    } else {
        match store
            .channel_settings(inc.account_id, inc.channel_id)
            .await?
        {
            Some(s) => (s.channel.channel_name.clone(), s.flapping.mute_mins),
            None => (String::new(), 0),
        }
    };
    let alerts = store
        .list_alerts(
            inc.account_id,
            &AlertFilter {
                paging: Paging {
                    p: 1,
                    limit: MAX_ALERTS as i64,
                    asc: false,
                    search_after_ctx: None,
                },
                incident_id: Some(inc.incident_id.clone()),
                ..AlertFilter::default()
            },
        )
        .await?
        .items;
    let person = |id: i64| -> Option<Person> {
        (id != 0).then(|| {
            let (n, e) = names.get(&id).cloned().unwrap_or_default();
            Person {
                person_id: id,
                person_name: n,
                email: e,
            }
        })
    };
    let mut images: Vec<ImageVars> = Vec::new();
    for a in &alerts {
        for i in &a.images {
            if !images.iter().any(|x| x.alt == i.alt) {
                images.push(ImageVars {
                    src: i.src.clone(),
                    href: i.href.clone(),
                    alt: i.alt.clone(),
                });
            }
        }
    }
    let r = &inc.response;
    let assigned_to = r.assigned_to.as_ref().map(|a| AssignedTo {
        person_ids: a.person_ids.clone(),
        escalate_rule_id: a.escalate_rule_id.clone(),
        escalate_rule_name: a.escalate_rule_name.clone(),
        layer_idx: a.layer_idx,
        kind: serde_json::to_value(a.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    });
    Ok(Vars {
        id: inc.incident_id.clone(),
        num: inc.num.clone(),
        detail_url: format!("{base_url}/incident/detail/{}", inc.incident_id),
        action_url: firing.action_url.clone(),
        title: inc.title.clone(),
        description: inc.description.clone(),
        impact: r.impact.clone(),
        root_cause: r.root_cause.clone(),
        resolution: r.resolution.clone(),
        incident_severity: inc.incident_severity.as_str().to_string(),
        incident_status: inc.incident_status.as_str().to_string(),
        progress: serde_json::to_value(inc.progress)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        start_time: secs(inc.start_time),
        last_time: secs(inc.last_time),
        end_time: secs(inc.end_time),
        snoozed_before: secs(r.snoozed_before),
        ack_time: secs(inc.ack_time),
        close_time: secs(inc.close_time),
        creator: person(inc.creator_id),
        closer: person(inc.closer_id),
        creator_id: inc.creator_id,
        assigned_to: assigned_to.unwrap_or_default(),
        responders: r
            .responders
            .iter()
            .map(|x| {
                let (n, e) = names.get(&x.person_id).cloned().unwrap_or_default();
                Responder {
                    person_id: x.person_id,
                    person_name: n,
                    email: e,
                    assigned_at: secs(x.assigned_at),
                    acknowledged_at: secs(x.acknowledged_at),
                }
            })
            .collect(),
        channel_id: inc.channel_id,
        channel_name,
        group_method: inc.group_method.clone(),
        labels: inc
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        fields: r.fields.clone(),
        alert_cnt: inc.alert_cnt,
        alerts: alerts
            .iter()
            .map(|a| AlertVars {
                title: a.title.clone(),
                description: a.description.clone(),
                alert_severity: a.alert_severity.as_str().to_string(),
                alert_status: a.alert_status.as_str().to_string(),
                start_time: secs(a.start_time),
                end_time: secs(a.end_time),
                labels: a
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect(),
        images,
        fire_type: firing.fire_type.clone(),
        is_flapping: inc.is_flapping,
        flapping_mute_minutes: mute_minutes,
        is_in_storm: inc.storm_level > 0,
        frequency: r.frequency.clone(),
        notify_reason: firing.reason.clone(),
        repeat_index: firing.repeat_index,
    })
}

/// RSP-340: the custom template a firing under `escalate_rule_id` uses, or `None` for the
/// default (direct assignments, the default ids, a missing or disabled template).
pub async fn chosen_template(
    store: &Store,
    account_id: i64,
    escalate_rule_id: &str,
) -> Result<Option<TemplateRecord>, StoreError> {
    if escalate_rule_id.is_empty() {
        return Ok(None);
    }
    let Some(rule) = store.escalation_rule(account_id, escalate_rule_id).await? else {
        return Ok(None);
    };
    if rule.template_id.is_empty() || klaxon_core::template::is_default_id(&rule.template_id) {
        return Ok(None);
    }
    Ok(store
        .notification_template(account_id, &rule.template_id)
        .await?
        .filter(|t| t.status == "enabled"))
}

/// The zone templates format times in (the `date` function): the account's `time_zone`
/// (response.md 1.1, RSP-344), `UTC` when the account has none.
pub async fn account_zone(store: &Store, account_id: i64) -> Result<String, StoreError> {
    Ok(account_zone_and_locale(store, account_id).await?.0)
}

/// The account's time zone (as [`account_zone`]) and locale (`en-US` when unset), read once:
/// a card shows times in the one and speaks the other (RSP-293).
pub async fn account_zone_and_locale(
    store: &Store,
    account_id: i64,
) -> Result<(String, String), StoreError> {
    let account = store.account(account_id).await?;
    let zone = account
        .as_ref()
        .map(|a| a.time_zone.clone())
        .filter(|z| !z.is_empty())
        .unwrap_or_else(|| "UTC".into());
    let locale = account
        .map(|a| a.locale)
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "en-US".into());
    Ok((zone, locale))
}

/// Renders `channel` for `inc` the way a send does (RSP-340, RSP-346–RSP-348): the template of
/// the rule `escalate_rule_id` (or the default), in the account's time zone at `now`.
#[allow(clippy::too_many_arguments)]
pub async fn render_for(
    store: &Store,
    inc: &Incident,
    base_url: &str,
    names: &HashMap<i64, (String, String)>,
    firing: &Firing,
    escalate_rule_id: &str,
    channel: klaxon_core::template::Channel,
    now: Millis,
) -> Result<klaxon_core::template::Outcome, StoreError> {
    let vars = incident_vars(store, inc, base_url, names, firing).await?;
    let custom = chosen_template(store, inc.account_id, escalate_rule_id).await?;
    let time_zone = account_zone(store, inc.account_id).await?;
    let env = klaxon_core::template::Env {
        now: now / 1000,
        time_zone,
        escape_html: false,
    };
    Ok(klaxon_core::template::render_channel(
        channel,
        custom.as_ref().and_then(|t| t.body(channel)),
        &vars,
        &env,
    ))
}

/// The Slack card of `inc` as it is at `now`: [`card_now`] with the `slack_app` template.
pub async fn slack_card_now(
    store: &Store,
    inc: &Incident,
    base_url: &str,
    note: &str,
    now: Millis,
) -> Result<crate::card::Card, StoreError> {
    card_now(
        store,
        inc,
        base_url,
        note,
        now,
        klaxon_core::template::Channel::SlackApp,
    )
    .await
}

/// The IM card of `inc` as it is at `now` (RSP-312: a card updated after an action shows
/// the current state), with `note` saying what was just done. The body is the `channel`
/// template (`slack_app`, `feishu_app`) of the current assignment's rule (or the default),
/// rendered without a firing.
pub async fn card_now(
    store: &Store,
    inc: &Incident,
    base_url: &str,
    note: &str,
    now: Millis,
    channel: klaxon_core::template::Channel,
) -> Result<crate::card::Card, StoreError> {
    let mut ids: Vec<i64> = inc
        .response
        .responders
        .iter()
        .map(|r| r.person_id)
        .collect();
    ids.extend(
        [inc.creator_id, inc.closer_id]
            .into_iter()
            .filter(|i| *i != 0),
    );
    let names: HashMap<i64, (String, String)> = store
        .member_contacts(inc.account_id, &ids)
        .await?
        .into_iter()
        .map(|c| (c.member_id, (c.name, c.email)))
        .collect();
    let rule_id = inc
        .response
        .assigned_to
        .as_ref()
        .map(|a| a.escalate_rule_id.clone())
        .unwrap_or_default();
    let body = render_for(
        store,
        inc,
        base_url,
        &names,
        &Firing::default(),
        &rule_id,
        channel,
        now,
    )
    .await?;
    let (time_zone, locale) = account_zone_and_locale(store, inc.account_id).await?;
    Ok(crate::card::Card {
        incident_id: inc.incident_id.clone(),
        num: inc.num.clone(),
        title: inc.title.clone(),
        severity: inc.incident_severity.as_str().to_string(),
        progress: crate::deliver::progress_name(inc),
        snoozed_before: inc.response.snoozed_before,
        outlier: inc.response.frequency == "rare",
        body: body.text,
        detail_url: format!("{base_url}/incident/detail/{}", inc.incident_id),
        time_zone,
        note: note.to_string(),
        locale,
    })
}
