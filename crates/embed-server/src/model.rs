//! The sentence model: all-MiniLM-L6-v2 on candle, with sentence-transformers semantics.
//!
//! sentence-transformers runs `Transformer -> mean pooling over the attention mask ->
//! Normalize`, with the tokenizer truncating at 256 tokens ([CLS] + 254 word pieces + [SEP]).
//! The `tokenizer.json` shipped with the model carries its own truncation (128) and fixed
//! padding (128) settings, so both are overridden here explicitly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::encoder::{Bert, BertConfig, ENCODER_REVISION};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2, special tokens included.
pub const MAX_SEQ_LEN: usize = 256;

/// The hub id of the default model, reported by `Info`.
pub const DEFAULT_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// The command that provisions the default model directory.
pub const SETUP_HINT: &str = "run scripts/fetch-model.sh (or pass --model-dir DIR / set WILDCARDS_MODEL_DIR to a folder holding config.json, tokenizer.json and model.safetensors)";

/// The per-user default model folder: `~/.cache/wildcards-gen/models/all-MiniLM-L6-v2`.
pub fn default_model_dir() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("wildcards-gen/models/all-MiniLM-L6-v2"))
}

/// Paths of the three model files, checked to exist.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
}

impl ModelFiles {
    /// The files of a model folder; a missing one is an error naming it and the set-up command.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        for name in MODEL_FILES {
            let path = dir.join(name);
            if !path.is_file() {
                bail!("model file {} is missing; {SETUP_HINT}", path.display());
            }
        }
        Ok(Self {
            config: dir.join("config.json"),
            tokenizer: dir.join("tokenizer.json"),
            weights: dir.join("model.safetensors"),
        })
    }

    /// Downloads (or finds in the hf-hub cache) the files of a hub model such as
    /// `sentence-transformers/all-MiniLM-L6-v2`. Needs network access to the hub.
    pub fn from_hub(model_id: &str) -> Result<Self> {
        let api = hf_hub::api::sync::Api::new()
            .with_context(|| format!("cannot start the hub client for --model {model_id}"))?;
        let repo = api.model(model_id.to_string());
        let get = |name: &str| {
            repo.get(name).with_context(|| {
                format!(
                    "cannot fetch {name} of --model {model_id} from the hub (no network?); \
                     use --model-dir with local files instead: {SETUP_HINT}"
                )
            })
        };
        Ok(Self {
            config: get("config.json")?,
            tokenizer: get("tokenizer.json")?,
            weights: get("model.safetensors")?,
        })
    }

    /// A hex fingerprint of config, tokenizer and weights: cache keys include it, so a different
    /// model (or tokenizer) never gets another model's vectors.
    pub fn fingerprint(&self) -> Result<String> {
        let mut hasher = Sha256::new();
        // Pooling, normalisation, truncation and the encoder's arithmetic are part of what a
        // vector means, bit for bit.
        hasher.update(
            format!("mean-pool;l2;max_seq_len={MAX_SEQ_LEN};encoder={ENCODER_REVISION};")
                .as_bytes(),
        );
        for path in [&self.config, &self.tokenizer, &self.weights] {
            let mut file = std::fs::File::open(path)
                .with_context(|| format!("cannot read model file {}", path.display()))?;
            std::io::copy(&mut file, &mut hasher)
                .with_context(|| format!("cannot read model file {}", path.display()))?;
        }
        let digest = hasher.finalize();
        Ok(digest.iter().take(16).map(|b| format!("{b:02x}")).collect())
    }
}

/// The loaded sentence model: a tokenizer (cheap to clone, used by request handlers) and the
/// encoder (owned by the one inference thread, see `batcher`; candle already spreads each
/// forward pass over every core).
pub struct MiniLm {
    pub tokenizer: SentenceTokenizer,
    pub encoder: Encoder,
}

/// The BERT tokenizer with sentence-transformers' truncation; shareable across threads.
#[derive(Clone)]
pub struct SentenceTokenizer(Arc<Tokenizer>);

/// The BERT encoder plus pooling and normalisation.
pub struct Encoder {
    model: Bert,
    dim: usize,
}

impl MiniLm {
    /// Loads config, tokenizer and weights.
    pub fn load(files: &ModelFiles) -> Result<Self> {
        let config_text = std::fs::read_to_string(&files.config)
            .with_context(|| format!("cannot read {}", files.config.display()))?;
        let config: BertConfig = serde_json::from_str(&config_text).with_context(|| {
            format!("{} is not a BERT config.json: {SETUP_HINT}", files.config.display())
        })?;
        let tokenizer = load_tokenizer(&files.tokenizer)?;
        // SAFETY: the weights file is memory-mapped read-only; the model folder is not expected
        // to change under a running server (the fingerprint was taken from the same file).
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(&[&files.weights], DType::F32, &Device::Cpu)
        }
        .with_context(|| format!("cannot load weights {}", files.weights.display()))?;
        let model = Bert::load(vb, &config).with_context(|| {
            format!(
                "{} does not hold BERT weights matching {}",
                files.weights.display(),
                files.config.display()
            )
        })?;
        Ok(Self {
            tokenizer: SentenceTokenizer(Arc::new(tokenizer)),
            encoder: Encoder { model, dim: config.hidden_size },
        })
    }

    /// Embedding width (384 for MiniLM-L6).
    pub fn dim(&self) -> usize {
        self.encoder.dim
    }

    /// Convenience for tests and tools: embeds any texts (grouped by length internally).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = self.tokenizer.tokenize(texts)?;
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i].len());
        let mut out = vec![Vec::new(); ids.len()];
        for group in order.chunk_by(|&a, &b| ids[a].len() == ids[b].len()) {
            let seqs: Vec<&[u32]> = group.iter().map(|&i| ids[i].as_slice()).collect();
            for (&i, v) in group.iter().zip(self.encoder.embed_same_length(&seqs)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

impl SentenceTokenizer {
    /// Loads `tokenizer.json` with sentence-transformers' truncation and no padding.
    pub fn from_file(path: &Path) -> Result<Self> {
        Ok(Self(Arc::new(load_tokenizer(path)?)))
    }

    /// Token ids of each text, `[CLS] ... [SEP]`, truncated to [`MAX_SEQ_LEN`].
    pub fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .0
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow::anyhow!("tokenizer failed: {e}"))?;
        Ok(encodings.into_iter().map(|e| e.get_ids().to_vec()).collect())
    }
}

impl Encoder {
    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Embeds sequences that all have the same length (no padding, so every text's vector is
    /// independent of which other texts share its batch). Returns unit vectors in input order.
    pub fn embed_same_length(&self, seqs: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let Some(first) = seqs.first() else {
            return Ok(Vec::new());
        };
        let len = first.len();
        if seqs.iter().any(|s| s.len() != len) || len == 0 {
            bail!("internal: a batch must hold non-empty sequences of one length");
        }
        let flat: Vec<u32> = seqs.iter().flat_map(|s| s.iter().copied()).collect();
        let input_ids = Tensor::from_vec(flat, (seqs.len(), len), &Device::Cpu)?;
        // All positions are real tokens (no padding): nothing to mask, as in
        // sentence-transformers, where padding never gets attention either.
        let hidden = self.model.forward(&input_ids)?;
        // Mean pooling over the (all-ones) mask = mean over the sequence axis.
        let pooled = (hidden.sum(1)? / len as f64)?;
        let rows: Vec<Vec<f32>> = pooled.to_vec2()?;
        Ok(rows.into_iter().map(l2_normalize).collect())
    }
}

/// Loads `tokenizer.json` and sets truncation to 256 tokens and no padding, whatever the file
/// says (the all-MiniLM-L6-v2 file says 128 and fixed padding, which sentence-transformers
/// overrides the same way).
fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| {
        anyhow::anyhow!("cannot load tokenizer {}: {e}; {SETUP_HINT}", path.display())
    })?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length: MAX_SEQ_LEN,
            strategy: TruncationStrategy::LongestFirst,
            stride: 0,
        }))
        .map_err(|e| anyhow::anyhow!("cannot set truncation on {}: {e}", path.display()))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// Scales a vector to unit length, as `torch.nn.functional.normalize` (eps 1e-12) does.
fn l2_normalize(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn model_dir() -> PathBuf {
        std::env::var_os("WILDCARDS_MODEL_DIR")
            .map(PathBuf::from)
            .or_else(default_model_dir)
            .expect("a model folder")
    }

    fn reference() -> serde_json::Value {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/reference/minilm_reference.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn token_ids_match_sentence_transformers() {
        let files = ModelFiles::in_dir(&model_dir()).unwrap();
        let tokenizer = SentenceTokenizer::from_file(&files.tokenizer).unwrap();
        let reference = reference();
        let texts: Vec<&str> =
            reference["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let ids = tokenizer.tokenize(&texts).unwrap();
        for (i, expected) in reference["input_ids"].as_array().unwrap().iter().enumerate() {
            let expected: Vec<u32> =
                expected.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            assert_eq!(ids[i], expected, "token ids of {:?}", texts[i]);
        }
        assert_eq!(tokenizer.tokenize(&[""]).unwrap()[0], vec![101, 102]);
        assert!(ids.iter().all(|s| s.len() <= MAX_SEQ_LEN));
    }

    #[test]
    fn a_vector_does_not_depend_on_its_batch() {
        let model = MiniLm::load(&ModelFiles::in_dir(&model_dir()).unwrap()).unwrap();
        let words =
            ["dog", "cat", "car", "tree", "house", "river", "apple", "chair", "bird", "stone"];
        let texts: Vec<String> =
            (0..64).map(|i| format!("{} {}", words[i % 10], words[(i / 10) % 10])).collect();
        let ids = model
            .tokenizer
            .tokenize(&texts.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap();
        let len = ids[0].len();
        let same: Vec<&[u32]> = ids.iter().filter(|s| s.len() == len).map(Vec::as_slice).collect();
        assert!(same.len() > 20);
        let alone = model.encoder.embed_same_length(&same[..1]).unwrap();
        for n in [2, 7, same.len()] {
            let batch = model.encoder.embed_same_length(&same[..n]).unwrap();
            assert_eq!(batch[0], alone[0], "batch of {n}");
        }
        // And the vectors are those of sentence-transformers.
        let reference = reference();
        let b64 = reference["empty_string"]["embedding_f32_b64"].as_str().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        let expected: Vec<f32> =
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let ours = &model.embed(&[""]).unwrap()[0];
        let dot: f32 = ours.iter().zip(&expected).map(|(a, b)| a * b).sum();
        assert!(dot > 0.9999, "cosine {dot}");
    }

    #[test]
    fn a_missing_file_names_it_and_the_setup_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        let err = ModelFiles::in_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tokenizer.json"), "{err}");
        assert!(err.contains("scripts/fetch-model.sh"), "{err}");
    }
}
