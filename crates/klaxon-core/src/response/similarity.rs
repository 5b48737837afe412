//! Incident similarity and past incidents (response.md §2.26, RSP-450, RSP-451): a deterministic
//! baseline behind one function, so a learned model can replace it later.

use std::collections::BTreeSet;

use crate::model::{Incident, Millis, Progress};

/// Two incidents are similar above this score (RSP-450).
pub const SIMILAR_ABOVE: f64 = 0.9;
/// At most this many past incidents are shown (RSP-451).
pub const PAST_MAX: usize = 5;
/// Past incidents started at most this long before the incident (RSP-451).
pub const PAST_WINDOW_MS: Millis = 30 * 86_400_000;

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0x20000..=0x2FA1F) // CJK Extensions B–F and supplements
}

/// RSP-450 tokens: lower-cased runs of letters and digits, every CJK character on its own, each
/// maximal run of digits replaced by `<n>` (so `disk 91% on web-12` and `disk 95% on web-3`
/// tokenise alike).
pub fn tokens(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut current = String::new();
    let mut in_digits = false;
    let flush = |current: &mut String, out: &mut BTreeSet<String>| {
        if !current.is_empty() {
            out.insert(std::mem::take(current));
        }
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush(&mut current, &mut out);
            in_digits = false;
            out.insert(c.to_string());
        } else if c.is_alphanumeric() {
            if c.is_numeric() {
                if !in_digits {
                    current.push_str("<n>");
                    in_digits = true;
                }
            } else {
                in_digits = false;
                current.extend(c.to_lowercase());
            }
        } else {
            flush(&mut current, &mut out);
            in_digits = false;
        }
    }
    flush(&mut current, &mut out);
    out
}

/// The title's token-set signature and size, kept as columns so outlier detection can fetch
/// its candidates with an index. `sim > 0.9` needs `J(title) > 5/6`, and two different token
/// sets reach that only when their union has at least 7 tokens: below that, a similar title
/// has exactly the same signature.
pub fn title_signature(title: &str) -> (String, i64) {
    use sha2::{Digest, Sha256};
    let t = tokens(title);
    let mut h = Sha256::new();
    for tok in &t {
        h.update(tok.as_bytes());
        h.update([0x1f]);
    }
    let digest = h.finalize();
    (
        hex::encode(&digest[..8]),
        i64::try_from(t.len()).unwrap_or(i64::MAX),
    )
}

/// Token counts a title of `n` tokens can be similar to (RSP-450): `(lo, hi)` inclusive.
pub fn similar_token_counts(n: i64) -> (i64, i64) {
    // J ≤ min/max of the sizes, so min/max > 5/6.
    ((n * 5) / 6, (n * 6 + 4) / 5)
}

/// An incident's fingerprint with its title signature, computed once per incident so a batch
/// compares new incidents without tokenising them again.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub incident_id: String,
    pub channel_id: i64,
    pub start_time: Millis,
    /// When it was created, then its place in the batch that is creating it (0 once stored):
    /// the tie-break between incidents that started in the same second (`started_before`).
    pub created: (Millis, usize),
    pub sig: String,
    pub tokens: i64,
    pub fingerprint: Fingerprint,
}

impl Candidate {
    pub fn of(inc: &Incident) -> Candidate {
        let (sig, tokens) = title_signature(&inc.title);
        Candidate {
            incident_id: inc.incident_id.clone(),
            channel_id: inc.channel_id,
            start_time: inc.start_time,
            created: (inc.created_at, 0),
            sig,
            tokens,
            fingerprint: Fingerprint::of(inc),
        }
    }

    /// RSP-452 between two candidates: `other` started in the 30 days before `self` (an
    /// incident of the same second counts when it was created first, as RSP-451's past
    /// incidents do), in the same channel, and scores above 0.9. The title signature rules most pairs out first.
    pub fn is_similar_predecessor(&self, other: &Candidate) -> bool {
        let (lo, hi) = similar_token_counts(self.tokens);
        other.incident_id != self.incident_id
            && other.channel_id == self.channel_id
            && (other.start_time, other.created) < (self.start_time, self.created)
            && other.start_time >= self.start_time.saturating_sub(PAST_WINDOW_MS)
            && (other.sig == self.sig || (self.tokens >= 6 && (lo..=hi).contains(&other.tokens)))
            && similarity(&self.fingerprint, &other.fingerprint) > SIMILAR_ABOVE
    }
}

/// Outlier detection at creation (RSP-452): `rare` when no candidate (incidents of the channel
/// started in the 30 days before) scores above 0.9, else `frequent`.
pub fn frequency<'a>(
    x: &Incident,
    candidates: impl IntoIterator<Item = &'a Incident>,
) -> &'static str {
    let fx = Fingerprint::of(x);
    let from = x.start_time.saturating_sub(PAST_WINDOW_MS);
    let similar = candidates.into_iter().any(|y| {
        y.incident_id != x.incident_id
            && y.channel_id == x.channel_id
            && y.start_time >= from
            && y.start_time < x.start_time
            && similarity(&fx, &Fingerprint::of(y)) > SIMILAR_ABOVE
    });
    if similar { "frequent" } else { "rare" }
}

/// Jaccard index of two token sets; 1 when both are empty.
fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    let inter = a.intersection(b).count() as f64;
    let union = a.union(b).count() as f64;
    inter / union
}

/// The parts of an incident the score reads, tokenised once.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    title: BTreeSet<String>,
    description: BTreeSet<String>,
    service: Option<String>,
    resource: Option<String>,
}

impl Fingerprint {
    pub fn of(inc: &Incident) -> Fingerprint {
        Fingerprint::parts(&inc.title, &inc.description, &inc.labels)
    }

    pub fn parts(title: &str, description: &str, labels: &crate::model::Labels) -> Fingerprint {
        Fingerprint {
            title: tokens(title),
            description: tokens(description),
            service: labels.get("service").cloned(),
            resource: labels.get("resource").cloned(),
        }
    }
}

/// `sim(a, b) = 0.6·J(title) + 0.2·J(description) + 0.1·E(service) + 0.1·E(resource)`.
pub fn similarity(a: &Fingerprint, b: &Fingerprint) -> f64 {
    let e = |x: &Option<String>, y: &Option<String>| if x == y { 1.0 } else { 0.0 };
    0.6 * jaccard(&a.title, &b.title)
        + 0.2 * jaccard(&a.description, &b.description)
        + 0.1 * e(&a.service, &b.service)
        + 0.1 * e(&a.resource, &b.resource)
}

/// Whether `y` started before `x` (RSP-451). Event times are whole seconds (ING-029), so an
/// incident closed a moment after a like one started, and raised again in the same second,
/// would have the same start; the one created first is then the earlier one (without this,
/// an incident that comes straight back never shows its predecessor).
pub fn started_before(y: &Incident, x: &Incident) -> bool {
    y.start_time < x.start_time || (y.start_time == x.start_time && y.created_at < x.created_at)
}

/// RSP-451: among `candidates`, the closed incidents of `x`'s channel that started in the 30
/// days before it and score above 0.9, best first (more of root cause and resolution filled,
/// then higher score, then later start), at most 5. Global incidents have none.
pub fn past_incidents<'a>(x: &Incident, candidates: &'a [Incident]) -> Vec<(&'a Incident, f64)> {
    if x.channel_id == 0 {
        return Vec::new();
    }
    let fx = Fingerprint::of(x);
    let from = x.start_time.saturating_sub(PAST_WINDOW_MS);
    let mut found: Vec<(&Incident, f64)> = candidates
        .iter()
        .filter(|y| {
            y.incident_id != x.incident_id
                && y.channel_id == x.channel_id
                && y.progress == Progress::Closed
                && y.start_time >= from
                && started_before(y, x)
        })
        .map(|y| (y, similarity(&fx, &Fingerprint::of(y))))
        .filter(|(_, s)| *s > SIMILAR_ABOVE)
        .collect();
    let filled = |y: &Incident| {
        usize::from(!y.response.root_cause.trim().is_empty())
            + usize::from(!y.response.resolution.trim().is_empty())
    };
    found.sort_by(|(a, sa), (b, sb)| {
        filled(b)
            .cmp(&filled(a))
            .then(sb.total_cmp(sa))
            .then(b.start_time.cmp(&a.start_time))
    });
    found.truncate(PAST_MAX);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_follow_rsp_450() {
        // spec: RSP-450
        let t = tokens("Disk 91% full on web-12, CPU95high");
        let want: BTreeSet<String> = ["disk", "<n>", "full", "on", "web", "cpu<n>high"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(t, want);
        let cjk = tokens("磁盘满 web");
        assert!(
            cjk.contains("磁") && cjk.contains("盘") && cjk.contains("满") && cjk.contains("web")
        );
        assert!(tokens("").is_empty());
    }

    #[test]
    fn signatures_group_similar_short_titles() {
        // spec: RSP-450 (J(title) > 5/6 is needed for sim > 0.9)
        assert_eq!(
            title_signature("disk full on web-1").0,
            title_signature("Disk full on WEB-22").0
        );
        assert_ne!(
            title_signature("disk full").0,
            title_signature("disk empty").0
        );
        assert_eq!(title_signature("a b c").1, 3);
        assert_eq!(similar_token_counts(6), (5, 8));
    }

    #[test]
    fn score_weights() {
        // spec: RSP-450 (J = 1 for two empty sets; E counts equal absence)
        let a = Fingerprint {
            title: tokens("disk full on web-1"),
            description: tokens(""),
            service: Some("db".into()),
            resource: None,
        };
        let mut b = a.clone();
        b.title = tokens("disk full on web-2");
        assert!(
            (similarity(&a, &b) - 1.0).abs() < 1e-9,
            "digits do not matter"
        );
        b.service = Some("web".into());
        assert!((similarity(&a, &b) - 0.9).abs() < 1e-9);
        assert!(similarity(&a, &b) <= SIMILAR_ABOVE, "0.9 is not above 0.9");
    }
}
