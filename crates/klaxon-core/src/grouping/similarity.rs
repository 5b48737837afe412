//! ING-157 text similarity: token sets and their Jaccard index, compared exactly (as
//! fractions), so a similarity equal to the threshold always passes it.

use std::cmp::Ordering;
use std::collections::BTreeSet;

/// The token that stands for every run made only of digits.
pub const DIGITS_TOKEN: &str = "#";

/// ING-157 tokens of `text`: lower-case it, split it into maximal runs of Unicode letters and
/// digits (every other character separates), replace each run made only of digits by `#`,
/// and take the set. "Letters and digits" are Rust's `char::is_alphanumeric`; "only digits"
/// is `char::is_numeric` for every character of the run.
pub fn tokens(text: &str) -> BTreeSet<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|run| !run.is_empty())
        .map(|run| {
            if run.chars().all(char::is_numeric) {
                DIGITS_TOKEN.to_string()
            } else {
                run.to_string()
            }
        })
        .collect()
}

/// |A ∩ B| / |A ∪ B| kept as a fraction. Two empty sets have similarity 0 (`0 / 0` here,
/// which [`Similarity::cmp_value`] and [`Similarity::at_least`] treat as 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Similarity {
    pub shared: usize,
    pub total: usize,
}

impl Similarity {
    /// The similarity as a number in 0.0–1.0 (for display).
    pub fn value(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.shared as f64 / self.total as f64
        }
    }

    /// Compares two similarities by value, exactly.
    pub fn cmp_value(&self, other: &Similarity) -> Ordering {
        let a = (self.shared as u128) * (other.total.max(1) as u128);
        let b = (other.shared as u128) * (self.total.max(1) as u128);
        a.cmp(&b)
    }

    /// `self ≥ threshold`, the threshold given in ten-thousandths (0.80 → 8000).
    pub fn at_least(&self, threshold_bp: u32) -> bool {
        if self.total == 0 {
            return threshold_bp == 0;
        }
        (self.shared as u128) * 10_000 >= (self.total as u128) * u128::from(threshold_bp)
    }
}

/// The Jaccard index of two token sets.
pub fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Similarity {
    let shared = a.intersection(b).count();
    Similarity {
        shared,
        total: a.len() + b.len() - shared,
    }
}

/// ING-157 similarity of two strings.
pub fn similarity(a: &str, b: &str) -> Similarity {
    jaccard(&tokens(a), &tokens(b))
}
