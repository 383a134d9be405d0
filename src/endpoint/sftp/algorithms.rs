//! Which SSH algorithms wharf offers (key exchange, cipher, MAC; host-key types come from
//! `hostkey`), in which order, and how a negotiation that found nothing in common is told.
//!
//! Owns the lists, and the reasons for their order; it does not decide trust in a host key.

use std::borrow::Cow;

use russh::keys::Algorithm;
use russh::{AlgorithmKind, Preferred, cipher, kex, mac};

/// Key exchanges, most preferred first: russh's defaults (post-quantum hybrid, curve25519,
/// the finite-field groups), then the NIST curves. `ecdh-sha2-nistp*` are what FIPS-mode and
/// several commercial servers offer, and often all they offer; they come last so that every
/// server which negotiated something else before keeps negotiating it, and because curve25519
/// is the safer curve (constant-time by construction, parameters that explain themselves).
/// A server that has curve25519 or a DH group never gets a NIST curve.
const KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::DH_GEX_SHA256,
    kex::DH_G18_SHA512,
    kex::DH_G17_SHA512,
    kex::DH_G16_SHA512,
    kex::DH_G15_SHA512,
    kex::DH_G14_SHA256,
    kex::ECDH_SHA2_NISTP256,
    kex::ECDH_SHA2_NISTP384,
    kex::ECDH_SHA2_NISTP521,
    // Not algorithms: "I take SSH_MSG_EXT_INFO" and OpenSSH's strict key exchange (Terrapin),
    // as russh's defaults have them.
    kex::EXTENSION_SUPPORT_AS_CLIENT,
    kex::EXTENSION_SUPPORT_AS_SERVER,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
];

/// Ciphers in order of preference: AES-GCM first. With AES-NI, aws-lc's AES-GCM costs this
/// side a fraction of ChaCha20-Poly1305, and OpenSSH's server side (OpenSSL's AES-GCM against
/// its own portable ChaCha20) is 1.25–1.5× cheaper end to end (docs/performance.md); on two
/// shared cores that is throughput. Both are AEAD ciphers. OpenSSH's client prefers ChaCha20
/// for CPUs without AES instructions, which servers that wharf talks to rarely are.
const CIPHERS: &[cipher::Name] =
    &[cipher::AES_128_GCM, cipher::AES_256_GCM, cipher::CHACHA20_POLY1305, cipher::AES_256_CTR, cipher::AES_192_CTR, cipher::AES_128_CTR];

/// MACs (only used with the CTR ciphers; the AEAD ones carry their own): SHA-2, encrypt-then-
/// MAC first, then HMAC-SHA1. HMAC's strength does not rest on SHA-1's broken collision
/// resistance, and FIPS-mode and older commercial servers often offer nothing else; last, so
/// no server that offers a SHA-2 MAC gets SHA-1.
const MACS: &[mac::Name] =
    &[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM, mac::HMAC_SHA512, mac::HMAC_SHA256, mac::HMAC_SHA1_ETM, mac::HMAC_SHA1];

/// What wharf offers, with `host_keys` (most preferred first) as the host-key types.
pub(super) fn preferred(host_keys: Vec<Algorithm>) -> Preferred {
    Preferred {
        kex: Cow::Borrowed(KEX),
        key: Cow::Owned(host_keys),
        cipher: Cow::Borrowed(CIPHERS),
        mac: Cow::Borrowed(MACS),
        ..Preferred::DEFAULT
    }
}

/// The sentence for a negotiation that found no common algorithm of `kind`: what the server
/// offered and what wharf offers, so the partner can be asked for one of ours.
pub(super) fn no_common(kind: &AlgorithmKind, ours: &[String], theirs: &[String]) -> String {
    let what = match kind {
        AlgorithmKind::Kex => "key exchange",
        AlgorithmKind::Key => "host key type",
        AlgorithmKind::Cipher => "cipher",
        AlgorithmKind::Mac => "MAC",
        AlgorithmKind::Compression => "compression",
    };
    // The extension markers are not algorithms a server could be asked to enable.
    let real = |l: &[String]| -> String {
        let names: Vec<&str> = l.iter().map(String::as_str).filter(|n| !is_marker(n)).collect();
        if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
    };
    format!(
        "no common {what} with the server: it offers {}; wharf offers {}; ask the partner to enable one of wharf's",
        real(theirs),
        real(ours)
    )
}

/// `ext-info-c`, `kex-strict-c-v00@openssh.com` and their server twins.
fn is_marker(name: &str) -> bool {
    name.starts_with("ext-info-") || name.starts_with("kex-strict-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_legacy_algorithms_come_after_every_modern_one() {
        let pos = |n: kex::Name| KEX.iter().position(|k| *k == n).unwrap();
        assert!(pos(kex::ECDH_SHA2_NISTP256) > pos(kex::DH_G14_SHA256));
        assert!(pos(kex::ECDH_SHA2_NISTP256) > pos(kex::CURVE25519));
        // Everything russh offers by default is still offered, in the same order.
        let defaults: Vec<_> = Preferred::DEFAULT.kex.iter().filter(|k| !is_marker(k.as_ref())).cloned().collect();
        let ours: Vec<_> = KEX.iter().filter(|k| defaults.contains(k)).cloned().collect();
        assert_eq!(ours, defaults);
        assert_eq!(&MACS[..4], &Preferred::DEFAULT.mac[..]);
        assert_eq!(MACS.last(), Some(&mac::HMAC_SHA1));
    }

    #[test]
    fn a_failed_negotiation_names_both_sides_without_the_markers() {
        let ours: Vec<String> = KEX.iter().map(|k| k.as_ref().to_string()).collect();
        let theirs = vec!["diffie-hellman-group1-sha1".to_string(), "kex-strict-s-v00@openssh.com".to_string()];
        let msg = no_common(&AlgorithmKind::Kex, &ours, &theirs);
        assert!(
            msg.starts_with("no common key exchange with the server: it offers diffie-hellman-group1-sha1; wharf offers mlkem"),
            "{msg}"
        );
        assert!(msg.contains("ecdh-sha2-nistp256") && !msg.contains("kex-strict") && !msg.contains("ext-info"), "{msg}");
    }
}
