//! Tests of `avro_writer`.

use super::*;
use crate::codec::leak;
use apache_avro::AvroSchema;
use apache_avro::writer::datum::GenericDatumWriter;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
enum Colour {
    Red,
    Green,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
struct Inner {
    label: String,
    weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
struct Outer {
    id: String,
    count: i32,
    total: i64,
    flag: bool,
    note: Option<String>,
    inner: Option<Inner>,
    inners: Vec<Inner>,
    colours: Vec<Colour>,
    colour: Colour,
    again: Option<Inner>,
}

fn apache(schema: &Schema, value: &Outer) -> Vec<u8> {
    let writer = GenericDatumWriter::builder(schema)
        .human_readable(false)
        .build()
        .unwrap();
    let mut out = Vec::new();
    writer.write_ser(&mut out, value).unwrap();
    out
}

#[test]
fn writes_the_bytes_apache_avro_writes() {
    let schema = leak(Outer::get_schema());
    let names = Names::new(schema).unwrap();
    let full = Outer {
        id: "m-1".into(),
        count: -70_000,
        total: i64::MIN + 1,
        flag: true,
        note: Some("é".into()),
        inner: Some(Inner {
            label: "a".into(),
            weight: 0.25,
        }),
        inners: (0..130)
            .map(|i| Inner {
                label: i.to_string(),
                weight: f64::from(i),
            })
            .collect(),
        colours: vec![Colour::Green, Colour::Red],
        colour: Colour::Green,
        again: None,
    };
    let empty = Outer {
        note: None,
        inner: None,
        inners: Vec::new(),
        colours: Vec::new(),
        again: Some(Inner {
            label: String::new(),
            weight: -1.5,
        }),
        ..full.clone()
    };
    for value in [&full, &empty] {
        let mut out = Vec::new();
        write(&mut out, schema, &names, value).unwrap();
        assert_eq!(out, apache(schema, value));
    }
}

#[test]
fn refuses_a_value_whose_fields_are_not_the_schemas() {
    #[derive(Serialize)]
    struct Swapped {
        label: String,
        weight: f64,
    }
    #[derive(Serialize)]
    struct Reordered {
        weight: f64,
        label: String,
    }
    let schema = leak(Inner::get_schema());
    let names = Names::new(schema).unwrap();
    let mut out = Vec::new();
    write(
        &mut out,
        schema,
        &names,
        &Swapped {
            label: "x".into(),
            weight: 1.0,
        },
    )
    .unwrap();
    let error = write(
        &mut Vec::new(),
        schema,
        &names,
        &Reordered {
            weight: 1.0,
            label: "x".into(),
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("same order"), "{error}");
    let error = write(&mut Vec::new(), schema, &names, &7i64).unwrap_err();
    assert!(error.to_string().contains("cannot write"), "{error}");
}
