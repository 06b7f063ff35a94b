//! A second Avro binary writer, for the hot path: it walks the writer schema by position
//! instead of by name.
//!
//! apache-avro's serde writer finds every record field by hashing its name and keeps
//! per-record bookkeeping to fill in skipped fields; for a member-state snapshot (~60
//! fields, nested records) that was ~4 µs per record, 40% of customer-graph's time per
//! event. serde's derive hands a struct's fields over in declaration order and the
//! contract tests prove the Rust types produce exactly the topic schemas, so field *i*
//! of the value is field *i* of the schema: this writer checks the name (a short
//! compare) instead of looking it up. It writes the same bytes as apache-avro (arrays as
//! one counted block and a zero, unions by branch index, enums by symbol) — proven per
//! contract type by the tests in `loyalty-contracts` — and refuses what the contracts do
//! not use (maps of non-string keys, fixed, decimal) with an error rather than guessing.

use std::collections::HashMap;

use apache_avro::Schema;
use apache_avro::schema::{Name, RecordField, ResolvedSchema};
use serde::Serialize;
use serde::ser::{self, Error as _, Impossible};

type Error = apache_avro::Error;

/// The named types a schema defines, so `Ref`s resolve without a search.
#[derive(Debug, Clone)]
pub struct Names {
    named: HashMap<Name, &'static Schema>,
}

impl Names {
    pub fn new(schema: &'static Schema) -> Result<Self, Error> {
        let resolved = ResolvedSchema::try_from(schema)?;
        Ok(Names {
            named: resolved
                .get_names()
                .iter()
                .map(|(name, schema)| (name.clone(), *schema))
                .collect(),
        })
    }

    fn resolve(&self, schema: &'static Schema) -> Result<&'static Schema, Error> {
        match schema {
            Schema::Ref { name } => self
                .named
                .get(name)
                .copied()
                .ok_or_else(|| Error::custom(format!("schema reference {name} is not defined"))),
            other => Ok(other),
        }
    }
}

/// Append the Avro binary of `value` under `schema` to `out`.
pub fn write<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    schema: &'static Schema,
    names: &Names,
    value: &T,
) -> Result<(), Error> {
    value.serialize(Writer {
        out,
        schema: names.resolve(schema)?,
        names,
    })
}

fn zigzag(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn write_len(out: &mut Vec<u8>, len: usize) -> Result<(), Error> {
    let len = i64::try_from(len).map_err(|_| Error::custom("length does not fit a long"))?;
    zigzag(out, len);
    Ok(())
}

fn mismatch(what: &str, schema: &Schema) -> Error {
    Error::custom(format!(
        "cannot write {what} as Avro {:?}",
        apache_avro::schema::SchemaKind::from(schema)
    ))
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
    schema: &'static Schema,
    names: &'a Names,
}

impl<'a> Writer<'a> {
    fn with(self, schema: &'static Schema) -> Result<Writer<'a>, Error> {
        Ok(Writer {
            schema: self.names.resolve(schema)?,
            ..self
        })
    }

    fn int(self, what: &str, n: i64) -> Result<(), Error> {
        match self.schema {
            Schema::Long
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos
            | Schema::TimeMicros => {
                zigzag(self.out, n);
                Ok(())
            }
            Schema::Int | Schema::Date | Schema::TimeMillis => {
                let n =
                    i32::try_from(n).map_err(|_| Error::custom(format!("{n} is not an int")))?;
                zigzag(self.out, i64::from(n));
                Ok(())
            }
            other => Err(mismatch(what, other)),
        }
    }

    fn union_branch(&self, index: usize) -> Result<&'static Schema, Error> {
        match self.schema {
            Schema::Union(union) => union
                .variants()
                .get(index)
                .ok_or_else(|| Error::custom(format!("no union branch {index}"))),
            other => Err(mismatch("a union branch", other)),
        }
    }

    /// The branch index of null and of the value in a `[null, T]` union (either order).
    fn option_branches(&self) -> Result<(usize, usize), Error> {
        match self.schema {
            Schema::Union(union) if union.variants().len() == 2 => {
                let null = union
                    .variants()
                    .iter()
                    .position(|s| matches!(s, Schema::Null))
                    .ok_or_else(|| mismatch("an option", self.schema))?;
                Ok((null, 1 - null))
            }
            other => Err(mismatch("an option", other)),
        }
    }
}

impl<'a> ser::Serializer for Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Record<'a>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        match self.schema {
            Schema::Boolean => {
                self.out.push(u8::from(v));
                Ok(())
            }
            other => Err(mismatch("a bool", other)),
        }
    }

    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.int("an i8", i64::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.int("an i16", i64::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.int("an i32", i64::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.int("an i64", v)
    }

    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.int("a u8", i64::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.int("a u16", i64::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.int("a u32", i64::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        let v = i64::try_from(v).map_err(|_| Error::custom(format!("{v} does not fit a long")))?;
        self.int("a u64", v)
    }

    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        match self.schema {
            Schema::Float => {
                self.out.extend_from_slice(&v.to_le_bytes());
                Ok(())
            }
            Schema::Double => {
                self.out.extend_from_slice(&f64::from(v).to_le_bytes());
                Ok(())
            }
            other => Err(mismatch("an f32", other)),
        }
    }

    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        match self.schema {
            Schema::Double => {
                self.out.extend_from_slice(&v.to_le_bytes());
                Ok(())
            }
            other => Err(mismatch("an f64", other)),
        }
    }

    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        match self.schema {
            Schema::String | Schema::Bytes | Schema::Uuid(_) => {
                write_len(self.out, v.len())?;
                self.out.extend_from_slice(v.as_bytes());
                Ok(())
            }
            other => Err(mismatch("a string", other)),
        }
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        match self.schema {
            Schema::Bytes | Schema::String => {
                write_len(self.out, v.len())?;
                self.out.extend_from_slice(v);
                Ok(())
            }
            other => Err(mismatch("bytes", other)),
        }
    }

    fn serialize_none(self) -> Result<(), Error> {
        let (null, _) = self.option_branches()?;
        zigzag(self.out, null as i64);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        let (_, some) = self.option_branches()?;
        let branch = self.union_branch(some)?;
        zigzag(self.out, some as i64);
        value.serialize(self.with(branch)?)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        match self.schema {
            Schema::Null => Ok(()),
            other => Err(mismatch("a unit", other)),
        }
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        variant_index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        match self.schema {
            Schema::Enum(e) => {
                let index =
                    if e.symbols.get(variant_index as usize).map(String::as_str) == Some(variant) {
                        variant_index as usize
                    } else {
                        e.symbols
                            .iter()
                            .position(|s| s == variant)
                            .ok_or_else(|| Error::custom(format!("{variant} is not a symbol")))?
                    };
                zigzag(self.out, index as i64);
                Ok(())
            }
            Schema::Union(_) => {
                let branch = self.union_branch(variant_index as usize)?;
                match self.names.resolve(branch)? {
                    Schema::Null => {
                        zigzag(self.out, i64::from(variant_index));
                        Ok(())
                    }
                    other => Err(mismatch("a unit variant", other)),
                }
            }
            other => Err(mismatch("a unit variant", other)),
        }
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let branch = self
            .names
            .resolve(self.union_branch(variant_index as usize)?)?;
        if let Schema::Record(record) = branch
            && record.name.name() != variant
        {
            return Err(Error::custom(format!(
                "union branch {variant_index} is {}, not {variant}",
                record.name.name()
            )));
        }
        zigzag(self.out, i64::from(variant_index));
        value.serialize(self.with(branch)?)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'a>, Error> {
        let Schema::Array(array) = self.schema else {
            return Err(mismatch("a sequence", self.schema));
        };
        let len = len.ok_or_else(|| Error::custom("a sequence of unknown length"))?;
        if len > 0 {
            write_len(self.out, len)?;
        }
        Ok(Seq {
            items: self.names.resolve(&array.items)?,
            out: self.out,
            names: self.names,
        })
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(mismatch("a tuple", self.schema))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(mismatch("a tuple struct", self.schema))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(mismatch("a tuple variant", self.schema))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>, Error> {
        let Schema::Map(map) = self.schema else {
            return Err(mismatch("a map", self.schema));
        };
        let len = len.ok_or_else(|| Error::custom("a map of unknown length"))?;
        if len > 0 {
            write_len(self.out, len)?;
        }
        Ok(Map {
            values: self.names.resolve(&map.types)?,
            out: self.out,
            names: self.names,
        })
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Record<'a>, Error> {
        match self.schema {
            Schema::Record(record) if record.fields.len() == len => Ok(Record {
                fields: &record.fields,
                next: 0,
                out: self.out,
                names: self.names,
            }),
            Schema::Record(record) => Err(Error::custom(format!(
                "{name} has {len} fields, the schema's {} has {}",
                record.name.name(),
                record.fields.len()
            ))),
            other => Err(mismatch(name, other)),
        }
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _variant_index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(mismatch("a struct variant", self.schema))
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// Array items, after the block count; `end` writes the closing zero block.
pub struct Seq<'a> {
    out: &'a mut Vec<u8>,
    items: &'static Schema,
    names: &'a Names,
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(Writer {
            out: self.out,
            schema: self.items,
            names: self.names,
        })
    }

    fn end(self) -> Result<(), Error> {
        self.out.push(0);
        Ok(())
    }
}

/// Map entries (string keys), after the block count.
pub struct Map<'a> {
    out: &'a mut Vec<u8>,
    values: &'static Schema,
    names: &'a Names,
}

static STRING: Schema = Schema::String;

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        key.serialize(Writer {
            out: self.out,
            schema: &STRING,
            names: self.names,
        })
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(Writer {
            out: self.out,
            schema: self.values,
            names: self.names,
        })
    }

    fn end(self) -> Result<(), Error> {
        self.out.push(0);
        Ok(())
    }
}

/// A record's fields, in schema order.
pub struct Record<'a> {
    out: &'a mut Vec<u8>,
    fields: &'static [RecordField],
    next: usize,
    names: &'a Names,
}

impl ser::SerializeStruct for Record<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let field = self
            .fields
            .get(self.next)
            .filter(|f| f.name == key)
            .ok_or_else(|| {
                Error::custom(format!(
                    "field {key} is not the schema's field {} (the Rust type and the schema \
                     must list fields in the same order)",
                    self.next
                ))
            })?;
        self.next += 1;
        value.serialize(Writer {
            out: self.out,
            schema: self.names.resolve(&field.schema)?,
            names: self.names,
        })
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), Error> {
        Err(Error::custom(format!(
            "field {key} is skipped; the positional writer needs every field"
        )))
    }

    fn end(self) -> Result<(), Error> {
        if self.next == self.fields.len() {
            Ok(())
        } else {
            Err(Error::custom(format!(
                "{} of {} fields written",
                self.next,
                self.fields.len()
            )))
        }
    }
}

#[cfg(test)]
mod tests;
