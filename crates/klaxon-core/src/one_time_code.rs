//! One-time codes sent to an e-mail address or a phone number to prove that whoever asks
//! holds it: registration (service-agreement.md SVC-001) and a member's change of contact
//! methods (response.md RSP-333). Pure: the store keeps the codes as salted hashes and
//! passes in what it has; time is passed in.

use jiff::{SignedDuration, Timestamp};

/// A one-time code proves the identifier for 10 minutes.
pub const CODE_TTL: SignedDuration = SignedDuration::from_mins(10);
/// Wrong guesses of one code before it is void: a 6-digit code then gives a guesser one
/// chance in 200,000 per code, and a new code costs one of [`CODES_PER_HOUR`].
pub const MAX_CODE_ATTEMPTS: i64 = 5;
/// Codes sent to one address per rolling hour (the per-address rate limit).
pub const CODES_PER_HOUR: i64 = 5;
/// The window of [`CODES_PER_HOUR`].
pub const CODE_WINDOW: SignedDuration = SignedDuration::from_hours(1);
/// Digits of a code: short enough to type from a phone.
pub const CODE_DIGITS: usize = 6;

/// A stored code as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeFacts {
    pub created_at: Timestamp,
    pub attempts: i64,
    pub used: bool,
}

/// Why a code is refused; every variant is an error naming the `code` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    /// No code was sent to the address (or every one is used).
    None,
    Expired,
    /// Too many wrong guesses: the code is void.
    Exhausted,
    /// Wrong; this many guesses are left.
    Wrong {
        left: i64,
    },
}

impl CodeRefusal {
    pub fn message(self) -> String {
        match self {
            CodeRefusal::None => {
                "no code was sent to this address or number, or it was already used; ask for a new one"
                    .into()
            }
            CodeRefusal::Expired => format!(
                "the code has expired (it works for {} minutes); ask for a new one",
                CODE_TTL.as_mins()
            ),
            CodeRefusal::Exhausted => {
                "too many wrong codes; this code no longer works, ask for a new one".into()
            }
            CodeRefusal::Wrong { left } => {
                format!("the code is not the one sent ({left} more tries for this code)")
            }
        }
    }
}

/// When a code sent at `created_at` stops working.
pub fn code_expires_at(created_at: Timestamp) -> Timestamp {
    created_at
        .saturating_add(CODE_TTL)
        .unwrap_or(Timestamp::MAX)
}

/// May the latest code of an address be tried at `now`? `matches` says whether the
/// given code equals it. A wrong guess uses one attempt (the caller records it).
pub fn check_code(
    latest: Option<&CodeFacts>,
    matches: bool,
    now: Timestamp,
) -> std::result::Result<(), CodeRefusal> {
    let Some(c) = latest.filter(|c| !c.used) else {
        return Err(CodeRefusal::None);
    };
    if now >= code_expires_at(c.created_at) {
        return Err(CodeRefusal::Expired);
    }
    if c.attempts >= MAX_CODE_ATTEMPTS {
        return Err(CodeRefusal::Exhausted);
    }
    if !matches {
        let left = MAX_CODE_ATTEMPTS - c.attempts - 1;
        return Err(if left <= 0 {
            CodeRefusal::Exhausted
        } else {
            CodeRefusal::Wrong { left }
        });
    }
    Ok(())
}

/// The per-address rate limit: `sent` are the creation times of the codes already sent to
/// the address. Answers when the next code may be sent, if not now.
pub fn next_code_allowed(sent: &[Timestamp], now: Timestamp) -> Option<Timestamp> {
    let window_start = now.saturating_sub(CODE_WINDOW).unwrap_or(Timestamp::MIN);
    let mut recent: Vec<Timestamp> = sent.iter().copied().filter(|t| *t > window_start).collect();
    if (recent.len() as i64) < CODES_PER_HOUR {
        return None;
    }
    recent.sort();
    let oldest = recent[recent.len() - CODES_PER_HOUR as usize];
    Some(oldest.saturating_add(CODE_WINDOW).unwrap_or(Timestamp::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    // spec: SVC-001, RSP-333 (10 minutes, 5 tries, 5 codes an hour)
    #[test]
    fn a_code_expires_and_wrong_guesses_void_it() {
        let sent = at("2026-01-01T10:00:00Z");
        let c = CodeFacts {
            created_at: sent,
            attempts: 3,
            used: false,
        };
        assert_eq!(
            check_code(Some(&c), true, at("2026-01-01T10:09:59Z")),
            Ok(())
        );
        assert_eq!(
            check_code(Some(&c), true, at("2026-01-01T10:10:00Z")),
            Err(CodeRefusal::Expired)
        );
        assert_eq!(
            check_code(Some(&c), false, sent),
            Err(CodeRefusal::Wrong { left: 1 })
        );
        let last = CodeFacts { attempts: 4, ..c };
        assert_eq!(
            check_code(Some(&last), false, sent),
            Err(CodeRefusal::Exhausted)
        );
        assert!(CodeRefusal::None.message().contains("address or number"));
    }

    // spec: SVC-001, RSP-333
    #[test]
    fn five_codes_an_hour_then_wait_for_the_oldest_to_age_out() {
        let t0 = at("2026-01-01T10:00:00Z");
        let sent: Vec<Timestamp> = (0..5)
            .map(|i| t0 + SignedDuration::from_mins(i * 5))
            .collect();
        let now = at("2026-01-01T10:30:00Z");
        assert_eq!(next_code_allowed(&sent[..4], now), None);
        assert_eq!(
            next_code_allowed(&sent, now),
            Some(at("2026-01-01T11:00:00Z"))
        );
        assert_eq!(next_code_allowed(&sent, at("2026-01-01T11:00:01Z")), None);
    }
}
