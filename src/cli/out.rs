//! Standard output that ends quietly when the reader goes away: `vislaw fit … | head -1`
//! exits 0 with nothing on stderr, as ripgrep does, instead of panicking. Both binaries
//! include this file as their `out` module.
// Each binary uses the macros it needs.
#![allow(unused_macros, dead_code)]
use std::io::Write;

/// Writes `text` to stdout; a closed pipe ends the process with exit code 0.
pub fn write(text: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(text).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        // Any other failure to write stdout (a full disk, say) is an error of the command.
        let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `print!` that exits quietly on a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*)) };
}

/// `println!` that exits quietly on a closed pipe.
macro_rules! outln {
    () => { $crate::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}
