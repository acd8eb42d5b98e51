//! Shards of a sweep for any scheduler: `I/N` names shard I of N, and `auto/N` takes I from
//! the scheduler's environment (`SLURM_ARRAY_TASK_ID`, Kubernetes' `JOB_COMPLETION_INDEX`).
//! The split is deterministic: the same points and costs give every shard the same share,
//! whichever process computes it and whenever, balanced by estimated cost (longest first,
//! each to the least loaded shard, ties broken by key and by shard index).
use std::fmt;

/// The environment variables `auto` reads the shard index from, in order.
pub const INDEX_VARS: [&str; 2] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

/// One shard of a sweep: `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, `0 ≤ index < count`.
    pub index: usize,
    /// How many shards.
    pub count: usize,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// Parses `I/N` or `auto/N`; `env` looks up a variable (`std::env::var(..).ok()`).
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard, String> {
        let (index, count) = text.split_once('/').ok_or_else(|| format!("'{text}' is not I/N or auto/N"))?;
        let count: usize = count.trim().parse().map_err(|_| format!("'{text}': the shard count '{count}' is not a whole number"))?;
        if count == 0 {
            return Err(format!("'{text}': the shard count must be at least 1"));
        }
        let index = if index.trim() == "auto" {
            let (var, value) =
                INDEX_VARS.iter().find_map(|v| env(v).map(|value| (*v, value))).ok_or_else(|| format!("'{text}': none of {} is set", INDEX_VARS.join(", ")))?;
            value.trim().parse::<usize>().map_err(|_| format!("'{text}': {var}={value} is not a whole number"))?
        } else {
            index.trim().parse::<usize>().map_err(|_| format!("'{text}': the shard index '{index}' is not a whole number"))?
        };
        if index >= count {
            return Err(format!("'{text}': shard index {index} is not below the shard count {count}"));
        }
        Ok(Shard { index, count })
    }
}

/// Splits `items` (key, estimated cost) into `count` shards: the keys of each, longest
/// first. Deterministic in its input set (the order of `items` does not matter).
pub fn split(items: &[(String, f64)], count: usize) -> Vec<Vec<String>> {
    let count = count.max(1);
    let mut order: Vec<&(String, f64)> = items.iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut load = vec![0.0f64; count];
    let mut shards = vec![Vec::new(); count];
    for (key, cost) in order {
        // The least loaded shard, then the one with fewest points, then the lowest index.
        let target = (0..count).min_by(|&a, &b| load[a].total_cmp(&load[b]).then(shards[a].len().cmp(&shards[b].len())).then(a.cmp(&b))).unwrap_or(0);
        load[target] += cost.max(0.0);
        shards[target].push(key.clone());
    }
    shards
}

/// The keys of shard `shard` of `items`.
pub fn keys_of(items: &[(String, f64)], shard: Shard) -> Vec<String> {
    split(items, shard.count).swap_remove(shard.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<(String, f64)> {
        (0..n).map(|i| (format!("k{i:03}"), ((i * 7919) % 13 + 1) as f64)).collect()
    }

    #[test]
    fn every_key_lands_in_exactly_one_shard_whatever_the_input_order() {
        let a = items(50);
        let mut b = a.clone();
        b.reverse();
        let (sa, sb) = (split(&a, 4), split(&b, 4));
        assert_eq!(sa, sb);
        let mut all: Vec<String> = sa.concat();
        all.sort();
        assert_eq!(all, a.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn shards_are_balanced_by_cost_not_count() {
        // One long point and four short ones: the long one alone, the short ones together.
        let its: Vec<(String, f64)> = vec![("a".into(), 4.0), ("b".into(), 1.0), ("c".into(), 1.0), ("d".into(), 1.0), ("e".into(), 1.0)];
        let s = split(&its, 2);
        assert_eq!(s[0], vec!["a"]);
        assert_eq!(s[1], vec!["b", "c", "d", "e"]);
        let loads: Vec<f64> = split(&items(200), 7).iter().map(|ks| ks.iter().map(|k| items(200).iter().find(|(x, _)| x == k).unwrap().1).sum()).collect();
        let (lo, hi) = (loads.iter().cloned().fold(f64::MAX, f64::min), loads.iter().cloned().fold(0.0, f64::max));
        assert!(hi - lo <= 13.0, "{loads:?}");
    }

    #[test]
    fn parse_reads_the_index_or_the_scheduler_variable() {
        let none = |_: &str| None;
        assert_eq!(Shard::parse("2/5", none), Ok(Shard { index: 2, count: 5 }));
        assert!(Shard::parse("5/5", none).unwrap_err().contains("not below"));
        assert!(Shard::parse("1/0", none).unwrap_err().contains("at least 1"));
        assert!(Shard::parse("x", none).unwrap_err().contains("I/N"));
        assert!(Shard::parse("auto/3", none).unwrap_err().contains("SLURM_ARRAY_TASK_ID"));
        let k8s = |v: &str| (v == "JOB_COMPLETION_INDEX").then(|| "1".to_string());
        assert_eq!(Shard::parse("auto/3", k8s), Ok(Shard { index: 1, count: 3 }));
        let slurm = |v: &str| (v == "SLURM_ARRAY_TASK_ID").then(|| "7".to_string());
        assert!(Shard::parse("auto/3", slurm).unwrap_err().contains("not below"));
    }
}
