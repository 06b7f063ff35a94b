//! The save-offer binary: configuration and lifecycle come from the runtime.

fn main() -> std::process::ExitCode {
    loyalty_runtime::agent_main!(save_offer::SaveOffer::new)
}
