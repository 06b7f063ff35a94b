//! The tier-transition binary: configuration and lifecycle come from the runtime.

fn main() -> std::process::ExitCode {
    loyalty_runtime::agent_main!(tier_transition::TierTransition::new)
}
