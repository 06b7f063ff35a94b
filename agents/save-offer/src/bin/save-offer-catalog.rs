//! The save-offer-catalog binary: vendor offers and operator policies in, the canonical
//! versioned catalog out. Configuration and lifecycle come from the runtime.

fn main() -> std::process::ExitCode {
    loyalty_runtime::agent_main!(
        save_offer::OfferCatalog::new,
        "save-offer-catalog",
        "Normalises vendor offers and joins operator policies into the canonical, versioned offer catalog."
    )
}
