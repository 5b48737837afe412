//! Staff-assisted ownership transfer (SVC-004, SVC-003): staff attach the supporting
//! documents, the current owner is told, and the transfer takes effect 7 days after that
//! notice unless the owner confirms earlier; an objection within those days stops it until
//! staff resume it with a new notice *(decision)*. Pure: the caller passes the time in.

use jiff::{SignedDuration, Timestamp};

use crate::error::{Result, SaasError};

/// SVC-004: days between the owner's notice and the transfer taking effect.
pub const NOTICE_DAYS: i64 = 7;

/// Where a transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Takes effect at `effective_at` unless the owner objects.
    Pending,
    /// The owner objected: stopped until staff resume it.
    Objected,
    Done,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Objected => "objected",
            Status::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Result<Status> {
        match text {
            "pending" => Ok(Status::Pending),
            "objected" => Ok(Status::Objected),
            "done" => Ok(Status::Done),
            other => Err(SaasError::invalid(
                "status",
                format!("{other:?} is not a transfer status"),
            )),
        }
    }
}

/// The member a transfer names, as the store knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub member_id: i64,
    pub is_owner: bool,
    /// `enabled` for an active member.
    pub status: String,
}

/// SVC-003/004: the new owner must be an active member other than the owner; supporting
/// documents are required.
pub fn check_request(target: &Target, documents: &str) -> Result<String> {
    if target.is_owner {
        return Err(SaasError::invalid(
            "to-member",
            "this member already owns the tenant",
        ));
    }
    if target.status != "enabled" {
        return Err(SaasError::invalid(
            "to-member",
            format!(
                "the new owner must be an active member (this one is {})",
                target.status
            ),
        ));
    }
    let docs = documents.trim();
    if docs.is_empty() {
        return Err(SaasError::invalid(
            "documents",
            "a staff-assisted transfer needs the supporting documents' references",
        ));
    }
    if docs.chars().count() > 2000 {
        return Err(SaasError::invalid("documents", "at most 2000 characters"));
    }
    Ok(docs.to_string())
}

/// SVC-004: the transfer takes effect 7 days (× 24 h) after the owner's notice.
pub fn effective_at(notice_at: Timestamp) -> Result<Timestamp> {
    Ok(notice_at.checked_add(SignedDuration::from_hours(NOTICE_DAYS * 24))?)
}

/// What staff or the owner may do with a transfer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The owner confirms early: it takes effect at once.
    Confirm,
    /// The owner objects within the notice period.
    Object,
    /// Staff reviewed an objection and resume the transfer with a new notice.
    Resume,
    /// The transfer job completes a pending transfer whose date has come.
    Complete,
}

/// SVC-004: whether `action` may be taken on a transfer in `status` that takes effect at
/// `effective_at`.
pub fn allowed(
    status: Status,
    effective_at: Timestamp,
    action: Action,
    now: Timestamp,
) -> Result<()> {
    let ok = match (status, action) {
        (Status::Pending, Action::Confirm) => true,
        (Status::Pending, Action::Object) => now < effective_at,
        (Status::Objected, Action::Resume) => true,
        (Status::Pending, Action::Complete) => now >= effective_at,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(SaasError::refused(
            "SVC-004",
            format!(
                "{action:?} is not possible on a transfer that is {}{}",
                status.as_str(),
                if status == Status::Pending && action == Action::Object {
                    " and whose notice period is over"
                } else {
                    ""
                }
            ),
        ))
    }
}

/// SVC-004: the previous owner becomes an Admin (role id 2, `Account.Admin`); other roles
/// are kept.
pub fn previous_owner_roles(mut role_ids: Vec<i64>) -> Vec<i64> {
    if !role_ids.contains(&2) {
        role_ids.push(2);
    }
    role_ids.sort_unstable();
    role_ids
}

/// The current owner's notice of a transfer (SVC-004).
pub fn notice(
    transfer_id: i64,
    new_owner: &str,
    documents: &str,
    effective_at: Timestamp,
) -> (String, String) {
    let when = effective_at.strftime("%Y-%m-%d %H:%M UTC");
    (
        format!("Ownership of your organisation is being transferred (transfer {transfer_id})"),
        format!(
            "The operator's staff started transferring the ownership of your organisation to \
             {new_owner}, on the strength of: {documents}.\n\
             The transfer takes effect on {when}. You become an Admin then.\n\
             To object, write to support before {when} quoting transfer {transfer_id}; an \
             objection stops the transfer until staff review it. You may also confirm it to \
             make it take effect at once.\n"
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_new_owner_is_an_active_member_and_documents_are_required() {
        // spec: SVC-004 (staff attach supporting-document references), SVC-003
        let member = Target {
            member_id: 5,
            is_owner: false,
            status: "enabled".into(),
        };
        assert_eq!(check_request(&member, " deed 7 ").unwrap(), "deed 7");
        assert!(check_request(&member, " ").is_err());
        let owner = Target {
            is_owner: true,
            ..member.clone()
        };
        assert!(check_request(&owner, "deed").is_err());
        let disabled = Target {
            status: "disabled".into(),
            ..member
        };
        assert!(check_request(&disabled, "deed").is_err());
    }

    #[test]
    fn a_transfer_takes_effect_seven_days_after_the_notice_unless_objected() {
        // spec: SVC-004 (effect 7 days after the notice unless confirmed earlier; an
        // objection within those 7 days stops it until staff review again)
        let notice_at = t("2025-05-01T10:00:00Z");
        let eff = effective_at(notice_at).unwrap();
        assert_eq!(eff, t("2025-05-08T10:00:00Z"));
        let before = t("2025-05-08T09:59:59Z");
        assert!(allowed(Status::Pending, eff, Action::Complete, before).is_err());
        assert!(allowed(Status::Pending, eff, Action::Complete, eff).is_ok());
        assert!(allowed(Status::Pending, eff, Action::Confirm, before).is_ok());
        assert!(allowed(Status::Pending, eff, Action::Object, before).is_ok());
        let late = allowed(Status::Pending, eff, Action::Object, eff).unwrap_err();
        assert!(late.to_string().contains("notice period is over"), "{late}");
        assert!(allowed(Status::Objected, eff, Action::Complete, eff).is_err());
        assert!(allowed(Status::Objected, eff, Action::Confirm, before).is_err());
        assert!(allowed(Status::Objected, eff, Action::Resume, eff).is_ok());
        assert!(allowed(Status::Done, eff, Action::Resume, eff).is_err());
        assert_eq!(previous_owner_roles(vec![6]), vec![2, 6]);
        assert_eq!(previous_owner_roles(vec![2]), vec![2]);
        let (subject, text) = notice(3, "new@example.com", "deed 7", eff);
        assert!(subject.contains("transfer 3"), "{subject}");
        assert!(
            text.contains("2025-05-08 10:00 UTC") && text.contains("deed 7"),
            "{text}"
        );
    }
}
