//! Stage 6 of ingest.md §1.4 inside the processing transaction: the events of shared
//! integrations queued without a channel are routed (ING-091…094) and copied once per target
//! channel; from there on each copy is processed like any channel's event. Events queued with
//! a channel (dedicated integrations, ING-090; Nightingale's direct targets, ING-097) pass
//! through unchanged.
//!
//! Everything routing needs is read once per batch: the latest route version of each shared
//! integration in the batch (ING-095: the latest at processing time), which of the named
//! channels exist, and for recoveries the channels holding an active alert with their key
//! (ING-093).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use klaxon_core::ids::IdSource;
use klaxon_core::merge::Outcome;
use klaxon_core::model::{Millis, QueuedEvent};
use klaxon_core::noise::Explanation;
use klaxon_core::routing::{EventFields, Router, needs_routing};
use sqlx::AnyConnection;

use crate::Result;
use crate::noise::EventOutcome;

/// The batch after routing: the events to process, in arrival order with each routed event
/// followed by its copies, and the outcomes of events that reached no channel.
pub(crate) struct Routed {
    pub work: Vec<QueuedEvent>,
    pub no_route: Vec<EventOutcome>,
}

/// Routes the batch `queued` (see the module docs).
pub(crate) async fn route_batch(
    conn: &mut AnyConnection,
    queued: Vec<QueuedEvent>,
    ids: &mut impl IdSource,
    now: Millis,
) -> Result<Routed> {
    if !queued.iter().any(|q| needs_routing(&q.origin)) {
        return Ok(Routed {
            work: queued,
            no_route: Vec::new(),
        });
    }
    // What to read: per account, the shared integrations; per integration, the keys of its
    // recoveries.
    let mut integrations: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    let mut recovery_keys: BTreeMap<(i64, i64), BTreeSet<String>> = BTreeMap::new();
    for q in queued.iter().filter(|q| needs_routing(&q.origin)) {
        let o = &q.origin;
        integrations
            .entry(o.account_id)
            .or_default()
            .insert(o.integration_id);
        if !q.event.event_status.is_trigger() {
            recovery_keys
                .entry((o.account_id, o.integration_id))
                .or_default()
                .insert(q.event.alert_key.clone());
        }
    }
    let mut routers: HashMap<(i64, i64), Router> = HashMap::new();
    let mut holders: HashMap<(i64, i64), BTreeMap<String, Vec<i64>>> = HashMap::new();
    let mut existing: HashSet<(i64, i64)> = HashSet::new();
    for (account, ids) in &integrations {
        let ids: Vec<i64> = ids.iter().copied().collect();
        let latest = crate::routes::latest_of(conn, *account, &ids).await?;
        let mut named: BTreeSet<i64> = BTreeSet::new();
        for integration in &ids {
            let config = latest
                .get(integration)
                .map(|v| v.config.clone())
                .unwrap_or_default();
            named.extend(config.channel_ids());
            let (router, broken) = Router::compile_skipping(&config);
            for e in broken {
                tracing::warn!(
                    account = account,
                    integration = integration,
                    version = config.version,
                    error = %e,
                    "a stored route rule no longer compiles; it is skipped"
                );
            }
            routers.insert((*account, *integration), router);
            if let Some(keys) = recovery_keys.get(&(*account, *integration)) {
                let keys: Vec<String> = keys.iter().cloned().collect();
                let found = crate::routes::holders(conn, *account, *integration, &keys).await?;
                named.extend(found.values().flatten().copied());
                holders.insert((*account, *integration), found);
            }
        }
        let named: Vec<i64> = named.into_iter().collect();
        for id in crate::routes::existing_channels(conn, *account, &named).await? {
            existing.insert((*account, id));
        }
    }

    let mut work = Vec::with_capacity(queued.len());
    let mut no_route = Vec::new();
    // ING-093 within the batch: channels that an earlier trigger of this batch went to hold
    // (or will hold) its alert, though it is not in the database yet.
    let mut in_batch: HashMap<(i64, i64, String), Vec<i64>> = HashMap::new();
    for q in queued {
        let o = &q.origin;
        let identity = (o.account_id, o.integration_id, q.event.alert_key.clone());
        let is_trigger = q.event.event_status.is_trigger();
        if !needs_routing(o) {
            if is_trigger {
                remember(&mut in_batch, identity, &[o.channel_id]);
            }
            work.push(q);
            continue;
        }
        let key = (o.account_id, o.integration_id);
        let mut held: Vec<i64> = Vec::new();
        if !is_trigger {
            if let Some(found) = holders.get(&key).and_then(|h| h.get(&q.event.alert_key)) {
                held.extend(found);
            }
            // Duplicates are fine: the union removes them.
            if let Some(found) = in_batch.get(&identity) {
                held.extend(found);
            }
        }
        let account = o.account_id;
        let routed = match routers.get(&key) {
            Some(router) => router.route(&EventFields::of_queued(&q), &held, |id| {
                existing.contains(&(account, id))
            }),
            None => Default::default(),
        };
        if routed.targets.is_empty() {
            // ING-094: dropped with outcome `no_route` (channel 0).
            let why = Explanation {
                outcome: Some(Outcome::NoRoute),
                ..Explanation::default()
            };
            let id = klaxon_core::ids::object_id(now, ids.random8());
            no_route.push(EventOutcome::new(&q, &why, id, now));
            continue;
        }
        if is_trigger {
            remember(&mut in_batch, identity, &routed.targets);
        }
        for channel in routed.targets {
            let mut copy = q.clone();
            copy.origin.channel_id = channel;
            work.push(copy);
        }
    }
    Ok(Routed { work, no_route })
}

fn remember(
    map: &mut HashMap<(i64, i64, String), Vec<i64>>,
    key: (i64, i64, String),
    channels: &[i64],
) {
    let known = map.entry(key).or_default();
    for c in channels {
        if !known.contains(c) {
            known.push(*c);
        }
    }
}
