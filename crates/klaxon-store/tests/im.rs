//! IM integrations and linked identities through the store (response.md 1.21, RSP-301,
//! RSP-310, RSP-332; migration 0028), on SQLite and (with `KLAXON_TEST_DATABASE_URL`)
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::harness;

use harness::Db;

use klaxon_core::model::Millis;
use klaxon_store::{CARD_CODE_LIFETIME_MS, ImCard, ImConversation, ImIntegrationDraft, ImRefusal};

both!(
    integrations_are_scoped_and_one_has_war_rooms,
    links_map_one_member_to_one_user,
    feishu_credentials_and_unavailable_chats,
    wecom_card_codes_are_spent_once_within_72_hours,
    teams_link_codes_work_once_and_conversations_are_scoped,
);

const T0: Millis = 1_750_000_000_000;

fn slack(name: &str, war_room: bool) -> ImIntegrationDraft {
    ImIntegrationDraft {
        kind: "slack".into(),
        name: name.into(),
        bot_token: "xoxb-1-2-abc".into(),
        signing_secret: "s3cret-signing".into(),
        war_room_enabled: war_room,
        status: "enabled".into(),
        ..ImIntegrationDraft::default()
    }
}

async fn integrations_are_scoped_and_one_has_war_rooms(db: &Db) {
    // spec: response.md 1.21 (at most one IM integration per account has war rooms)
    let b = db.boot(T0).await;
    let first = db
        .store
        .create_im_integration(b.account_id, &slack("A", true), b.owner_member_id, T0)
        .await
        .unwrap()
        .unwrap();
    assert!(first.integration_id >= 1_000_000_000_000);
    assert_eq!(first.bot_token, "xoxb-1-2-abc");
    assert!(
        !format!("{first:?}").contains("xoxb-1-2-abc"),
        "Debug hides secrets"
    );
    let refused = db
        .store
        .create_im_integration(b.account_id, &slack("B", true), b.owner_member_id, T0)
        .await
        .unwrap();
    assert_eq!(refused, Err(ImRefusal::WarRoomTaken(first.integration_id)));
    let second = db
        .store
        .create_im_integration(b.account_id, &slack("B", false), b.owner_member_id, T0 + 1)
        .await
        .unwrap()
        .unwrap();
    let all = db
        .store
        .list_im_integrations(b.account_id, Some("slack"))
        .await
        .unwrap();
    let names: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["A", "B"]);
    // Another account sees none of them.
    assert!(
        db.store
            .im_integration(b.account_id + 1, first.integration_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        db.store
            .delete_im_integration(b.account_id, second.integration_id)
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .delete_im_integration(b.account_id, second.integration_id)
            .await
            .unwrap()
    );
}

async fn links_map_one_member_to_one_user(db: &Db) {
    // spec: RSP-301 (links), RSP-310 (the member linked to the clicking user), RSP-332
    let b = db.boot(T0).await;
    let (acct, owner) = (b.account_id, b.owner_member_id);
    let i = db
        .store
        .create_im_integration(acct, &slack("A", false), owner, T0)
        .await
        .unwrap()
        .unwrap();
    let id = i.integration_id;
    assert!(
        db.store
            .im_target(acct, "slack", owner)
            .await
            .unwrap()
            .is_none()
    );
    db.store
        .link_im_user(acct, id, owner, "U1", T0)
        .await
        .unwrap()
        .unwrap();
    // Linking again replaces the member's link.
    db.store
        .link_im_user(acct, id, owner, "U2", T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(db.store.linked_member(acct, id, "U1").await.unwrap(), None);
    assert_eq!(
        db.store.linked_member(acct, id, "U2").await.unwrap(),
        Some(owner)
    );
    let (target, user) = db
        .store
        .im_target(acct, "slack", owner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((target.integration_id, user.as_str()), (id, "U2"));
    // Unknown members and integrations are refused; nothing is written.
    assert_eq!(
        db.store
            .link_im_user(acct, id, owner + 999, "U3", T0)
            .await
            .unwrap(),
        Err(ImRefusal::NoSuchMember)
    );
    assert_eq!(
        db.store
            .link_im_user(acct, id + 1, owner, "U3", T0)
            .await
            .unwrap(),
        Err(ImRefusal::NotFound)
    );
    // A disabled integration is not a delivery target.
    db.exec(&format!(
        "UPDATE im_integrations SET status = 'disabled' WHERE integration_id = {id}"
    ))
    .await;
    assert!(
        db.store
            .im_target(acct, "slack", owner)
            .await
            .unwrap()
            .is_none()
    );
    // A member who is no longer enabled is nobody's link.
    db.exec(&format!(
        "UPDATE members SET status = 'deleted' WHERE member_id = {owner}"
    ))
    .await;
    assert_eq!(db.store.linked_member(acct, id, "U2").await.unwrap(), None);
    assert!(db.store.unlink_im_user(acct, id, owner).await.unwrap());
    assert!(!db.store.unlink_im_user(acct, id, owner).await.unwrap());
    assert!(db.store.im_links(acct, id).await.unwrap().is_empty());
}

async fn feishu_credentials_and_unavailable_chats(db: &Db) {
    // spec: RSP-302 (Feishu app credentials), RSP-300 (a disbanded chat is unavailable)
    let b = db.boot(T0).await;
    let (acct, owner) = (b.account_id, b.owner_member_id);
    let draft = ImIntegrationDraft {
        kind: "feishu".into(),
        name: "F".into(),
        bot_token: "app-secret".into(),
        signing_secret: "verification-token".into(),
        app_id: "cli_1".into(),
        encrypt_key: "encrypt-key-1".into(),
        api_base: "https://open.larksuite.com".into(),
        status: "enabled".into(),
        war_room_enabled: false,
        agent_id: String::new(),
        tenant_id: String::new(),
        corp_id: String::new(),
    };
    let i = db
        .store
        .create_im_integration(acct, &draft, owner, T0)
        .await
        .unwrap()
        .unwrap();
    let id = i.integration_id;
    assert_eq!(
        (
            i.app_id.as_str(),
            i.encrypt_key.as_str(),
            i.api_base.as_str()
        ),
        ("cli_1", "encrypt-key-1", "https://open.larksuite.com")
    );
    assert!(
        !format!("{i:?}").contains("encrypt-key-1"),
        "Debug hides secrets"
    );
    let chats = ["oc_a", "oc_b"];
    assert!(
        db.store
            .unavailable_im_chats(acct, id, &chats)
            .await
            .unwrap()
            .is_empty()
    );
    // Recording twice keeps one record.
    for _ in 0..2 {
        db.store
            .mark_im_chat_unavailable(acct, id, "oc_b", "disbanded", T0)
            .await
            .unwrap();
    }
    assert_eq!(
        db.store
            .unavailable_im_chats(acct, id, &chats)
            .await
            .unwrap(),
        ["oc_b"]
    );
    // Another account does not see it; deleting the integration removes it.
    assert!(
        db.store
            .unavailable_im_chats(acct + 1, id, &chats)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(db.store.delete_im_integration(acct, id).await.unwrap());
    assert!(
        db.store
            .unavailable_im_chats(acct, id, &chats)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn wecom_card_codes_are_spent_once_within_72_hours(db: &Db) {
    // spec: RSP-313 (a card is updated once per interaction, within 72 hours), RSP-302
    let b = db.boot(T0).await;
    let (acct, owner) = (b.account_id, b.owner_member_id);
    let draft = ImIntegrationDraft {
        kind: "wecom".into(),
        name: "W".into(),
        bot_token: "app-secret".into(),
        signing_secret: "Token1".into(),
        app_id: "ww1".into(),
        agent_id: "1000002".into(),
        encrypt_key: "k".repeat(43),
        status: "enabled".into(),
        ..ImIntegrationDraft::default()
    };
    let i = db
        .store
        .create_im_integration(acct, &draft, owner, T0)
        .await
        .unwrap()
        .unwrap();
    let id = i.integration_id;
    assert_eq!(i.agent_id, "1000002");
    let store = &db.store;
    store
        .record_im_card_code(acct, id, "t1", "inc1", "zhang", "rc-send", T0)
        .await
        .unwrap();
    // Another account cannot spend it, nor replace it.
    assert_eq!(
        store
            .take_im_card_code(acct + 1, id, "t1", T0)
            .await
            .unwrap(),
        None
    );
    store
        .record_im_card_code(acct + 1, id, "t1", "inc1", "x", "rc-evil", T0)
        .await
        .unwrap();
    // Spent once.
    assert_eq!(
        store
            .take_im_card_code(acct, id, "t1", T0 + 1)
            .await
            .unwrap(),
        Some("rc-send".to_string())
    );
    assert_eq!(
        store
            .take_im_card_code(acct, id, "t1", T0 + 2)
            .await
            .unwrap(),
        None
    );
    // A press brings a new code; it lasts 72 hours from when it came.
    let press = T0 + 10_000;
    store
        .record_im_card_code(acct, id, "t1", "inc1", "zhang", "rc-press", press)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_im_card_code(acct, id, "t1", press + CARD_CODE_LIFETIME_MS)
            .await
            .unwrap(),
        None
    );
    store
        .record_im_card_code(acct, id, "t1", "inc1", "zhang", "rc-press2", press)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_im_card_code(acct, id, "t1", press + CARD_CODE_LIFETIME_MS - 1)
            .await
            .unwrap(),
        Some("rc-press2".to_string())
    );
    // The incident's cards keep their first recipient.
    assert_eq!(
        store.im_cards(acct, "inc1").await.unwrap(),
        [ImCard {
            integration_id: id,
            task_id: "t1".into(),
            incident_id: "inc1".into(),
            im_user_id: "zhang".into(),
        }]
    );
    assert!(store.im_cards(acct + 1, "inc1").await.unwrap().is_empty());
    // Deleting the integration forgets its cards.
    assert!(store.delete_im_integration(acct, id).await.unwrap());
    assert!(store.im_cards(acct, "inc1").await.unwrap().is_empty());
}

async fn teams_link_codes_work_once_and_conversations_are_scoped(db: &Db) {
    // spec: RSP-301 (Teams users link with linkUser), RSP-300 (linked teams and chats)
    let b = db.boot(T0).await;
    let (acct, owner) = (b.account_id, b.owner_member_id);
    let draft = ImIntegrationDraft {
        kind: "teams".into(),
        name: "T".into(),
        bot_token: "app-password".into(),
        app_id: "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8".into(),
        tenant_id: "11111111-2222-3333-4444-555555555555".into(),
        status: "enabled".into(),
        ..ImIntegrationDraft::default()
    };
    let store = &db.store;
    let i = store
        .create_im_integration(acct, &draft, owner, T0)
        .await
        .unwrap()
        .unwrap();
    let id = i.integration_id;
    assert_eq!(i.tenant_id, "11111111-2222-3333-4444-555555555555");
    // A new code replaces the member's earlier one; a code works once, before it expires.
    store
        .issue_im_link_code(acct, id, owner, "h1", T0 + 600_000, T0)
        .await
        .unwrap();
    store
        .issue_im_link_code(acct, id, owner, "h2", T0 + 600_000, T0)
        .await
        .unwrap();
    assert_eq!(store.take_im_link_code(id, "h1", T0).await.unwrap(), None);
    assert_eq!(
        store.take_im_link_code(id + 1, "h2", T0).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_im_link_code(id, "h2", T0).await.unwrap(),
        Some((acct, owner))
    );
    assert_eq!(store.take_im_link_code(id, "h2", T0).await.unwrap(), None);
    store
        .issue_im_link_code(acct, id, owner, "h3", T0 + 600_000, T0)
        .await
        .unwrap();
    assert_eq!(
        store
            .take_im_link_code(id, "h3", T0 + 600_000)
            .await
            .unwrap(),
        None
    );
    // Conversations: one per id, updated in place, scoped by account.
    let conv = |kind: &str, cid: &str, user: &str| ImConversation {
        integration_id: id,
        conversation_id: cid.into(),
        kind: kind.into(),
        im_user_id: user.into(),
        name: "Ops".into(),
        service_url: "https://smba.example/".into(),
        created_at: T0,
    };
    store
        .record_im_conversation(acct, &conv("team", "19:t", ""))
        .await
        .unwrap();
    store
        .record_im_conversation(acct, &conv("personal", "a:1", "29:u"))
        .await
        .unwrap();
    store
        .record_im_conversation(acct + 1, &conv("chat", "19:t", ""))
        .await
        .unwrap();
    assert_eq!(
        store
            .im_conversation(acct, id, "19:t")
            .await
            .unwrap()
            .unwrap()
            .kind,
        "team"
    );
    assert_eq!(
        store.im_conversation(acct + 1, id, "19:t").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .personal_im_conversation(acct, id, "29:u")
            .await
            .unwrap()
            .unwrap()
            .conversation_id,
        "a:1"
    );
    let groups = store.im_group_conversations(acct, id).await.unwrap();
    assert_eq!(groups, [conv("team", "19:t", "")]);
    assert!(store.delete_im_integration(acct, id).await.unwrap());
    assert!(
        store
            .im_group_conversations(acct, id)
            .await
            .unwrap()
            .is_empty()
    );
}
