//! Members and persons over the Open API (openapi-compat.md 2.10; response.md §1.3,
//! RSP-550 … RSP-553): `/member/list`, `/member/invite`, `/member/delete`,
//! `/member/info/reset` and `/person/infos`.
//!
//! `/member/delete` and `/member/info/reset` address a member by `member_id`, else
//! `member_name`, else `email`, else `phone` (with `country_code`), else `ref_id`. The changes
//! of `/member/info/reset` travel in `updates` (`member_name`, `email`, `phone`,
//! `country_code`, `locale`, `time_zone`, `ref_id`), as the Terraform provider sends them.
//! Phones are masked on the way out (`/member/list`, `/person/infos`).

use klaxon_core::directory as rules;
use klaxon_core::error::{ApiError, ErrorCode};
use klaxon_store::{
    Account, MemberFilter, MemberKey, MemberOrder, MemberUpdate, NewMember, Person,
};
use serde_json::{Map, Value, json};

use super::teams::{MAX_BATCH, id_list, optional_id, page_json, paging, refused, store_err};
use super::{Args, Caller};
use crate::state::AppState;
use crate::wire;

async fn account(state: &AppState, caller: &Caller) -> Result<Account, ApiError> {
    state
        .store
        .account(caller.account_id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| ApiError::new(ErrorCode::ResourceNotFound, "account not found"))
}

/// A `/member/list` item (openapi-compat.md 2.10): the phone masked; the verification flags
/// let a console warn about unverified addresses (RSP-551). `person_id` is the same number as
/// `member_id` (openapi-compat.md 1.3: one id space), as on `/member/info`.
fn member_json(p: &Person) -> Value {
    json!({
        "member_id": p.member_id,
        "person_id": p.member_id,
        "member_name": p.member_name,
        "email": p.email,
        "phone": rules::mask_phone(&p.phone),
        "country_code": p.country_code,
        "status": p.status,
        "account_role_ids": p.role_ids,
        "is_account_owner": p.is_owner,
        "is_external": false,
        "ref_id": p.ref_id,
        "locale": p.locale,
        "time_zone": p.time_zone,
        "avatar": "",
        "email_verified": p.email_verified,
        "phone_verified": p.phone_verified,
        "created_at": wire::secs(p.created_at),
        "updated_at": wire::secs(p.updated_at),
    })
}

/// A `/person/infos` item (response.md §1.3: persons keep `person_id`/`person_name`).
fn person_json(p: &Person) -> Value {
    json!({
        "person_id": p.member_id,
        "person_name": p.member_name,
        "email": p.email,
        "phone": rules::mask_phone(&p.phone),
        "avatar": "",
        "status": p.status,
        "as": "member",
    })
}

pub async fn list(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let (p, limit) = paging(args, 100)?;
    let orderby = match args.str("orderby")?.as_deref() {
        None | Some("created_at") => MemberOrder::CreatedAt,
        Some("updated_at") => MemberOrder::UpdatedAt,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "orderby must be created_at or updated_at, not {other:?}"
            )));
        }
    };
    let filter = MemberFilter {
        p,
        limit,
        query: args.str("query")?.map(|q| q.trim().to_string()),
        role_id: optional_id(args, "role_id")?,
        orderby,
        asc: args.bool("asc")?.unwrap_or(false),
    };
    let page = state
        .store
        .list_members(caller.account_id, &filter)
        .await
        .map_err(store_err)?;
    let items = page.items.iter().map(member_json).collect();
    Ok(page_json(&page, items, p, limit))
}

pub async fn person_infos(
    state: &AppState,
    caller: &Caller,
    args: &Args,
) -> Result<Value, ApiError> {
    let ids = id_list(args, "person_ids")?;
    if ids.is_empty() {
        return Err(ApiError::invalid("person_ids is required"));
    }
    if ids.len() > MAX_BATCH {
        return Err(ApiError::invalid(format!(
            "person_ids must hold at most {MAX_BATCH} ids"
        )));
    }
    let people = state
        .store
        .persons(caller.account_id, &ids)
        .await
        .map_err(store_err)?;
    let items: Vec<Value> = people.iter().map(person_json).collect();
    Ok(json!({ "items": items }))
}

/// A string field of a nested object; `""`/`null`/absent read as absent.
fn field(obj: &Map<String, Value>, name: &str, path: &str) -> Result<Option<String>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("{path}.{name} must be a string"))),
    }
}

/// `custom`: the ids of the account's custom roles (RSP-524), which invitations may grant too.
fn invitee(v: &Value, i: usize, account: &Account, custom: &[i64]) -> Result<NewMember, ApiError> {
    let path = format!("members[{i}]");
    let Some(obj) = v.as_object() else {
        return Err(ApiError::invalid(format!("{path} must be an object")));
    };
    let email = match field(obj, "email", &path)? {
        Some(e) => rules::email(&format!("{path}.email"), &e)?,
        None => String::new(),
    };
    let country_code = field(obj, "country_code", &path)?.unwrap_or_default();
    let phone = match field(obj, "phone", &path)? {
        Some(p) => Some(rules::phone(&format!("{path}.phone"), &p, &country_code)?),
        None => None,
    };
    if email.is_empty() && phone.is_none() {
        return Err(ApiError::invalid(format!(
            "{path}: email or phone is required"
        )));
    }
    // RSP-550: the name defaults to the email's local part.
    let member_name = match field(obj, "member_name", &path)? {
        Some(n) => rules::member_name(&format!("{path}.member_name"), &n)?,
        None if !email.is_empty() => rules::member_name(
            &format!("{path}.member_name"),
            &rules::name_from_email(&email),
        )?,
        None => {
            return Err(ApiError::invalid(format!(
                "{path}.member_name is required for a phone invitation"
            )));
        }
    };
    let role_ids = match obj.get("role_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| {
                r.as_i64().ok_or_else(|| {
                    ApiError::invalid(format!("{path}.role_ids must be an array of integers"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "{path}.role_ids must be an array of integers"
            )));
        }
    };
    let mut role_ids = rules::role_ids(&format!("{path}.role_ids"), &role_ids, custom)?;
    if role_ids.is_empty() {
        // RSP-550: an API invitation without roles grants Viewer.
        role_ids.push(rules::ROLE_VIEWER);
    }
    let locale = match field(obj, "locale", &path)? {
        Some(l) => rules::locale(&format!("{path}.locale"), &l)?,
        None => account.locale.clone(),
    };
    let time_zone = match field(obj, "time_zone", &path)? {
        Some(z) => rules::time_zone(&format!("{path}.time_zone"), &z)?,
        None => account.time_zone.clone(),
    };
    let ref_id = match field(obj, "ref_id", &path)? {
        Some(r) => rules::ref_id(&format!("{path}.ref_id"), &r)?,
        None => String::new(),
    };
    let (phone, country_code) = match phone {
        Some(p) => (p.e164, p.country_code),
        None => (String::new(), String::new()),
    };
    Ok(NewMember {
        member_name,
        email,
        phone,
        country_code,
        role_ids,
        locale,
        time_zone,
        ref_id,
    })
}

pub async fn invite(state: &AppState, caller: &Caller, args: &Args) -> Result<Value, ApiError> {
    let members = match args.raw().get("members") {
        None | Some(Value::Null) => return Err(ApiError::invalid("members is required")),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::invalid("members must be an array")),
    };
    if members.is_empty() {
        return Err(ApiError::invalid("members is required"));
    }
    if members.len() > rules::INVITES_PER_REQUEST {
        return Err(ApiError::invalid(format!(
            "members must hold at most {} invitees per request",
            rules::INVITES_PER_REQUEST
        )));
    }
    let account = account(state, caller).await?;
    let custom: Vec<i64> = state
        .store
        .custom_roles(caller.account_id, &[])
        .await
        .map_err(store_err)?
        .iter()
        .map(|r| r.role_id)
        .collect();
    let invitees = members
        .iter()
        .enumerate()
        .map(|(i, v)| invitee(v, i, &account, &custom))
        .collect::<Result<Vec<_>, _>>()?;
    let now = state.clock.now();
    let day_start = rules::day_start(now, &account.time_zone);
    let people = state
        .store
        .invite_members(caller.account_id, &invitees, now, day_start)
        .await
        .map_err(store_err)?
        .map_err(refused)?;
    let items: Vec<Value> = people
        .iter()
        .map(|p| json!({ "member_id": p.member_id, "member_name": p.member_name }))
        .collect();
    Ok(json!({ "items": items }))
}

/// `member_id` > `member_name` > `email` > `phone` > `ref_id` (openapi-compat.md 2.10).
fn member_key(args: &Args) -> Result<MemberKey, ApiError> {
    if let Some(id) = optional_id(args, "member_id")? {
        return Ok(MemberKey::Id(id));
    }
    if let Some(n) = args.str("member_name")? {
        return Ok(MemberKey::Name(rules::member_name("member_name", &n)?));
    }
    if let Some(e) = args.str("email")? {
        return Ok(MemberKey::Email(rules::email("email", &e)?));
    }
    if let Some(p) = args.str("phone")? {
        let cc = args.str("country_code")?.unwrap_or_default();
        return Ok(MemberKey::Phone(rules::phone("phone", &p, &cc)?.e164));
    }
    if let Some(r) = args.str("ref_id")? {
        return Ok(MemberKey::RefId(rules::ref_id("ref_id", &r)?));
    }
    Err(ApiError::invalid(
        "member_id, member_name, email, phone or ref_id is required",
    ))
}

pub async fn delete(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let key = member_key(args)?;
    state
        .store
        .delete_member(caller.account_id, &key, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(refused)?;
    Ok(())
}

fn updates(args: &Args) -> Result<MemberUpdate, ApiError> {
    let obj = match args.raw().get("updates") {
        None | Some(Value::Null) => return Err(ApiError::invalid("updates is required")),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(ApiError::invalid("updates must be an object")),
    };
    let path = "updates";
    let country_code = field(obj, "country_code", path)?.unwrap_or_default();
    let update = MemberUpdate {
        member_name: field(obj, "member_name", path)?
            .map(|n| rules::member_name("updates.member_name", &n))
            .transpose()?,
        email: field(obj, "email", path)?
            .map(|e| rules::email("updates.email", &e))
            .transpose()?,
        phone: field(obj, "phone", path)?
            .map(|p| rules::phone("updates.phone", &p, &country_code))
            .transpose()?
            .map(|p| (p.e164, p.country_code)),
        locale: field(obj, "locale", path)?
            .map(|l| rules::locale("updates.locale", &l))
            .transpose()?,
        time_zone: field(obj, "time_zone", path)?
            .map(|z| rules::time_zone("updates.time_zone", &z))
            .transpose()?,
        ref_id: field(obj, "ref_id", path)?
            .map(|r| rules::ref_id("updates.ref_id", &r))
            .transpose()?,
    };
    let nothing = update.member_name.is_none()
        && update.email.is_none()
        && update.phone.is_none()
        && update.locale.is_none()
        && update.time_zone.is_none()
        && update.ref_id.is_none();
    if nothing {
        return Err(ApiError::invalid(
            "updates must change at least one of member_name, email, phone, locale, time_zone, ref_id",
        ));
    }
    Ok(update)
}

pub async fn reset(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    let key = member_key(args)?;
    let update = updates(args)?;
    state
        .store
        .reset_member(caller.account_id, &key, &update, state.clock.now())
        .await
        .map_err(store_err)?
        .map_err(refused)?;
    Ok(())
}

/// `/member/self/reset` (a Klaxon extension, for the console's personal settings): the caller
/// changes their own name, language or time zone. Unlike `/member/info/reset` it needs no
/// `Members Manage` — a member's own display preferences are theirs (response.md §1.3). Email
/// and phone are refused here: RSP-333 allows the member to change them only after entering a
/// verification code (`contacts`).
pub async fn self_reset(state: &AppState, caller: &Caller, args: &Args) -> Result<(), ApiError> {
    if caller.account_key {
        return Err(ApiError::invalid(
            "app_key: an account-level APP key belongs to no member",
        ));
    }
    let update = updates(args)?;
    if update.email.is_some() {
        return Err(ApiError::invalid(
            "updates.email: changing your email needs a verification code (RSP-333): /member/self/contact/code, then /member/self/contact/verify",
        ));
    }
    if update.phone.is_some() {
        return Err(ApiError::invalid(
            "updates.phone: changing your phone needs a verification code (RSP-333): /member/self/contact/code, then /member/self/contact/verify",
        ));
    }
    if update.ref_id.is_some() {
        return Err(ApiError::invalid(
            "updates.ref_id: only an administrator may set a member's ref_id (/member/info/reset)",
        ));
    }
    state
        .store
        .reset_member(
            caller.account_id,
            &MemberKey::Id(caller.member_id),
            &update,
            state.clock.now(),
        )
        .await
        .map_err(store_err)?
        .map_err(refused)?;
    Ok(())
}

/// The caller's own contact methods for `/member/info`: phone (masked, as everywhere on the
/// wire) and whether each address is verified (RSP-551, RSP-333).
pub async fn own_contacts(state: &AppState, caller: &Caller) -> Result<Value, ApiError> {
    let people = state
        .store
        .persons(caller.account_id, &[caller.member_id])
        .await
        .map_err(store_err)?;
    Ok(match people.first() {
        Some(p) => json!({
            "phone": rules::mask_phone(&p.phone),
            "country_code": p.country_code,
            "email_verified": p.email_verified,
            "phone_verified": p.phone_verified,
        }),
        None => json!({}),
    })
}
