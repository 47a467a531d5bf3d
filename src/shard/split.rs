//! [`Shard`]: which units of a job one process runs.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A part of a job's units: `index/count` takes the units `u` with `u % count == index`.
///
/// Round robin rather than contiguous blocks: units are often ordered by cost (pool A before
/// pool B, the distilled set before the baseline), and round robin spreads them evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which part (0-based).
    pub index: usize,
    /// Into how many parts the units are split.
    pub count: usize,
}

impl Shard {
    /// All units in one part.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// A shard, checked: `count >= 1` and `index < count`.
    pub fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 || index >= count {
            return Err(Error::invalid(
                "--shard",
                format!("`{index}/{count}` is not I/N with 0 <= I < N"),
            ));
        }
        Ok(Shard { index, count })
    }

    /// Whether unit `u` belongs to this shard.
    pub fn has(&self, u: usize) -> bool {
        u % self.count == self.index
    }

    /// The units of this shard among `0..total`, in order.
    pub fn units(&self, total: usize) -> impl Iterator<Item = usize> + '_ {
        (self.index..total).step_by(self.count.max(1))
    }

    /// The pool file name of this shard: `agreement-pool-<i>of<n>.safetensors`.
    pub fn file_name(&self) -> String {
        format!("agreement-pool-{}of{}.safetensors", self.index, self.count)
    }

    /// "units 1, 3, 5 (3 of 6)": which units of `0..total` this shard takes, the first few
    /// by id, for the line a sharded run prints.
    pub fn describe(&self, total: usize) -> String {
        const SHOWN: usize = 12;
        let mine: Vec<usize> = self.units(total).collect();
        let mut ids: Vec<String> = mine.iter().take(SHOWN).map(|u| u.to_string()).collect();
        if mine.len() > SHOWN {
            ids.push(format!("... {}", mine[mine.len() - 1]));
        }
        let list = if ids.is_empty() {
            "no units".to_string()
        } else {
            format!("units {}", ids.join(", "))
        };
        format!("shard {self}: {list} ({} of {total})", mine.len())
    }
}

/// Which units one call running a shard trained and which it found already done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShardRun {
    /// Units trained by this call.
    pub ran: Vec<usize>,
    /// Units of the shard already in the store (skipped).
    pub skipped: Vec<usize>,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = Error;
    /// Parses `I/N` (`0 <= I < N`), e.g. `0/4`.
    fn from_str(s: &str) -> Result<Shard> {
        let bad = |why: &str| {
            Error::invalid(
                "--shard",
                format!("`{s}` is not I/N with 0 <= I < N (e.g. 0/4): {why}"),
            )
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index: usize = i.trim().parse().map_err(|_| bad("I is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= count {
            return Err(bad("I must be below N"));
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_covers_each_unit_exactly_once() {
        for total in [0, 1, 7, 20] {
            for count in 1..6 {
                let mut seen = vec![0; total];
                for index in 0..count {
                    let s = Shard::new(index, count).unwrap();
                    for u in s.units(total) {
                        assert!(s.has(u));
                        seen[u] += 1;
                    }
                }
                assert!(
                    seen.iter().all(|&c| c == 1),
                    "{total} units, {count} shards"
                );
            }
        }
    }

    #[test]
    fn parsing_names_the_argument_and_the_fault() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        for (bad, why) in [("3/3", "below N"), ("1/0", "at least 1"), ("x", "no `/`")] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains("--shard") && e.contains(why), "{bad}: {e}");
        }
        assert!(Shard::new(2, 2).is_err());
        assert_eq!(
            Shard::new(1, 2).unwrap().describe(5),
            "shard 1/2: units 1, 3 (2 of 5)"
        );
    }
}
