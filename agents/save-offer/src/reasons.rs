//! Cancellation reasons into clusters, deterministically: the same request always lands
//! in the same cluster, on every instance and every replay, with no model to version.
//!
//! The method, in order:
//! 1. A reason code the cancel form sent is looked up in [`CODES`] (the codes common
//!    cancel flows use, lower-cased, `-` and spaces read as `_`).
//! 2. Otherwise the free text is lower-cased, split on anything that is not a letter or
//!    digit, and each word is matched against each cluster's stems (a word matches a
//!    stem it starts with; "expensive" and "expensively" both match `expens`; a stem
//!    ending in `$` matches only the whole word, so "late$" is not "later"). Negated
//!    words ("not expensive") count too: a member who mentions price is talking about price.
//! 3. The cluster with the most matching words wins; a tie goes to the cluster listed
//!    first in [`STEMS`] (more specific clusters are listed first). No match: `Other`.

use loyalty_contracts::ReasonCluster;

/// Reason codes of cancel forms, and their cluster.
pub const CODES: &[(&str, ReasonCluster)] = &[
    ("too_expensive", ReasonCluster::Price),
    ("price", ReasonCluster::Price),
    ("cost", ReasonCluster::Price),
    ("not_using", ReasonCluster::NotUsingEnough),
    ("not_using_enough", ReasonCluster::NotUsingEnough),
    ("no_longer_needed", ReasonCluster::NotUsingEnough),
    ("too_much_product", ReasonCluster::TooMuchProduct),
    ("have_too_much", ReasonCluster::TooMuchProduct),
    ("quality", ReasonCluster::ProductQuality),
    ("product_quality", ReasonCluster::ProductQuality),
    ("did_not_like", ReasonCluster::ProductQuality),
    ("shipping", ReasonCluster::ShippingDelivery),
    ("delivery", ReasonCluster::ShippingDelivery),
    ("shipping_delays", ReasonCluster::ShippingDelivery),
    ("competitor", ReasonCluster::SwitchingCompetitor),
    ("switching", ReasonCluster::SwitchingCompetitor),
    ("found_alternative", ReasonCluster::SwitchingCompetitor),
    ("financial", ReasonCluster::FinancialHardship),
    ("budget", ReasonCluster::FinancialHardship),
    ("job_loss", ReasonCluster::FinancialHardship),
    ("moving", ReasonCluster::MovingOrTravel),
    ("travel", ReasonCluster::MovingOrTravel),
    ("temporary", ReasonCluster::Temporary),
    ("pause", ReasonCluster::Temporary),
    ("break", ReasonCluster::Temporary),
    ("customer_service", ReasonCluster::ServiceExperience),
    ("support", ReasonCluster::ServiceExperience),
    ("other", ReasonCluster::Other),
];

/// Word stems per cluster, most specific cluster first (ties go to the earlier one).
pub const STEMS: &[(ReasonCluster, &[&str])] = &[
    (
        ReasonCluster::FinancialHardship,
        &[
            "afford", "unemploy", "laid", "layoff", "job", "bills", "broke$", "debt", "income",
            "hardship", "tight",
        ],
    ),
    (
        ReasonCluster::SwitchingCompetitor,
        &[
            "competitor",
            "switch",
            "cheaper",
            "elsewhere",
            "alternative",
            "another",
            "other brand",
            "instead",
        ],
    ),
    (
        ReasonCluster::TooMuchProduct,
        &[
            "too much",
            "stockpil",
            "backlog",
            "pile",
            "surplus",
            "leftover",
            "excess",
            "accumulat",
            "enough left",
        ],
    ),
    (
        ReasonCluster::ShippingDelivery,
        &[
            "ship", "deliver", "arriv", "late$", "delay", "lost", "courier", "package", "parcel",
            "damaged",
        ],
    ),
    (
        ReasonCluster::ProductQuality,
        &[
            "quality",
            "taste",
            "broken",
            "defect",
            "stale",
            "smell",
            "allerg",
            "disappoint",
            "dislike",
            "worse",
            "useless",
        ],
    ),
    (
        ReasonCluster::MovingOrTravel,
        &[
            "moving", "move", "relocat", "travel", "abroad", "vacation", "holiday", "trip",
        ],
    ),
    (
        ReasonCluster::Temporary,
        &[
            "pause",
            "break",
            "temporar",
            "later",
            "month off",
            "skip",
            "for now",
            "while",
        ],
    ),
    (
        ReasonCluster::ServiceExperience,
        &[
            "service",
            "support",
            "rude",
            "respons",
            "help",
            "agent",
            "complain",
            "billing error",
            "charged twice",
        ],
    ),
    (
        ReasonCluster::NotUsingEnough,
        &[
            "use$", "used$", "using", "need", "forget", "forgot", "busy", "time",
        ],
    ),
    (
        ReasonCluster::Price,
        &[
            "price",
            "expens",
            "cost",
            "money",
            "pricey",
            "overpriced",
            "save",
            "saving",
            "cheap",
            "value",
        ],
    ),
];

/// The cluster of a cancellation request.
pub fn cluster(reason_code: Option<&str>, reason_text: Option<&str>) -> ReasonCluster {
    if let Some(code) = reason_code {
        let code = code.trim().to_lowercase().replace(['-', ' '], "_");
        if let Some((_, cluster)) = CODES.iter().find(|(c, _)| *c == code) {
            return *cluster;
        }
    }
    let Some(text) = reason_text else {
        return ReasonCluster::Other;
    };
    let words: Vec<String> = text
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let phrase = words.join(" ");
    let mut best = (0usize, ReasonCluster::Other);
    for (cluster, stems) in STEMS {
        let score: usize = stems
            .iter()
            .map(|stem| {
                if stem.contains(' ') {
                    usize::from(phrase.contains(stem))
                } else if let Some(word) = stem.strip_suffix('$') {
                    words.iter().filter(|w| w.as_str() == word).count()
                } else {
                    words.iter().filter(|w| w.starts_with(stem)).count()
                }
            })
            .sum();
        if score > best.0 {
            best = (score, *cluster);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReasonCluster::*;

    #[test]
    fn a_known_code_decides_whatever_the_text_says() {
        assert_eq!(
            cluster(Some("too_expensive"), Some("the box arrived late")),
            Price
        );
        assert_eq!(cluster(Some("Not-Using"), None), NotUsingEnough);
        assert_eq!(cluster(Some("Customer Service"), None), ServiceExperience);
    }

    #[test]
    fn free_text_goes_to_the_cluster_with_most_matching_words() {
        let cases = [
            (
                "It's just too expensive for what it is, I need to save money",
                Price,
            ),
            ("I can't afford it since I was laid off", FinancialHardship),
            ("Found a cheaper competitor", SwitchingCompetitor),
            ("I have too much coffee stockpiled already", TooMuchProduct),
            (
                "Packages keep arriving late and one was damaged",
                ShippingDelivery,
            ),
            ("The quality went down, stale taste", ProductQuality),
            ("We are moving abroad next month", MovingOrTravel),
            ("Just want a break for now", Temporary),
            ("Support was rude and unresponsive", ServiceExperience),
            ("I don't use it anymore", NotUsingEnough),
            ("I didn't use it last month", NotUsingEnough),
            ("The product arrived broken", ShippingDelivery),
            ("Maybe later, not now", Temporary),
            ("The app is useless", ProductQuality),
            ("", Other),
            ("asdf qwerty", Other),
        ];
        for (text, expected) in cases {
            assert_eq!(cluster(None, Some(text)), expected, "{text:?}");
        }
    }

    #[test]
    fn ties_go_to_the_more_specific_cluster_and_unknown_codes_fall_back_to_text() {
        // "afford" (financial) and "price" (price) once each: financial is listed first.
        assert_eq!(
            cluster(None, Some("can't afford the price")),
            FinancialHardship
        );
        assert_eq!(
            cluster(Some("code_we_never_saw"), Some("too expensive")),
            Price
        );
    }
}
