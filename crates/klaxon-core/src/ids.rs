//! Identifier formats (ingest.md §0 "Identifiers").
//!
//! The core does not own randomness: callers pass the random bytes in, so ids stay
//! deterministic under test.

use crate::model::Millis;

/// A 24-hex, time-ordered id (4-byte seconds prefix + 8 random bytes), the Open API's ObjectID
/// format, used for alerts, incidents and stored events.
pub fn object_id(now: Millis, random: [u8; 8]) -> String {
    let secs = u32::try_from(now.div_euclid(1000)).unwrap_or(u32::MAX);
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    bytes[4..].copy_from_slice(&random);
    hex::encode(bytes)
}

/// The incident short number: the last 6 characters of its id, upper-cased (ingest.md §1.3.5).
pub fn incident_num(incident_id: &str) -> String {
    let start = incident_id.len().saturating_sub(6);
    incident_id.get(start..).unwrap_or("").to_ascii_uppercase()
}

/// A 32-hex request id (ING-008).
pub fn request_id(random: [u8; 16]) -> String {
    hex::encode(random)
}

/// Source of random bytes for ids. The shell implements it with a real RNG; tests with a
/// counter.
pub trait IdSource {
    fn random8(&mut self) -> [u8; 8];

    fn object_id(&mut self, now: Millis) -> String {
        let r = self.random8();
        object_id(now, r)
    }
}

/// A deterministic id source for tests and replays: 1, 2, 3, …
#[derive(Debug, Default, Clone)]
pub struct CountingIds(pub u64);

impl IdSource for CountingIds {
    fn random8(&mut self) -> [u8; 8] {
        self.0 += 1;
        self.0.to_be_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_id_is_24_hex_and_time_ordered() {
        let a = object_id(1_700_000_000_000, [0xff; 8]);
        let b = object_id(1_700_000_001_000, [0; 8]);
        assert_eq!(a.len(), 24);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(a < b, "a later second sorts later whatever the random part");
    }

    #[test]
    fn num_is_last_six_upper() {
        assert_eq!(incident_num("65a1b2c3d4e5f6a7b8c9d0e1"), "C9D0E1");
    }
}
