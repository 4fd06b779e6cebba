//! The key algorithms the cluster offers, and the curves of threshold ECDSA.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A key's algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    /// Threshold EdDSA over Ed25519 (FROST, RFC 9591).
    Ed25519,
    /// Threshold ECDSA over NIST P-256 (DKLs23).
    EcdsaP256,
    /// Threshold ECDSA over secp256k1 (DKLs23).
    EcdsaSecp256k1,
    /// Split-AES: a threshold DPRF on ristretto255 derives a fresh AES-256-GCM key per message (DiSE).
    SplitAes256,
}

impl Algorithm {
    /// Every algorithm this build supports, by CLI name.
    pub const ALL: &'static [Algorithm] = &[
        Algorithm::Ed25519,
        Algorithm::EcdsaP256,
        Algorithm::EcdsaSecp256k1,
        Algorithm::SplitAes256,
    ];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::EcdsaP256 => "ecdsa-p256",
            Algorithm::EcdsaSecp256k1 => "ecdsa-secp256k1",
            Algorithm::SplitAes256 => "split-aes-256",
        }
    }

    /// Whether keys of this algorithm sign (the others encrypt).
    pub fn signs(self) -> bool {
        !matches!(self, Algorithm::SplitAes256)
    }

    /// The curve of an ECDSA algorithm.
    pub fn ecdsa_curve(self) -> Option<EcdsaCurve> {
        match self {
            Algorithm::Ed25519 | Algorithm::SplitAes256 => None,
            Algorithm::EcdsaP256 => Some(EcdsaCurve::P256),
            Algorithm::EcdsaSecp256k1 => Some(EcdsaCurve::Secp256k1),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                format!("unknown algorithm '{s}' (supported: {})", names.join(", "))
            })
    }
}

/// A curve on which threshold ECDSA keys can be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EcdsaCurve {
    /// secp256k1 (SEC 2), as used by Bitcoin and Ethereum; signatures are normalised to low-S.
    Secp256k1,
    /// NIST P-256 (FIPS 186, a.k.a. secp256r1, prime256v1).
    P256,
}

impl EcdsaCurve {
    /// The curve's usual name: `"secp256k1"` or `"P-256"`.
    pub fn name(self) -> &'static str {
        match self {
            EcdsaCurve::Secp256k1 => "secp256k1",
            EcdsaCurve::P256 => "P-256",
        }
    }

    /// The tag of this curve in our encodings (key shares, public keys, transcripts).
    pub fn tag(self) -> u8 {
        match self {
            EcdsaCurve::Secp256k1 => 1,
            EcdsaCurve::P256 => 2,
        }
    }

    /// The curve with encoding tag `tag`, if there is one.
    pub fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(EcdsaCurve::Secp256k1),
            2 => Some(EcdsaCurve::P256),
            _ => None,
        }
    }
}

impl fmt::Display for EcdsaCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn algorithm_names() {
        assert_eq!("ed25519".parse::<Algorithm>().unwrap(), Algorithm::Ed25519);
        let err = "rsa".parse::<Algorithm>().unwrap_err();
        assert!(err.contains("ed25519"), "{err}");
        for a in Algorithm::ALL {
            assert_eq!(a.name().parse::<Algorithm>().unwrap(), *a);
        }
    }

    #[test]
    fn curve_tags_round_trip() {
        for c in [EcdsaCurve::Secp256k1, EcdsaCurve::P256] {
            assert_eq!(EcdsaCurve::from_tag(c.tag()), Some(c));
        }
        assert_eq!(EcdsaCurve::from_tag(0), None);
    }
}
