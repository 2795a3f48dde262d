//! A small log-linear histogram of nanosecond durations.
//!
//! Values below 16 are exact; above, each power of two is split in 16
//! buckets, so a reported percentile is at most 1/16 (6.25 %) above the
//! true value. Buckets are stored sparsely: a thread with a handful of
//! samples costs a handful of entries, which matters when a churning
//! program creates a thousand threads per second. `max` is exact.

const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// (bucket index, count), sorted by index.
    buckets: Vec<(u16, u64)>,
    count: u64,
    sum: u128,
    max: u64,
}

fn bucket_of(v: u64) -> u16 {
    if v < SUB {
        return v as u16;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let mantissa = (v >> (exp - SUB_BITS)) & (SUB - 1);
    ((u64::from(exp - SUB_BITS + 1) << SUB_BITS) + mantissa) as u16
}

/// The largest value that falls in bucket `b`.
fn upper_bound(b: u16) -> u64 {
    let b = u64::from(b);
    if b < SUB {
        return b;
    }
    let exp = (b >> SUB_BITS) + u64::from(SUB_BITS) - 1;
    let mantissa = b & (SUB - 1);
    let lower = (SUB + mantissa) << (exp - u64::from(SUB_BITS));
    let width = 1u64 << (exp - u64::from(SUB_BITS));
    lower.saturating_add(width - 1)
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        let b = bucket_of(v);
        match self.buckets.binary_search_by_key(&b, |&(i, _)| i) {
            Ok(i) => self.buckets[i].1 += 1,
            Err(i) => self.buckets.insert(i, (b, 1)),
        }
        self.count += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            (self.sum / u128::from(self.count)) as u64
        }
    }

    /// The value at quantile `q` (0..=1): an upper bound within 1/16 of the
    /// truth, never above the maximum. 0 for an empty histogram.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(b, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return upper_bound(b).min(self.max);
            }
        }
        self.max
    }

    /// The non-empty buckets, ascending: (largest value in the bucket, count).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets.iter().map(|&(b, n)| (upper_bound(b).min(self.max), n))
    }

    pub fn merge(&mut self, other: &Histogram) {
        for &(b, n) in &other.buckets {
            match self.buckets.binary_search_by_key(&b, |&(i, _)| i) {
                Ok(i) => self.buckets[i].1 += n,
                Err(i) => self.buckets.insert(i, (b, n)),
            }
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_histogram_reports_zero() {
        let h = Histogram::default();
        assert_eq!((h.quantile(0.5), h.quantile(0.99), h.max(), h.mean()), (0, 0, 0, 0));
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::default();
        for v in 0..16 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 7);
        assert_eq!(h.quantile(1.0), 15);
    }

    #[test]
    fn buckets_bound_every_value_within_a_sixteenth() {
        for v in [16u64, 17, 31, 32, 1000, 123_456, 9_999_999, u64::MAX / 3, u64::MAX] {
            let ub = upper_bound(bucket_of(v));
            assert!(ub >= v, "{v}: bound {ub}");
            assert!((ub - v) as f64 <= v as f64 / 16.0, "{v}: bound {ub} too loose");
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = Histogram::default();
        for v in 1..=1000u64 {
            h.record(v * 1000); // 1 µs .. 1 ms
        }
        let p50 = h.quantile(0.5);
        let p99 = h.quantile(0.99);
        assert!((500_000..=500_000 + 500_000 / 16).contains(&p50), "p50 {p50}");
        assert!((990_000..=1_000_000).contains(&p99), "p99 {p99}");
        assert_eq!(h.max(), 1_000_000);
        assert_eq!(h.count(), 1000);
        assert_eq!(h.mean(), 500_500);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(10);
        b.record(5000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.max(), 5000);
        assert_eq!(a.quantile(0.5), 10);
    }
}
