//! Resharing a key on this node: refresh, a new committee (nodes added or removed, another threshold), or the
//! repair of a holder that lost its data — all one protocol (see `vhsm_protocols::reshare`).
//!
//! The coordinator asks every participant (the dealers and the new committee) to start the same session. A dealer
//! deals its current share; a member of the new committee receives, checks and combines sub-shares into its new
//! share. For an ECDSA key the new committee then runs the DKLs23 pairwise set-up again (a second session, among
//! the new committee only). A new holder **stages** its share under the next epoch: its current share stays in
//! force until the coordinator commits (every new holder staged the same public keys), so a crash anywhere leaves
//! the key usable under the old shares or the new ones.

use std::{sync::Arc, time::Duration};

use sha2::{Digest, Sha256};
use vhsm_core::{Algorithm, KeyInfo, KeyUse};
use vhsm_protocols::{
    ecdsa::{EcdsaDkg, EcdsaKeyShare, EcdsaPublicKeys},
    frost::{FrostKeyShare, FrostPublicKeys},
    reshare::{EcdsaReshare, ExcludedDealer, Reshare, ReshareParams},
    split_aes::{SplitAesKeyShare, SplitAesPublicKeys},
    SessionId,
};
use vhsm_wire::{mesh::MeshPayload, NodeId};

use crate::{
    mesh::Mesh,
    sessions::{
        driver::{Pace, Session},
        SessionError,
    },
    share::KeyShare,
    store::ShareStore,
};

/// What the coordinator asked of this node.
pub struct ReshareRequest<'a> {
    /// This node.
    pub me: NodeId,
    /// The run's session.
    pub session: SessionId,
    /// The key as it is now (current epoch, holders, threshold, public package).
    pub key: &'a KeyInfo,
    /// Who deals.
    pub dealers: &'a [NodeId],
    /// The holders afterwards.
    pub committee: &'a [NodeId],
    /// The threshold afterwards.
    pub threshold: u16,
    /// Peers this node refuses OT-based protocols (ECDSA) with.
    pub banned: &'a [NodeId],
    /// Test-only (fault injection): deal wrong sub-shares to every other member, and stand by them when
    /// challenged — a bad dealer.
    pub wrong_sub_shares: bool,
    /// Test-only (fault injection): complain about every other dealer's sub-share, whatever it was — a false
    /// accuser, refuted in the dispute round.
    pub false_complaints: bool,
}

impl std::fmt::Debug for ReshareRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReshareRequest")
            .field("me", &self.me)
            .field("session", &self.session)
            .field("key", &self.key.id)
            .field("dealers", &self.dealers)
            .field("committee", &self.committee)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

/// What this node's part of a reshare produced.
#[derive(Debug)]
pub struct ReshareResult {
    /// A new holder: the staged metadata of the next epoch.
    pub staged: Option<KeyInfo>,
    /// Dealers the participants agreed to leave out.
    pub excluded: Vec<ExcludedDealer>,
}

/// How long a reshare may take on this node.
pub fn reshare_timeout(algorithm: Algorithm) -> Duration {
    match algorithm {
        Algorithm::Ed25519 | Algorithm::SplitAes256 => Duration::from_secs(30),
        // The ECDSA pairwise set-up after the reshare costs what a DKLs23 key generation costs.
        Algorithm::EcdsaP256 | Algorithm::EcdsaSecp256k1 => Duration::from_secs(600),
    }
}

/// The session of the ECDSA pairwise set-up that follows the reshare `session` (every new holder derives the
/// same one; it cannot collide with a fresh random session).
fn refresh_session(session: SessionId) -> SessionId {
    let digest = Sha256::new()
        .chain_update(b"vhsm/reshare/ecdsa-pairwise-setup/v1")
        .chain_update(session.0)
        .finalize();
    SessionId(digest.into())
}

/// Takes part in a reshare: deals if asked to, receives and stages if in the new committee.
pub async fn reshare(
    mesh: &Mesh,
    store: &Arc<ShareStore>,
    request: ReshareRequest<'_>,
) -> Result<ReshareResult, SessionError> {
    let ReshareRequest {
        me,
        session,
        key,
        dealers,
        committee,
        threshold,
        banned,
        wrong_sub_shares,
        false_complaints,
    } = request;
    let deals = dealers.contains(&me);
    let receives = committee.contains(&me);
    if !deals && !receives {
        return Err(SessionError::BadRequest(
            "this node is neither a dealer nor in the new committee",
        ));
    }
    if !key.state.allows(KeyUse::Reshare) {
        return Err(SessionError::CannotReshare {
            key_id: key.id,
            state: key.state,
        });
    }
    // What this node holds of the key decides, not the coordinator's word (issue 14, item 2): its own record's
    // state must allow a reshare (a pending key, whose generation was never committed, does not), and the staged
    // share keeps its own state, label, attributes and revision — a reshare changes who holds the key and how,
    // never what the key may do.
    let mine = store.active_key(key.id).ok().map(|k| k.info.clone());
    if let Some(mine) = mine.as_ref().filter(|m| !m.state.allows(KeyUse::Reshare)) {
        return Err(SessionError::CannotReshare {
            key_id: key.id,
            state: mine.state,
        });
    }
    if let Some(stranger) = dealers.iter().find(|d| !key.holders.contains(d)) {
        return Err(SessionError::DealerNotHolder {
            dealer: *stranger,
            key_id: key.id,
        });
    }
    let mut participants: Vec<NodeId> = dealers.iter().chain(committee).copied().collect();
    participants.sort_unstable();
    participants.dedup();
    if let Some(stranger) = participants
        .iter()
        .find(|p| **p != me && !mesh.is_peer(**p))
    {
        return Err(SessionError::NotAPeer(*stranger));
    }
    // A dealer deals the share of the key as the coordinator knows it: same epoch, same public keys.
    let own = if deals {
        let loaded = store
            .active_key(key.id)
            .map_err(|source| SessionError::CannotDeal {
                node: me,
                key_id: key.id,
                source,
            })?;
        if loaded.info.epoch != key.epoch || loaded.info.public_package != key.public_package {
            return Err(SessionError::DealerEpoch {
                node: me,
                key_id: key.id,
                held: loaded.info.epoch,
                asked: key.epoch,
            });
        }
        Some(loaded)
    } else {
        None
    };
    let own_share = own.as_ref().map(|k| &k.share);
    let params = ReshareParams {
        session,
        me,
        dealers: dealers.to_vec(),
        new_committee: committee.to_vec(),
        new_threshold: threshold,
    };
    let timeout = reshare_timeout(key.algorithm);
    let failed = |source| SessionError::Protocol {
        what: "reshare",
        source,
    };
    let run = Session {
        mesh,
        me,
        members: &participants,
        session,
        codec: (MeshPayload::Reshare, |p| match p {
            MeshPayload::Reshare(m) => Some(m),
            _ => None,
        }),
        what: "reshare",
        tamper: None,
        pace: Pace::Free,
    };
    // Test-only: every member but this node gets a wrong sub-share.
    #[cfg(not(feature = "fault-injection"))]
    let _ = (wrong_sub_shares, false_complaints);
    #[cfg(feature = "fault-injection")]
    let victims: Vec<NodeId> = if wrong_sub_shares {
        tracing::warn!("fault injection: dealing wrong sub-shares");
        committee.iter().copied().filter(|c| *c != me).collect()
    } else {
        Vec::new()
    };
    // Test-only: complain about every other dealer.
    #[cfg(feature = "fault-injection")]
    let accused: Vec<NodeId> = if false_complaints && receives {
        let accused: Vec<NodeId> = dealers.iter().copied().filter(|d| *d != me).collect();
        tracing::warn!(key = %key.id, %session, ?accused, "fault injection: complaining falsely about the other dealers");
        accused
    } else {
        Vec::new()
    };
    let (share, excluded) = match key.algorithm {
        Algorithm::Ed25519 => {
            let old = FrostPublicKeys::from_bytes(&key.public_package)
                .map_err(SessionError::PublicPackage)?;
            let own = match own_share {
                Some(KeyShare::Frost(s)) => Some(&**s),
                Some(_) => {
                    return Err(SessionError::BadRequest(
                        "the key's share is not a FROST share",
                    ))
                }
                None => None,
            };
            #[allow(unused_mut)]
            let mut protocol = Reshare::frost(params, &old, own).map_err(failed)?;
            #[cfg(feature = "fault-injection")]
            protocol.deal_wrong_sub_shares_to(victims.iter().copied());
            #[cfg(feature = "fault-injection")]
            protocol.complain_falsely_about(accused.iter().copied());
            let output = run.run(protocol, timeout).await?;
            log_refuted(key, session, output.refuted_complaints());
            let share = if output.holds_share() {
                Some(KeyShare::Frost(Box::new(
                    FrostKeyShare::from_reshare(&output).map_err(failed)?,
                )))
            } else {
                None
            };
            (share, output.excluded().to_vec())
        }
        Algorithm::SplitAes256 => {
            let old = SplitAesPublicKeys::from_bytes(&key.public_package)
                .map_err(SessionError::PublicPackage)?;
            let own = match own_share {
                Some(KeyShare::SplitAes(s)) => Some(&**s),
                Some(_) => {
                    return Err(SessionError::BadRequest(
                        "the key's share is not a split-AES share",
                    ))
                }
                None => None,
            };
            #[allow(unused_mut)]
            let mut protocol = Reshare::split_aes(params, &old, own).map_err(failed)?;
            #[cfg(feature = "fault-injection")]
            protocol.deal_wrong_sub_shares_to(victims.iter().copied());
            #[cfg(feature = "fault-injection")]
            protocol.complain_falsely_about(accused.iter().copied());
            let output = run.run(protocol, timeout).await?;
            log_refuted(key, session, output.refuted_complaints());
            let share = if output.holds_share() {
                Some(KeyShare::SplitAes(Box::new(
                    SplitAesKeyShare::from_reshare(&output).map_err(failed)?,
                )))
            } else {
                None
            };
            (share, output.excluded().to_vec())
        }
        Algorithm::EcdsaP256 | Algorithm::EcdsaSecp256k1 => {
            let refused: Vec<NodeId> = participants
                .iter()
                .copied()
                .filter(|p| banned.contains(p))
                .collect();
            if !refused.is_empty() {
                return Err(SessionError::RefusesBanned {
                    what: "ECDSA resharing",
                    nodes: refused,
                });
            }
            let old = EcdsaPublicKeys::from_bytes(&key.public_package)
                .map_err(SessionError::PublicPackage)?;
            let own = match own_share {
                Some(KeyShare::Ecdsa(s)) => Some(&**s),
                Some(_) => {
                    return Err(SessionError::BadRequest(
                        "the key's share is not an ECDSA share",
                    ))
                }
                None => None,
            };
            #[allow(unused_mut)]
            let mut protocol = EcdsaReshare::new(params, &old, own).map_err(failed)?;
            #[cfg(feature = "fault-injection")]
            protocol.deal_wrong_sub_shares_to(victims.iter().copied());
            #[cfg(feature = "fault-injection")]
            protocol.complain_falsely_about(accused.iter().copied());
            let output = run.run(protocol, timeout).await?;
            log_refuted(key, session, output.refuted_complaints());
            let excluded = output.excluded().to_vec();
            let share = if output.holds_share() {
                // The new committee rebuilds DKLs23's pairwise state around the new shares.
                let pairwise = refresh_session(session);
                let setup = EcdsaDkg::after_reshare(pairwise, &output).map_err(failed)?;
                let share: EcdsaKeyShare = Session {
                    mesh,
                    me,
                    members: committee,
                    session: pairwise,
                    codec: (MeshPayload::EcdsaRefresh, |p| match p {
                        MeshPayload::EcdsaRefresh(m) => Some(m),
                        _ => None,
                    }),
                    what: "ECDSA pairwise set-up after a reshare",
                    tamper: None,
                    pace: Pace::Free,
                }
                .run(setup, timeout)
                .await?;
                Some(KeyShare::Ecdsa(Arc::new(share)))
            } else {
                None
            };
            (share, excluded)
        }
    };
    for e in &excluded {
        tracing::warn!(key = %key.id, %session, dealer = e.dealer, reason = ?e.reason, "reshare: a dealer was excluded");
    }
    let Some(share) = share else {
        tracing::info!(key = %key.id, %session, "dealt my share; this node is not in the new committee");
        return Ok(ReshareResult {
            staged: None,
            excluded,
        });
    };
    if share.public_key() != key.public_key || !share.is_for(key.algorithm) {
        return Err(SessionError::OtherKey);
    }
    let mut staged = mine.unwrap_or_else(|| key.clone());
    staged.epoch = key.epoch + 1;
    staged.holders = committee.to_vec();
    staged.threshold = threshold;
    staged.public_package = share.public_package();
    let info = staged.clone();
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.stage(&info, &share))
        .await
        .map_err(|source| SessionError::TaskFailed {
            task: "store",
            source,
        })?
        .map_err(|source| SessionError::Store {
            doing: "stage the new share",
            source,
        })?;
    tracing::info!(key = %key.id, %session, epoch = staged.epoch, holders = ?staged.holders, threshold, "new share staged (the current one stays in force until the commit)");
    Ok(ReshareResult {
        staged: Some(staged),
        excluded,
    })
}

/// Logs the complaints the accused dealers refuted in the dispute round: the accuser's word or the dealer's
/// private sub-share was false, which the run cannot tell apart (see `vhsm_protocols::reshare::RefutedComplaint`),
/// so nobody is excluded; worth investigating if it repeats.
fn log_refuted(
    key: &KeyInfo,
    session: SessionId,
    refuted: &[vhsm_protocols::reshare::RefutedComplaint],
) {
    for r in refuted {
        tracing::warn!(key = %key.id, %session, accuser = r.accuser, dealer = r.dealer, "reshare: a complaint was refuted by the dealer's public answer (a false complaint, or a dealer that dealt a wrong sub-share privately); the dealer stays");
    }
}
