//! `baton-scheduler`: flags and config, then [`baton_scheduler::run`].

fn main() -> std::process::ExitCode {
    baton_service::main("scheduler", baton_scheduler::run)
}
