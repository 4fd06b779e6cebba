//! `vhsm encrypt` and `vhsm decrypt`: files of any size with a split-AES key.
//!
//! A file is cut into chunks of at most 1 MiB; each chunk is one ciphertext blob (its own message key, derived by
//! the cluster). The output is a framed stream: `"VHSMENC1" ‖ (u32 length ‖ blob)*`. Each chunk's associated data
//! binds the caller's aad, the chunk's index and whether it is the last one, so chunks cannot be reordered,
//! dropped or the stream cut short without decryption failing. Output goes to a temporary file beside the target,
//! renamed into place only when everything succeeded: a failure leaves no partial plaintext or ciphertext behind.

use std::{
    io::{BufReader, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use vhsm_core::{limits::MAX_CIPHER_INPUT, KeyId};

use super::{keys::connect_user, layout::Layout, progress};

const MAGIC: &[u8; 8] = b"VHSMENC1";
/// Plaintext bytes per blob.
pub const CHUNK: usize = MAX_CIPHER_INPUT;
/// The largest blob accepted when reading (a chunk plus the blob's overhead, generously).
const MAX_BLOB: usize =
    CHUNK + vhsm_core::ciphertext::MIN_BLOB_LEN + 2 + vhsm_core::ciphertext::MAX_RECEIPT_LEN;

/// The associated data of chunk `index`: the caller's aad, the index, and whether it is the last chunk.
fn chunk_aad(aad: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(aad.len() + 8 + 8 + 1);
    out.extend_from_slice(&(aad.len() as u64).to_be_bytes());
    out.extend_from_slice(aad);
    out.extend_from_slice(&index.to_be_bytes());
    out.push(u8::from(last));
    out
}

/// A file written under a temporary name and renamed into place by `commit`; removed if dropped before.
struct PendingFile {
    temp: PathBuf,
    target: PathBuf,
    writer: Option<BufWriter<std::fs::File>>,
}

impl PendingFile {
    fn create(target: &Path) -> anyhow::Result<Self> {
        let name = target.file_name().context("--out names no file")?;
        let temp = target.with_file_name(format!(".{}.vhsm-partial", name.to_string_lossy()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        Ok(PendingFile {
            temp,
            target: target.to_path_buf(),
            writer: Some(BufWriter::new(file)),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let writer = self.writer.as_mut().context("file already closed")?;
        writer
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.temp.display()))
    }

    fn commit(mut self) -> anyhow::Result<()> {
        let writer = self.writer.take().context("file already closed")?;
        let file = writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", self.temp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot write {}", self.temp.display()))?;
        std::fs::rename(&self.temp, &self.target).with_context(|| {
            format!(
                "cannot move {} to {}",
                self.temp.display(),
                self.target.display()
            )
        })
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Reads up to `buf.len()` bytes, stopping early only at the end of the input.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> anyhow::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = reader.read(buf.get_mut(filled..).unwrap_or_default())?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

pub async fn encrypt(
    layout: &Layout,
    key: KeyId,
    input: &Path,
    output: &Path,
    aad: &[u8],
    json: bool,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?;
    let total = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let client = connect_user(layout).await?;
    let mut out = PendingFile::create(output)?;
    out.write(MAGIC)?;
    let bar = (!json).then(|| progress::bar(total, "encrypting (bytes)"));
    let mut chunk = vec![0u8; CHUNK];
    let mut next = vec![0u8; CHUNK];
    let mut len = read_full(&mut reader, &mut chunk)?;
    let mut index = 0u64;
    let mut done = 0u64;
    loop {
        // Read ahead one chunk to know whether this one is the last.
        let next_len = if len == CHUNK {
            read_full(&mut reader, &mut next)?
        } else {
            0
        };
        let last = next_len == 0;
        let plaintext = chunk.get(..len).unwrap_or_default();
        let blob = client
            .encrypt(key, plaintext, &chunk_aad(aad, index, last))
            .await?;
        out.write(&u32::try_from(blob.len())?.to_be_bytes())?;
        out.write(&blob)?;
        done += len as u64;
        if let Some(b) = &bar {
            b.set_position(done);
        }
        if last {
            break;
        }
        std::mem::swap(&mut chunk, &mut next);
        len = next_len;
        index += 1;
    }
    zeroize::Zeroize::zeroize(&mut chunk);
    zeroize::Zeroize::zeroize(&mut next);
    out.commit()?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "key": key.to_string(), "chunks": index + 1, "bytes": done, "out": output.display().to_string() })
        );
    } else {
        println!(
            "{done} bytes encrypted in {} chunk(s) to {}",
            index + 1,
            output.display()
        );
    }
    Ok(())
}

pub async fn decrypt(
    layout: &Layout,
    input: &Path,
    output: &Path,
    aad: &[u8],
    json: bool,
) -> anyhow::Result<()> {
    let file =
        std::fs::File::open(input).with_context(|| format!("cannot read {}", input.display()))?;
    let total = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 8];
    if read_full(&mut reader, &mut magic)? != 8 || &magic != MAGIC {
        bail!("{} is not a file made by vhsm encrypt", input.display());
    }
    let client = connect_user(layout).await?;
    let mut out = PendingFile::create(output)?;
    let bar = (!json).then(|| progress::bar(total, "decrypting (bytes)"));
    let mut index = 0u64;
    let mut read = 8u64;
    let mut written = 0u64;
    let mut header = [0u8; 4];
    let mut got = read_full(&mut reader, &mut header)?;
    if got == 0 {
        bail!("{} holds no chunk: it was cut short", input.display());
    }
    loop {
        if got != 4 {
            bail!(
                "{} is cut short (in the header of chunk {index})",
                input.display()
            );
        }
        let len = u32::from_be_bytes(header) as usize;
        if len > MAX_BLOB {
            bail!(
                "{}: chunk {index} claims {len} bytes: not a file made by vhsm encrypt",
                input.display()
            );
        }
        let mut blob = vec![0u8; len];
        if read_full(&mut reader, &mut blob)? != len {
            bail!("{} is cut short (in chunk {index})", input.display());
        }
        read += 4 + len as u64;
        got = read_full(&mut reader, &mut header)?;
        let last = got == 0;
        let plaintext = client.decrypt(&blob, &chunk_aad(aad, index, last)).await.with_context(|| {
            format!("chunk {index} does not decrypt (altered, reordered, cut short, or another --aad)")
        })?;
        out.write(plaintext.expose())?;
        written += plaintext.len() as u64;
        if let Some(b) = &bar {
            b.set_position(read);
        }
        if last {
            break;
        }
        index += 1;
    }
    out.commit()?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if json {
        println!(
            "{}",
            serde_json::json!({ "chunks": index + 1, "bytes": written, "out": output.display().to_string() })
        );
    } else {
        println!(
            "{written} bytes decrypted from {} chunk(s) to {}",
            index + 1,
            output.display()
        );
    }
    Ok(())
}
