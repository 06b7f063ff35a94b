//! The customer-graph binary: configuration and lifecycle come from the runtime.

fn main() -> std::process::ExitCode {
    loyalty_runtime::agent_main!(customer_graph::CustomerGraph::new)
}
