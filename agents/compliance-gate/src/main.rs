//! The compliance-gate binary: configuration and lifecycle come from the runtime.

fn main() -> std::process::ExitCode {
    loyalty_runtime::agent_main!(compliance_gate::ComplianceGate::new)
}
