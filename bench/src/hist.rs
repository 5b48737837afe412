//! A small log-linear latency histogram (HdrHistogram-like): values below 256 are exact, larger
//! ones land in buckets at most 1/128 (< 0.8 %) wide. Fixed size (~58 KiB), cheap to record
//! into and to merge, so each connection task keeps its own and they are added at the end.

const SUB_BITS: u32 = 8;
const SUB: u64 = 1 << SUB_BITS;
const HALF: u64 = SUB / 2;
const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * HALF) as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < SUB {
        v as usize
    } else {
        let msb = 63 - v.leading_zeros(); // >= SUB_BITS
        let shift = msb + 1 - SUB_BITS; // >= 1
        let m = v >> shift; // in [HALF, SUB)
        (SUB + u64::from(shift - 1) * HALF + (m - HALF)) as usize
    }
}

/// The largest value that lands in bucket `idx`.
fn upper(idx: usize) -> u64 {
    let idx = idx as u64;
    if idx < SUB {
        idx
    } else {
        let j = idx - SUB;
        let shift = j / HALF + 1;
        let m = HALF + j % HALF;
        let up = (u128::from(m + 1) << shift) - 1;
        u64::try_from(up).unwrap_or(u64::MAX)
    }
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> Option<u64> {
        (self.count > 0).then_some(self.max)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }

    /// Nearest-rank percentile, `q` in 0..=100: the smallest recorded value (up to bucket
    /// width, rounded up, never above the max) such that at least q % of values are <= it.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q / 100.0) * self.count as f64).ceil() as u64;
        let rank = rank.clamp(1, self.count);
        let mut seen = 0;
        for (idx, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper(idx).clamp(self.min, self.max));
            }
        }
        Some(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_below_256() {
        let mut h = Histogram::default();
        assert_eq!(h.percentile(50.0), None);
        for v in (1..=100).rev() {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile(50.0), Some(50));
        assert_eq!(h.percentile(90.0), Some(90));
        assert_eq!(h.percentile(99.0), Some(99));
        assert_eq!(h.percentile(99.9), Some(100));
        assert_eq!(h.percentile(100.0), Some(100));
        assert_eq!(h.percentile(0.0), Some(1));
        assert_eq!(h.max(), Some(100));
        assert_eq!(h.mean(), Some(50.5));
    }

    #[test]
    fn large_values_within_one_percent() {
        let mut h = Histogram::default();
        let mut vals: Vec<u64> = (0..10_000u64)
            .map(|i| 300 + i * i * 37 % 5_000_000)
            .collect();
        for &v in &vals {
            h.record(v);
        }
        vals.sort_unstable();
        for q in [50.0, 90.0, 99.0, 99.9] {
            let rank = ((q / 100.0) * vals.len() as f64).ceil() as usize;
            let exact = vals[rank - 1];
            let got = h.percentile(q).unwrap();
            assert!(got >= exact, "p{q}: {got} < exact {exact}");
            assert!(
                (got - exact) as f64 <= exact as f64 / 128.0,
                "p{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.percentile(100.0), vals.last().copied());
    }

    #[test]
    fn buckets_are_contiguous_and_merge_adds() {
        for v in [255u64, 256, 257, 511, 512, 1000, 1 << 40, u64::MAX] {
            let i = index(v);
            assert!(i < BUCKETS);
            assert!(upper(i) >= v);
            assert!(i == 0 || upper(i - 1) < v, "{v}");
        }
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 2);
        assert_eq!(a.percentile(50.0), Some(10));
        assert_eq!(a.percentile(100.0), Some(1_000_000));
    }
}
