//! Real processes: split-AES encryption through the cluster — round trips of every size (100 MiB through the CLI,
//! chunked), tampering of any kind refused (altered, reordered, cut short, another aad), a node down tolerated, a node answering wrong partials named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::time::Duration;

use common::{run_vhsm, ProcessCluster};
use vhsm_client::ClientError;
use vhsm_core::{limits::MAX_CIPHER_INPUT, Algorithm};
use vhsm_wire::ErrorKind;

fn kind(e: &ClientError) -> Option<ErrorKind> {
    match e {
        ClientError::Service(w) => Some(w.kind),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trips_tampering_other_key_and_a_node_down() {
    let mut cluster = ProcessCluster::start(3, 2).await;
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::SplitAes256, "aes")
        .await
        .unwrap();
    let other = client
        .create_key(Algorithm::SplitAes256, "other")
        .await
        .unwrap();
    assert_eq!(key.public_key.len(), 32);

    for len in [0usize, 1, 1024, MAX_CIPHER_INPUT] {
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let blob = client.encrypt(key.id, &plaintext, b"ctx").await.unwrap();
        assert!(!blob
            .windows(16.min(len.max(1)))
            .any(|w| len >= 16 && w == &plaintext[..16]));
        let back = client.decrypt(&blob, b"ctx").await.unwrap();
        assert_eq!(back.expose(), plaintext.as_slice(), "{len} bytes");
    }

    // Equal plaintexts: different message inputs (α, bytes 17..49 of the blob), so different message keys.
    let a = client.encrypt(key.id, b"same", b"").await.unwrap();
    let b = client.encrypt(key.id, b"same", b"").await.unwrap();
    assert_ne!(a[17..49], b[17..49]);
    assert_ne!(a, b);

    // Any altered byte, another aad, another key: refused, no plaintext.
    let blob = client
        .encrypt(key.id, b"attack at dawn", b"aad")
        .await
        .unwrap();
    for i in 0..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x01;
        let err = client.decrypt(&bad, b"aad").await.unwrap_err();
        assert!(
            matches!(
                kind(&err),
                Some(ErrorKind::InvalidCiphertext | ErrorKind::NotFound)
            ),
            "byte {i}: {err}"
        );
    }
    assert_eq!(
        kind(&client.decrypt(&blob, b"other aad").await.unwrap_err()),
        Some(ErrorKind::InvalidCiphertext)
    );
    let mut moved = blob.clone();
    moved[1..17].copy_from_slice(&other.id.0);
    assert!(
        client.decrypt(&moved, b"aad").await.is_err(),
        "decrypted under another key"
    );
    assert!(client.decrypt(&blob[..40], b"aad").await.is_err());

    // Signing keys do not encrypt, split-AES keys do not sign.
    assert!(client.sign(key.id, b"x", None).await.is_err());

    // One node of three down: still both ways.
    cluster.kill("node-2");
    let blob = client
        .encrypt(key.id, b"with a node down", b"")
        .await
        .unwrap();
    assert_eq!(
        client.decrypt(&blob, b"").await.unwrap().expose(),
        b"with a node down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_answering_wrong_partials_is_named_and_left_out() {
    let cluster = ProcessCluster::start_with_fault(3, 2, 2, "wrong_partials = true").await;
    let client = cluster.client().await;
    let key = client
        .create_key(Algorithm::SplitAes256, "blame")
        .await
        .unwrap();
    for i in 0..4 {
        let message = format!("message {i}");
        let blob = client
            .encrypt(key.id, message.as_bytes(), b"")
            .await
            .unwrap();
        assert_eq!(
            client.decrypt(&blob, b"").await.unwrap().expose(),
            message.as_bytes()
        );
    }
    let log = cluster.read_log("coordinator");
    let named: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("invalid partial"))
        .collect();
    assert!(!named.is_empty(), "node 2 was never named:\n{log}");
    assert!(
        named.iter().all(|l| l.contains("node=2")),
        "an honest node was named:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_encrypts_100_mib_in_chunks_and_refuses_a_damaged_file() {
    let cluster = ProcessCluster::start(3, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster.path().to_str().unwrap().to_string();
    let (ok, out, err) = run_vhsm(
        &[
            "--cluster",
            &c,
            "--json",
            "key",
            "create",
            "--algorithm",
            "split-aes-256",
            "--label",
            "files",
        ],
        Duration::from_secs(60),
    );
    assert!(ok, "{out}{err}");
    let key: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = key["id"].as_str().unwrap().to_string();

    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    // 100 MiB of varied bytes, not a multiple of the chunk size.
    let plain: Vec<u8> = (0..100 * 1024 * 1024 + 12345u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(path("plain"), &plain).unwrap();
    for (name, bytes) in [("empty", vec![]), ("one", vec![42u8])] {
        std::fs::write(path(name), &bytes).unwrap();
    }
    for name in ["plain", "empty", "one"] {
        let (ok, out, err) = run_vhsm(
            &[
                "--cluster",
                &c,
                "encrypt",
                "--key",
                &id,
                "--in",
                &path(name),
                "--out",
                &path(&format!("{name}.enc")),
                "--aad",
                "v1",
            ],
            Duration::from_secs(300),
        );
        assert!(ok, "{out}{err}");
        let (ok, out, err) = run_vhsm(
            &[
                "--cluster",
                &c,
                "decrypt",
                "--in",
                &path(&format!("{name}.enc")),
                "--out",
                &path(&format!("{name}.dec")),
                "--aad",
                "v1",
            ],
            Duration::from_secs(300),
        );
        assert!(ok, "{out}{err}");
        assert!(
            std::fs::read(path(name)).unwrap()
                == std::fs::read(path(&format!("{name}.dec"))).unwrap(),
            "{name}"
        );
    }

    // A damaged file: one flipped byte in the middle, a missing tail, another aad. Each fails and leaves no output.
    let encrypted = std::fs::read(path("plain.enc")).unwrap();
    let mut flipped = encrypted.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x80;
    std::fs::write(path("flipped.enc"), &flipped).unwrap();
    let last_frame = {
        // Cut the last chunk off entirely: the stream then ends on a chunk not marked last.
        let mut offset = 8;
        let mut starts = Vec::new();
        while offset < encrypted.len() {
            starts.push(offset);
            let len =
                u32::from_be_bytes(encrypted[offset..offset + 4].try_into().unwrap()) as usize;
            offset += 4 + len;
        }
        *starts.last().unwrap()
    };
    std::fs::write(path("cut.enc"), &encrypted[..last_frame]).unwrap();
    // Swap the first two chunks (both full 1 MiB chunks, so the frames have the same length).
    let frame = 4 + u32::from_be_bytes(encrypted[8..12].try_into().unwrap()) as usize;
    let mut swapped = encrypted.clone();
    swapped[8..8 + frame].copy_from_slice(&encrypted[8 + frame..8 + 2 * frame]);
    swapped[8 + frame..8 + 2 * frame].copy_from_slice(&encrypted[8..8 + frame]);
    assert_ne!(swapped, encrypted);
    std::fs::write(path("swapped.enc"), &swapped).unwrap();
    for (input, aad) in [
        ("flipped.enc", "v1"),
        ("cut.enc", "v1"),
        ("plain.enc", "v2"),
    ] {
        let out_path = path(&format!("{input}.out"));
        let (ok, _, err) = run_vhsm(
            &[
                "--cluster",
                &c,
                "decrypt",
                "--in",
                &path(input),
                "--out",
                &out_path,
                "--aad",
                aad,
            ],
            Duration::from_secs(300),
        );
        assert!(!ok, "{input} with aad {aad} decrypted");
        assert!(
            err.contains("does not decrypt") || err.contains("cut short"),
            "{err}"
        );
        assert!(
            !std::path::Path::new(&out_path).exists(),
            "a partial output was left behind"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".vhsm-partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
