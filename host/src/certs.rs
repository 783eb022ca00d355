//! Reading X.509 certificates for the certificate inventory.
//!
//! An upload is PEM text holding one certificate or a chain (leaf first).
//! The leaf names the entry (subject, issuer, serial, SANs, fingerprint);
//! the chain's expiry is the earliest `notAfter` of its certificates, since
//! a chain stops working when any of them expires. Anything that is not a
//! well-formed certificate is refused with the reason.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use crate::clock::format_time;

/// What the inventory keeps of an uploaded certificate (chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCertificate {
    /// The leaf's subject, as `CN=..., O=...`.
    pub subject: String,
    /// The leaf's issuer.
    pub issuer: String,
    /// The leaf's serial number, hex bytes separated by `:`.
    pub serial: String,
    /// The leaf's subject alternative names (`DNS:...`, `IP:...`, `email:...`).
    pub sans: Vec<String>,
    /// The leaf's common name, if any.
    pub common_name: Option<String>,
    /// The latest `notBefore` in the chain (RFC 3339).
    pub not_before: String,
    /// The earliest `notAfter` in the chain (RFC 3339).
    pub not_after: String,
    /// SHA-256 of the leaf's DER, hex, `:`-separated upper-case pairs as
    /// `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint_sha256: String,
    /// Certificates in the upload.
    pub chain_length: usize,
    /// The upload, normalised to PEM blocks only.
    pub pem: String,
}

/// Largest PEM upload accepted.
pub const MAX_PEM_BYTES: usize = 256 * 1024;

fn rfc3339(t: OffsetDateTime) -> String {
    format_time(t)
}

/// Parses PEM text holding a certificate or a chain.
pub fn parse_pem(text: &str) -> Result<ParsedCertificate, String> {
    if text.len() > MAX_PEM_BYTES {
        return Err(format!(
            "the PEM text is larger than {} KiB",
            MAX_PEM_BYTES / 1024
        ));
    }
    let mut blocks = Vec::new();
    for (i, block) in Pem::iter_from_buffer(text.as_bytes()).enumerate() {
        let block = block.map_err(|e| format!("PEM block {} is malformed: {e}", i + 1))?;
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "PEM block {} is a {}, not a CERTIFICATE (upload certificates only, never private keys)",
                i + 1,
                block.label
            ));
        }
        blocks.push(block);
    }
    if blocks.is_empty() {
        return Err("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)".into());
    }
    let mut parsed = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let cert = block.parse_x509().map_err(|e| {
            format!(
                "certificate {} is not a valid X.509 certificate: {e}",
                i + 1
            )
        })?;
        parsed.push(cert);
    }
    let leaf = &parsed[0];
    let mut sans = Vec::new();
    if let Ok(Some(extension)) = leaf.subject_alternative_name() {
        for name in &extension.value.general_names {
            match name {
                GeneralName::DNSName(dns) => sans.push(format!("DNS:{dns}")),
                GeneralName::RFC822Name(mail) => sans.push(format!("email:{mail}")),
                GeneralName::URI(uri) => sans.push(format!("URI:{uri}")),
                GeneralName::IPAddress(bytes) => match bytes.len() {
                    4 => sans.push(format!(
                        "IP:{}",
                        std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
                    )),
                    16 => {
                        let octets: [u8; 16] = (*bytes).try_into().unwrap_or([0; 16]);
                        sans.push(format!("IP:{}", std::net::Ipv6Addr::from(octets)));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let common_name = leaf
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let not_before = parsed
        .iter()
        .map(|c| c.validity().not_before.to_datetime())
        .max()
        .expect("at least one certificate");
    let not_after = parsed
        .iter()
        .map(|c| c.validity().not_after.to_datetime())
        .min()
        .expect("at least one certificate");
    let digest = Sha256::digest(&blocks[0].contents);
    let fingerprint = digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let pem = blocks
        .iter()
        .map(|b| {
            let encoded = base64_lines(&b.contents);
            format!("-----BEGIN CERTIFICATE-----\n{encoded}-----END CERTIFICATE-----\n")
        })
        .collect();
    Ok(ParsedCertificate {
        subject: leaf.subject().to_string(),
        issuer: leaf.issuer().to_string(),
        serial: leaf.raw_serial_as_string(),
        sans,
        common_name,
        not_before: rfc3339(not_before),
        not_after: rfc3339(not_after),
        fingerprint_sha256: fingerprint,
        chain_length: parsed.len(),
        pem,
    })
}

/// Standard base64 in 64-character lines, each ending in `\n`.
fn base64_lines(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut encoded = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        encoded.push(ALPHABET[(n >> 18) as usize & 63] as char);
        encoded.push(ALPHABET[(n >> 12) as usize & 63] as char);
        encoded.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        encoded.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 64 + 1);
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Whole days from `now` until `not_after` (negative once expired).
pub fn days_left(not_after: &str, now: OffsetDateTime) -> Option<i64> {
    let expiry = crate::clock::parse_time(not_after)?;
    let seconds = (expiry - now).whole_seconds();
    Some(seconds.div_euclid(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(parse_pem("hello")
            .unwrap_err()
            .contains("no PEM certificate"));
        let key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(parse_pem(key)
            .unwrap_err()
            .contains("PRIVATE KEY, not a CERTIFICATE"));
        let junk = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(parse_pem(junk)
            .unwrap_err()
            .contains("not a valid X.509 certificate"));
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64_lines(b"foobar"), "Zm9vYmFy\n");
        assert_eq!(base64_lines(b"fooba"), "Zm9vYmE=\n");
        assert_eq!(base64_lines(b"f"), "Zg==\n");
    }

    #[test]
    fn days_left_counts_whole_days_and_goes_negative() {
        let now = crate::clock::parse_time("2026-11-24T12:00:00Z").unwrap();
        assert_eq!(days_left("2026-12-04T12:00:00Z", now), Some(10));
        assert_eq!(days_left("2026-12-04T11:59:59Z", now), Some(9));
        assert_eq!(days_left("2026-11-23T12:00:00Z", now), Some(-1));
    }
}
