# Everyday commands; each is plain cargo underneath.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") + "/.cache/loyalty-swarm/target")

# Run the whole swarm on the embedded stack with the CDNOW replay.
demo:
    cargo run --release -p swarm -- demo

# The whole test suite (what CI runs).
test:
    cargo test --workspace

# Formatting and lints, as required before every commit.
check:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Hot-path microbenchmarks (criterion).
bench:
    cargo bench -p customer-graph -p tier-transition -p cohort -p ltv

# Export the contract's Avro schemas from the Rust types.
schemas:
    cargo run -p swarm -- export-schemas schemas

# Check that vendor/tansu-* is the crates.io release plus vendor/patches/ (fails on drift).
tansu-check:
    vendor/tansu-patches.sh check

# Rewrite vendor/tansu-* from the release plus vendor/patches/ (optionally another release).
tansu-apply version="0.6.0":
    vendor/tansu-patches.sh apply {{version}}
