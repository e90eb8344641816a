//! A sentence model (all-MiniLM-L6-v2 by default, any BERT-family sentence-transformers
//! folder) on candle, with sentence-transformers semantics.
//!
//! sentence-transformers runs `Transformer -> pooling over the attention mask -> Normalize`,
//! with the tokenizer truncating at `max_seq_length` tokens (256 for all-MiniLM-L6-v2:
//! [CLS] + 254 word pieces + [SEP]). The `tokenizer.json` shipped with the model carries its
//! own truncation (128) and fixed padding (128) settings, so both are overridden here
//! explicitly. Pooling comes from `1_Pooling/config.json` (mean or CLS; mean when the file is
//! absent) and the length from `sentence_bert_config.json` (256, capped by the position
//! table, when absent).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::encoder::{Bert, BertConfig, ENCODER_REVISION};
use sha2::{Digest, Sha256};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2, special tokens included;
/// also the length of a folder without `sentence_bert_config.json`.
pub const MAX_SEQ_LEN: usize = 256;

/// The hub id of the default model, reported by `Info`.
pub const DEFAULT_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The files a model directory must hold.
pub const MODEL_FILES: [&str; 3] = ["config.json", "tokenizer.json", "model.safetensors"];

/// The command that provisions the default model directory.
pub const SETUP_HINT: &str = "run scripts/fetch-model.sh (or pass --model-dir DIR / set WILDCARDS_MODEL_DIR to a folder holding config.json, tokenizer.json and model.safetensors)";

/// The optional pooling description of a sentence-transformers folder.
pub const POOLING_CONFIG: &str = "1_Pooling/config.json";

/// The optional sentence-transformers settings file (its `max_seq_length` is used).
pub const SENTENCE_CONFIG: &str = "sentence_bert_config.json";

/// What loads: named in the error for anything else.
const SUPPORTED: &str = "embed-server loads BERT-family sentence-transformers models \
(config.json model_type \"bert\": all-MiniLM-L6-v2, all-MiniLM-L12-v2, bge-small, e5-small ...)";

/// How token states become one sentence vector (sentence-transformers' pooling modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the tokens (all-MiniLM-L6-v2, e5).
    Mean,
    /// The [CLS] token's state (bge).
    Cls,
}

impl Pooling {
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
        }
    }
}

/// The sentence-transformers settings of a model beyond its weights: pooling and the token
/// length texts are truncated to (special tokens included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub pooling: Pooling,
    pub max_seq_len: usize,
}

impl Settings {
    /// Reads the optional pooling and sentence-transformers files; absent files mean mean
    /// pooling and [`MAX_SEQ_LEN`]; the length never exceeds the position table.
    pub fn read(files: &ModelFiles, config: &BertConfig) -> Result<Self> {
        let pooling = match &files.pooling {
            Some(path) => read_pooling(path)?,
            None => Pooling::Mean,
        };
        let max_seq_len = match &files.sentence_config {
            Some(path) => {
                let value = read_json(path)?;
                match value.get("max_seq_length") {
                    None | Some(serde_json::Value::Null) => MAX_SEQ_LEN,
                    Some(n) => n.as_u64().filter(|&n| n >= 2).with_context(|| {
                        format!("{}: max_seq_length {n} is not a length", path.display())
                    })? as usize,
                }
            }
            None => MAX_SEQ_LEN,
        };
        Ok(Self { pooling, max_seq_len: max_seq_len.min(config.max_position_embeddings) })
    }
}

/// The pooling mode of `1_Pooling/config.json`: exactly one of mean and CLS must be on.
fn read_pooling(path: &Path) -> Result<Pooling> {
    let value = read_json(path)?;
    let on: Vec<&str> = value
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| k.starts_with("pooling_mode_") && v.as_bool() == Some(true))
                .map(|(k, _)| k.as_str())
                .collect()
        })
        .unwrap_or_default();
    match on.as_slice() {
        ["pooling_mode_mean_tokens"] => Ok(Pooling::Mean),
        ["pooling_mode_cls_token"] => Ok(Pooling::Cls),
        _ => bail!(
            "{}: pooling {on:?} is not supported; set exactly one of pooling_mode_mean_tokens \
             or pooling_mode_cls_token to true",
            path.display()
        ),
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// `config.json`, checked to describe a BERT encoder with every field the encoder needs.
pub fn read_bert_config(path: &Path) -> Result<BertConfig> {
    let value = read_json(path)?;
    match value.get("model_type").and_then(|v| v.as_str()) {
        Some("bert") => {}
        Some(other) => {
            bail!("{}: model_type {other:?} is not supported; {SUPPORTED}", path.display())
        }
        None => bail!("{}: the field model_type is missing; {SUPPORTED}", path.display()),
    }
    serde_json::from_value(value).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}; a BERT config.json needs vocab_size, hidden_size, num_hidden_layers, \
             num_attention_heads, intermediate_size, max_position_embeddings, type_vocab_size, \
             layer_norm_eps and hidden_act",
            path.display()
        )
    })
}

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
    /// `1_Pooling/config.json`, when the folder has one.
    pub pooling: Option<PathBuf>,
    /// `sentence_bert_config.json` (holds `max_seq_length`), when the folder has one.
    pub sentence_config: Option<PathBuf>,
    /// The folder or hub id, for messages.
    pub origin: String,
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
        let optional = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        Ok(Self {
            config: dir.join("config.json"),
            tokenizer: dir.join("tokenizer.json"),
            weights: dir.join("model.safetensors"),
            pooling: optional(POOLING_CONFIG),
            sentence_config: optional(SENTENCE_CONFIG),
            origin: dir.display().to_string(),
        })
    }

    /// Downloads (or finds in the hf-hub cache) the files of a hub model such as
    /// `sentence-transformers/all-MiniLM-L6-v2`. Needs network access to the hub.
    pub fn from_hub(model_id: &str) -> Result<Self> {
        let api = hf_hub::api::sync::Api::new()
            .with_context(|| format!("cannot start the hub client for hf:{model_id}"))?;
        let repo = api.model(model_id.to_string());
        let get = |name: &str| {
            repo.get(name).with_context(|| {
                format!(
                    "cannot fetch {name} of hf:{model_id} from the hub (no network, or no such \
                     model?); give a local folder instead: --model NAME=FOLDER with \
                     config.json, tokenizer.json and model.safetensors"
                )
            })
        };
        Ok(Self {
            config: get("config.json")?,
            tokenizer: get("tokenizer.json")?,
            weights: get("model.safetensors")?,
            // Optional files: a repository without them has the defaults.
            pooling: repo.get(POOLING_CONFIG).ok(),
            sentence_config: repo.get(SENTENCE_CONFIG).ok(),
            origin: format!("hf:{model_id}"),
        })
    }

    /// A hex fingerprint of config, tokenizer and weights: cache keys include it, so a different
    /// model (or tokenizer) never gets another model's vectors.
    pub fn fingerprint(&self, settings: &Settings) -> Result<String> {
        let mut hasher = Sha256::new();
        // Pooling, normalisation, truncation and the encoder's arithmetic are part of what a
        // vector means, bit for bit. (For all-MiniLM-L6-v2 this text is what it was when the
        // server had one model, so existing caches stay valid.)
        hasher.update(
            format!(
                "{}-pool;l2;max_seq_len={};encoder={ENCODER_REVISION};",
                settings.pooling.name(),
                settings.max_seq_len
            )
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
/// encoder (owned by the model's inference thread, see `batcher`; candle already spreads each
/// forward pass over every core).
pub struct SentenceModel {
    pub tokenizer: SentenceTokenizer,
    pub encoder: Encoder,
    pub settings: Settings,
}

/// The BERT tokenizer with sentence-transformers' truncation; shareable across threads.
#[derive(Clone)]
pub struct SentenceTokenizer(Arc<Tokenizer>);

/// The BERT encoder plus pooling and normalisation.
pub struct Encoder {
    model: Bert,
    dim: usize,
    pooling: Pooling,
}

impl SentenceModel {
    /// Loads config, settings, tokenizer and weights; a model that is not BERT is an error
    /// naming the file and field.
    pub fn load(files: &ModelFiles) -> Result<Self> {
        let config = read_bert_config(&files.config)?;
        let settings = Settings::read(files, &config)?;
        let tokenizer = load_tokenizer(&files.tokenizer, settings.max_seq_len)?;
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
            encoder: Encoder { model, dim: config.hidden_size, pooling: settings.pooling },
            settings,
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
        Ok(Self(Arc::new(load_tokenizer(path, MAX_SEQ_LEN)?)))
    }

    /// Token ids of each text, `[CLS] ... [SEP]`, truncated to the model's length.
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
        let pooled = match self.pooling {
            // Mean pooling over the (all-ones) mask = mean over the sequence axis.
            Pooling::Mean => (hidden.sum(1)? / len as f64)?,
            Pooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
        };
        let rows: Vec<Vec<f32>> = pooled.to_vec2()?;
        Ok(rows.into_iter().map(l2_normalize).collect())
    }
}

/// Loads `tokenizer.json` and sets truncation to `max_length` tokens and no padding, whatever
/// the file says (the all-MiniLM-L6-v2 file says 128 and fixed padding, which
/// sentence-transformers overrides the same way).
fn load_tokenizer(path: &Path, max_length: usize) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_file(path).map_err(|e| {
        anyhow::anyhow!("cannot load tokenizer {}: {e}; {SETUP_HINT}", path.display())
    })?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            direction: TruncationDirection::Right,
            max_length,
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
        let model = SentenceModel::load(&ModelFiles::in_dir(&model_dir()).unwrap()).unwrap();
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
