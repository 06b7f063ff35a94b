//! The Confluent wire format: magic byte 0, a 4-byte big-endian schema id, Avro binary.

use crate::error::{Rejection, RejectionKind};

const MAGIC: u8 = 0;
const HEADER_LEN: usize = 5;

/// Split a framed value into its schema id and Avro body.
pub fn split(bytes: &[u8]) -> Result<(u32, &[u8]), Rejection> {
    if bytes.len() < HEADER_LEN {
        return Err(Rejection::new(
            RejectionKind::NotWireFormat,
            format!(
                "{} bytes is shorter than the 5-byte Confluent header",
                bytes.len()
            ),
        ));
    }
    if bytes[0] != MAGIC {
        return Err(Rejection::new(
            RejectionKind::NotWireFormat,
            format!("magic byte is {:#04x}, expected 0x00", bytes[0]),
        ));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[HEADER_LEN..]))
}

/// Start a framed value for `schema_id`; the caller appends the Avro body.
pub fn header(schema_id: u32, buf: &mut Vec<u8>) {
    buf.push(MAGIC);
    buf.extend_from_slice(&schema_id.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = Vec::new();
        header(0x0102_0304, &mut buf);
        buf.extend_from_slice(b"body");
        assert_eq!(split(&buf), Ok((0x0102_0304, &b"body"[..])));
    }

    #[test]
    fn rejects_short_and_wrong_magic() {
        assert_eq!(
            split(&[0, 1]).map_err(|r| r.kind),
            Err(RejectionKind::NotWireFormat)
        );
        assert_eq!(
            split(&[1, 0, 0, 0, 1]).map_err(|r| r.kind),
            Err(RejectionKind::NotWireFormat)
        );
    }
}
