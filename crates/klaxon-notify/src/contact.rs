//! Who a direct notification goes to, and why it cannot go (RSP-281, response.md 1.3, 1.17).

use klaxon_store::MemberContact;

/// Where a direct send goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Email { address: String, name: String },
    Phone { e164: String },
}

/// The address a direct channel uses for a member, or the `failed_reason` that stops the send.
///
/// - a member that is gone, pending or deleted gets nothing: `member_inactive` (1.3);
/// - e-mail needs an address (`contact_missing`) that is verified (`contact_unverified`);
/// - SMS and voice need a phone (`contact_missing`) that is verified (`contact_unverified`);
/// - app push needs a registered device (`no_device`): the delivery engine reads the
///   member's devices itself (`Deliverer::app_push`), so here it is always `no_device`;
/// - IM app direct messages need a linked identity: `app_not_linked`. The Slack, Feishu,
///   WeCom and Teams apps' links are read by the delivery engine (`Deliverer::slack_dm`,
///   `Deliverer::feishu_dm`, `Deliverer::wecom_dm`, `Deliverer::teams_dm`); DingTalk
///   cannot link yet.
pub fn resolve(channel: &str, member: Option<&MemberContact>) -> Result<Recipient, String> {
    let Some(m) = member.filter(|m| m.status == "enabled") else {
        return Err("member_inactive".into());
    };
    match channel {
        "email" => {
            if m.email.trim().is_empty() {
                Err("contact_missing".into())
            } else if !m.email_verified {
                Err("contact_unverified".into())
            } else {
                Ok(Recipient::Email {
                    address: m.email.clone(),
                    name: m.name.clone(),
                })
            }
        }
        "sms" | "voice" => {
            if m.phone.trim().is_empty() {
                Err("contact_missing".into())
            } else if !m.phone_verified {
                Err("contact_unverified".into())
            } else {
                Ok(Recipient::Phone {
                    e164: m.phone.clone(),
                })
            }
        }
        "app" => Err("no_device".into()),
        c if c.ends_with("_app") => Err("app_not_linked".into()),
        other => Err(format!("provider_error:unknown channel {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(status: &str, email: (&str, bool), phone: (&str, bool)) -> MemberContact {
        MemberContact {
            member_id: 7,
            name: "Ann".into(),
            status: status.into(),
            email: email.0.into(),
            email_verified: email.1,
            phone: phone.0.into(),
            phone_verified: phone.1,
        }
    }

    #[test]
    fn email_only_to_verified_addresses() {
        // spec: RSP-281, response.md 1.3 (email_verified)
        let ok = member("enabled", ("ann@example.com", true), ("", false));
        assert_eq!(
            resolve("email", Some(&ok)),
            Ok(Recipient::Email {
                address: "ann@example.com".into(),
                name: "Ann".into()
            })
        );
        let unverified = member("enabled", ("ann@example.com", false), ("", false));
        assert_eq!(
            resolve("email", Some(&unverified)),
            Err("contact_unverified".into())
        );
        let none = member("enabled", ("", false), ("+15550100", true));
        assert_eq!(resolve("email", Some(&none)), Err("contact_missing".into()));
    }

    #[test]
    fn sms_and_voice_only_to_verified_phones() {
        // spec: RSP-281, response.md 1.3 (phone_verified)
        let ok = member("enabled", ("a@x.io", true), ("+15550100", true));
        for ch in ["sms", "voice"] {
            assert_eq!(
                resolve(ch, Some(&ok)),
                Ok(Recipient::Phone {
                    e164: "+15550100".into()
                })
            );
        }
        let unverified = member("enabled", ("a@x.io", true), ("+15550100", false));
        assert_eq!(
            resolve("sms", Some(&unverified)),
            Err("contact_unverified".into())
        );
        let none = member("enabled", ("a@x.io", true), ("", false));
        assert_eq!(resolve("voice", Some(&none)), Err("contact_missing".into()));
    }

    #[test]
    fn inactive_members_never_receive_anything() {
        // spec: RSP-152 (pending members receive no notifications), response.md 1.3
        for status in ["pending", "deleted"] {
            let m = member(status, ("a@x.io", true), ("+15550100", true));
            for ch in ["email", "sms", "voice", "app", "feishu_app"] {
                assert_eq!(resolve(ch, Some(&m)), Err("member_inactive".into()));
            }
        }
        assert_eq!(resolve("email", None), Err("member_inactive".into()));
    }

    #[test]
    fn app_and_im_direct_messages_need_a_device_or_a_link() {
        // spec: RSP-281 (no_device, app_not_linked), RSP-332
        let m = member("enabled", ("a@x.io", true), ("+15550100", true));
        assert_eq!(resolve("app", Some(&m)), Err("no_device".into()));
        for ch in [
            "feishu_app",
            "dingtalk_app",
            "wecom_app",
            "slack_app",
            "teams_app",
        ] {
            assert_eq!(resolve(ch, Some(&m)), Err("app_not_linked".into()));
        }
    }
}
