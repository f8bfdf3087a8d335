//! The `mcp-oauth` binary: the CLI with the built-in factories (a plugin's binary is the same line
//! with its own registry; see `mcp_oauth::cli::main_with`).

fn main() -> std::process::ExitCode {
    mcp_oauth::cli::main_with(mcp_oauth::registry::Registry::builtin())
}
