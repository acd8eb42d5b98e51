//! Test helpers for the token counters: a small deterministic generator for property tests
//! (no extra crates), and shorthands for clips and input errors.
use super::{Clip, Error, Result, Size};
use std::fmt;

/// SplitMix64: tiny, deterministic, good enough to spread test sizes.
pub struct Gen(u64);

impl Gen {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Gen {
        Gen(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next_u64() % u64::from(hi - lo + 1)) as u32
    }

    /// A plausible image/frame side: mostly common sizes, sometimes tiny or huge.
    pub fn side(&mut self) -> u32 {
        match self.range(0, 9) {
            0 => self.range(1, 64),
            1 => self.range(4000, 9000),
            _ => self.range(65, 3999),
        }
    }
}

/// A `w`x`h` clip of `secs` seconds at `fps`.
pub fn clip(w: u32, h: u32, fps: f64, secs: f64) -> Clip {
    Clip { size: Size::new(w, h).unwrap(), fps, duration_s: secs }
}

/// The message of an input error (field names as the library writes them); panics otherwise.
pub fn input_message(result: Result<impl fmt::Debug>) -> String {
    match result {
        Err(Error::Input(m)) => m.to_string(),
        other => panic!("expected an input error, got {other:?}"),
    }
}
