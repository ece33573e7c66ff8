//! Optional signatures of listings and refs: HMAC-SHA256 over the object's key and bytes,
//! stored beside it as `<key>.sig` (hex). Blobs need none: their key is their digest.
//! With a key configured, a listing or ref without a valid signature is a miss.

use ring::hmac;

/// Signs and checks with one team key.
pub(crate) struct Signer(hmac::Key);

impl Signer {
    pub(crate) fn new(key: &[u8]) -> Self {
        Signer(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    fn message(key: &str, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::with_capacity(key.len() + 1 + body.len());
        m.extend_from_slice(key.as_bytes());
        m.push(b'\n');
        m.extend_from_slice(body);
        m
    }

    /// The signature of `body` stored at `key`, as hex.
    pub(crate) fn sign(&self, key: &str, body: &[u8]) -> String {
        use std::fmt::Write as _;
        hmac::sign(&self.0, &Self::message(key, body)).as_ref().iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// Whether `signature` (hex) signs `body` at `key`; constant time.
    pub(crate) fn verify(&self, key: &str, body: &[u8], signature: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(signature) else { return false };
        let text = text.trim();
        if text.len() != 64 {
            return false;
        }
        let raw: Option<Vec<u8>> =
            (0..32).map(|i| text.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
        raw.is_some_and(|raw| hmac::verify(&self.0, &Self::message(key, body), &raw).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_key_and_bytes_only() {
        let s = Signer::new(b"team secret");
        let sig = s.sign("v1/refs/models/a--b/main", b"{}");
        assert!(s.verify("v1/refs/models/a--b/main", b"{}", sig.as_bytes()));
        assert!(!s.verify("v1/refs/models/a--b/dev", b"{}", sig.as_bytes()), "moved to another key");
        assert!(!s.verify("v1/refs/models/a--b/main", b"{ }", sig.as_bytes()), "other bytes");
        assert!(!Signer::new(b"other").verify("v1/refs/models/a--b/main", b"{}", sig.as_bytes()), "other key");
        assert!(!s.verify("k", b"", b"zz"));
    }
}
