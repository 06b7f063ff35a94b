//! The reference tables save-offer reads whole: the canonical catalog and the FX rates
//! (and the programs table, `loyalty_contracts::tables::PROGRAMS`, shared with the
//! agents that fold and forecast tiers).
//! Each record is checked once, when it is loaded; a record that fails goes to the DLQ
//! with every problem, and the table keeps the key's previous value.

use loyalty_contracts::{CatalogOffer, FxRate, topics};
use loyalty_runtime::{Input, Rejection, Table};

use crate::catalog::compose;
use crate::money::{self, Rates};

/// `loyalty.offer-catalog.v1`, as the catalog agent publishes it.
pub const CATALOG: Table<CatalogOffer> = Table::new(topics::OFFER_CATALOG, decode_offer);

/// `loyalty.fx-rates.v1`: one rate per currency against a common base.
pub const FX_RATES: Table<FxRate> = Table::new(topics::FX_RATES, decode_rate);

fn decode_offer(input: &Input<'_>) -> Result<CatalogOffer, Rejection> {
    let offer: CatalogOffer = input.decode_keyed("offer_id", |o: &CatalogOffer| &o.offer_id)?;
    // The catalog agent publishes only offers that pass these checks; another producer
    // on the topic might not.
    let problems = compose::problems(&offer);
    if problems.is_empty() {
        Ok(offer)
    } else {
        Err(Rejection::contract(format!(
            "catalog offer {}: {}",
            offer.offer_id,
            problems.join("; ")
        )))
    }
}

fn decode_rate(input: &Input<'_>) -> Result<FxRate, Rejection> {
    let rate: FxRate = input.decode_keyed("currency", |r: &FxRate| &r.currency)?;
    let mut problems = Vec::new();
    for code in [&rate.currency, &rate.base] {
        if !money::is_currency(code) {
            problems.push(format!("{code:?} is not an ISO 4217 currency"));
        }
    }
    if !(rate.rate.is_finite() && rate.rate > 0.0) {
        problems.push(format!("rate {} is not a positive number", rate.rate));
    }
    if rate.currency == rate.base && rate.rate != 1.0 {
        problems.push(format!(
            "the base currency's own rate is {}, not 1",
            rate.rate
        ));
    }
    if problems.is_empty() {
        Ok(rate)
    } else {
        Err(Rejection::contract(format!(
            "fx rate {}: {}",
            rate.currency,
            problems.join("; ")
        )))
    }
}

/// The FX table as [`Rates`]: a currency without a record has no rate (and an offer
/// that needs it is ruled out, with that reason); rates against another base than the
/// majority's are not mixed in.
pub struct FxTable {
    rates: std::collections::BTreeMap<String, f64>,
}

impl FxTable {
    pub fn of(values: &[(String, std::sync::Arc<FxRate>)]) -> Self {
        let mut bases = std::collections::BTreeMap::<&str, usize>::new();
        for (_, r) in values {
            *bases.entry(r.base.as_str()).or_default() += 1;
        }
        let base = bases
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(b, _)| b.to_string());
        let mut rates: std::collections::BTreeMap<String, f64> = values
            .iter()
            .filter(|(_, r)| Some(&r.base) == base.as_ref())
            .map(|(k, r)| (k.clone(), r.rate))
            .collect();
        if let Some(base) = base {
            rates.entry(base).or_insert(1.0);
        }
        FxTable { rates }
    }
}

impl Rates for FxTable {
    fn rate(&self, currency: &str) -> Option<f64> {
        self.rates.get(currency).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_contracts::{Timestamp, catalog};
    use loyalty_runtime::Record;

    fn rate(currency: &str, base: &str, rate: f64) -> Result<FxRate, Rejection> {
        let value = FxRate {
            currency: currency.into(),
            base: base.into(),
            rate,
            as_of: Timestamp(0),
        };
        let record = Record::new(&catalog::FX_RATES, currency, &value)
            .map_err(|e| Rejection::contract(e.to_string()))?;
        decode_rate(&record.input())
    }

    #[test]
    fn a_bad_rate_is_refused_naming_every_problem() {
        assert!(rate("EUR", "USD", 0.92).is_ok());
        let e = rate("EURO", "USD", -1.0).unwrap_err().to_string();
        assert!(
            e.contains("\"EURO\" is not an ISO 4217 currency")
                && e.contains("rate -1 is not a positive number"),
            "{e}"
        );
        assert!(
            rate("USD", "USD", 2.0)
                .unwrap_err()
                .to_string()
                .contains("own rate is 2, not 1")
        );
        assert!(rate("GBP", "USD", f64::NAN).is_err());
    }

    #[test]
    fn rates_against_another_base_are_not_mixed_in() {
        let values: Vec<(String, std::sync::Arc<FxRate>)> = [
            ("EUR", "USD", 0.9),
            ("GBP", "USD", 0.8),
            ("JPY", "EUR", 160.0),
        ]
        .iter()
        .map(|(c, b, r)| {
            let v = FxRate {
                currency: (*c).into(),
                base: (*b).into(),
                rate: *r,
                as_of: Timestamp(0),
            };
            ((*c).to_owned(), std::sync::Arc::new(v))
        })
        .collect();
        let table = FxTable::of(&values);
        assert_eq!(
            (table.rate("USD"), table.rate("EUR"), table.rate("JPY")),
            (Some(1.0), Some(0.9), None)
        );
    }
}
