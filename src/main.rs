//! The `redline` binary: everything happens in `redline::cli`.

fn main() {
    std::process::exit(redline::cli::run());
}
