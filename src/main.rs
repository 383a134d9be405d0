//! The `wharf` binary: everything lives in the library's `cli` module.

fn main() -> std::process::ExitCode {
    wharf::cli::run()
}
