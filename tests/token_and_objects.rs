//! Real processes: the token's PIN (login required, wrong PIN, lockout), key metadata updates, key destruction on
//! every holder, and certificate/data objects kept on the nodes — what the PKCS#11 module builds on.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use common::ProcessCluster;
use vhsm_client::ClientError;
use vhsm_core::{Algorithm, PinUser};
use vhsm_wire::ErrorKind;

fn kind(e: &ClientError) -> Option<ErrorKind> {
    match e {
        ClientError::Service(w) => Some(w.kind),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_is_required_checked_and_locks_after_the_limit() {
    let cluster = ProcessCluster::start(3, 2).await;
    let anonymous = cluster.anonymous_client().await;
    let info = anonymous.token_info().await.unwrap();
    assert_eq!(info.label, "vHSM");
    assert!(!info.user_pin_locked);

    // Without login: public reads work, key use and changes do not.
    anonymous.list_keys().await.unwrap();
    let err = anonymous
        .create_key(Algorithm::Ed25519, "nope")
        .await
        .unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NotLoggedIn), "{err}");

    let user = cluster.client().await;
    let key = user.create_key(Algorithm::Ed25519, "pin").await.unwrap();
    let err = anonymous.sign(key.id, b"x", None).await.unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NotLoggedIn), "{err}");

    // Wrong PINs: incorrect four times, locked at the fifth; then even the right PIN is refused.
    let pin = cluster.user_pin();
    for _ in 0..4 {
        let err = anonymous
            .login(PinUser::User, b"00000000")
            .await
            .unwrap_err();
        assert_eq!(kind(&err), Some(ErrorKind::PinIncorrect), "{err}");
    }
    let err = anonymous
        .login(PinUser::User, b"00000000")
        .await
        .unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::PinLocked), "{err}");
    let err = anonymous
        .login(PinUser::User, pin.as_bytes())
        .await
        .unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::PinLocked), "{err}");
    assert!(anonymous.token_info().await.unwrap().user_pin_locked);
    // The connection logged in before the lock keeps working.
    user.sign(key.id, b"still logged in", None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_updated_and_destroyed_on_every_holder_objects_are_kept() {
    let cluster = ProcessCluster::start(3, 2).await;
    let client = cluster.client().await;

    // Attributes kept with a key, and changed.
    let key = client
        .create_key_with(
            Algorithm::Ed25519,
            "with-id",
            vec![(0x102, vec![0xab, 0xcd])],
        )
        .await
        .unwrap();
    assert_eq!(
        client.get_key(key.id).await.unwrap().attributes,
        vec![(0x102, vec![0xab, 0xcd])]
    );
    let updated = client
        .update_key(key.id, "renamed", vec![(0x102, vec![1])])
        .await
        .unwrap();
    assert_eq!((updated.label.as_str(), updated.revision), ("renamed", 1));
    let listed = client.list_keys().await.unwrap();
    assert_eq!(
        listed.iter().find(|k| k.id == key.id).unwrap().label,
        "renamed"
    );

    // Destroyed: gone from every holder; signing refused.
    client.destroy_key(key.id).await.unwrap();
    assert!(client
        .list_keys()
        .await
        .unwrap()
        .iter()
        .all(|k| k.id != key.id));
    let err = client
        .sign(key.id, b"after destroy", None)
        .await
        .unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NotFound), "{err}");

    // Objects: create, list, update, destroy; private ones hidden from anonymous connections.
    let cert = client
        .create_object(vec![(0, vec![1]), (0x11, b"DER".to_vec())])
        .await
        .unwrap();
    let secret = client
        .create_object(vec![
            (0, vec![0]),
            (0x2, vec![1]),
            (0x11, b"private data".to_vec()),
        ])
        .await
        .unwrap();
    let all = client.list_objects().await.unwrap();
    assert_eq!(all.len(), 2);
    let anonymous = cluster.anonymous_client().await;
    let public: Vec<_> = anonymous
        .list_objects()
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(public, vec![cert.id]);
    let err = anonymous.destroy_object(cert.id).await.unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NotLoggedIn), "{err}");

    let changed = client
        .update_object(cert.id, vec![(0, vec![1]), (0x11, b"NEW".to_vec())])
        .await
        .unwrap();
    assert_eq!(changed.version, 2);
    client.destroy_object(secret.id).await.unwrap();
    let all = client.list_objects().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        all[0].attributes,
        vec![(0, vec![1]), (0x11, b"NEW".to_vec())]
    );
    let err = client.destroy_object(secret.id).await.unwrap_err();
    assert_eq!(kind(&err), Some(ErrorKind::NotFound), "{err}");
}
