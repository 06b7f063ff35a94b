//! The runtime encodes with its own positional Avro writer (apache-avro's was 40% of
//! customer-graph's time per event); consumers decode with any Avro library, so the bytes
//! must be apache-avro's exactly. For every contract type, values generated at random
//! from its schema (every optional field both absent and present, arrays empty and long,
//! every enum symbol and union branch in turn) encode to identical bytes both ways.

use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::{AvroSchema, Schema};
use loyalty_contracts::*;
use loyalty_runtime::codec::{Encoder, leak};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// xorshift64*: enough randomness for test values, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_value(
    schema: &Schema,
    names: &HashMap<Name, &Schema>,
    rng: &mut Rng,
    depth: usize,
) -> Value {
    let int = |rng: &mut Rng| (rng.next() as i32) >> rng.below(31);
    let long = |rng: &mut Rng| (rng.next() as i64) >> rng.below(63);
    match schema {
        Schema::Ref { name } => random_value(names[name], names, rng, depth),
        Schema::Null => Value::Null,
        Schema::Boolean => Value::Boolean(rng.below(2) == 1),
        Schema::Int => Value::Int(int(rng)),
        Schema::Long => Value::Long(long(rng)),
        Schema::Double => Value::Double(long(rng) as f64 / 1024.0),
        Schema::Date => Value::Date(int(rng)),
        Schema::TimestampMillis => Value::TimestampMillis(long(rng)),
        Schema::String => {
            let len = rng.below(12);
            Value::String(
                (0..len)
                    .map(|i| ['a', 'é', '7', ' ', '€'][(i + len) % 5])
                    .collect(),
            )
        }
        Schema::Enum(e) => {
            let i = rng.below(e.symbols.len());
            Value::Enum(i as u32, e.symbols[i].clone())
        }
        Schema::Array(a) => {
            let len = if depth > 3 {
                0
            } else {
                [0, 1, 3, 70][rng.below(4)]
            };
            Value::Array(
                (0..len)
                    .map(|_| random_value(&a.items, names, rng, depth + 1))
                    .collect(),
            )
        }
        Schema::Union(u) => {
            let i = rng.below(u.variants().len());
            Value::Union(
                i as u32,
                Box::new(random_value(&u.variants()[i], names, rng, depth + 1)),
            )
        }
        Schema::Record(r) => Value::Record(
            r.fields
                .iter()
                .map(|f| {
                    (
                        f.name.clone(),
                        random_value(&f.schema, names, rng, depth + 1),
                    )
                })
                .collect(),
        ),
        other => panic!("the contracts use no {other:?}; extend this generator"),
    }
}

fn writes_apache_avros_bytes<T: Serialize + DeserializeOwned + AvroSchema>() {
    let schema = leak(T::get_schema());
    let resolved = ResolvedSchema::try_from(schema).unwrap();
    let names = resolved.get_names().clone();
    let encoder = Encoder::new(1, schema).unwrap();
    let apache = GenericDatumWriter::builder(schema)
        .human_readable(false)
        .build()
        .unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..300 {
        let value = random_value(schema, &names, &mut rng, 0);
        let typed: T = apache_avro::from_value(&value)
            .unwrap_or_else(|e| panic!("{}: {e} in {value:?}", schema.name().unwrap()));
        let mut expected = Vec::new();
        apache.write_ser(&mut expected, &typed).unwrap();
        assert_eq!(
            encoder.encode_body(&typed).unwrap(),
            expected,
            "{}",
            schema.name().unwrap()
        );
    }
}

#[test]
fn every_contract_type_encodes_to_apache_avros_bytes() {
    writes_apache_avros_bytes::<MemberEvent>();
    writes_apache_avros_bytes::<MemberProfile>();
    writes_apache_avros_bytes::<MemberConsents>();
    writes_apache_avros_bytes::<Program>();
    writes_apache_avros_bytes::<VendorOffer>();
    writes_apache_avros_bytes::<ErasureRequest>();
    writes_apache_avros_bytes::<ErasureReceipt>();
    writes_apache_avros_bytes::<ErasedId>();
    writes_apache_avros_bytes::<MemberState>();
    writes_apache_avros_bytes::<MemberCohort>();
    writes_apache_avros_bytes::<CohortStats>();
    writes_apache_avros_bytes::<ModelParams>();
    writes_apache_avros_bytes::<TierForecasts>();
    writes_apache_avros_bytes::<InterventionOpportunity>();
    writes_apache_avros_bytes::<MemberLtv>();
    writes_apache_avros_bytes::<OfferPolicy>();
    writes_apache_avros_bytes::<CatalogOffer>();
    writes_apache_avros_bytes::<FxRate>();
    writes_apache_avros_bytes::<OfferProposal>();
    writes_apache_avros_bytes::<OfferReadout>();
    writes_apache_avros_bytes::<Trigger>();
    writes_apache_avros_bytes::<AuditRecord>();
    writes_apache_avros_bytes::<ComplianceReview>();
}

#[test]
fn every_contract_type_is_covered() {
    // A new contract type must be added to the list above (the four trigger topics
    // share one type).
    let types: std::collections::BTreeSet<String> = contracts()
        .iter()
        .map(|c| (c.schema)().name().unwrap().fullname(None))
        .collect();
    assert_eq!(types.len(), 23, "{types:?}");
}
