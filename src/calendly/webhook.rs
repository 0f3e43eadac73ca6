//! Calendly webhook signatures: `Calendly-Webhook-Signature: t=<unix>,v1=<hex>`
//! where `v1` is HMAC-SHA256 over `"<t>." + raw body` keyed with the
//! subscription's signing key.
//!
//! The simulator signs with [`sign`]; the webhook route verifies with
//! [`verify`], over the raw body bytes, in constant time, within a tolerance.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use thiserror::Error;

/// The header Calendly signs its deliveries with.
pub const SIGNATURE_HEADER: &str = "Calendly-Webhook-Signature";

/// Calendly's own example code rejects deliveries older than three minutes.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(180);

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery's signature was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the Calendly-Webhook-Signature header is missing or malformed")]
    Malformed,
    #[error("the delivery's timestamp is outside the allowed {0} s")]
    Expired(u64),
    #[error("the signature does not match the body")]
    Mismatch,
}

/// The header value for `body` signed with `key` at unix time `timestamp`.
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(signed_mac(key, timestamp, body).finalize().into_bytes())
    )
}

/// Checks `header` against `body`: well-formed, no further than `tolerance`
/// from `now` (unix seconds), and an HMAC that matches.
pub fn verify(
    key: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    verify_any(&[key], header, body, now, tolerance)
}

/// [`verify`] against several keys (one per subscription): any may match.
pub fn verify_any(
    keys: &[&[u8]],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let (timestamp, signatures) = parse_header(header)?;
    let tolerance_s = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(timestamp) > tolerance_s.unsigned_abs() {
        return Err(SignatureError::Expired(tolerance.as_secs()));
    }
    // Any v1 may match (a key rotation can send two); each check is constant time.
    let matched = keys.iter().any(|key| {
        let mac = signed_mac(key, timestamp, body);
        signatures
            .iter()
            .any(|sig| mac.clone().verify_slice(sig).is_ok())
    });
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `t=…,v1=…[,v1=…]` → the timestamp and the decoded signatures.
fn parse_header(header: &str) -> Result<(i64, Vec<Vec<u8>>), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key.trim() {
            "t" => {
                let t: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| SignatureError::Malformed)?;
                if timestamp.replace(t).is_some() {
                    return Err(SignatureError::Malformed);
                }
            }
            "v1" => {
                signatures.push(hex::decode(value.trim()).map_err(|_| SignatureError::Malformed)?)
            }
            _ => {} // future schemes are ignored, as Calendly's docs advise
        }
    }
    match timestamp {
        Some(t) if !signatures.is_empty() => Ok((t, signatures)),
        _ => Err(SignatureError::Malformed),
    }
}

/// The HMAC state after `"<t>." + body`, ready to finalize or verify.
fn signed_mac(key: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"signing-key";
    const BODY: &[u8] = br#"{"event":"invitee.created","payload":{"email":"a@b.c"}}"#;
    const NOW: i64 = 1_764_000_000;

    #[test]
    fn a_signed_body_verifies() {
        let header = sign(KEY, NOW, BODY);
        assert_eq!(
            verify(KEY, &header, BODY, NOW + 10, DEFAULT_TOLERANCE),
            Ok(())
        );
    }

    #[test]
    fn the_signature_is_hmac_sha256_over_t_dot_body_in_lowercase_hex() {
        // Computed independently with Python's hmac module.
        assert_eq!(
            sign(b"k", 1, b"x"),
            "t=1,v1=976cb87e4f568d1c0f03f32859e90af8597cf00b978ba37c229c97d3a15b8449"
        );
    }

    #[test]
    fn a_tampered_body_a_wrong_key_and_an_old_timestamp_are_refused() {
        let header = sign(KEY, NOW, BODY);
        let tampered = br#"{"event":"invitee.created","payload":{"email":"x@b.c"}}"#;
        assert_eq!(
            verify(KEY, &header, tampered, NOW, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other-key", &header, BODY, NOW, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(KEY, &header, BODY, NOW + 181, DEFAULT_TOLERANCE),
            Err(SignatureError::Expired(180))
        );
    }

    #[test]
    fn any_of_several_keys_may_match() {
        let header = sign(b"second", NOW, BODY);
        let keys: [&[u8]; 2] = [b"first", b"second"];
        assert_eq!(
            verify_any(&keys, &header, BODY, NOW, DEFAULT_TOLERANCE),
            Ok(())
        );
        assert_eq!(
            verify_any(&keys[..1], &header, BODY, NOW, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_any(&[], &header, BODY, NOW, DEFAULT_TOLERANCE),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in [
            "",
            "t=1",
            "v1=abcd",
            "t=x,v1=ab",
            "t=1,v1=zz",
            "t=1;v1=ab",
            "t=1,t=2,v1=ab",
        ] {
            assert_eq!(
                verify(KEY, header, BODY, 1, DEFAULT_TOLERANCE),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }
}
