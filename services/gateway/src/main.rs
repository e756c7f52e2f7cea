//! `baton-gateway`: flags and config, then [`baton_gateway::run`].

fn main() -> std::process::ExitCode {
    baton_service::main("gateway", baton_gateway::run)
}
