//! Members and teams: the pure rules (response.md §1.3, §1.4, §2.30; openapi-compat.md 2.9,
//! 2.10) — field validation and normalisation, the phone mask, the invitation day.
//!
//! Every check returns an `InvalidParameter` [`ApiError`] whose message starts with the field
//! it refuses (`members[2].email must be …`), so the API can pass it on as it stands.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::error::ApiError;
use crate::model::Millis;

/// RSP §1.4: `team_name` 1..39 characters.
pub const TEAM_NAME_MAX: usize = 39;
/// RSP §1.4: `description` 0..500 characters.
pub const TEAM_DESCRIPTION_MAX: usize = 500;
/// RSP §1.3: `person_name` 1..40 characters.
pub const MEMBER_NAME_MAX: usize = 40;
/// RSP §1.3: `email` at most 254 characters.
pub const EMAIL_MAX: usize = 254;
/// Klaxon's bound on the free-form `ref_id` (an external system's id).
pub const REF_ID_MAX: usize = 128;
/// RSP-550: at most 20 invitees per request.
pub const INVITES_PER_REQUEST: usize = 20;
/// RSP-550: at most 200 invitations per account per calendar day (account time zone).
pub const INVITES_PER_DAY: i64 = 200;

/// Built-in feature-permission roles (response.md §1.5).
pub const ROLE_ADMIN: i64 = 2;
pub const ROLE_RESPONDER: i64 = 6;
pub const ROLE_VIEWER: i64 = 8;
pub const BUILTIN_ROLES: [i64; 3] = [ROLE_ADMIN, ROLE_RESPONDER, ROLE_VIEWER];

/// Member status values (response.md §1.3, openapi-compat.md 1.9).
pub const STATUS_PENDING: &str = "pending";
pub const STATUS_ENABLED: &str = "enabled";
pub const STATUS_DELETED: &str = "deleted";

fn invalid(field: &str, rule: &str) -> ApiError {
    ApiError::invalid(format!("{field} {rule}"))
}

/// A trimmed name of 1..=`max` characters (any script; counted in Unicode scalar values).
fn name(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if v.chars().count() > max {
        return Err(invalid(field, &format!("must be at most {max} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(v.to_string())
}

/// RSP §1.4: a team name, 1..39 characters after trimming.
pub fn team_name(field: &str, value: &str) -> Result<String, ApiError> {
    name(field, value, TEAM_NAME_MAX)
}

/// RSP §1.3: a member name, 1..40 characters after trimming.
pub fn member_name(field: &str, value: &str) -> Result<String, ApiError> {
    name(field, value, MEMBER_NAME_MAX)
}

/// RSP §1.4: a team description, at most 500 characters (may be empty).
pub fn team_description(field: &str, value: &str) -> Result<String, ApiError> {
    if value.chars().count() > TEAM_DESCRIPTION_MAX {
        return Err(invalid(
            field,
            &format!("must be at most {TEAM_DESCRIPTION_MAX} characters"),
        ));
    }
    Ok(value.to_string())
}

/// A `ref_id`: at most [`REF_ID_MAX`] characters, trimmed, may be empty.
pub fn ref_id(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.chars().count() > REF_ID_MAX {
        return Err(invalid(
            field,
            &format!("must be at most {REF_ID_MAX} characters"),
        ));
    }
    Ok(v.to_string())
}

/// RSP §1.3: an email address of at most 254 characters, `local@domain` with a dotted domain,
/// no spaces. Kept as given (trimmed); uniqueness compares it case-insensitively (RSP-552).
pub fn email(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if v.chars().count() > EMAIL_MAX {
        return Err(invalid(
            field,
            &format!("must be at most {EMAIL_MAX} characters"),
        ));
    }
    let bad = || invalid(field, &format!("is not a valid email address: {v:?}"));
    let Some((local, domain)) = v.rsplit_once('@') else {
        return Err(bad());
    };
    if local.is_empty()
        || local.len() > 64
        || local.contains('@')
        || v.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
    {
        return Err(bad());
    }
    Ok(v.to_string())
}

/// The default member name of an email invitation (RSP-550): the local part, cut to 40
/// characters.
pub fn name_from_email(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    local.chars().take(MEMBER_NAME_MAX).collect()
}

/// Calling codes of the regions a `country_code` may name: those of RSP-555 and a few more.
const REGIONS: &[(&str, &str)] = &[
    ("CN", "86"),
    ("US", "1"),
    ("CA", "1"),
    ("ID", "62"),
    ("DE", "49"),
    ("MY", "60"),
    ("AU", "61"),
    ("SG", "65"),
    ("TH", "66"),
    ("RU", "7"),
    ("KR", "82"),
    ("SA", "966"),
    ("VN", "84"),
    ("JP", "81"),
    ("GB", "44"),
    ("FR", "33"),
    ("IN", "91"),
    ("HK", "852"),
    ("TW", "886"),
];

/// A phone number normalised to E.164 (RSP-555), with the region it was given with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// `+` and 8..=15 digits.
    pub e164: String,
    /// The `country_code` as given (an ISO region such as `US`, or a calling code such as
    /// `+1`), upper-cased; empty when the number came in E.164 form without one.
    pub country_code: String,
}

/// RSP-555: accepts `+<calling code><number>` as it stands, or a national number together with
/// `country_code` (an ISO region of the table above, or a calling code `+86` / `86`). Spaces,
/// dashes, dots and parentheses are ignored; a national trunk `0` is dropped.
pub fn phone(field: &str, value: &str, country_code: &str) -> Result<Phone, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(field, "is required"));
    }
    let plus = v.starts_with('+');
    let body = if plus { &v[1..] } else { v };
    let mut digits = String::new();
    for c in body.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err(invalid(
                    field,
                    &format!("must contain only digits, optionally after a leading +: {v:?}"),
                ));
            }
        }
    }
    let cc = country_code.trim().to_ascii_uppercase();
    let full = if plus {
        digits
    } else {
        if cc.is_empty() {
            return Err(invalid(
                field,
                "must be in E.164 form (+<country code><number>) or come with country_code",
            ));
        }
        let calling = match cc.strip_prefix('+').unwrap_or(&cc) {
            n if !n.is_empty() && n.len() <= 3 && n.chars().all(|c| c.is_ascii_digit()) => {
                n.to_string()
            }
            region => match REGIONS.iter().find(|(r, _)| *r == region) {
                Some((_, code)) => (*code).to_string(),
                None => {
                    return Err(invalid(
                        "country_code",
                        &format!(
                            "is not a known region or calling code: {country_code:?} (give the phone in E.164 form instead)"
                        ),
                    ));
                }
            },
        };
        format!("{calling}{}", digits.trim_start_matches('0'))
    };
    if full.starts_with('0') || !(8..=15).contains(&full.len()) {
        return Err(invalid(
            field,
            &format!("is not a valid E.164 phone number: {v:?}"),
        ));
    }
    Ok(Phone {
        e164: format!("+{full}"),
        country_code: cc,
    })
}

/// The phone as `/member/list` shows it (openapi-compat.md 2.10): the first 3 and the last 4
/// characters kept, the middle replaced by `*` (`+8613800138000` → `+86*******8000`). Short
/// values are masked whole but for their last 2 characters.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    let n = chars.len();
    if n == 0 {
        return String::new();
    }
    let (head, tail) = if n >= 10 { (3, 4) } else { (0, 2.min(n)) };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < head || i >= n - tail { *c } else { '*' })
        .collect()
}

/// RSP §1.2: `en-US` or `zh-CN`.
pub fn locale(field: &str, value: &str) -> Result<String, ApiError> {
    match value.trim() {
        "en-US" | "zh-CN" => Ok(value.trim().to_string()),
        other => Err(invalid(
            field,
            &format!("must be en-US or zh-CN, not {other:?}"),
        )),
    }
}

/// An IANA time zone name known to the bundled tz database.
pub fn time_zone(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    match TimeZone::get(v) {
        Ok(_) => Ok(v.to_string()),
        Err(_) => Err(invalid(
            field,
            &format!("is not a known IANA time zone: {v:?}"),
        )),
    }
}

/// RSP §1.5, RSP-524: role ids to grant — the built-in 2, 6 and 8 (openapi-compat.md 5.2
/// item 11) or one of the account's `custom` roles. Duplicates are dropped; ascending.
pub fn role_ids(field: &str, ids: &[i64], custom: &[i64]) -> Result<Vec<i64>, ApiError> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !BUILTIN_ROLES.contains(id) && !custom.contains(id) {
            return Err(invalid(
                field,
                &format!(
                    "has an unknown role id {id} (2 Admin, 6 Responder, 8 Viewer, or a custom role)"
                ),
            ));
        }
        out.push(*id);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// RSP-550: the start of the calendar day that contains `now`, in the account's time zone
/// (UTC when the zone is unknown), in epoch milliseconds.
pub fn day_start(now: Millis, zone: &str) -> Millis {
    let tz = TimeZone::get(zone).unwrap_or(TimeZone::UTC);
    let Ok(ts) = Timestamp::from_millisecond(now) else {
        return now;
    };
    ts.to_zoned_datetime(tz)
        .start_of_day()
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    // spec: RSP §1.4 (team_name 1..39)
    #[test]
    fn team_names_are_1_to_39_characters() {
        assert_eq!(team_name("team_name", "  Ops  ").unwrap(), "Ops");
        assert!(team_name("team_name", &"é".repeat(39)).is_ok());
        let e = team_name("team_name", &"x".repeat(40)).unwrap_err();
        assert_eq!(e.message, "team_name must be at most 39 characters");
        assert_eq!(
            team_name("team_name", "   ").unwrap_err().message,
            "team_name is required"
        );
    }

    // spec: RSP §1.3 (person_name 1..40, email ≤ 254)
    #[test]
    fn member_names_and_emails() {
        assert!(member_name("member_name", &"名".repeat(40)).is_ok());
        assert!(member_name("member_name", &"x".repeat(41)).is_err());
        assert_eq!(
            email("email", " A.b@Example.com ").unwrap(),
            "A.b@Example.com"
        );
        for bad in [
            "a",
            "a@b",
            "@b.com",
            "a b@c.com",
            "a@b..com",
            "a@-b.com",
            "a@@b.com",
        ] {
            let e = email("members[0].email", bad).unwrap_err();
            assert!(e.message.starts_with("members[0].email "), "{bad}: {e:?}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(190));
        assert_eq!(long.len(), 259);
        assert!(email("email", &long).unwrap_err().message.contains("254"));
        assert_eq!(name_from_email("jane.doe@example.com"), "jane.doe");
    }

    // spec: RSP-555 (E.164)
    #[test]
    fn phones_normalise_to_e164() {
        let p = phone("phone", "+1 (415) 555-0100", "").unwrap();
        assert_eq!(p.e164, "+14155550100");
        assert_eq!(p.country_code, "");
        let p = phone("phone", "13800138000", "cn").unwrap();
        assert_eq!(
            (p.e164.as_str(), p.country_code.as_str()),
            ("+8613800138000", "CN")
        );
        assert_eq!(
            phone("phone", "030 1234567", "+49").unwrap().e164,
            "+49301234567"
        );
        assert!(phone("phone", "13800138000", "").is_err());
        assert!(phone("phone", "12ab", "US").is_err());
        assert!(phone("phone", "+123", "").is_err());
        assert!(phone("phone", "+1234567890123456", "").is_err());
        let e = phone("phone", "5550100", "ZZ").unwrap_err();
        assert!(e.message.starts_with("country_code "), "{e:?}");
    }

    // spec: openapi-compat 2.10 (phone masked in /member/list)
    #[test]
    fn phone_mask_keeps_prefix_and_last_digits() {
        assert_eq!(mask_phone("+8613800138000"), "+86*******8000");
        assert_eq!(mask_phone("+14155550100"), "+14*****0100");
        assert_eq!(mask_phone("12345"), "***45");
        assert_eq!(mask_phone(""), "");
    }

    // spec: RSP §1.5 (built-in roles 2, 6, 8), RSP-524 (custom roles)
    #[test]
    fn only_known_roles() {
        assert_eq!(role_ids("role_ids", &[8, 2, 8], &[]).unwrap(), vec![2, 8]);
        assert!(
            role_ids("role_ids", &[5], &[])
                .unwrap_err()
                .message
                .contains('5')
        );
        assert_eq!(
            role_ids("role_ids", &[101, 8], &[101]).unwrap(),
            vec![8, 101]
        );
        assert!(role_ids("role_ids", &[102], &[101]).is_err());
        assert!(locale("locale", "zh-CN").is_ok());
        assert!(locale("locale", "fr-FR").is_err());
        assert!(time_zone("time_zone", "Asia/Shanghai").is_ok());
        assert!(time_zone("time_zone", "Mars/Base").is_err());
    }

    // spec: RSP-550 (calendar day in the account time zone)
    #[test]
    fn invitation_day_starts_at_local_midnight() {
        // 2023-11-14T22:13:20Z is 2023-11-15 06:13:20 in Shanghai.
        let now = 1_700_000_000_000;
        assert_eq!(day_start(now, "UTC"), 1_699_920_000_000);
        assert_eq!(day_start(now, "Asia/Shanghai"), 1_699_977_600_000);
        assert_eq!(day_start(now, "Nowhere/Else"), 1_699_920_000_000);
    }
}
