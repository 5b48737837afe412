//! `klaxon admin staff …` and `klaxon admin lawful-request …` (service-agreement.md §15;
//! docs/saas.md "Operator access"): the operator's staff identities, whose tokens
//! authenticate the operator API, and the lawful-request register kept by staff `legal`
//! (SVC-224/225). SaaS mode only: a self-hosted install has no staff.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use jiff::Timestamp;
use jiff::civil::Date;
use klaxon_saas::grant::StaffRole;
use klaxon_saas::lawful::{self, NonDisclosure, NoticeDecision};
use klaxon_store::{Disclosure, NewLawfulRequest, SaasSettings, StaffAccess, Store, TableClass};
use sha2::{Digest, Sha256};

use crate::Common;

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Adds a staff member and prints their token once (it is stored hashed).
    Add {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        name: String,
        /// `support` or `legal`.
        #[arg(long)]
        role: String,
        /// Who does this, for the audit trail (default: `cli:$USER`).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Lists the staff members (never their tokens).
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revokes a staff member: their token stops working on the next call.
    Revoke {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        id: i64,
    },
}

#[derive(Subcommand)]
pub enum LawfulCommand {
    /// Records a request from an authority (SVC-224).
    Record {
        #[command(flatten)]
        common: Common,
        /// The tenant concerned.
        #[arg(long)]
        account: i64,
        /// The staff member (role `legal`) who records it.
        #[arg(long)]
        staff: i64,
        #[arg(long)]
        authority: String,
        #[arg(long)]
        legal_basis: String,
        /// The authority's reference number.
        #[arg(long)]
        reference: String,
        /// Date received (YYYY-MM-DD).
        #[arg(long)]
        received: Date,
        #[arg(long)]
        scope_requested: String,
        /// A non-disclosure order exists: the disclosure's records stay hidden from the
        /// tenant until it ends or lapses.
        #[arg(long)]
        nondisclosure: bool,
        /// When the order ends (RFC 3339); without it the order holds until `lapse`.
        #[arg(long, requires = "nondisclosure")]
        nondisclosure_until: Option<Timestamp>,
        /// Telling the tenant (SVC-225): `before`, `after` or `forbidden`.
        #[arg(long)]
        notice: String,
        /// Date the tenant was told (YYYY-MM-DD), if already.
        #[arg(long)]
        notified_on: Option<Date>,
    },
    /// Lists the register with each forbidden notice's next review date.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        account: Option<i64>,
    },
    /// Runs the disclosure: writes the requested tables of the tenant to a package file,
    /// records what was disclosed with the package's SHA-256, and logs the reads in the
    /// tenant's audit log (hidden while a non-disclosure order is in force).
    Disclose {
        #[command(flatten)]
        common: Common,
        /// The register entry.
        #[arg(long)]
        id: i64,
        /// The staff member (role `legal`) who runs it.
        #[arg(long)]
        staff: i64,
        /// Tables to disclose, comma-separated (exported tables, e.g. incidents,alerts).
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        /// Only rows whose time (`created_at`, else `start_time`) is at or after this.
        #[arg(long)]
        from: Option<Timestamp>,
        /// Only rows whose time is before this.
        #[arg(long)]
        to: Option<Timestamp>,
        /// Who approved the disclosure, comma-separated.
        #[arg(long)]
        approvers: String,
        /// How the package is handed over (e.g. "encrypted media by courier").
        #[arg(long)]
        method: String,
        /// Where to write the package (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Records that a non-disclosure order lapsed now: the disclosure's records become
    /// visible in the tenant's audit log.
    Lapse {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        id: i64,
    },
}

pub(crate) async fn open(common: &Common) -> anyhow::Result<(Store, SaasSettings)> {
    let config = common.load()?;
    let Some(settings) = config
        .deployment
        .saas_settings()
        .map_err(anyhow::Error::msg)?
    else {
        bail!(
            "operator staff do not exist in self-hosted mode (set deployment.mode = \"saas\"; see docs/saas.md)"
        );
    };
    Ok((klaxon_server::open_store(&config).await?, settings))
}

fn actor_of(given: &Option<String>) -> anyhow::Result<String> {
    let actor = given.clone().unwrap_or_else(|| {
        format!(
            "cli:{}",
            std::env::var("USER").unwrap_or_else(|_| "operator".into())
        )
    });
    if actor.trim().is_empty() {
        bail!("--actor must not be empty");
    }
    Ok(actor)
}

fn iso(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub async fn staff(cmd: StaffCommand) -> anyhow::Result<()> {
    match cmd {
        StaffCommand::Add {
            common,
            name,
            role,
            actor,
        } => {
            let role = StaffRole::parse(&role)?;
            let name = lawful::required("name", &name, 200)?;
            let actor = actor_of(&actor)?;
            let (store, _) = open(&common).await?;
            let (id, token) = store
                .staff_add(&name, role, &actor, Timestamp::now().as_millisecond())
                .await?;
            println!("staff member {id} ({name}, {})", role.as_str());
            println!("token: {token}");
            println!("the token is shown only now; it is stored hashed");
            store.close().await;
        }
        StaffCommand::List { common } => {
            let (store, _) = open(&common).await?;
            for s in store.staff_list().await? {
                let status = if s.revoked_at == 0 {
                    "active".to_string()
                } else {
                    format!("revoked {}", iso(s.revoked_at))
                };
                println!(
                    "{}\t{}\t{}\tadded {} by {}\t{status}",
                    s.staff_id,
                    s.name,
                    s.role.as_str(),
                    iso(s.created_at),
                    s.created_by
                );
            }
            store.close().await;
        }
        StaffCommand::Revoke { common, id } => {
            let (store, _) = open(&common).await?;
            let done = store
                .staff_revoke(id, Timestamp::now().as_millisecond())
                .await?;
            store.close().await;
            if !done {
                bail!("--id {id}: no active staff member with this id");
            }
            println!("staff member {id} revoked");
        }
    }
    Ok(())
}

/// The staff member must exist, be active and hold the `legal` role (SVC-224).
async fn legal_staff(store: &Store, id: i64) -> anyhow::Result<()> {
    match store.staff(id).await? {
        Some(s) if s.revoked_at == 0 && s.role == StaffRole::Legal => Ok(()),
        Some(s) if s.revoked_at != 0 => bail!("--staff {id}: this staff member is revoked"),
        Some(_) => {
            bail!("--staff {id}: the lawful-request register is kept by staff with role legal")
        }
        None => bail!("--staff {id}: no such staff member"),
    }
}

pub async fn lawful_request(cmd: LawfulCommand) -> anyhow::Result<()> {
    match cmd {
        LawfulCommand::Record {
            common,
            account,
            staff,
            authority,
            legal_basis,
            reference,
            received,
            scope_requested,
            nondisclosure,
            nondisclosure_until,
            notice,
            notified_on,
        } => {
            let decision = NoticeDecision::parse(&notice)?;
            let req = NewLawfulRequest {
                account_id: account,
                authority: lawful::required("authority", &authority, 500)?,
                legal_basis: lawful::required("legal-basis", &legal_basis, 500)?,
                reference: lawful::required("reference", &reference, 200)?,
                received_on: received.to_string(),
                scope_requested: lawful::required("scope-requested", &scope_requested, 2000)?,
                nondisclosure,
                nondisclosure_until: nondisclosure_until.map_or(0, |t| t.as_millisecond()),
                notice_decision: decision.as_str().to_string(),
                notified_on: notified_on.map(|d| d.to_string()).unwrap_or_default(),
                recorded_by: staff,
            };
            if decision == NoticeDecision::Forbidden && notified_on.is_some() {
                bail!(
                    "--notified-on: the notice decision is forbidden, so the tenant was not told"
                );
            }
            let (store, _) = open(&common).await?;
            legal_staff(&store, staff).await?;
            if store.account(account).await?.is_none() {
                bail!("--account {account}: unknown account");
            }
            let id = store
                .lawful_record(&req, Timestamp::now().as_millisecond())
                .await?;
            store.close().await;
            println!("lawful request {id} recorded for account {account}");
            // SVC-225: a `before` notice was queued with the record (the store does it).
        }
        LawfulCommand::List { common, account } => {
            let (store, settings) = open(&common).await?;
            let now = Timestamp::now();
            let today = lawful::day_of(now, &settings.billing_tz);
            for r in store.lawful_list(account).await? {
                let q = &r.request;
                let decision = NoticeDecision::parse(&q.notice_decision)?;
                let received: Date = q
                    .received_on
                    .parse()
                    .with_context(|| format!("received date of request {}", r.request_id))?;
                let order = NonDisclosure {
                    until: (q.nondisclosure_until != 0)
                        .then(|| Timestamp::from_millisecond(q.nondisclosure_until))
                        .transpose()?,
                    lapsed_at: (r.nondisclosure_lapsed_at != 0)
                        .then(|| Timestamp::from_millisecond(r.nondisclosure_lapsed_at))
                        .transpose()?,
                };
                println!(
                    "request {} account {} authority {:?} basis {:?} reference {:?} received {}",
                    r.request_id,
                    q.account_id,
                    q.authority,
                    q.legal_basis,
                    q.reference,
                    q.received_on
                );
                println!("  scope requested: {}", q.scope_requested);
                println!(
                    "  non-disclosure order: {}",
                    match (q.nondisclosure, order.in_force(now)) {
                        (false, _) => "none".to_string(),
                        (true, true) => match order.until {
                            Some(u) => format!("in force until {u}"),
                            None => "in force (no end date)".to_string(),
                        },
                        (true, false) => "lapsed".to_string(),
                    }
                );
                println!(
                    "  tenant notice: {}{}",
                    decision.as_str(),
                    if q.notified_on.is_empty() {
                        String::new()
                    } else {
                        format!(", told on {}", q.notified_on)
                    }
                );
                if let Some(review) = lawful::next_review(decision, received, today)? {
                    println!("  next review: {review}");
                }
                if r.disclosed_at == 0 {
                    println!("  not disclosed");
                } else {
                    println!(
                        "  disclosed {} by {} (approved by {}): {}; package sha256 {}",
                        iso(r.disclosed_at),
                        r.disclosure_method,
                        r.approvers,
                        r.scope_disclosed,
                        r.package_sha256
                    );
                }
            }
            store.close().await;
        }
        LawfulCommand::Disclose {
            common,
            id,
            staff,
            tables,
            from,
            to,
            approvers,
            method,
            out,
        } => {
            let approvers = lawful::required("approvers", &approvers, 500)?;
            let method = lawful::required("method", &method, 500)?;
            if tables.is_empty() {
                bail!("--tables: name at least one table to disclose");
            }
            for t in &tables {
                let known = klaxon_store::EXPORT_TABLES
                    .iter()
                    .any(|(name, class)| name == t && matches!(class, TableClass::Exported { .. }));
                if !known {
                    bail!("--tables: {t} is not a table of tenant data");
                }
            }
            if let (Some(f), Some(t)) = (from, to)
                && f >= t
            {
                bail!("--to must be after --from");
            }
            let (store, _) = open(&common).await?;
            legal_staff(&store, staff).await?;
            let Some(request) = store.lawful_request(id).await? else {
                bail!("--id {id}: no such lawful request");
            };
            if request.disclosed_at != 0 {
                bail!(
                    "--id {id}: already disclosed at {}",
                    iso(request.disclosed_at)
                );
            }
            let account = request.request.account_id;
            let snapshot = store.export_snapshot(account).await?;
            let in_range = |row: &serde_json::Map<String, serde_json::Value>| {
                let at = row
                    .get("created_at")
                    .or_else(|| row.get("start_time"))
                    .and_then(serde_json::Value::as_i64);
                match at {
                    Some(ms) => {
                        from.is_none_or(|f| ms >= f.as_millisecond())
                            && to.is_none_or(|t| ms < t.as_millisecond())
                    }
                    None => from.is_none() && to.is_none(),
                }
            };
            let mut package = BTreeMap::new();
            let mut counts = Vec::new();
            let mut accesses = Vec::new();
            let now = Timestamp::now().as_millisecond();
            for t in snapshot
                .iter()
                .filter(|t| tables.iter().any(|n| n == t.table))
            {
                let rows: Vec<_> = t.rows.iter().filter(|r| in_range(r)).cloned().collect();
                counts.push(format!("{} {}", t.table, rows.len()));
                // The object ids of SVC-222: the table's own id column (`incidents` →
                // `incident_id`).
                let id_column = format!("{}_id", t.table.trim_end_matches('s'));
                let ids: Vec<String> = rows
                    .iter()
                    .filter_map(|r| r.get(&id_column))
                    .map(|v| match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                let mut object_ids = ids.join(",");
                if object_ids.len() > 4000 {
                    let mut end = 4000;
                    while !object_ids.is_char_boundary(end) {
                        end -= 1;
                    }
                    object_ids.truncate(end);
                }
                accesses.push(StaffAccess {
                    account_id: account,
                    at: now,
                    staff_id: staff,
                    grant_id: 0,
                    lawful_request_id: id,
                    operation: format!("{}:read:lawful_disclosure", t.table),
                    object_type: t.table.to_string(),
                    object_ids,
                    request_id: format!("lawful-{id}-{}", t.table),
                    ip: String::new(),
                    is_write: false,
                });
                package.insert(t.table.to_string(), rows);
            }
            let range = match (from, to) {
                (None, None) => "all time".to_string(),
                (f, t) => format!(
                    "{} to {}",
                    f.map_or("the start".into(), |f| f.to_string()),
                    t.map_or("now".into(), |t| t.to_string())
                ),
            };
            let body = serde_json::to_vec_pretty(&serde_json::json!({
                "lawful_request_id": id,
                "account_id": account,
                "reference": request.request.reference,
                "time_range": range,
                "tables": package,
            }))?;
            let sha = hex::encode(Sha256::digest(&body));
            std::fs::write(&out, &body)
                .with_context(|| format!("cannot write the package to {}", out.display()))?;
            let disclosure = Disclosure {
                approvers,
                scope_disclosed: format!("{}; {range}", counts.join(", ")),
                disclosed_at: now,
                method,
                package_sha256: sha.clone(),
            };
            if !store.lawful_disclose(id, &disclosure, &accesses).await? {
                bail!("--id {id}: already disclosed");
            }
            store.close().await;
            println!(
                "lawful request {id}: disclosed {}",
                disclosure.scope_disclosed
            );
            println!("package {} sha256 {sha}", out.display());
        }
        LawfulCommand::Lapse { common, id } => {
            let (store, _) = open(&common).await?;
            let done = store
                .lawful_lapse(id, Timestamp::now().as_millisecond())
                .await?;
            store.close().await;
            if !done {
                bail!("--id {id}: no non-disclosure order in force on this request");
            }
            println!(
                "lawful request {id}: the non-disclosure order lapsed; its records are visible to the tenant"
            );
        }
    }
    Ok(())
}
