//! The PKCS#11 module's failure behaviour against real processes, driven through the `cryptoki` crate as an
//! application would: the PIN locks after the limit, and a coordinator that goes away gives an error within a
//! bounded time (no hang) and the module recovers by itself when the coordinator returns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::{Duration, Instant};

use common::ProcessCluster;
use cryptoki::{
    context::{CInitializeArgs, CInitializeFlags, Pkcs11},
    error::{Error, RvError},
    mechanism::Mechanism,
    object::Attribute,
    session::UserType,
    types::AuthPin,
};

fn module() -> Pkcs11 {
    let pkcs11 = Pkcs11::new(common::module_path()).unwrap();
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    pkcs11
}

fn rv(result: Result<impl std::fmt::Debug, Error>) -> Option<RvError> {
    match result {
        Err(Error::Pkcs11(rv, _)) => Some(rv),
        _ => None,
    }
}

const OID_P256: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

// Both scenarios share one process-wide module configuration (VHSM_PKCS11_CONFIG), so they run in one test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_locks_and_a_lost_coordinator_is_a_bounded_error_then_recovered() {
    let mut cluster = ProcessCluster::start(3, 2).await;
    std::env::set_var(
        "VHSM_PKCS11_CONFIG",
        cluster.path().join("client").join("client.toml"),
    );
    let pin = cluster.user_pin();
    let pkcs11 = module();
    let slot = pkcs11.get_slots_with_token().unwrap()[0];

    // Sign once with a key made through the module.
    let session = pkcs11.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::from(pin.clone())))
        .unwrap();
    let (_, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &[
                Attribute::Token(true),
                Attribute::EcParams(OID_P256.to_vec()),
            ],
            &[
                Attribute::Token(true),
                Attribute::Sign(true),
                Attribute::Label(b"restart".to_vec()),
            ],
        )
        .unwrap();
    session
        .sign(&Mechanism::EcdsaSha256, private, b"before")
        .unwrap();

    // The coordinator goes away: an error, not a hang.
    cluster.kill("coordinator");
    let started = Instant::now();
    let result = session.sign(&Mechanism::EcdsaSha256, private, b"while down");
    let elapsed = started.elapsed();
    assert!(result.is_err(), "signed without a coordinator");
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    assert_eq!(rv(result), Some(RvError::DeviceError));

    // It comes back: the module reconnects and logs in again by itself; the session and key handle still work.
    cluster.start_coordinator();
    cluster.wait_all_reachable().await;
    let mut signed = Err(String::new());
    for _ in 0..20 {
        match session.sign(&Mechanism::EcdsaSha256, private, b"after") {
            Ok(s) => {
                signed = Ok(s);
                break;
            }
            Err(e) => {
                signed = Err(e.to_string());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    assert_eq!(signed.unwrap().len(), 64);
    session.logout().unwrap();
    drop(session);

    // Wrong PINs: CKR_PIN_INCORRECT until the limit, then CKR_PIN_LOCKED, even for the right PIN.
    let session = pkcs11.open_ro_session(slot).unwrap();
    for _ in 0..4 {
        let wrong = session.login(UserType::User, Some(&AuthPin::from("00000000".to_string())));
        assert_eq!(rv(wrong), Some(RvError::PinIncorrect));
    }
    let wrong = session.login(UserType::User, Some(&AuthPin::from("00000000".to_string())));
    assert_eq!(rv(wrong), Some(RvError::PinLocked));
    let right = session.login(UserType::User, Some(&AuthPin::from(pin)));
    assert_eq!(rv(right), Some(RvError::PinLocked));
    assert!(pkcs11.get_token_info(slot).unwrap().user_pin_locked());
    drop(session);
    pkcs11.finalize().unwrap();
}
