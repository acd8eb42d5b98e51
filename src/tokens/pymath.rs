//! Python arithmetic, mirrored: banker's rounding, `int()` truncation and float floor division
//! change token counts at the edges, so the families use these instead of Rust's defaults.

/// Python's `round(x)` for a float: round half to even ("banker's rounding").
pub(crate) fn py_round(x: f64) -> f64 {
    x.round_ties_even()
}

/// Python's float floor division `a // b`, which floors the exact quotient (via `fmod`) rather
/// than the rounded `a / b`.
pub(crate) fn py_floor_div(a: f64, b: f64) -> f64 {
    let rem = a % b; // Rust's f64 `%` is C's fmod, as in CPython's float_floor_div.
    let mut div = (a - rem) / b;
    if rem != 0.0 && ((b < 0.0) != (rem < 0.0)) {
        div -= 1.0;
    }
    if div == 0.0 {
        return 0.0_f64.copysign(a / b);
    }
    let floor = div.floor();
    if div - floor > 0.5 {
        floor + 1.0
    } else {
        floor
    }
}

/// Python's `int(x)` for a non-negative float: truncation toward zero.
pub(crate) fn py_int(x: f64) -> u64 {
    x.trunc() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_rounding_helpers_match_python() {
        assert_eq!(py_round(2.5), 2.0);
        assert_eq!(py_round(1.5), 2.0);
        assert_eq!(py_round(0.5), 0.0);
        assert_eq!(py_round(2.5000001), 3.0);
        // 75 // 1.2416... = 60.0 in Python; 1.0 // 0.1 is 9.0 (not 10.0, which 1.0 / 0.1 gives).
        assert_eq!(py_floor_div(1.0, 0.1), 9.0);
        assert_eq!((1.0_f64 / 0.1).floor(), 10.0);
        assert_eq!(py_floor_div(7.0, 2.0), 3.0);
        assert_eq!(py_int(105369.6), 105369);
    }
}
