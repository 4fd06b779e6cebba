//! The PKCS#11 module under the real clients applications use, against a real cluster: OpenSC's `pkcs11-tool`,
//! OpenSSL 3 with `pkcs11-provider`, and python-pkcs11. Every signature is checked by OpenSSL.
//!
//! The clients come from the distribution (`.ci/run` installs them). Where one is missing these tests say so and
//! skip it — unless `VHSM_REQUIRE_CLIENTS=1` (as in CI), where a missing client fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use common::{module_path, ProcessCluster};
use sha2::{Digest, Sha256};

/// Whether `tool` is installed; fails the test when it is missing and clients are required.
fn have(tool: &str, probe: &[&str]) -> bool {
    let found = Command::new(tool)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("VHSM_REQUIRE_CLIENTS").is_err(),
            "{tool} is not installed, and VHSM_REQUIRE_CLIENTS is set (.ci/run installs it)"
        );
        eprintln!("SKIPPED: {tool} is not installed (.ci/run installs it)");
    }
    found
}

fn pkcs11_provider() -> Option<PathBuf> {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("ossl-modules").join("pkcs11.so"))
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var("VHSM_REQUIRE_CLIENTS").is_err(),
            "pkcs11-provider is not installed, and VHSM_REQUIRE_CLIENTS is set (.ci/run installs it)"
        );
        eprintln!("SKIPPED: pkcs11-provider is not installed (.ci/run installs it from bookworm-backports)");
    }
    found
}

/// Runs a command with the module's configuration in its environment, bounded in time.
fn run(command: &mut Command, cluster: &ProcessCluster, timeout: Duration) -> Output {
    command
        .env(
            "VHSM_PKCS11_CONFIG",
            cluster.path().join("client").join("client.toml"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + timeout;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{command:?} did not finish within {timeout:?}\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Tool<'a> {
    cluster: &'a ProcessCluster,
    module: PathBuf,
    pin: String,
}

impl Tool<'_> {
    fn pkcs11_tool(&self, args: &[&str], timeout: Duration) -> Output {
        let mut command = Command::new("pkcs11-tool");
        command.arg("--module").arg(&self.module).args(args);
        run(&mut command, self.cluster, timeout)
    }

    fn ok(&self, args: &[&str]) -> String {
        let mut with_login = vec!["--login", "--pin", self.pin.as_str()];
        with_login.extend_from_slice(args);
        let out = self.pkcs11_tool(&with_login, Duration::from_secs(120));
        assert!(
            out.status.success(),
            "pkcs11-tool {args:?} failed:\n{}",
            text(&out)
        );
        text(&out)
    }
}

fn openssl(args: &[&str], cluster: &ProcessCluster, conf: Option<&Path>) -> Output {
    let mut command = Command::new("openssl");
    command.args(args);
    if let Some(conf) = conf {
        command.env("OPENSSL_CONF", conf);
    }
    run(&mut command, cluster, Duration::from_secs(120))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs11_tool_generates_signs_and_verifies_all_three_key_types() {
    if !have("pkcs11-tool", &["--help"]) || !have("openssl", &["version"]) {
        return;
    }
    let cluster = ProcessCluster::start(3, 2).await;
    let tool = Tool {
        cluster: &cluster,
        module: module_path(),
        pin: cluster.user_pin(),
    };
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    let out = tool.pkcs11_tool(&["--list-slots"], Duration::from_secs(30));
    assert!(
        out.status.success() && text(&out).contains("vHSM"),
        "{}",
        text(&out)
    );
    let out = tool.pkcs11_tool(&["--list-mechanisms"], Duration::from_secs(30));
    let mechanisms = text(&out);
    for m in [
        "ECDSA",
        "ECDSA-SHA256",
        "EDDSA",
        "ECDSA-KEY-PAIR-GEN",
        "EC-EDWARDS-KEY-PAIR-GEN",
    ] {
        assert!(mechanisms.contains(m), "{m} missing:\n{mechanisms}");
    }

    std::fs::write(file("msg"), b"signed through pkcs11-tool").unwrap();
    std::fs::write(
        file("digest"),
        Sha256::digest(b"signed through pkcs11-tool"),
    )
    .unwrap();
    for (key_type, id, label) in [
        ("EC:prime256v1", "01", "p256"),
        ("EC:secp256k1", "02", "k256"),
        ("EC:edwards25519", "03", "ed"),
    ] {
        tool.ok(&[
            "--keypairgen",
            "--key-type",
            key_type,
            "--id",
            id,
            "--label",
            label,
        ]);
        let public = file(&format!("{label}.der"));
        tool.ok(&[
            "--read-object",
            "--type",
            "pubkey",
            "--id",
            id,
            "-o",
            &public,
        ]);
        let pem = file(&format!("{label}.pem"));
        let out = openssl(
            &[
                // pkcs11-tool writes EC public keys as DER, Ed25519 ones as PEM.
                "pkey",
                "-pubin",
                "-inform",
                if label == "ed" { "PEM" } else { "DER" },
                "-in",
                &public,
                "-out",
                &pem,
            ],
            &cluster,
            None,
        );
        assert!(out.status.success(), "{}", text(&out));

        if label == "ed" {
            let sig = file("ed.sig");
            tool.ok(&[
                "--sign",
                "--mechanism",
                "EDDSA",
                "--id",
                id,
                "-i",
                &file("msg"),
                "-o",
                &sig,
            ]);
            tool.ok(&[
                "--verify",
                "--mechanism",
                "EDDSA",
                "--id",
                id,
                "-i",
                &file("msg"),
                "--signature-file",
                &sig,
            ]);
            let out = openssl(
                &[
                    "pkeyutl",
                    "-verify",
                    "-pubin",
                    "-inkey",
                    &pem,
                    "-rawin",
                    "-in",
                    &file("msg"),
                    "-sigfile",
                    &sig,
                ],
                &cluster,
                None,
            );
            assert!(
                text(&out).contains("Signature Verified Successfully"),
                "{}",
                text(&out)
            );
            continue;
        }
        // CKM_ECDSA over a digest, and CKM_ECDSA_SHA256 over the message: OpenSSL verifies both.
        for (mechanism, input) in [("ECDSA", file("digest")), ("ECDSA-SHA256", file("msg"))] {
            let sig = file(&format!("{label}-{mechanism}.sig"));
            tool.ok(&[
                "--sign",
                "--mechanism",
                mechanism,
                "--id",
                id,
                "-i",
                &input,
                "-o",
                &sig,
                "--signature-format",
                "openssl",
            ]);
            let out = openssl(
                &[
                    "dgst",
                    "-sha256",
                    "-verify",
                    &pem,
                    "-signature",
                    &sig,
                    &file("msg"),
                ],
                &cluster,
                None,
            );
            assert!(
                text(&out).contains("Verified OK"),
                "{label} {mechanism}: {}",
                text(&out)
            );
            let raw = file(&format!("{label}-{mechanism}.raw"));
            tool.ok(&[
                "--sign",
                "--mechanism",
                mechanism,
                "--id",
                id,
                "-i",
                &input,
                "-o",
                &raw,
            ]);
            assert_eq!(std::fs::metadata(&raw).unwrap().len(), 64, "r ‖ s");
            tool.ok(&[
                "--verify",
                "--mechanism",
                mechanism,
                "--id",
                id,
                "-i",
                &input,
                "--signature-file",
                &raw,
            ]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs11_tool_self_tests_pass() {
    if !have("pkcs11-tool", &["--help"]) {
        return;
    }
    let cluster = ProcessCluster::start(3, 2).await;
    let tool = Tool {
        cluster: &cluster,
        module: module_path(),
        pin: cluster.user_pin(),
    };
    tool.ok(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--id",
        "10",
        "--label",
        "selftest",
    ]);
    let out = tool.ok(&["--test-ec", "--id", "10", "--key-type", "EC:prime256v1"]);
    assert!(out.contains("==> OK") && !out.contains("error:"), "{out}");
    let out = tool.pkcs11_tool(&["--test-fork"], Duration::from_secs(60));
    assert!(
        out.status.success() && text(&out).contains("C_Initialize in forked child"),
        "{}",
        text(&out)
    );
    // Two threads: C_Initialize (plain, and with OS locking), C_GetInfo, C_GetSlotList, C_GetTokenInfo.
    let out = tool.pkcs11_tool(
        &["--test-threads", "INGISLT0", "--test-threads", "ILGISLT0T0"],
        Duration::from_secs(60),
    );
    let report = text(&out);
    assert!(
        out.status.success() && report.contains("all threads have ended with CKR_OK"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_with_pkcs11_provider_signs_makes_a_certificate_and_serves_tls13() {
    if !have("openssl", &["version"]) || !have("pkcs11-tool", &["--help"]) {
        return;
    }
    let Some(provider) = pkcs11_provider() else {
        return;
    };
    let cluster = ProcessCluster::start(3, 2).await;
    let tool = Tool {
        cluster: &cluster,
        module: module_path(),
        pin: cluster.user_pin(),
    };
    tool.ok(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--id",
        "21",
        "--label",
        "tls",
    ]);
    tool.ok(&[
        "--keypairgen",
        "--key-type",
        "EC:edwards25519",
        "--id",
        "22",
        "--label",
        "edkey",
    ]);

    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let conf_path = dir.path().join("openssl.cnf");
    std::fs::write(
        &conf_path,
        format!(
            "openssl_conf = openssl_init\n[openssl_init]\nproviders = provider_sect\n[provider_sect]\n\
             default = default_sect\npkcs11 = pkcs11_sect\n[default_sect]\nactivate = 1\n[pkcs11_sect]\n\
             module = {}\npkcs11-module-path = {}\npkcs11-module-token-pin = file:{}\nactivate = 1\n",
            provider.display(),
            tool.module.display(),
            cluster.path().join("client").join("user.pin").display()
        ),
    )
    .unwrap();
    let conf = Some(conf_path.as_path());
    let p256 = "pkcs11:token=vHSM;object=tls;type=private";
    let ed = "pkcs11:token=vHSM;object=edkey;type=private";

    // Public keys, exported through the provider.
    for (uri, pem) in [
        ("pkcs11:token=vHSM;object=tls;type=public", "tls.pem"),
        ("pkcs11:token=vHSM;object=edkey;type=public", "ed.pem"),
    ] {
        let out = openssl(
            &["pkey", "-pubin", "-in", uri, "-out", &file(pem)],
            &cluster,
            conf,
        );
        assert!(out.status.success(), "{}", text(&out));
    }

    // P-256: pkeyutl signs a digest; plain OpenSSL verifies.
    std::fs::write(
        file("digest"),
        Sha256::digest(b"openssl through the cluster"),
    )
    .unwrap();
    let out = openssl(
        &[
            "pkeyutl",
            "-sign",
            "-inkey",
            p256,
            "-in",
            &file("digest"),
            "-out",
            &file("p256.sig"),
        ],
        &cluster,
        conf,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = openssl(
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &file("tls.pem"),
            "-in",
            &file("digest"),
            "-sigfile",
            &file("p256.sig"),
        ],
        &cluster,
        None,
    );
    assert!(
        text(&out).contains("Signature Verified Successfully"),
        "{}",
        text(&out)
    );

    // Ed25519: pkeyutl signs the raw message.
    std::fs::write(file("msg"), b"ed25519 through the provider").unwrap();
    let out = openssl(
        &[
            "pkeyutl",
            "-sign",
            "-inkey",
            ed,
            "-rawin",
            "-in",
            &file("msg"),
            "-out",
            &file("ed.sig"),
        ],
        &cluster,
        conf,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = openssl(
        &[
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            &file("ed.pem"),
            "-rawin",
            "-in",
            &file("msg"),
            "-sigfile",
            &file("ed.sig"),
        ],
        &cluster,
        None,
    );
    assert!(
        text(&out).contains("Signature Verified Successfully"),
        "{}",
        text(&out)
    );

    // A self-signed certificate whose key lives in the cluster; plain OpenSSL accepts it.
    let out = openssl(
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            p256,
            "-subj",
            "/CN=vhsm-test",
            "-days",
            "1",
            "-out",
            &file("cert.pem"),
        ],
        &cluster,
        conf,
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = openssl(
        &["verify", "-CAfile", &file("cert.pem"), &file("cert.pem")],
        &cluster,
        None,
    );
    assert!(text(&out).contains("OK"), "{}", text(&out));

    // A TLS 1.3 server whose key is in the cluster, and a client that completes the handshake.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-tls1_3",
            "-key",
            p256,
            "-cert",
            &file("cert.pem"),
            "-naccept",
            "1",
        ])
        .env("OPENSSL_CONF", &conf_path)
        .env(
            "VHSM_PKCS11_CONFIG",
            cluster.path().join("client").join("client.toml"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut handshake = String::new();
    while Instant::now() < deadline {
        let out = openssl(
            &[
                "s_client",
                "-connect",
                &format!("127.0.0.1:{port}"),
                "-tls1_3",
                "-CAfile",
                &file("cert.pem"),
                "-verify_return_error",
                "-brief",
            ],
            &cluster,
            None,
        );
        handshake = text(&out);
        if handshake.contains("Protocol version: TLSv1.3")
            || handshake.contains("TLSv1.3") && out.status.success()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        handshake.contains("TLSv1.3"),
        "no TLS 1.3 handshake:\n{handshake}"
    );
    assert!(
        handshake.contains("Verification: OK") || handshake.contains("Verify return code: 0"),
        "{handshake}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_pkcs11_generates_signs_and_verifies_all_three_key_types() {
    let Ok(python) = std::env::var("VHSM_TEST_PYTHON") else {
        assert!(
            std::env::var("VHSM_REQUIRE_CLIENTS").is_err(),
            "VHSM_TEST_PYTHON (a python with python-pkcs11) is not set, and VHSM_REQUIRE_CLIENTS is (.ci/run sets both)"
        );
        eprintln!("SKIPPED: VHSM_TEST_PYTHON is not set (.ci/run makes a venv with python-pkcs11)");
        return;
    };
    let cluster = ProcessCluster::start(3, 2).await;
    let script = r#"
import sys, pkcs11
from pkcs11 import KeyType, Mechanism, ObjectClass, Attribute
from pkcs11.util.ec import encode_named_curve_parameters
lib = pkcs11.lib(sys.argv[1])
token = lib.get_token(token_label="vHSM")
with token.open(user_pin=sys.argv[2], rw=True) as session:
    for curve in ("secp256r1", "secp256k1"):
        params = session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True)
        public, private = params.generate_keypair(store=True, label="py-" + curve)
        for mechanism in (Mechanism.ECDSA_SHA256, Mechanism.ECDSA):
            data = b"python-pkcs11 " + curve.encode() if mechanism == Mechanism.ECDSA_SHA256 else bytes(range(32))
            signature = private.sign(data, mechanism=mechanism)
            assert len(signature) == 64, len(signature)
            assert public.verify(data, signature, mechanism=mechanism), (curve, mechanism)
            assert not public.verify(data + b"x" if mechanism == Mechanism.ECDSA_SHA256 else bytes(32), signature, mechanism=mechanism)
    params = session.create_domain_parameters(KeyType.EC_EDWARDS, {Attribute.EC_PARAMS: encode_named_curve_parameters("1.3.101.112")}, local=True)
    public, private = params.generate_keypair(store=True, label="py-ed25519", mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN)
    signature = private.sign(b"python-pkcs11 ed25519", mechanism=Mechanism.EDDSA)
    assert public.verify(b"python-pkcs11 ed25519", signature, mechanism=Mechanism.EDDSA)
    assert not public.verify(b"another message", signature, mechanism=Mechanism.EDDSA)
print("python-pkcs11: all good")
"#;
    let mut command = Command::new(python);
    command
        .arg("-c")
        .arg(script)
        .arg(module_path())
        .arg(cluster.user_pin());
    let out = run(&mut command, &cluster, Duration::from_secs(180));
    assert!(
        out.status.success() && text(&out).contains("all good"),
        "{}",
        text(&out)
    );
}
