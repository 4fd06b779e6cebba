//! What a reshare run gives each participant ([`ReshareOutput`]): the new public key material, the new share
//! (for a member of the new committee), the dealer set that was used, the dealers that were excluded and the
//! complaints that were refuted.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::group::ReshareGroup;
use super::shared_key::SharedKey;
use crate::error::ProtocolError;
use crate::party::{ParticipantId, SessionId};
use crate::secret::SecretBytes;

/// Version byte of the [`ReshareOutput`] encoding. Version 2 (the dispute round) replaced the exclusion on an
/// accuser's word by [`ExclusionReason::ComplaintUpheld`] and added the refuted complaints; version 1 is
/// refused (nothing stores it: a node keeps the share and public keys it converts the output into).
pub const RESHARE_OUTPUT_FORMAT_VERSION: u8 = 2;

/// Why a dealer was left out of the agreed dealer set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExclusionReason {
    /// Its round-1 broadcast was wrong in a way every participant checked identically (after the echo):
    /// missing commitments, a wrong number of them, an invalid point, or a constant term that is not its
    /// public share. This is proof of misbehaviour (or of a broken node).
    InvalidCommitments(String),
    /// These new holders complained about the sub-share it dealt them, and in the dispute round it did not
    /// answer, or answered with a sub-share that does not match its commitments. Everyone checked the same
    /// (echoed) answer against the same commitments: this is proof against the dealer, as much as
    /// [`ExclusionReason::InvalidCommitments`] is.
    ComplaintUpheld {
        /// The accusers whose complaints were upheld, ascending.
        by: Vec<ParticipantId>,
    },
}

/// A dealer that the participants agreed to leave out, and why. The run still completes when enough dealers
/// remain; the node or coordinator should log every exclusion (see [`ReshareOutput::blame`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExcludedDealer {
    /// The dealer.
    pub dealer: ParticipantId,
    /// Why.
    pub reason: ExclusionReason,
}

/// A complaint the accused dealer refuted in the dispute round: it revealed the sub-share it dealt the accuser,
/// and that sub-share matches its commitments (everyone checked it). The dealer stays in the dealer set, the
/// accuser's new share is made with the revealed sub-share, and the **accuser** is named
/// ([`ReshareOutput::blame`]).
///
/// What it proves: the dealer's dealing to the accuser is right, so the complaint was unfounded. What it does
/// not prove: that the accuser lied. Sub-shares travel privately and unsigned, so a dealer that sends a wrong
/// sub-share and then reveals the right one looks exactly like an honest dealer facing a false complaint. That
/// dealer gains nothing by it (the run completes with a correct sharing, and it stays in), but it can have an
/// honest holder named; so a single refuted complaint is a reason to look, not to remove the accuser. The same
/// pair turning up again and again is telling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefutedComplaint {
    /// The new holder that complained (named).
    pub accuser: ParticipantId,
    /// The dealer it complained about (kept).
    pub dealer: ParticipantId,
}

/// One participant's result of a reshare run. Every participant (dealers that leave included) learns the
/// new public key material; members of the new committee also get their new share.
///
/// The share is zeroized on drop and not printed by `Debug`. The encoding ([`ReshareOutput::to_bytes`])
/// contains it: seal it before it touches a disk.
pub struct ReshareOutput<G: ReshareGroup> {
    session: SessionId,
    participant: ParticipantId,
    key: SharedKey<G>,
    secret: Option<Zeroizing<G::Scalar>>,
    dealers: Vec<ParticipantId>,
    excluded: Vec<ExcludedDealer>,
    refuted: Vec<RefutedComplaint>,
}

/// The serde form of a [`ReshareOutput`] (after the version byte and the group tag).
#[derive(Serialize, Deserialize)]
struct OutputEncoding {
    session: SessionId,
    participant: ParticipantId,
    secret: Option<SecretBytes>,
    dealers: Vec<ParticipantId>,
    excluded: Vec<ExcludedDealer>,
    refuted: Vec<RefutedComplaint>,
    key: Vec<u8>,
}

impl<G: ReshareGroup> ReshareOutput<G> {
    /// Checks and wraps: a share must match its public share.
    pub(crate) fn new(
        session: SessionId,
        participant: ParticipantId,
        key: SharedKey<G>,
        secret: Option<Zeroizing<G::Scalar>>,
        dealers: Vec<ParticipantId>,
        excluded: Vec<ExcludedDealer>,
        refuted: Vec<RefutedComplaint>,
    ) -> Result<Self, ProtocolError> {
        if let Some(secret) = &secret {
            let public = key.public_share(participant).ok_or_else(|| {
                ProtocolError::InvalidParameters(format!(
                    "participant {participant} holds a share but is not in the new committee"
                ))
            })?;
            if G::mul_base(secret) != *public {
                return Err(ProtocolError::InvalidParameters(
                    "new share does not match its public share".into(),
                ));
            }
        }
        Ok(ReshareOutput {
            session,
            participant,
            key,
            secret,
            dealers,
            excluded,
            refuted,
        })
    }

    /// The run that produced it.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The participant it belongs to.
    pub fn participant(&self) -> ParticipantId {
        self.participant
    }

    /// The new public key material: new threshold, new committee, group key (unchanged), public shares.
    pub fn public(&self) -> &SharedKey<G> {
        &self.key
    }

    /// The new threshold.
    pub fn threshold(&self) -> u16 {
        self.key.threshold()
    }

    /// The new committee, ascending.
    pub fn committee(&self) -> Vec<ParticipantId> {
        self.key.participants()
    }

    /// The group key (the same as before the reshare).
    pub fn group_key(&self) -> &G {
        self.key.group_key()
    }

    /// True if this participant is in the new committee (and so holds a new share).
    pub fn holds_share(&self) -> bool {
        self.secret.is_some()
    }

    /// The new share, for a member of the new committee.
    pub(crate) fn secret(&self) -> Option<&G::Scalar> {
        self.secret.as_deref()
    }

    /// The dealers whose sub-shares were combined, ascending (every dealer that was not excluded).
    pub fn dealers(&self) -> &[ParticipantId] {
        &self.dealers
    }

    /// The dealers that were left out, and why (identical at every participant).
    pub fn excluded(&self) -> &[ExcludedDealer] {
        &self.excluded
    }

    /// The complaints that the accused dealers refuted in the dispute round, by accuser then dealer (identical
    /// at every participant). Each names its accuser; see [`RefutedComplaint`] for what that is worth.
    pub fn refuted_complaints(&self) -> &[RefutedComplaint] {
        &self.refuted
    }

    /// Everyone this run named, as a [`ProtocolError::Misbehaviour`], for logging with the same type as a
    /// failed run: the excluded dealers and the authors of refuted complaints. `None` if nobody was named.
    /// The run did succeed: this is not a failure. See [`ExclusionReason`] and [`RefutedComplaint`] for what
    /// each is worth.
    pub fn blame(&self) -> Option<ProtocolError> {
        if self.excluded.is_empty() && self.refuted.is_empty() {
            return None;
        }
        Some(ProtocolError::misbehaviour(
            self.excluded
                .iter()
                .map(|e| e.dealer)
                .chain(self.refuted.iter().map(|r| r.accuser)),
            describe_blame(&self.excluded, &self.refuted),
        ))
    }

    /// The versioned encoding: `version (2) ‖ group tag ‖ postcard(session, participant, share (32 bytes, if
    /// any), dealers, exclusions, refuted complaints, SharedKey encoding)`. It contains the new share: seal it.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let encoding = OutputEncoding {
            session: self.session,
            participant: self.participant,
            secret: self
                .secret
                .as_ref()
                .map(|s| SecretBytes::new(G::scalar_to_bytes(s).to_vec())),
            dealers: self.dealers.clone(),
            excluded: self.excluded.clone(),
            refuted: self.refuted.clone(),
            key: self.key.to_bytes(),
        };
        let Ok(body) = crate::ecdsa::encode_secret(&encoding, "reshare output") else {
            // Serializing plain values does not fail; an empty encoding never decodes.
            return Zeroizing::new(Vec::new());
        };
        let mut out = Zeroizing::new(Vec::with_capacity(2 + body.len()));
        out.push(RESHARE_OUTPUT_FORMAT_VERSION);
        out.push(G::TAG);
        out.extend_from_slice(body.expose());
        out
    }

    /// Decodes [`ReshareOutput::to_bytes`]: refuses other versions and groups, malformed and non-canonical
    /// encodings, and a share that does not match its public share.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProtocolError> {
        const WHAT: &str = "reshare output";
        let [version, group, body @ ..] = bytes else {
            return Err(ProtocolError::Encoding(format!("{WHAT} truncated")));
        };
        if *version != RESHARE_OUTPUT_FORMAT_VERSION {
            return Err(ProtocolError::UnsupportedVersion(*version));
        }
        if *group != G::TAG {
            return Err(ProtocolError::Encoding(format!(
                "{WHAT}: group tag {group} is not {}",
                G::NAME
            )));
        }
        let encoding: OutputEncoding = crate::ecdsa::decode(body)
            .ok_or_else(|| ProtocolError::Encoding(format!("malformed {WHAT}")))?;
        let key = SharedKey::from_bytes(&encoding.key)?;
        let secret = match &encoding.secret {
            None => None,
            Some(b) => {
                let bytes: Zeroizing<[u8; 32]> =
                    Zeroizing::new(b.expose().try_into().map_err(|_| {
                        ProtocolError::Encoding(format!("{WHAT}: share is not 32 bytes"))
                    })?);
                Some(Zeroizing::new(G::scalar_from_bytes(&bytes).ok_or_else(
                    || ProtocolError::Encoding(format!("{WHAT}: share is not a canonical scalar")),
                )?))
            }
        };
        let output = Self::new(
            encoding.session,
            encoding.participant,
            key,
            secret,
            encoding.dealers,
            encoding.excluded,
            encoding.refuted,
        )
        .map_err(|e| ProtocolError::Encoding(format!("{WHAT}: {e}")))?;
        if !bool::from(output.to_bytes().as_slice().ct_eq(bytes)) {
            return Err(ProtocolError::Encoding(format!(
                "{WHAT} is not in canonical encoding"
            )));
        }
        Ok(output)
    }
}

/// `"excluded from the reshare: dealer 3: …; dealer 5: …; refuted complaints: 1 against dealer 2 (…)"`.
pub(crate) fn describe_blame(excluded: &[ExcludedDealer], refuted: &[RefutedComplaint]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !excluded.is_empty() {
        let dealers: Vec<String> = excluded
            .iter()
            .map(|e| match &e.reason {
                ExclusionReason::InvalidCommitments(why) => {
                    format!("dealer {}: invalid commitments ({why})", e.dealer)
                }
                ExclusionReason::ComplaintUpheld { by } => format!(
                    "dealer {}: complaints of {by:?} upheld (no answer, or a revealed sub-share that does not \
                     match its commitments)",
                    e.dealer
                ),
            })
            .collect();
        parts.push(format!("excluded from the reshare: {}", dealers.join("; ")));
    }
    if !refuted.is_empty() {
        let complaints: Vec<String> = refuted
            .iter()
            .map(|r| format!("{} against dealer {}", r.accuser, r.dealer))
            .collect();
        parts.push(format!(
            "refuted complaints (the dealer revealed a sub-share that matches its commitments; the accuser \
             is named): {}",
            complaints.join("; ")
        ));
    }
    parts.join("; ")
}

impl<G: ReshareGroup> fmt::Debug for ReshareOutput<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReshareOutput")
            .field("session", &self.session)
            .field("participant", &self.participant)
            .field("key", &self.key)
            .field(
                "share",
                &if self.secret.is_some() {
                    "<redacted>"
                } else {
                    "none"
                },
            )
            .field("dealers", &self.dealers)
            .field("excluded", &self.excluded)
            .field("refuted", &self.refuted)
            .finish()
    }
}
