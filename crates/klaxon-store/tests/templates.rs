//! Notification templates through the store (response.md 1.16, §2.22): CRUD, unique names,
//! and the reference rules between escalation rules and templates (RSP-353, response.md
//! 1.12 `template_id`). SQLite always, PostgreSQL when `KLAXON_TEST_DATABASE_URL` is set.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::Db;

use klaxon_core::model::Millis;
use klaxon_core::response::rules::By;
use klaxon_core::response::{EscalationRule, Level, RuleStatus, Target};
use klaxon_core::template::{DEFAULT_TEMPLATE_ALT_ID, DEFAULT_TEMPLATE_ID, TemplateRecord};
use klaxon_store::{Bootstrap, RuleRefusal, TemplateRefusal};

const T0: Millis = 1_750_000_000_000;

both!(
    templates_round_trip_and_names_are_unique,
    a_rule_must_name_an_existing_template,
    a_referenced_template_cannot_be_deleted,
);

async fn boot(db: &Db) -> Bootstrap {
    db.boot(T0).await
}

fn draft(b: &Bootstrap, name: &str) -> TemplateRecord {
    let mut t = TemplateRecord {
        account_id: b.account_id,
        template_name: name.into(),
        status: "enabled".into(),
        creator_id: b.owner_member_id,
        ..TemplateRecord::default()
    };
    t.bodies.insert("sms".into(), "SMS {{.Title}}".into());
    t
}

fn rule(b: &Bootstrap, name: &str, template_id: &str) -> EscalationRule {
    EscalationRule {
        rule_id: String::new(),
        account_id: b.account_id,
        channel_id: b.channel_id,
        rule_name: name.into(),
        description: String::new(),
        priority: -1,
        status: RuleStatus::Enabled,
        template_id: template_id.into(),
        aggr_window: 0,
        time_filters: vec![],
        filters: vec![],
        layers: vec![Level {
            target: Target {
                person_ids: vec![b.owner_member_id],
                by: Some(By {
                    follow_preference: true,
                    ..By::default()
                }),
                ..Target::default()
            },
            escalate_window: 30,
            force_escalate: false,
            max_times: 1,
            notify_step: 10.0,
        }],
        updated_by: 0,
        created_at: 0,
        updated_at: 0,
    }
}

// spec: RSP-352 (create, edit), response.md 1.16 (unique name in the account)
async fn templates_round_trip_and_names_are_unique(db: &Db) {
    let b = boot(db).await;
    let t = db
        .store
        .create_notification_template(draft(&b, "Ops"), T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.template_id.len(), 24);
    let back = db
        .store
        .notification_template(b.account_id, &t.template_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, t);
    assert_eq!(
        back.bodies.get("sms").map(String::as_str),
        Some("SMS {{.Title}}")
    );
    // Same name again: refused, nothing written.
    assert_eq!(
        db.store
            .create_notification_template(draft(&b, "Ops"), T0)
            .await
            .unwrap(),
        Err(TemplateRefusal::NameTaken)
    );
    assert_eq!(
        db.store
            .notification_templates(b.account_id)
            .await
            .unwrap()
            .len(),
        1
    );
    // Another account sees nothing.
    assert!(
        db.store
            .notification_templates(b.account_id + 1000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.store
            .notification_template(b.account_id + 1000, &t.template_id)
            .await
            .unwrap()
            .is_none()
    );
    // Update keeps id, creator and creation time; renaming onto another name is refused.
    let other = db
        .store
        .create_notification_template(draft(&b, "Other"), T0 + 1)
        .await
        .unwrap()
        .unwrap();
    let mut edit = back.clone();
    edit.template_name = "Ops 2".into();
    edit.status = "disabled".into();
    edit.creator_id = 0;
    edit.bodies
        .insert("email".into(), "<b>{{.Title}}</b>".into());
    let saved = db
        .store
        .update_notification_template(edit, T0 + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (saved.created_at, saved.updated_at, saved.creator_id),
        (T0, T0 + 5, b.owner_member_id)
    );
    let reread = db
        .store
        .notification_template(b.account_id, &t.template_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reread, saved);
    let mut clash = reread.clone();
    clash.template_name = other.template_name.clone();
    assert_eq!(
        db.store
            .update_notification_template(clash, T0 + 6)
            .await
            .unwrap(),
        Err(TemplateRefusal::NameTaken)
    );
    let mut ghost = reread.clone();
    ghost.template_id = "0".repeat(24);
    assert_eq!(
        db.store
            .update_notification_template(ghost, T0 + 6)
            .await
            .unwrap(),
        Err(TemplateRefusal::NotFound)
    );
    assert_eq!(
        db.store
            .notification_template(b.account_id, &t.template_id)
            .await
            .unwrap()
            .unwrap()
            .template_name,
        "Ops 2"
    );
}

// spec: response.md 1.12 — `template_id` MUST reference an existing template.
async fn a_rule_must_name_an_existing_template(db: &Db) {
    let b = boot(db).await;
    assert_eq!(
        db.store
            .save_escalation_rule(rule(&b, "R", "65600000000000000000abcd"), T0)
            .await
            .unwrap(),
        Err(RuleRefusal::TemplateNotFound)
    );
    assert!(
        db.store
            .escalation_rules(b.account_id, b.channel_id)
            .await
            .unwrap()
            .is_empty()
    );
    // Another account's template is unknown here too.
    let mut foreign = draft(&b, "Foreign");
    foreign.account_id = b.account_id + 1000;
    let foreign = db
        .store
        .create_notification_template(foreign, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        db.store
            .save_escalation_rule(rule(&b, "R", &foreign.template_id), T0)
            .await
            .unwrap(),
        Err(RuleRefusal::TemplateNotFound)
    );
    // The default template's two ids, and a real template, are accepted.
    for (i, id) in [DEFAULT_TEMPLATE_ID, DEFAULT_TEMPLATE_ALT_ID]
        .iter()
        .enumerate()
    {
        db.store
            .save_escalation_rule(rule(&b, &format!("D{i}"), id), T0)
            .await
            .unwrap()
            .unwrap();
    }
    let t = db
        .store
        .create_notification_template(draft(&b, "Ops"), T0)
        .await
        .unwrap()
        .unwrap();
    let saved = db
        .store
        .save_escalation_rule(rule(&b, "R", &t.template_id), T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(saved.template_id, t.template_id);
}

// spec: RSP-353
async fn a_referenced_template_cannot_be_deleted(db: &Db) {
    let b = boot(db).await;
    let t = db
        .store
        .create_notification_template(draft(&b, "Ops"), T0)
        .await
        .unwrap()
        .unwrap();
    let r = db
        .store
        .save_escalation_rule(rule(&b, "Uses it", &t.template_id), T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        db.store
            .delete_notification_template(b.account_id, &t.template_id)
            .await
            .unwrap(),
        Err(TemplateRefusal::InUse(vec![(
            r.rule_id.clone(),
            "Uses it".into()
        )]))
    );
    assert!(
        db.store
            .notification_template(b.account_id, &t.template_id)
            .await
            .unwrap()
            .is_some()
    );
    db.store
        .delete_escalation_rule(b.account_id, b.channel_id, &r.rule_id)
        .await
        .unwrap();
    db.store
        .delete_notification_template(b.account_id, &t.template_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        db.store
            .notification_template(b.account_id, &t.template_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db.store
            .delete_notification_template(b.account_id, &t.template_id)
            .await
            .unwrap(),
        Err(TemplateRefusal::NotFound)
    );
}
