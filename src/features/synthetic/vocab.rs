//! Token ids of the benchmark's vocabulary: the words its questions and answers are made of.
/// Padding.
pub const PAD: i64 = crate::features::PAD;
/// Ends an answer.
pub const EOS: i64 = 1;
/// Question-family words, in `FAMILIES` order; a prompt is one of them, and the answer
/// follows it directly.
pub const QUESTION: [i64; 5] = [2, 3, 4, 5, 6];
/// Colour words: red, green, blue, yellow.
pub const COLORS: [i64; 4] = [7, 8, 9, 10];
/// Count words: zero to three.
pub const COUNTS: [i64; 4] = [11, 12, 13, 14];
/// Direction words: left, right, up, down.
pub const DIRECTIONS: [i64; 4] = [15, 16, 17, 18];
/// Vocabulary size.
pub const SIZE: usize = 19;
