//! The PKCS#11 path, through the `cryptoki` client library as an application would use a token: the same driver
//! for our module (`libvhsm_pkcs11.so`) and for SoftHSMv2. Keys are generated through PKCS#11 on each token; each
//! of N OS threads opens its own session and calls `C_Sign` / `C_Encrypt` in a loop.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex,
    },
    time::Instant,
};

use anyhow::{bail, Context};
use cryptoki::{
    context::{CInitializeArgs, CInitializeFlags, Pkcs11},
    error::{Error as CkError, RvError},
    mechanism::{
        aead::GcmParams,
        eddsa::{EddsaParams, EddsaSignatureScheme},
        vendor_defined::VendorDefinedMechanism,
        Mechanism, MechanismType,
    },
    object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle},
    session::{Session, UserType},
    slot::Slot,
    types::AuthPin,
};
use rand::RngCore;
use serde::Serialize;
use zeroize::Zeroizing;

use super::{
    cpu::CpuProbe,
    workload::{run_threads, verify_signature, CellPlan, KeyKind, Measurement, Operation},
};
use vhsm_client::ClusterDir;

/// `CKK_VHSM_SPLIT_AES`: the key type of split-AES keys (see the README).
const CKK_VHSM_SPLIT_AES: u64 = 0x8056_4801;
/// `CKM_VHSM_SPLIT_AES_KEY_GEN`: a split-AES key by DKG on the nodes.
const CKM_VHSM_SPLIT_AES_KEY_GEN: u64 = 0x8056_4801;
/// `CKM_VHSM_SPLIT_AES`: split-AES encryption; the parameter is the associated data.
const CKM_VHSM_SPLIT_AES: u64 = 0x8056_4802;

/// DER of the OID 1.2.840.10045.3.1.7 (P-256).
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of the OID 1.3.132.0.10 (secp256k1).
const OID_SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
/// DER of the OID 1.3.101.112 (Ed25519, RFC 8410): what SoftHSM 2.6 accepts, and our module too (which also takes
/// the PrintableString "edwards25519").
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];

/// The file name of our module.
pub const MODULE_FILE: &str = "libvhsm_pkcs11.so";
/// Where SoftHSMv2's module is looked for.
pub const SOFTHSM_PATHS: [&str; 3] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];
/// The label of the benchmark's SoftHSM token.
const SOFTHSM_TOKEN_LABEL: &str = "vhsm-bench";

/// Finds `libvhsm_pkcs11.so`: `explicit` if given, else the newest of the copies next to this program (its directory,
/// `deps/` below it, and the directory above it, for a program run from `target/*/deps`).
pub fn find_module(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--module {}: no such file", path.display());
        }
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let dir = exe
        .parent()
        .context("this program's path has no directory")?;
    let mut candidates = vec![dir.join(MODULE_FILE), dir.join("deps").join(MODULE_FILE)];
    if let Some(parent) = dir.parent() {
        candidates.push(parent.join(MODULE_FILE));
    }
    candidates
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p.clone())))
        .max()
        .map(|(_, p)| p)
        .with_context(|| {
            format!(
                "the PKCS#11 module {MODULE_FILE} was not found next to {} (looked at {}): build it with \
                 `cargo build --release -p vhsm-pkcs11`, or pass --module PATH, or run only the native path with \
                 --paths native",
                exe.display(),
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// Whether and where SoftHSMv2 runs in this benchmark.
#[derive(Debug, Clone)]
pub enum SoftHsm {
    /// Its module.
    Use(PathBuf),
    /// It does not: why, in a sentence.
    Skipped(String),
}

/// Finds SoftHSMv2's module: `explicit` (`--softhsm`), else the usual places; `disabled` (`--no-softhsm`) skips it.
pub fn find_softhsm(explicit: Option<&Path>, disabled: bool) -> anyhow::Result<SoftHsm> {
    if disabled {
        return Ok(SoftHsm::Skipped(
            "SoftHSM comparison skipped (--no-softhsm)".into(),
        ));
    }
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--softhsm {}: no such file", path.display());
        }
        return Ok(SoftHsm::Use(path.to_path_buf()));
    }
    Ok(SOFTHSM_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .map(SoftHsm::Use)
        .unwrap_or_else(|| {
            SoftHsm::Skipped(format!(
                "SoftHSMv2 is not installed (no libsofthsm2.so in {}): no SoftHSM comparison in this run \
                 (Debian/Ubuntu: apt-get install softhsm2; or pass --softhsm PATH)",
                SOFTHSM_PATHS.join(", ")
            ))
        }))
}

/// Which token a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TokenKind {
    /// vHSM through `libvhsm_pkcs11.so`.
    #[serde(rename = "vhsm")]
    Vhsm,
    /// SoftHSMv2.
    #[serde(rename = "softhsm")]
    SoftHsm,
}

/// A key on a token.
#[derive(Debug, Clone)]
pub struct TokenKey {
    /// The private key (signing) or the secret key (encryption).
    pub handle: ObjectHandle,
    /// The public key, raw (Ed25519: 32 bytes; ECDSA: the SEC1 point); `None` for secret keys.
    pub public: Option<Vec<u8>>,
    /// Its `CKA_LABEL`.
    pub label: String,
    /// How long generating it took, in seconds.
    pub keygen_seconds: f64,
}

/// An output to check after the measurement.
enum Output {
    Signature(Vec<u8>),
    /// A split-AES blob.
    Blob(Vec<u8>),
    /// AES-GCM: the IV and the ciphertext with its tag.
    Gcm([u8; 12], Vec<u8>),
}

/// A token driven through PKCS#11, logged in as its user, with the benchmark's keys.
pub struct Pkcs11Target {
    pub kind: TokenKind,
    /// The library's own description and version (C_GetInfo).
    pub library: String,
    ctx: Pkcs11,
    slot: Slot,
    /// A session kept open for the whole run: the login lasts while one is open.
    keeper: Mutex<Option<Session>>,
    pub keys: BTreeMap<KeyKind, TokenKey>,
    /// AES-GCM IVs (SoftHSM): a random prefix and a counter, never repeated under one key.
    iv_prefix: [u8; 4],
    iv_counter: AtomicU64,
    /// SoftHSM's token directory and configuration (removed when dropped).
    _softhsm_dir: Option<tempfile::TempDir>,
}

fn load(module: &Path) -> anyhow::Result<(Pkcs11, String)> {
    let ctx = Pkcs11::new(module)
        .with_context(|| format!("cannot load the PKCS#11 module {}", module.display()))?;
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .with_context(|| format!("C_Initialize of {} failed", module.display()))?;
    let library = match ctx.get_library_info() {
        Ok(info) => format!(
            "{} {} ({})",
            info.library_description().trim(),
            info.library_version(),
            info.manufacturer_id().trim()
        ),
        Err(_) => module.display().to_string(),
    };
    Ok((ctx, library))
}

/// Logs `session` in as `user`; an application already logged in (by another session) is fine.
fn login(session: &Session, user: UserType, pin: &AuthPin) -> anyhow::Result<()> {
    match session.login(user, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(e).context("C_Login failed"),
    }
}

/// The cluster's user PIN, as the other client commands read it.
fn cluster_user_pin(layout: &ClusterDir) -> anyhow::Result<AuthPin> {
    Ok(AuthPin::from(layout.user_pin()?.as_str().to_string()))
}

/// A random PIN of `digits` decimal digits.
fn random_pin(digits: usize) -> AuthPin {
    let mut pin = Zeroizing::new(String::with_capacity(digits));
    let mut rng = rand::rngs::OsRng;
    while pin.len() < digits {
        let byte = (rng.next_u32() % 10) as u8;
        pin.push(char::from(b'0' + byte));
    }
    AuthPin::from(pin.to_string())
}

/// The raw point inside a `CKA_EC_POINT` (a DER OCTET STRING; tolerates a bare point).
fn point_of(der: &[u8]) -> Vec<u8> {
    match der {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest.to_vec(),
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest.to_vec(),
        _ => der.to_vec(),
    }
}

impl Pkcs11Target {
    /// Our module, configured for the cluster at `layout` (`VHSM_PKCS11_CONFIG` = its client configuration) and
    /// logged in with the cluster's user PIN.
    pub fn open_vhsm(module: &Path, layout: &ClusterDir) -> anyhow::Result<Self> {
        let config = layout.client_config_path();
        if !config.is_file() {
            bail!(
                "no client configuration at {}: is {} a cluster directory?",
                config.display(),
                layout.root().display()
            );
        }
        // Read by the module in C_Initialize: set before it is loaded.
        std::env::set_var("VHSM_PKCS11_CONFIG", &config);
        let (ctx, library) = load(module)?;
        let slot = *ctx
            .get_slots_with_token()
            .context("C_GetSlotList failed")?
            .first()
            .context("the vHSM module shows no token")?;
        let keeper = ctx
            .open_rw_session(slot)
            .context("cannot open a session on the vHSM token")?;
        login(&keeper, UserType::User, &cluster_user_pin(layout)?)
            .context("cannot log in to the vHSM token with the cluster's user PIN")?;
        Ok(Self::new(TokenKind::Vhsm, library, ctx, slot, keeper, None))
    }

    /// SoftHSMv2 with a token of its own in a temporary directory (`SOFTHSM2_CONF` points at a configuration written
    /// there), initialised with random SO and user PINs and logged in.
    pub fn open_softhsm(module: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("vhsm-bench-softhsm-")
            .tempdir()
            .context("cannot make a temporary directory for SoftHSM")?;
        let tokens = dir.path().join("tokens");
        std::fs::create_dir_all(&tokens)
            .with_context(|| format!("cannot create {}", tokens.display()))?;
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "# Written by `vhsm bench` for its own SoftHSM token.\ndirectories.tokendir = {}\n\
                 objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .with_context(|| format!("cannot write {}", conf.display()))?;
        // Read by SoftHSM in C_Initialize: set before it is loaded. (SoftHSM 2's variable is SOFTHSM2_CONF.)
        std::env::set_var("SOFTHSM2_CONF", &conf);
        let (ctx, library) = load(module)?;
        let slot = *ctx
            .get_slots_with_token()
            .context("SoftHSM: C_GetSlotList failed")?
            .first()
            .context("SoftHSM shows no slot")?;
        // A token directory of our own has one empty slot. An initialised token means SoftHSM read another
        // configuration (someone's real tokens): never re-initialise that.
        if ctx
            .get_token_info(slot)
            .context("SoftHSM: C_GetTokenInfo failed")?
            .token_initialized()
        {
            bail!(
                "SoftHSM did not use the configuration written for this benchmark ({}): its first slot holds an \
                 initialised token, which this command will not touch",
                conf.display()
            );
        }
        let so_pin = random_pin(16);
        let user_pin = random_pin(16);
        ctx.init_token(slot, &so_pin, SOFTHSM_TOKEN_LABEL)
            .context("SoftHSM: C_InitToken failed")?;
        // SoftHSM moves an initialised token to a new slot id.
        let slot = ctx
            .get_slots_with_initialized_token()
            .context("SoftHSM: C_GetSlotList failed")?
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|t| t.label().trim() == SOFTHSM_TOKEN_LABEL)
            })
            .context("SoftHSM: the initialised token is not in the slot list")?;
        let keeper = ctx
            .open_rw_session(slot)
            .context("SoftHSM: cannot open a session")?;
        login(&keeper, UserType::So, &so_pin).context("SoftHSM: SO login failed")?;
        keeper
            .init_pin(&user_pin)
            .context("SoftHSM: C_InitPIN failed")?;
        keeper.logout().context("SoftHSM: C_Logout failed")?;
        login(&keeper, UserType::User, &user_pin).context("SoftHSM: user login failed")?;
        Ok(Self::new(
            TokenKind::SoftHsm,
            library,
            ctx,
            slot,
            keeper,
            Some(dir),
        ))
    }

    fn new(
        kind: TokenKind,
        library: String,
        ctx: Pkcs11,
        slot: Slot,
        keeper: Session,
        dir: Option<tempfile::TempDir>,
    ) -> Self {
        let mut iv_prefix = [0u8; 4];
        rand::rngs::OsRng.fill_bytes(&mut iv_prefix);
        Pkcs11Target {
            kind,
            library,
            ctx,
            slot,
            keeper: Mutex::new(Some(keeper)),
            keys: BTreeMap::new(),
            iv_prefix,
            iv_counter: AtomicU64::new(0),
            _softhsm_dir: dir,
        }
    }

    /// A name for reports.
    pub fn name(&self) -> &'static str {
        match self.kind {
            TokenKind::Vhsm => "vHSM PKCS#11",
            TokenKind::SoftHsm => "SoftHSM PKCS#11",
        }
    }

    fn with_keeper<T>(&self, f: impl FnOnce(&Session) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let guard = self
            .keeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = guard.as_ref().context("the token is closed")?;
        f(session)
    }

    /// Generates a key of every kind in `kinds` through PKCS#11, labelled `TAG-KIND`: all at once, each on a thread
    /// and session of its own (the cluster runs the DKGs concurrently).
    pub fn generate_all(&mut self, kinds: &[KeyKind], tag: &str) -> anyhow::Result<()> {
        let this = &*self;
        let made: Vec<anyhow::Result<(KeyKind, TokenKey)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = kinds
                .iter()
                .map(|kind| {
                    let kind = *kind;
                    scope.spawn(move || {
                        this.generate(kind, &format!("{tag}-{}", kind.name()))
                            .map(|key| (kind, key))
                            .with_context(|| {
                                format!("{}: cannot generate the {} key", this.name(), kind.name())
                            })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(anyhow::anyhow!("a key generation thread panicked"))
                    })
                })
                .collect()
        });
        for result in made {
            let (kind, key) = result?;
            self.keys.insert(kind, key);
        }
        Ok(())
    }

    /// Generates a key of `kind` through PKCS#11 in a session of its own, labelled `label`.
    fn generate(&self, kind: KeyKind, label: &str) -> anyhow::Result<TokenKey> {
        let started = Instant::now();
        let session = self
            .ctx
            .open_rw_session(self.slot)
            .context("C_OpenSession failed")?;
        let (handle, public) = match kind {
            KeyKind::Aes => (self.generate_secret(&session, label)?, None),
            _ => {
                let (public, private) = generate_pair(&session, kind, label)?;
                let point = session
                    .get_attributes(public, &[AttributeType::EcPoint])
                    .context("cannot read CKA_EC_POINT")?;
                let Some(Attribute::EcPoint(der)) = point.into_iter().next() else {
                    bail!("the public key has no CKA_EC_POINT");
                };
                (private, Some(point_of(&der)))
            }
        };
        Ok(TokenKey {
            handle,
            public,
            label: label.to_string(),
            keygen_seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn generate_secret(&self, session: &Session, label: &str) -> anyhow::Result<ObjectHandle> {
        let common = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Token(true),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::ValueLen(32.into()),
        ];
        let handle = match self.kind {
            TokenKind::Vhsm => {
                let mechanism = Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
                    MechanismType::new_vendor_defined(CKM_VHSM_SPLIT_AES_KEY_GEN)?,
                    None,
                ));
                let mut template = common.to_vec();
                template.push(Attribute::KeyType(KeyType::new_vendor_defined(
                    CKK_VHSM_SPLIT_AES,
                )?));
                session.generate_key(&mechanism, &template)
            }
            TokenKind::SoftHsm => {
                let mut template = common.to_vec();
                template.push(Attribute::KeyType(KeyType::AES));
                session.generate_key(&Mechanism::AesKeyGen, &template)
            }
        };
        handle.with_context(|| format!("{}: C_GenerateKey failed", self.name()))
    }

    /// The labels of the keys made on this token.
    pub fn labels(&self) -> BTreeMap<KeyKind, String> {
        self.keys
            .iter()
            .map(|(k, key)| (*k, key.label.clone()))
            .collect()
    }

    /// One operation of `op` in `session` with `key`. `iv` makes a fresh AES-GCM IV.
    fn operate(
        &self,
        session: &Session,
        op: Operation,
        key: ObjectHandle,
        input: &[u8],
    ) -> Result<Output, String> {
        let result = match (op.is_encryption(), self.kind) {
            (false, _) => {
                let mechanism = if op == Operation::Ed25519 {
                    Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure))
                } else {
                    Mechanism::Ecdsa
                };
                session.sign(&mechanism, key, input).map(Output::Signature)
            }
            (true, TokenKind::Vhsm) => split_aes_mechanism()
                .and_then(|m| session.encrypt(&m, key, input))
                .map(Output::Blob),
            (true, TokenKind::SoftHsm) => {
                let mut iv = [0u8; 12];
                let (prefix, counter) = iv.split_at_mut(4);
                prefix.copy_from_slice(&self.iv_prefix);
                counter.copy_from_slice(
                    &self
                        .iv_counter
                        .fetch_add(1, Ordering::Relaxed)
                        .to_be_bytes(),
                );
                let mut iv_param = iv;
                GcmParams::new(&mut iv_param, &[], 128.into())
                    .and_then(|params| session.encrypt(&Mechanism::AesGcm(params), key, input))
                    .map(|ciphertext| Output::Gcm(iv, ciphertext))
            }
        };
        result.map_err(|e| e.to_string())
    }

    /// Checks an output: a signature against the key's public key (curve crates), a ciphertext by decrypting it
    /// on the token.
    fn check(
        &self,
        session: &Session,
        op: Operation,
        key: &TokenKey,
        output: &Output,
    ) -> anyhow::Result<()> {
        let plaintext = match output {
            Output::Signature(signature) => {
                let public = key.public.as_deref().context("no public key")?;
                return verify_signature(op, public, signature);
            }
            Output::Blob(blob) => session.decrypt(&split_aes_mechanism()?, key.handle, blob)?,
            Output::Gcm(iv, ciphertext) => {
                let mut iv = *iv;
                let params = GcmParams::new(&mut iv, &[], 128.into())?;
                session.decrypt(&Mechanism::AesGcm(params), key.handle, ciphertext)?
            }
        };
        if plaintext != op.input() {
            bail!("the ciphertext decrypts to something else");
        }
        Ok(())
    }

    /// Runs one cell of `op`: `plan.workers` threads, each with its own session. Blocks.
    pub fn run_cell(&self, op: Operation, plan: &CellPlan, cpu: &CpuProbe) -> Measurement {
        let Some(key) = self.keys.get(&op.key_kind()) else {
            return Measurement::failed(format!(
                "no {} key on {}",
                op.key_kind().name(),
                self.name()
            ));
        };
        let input = op.input();
        let (mut m, samples) = run_threads(plan, cpu, |_| {
            let session = self
                .ctx
                .open_ro_session(self.slot)
                .with_context(|| format!("{}: C_OpenSession failed", self.name()))?;
            let input = &input;
            anyhow::Ok(move || self.operate(&session, op, key.handle, input))
        });
        match self.ctx.open_ro_session(self.slot) {
            Ok(session) => m.check_samples(&samples, |s| self.check(&session, op, key, s)),
            Err(e) => m.check_samples(&samples, |_| {
                Err(anyhow::anyhow!(
                    "cannot open a session to check the outputs: {e}"
                ))
            }),
        }
        m
    }

    /// Destroys the keys made on this token (for a cluster that outlives the benchmark).
    pub fn destroy_keys(&mut self) -> Vec<String> {
        let keys: Vec<TokenKey> = std::mem::take(&mut self.keys).into_values().collect();
        let mut failures = Vec::new();
        for key in keys {
            if let Err(e) = self.with_keeper(|s| Ok(s.destroy_object(key.handle)?)) {
                failures.push(format!("{}: {e:#}", key.label));
            }
        }
        failures
    }

    /// Logs out, closes the sessions and finalizes the library. The library stays loaded until the process exits:
    /// a module's threads may still be winding down after C_Finalize returns.
    pub fn close(self) {
        let keeper = self
            .keeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(session) = keeper {
            let _ = session.logout();
            drop(session);
        }
        let keep_loaded = self.ctx.clone();
        let _ = self.ctx.finalize();
        std::mem::forget(keep_loaded);
    }
}

fn split_aes_mechanism() -> Result<Mechanism<'static>, CkError> {
    Ok(Mechanism::VendorDefined(VendorDefinedMechanism::new::<()>(
        MechanismType::new_vendor_defined(CKM_VHSM_SPLIT_AES)?,
        None,
    )))
}

/// `C_GenerateKeyPair` of an EC (`CKM_EC_KEY_PAIR_GEN`) or Edwards (`CKM_EC_EDWARDS_KEY_PAIR_GEN`) key pair:
/// (public, private).
fn generate_pair(
    session: &Session,
    kind: KeyKind,
    label: &str,
) -> anyhow::Result<(ObjectHandle, ObjectHandle)> {
    let (mechanism, params) = match kind {
        KeyKind::Ed25519 => (Mechanism::EccEdwardsKeyPairGen, OID_ED25519),
        KeyKind::P256 => (Mechanism::EccKeyPairGen, OID_P256),
        KeyKind::Secp256k1 => (Mechanism::EccKeyPairGen, OID_SECP256K1),
        KeyKind::Aes => bail!("an AES key is not a key pair"),
    };
    let label = label.as_bytes().to_vec();
    let public = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::EcParams(params.to_vec()),
        Attribute::Verify(true),
        Attribute::Label(label.clone()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label),
    ];
    session
        .generate_key_pair(&mechanism, &public, &private)
        .with_context(|| format!("C_GenerateKeyPair ({}) failed", kind.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_point_encodings() {
        let mut der = vec![0x04, 65];
        der.extend([0x04; 65]);
        assert_eq!(point_of(&der), vec![0x04; 65]);
        let mut ed = vec![0x04, 32];
        ed.extend([7; 32]);
        assert_eq!(point_of(&ed), vec![7; 32]);
        assert_eq!(point_of(&[1, 2, 3]), vec![1, 2, 3]);
    }

    #[test]
    fn module_not_found_says_what_to_do() {
        let e = find_module(Some(Path::new("/nonexistent/libvhsm_pkcs11.so")));
        assert!(e.is_err());
        let s = find_softhsm(Some(Path::new("/nonexistent/libsofthsm2.so")), false);
        assert!(s.is_err());
        assert!(matches!(find_softhsm(None, true), Ok(SoftHsm::Skipped(_))));
    }
}
