//! The split-AES key material: a participant's secret share ([`SplitAesKeyShare`]) and the public part every
//! participant and the coordinator hold ([`SplitAesPublicKeys`]), with versioned encodings for storage.
//!
//! Encodings (integers big-endian, points as 32-byte compressed ristretto255):
//!
//! * [`SplitAesPublicKeys`]: `version (1) ‖ threshold u16 ‖ n u16 ‖ K ‖ n × (participant u16 ‖ g^{k_m})`,
//!   participants strictly ascending;
//! * [`SplitAesKeyShare`]: `version (1) ‖ participant u16 ‖ k_i (32-byte canonical scalar) ‖ public keys`.
//!
//! Decoding checks everything that can be checked: the version ([`ProtocolError::UnsupportedVersion`]
//! otherwise), the exact length, every point (canonical encoding that decompresses), that the public shares
//! lie on one polynomial of degree exactly `threshold − 1` whose value at 0 is `K`, and for a key share that
//! `g^{k_i}` equals the participant's public share.

use std::collections::BTreeMap;
use std::fmt;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::ProtocolError;
use crate::party::ParticipantId;
use crate::reshare::polynomial::shares_are_consistent;

/// Version byte of the [`SplitAesPublicKeys`] encoding.
pub const PUBLIC_KEYS_FORMAT_VERSION: u8 = 1;
/// Version byte of the [`SplitAesKeyShare`] encoding.
pub const KEY_SHARE_FORMAT_VERSION: u8 = 1;

/// Decompresses a 32-byte ristretto255 encoding (refusing non-canonical ones).
pub(crate) fn decode_point(bytes: &[u8; 32], what: &str) -> Result<RistrettoPoint, ProtocolError> {
    CompressedRistretto(*bytes)
        .decompress()
        .ok_or_else(|| ProtocolError::Encoding(format!("{what}: not a ristretto255 point")))
}

/// Takes `N` bytes off the front of `input`.
pub(crate) fn take<'a, const N: usize>(
    input: &mut &'a [u8],
    what: &str,
) -> Result<&'a [u8; N], ProtocolError> {
    let (head, rest) = input
        .split_first_chunk::<N>()
        .ok_or_else(|| ProtocolError::Encoding(format!("{what}: truncated")))?;
    *input = rest;
    Ok(head)
}

/// The public part of a split-AES key: the group key `K = g^k`, the threshold, and every participant's public
/// share `g^{k_m}`. Holds no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SplitAesPublicKeys {
    threshold: u16,
    group_key: RistrettoPoint,
    shares: BTreeMap<ParticipantId, RistrettoPoint>,
}

impl SplitAesPublicKeys {
    /// Checks and wraps: ids nonzero, `2 <= threshold <= n`, `K` not the identity, and all public shares and
    /// `K` (at 0) on one polynomial of degree exactly `threshold − 1` (interpolated from the first
    /// `threshold` shares).
    pub(crate) fn new(
        threshold: u16,
        group_key: RistrettoPoint,
        shares: BTreeMap<ParticipantId, RistrettoPoint>,
    ) -> Result<Self, ProtocolError> {
        if shares.contains_key(&0) {
            return Err(ProtocolError::InvalidParameters(
                "participant id 0 is not allowed".into(),
            ));
        }
        if threshold < 2 || usize::from(threshold) > shares.len() {
            return Err(ProtocolError::InvalidParameters(format!(
                "threshold {threshold} does not fit {} participants",
                shares.len()
            )));
        }
        if group_key == RistrettoPoint::identity() {
            return Err(ProtocolError::InvalidParameters(
                "group key is the identity".into(),
            ));
        }
        // One polynomial of degree exactly t − 1 (so that the threshold cannot be raised in a stored encoding
        // unnoticed) through K at 0: the check every reshared key passes too.
        let located: Vec<(u64, RistrettoPoint)> =
            shares.iter().map(|(id, p)| (u64::from(*id), *p)).collect();
        let consistent = shares_are_consistent(threshold, &group_key, &located)?;
        if !consistent {
            return Err(ProtocolError::InvalidParameters(
                "public shares do not lie on one polynomial of degree < threshold through the group key"
                    .into(),
            ));
        }
        Ok(SplitAesPublicKeys {
            threshold,
            group_key,
            shares,
        })
    }

    /// How many participants must evaluate for a key to be derived.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The participants holding a share, ascending.
    pub fn participants(&self) -> Vec<ParticipantId> {
        self.shares.keys().copied().collect()
    }

    /// The group key `K = g^k`, compressed. It identifies the key; nothing is encrypted "to" it.
    pub fn group_public_key(&self) -> [u8; 32] {
        self.group_key.compress().to_bytes()
    }

    /// The public share `g^{k_m}` of `participant`, compressed; `None` if it holds no share.
    pub fn public_share(&self, participant: ParticipantId) -> Option<[u8; 32]> {
        self.shares
            .get(&participant)
            .map(|p| p.compress().to_bytes())
    }

    pub(crate) fn public_share_point(&self, participant: ParticipantId) -> Option<&RistrettoPoint> {
        self.shares.get(&participant)
    }

    /// The group key `K = g^k`.
    pub(crate) fn group_key_point(&self) -> &RistrettoPoint {
        &self.group_key
    }

    /// The versioned encoding (see the module documentation).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 2 + 2 + 32 + self.shares.len() * 34);
        out.push(PUBLIC_KEYS_FORMAT_VERSION);
        out.extend_from_slice(&self.threshold.to_be_bytes());
        // `new` only accepts up to u16::MAX distinct nonzero ids.
        let n = u16::try_from(self.shares.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(self.group_key.compress().as_bytes());
        for (id, point) in &self.shares {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(point.compress().as_bytes());
        }
        out
    }

    /// Decodes [`SplitAesPublicKeys::to_bytes`], checking the version, the length, every point and the
    /// consistency of the shares with the group key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        let mut input = bytes;
        let keys = Self::decode(&mut input)?;
        if !input.is_empty() {
            return Err(ProtocolError::Encoding(
                "trailing bytes after split-AES public keys".into(),
            ));
        }
        Ok(keys)
    }

    /// Decodes one encoding off the front of `input`.
    fn decode(input: &mut &[u8]) -> Result<Self, ProtocolError> {
        const WHAT: &str = "split-AES public keys";
        let [version] = *take::<1>(input, WHAT)?;
        if version != PUBLIC_KEYS_FORMAT_VERSION {
            return Err(ProtocolError::UnsupportedVersion(version));
        }
        let threshold = u16::from_be_bytes(*take::<2>(input, WHAT)?);
        let n = u16::from_be_bytes(*take::<2>(input, WHAT)?);
        let group_key = decode_point(take::<32>(input, WHAT)?, "group key")?;
        let mut shares = BTreeMap::new();
        let mut previous = 0u16;
        for _ in 0..n {
            let id = u16::from_be_bytes(*take::<2>(input, WHAT)?);
            if id <= previous {
                return Err(ProtocolError::Encoding(
                    "public shares: participant ids not strictly ascending and nonzero".into(),
                ));
            }
            previous = id;
            let point = decode_point(take::<32>(input, WHAT)?, "public share")?;
            shares.insert(id, point);
        }
        Self::new(threshold, group_key, shares)
            .map_err(|e| ProtocolError::Encoding(format!("{WHAT}: {e}")))
    }
}

impl fmt::Debug for SplitAesPublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplitAesPublicKeys")
            .field("group_public_key", &hex::encode(self.group_public_key()))
            .field("threshold", &self.threshold)
            .field("participants", &self.participants())
            .finish()
    }
}

/// One participant's share of a split-AES key: the secret scalar `k_i` (a Shamir share of the DPRF key `k`,
/// which no one ever holds) and the public keys.
///
/// The scalar is zeroized on drop; `Debug` does not print it; equality is constant-time. It MUST NOT leave the
/// node except sealed at rest.
pub struct SplitAesKeyShare {
    participant: ParticipantId,
    secret: Zeroizing<Scalar>,
    public: SplitAesPublicKeys,
}

impl SplitAesKeyShare {
    /// Checks that `participant` holds a share in `public` and that `g^{secret}` is its public share.
    pub(crate) fn new(
        participant: ParticipantId,
        secret: Zeroizing<Scalar>,
        public: SplitAesPublicKeys,
    ) -> Result<Self, ProtocolError> {
        let expected = public.public_share_point(participant).ok_or_else(|| {
            ProtocolError::InvalidParameters(format!(
                "participant {participant} holds no share of this key"
            ))
        })?;
        if RistrettoPoint::mul_base(&secret) != *expected {
            return Err(ProtocolError::InvalidParameters(
                "secret share does not match its public share".into(),
            ));
        }
        Ok(SplitAesKeyShare {
            participant,
            secret,
            public,
        })
    }

    /// The participant holding this share.
    pub fn participant(&self) -> ParticipantId {
        self.participant
    }

    /// How many participants must evaluate.
    pub fn threshold(&self) -> u16 {
        self.public.threshold
    }

    /// The group key `K = g^k`, compressed.
    pub fn group_public_key(&self) -> [u8; 32] {
        self.public.group_public_key()
    }

    /// A copy of the public part.
    pub fn public_keys(&self) -> SplitAesPublicKeys {
        self.public.clone()
    }

    pub(crate) fn public(&self) -> &SplitAesPublicKeys {
        &self.public
    }

    /// The secret scalar `k_i`.
    pub(crate) fn secret(&self) -> &Scalar {
        &self.secret
    }

    /// The versioned encoding (see the module documentation). It contains the secret share: seal it before
    /// it touches a disk.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let public = self.public.to_bytes();
        let mut out = Zeroizing::new(Vec::with_capacity(1 + 2 + 32 + public.len()));
        out.push(KEY_SHARE_FORMAT_VERSION);
        out.extend_from_slice(&self.participant.to_be_bytes());
        out.extend_from_slice(Zeroizing::new(self.secret.to_bytes()).as_slice());
        out.extend_from_slice(&public);
        out
    }

    /// Decodes [`SplitAesKeyShare::to_bytes`]; refuses other versions, non-canonical scalars, and a share that
    /// does not match its public share.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        const WHAT: &str = "split-AES key share";
        let mut input = bytes;
        let [version] = *take::<1>(&mut input, WHAT)?;
        if version != KEY_SHARE_FORMAT_VERSION {
            return Err(ProtocolError::UnsupportedVersion(version));
        }
        let participant = u16::from_be_bytes(*take::<2>(&mut input, WHAT)?);
        let secret_bytes = Zeroizing::new(*take::<32>(&mut input, WHAT)?);
        let secret: Option<Scalar> = Scalar::from_canonical_bytes(*secret_bytes).into();
        let secret = Zeroizing::new(secret.ok_or_else(|| {
            ProtocolError::Encoding(format!("{WHAT}: secret is not a canonical scalar"))
        })?);
        let public = SplitAesPublicKeys::from_bytes(input)?;
        Self::new(participant, secret, public)
            .map_err(|e| ProtocolError::Encoding(format!("{WHAT}: {e}")))
    }

    /// The 32-byte secret share scalar (little-endian). Used ONLY by a test that scans storage for it; never
    /// send or store it.
    pub fn secret_share_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.secret.to_bytes().to_vec())
    }
}

impl PartialEq for SplitAesKeyShare {
    fn eq(&self, other: &Self) -> bool {
        let same_secret: bool = self.secret.ct_eq(&other.secret).into();
        same_secret & (self.participant == other.participant) & (self.public == other.public)
    }
}

impl Eq for SplitAesKeyShare {}

impl fmt::Debug for SplitAesKeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplitAesKeyShare")
            .field("participant", &self.participant)
            .field("threshold", &self.public.threshold)
            .field("group_public_key", &hex::encode(self.group_public_key()))
            .field("secret_share", &"<redacted>")
            .finish()
    }
}
