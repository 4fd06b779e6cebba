//! The reshare state machine ([`Reshare`]), generic over the group. See [`super`] for the protocol, the
//! agreement rule and the security argument.
//!
//! **Abort policy**, as in [`crate::frost::dkg`] (the crate's generic runner): after a failure the secrets (the
//! dealer's share, its own sub-share, the sub-shares it dealt and received, the answers of the dispute round)
//! are wiped and every later call fails with [`ProtocolError::State`], except messages that do not belong to
//! the run ([`ProtocolError::WrongSession`], a sender outside the run), which are refused without touching it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use super::group::ReshareGroup;
use super::message::{
    answers_digest, complaints_payload, parse_complaints, DealPayload, ReshareBody, ReshareMessage,
    RESHARE_MESSAGE_VERSION,
};
use super::output::{
    describe_blame, ExcludedDealer, ExclusionReason, RefutedComplaint, ReshareOutput,
};
use super::polynomial::{evaluate, evaluate_in_exponent, lagrange_coefficient};
use super::shared_key::{DealerSecret, SharedKey};
use crate::echo::EchoBroadcast;
use crate::error::ProtocolError;
use crate::party::{Outgoing, ParticipantId, Protocol, Recipient, SessionId};
use crate::runner::{self, Machine, Runner};
use crate::secret::SecretBytes;

/// Domain separation tag of the echo digests of round-1 payloads.
pub const DEAL_ECHO_DOMAIN: &[u8] = b"vhsm/reshare/deal-echo/v1";
/// Domain separation tag of the echo digests of complaint lists.
pub const VERDICT_ECHO_DOMAIN: &[u8] = b"vhsm/reshare/verdict-echo/v1";
/// Domain separation tag of the echo digests of the dispute round's answers.
pub const ANSWER_ECHO_DOMAIN: &[u8] = b"vhsm/reshare/answer-echo/v1";
/// Domain separation tag of the context digest.
pub const CONTEXT_DOMAIN: &[u8] = b"vhsm/reshare/context/v1";

/// The roles of a reshare run, identical at every participant except `me`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReshareParams {
    /// The run's session id (fresh for every run).
    pub session: SessionId,
    /// This participant.
    pub me: ParticipantId,
    /// The old holders that deal: distinct members of the old committee, at least the old threshold many.
    /// All of them must take part; the run goes on without those that are excluded for misbehaviour, as
    /// long as at least the old threshold many remain.
    pub dealers: Vec<ParticipantId>,
    /// The new committee: distinct nonzero ids (it may overlap the old committee, or equal it).
    pub new_committee: Vec<ParticipantId>,
    /// The new threshold, `2 <= new_threshold <= new committee size`.
    pub new_threshold: u16,
}

/// The phases of a started run (before, after and on failure: see [`runner::Status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Round-1 messages sent; waiting for every round-1 payload and every sub-share for me.
    Dealt,
    /// Verdict sent; waiting for the verdicts of the others.
    Verdict,
    /// Echo of the verdicts and my answers sent; waiting for the answers of the others.
    Answer,
    /// Echo of the answers sent; waiting for the echoes of the others.
    Echo,
}

/// What a participant must forget when the run ends; held (and wiped on abort or finish) by its [`Runner`].
pub(crate) struct Secrets<G: ReshareGroup> {
    /// This participant's share of the old key, if it deals; taken when it deals.
    dealer: Option<DealerSecret<G>>,
    /// My own polynomial at my own new x-coordinate, if I deal and stay.
    own_sub_share: Option<Zeroizing<G::Scalar>>,
    /// Sub-shares received, by dealer (may arrive before I started).
    sub_shares: BTreeMap<ParticipantId, SecretBytes>,
    /// The sub-shares I dealt, by new holder (me excepted), kept to answer complaints.
    dealt: BTreeMap<ParticipantId, SecretBytes>,
    /// The answers of the dispute round, by answering participant (me included), then by accuser: revealed
    /// sub-shares. Disclosed to every participant, but one of them may end up in a holder's new share.
    answers: BTreeMap<ParticipantId, BTreeMap<ParticipantId, SecretBytes>>,
}

// Every field zeroizes itself on drop (`DealerSecret` and `Zeroizing` hold zeroizing scalars, the sub-shares
// and answers are `SecretBytes`).
impl<G: ReshareGroup> ZeroizeOnDrop for Secrets<G> {}

/// One participant of a reshare run in the group `G`. See the [module documentation](super).
pub struct Reshare<G: ReshareGroup> {
    session: SessionId,
    me: ParticipantId,
    old: SharedKey<G>,
    old_committee: Vec<ParticipantId>,
    dealers: BTreeSet<ParticipantId>,
    new_committee: Vec<ParticipantId>,
    new_threshold: u16,
    participants: BTreeSet<ParticipantId>,
    context: [u8; 32],
    /// Status, secrets and output.
    runner: Runner<Phase, Secrets<G>, ReshareOutput<G>>,
    /// Round-1 payloads and their echoes.
    deals: EchoBroadcast,
    /// Round-2 complaint lists and their echoes.
    verdicts: EchoBroadcast,
    /// Round-3 answers (their [`answers_digest`]; the answers themselves are in the secrets) and their echoes.
    answers: EchoBroadcast,
    /// Fault injection: the new holders this dealer deals a wrong sub-share to (and stands by).
    #[cfg(any(test, feature = "fault-injection"))]
    wrong_sub_shares_to: BTreeSet<ParticipantId>,
    /// Fault injection: the dealers this new holder complains about whatever they dealt it (false complaints).
    #[cfg(any(test, feature = "fault-injection"))]
    false_complaints_about: BTreeSet<ParticipantId>,
}

/// What the agreement rule decided: identical at every participant whose echoes all agreed. Public.
#[derive(Debug)]
struct Resolution<G: ReshareGroup> {
    /// The commitments of the agreed dealers, by dealer.
    commitments: BTreeMap<ParticipantId, Vec<G>>,
    /// The dealers left out, ascending.
    excluded: Vec<ExcludedDealer>,
    /// The complaints the dealers refuted, by accuser then dealer.
    refuted: Vec<RefutedComplaint>,
}

impl<G: ReshareGroup> Reshare<G> {
    /// Checks the parameters and prepares a run.
    ///
    /// * `old` is the public part of the key as it is now. Every participant must be given the same (a new
    ///   holder gets it from the holders, which store it): the digest of everything in `params` and `old` is
    ///   echoed, and a participant that was given something else is named when the run finishes, so a
    ///   joining holder cannot be talked into accepting a sharing of another key;
    /// * `secret` is this participant's share of it: required if `me` is a dealer (and checked against its
    ///   public share), refused otherwise.
    pub fn new(
        params: ReshareParams,
        old: SharedKey<G>,
        secret: Option<DealerSecret<G>>,
    ) -> Result<Self, ProtocolError> {
        let ReshareParams {
            session,
            me,
            dealers,
            new_committee,
            new_threshold,
        } = params;
        let invalid = |why: String| Err(ProtocolError::InvalidParameters(why));
        let dealer_set: BTreeSet<ParticipantId> = dealers.iter().copied().collect();
        if dealer_set.len() != dealers.len() {
            return invalid("duplicate dealer ids".into());
        }
        if let Some(d) = dealer_set.iter().find(|d| old.public_share(**d).is_none()) {
            return invalid(format!("dealer {d} holds no share of the key"));
        }
        if dealer_set.len() < usize::from(old.threshold()) {
            return invalid(format!(
                "{} dealers cannot deal a key of threshold {}",
                dealer_set.len(),
                old.threshold()
            ));
        }
        let new_set: BTreeSet<ParticipantId> = new_committee.iter().copied().collect();
        if new_set.len() != new_committee.len() {
            return invalid("duplicate ids in the new committee".into());
        }
        if new_set.contains(&0) {
            return invalid("participant id 0 is not allowed".into());
        }
        let n = u16::try_from(new_set.len())
            .map_err(|_| ProtocolError::InvalidParameters("new committee too large".into()))?;
        if new_threshold < 2 || new_threshold > n {
            return invalid(format!(
                "new threshold {new_threshold} must be between 2 and the new committee size ({n})"
            ));
        }
        let participants: BTreeSet<ParticipantId> = dealer_set.union(&new_set).copied().collect();
        if !participants.contains(&me) {
            return invalid(format!(
                "participant {me} is neither a dealer nor a new holder"
            ));
        }
        match (&secret, dealer_set.contains(&me)) {
            (None, true) => return invalid(format!("dealer {me} needs its share")),
            (Some(_), false) => return invalid(format!("{me} is not a dealer but got a share")),
            (Some(s), true) => {
                if old.public_share(me) != Some(&G::mul_base(s.expose())) {
                    return invalid(format!("the share of {me} does not match its public share"));
                }
            }
            (None, false) => {}
        }
        let new_committee: Vec<ParticipantId> = new_set.into_iter().collect();
        let dealers_sorted: Vec<ParticipantId> = dealer_set.iter().copied().collect();
        let context = context_digest(
            &session,
            &old,
            &dealers_sorted,
            &new_committee,
            new_threshold,
        );
        let deals =
            EchoBroadcast::new(DEAL_ECHO_DOMAIN, session, me, participants.iter().copied())?;
        let verdicts = EchoBroadcast::new(
            VERDICT_ECHO_DOMAIN,
            session,
            me,
            participants.iter().copied(),
        )?;
        let answers = EchoBroadcast::new(
            ANSWER_ECHO_DOMAIN,
            session,
            me,
            participants.iter().copied(),
        )?;
        Ok(Reshare {
            session,
            me,
            old_committee: old.participants(),
            old,
            dealers: dealer_set,
            new_committee,
            new_threshold,
            participants,
            context,
            runner: Runner::new(
                "reshare",
                Secrets {
                    dealer: secret,
                    own_sub_share: None,
                    sub_shares: BTreeMap::new(),
                    dealt: BTreeMap::new(),
                    answers: BTreeMap::new(),
                },
            ),
            deals,
            verdicts,
            answers,
            #[cfg(any(test, feature = "fault-injection"))]
            wrong_sub_shares_to: BTreeSet::new(),
            #[cfg(any(test, feature = "fault-injection"))]
            false_complaints_about: BTreeSet::new(),
        })
    }

    /// The run's session id.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// True if the run failed; it cannot be resumed.
    pub fn is_aborted(&self) -> bool {
        self.runner.is_aborted()
    }

    /// Every participant of the run (dealers and new holders), ascending: where [`Recipient::All`] goes.
    pub fn participants(&self) -> Vec<ParticipantId> {
        self.participants.iter().copied().collect()
    }

    fn is_dealer(&self, id: ParticipantId) -> bool {
        self.dealers.contains(&id)
    }

    fn is_receiver(&self, id: ParticipantId) -> bool {
        self.new_committee.binary_search(&id).is_ok()
    }

    /// The x-coordinate of `id` in the new committee.
    fn new_x(&self, id: ParticipantId) -> Result<G::Scalar, ProtocolError> {
        self.old
            .evaluation_points()
            .x(&self.new_committee, id)
            .map(G::scalar_from_u64)
            .ok_or_else(|| ProtocolError::State(format!("{id} is not in the new committee")))
    }

    fn message(&self, to: Recipient, body: ReshareBody) -> Outgoing<ReshareMessage> {
        Outgoing {
            to,
            message: ReshareMessage::new(self.session, body),
        }
    }

    /// Round 1: deal (if a dealer) and broadcast the deal payload.
    fn deal<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<ReshareMessage>>, ProtocolError> {
        let mut out = Vec::new();
        let commitments = match self.runner.secrets_mut()?.dealer.take() {
            None => None,
            Some(secret) => {
                let t = usize::from(self.new_threshold);
                let mut coefficients: Zeroizing<Vec<G::Scalar>> =
                    Zeroizing::new(Vec::with_capacity(t));
                coefficients.push(*secret.expose());
                while coefficients.len() < t {
                    coefficients.push(G::random_scalar(rng));
                }
                let commitments: Vec<Vec<u8>> = coefficients
                    .iter()
                    .map(|a| G::mul_base(a).to_bytes())
                    .collect();
                for m in self.new_committee.clone() {
                    #[allow(unused_mut)] // mutated only by fault injection
                    let mut value = Zeroizing::new(evaluate::<G>(&coefficients, self.new_x(m)?));
                    if m == self.me {
                        self.runner.secrets_mut()?.own_sub_share = Some(value);
                    } else {
                        #[cfg(any(test, feature = "fault-injection"))]
                        if self.wrong_sub_shares_to.contains(&m) {
                            *value += G::scalar_from_u64(1);
                        }
                        let bytes = G::scalar_to_bytes(&value);
                        let sub_share = SecretBytes::new(bytes.to_vec());
                        self.runner
                            .secrets_mut()?
                            .dealt
                            .insert(m, sub_share.clone());
                        out.push(self.message(Recipient::One(m), ReshareBody::SubShare(sub_share)));
                    }
                }
                Some(commitments)
            }
        };
        let payload = DealPayload {
            context: self.context,
            commitments,
        }
        .to_bytes()?;
        self.deals.record_payload(self.me, payload.clone())?;
        out.insert(0, self.message(Recipient::All, ReshareBody::Deal(payload)));
        Ok(out)
    }

    /// True once every sub-share meant for me (from every dealer but me) is in.
    fn has_all_sub_shares(&self) -> bool {
        if !self.is_receiver(self.me) {
            return true;
        }
        let expected = self.dealers.len() - usize::from(self.is_dealer(self.me));
        self.runner
            .secrets()
            .is_ok_and(|s| s.sub_shares.len() == expected)
    }

    /// The dealers whose sub-share to me does not match the commitments they sent me. A dealer whose
    /// commitments are themselves unusable is not accused here: every participant rejects it after the echo.
    fn complaints(&self) -> Result<Vec<ParticipantId>, ProtocolError> {
        if !self.is_receiver(self.me) {
            return Ok(Vec::new());
        }
        let Ok(x_me) = self.new_x(self.me) else {
            return Ok(Vec::new());
        };
        let mut complaints = Vec::new();
        for (dealer, share) in &self.runner.secrets()?.sub_shares {
            let Some(commitments) = self
                .deals
                .payloads()
                .get(dealer)
                .and_then(|bytes| DealPayload::from_bytes(bytes))
                .and_then(|p| decode_commitments::<G>(&p, self.new_threshold).ok())
            else {
                continue;
            };
            let valid = decode_scalar::<G>(share)
                .is_some_and(|s| G::mul_base(&s) == evaluate_in_exponent(&commitments, x_me));
            if !valid {
                complaints.push(*dealer);
            }
        }
        #[cfg(any(test, feature = "fault-injection"))]
        {
            // Only about dealers that did deal me a sub-share: a complaint that makes no sense would abort the
            // run naming me, which is another fault.
            let received = &self.runner.secrets()?.sub_shares;
            complaints.extend(
                self.false_complaints_about
                    .iter()
                    .copied()
                    .filter(|d| received.contains_key(d)),
            );
            complaints.sort_unstable();
            complaints.dedup();
        }
        Ok(complaints)
    }

    /// Round 3 (the dispute round): for every new holder that complained about me, the sub-share I dealt it,
    /// to be revealed to everyone. Empty unless I deal and was accused.
    fn answers_to_complaints(&self) -> Result<BTreeMap<ParticipantId, SecretBytes>, ProtocolError> {
        let mut answers = BTreeMap::new();
        if !self.is_dealer(self.me) {
            return Ok(answers);
        }
        let dealt = &self.runner.secrets()?.dealt;
        for (accuser, payload) in self.verdicts.payloads() {
            if !parse_complaints(payload).contains(&self.me) {
                continue;
            }
            // A complaint from outside the new committee (I dealt it nothing) is named when the run finishes.
            if let Some(sub_share) = dealt.get(accuser) {
                answers.insert(*accuser, sub_share.clone());
            }
        }
        Ok(answers)
    }

    /// The agreement rule, on the echoed round-1 payloads (`deals`), complaint lists (`verdicts`) and answers:
    /// who is named and aborts the run, which dealers are excluded, which complaints were refuted. A pure
    /// function of its inputs, which every participant holds identically once the echoes agreed.
    fn resolve(
        &self,
        deals: &BTreeMap<ParticipantId, Vec<u8>>,
        verdicts: &BTreeMap<ParticipantId, Vec<u8>>,
        answers: &BTreeMap<ParticipantId, BTreeMap<ParticipantId, SecretBytes>>,
    ) -> Result<Resolution<G>, ProtocolError> {
        // 1. Everyone was given the same parameters, and only dealers deal.
        let mut payloads = BTreeMap::new();
        let mut faults = Vec::new();
        for (sender, bytes) in deals {
            match DealPayload::from_bytes(bytes) {
                None => faults.push((*sender, "malformed round-1 payload")),
                Some(p) if p.context != self.context => faults.push((
                    *sender,
                    "was given other reshare parameters (context mismatch)",
                )),
                Some(p) if p.commitments.is_some() && !self.is_dealer(*sender) => {
                    faults.push((*sender, "dealt without being a dealer"))
                }
                Some(p) => {
                    payloads.insert(*sender, p);
                }
            }
        }
        // 2. Complaints come only from new holders, and only about other dealers.
        let mut accusations: BTreeMap<ParticipantId, Vec<ParticipantId>> = BTreeMap::new();
        // Every complaint made, sensible or not (dealer, accuser): what a dealer may answer.
        let mut asked: BTreeSet<(ParticipantId, ParticipantId)> = BTreeSet::new();
        for (accuser, bytes) in verdicts {
            let accused = parse_complaints(bytes);
            asked.extend(accused.iter().map(|dealer| (*dealer, *accuser)));
            if !accused.is_empty() && !self.is_receiver(*accuser) {
                faults.push((*accuser, "complained without receiving a share"));
                continue;
            }
            if accused.iter().any(|d| !self.is_dealer(*d) || d == accuser) {
                faults.push((
                    *accuser,
                    "complained about a participant that did not deal to it",
                ));
                continue;
            }
            for dealer in accused {
                accusations.entry(dealer).or_default().push(*accuser);
            }
        }
        // 3. Answers come only from dealers, and only to complaints made about them (a dealer that answers a
        //    complaint list named above for making no sense is not at fault).
        for (sender, given) in answers {
            if given.is_empty() {
                continue;
            }
            if !self.is_dealer(*sender) {
                faults.push((*sender, "answered complaints without being a dealer"));
                continue;
            }
            if given
                .keys()
                .any(|accuser| !asked.contains(&(*sender, *accuser)))
            {
                faults.push((*sender, "revealed a sub-share nobody complained about"));
            }
        }
        if !faults.is_empty() {
            let reason = faults
                .iter()
                .map(|(id, why)| format!("{id}: {why}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(ProtocolError::misbehaviour(
                faults.iter().map(|(id, _)| *id),
                reason,
            ));
        }
        // 4. The agreement rule, on inputs identical at every participant: a dealer is used unless its
        //    commitments are invalid, or it lost a dispute — a new holder complained, and the sub-share the
        //    dealer revealed for it (or its silence) does not satisfy its commitments. A complaint whose
        //    revealed sub-share does satisfy them is refuted: the dealer stays, the accuser is named.
        let mut excluded = Vec::new();
        let mut refuted = Vec::new();
        let mut commitments: BTreeMap<ParticipantId, Vec<G>> = BTreeMap::new();
        for dealer in self.dealers.iter().copied() {
            let checked = payloads
                .get(&dealer)
                .ok_or_else(|| "no round-1 payload".to_string())
                .and_then(|p| decode_commitments::<G>(p, self.new_threshold))
                .and_then(|c| {
                    let expected = self
                        .old
                        .public_share(dealer)
                        .ok_or("not in the old committee")?;
                    if c.first() == Some(expected) {
                        Ok(c)
                    } else {
                        Err("constant term is not the dealer's public share".into())
                    }
                });
            let c = match checked {
                Ok(c) => c,
                Err(why) => {
                    // Proof on its own; complaints about it need no answer.
                    excluded.push(ExcludedDealer {
                        dealer,
                        reason: ExclusionReason::InvalidCommitments(why),
                    });
                    continue;
                }
            };
            let mut upheld = Vec::new();
            for accuser in accusations.remove(&dealer).unwrap_or_default() {
                let revealed = answers.get(&dealer).and_then(|a| a.get(&accuser));
                let expected = evaluate_in_exponent(&c, self.new_x(accuser)?);
                let valid = revealed
                    .and_then(decode_scalar::<G>)
                    .map(Zeroizing::new)
                    .is_some_and(|v| G::mul_base(&v) == expected);
                if valid {
                    refuted.push(RefutedComplaint { accuser, dealer });
                } else {
                    upheld.push(accuser);
                }
            }
            if upheld.is_empty() {
                commitments.insert(dealer, c);
            } else {
                excluded.push(ExcludedDealer {
                    dealer,
                    reason: ExclusionReason::ComplaintUpheld { by: upheld },
                });
            }
        }
        refuted.sort_unstable_by_key(|r| (r.accuser, r.dealer));
        Ok(Resolution {
            commitments,
            excluded,
            refuted,
        })
    }

    /// After the three echoes agreed: apply the agreement rule, combine, the output.
    fn finish(&mut self) -> Result<ReshareOutput<G>, ProtocolError> {
        let Resolution {
            commitments,
            excluded,
            refuted,
        } = self.resolve(
            self.deals.payloads(),
            self.verdicts.payloads(),
            &self.runner.secrets()?.answers,
        )?;
        if commitments.len() < usize::from(self.old.threshold()) {
            return Err(ProtocolError::misbehaviour(
                excluded
                    .iter()
                    .map(|e| e.dealer)
                    .chain(refuted.iter().map(|r| r.accuser)),
                format!(
                    "only {} valid dealers remain for a key of threshold {}; {}",
                    commitments.len(),
                    self.old.threshold(),
                    describe_blame(&excluded, &refuted)
                ),
            ));
        }
        // Combine: λ_i over the agreed dealers at the old x-coordinates, applied to their commitments and
        // sub-shares.
        let points = self.old.evaluation_points();
        let used: Vec<ParticipantId> = commitments.keys().copied().collect();
        let xs = used
            .iter()
            .map(|d| {
                points
                    .x(&self.old_committee, *d)
                    .ok_or_else(|| ProtocolError::State(format!("no x-coordinate for {d}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let lambdas = xs
            .iter()
            .map(|x| lagrange_coefficient::<G>(G::scalar_zero(), &xs, *x))
            .collect::<Result<Vec<_>, _>>()?;
        let t = usize::from(self.new_threshold);
        let group_commitments: Vec<G> = (0..t)
            .map(|k| {
                let column: Vec<G> = commitments
                    .values()
                    .map(|c| c.get(k).copied().unwrap_or_else(G::identity))
                    .collect();
                G::vartime_multiscalar_mul(&lambdas, &column)
            })
            .collect();
        let group_key = group_commitments
            .first()
            .copied()
            .unwrap_or_else(G::identity);
        if group_key != *self.old.group_key() {
            return Err(ProtocolError::State(
                "the reshared key is not the old key (inconsistent old public shares)".into(),
            ));
        }
        let mut new_shares = BTreeMap::new();
        for m in self.new_committee.clone() {
            new_shares.insert(m, evaluate_in_exponent(&group_commitments, self.new_x(m)?));
        }
        let key = SharedKey::new(self.new_threshold, points, group_key, new_shares)?;
        let secret = if self.is_receiver(self.me) {
            let secrets = self.runner.secrets()?;
            let mut sum = Zeroizing::new(G::scalar_zero());
            for (dealer, lambda) in used.iter().zip(&lambdas) {
                let refuted_mine = refuted
                    .iter()
                    .any(|r| r.accuser == self.me && r.dealer == *dealer);
                let value = if *dealer == self.me {
                    secrets
                        .own_sub_share
                        .as_deref()
                        .copied()
                        .map(Zeroizing::new)
                        .ok_or_else(|| ProtocolError::State("own sub-share missing".into()))?
                } else if refuted_mine {
                    // My complaint was refuted: the sub-share the dealer revealed (checked against its
                    // commitments) replaces the one I received.
                    secrets
                        .answers
                        .get(dealer)
                        .and_then(|a| a.get(&self.me))
                        .and_then(decode_scalar::<G>)
                        .map(Zeroizing::new)
                        .ok_or_else(|| {
                            ProtocolError::State(format!("revealed sub-share of {dealer} missing"))
                        })?
                } else {
                    secrets
                        .sub_shares
                        .get(dealer)
                        .and_then(decode_scalar::<G>)
                        .map(Zeroizing::new)
                        .ok_or_else(|| {
                            ProtocolError::State(format!("sub-share of {dealer} missing"))
                        })?
                };
                *sum += *lambda * *value;
            }
            Some(sum)
        } else {
            None
        };
        ReshareOutput::new(self.session, self.me, key, secret, used, excluded, refuted)
    }
}

#[cfg(any(test, feature = "fault-injection"))]
impl<G: ReshareGroup> Reshare<G> {
    /// **Fault injection, for tests only** (feature `fault-injection`; never in a release build): makes this
    /// dealer deal each of `victims` (other new holders) a sub-share that is not on its polynomial (the right
    /// one plus one) and **stand by it**: that wrong value is also what it reveals when a victim complains. Call
    /// before [`Protocol::start`]. Every participant then excludes this dealer
    /// ([`ExclusionReason::ComplaintUpheld`]), as they would a dealer that really misbehaves.
    ///
    /// Altering the sub-share on the wire instead does not model a bad dealer any more: the dealer's own
    /// state is right, it answers the complaint with the right sub-share, stays in, and the accuser is named
    /// for a refuted complaint (which is how a false complaint looks).
    pub fn deal_wrong_sub_shares_to(&mut self, victims: impl IntoIterator<Item = ParticipantId>) {
        self.wrong_sub_shares_to.extend(victims);
    }

    /// **Fault injection, for tests only** (feature `fault-injection`; never in a release build): makes this new
    /// holder complain about each of `dealers` in its verdict, whatever sub-share the dealer sent it — a false
    /// accuser. Call before [`Protocol::start`]. Each accused honest dealer answers in the dispute round with the
    /// sub-share it dealt, which satisfies its commitments: the complaint is refuted, the dealer stays, and the
    /// accuser is named in [`ReshareOutput::refuted_complaints`]. The accuser's own new share is made with the
    /// revealed sub-shares, so it stays right. Dealers that dealt this participant nothing (itself, non-dealers)
    /// are left out: complaining about them is another fault (the run aborts naming the accuser).
    pub fn complain_falsely_about(&mut self, dealers: impl IntoIterator<Item = ParticipantId>) {
        self.false_complaints_about.extend(dealers);
    }
}

/// Decodes and checks a dealer's commitments: present, exactly `threshold` many, every one a valid point.
fn decode_commitments<G: ReshareGroup>(
    payload: &DealPayload,
    threshold: u16,
) -> Result<Vec<G>, String> {
    let encoded = payload
        .commitments
        .as_ref()
        .ok_or_else(|| "did not deal".to_string())?;
    if encoded.len() != usize::from(threshold) {
        return Err(format!(
            "{} commitments for threshold {threshold}",
            encoded.len()
        ));
    }
    encoded
        .iter()
        .map(|b| G::from_bytes(b).ok_or_else(|| format!("a commitment is not a {} point", G::NAME)))
        .collect()
}

/// Decodes a sub-share: exactly 32 bytes, a canonical scalar.
fn decode_scalar<G: ReshareGroup>(bytes: &SecretBytes) -> Option<G::Scalar> {
    let array: Zeroizing<[u8; 32]> = Zeroizing::new(bytes.expose().try_into().ok()?);
    G::scalar_from_bytes(&array)
}

/// `SHA-256(domain ‖ u32 len ‖ old SharedKey encoding ‖ session ‖ u16 #dealers ‖ dealers ‖ u16 #new ‖ new
/// committee ‖ new threshold)`, integers big-endian. The old key's encoding names the group and the
/// evaluation points.
fn context_digest<G: ReshareGroup>(
    session: &SessionId,
    old: &SharedKey<G>,
    dealers: &[ParticipantId],
    new_committee: &[ParticipantId],
    new_threshold: u16,
) -> [u8; 32] {
    let old_bytes = old.to_bytes();
    let mut h = Sha256::new();
    h.update(CONTEXT_DOMAIN);
    h.update(
        u32::try_from(old_bytes.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    h.update(&old_bytes);
    h.update(session.0);
    for list in [dealers, new_committee] {
        h.update(u16::try_from(list.len()).unwrap_or(u16::MAX).to_be_bytes());
        for id in list {
            h.update(id.to_be_bytes());
        }
    }
    h.update(new_threshold.to_be_bytes());
    h.finalize().into()
}

impl<G: ReshareGroup> Machine for Reshare<G> {
    type Phase = Phase;
    type Secrets = Secrets<G>;
    type Output = ReshareOutput<G>;
    type Message = ReshareMessage;
    const FIRST_PHASE: Phase = Phase::Dealt;

    fn runner(&self) -> &Runner<Phase, Secrets<G>, ReshareOutput<G>> {
        &self.runner
    }

    fn runner_mut(&mut self) -> &mut Runner<Phase, Secrets<G>, ReshareOutput<G>> {
        &mut self.runner
    }

    fn session(&self) -> SessionId {
        self.session
    }

    fn me(&self) -> ParticipantId {
        self.me
    }

    fn takes_part(&self, participant: ParticipantId) -> bool {
        self.participants.contains(&participant)
    }

    fn session_of(message: &ReshareMessage) -> SessionId {
        message.session
    }

    fn begin<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<ReshareMessage>>, ProtocolError> {
        self.deal(rng)
    }

    /// Records one message from a participant other than me.
    fn receive(
        &mut self,
        from: ParticipantId,
        message: ReshareMessage,
    ) -> Result<(), ProtocolError> {
        if message.version != RESHARE_MESSAGE_VERSION {
            return Err(ProtocolError::UnsupportedVersion(message.version));
        }
        match message.body {
            ReshareBody::Deal(payload) => self.deals.record_payload(from, payload),
            ReshareBody::SubShare(share) => {
                if !self.is_dealer(from) {
                    return Err(ProtocolError::misbehaviour(
                        [from],
                        "sent a sub-share but is not a dealer",
                    ));
                }
                if !self.is_receiver(self.me) {
                    return Err(ProtocolError::misbehaviour(
                        [from],
                        "sent a sub-share to a participant outside the new committee",
                    ));
                }
                let sub_shares = &mut self.runner.secrets_mut()?.sub_shares;
                if sub_shares.contains_key(&from) {
                    return Err(ProtocolError::misbehaviour(
                        [from],
                        "sent a second sub-share",
                    ));
                }
                sub_shares.insert(from, share);
                Ok(())
            }
            ReshareBody::Verdict { echo, complaints } => {
                let ascending = complaints
                    .iter()
                    .zip(complaints.iter().skip(1))
                    .all(|(a, b)| a < b);
                if !ascending {
                    return Err(ProtocolError::misbehaviour(
                        [from],
                        "complaint list not strictly ascending",
                    ));
                }
                self.deals.record_echo(from, echo)?;
                self.verdicts
                    .record_payload(from, complaints_payload(&complaints))
            }
            ReshareBody::Answer { echo, answers } => {
                self.verdicts.record_echo(from, echo)?;
                self.answers
                    .record_payload(from, answers_digest(&answers).to_vec())?;
                self.runner.secrets_mut()?.answers.insert(from, answers);
                Ok(())
            }
            ReshareBody::Echo(echo) => self.answers.record_echo(from, echo),
        }
    }

    /// Moves through every phase whose inputs are complete; returns what to send.
    fn advance(&mut self) -> Result<Vec<Outgoing<ReshareMessage>>, ProtocolError> {
        let mut out = Vec::new();
        loop {
            match self.runner.phase() {
                Some(Phase::Dealt)
                    if self.deals.has_all_payloads() && self.has_all_sub_shares() =>
                {
                    let echo = self.deals.echo().ok_or_else(|| {
                        ProtocolError::State("echo unavailable with all payloads".into())
                    })?;
                    let complaints = self.complaints()?;
                    self.verdicts
                        .record_payload(self.me, complaints_payload(&complaints))?;
                    out.push(
                        self.message(Recipient::All, ReshareBody::Verdict { echo, complaints }),
                    );
                    self.runner.set_phase(Phase::Verdict);
                }
                Some(Phase::Verdict)
                    if self.deals.has_all_echoes() && self.verdicts.has_all_payloads() =>
                {
                    // Every echo is checked at the end, so that a mismatch seen here does not keep this
                    // echo from the others: every participant reaches the check and names the culprit.
                    let echo = self.verdicts.echo().ok_or_else(|| {
                        ProtocolError::State("echo unavailable with all verdicts".into())
                    })?;
                    let answers = self.answers_to_complaints()?;
                    self.answers
                        .record_payload(self.me, answers_digest(&answers).to_vec())?;
                    self.runner
                        .secrets_mut()?
                        .answers
                        .insert(self.me, answers.clone());
                    out.push(self.message(Recipient::All, ReshareBody::Answer { echo, answers }));
                    self.runner.set_phase(Phase::Answer);
                }
                Some(Phase::Answer)
                    if self.verdicts.has_all_echoes() && self.answers.has_all_payloads() =>
                {
                    let echo = self.answers.echo().ok_or_else(|| {
                        ProtocolError::State("echo unavailable with all answers".into())
                    })?;
                    out.push(self.message(Recipient::All, ReshareBody::Echo(echo)));
                    self.runner.set_phase(Phase::Echo);
                }
                Some(Phase::Echo) if self.answers.has_all_echoes() => {
                    self.deals.check_agreement()?;
                    self.verdicts.check_agreement()?;
                    self.answers.check_agreement()?;
                    let output = self.finish()?;
                    self.runner.finish(output);
                }
                _ => return Ok(out),
            }
        }
    }
}

impl<G: ReshareGroup> Protocol for Reshare<G> {
    type Message = ReshareMessage;
    type Output = ReshareOutput<G>;

    fn participant(&self) -> ParticipantId {
        self.me
    }

    fn start<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<Vec<Outgoing<ReshareMessage>>, ProtocolError> {
        runner::start(self, rng)
    }

    fn handle<R: RngCore + CryptoRng>(
        &mut self,
        from: ParticipantId,
        message: ReshareMessage,
        _rng: &mut R,
    ) -> Result<Vec<Outgoing<ReshareMessage>>, ProtocolError> {
        runner::handle(self, from, message)
    }

    fn is_done(&self) -> bool {
        self.runner.is_done()
    }

    fn take_output(&mut self) -> Option<ReshareOutput<G>> {
        self.runner.take_output()
    }
}

impl<G: ReshareGroup> fmt::Debug for Reshare<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reshare")
            .field("group", &G::NAME)
            .field("session", &self.session)
            .field("me", &self.me)
            .field("dealers", &self.dealers)
            .field("new_committee", &self.new_committee)
            .field("new_threshold", &self.new_threshold)
            .field("phase", self.runner.status())
            .field("abort_reason", &self.runner.abort_reason())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use crate::reshare::polynomial::{evaluate, EvaluationPoints};
    use crate::simulator::Simulation;
    use curve25519_dalek::{RistrettoPoint, Scalar};
    use rand_core::OsRng;

    /// A 2-of-{1,2,3} sharing of a random key, made by a trusted dealer (this test).
    fn dealt() -> (SharedKey<RistrettoPoint>, BTreeMap<ParticipantId, Scalar>) {
        let (a0, a1) = (Scalar::random(&mut OsRng), Scalar::random(&mut OsRng));
        let secrets: BTreeMap<ParticipantId, Scalar> = (1..=3)
            .map(|i| (i, a0 + a1 * Scalar::from(u64::from(i))))
            .collect();
        let publics = secrets
            .iter()
            .map(|(i, s)| (*i, RistrettoPoint::mul_base(s)))
            .collect();
        let key = SharedKey::new(
            2,
            EvaluationPoints::ParticipantId,
            RistrettoPoint::mul_base(&a0),
            publics,
        )
        .unwrap();
        (key, secrets)
    }

    #[test]
    fn a_dealer_that_deals_another_secret_is_excluded_by_everyone() {
        let (key, secrets) = dealt();
        let session = SessionId([4; 32]);
        let mut parties: Vec<Reshare<RistrettoPoint>> = [1, 2, 3, 4]
            .into_iter()
            .map(|me| {
                let params = ReshareParams {
                    session,
                    me,
                    dealers: vec![1, 2, 3],
                    new_committee: vec![1, 2, 3, 4],
                    new_threshold: 2,
                };
                let secret = secrets
                    .get(&me)
                    .map(|s| DealerSecret::new(Zeroizing::new(*s)));
                Reshare::new(params, key.clone(), secret).unwrap()
            })
            .collect();
        // 3 deals a secret that is not its share, consistently: its sub-shares match its commitments, so
        // nobody complains, but its constant term is not its public share.
        parties[2].runner.secrets_mut().unwrap().dealer =
            Some(DealerSecret::new(Zeroizing::new(Scalar::from(99u64))));
        let outcome = Simulation::new(parties).shuffled(3).run(&mut OsRng);
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.outputs.len(), 4);
        for output in outcome.outputs.values() {
            assert_eq!(output.dealers(), &[1, 2]);
            assert_eq!(
                output.excluded(),
                &[ExcludedDealer {
                    dealer: 3,
                    reason: ExclusionReason::InvalidCommitments(
                        "constant term is not the dealer's public share".into()
                    ),
                }]
            );
            assert_eq!(output.group_key(), key.group_key());
            assert_eq!(output.blame().unwrap().culprits(), &[3]);
        }
    }

    /// The parties of a reshare of [`dealt`]'s key: `dealers` deal, `new_committee` (threshold 2) receives.
    fn parties(
        key: &SharedKey<RistrettoPoint>,
        secrets: &BTreeMap<ParticipantId, Scalar>,
        dealers: &[ParticipantId],
        new_committee: &[ParticipantId],
    ) -> Vec<Reshare<RistrettoPoint>> {
        let everyone: BTreeSet<ParticipantId> =
            dealers.iter().chain(new_committee).copied().collect();
        everyone
            .into_iter()
            .map(|me| {
                let params = ReshareParams {
                    session: SessionId([8; 32]),
                    me,
                    dealers: dealers.to_vec(),
                    new_committee: new_committee.to_vec(),
                    new_threshold: 2,
                };
                let secret = dealers
                    .contains(&me)
                    .then(|| DealerSecret::new(Zeroizing::new(secrets[&me])));
                Reshare::new(params, key.clone(), secret).unwrap()
            })
            .collect()
    }

    /// (b) A dealer that really dealt a wrong sub-share (and stands by it in the dispute round) is excluded and
    /// named by everyone; the run completes with the honest dealers, and nobody else is named.
    #[test]
    fn a_dealer_that_stands_by_a_wrong_sub_share_is_excluded_and_named() {
        let (key, secrets) = dealt();
        for seed in 0..4 {
            let mut parties = parties(&key, &secrets, &[1, 2, 3], &[1, 2, 3, 4]);
            parties[2].deal_wrong_sub_shares_to([1, 4]);
            let outcome = Simulation::new(parties).shuffled(seed).run(&mut OsRng);
            assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
            assert_eq!(outcome.outputs.len(), 4);
            for output in outcome.outputs.values() {
                assert_eq!(output.dealers(), &[1, 2]);
                assert_eq!(
                    output.excluded(),
                    &[ExcludedDealer {
                        dealer: 3,
                        reason: ExclusionReason::ComplaintUpheld { by: vec![1, 4] },
                    }]
                );
                assert!(output.refuted_complaints().is_empty());
                assert_eq!(output.blame().unwrap().culprits(), &[3]);
                assert_eq!(output.group_key(), key.group_key());
                assert_eq!(output.public(), outcome.outputs[&1].public());
            }
        }
    }

    /// (b) … and when that leaves fewer than `t` dealers, the run fails everywhere naming that dealer alone.
    #[test]
    fn too_few_honest_dealers_fails_naming_the_bad_one() {
        let (key, secrets) = dealt();
        let mut parties = parties(&key, &secrets, &[1, 3], &[1, 2, 3]);
        parties[2].deal_wrong_sub_shares_to([2]);
        let outcome = Simulation::new(parties).shuffled(5).run(&mut OsRng);
        assert!(outcome.outputs.is_empty());
        assert_eq!(outcome.errors.len(), 3);
        for e in outcome.errors.values() {
            assert!(matches!(e, ProtocolError::Misbehaviour { .. }), "{e}");
            assert_eq!(e.culprits(), &[3], "{e}");
        }
    }

    /// (a) + (c) A member that complains falsely about an honest dealer (here 2 treats the right sub-share of 3
    /// as wrong: what it received is replaced before its check) cannot exclude it: 3 answers with the
    /// sub-share, everyone checks it, 3 is used and 2 named; 2's new share is made with the revealed value.
    /// With exactly `t` dealers, the old protocol (exclusion on the accuser's word) failed this run naming 3.
    #[test]
    fn a_false_complaint_is_refuted_and_names_the_accuser() {
        let (key, secrets) = dealt();
        let parties = parties(&key, &secrets, &[1, 3], &[1, 2, 3]);
        let outcome =
            Simulation::new(parties)
                .shuffled(6)
                .run_with_hook(&mut OsRng, |from, to, message| {
                    if (from, to) == (3, 2) {
                        if let ReshareBody::SubShare(share) = &mut message.body {
                            *share = SecretBytes::new(Scalar::ONE.to_bytes().to_vec());
                        }
                    }
                    crate::simulator::Delivery::Deliver
                });
        assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
        assert_eq!(outcome.outputs.len(), 3);
        for output in outcome.outputs.values() {
            assert_eq!(output.dealers(), &[1, 3]);
            assert!(output.excluded().is_empty());
            assert_eq!(
                output.refuted_complaints(),
                &[RefutedComplaint {
                    accuser: 2,
                    dealer: 3
                }]
            );
            assert_eq!(output.blame().unwrap().culprits(), &[2]);
        }
        // 2's share matches its public share (checked by `ReshareOutput::new`) and opens the key with 1's.
        let (s1, s2) = (
            *outcome.outputs[&1].secret().unwrap(),
            *outcome.outputs[&2].secret().unwrap(),
        );
        // Lagrange at 0 for x = 1, 2: 2·s1 − s2.
        assert_eq!(
            RistrettoPoint::mul_base(&(Scalar::from(2u64) * s1 - s2)),
            *key.group_key()
        );
    }

    /// The fault-injection hook a node's `complain_falsely` mode uses: 3 complains about every other dealer
    /// (and about itself and a non-dealer, which it leaves out). Every complaint is refuted, every dealer used,
    /// 3 alone named; 3's new share is right (made with the revealed sub-shares).
    #[test]
    fn complain_falsely_about_every_dealer_is_refuted_and_names_the_accuser() {
        let (key, secrets) = dealt();
        for seed in 0..3 {
            let mut parties = parties(&key, &secrets, &[1, 2, 3], &[1, 2, 3, 4]);
            parties[2].complain_falsely_about([1, 2, 3, 4]);
            let outcome = Simulation::new(parties).shuffled(seed).run(&mut OsRng);
            assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
            assert_eq!(outcome.outputs.len(), 4);
            for output in outcome.outputs.values() {
                assert_eq!(output.dealers(), &[1, 2, 3]);
                assert!(output.excluded().is_empty());
                assert_eq!(
                    output.refuted_complaints(),
                    &[
                        RefutedComplaint {
                            accuser: 3,
                            dealer: 1
                        },
                        RefutedComplaint {
                            accuser: 3,
                            dealer: 2
                        }
                    ]
                );
                assert_eq!(output.blame().unwrap().culprits(), &[3]);
            }
            // 3's share opens the key with 1's: Lagrange at 0 for x = 1, 3 is (3·s1 − s3) / 2.
            let (s1, s3) = (
                *outcome.outputs[&1].secret().unwrap(),
                *outcome.outputs[&3].secret().unwrap(),
            );
            assert_eq!(
                RistrettoPoint::mul_base(
                    &((Scalar::from(3u64) * s1 - s3) * Scalar::from(2u64).invert())
                ),
                *key.group_key()
            );
        }
    }

    /// Crafted round-1 payloads (honest dealing by 1, 2 and 3 of the [`dealt`] key to {1, 2, 3, 4}), the
    /// sub-shares they imply, and a party (4, a receiver only) to apply the rule.
    struct Crafted {
        party: Reshare<RistrettoPoint>,
        deals: BTreeMap<ParticipantId, Vec<u8>>,
        sub_shares: BTreeMap<(ParticipantId, ParticipantId), SecretBytes>,
    }

    fn crafted() -> Crafted {
        let (key, secrets) = dealt();
        let party = parties(&key, &secrets, &[1, 2, 3], &[1, 2, 3, 4]).remove(3);
        let mut deals = BTreeMap::new();
        let mut sub_shares = BTreeMap::new();
        for (dealer, s) in &secrets {
            let coefficients = [*s, Scalar::random(&mut OsRng)];
            let commitments = coefficients
                .iter()
                .map(|a| RistrettoPoint::mul_base(a).to_bytes())
                .collect();
            let payload = DealPayload {
                context: party.context,
                commitments: Some(commitments),
            };
            deals.insert(*dealer, payload.to_bytes().unwrap());
            for m in [1, 2, 3, 4] {
                let value = evaluate::<RistrettoPoint>(&coefficients, Scalar::from(u64::from(m)));
                sub_shares.insert((*dealer, m), SecretBytes::new(value.to_bytes().to_vec()));
            }
        }
        deals.insert(
            4,
            DealPayload {
                context: party.context,
                commitments: None,
            }
            .to_bytes()
            .unwrap(),
        );
        Crafted {
            party,
            deals,
            sub_shares,
        }
    }

    fn verdicts(
        complaints: &[(ParticipantId, &[ParticipantId])],
    ) -> BTreeMap<ParticipantId, Vec<u8>> {
        let mut v: BTreeMap<ParticipantId, Vec<u8>> =
            [1, 2, 3, 4].into_iter().map(|p| (p, Vec::new())).collect();
        for (accuser, accused) in complaints {
            v.insert(*accuser, complaints_payload(accused));
        }
        v
    }

    type Answers = BTreeMap<ParticipantId, BTreeMap<ParticipantId, SecretBytes>>;

    fn answers(given: &[(ParticipantId, ParticipantId, SecretBytes)]) -> Answers {
        let mut a: Answers = [1, 2, 3, 4]
            .into_iter()
            .map(|p| (p, BTreeMap::new()))
            .collect();
        for (dealer, accuser, value) in given {
            a.entry(*dealer)
                .or_default()
                .insert(*accuser, value.clone());
        }
        a
    }

    #[test]
    fn the_rule_judges_every_complaint_by_its_answer() {
        let c = crafted();
        let right = |d, m| c.sub_shares[&(d, m)].clone();
        let wrong = SecretBytes::new(Scalar::ONE.to_bytes().to_vec());
        // 4 accuses 1, 2 and 3; 1 answers right, 2 wrongly, 3 not at all; 1 also accuses 3, which answers it
        // right (3 is excluded anyway, and 1 named all the same: each complaint is judged on its own).
        let r = c
            .party
            .resolve(
                &c.deals,
                &verdicts(&[(4, &[1, 2, 3]), (1, &[3])]),
                &answers(&[
                    (1, 4, right(1, 4)),
                    (2, 4, wrong.clone()),
                    (3, 1, right(3, 1)),
                ]),
            )
            .unwrap();
        assert_eq!(r.commitments.keys().copied().collect::<Vec<_>>(), vec![1]);
        assert_eq!(
            r.excluded,
            vec![
                ExcludedDealer {
                    dealer: 2,
                    reason: ExclusionReason::ComplaintUpheld { by: vec![4] }
                },
                ExcludedDealer {
                    dealer: 3,
                    reason: ExclusionReason::ComplaintUpheld { by: vec![4] }
                },
            ]
        );
        assert_eq!(
            r.refuted,
            vec![
                RefutedComplaint {
                    accuser: 1,
                    dealer: 3
                },
                RefutedComplaint {
                    accuser: 4,
                    dealer: 1
                },
            ]
        );
        // A revealed value that is not a canonical 32-byte scalar, or another holder's sub-share, loses too.
        for bad in [
            SecretBytes::new(vec![0xff; 32]),
            SecretBytes::new(vec![1; 31]),
            right(1, 3),
        ] {
            let r = c
                .party
                .resolve(&c.deals, &verdicts(&[(4, &[1])]), &answers(&[(1, 4, bad)]))
                .unwrap();
            assert_eq!(
                r.excluded,
                vec![ExcludedDealer {
                    dealer: 1,
                    reason: ExclusionReason::ComplaintUpheld { by: vec![4] }
                }]
            );
            assert!(r.refuted.is_empty());
        }
        // No complaint, no answer: everyone is used.
        let r = c
            .party
            .resolve(&c.deals, &verdicts(&[]), &answers(&[]))
            .unwrap();
        assert_eq!(r.commitments.len(), 3);
        assert!(r.excluded.is_empty() && r.refuted.is_empty());
    }

    #[test]
    fn answers_that_make_no_sense_abort_naming_their_sender() {
        let c = crafted();
        let value = c.sub_shares[&(1, 4)].clone();
        // Unasked: 1 reveals 4's sub-share though nobody complained.
        let e = c
            .party
            .resolve(&c.deals, &verdicts(&[]), &answers(&[(1, 4, value.clone())]))
            .unwrap_err();
        assert_eq!(e.culprits(), &[1], "{e}");
        // Asked by 2, but it reveals 4's.
        let e = c
            .party
            .resolve(
                &c.deals,
                &verdicts(&[(2, &[1])]),
                &answers(&[(1, 4, value.clone())]),
            )
            .unwrap_err();
        assert_eq!(e.culprits(), &[1], "{e}");
        // From a participant that does not deal.
        let e = c
            .party
            .resolve(
                &c.deals,
                &verdicts(&[(1, &[2])]),
                &answers(&[(4, 1, value.clone())]),
            )
            .unwrap_err();
        assert_eq!(e.culprits(), &[4], "{e}");
        // 4's complaint list makes no sense (it accuses itself too): 4 alone is named, not 1, which answered
        // the part of it that was about 1.
        let e = c
            .party
            .resolve(
                &c.deals,
                &verdicts(&[(4, &[1, 4])]),
                &answers(&[(1, 4, value)]),
            )
            .unwrap_err();
        assert_eq!(e.culprits(), &[4], "{e}");
    }
}
