//! `baton-reaper`: flags and config, then [`baton_reaper::run`].

fn main() -> std::process::ExitCode {
    baton_service::main("reaper", baton_reaper::run)
}
