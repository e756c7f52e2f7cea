//! `baton-worker`: flags and config, then [`baton_worker::run`].

fn main() -> std::process::ExitCode {
    baton_service::main("worker", baton_worker::run)
}
