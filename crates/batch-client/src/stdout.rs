//! Printing results to stdout that ends quietly when the reader goes away
//! (`wildcards-gen dataset tencent --analyze | head -1`): a closed pipe is not an error of
//! ours, so the process exits 0 instead of panicking in `println!`.

use std::fmt;
use std::io::{self, Write};

/// Writes one line to stdout; exits 0 at once when stdout is a closed pipe.
pub fn write_line(args: fmt::Arguments) {
    let mut out = io::stdout().lock();
    let written = out.write_fmt(args).and_then(|_| out.write_all(b"\n"));
    if let Err(e) = written {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// Writes text (no newline added) to stdout; exits 0 at once when stdout is a closed pipe.
pub fn write(args: fmt::Arguments) {
    if let Err(e) = io::stdout().lock().write_fmt(args) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

/// `print!` that ends the process quietly (exit 0) when stdout is a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdout::write(format_args!($($arg)*)) };
}

/// `println!` that ends the process quietly (exit 0) when stdout is a closed pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::stdout::write_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::stdout::write_line(format_args!($($arg)*)) };
}
