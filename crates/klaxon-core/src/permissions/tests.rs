use super::*;

const ME: i64 = 10;
const OTHER: i64 = 11;

fn member(role_ids: &[i64]) -> Actor {
    Actor::new(ME, false, role_ids, &[])
}

/// The RSP-522 matrix written out by hand, one row per point: (point, Admin, Responder,
/// Viewer). Deliberately not derived from the code it checks.
const MATRIX: [(Point, bool, bool, bool); 25] = [
    (Point::MembersManage, true, false, false),
    (Point::RolesManage, true, false, false),
    (Point::TeamsManage, true, true, false),
    (Point::SsoRead, true, true, true),
    (Point::SsoManage, true, false, false),
    (Point::AuditRead, true, true, false),
    (Point::ApiKeysRead, true, true, true),
    (Point::ApiKeysManage, true, true, false),
    (Point::ChannelsRead, true, true, true),
    (Point::ChannelsManage, true, true, false),
    (Point::IncidentsRead, true, true, true),
    (Point::IncidentsManage, true, true, false),
    (Point::IntegrationsRead, true, true, true),
    (Point::IntegrationsManage, true, true, false),
    (Point::AnalyticsRead, true, true, true),
    (Point::CustomFieldsRead, true, true, true),
    (Point::CustomFieldsManage, true, true, false),
    (Point::SchedulesRead, true, true, true),
    (Point::SchedulesManage, true, true, false),
    (Point::CalendarsRead, true, true, true),
    (Point::CalendarsManage, true, true, false),
    (Point::TemplatesRead, true, true, true),
    (Point::TemplatesManage, true, true, false),
    (Point::MappingsRead, true, true, true),
    (Point::MappingsManage, true, true, false),
];

fn expect(actor: &Actor, point: Point, want: bool, who: &str) {
    let got = allowed(actor, point, None);
    if want {
        assert_eq!(got, Ok(()), "{who} should hold {point}");
    } else {
        assert_eq!(
            got,
            Err(Denied::Feature(point)),
            "{who} should lack {point}"
        );
    }
}

#[test]
fn every_builtin_role_against_every_point() {
    // spec: RSP-521, RSP-522
    assert_eq!(MATRIX.len(), Point::ALL.len());
    for (i, (point, admin, responder, viewer)) in MATRIX.iter().enumerate() {
        assert_eq!(Point::ALL[i], *point, "matrix row {i} out of order");
        expect(&member(&[ROLE_ADMIN]), *point, *admin, "Admin");
        expect(&member(&[ROLE_RESPONDER]), *point, *responder, "Responder");
        expect(&member(&[ROLE_VIEWER]), *point, *viewer, "Viewer");
    }
}

#[test]
fn a_member_without_roles_acts_as_a_responder() {
    // spec: RSP-522, RSP-001 — anyone can still handle incidents (OQ-35).
    for (point, _, responder, _) in MATRIX {
        expect(&member(&[]), point, responder, "no role");
    }
    assert!(!member(&[]).is_admin);
}

#[test]
fn the_owner_holds_everything_whatever_the_roles() {
    // spec: RSP-523
    for owner in [
        Actor::new(ME, true, &[ROLE_VIEWER], &[]),
        Actor::new(ME, true, &[], &[]),
        Actor::owner(ME),
    ] {
        for point in Point::ALL {
            expect(&owner, point, true, "owner");
        }
        let channel = DataScope {
            kind: ObjectKind::Channel,
            creator_id: OTHER,
            team_ids: vec![5],
        };
        assert!(may_change(&owner, &channel, &[]));
    }
}

#[test]
fn manage_implies_read() {
    // spec: RSP-521 — "Manage implies Read".
    let custom = CustomRole {
        role_id: 100,
        points: Points::of(&[Point::SchedulesManage, Point::IncidentsManage]),
        enabled: true,
    };
    let a = Actor::new(ME, false, &[100], std::slice::from_ref(&custom));
    expect(&a, Point::SchedulesRead, true, "custom");
    expect(&a, Point::IncidentsRead, true, "custom");
    expect(&a, Point::ChannelsRead, false, "custom");
    // Audit Read and Analytics Read are implied by nothing.
    assert_eq!(Point::AuditRead.implied_by(), None);
    assert_eq!(Point::AnalyticsRead.implied_by(), None);
    for p in Point::ALL {
        if let Some(m) = p.implied_by() {
            assert!(p.is_read() && !m.is_read(), "{p} ← {m}");
            assert_eq!(
                p.name().replace(" Read", ""),
                m.name().replace(" Manage", "")
            );
        }
    }
}

#[test]
fn custom_roles_union_and_disabled_roles_grant_nothing() {
    // spec: RSP-524 — the effective permission is the union of the enabled roles.
    let audit = CustomRole {
        role_id: 100,
        points: Points::of(&[Point::AuditRead]),
        enabled: true,
    };
    let off = CustomRole {
        role_id: 101,
        points: Points::of(&[Point::MembersManage]),
        enabled: false,
    };
    let roles = [audit, off];
    let a = Actor::new(ME, false, &[ROLE_VIEWER, 100, 101], &roles);
    expect(&a, Point::AuditRead, true, "viewer+audit");
    expect(&a, Point::IncidentsRead, true, "viewer+audit");
    expect(&a, Point::MembersManage, false, "disabled role");
    expect(&a, Point::IncidentsManage, false, "viewer+audit");
    // Only disabled (or unknown) roles: nothing at all, not the no-role Responder default.
    let none = Actor::new(ME, false, &[101, 999], &roles);
    for p in Point::ALL {
        expect(&none, p, false, "disabled only");
    }
}

#[test]
fn points_round_trip_by_key_and_name() {
    // spec: RSP-521
    for p in Point::ALL {
        assert_eq!(Point::parse(p.key()), Some(p));
        assert_eq!(Point::parse(p.name()), Some(p));
        assert_eq!(Point::parse(&p.name().to_uppercase()), Some(p));
    }
    assert_eq!(Point::parse("Incidents Delete"), None);
    let set = Points::of(&[Point::AuditRead, Point::MembersManage]);
    assert_eq!(set.list(), vec![Point::MembersManage, Point::AuditRead]);
}

#[test]
fn legacy_role_names_are_aliases() {
    // spec: RSP-522 (OQ-35)
    let id = |n: &str| builtin_by_name(n).map(|r| r.role_id);
    assert_eq!(id("Account.Admin"), Some(ROLE_ADMIN));
    assert_eq!(id("Fin.Admin"), Some(ROLE_ADMIN));
    assert_eq!(id("Tech.Admin"), Some(ROLE_RESPONDER));
    assert_eq!(id("viewer"), Some(ROLE_VIEWER));
    assert_eq!(id("Root"), None);
    assert!(is_builtin(2) && is_builtin(6) && is_builtin(8) && !is_builtin(3));
}

#[test]
fn denial_messages_name_the_point_or_the_data_permission() {
    // spec: RSP-529
    let msg = Denied::Feature(Point::IncidentsManage).to_string();
    assert!(msg.contains("feature permission Incidents Manage"), "{msg}");
    let msg = Denied::Data(ObjectKind::Channel).to_string();
    assert!(
        msg.contains("data permission") && msg.contains("channel"),
        "{msg}"
    );
}

fn channel_scope(creator: i64, teams: &[i64]) -> DataScope {
    DataScope {
        kind: ObjectKind::Channel,
        creator_id: creator,
        team_ids: teams.to_vec(),
    }
}

#[test]
fn data_permission_of_a_channel() {
    // spec: RSP-527 — creator, team and managing teams, the owner; Admin does not get it.
    let admin = member(&[ROLE_ADMIN]);
    let ch = channel_scope(OTHER, &[5, 6]);
    assert!(!may_change(&admin, &ch, &[]));
    assert!(may_change(&member(&[]), &ch, &[6]));
    assert!(!may_change(&member(&[]), &ch, &[7]));
    assert!(may_change(&member(&[]), &channel_scope(ME, &[]), &[]));
    // A channel without a team: only its creator and the owner.
    assert!(!may_change(&admin, &channel_scope(OTHER, &[]), &[0]));
    // allowed() checks the feature first, then the data permission.
    assert_eq!(
        allowed(
            &member(&[ROLE_VIEWER]),
            Point::ChannelsManage,
            Some((&ch, &[6]))
        ),
        Err(Denied::Feature(Point::ChannelsManage))
    );
    assert_eq!(
        allowed(&admin, Point::ChannelsManage, Some((&ch, &[]))),
        Err(Denied::Data(ObjectKind::Channel))
    );
    assert_eq!(
        allowed(&member(&[]), Point::ChannelsManage, Some((&ch, &[5]))),
        Ok(())
    );
}

#[test]
fn data_permission_of_shared_integrations_and_teams() {
    // spec: RSP-527
    let admin = member(&[ROLE_ADMIN]);
    let shared = DataScope {
        kind: ObjectKind::SharedIntegration,
        creator_id: OTHER,
        team_ids: vec![5],
    };
    assert!(may_change(&admin, &shared, &[]));
    assert!(!may_change(&member(&[]), &shared, &[]));
    let unowned = DataScope {
        team_ids: vec![],
        ..shared.clone()
    };
    assert!(may_change(&member(&[]), &unowned, &[]));
    assert!(!may_change(&member(&[ROLE_VIEWER]), &unowned, &[]));
    let team = DataScope {
        kind: ObjectKind::Team,
        creator_id: OTHER,
        team_ids: vec![5],
    };
    assert!(may_change(&member(&[]), &team, &[5]));
    assert!(!may_change(&admin, &team, &[4]));
}

fn private_channel() -> ChannelAccess {
    ChannelAccess {
        channel_id: 1,
        is_private: true,
        creator_id: OTHER,
        team_id: 5,
        managing_team_ids: vec![6],
    }
}

#[test]
fn incidents_of_public_channels_and_global_incidents_are_listed_for_readers() {
    // spec: RSP-526, RSP-507
    let public = ChannelAccess {
        is_private: false,
        ..private_channel()
    };
    for roles in [&[][..], &[ROLE_VIEWER], &[ROLE_RESPONDER]] {
        assert!(listed(&member(roles), &[], Some(&public)));
        assert!(listed(&member(roles), &[], None));
    }
    // Without Incidents Read nothing is listed.
    let no_read = Actor::new(
        ME,
        false,
        &[100],
        &[CustomRole {
            role_id: 100,
            points: Points::of(&[Point::AuditRead]),
            enabled: true,
        }],
    );
    assert!(!listed(&no_read, &[], Some(&public)));
    assert!(!listed(&no_read, &[], None));
}

#[test]
fn incidents_of_private_channels_are_listed_only_for_their_people() {
    // spec: RSP-526, RSP-507
    let c = private_channel();
    assert!(!listed(&member(&[]), &[], Some(&c)), "a plain member");
    assert!(
        !listed(&member(&[ROLE_RESPONDER]), &[7], Some(&c)),
        "another team"
    );
    assert!(listed(&member(&[]), &[5], Some(&c)), "its team");
    assert!(
        listed(&member(&[ROLE_VIEWER]), &[6], Some(&c)),
        "a managing team"
    );
    assert!(listed(&member(&[ROLE_ADMIN]), &[], Some(&c)), "an Admin");
    assert!(listed(&Actor::owner(ME), &[], Some(&c)), "the owner");
    let mine = ChannelAccess {
        creator_id: ME,
        ..c.clone()
    };
    assert!(listed(&member(&[]), &[], Some(&mine)), "its creator");
    // Teams are needed only for members who are neither owner nor Admin.
    assert!(visibility_needs_teams(&member(&[])));
    assert!(!visibility_needs_teams(&member(&[ROLE_ADMIN])));
    assert!(!visibility_needs_teams(&Actor::owner(ME)));
}

#[test]
fn role_changes() {
    // spec: RSP-525 — Members Manage grants and revokes; anyone may drop their own roles,
    // nobody adds one to themselves.
    let admin = Actor::new(ME, false, &[ROLE_ADMIN], &[]);
    let plain = member(&[ROLE_RESPONDER]);
    assert_eq!(
        may_change_roles(&admin, OTHER, false, &[ROLE_VIEWER], &[ROLE_RESPONDER], &[]),
        Ok(())
    );
    assert_eq!(
        may_change_roles(&plain, OTHER, false, &[ROLE_VIEWER], &[ROLE_RESPONDER], &[]),
        Err(RoleChangeRefused::Denied(Denied::Feature(
            Point::MembersManage
        )))
    );
    assert_eq!(
        may_change_roles(&plain, ME, false, &[ROLE_RESPONDER], &[], &[]),
        Ok(())
    );
    assert_eq!(
        may_change_roles(&plain, ME, false, &[ROLE_RESPONDER], &[ROLE_ADMIN], &[]),
        Err(RoleChangeRefused::SelfGrant)
    );
    assert_eq!(
        may_change_roles(&admin, ME, false, &[ROLE_ADMIN], &[ROLE_ADMIN, 100], &[]),
        Err(RoleChangeRefused::SelfGrant)
    );
    // A Viewer dropping their only role would become a Responder (RSP-522): no downgrade.
    let viewer = member(&[ROLE_VIEWER]);
    assert_eq!(
        may_change_roles(&viewer, ME, false, &[ROLE_VIEWER], &[], &[]),
        Err(RoleChangeRefused::SelfGrant)
    );
    // Dropping Admin but keeping Viewer is a downgrade.
    assert_eq!(
        may_change_roles(
            &admin,
            ME,
            false,
            &[ROLE_ADMIN, ROLE_VIEWER],
            &[ROLE_VIEWER],
            &[]
        ),
        Ok(())
    );
    // spec: RSP-523 — the owner cannot be demoted, even by an Admin.
    assert_eq!(
        may_change_roles(&admin, OTHER, true, &[ROLE_ADMIN], &[ROLE_VIEWER], &[]),
        Err(RoleChangeRefused::OwnerDemoted)
    );
    assert_eq!(
        may_change_roles(
            &admin,
            OTHER,
            true,
            &[ROLE_ADMIN],
            &[ROLE_ADMIN, ROLE_VIEWER],
            &[]
        ),
        Ok(())
    );
}

#[test]
fn account_administration_is_the_owner_and_the_admin_role() {
    // spec: SVC-183 (admins may bulk-delete), RSP-523 (the owner), RSP-522 (Admin role)
    assert_eq!(account_admin(&Actor::owner(ME)), Ok(()));
    assert_eq!(
        account_admin(&Actor::new(ME, true, &[ROLE_VIEWER], &[])),
        Ok(())
    );
    assert_eq!(account_admin(&member(&[ROLE_ADMIN])), Ok(()));
    assert_eq!(account_admin(&member(&[ROLE_VIEWER, ROLE_ADMIN])), Ok(()));
    // Every point through a custom role is still not the Admin role.
    let all = CustomRole {
        role_id: 100,
        points: Points::all(),
        enabled: true,
    };
    for actor in [
        member(&[]),
        member(&[ROLE_RESPONDER]),
        member(&[ROLE_VIEWER]),
        Actor::new(ME, false, &[100], &[all]),
    ] {
        assert_eq!(account_admin(&actor), Err(Denied::AccountAdmin));
    }
    assert!(Denied::AccountAdmin.to_string().contains("Admin role"));
}
