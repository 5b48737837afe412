//! The `--mix` option: which share of the events are new alerts, repeats of an earlier alert
//! (same key and title, a de-dup) and recoveries (`Ok`) of an earlier alert.

use std::fmt;
use std::str::FromStr;

/// The kind of one generated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    New,
    Repeat,
    Recover,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::New, Kind::Repeat, Kind::Recover];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::Repeat => "repeat",
            Kind::Recover => "recover",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Percentages of each kind; they add up to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    pub new: u32,
    pub repeat: u32,
    pub recover: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            new: 80,
            repeat: 15,
            recover: 5,
        }
    }
}

impl Mix {
    /// The kind for a uniform roll in `0..100`.
    pub fn pick(&self, roll: u32) -> Kind {
        if roll < self.new {
            Kind::New
        } else if roll < self.new + self.repeat {
            Kind::Repeat
        } else {
            Kind::Recover
        }
    }
}

impl FromStr for Mix {
    type Err = String;

    /// `new=80,repeat=15,recover=5`; a kind left out is 0; the parts must add up to 100.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts: [Option<u32>; 3] = [None; 3];
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("mix item `{item}` is not NAME=PERCENT"))?;
            let kind = match name.trim() {
                "new" => Kind::New,
                "repeat" => Kind::Repeat,
                "recover" => Kind::Recover,
                other => {
                    return Err(format!(
                        "unknown mix kind `{other}` (expected new, repeat or recover)"
                    ));
                }
            };
            let value: u32 = value
                .trim()
                .parse()
                .map_err(|_| format!("mix percentage `{}` is not a whole number", value.trim()))?;
            if parts[kind.index()].replace(value).is_some() {
                return Err(format!("mix kind `{}` given twice", kind.as_str()));
            }
        }
        let [new, repeat, recover] = parts.map(|p| p.unwrap_or(0));
        let sum = u64::from(new) + u64::from(repeat) + u64::from(recover);
        if sum != 100 {
            return Err(format!("mix percentages add up to {sum}, not 100"));
        }
        if new == 0 {
            return Err(
                "mix needs new > 0: repeats and recoveries refer to earlier new alerts".into(),
            );
        }
        Ok(Mix {
            new,
            repeat,
            recover,
        })
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "new={},repeat={},recover={}",
            self.new, self.repeat, self.recover
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_and_partial_mixes() {
        let m: Mix = "new=80,repeat=15,recover=5".parse().unwrap();
        assert_eq!(m, Mix::default());
        let m: Mix = " recover = 10 , new=90 ".parse().unwrap();
        assert_eq!(
            m,
            Mix {
                new: 90,
                repeat: 0,
                recover: 10
            }
        );
        let m: Mix = "new=100".parse().unwrap();
        assert_eq!(m.to_string(), "new=100,repeat=0,recover=0");
    }

    #[test]
    fn rejects_bad_mixes() {
        for bad in [
            "new=80,repeat=15",       // 95
            "new=80,repeat=15,foo=5", // unknown kind
            "new=80,new=20",          // twice
            "new=eighty,repeat=20",   // not a number
            "new=-1,repeat=101",      // negative
            "new",                    // no '='
            "repeat=100",             // nothing to repeat
            "",                       // sums to 0
        ] {
            assert!(bad.parse::<Mix>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn pick_follows_the_percentages() {
        let m = Mix::default();
        let counts = (0..100).fold([0u32; 3], |mut acc, roll| {
            acc[m.pick(roll).index()] += 1;
            acc
        });
        assert_eq!(counts, [80, 15, 5]);
        assert_eq!(m.pick(0), Kind::New);
        assert_eq!(m.pick(79), Kind::New);
        assert_eq!(m.pick(80), Kind::Repeat);
        assert_eq!(m.pick(99), Kind::Recover);
    }
}
