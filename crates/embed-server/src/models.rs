//! The models one server serves (`--model NAME=SOURCE`, repeatable; the first is the
//! default): parsing the flag, finding the files, loading each model with its own cache
//! layer and inference thread (see [`crate::batcher`]), and the names requests may use.
//!
//! Without `--model` the server serves one model from `--model-dir` (or
//! `WILDCARDS_MODEL_DIR`, or the per-user default folder), named after its folder. A model
//! answers to its name, and to the aliases [`aliases`] lists; `minilm` (the Python original's
//! name, `semantic_model`'s default) means all-MiniLM-L6-v2.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use embed_api::proto::ModelInfo;

use crate::batcher::Batcher;
use crate::cache::EmbeddingCache;
use crate::metrics::Metrics;
use crate::model::{
    default_model_dir, ModelFiles, SentenceModel, SentenceTokenizer, DEFAULT_MODEL_ID, SETUP_HINT,
};

/// Where a model's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local sentence-transformers folder.
    Dir(PathBuf),
    /// A Hugging Face hub id (`hf:ORG/ID`), downloaded or found in the hf-hub cache.
    Hub(String),
}

/// One `--model NAME=SOURCE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    pub name: String,
    pub source: Source,
    /// Serves as all-MiniLM-L6-v2 whatever its folder is called: the one model of
    /// `--model-dir` (that flag has always meant "the all-MiniLM-L6-v2 folder").
    pub implicit: bool,
}

/// Parses `NAME=FOLDER`, `NAME=hf:ORG/ID`, or a bare `ORG/ID` / `hf:ORG/ID` (the old
/// `--model HUB_ID`: a hub model named after the id's last part).
pub fn parse_spec(s: &str) -> std::result::Result<ModelSpec, String> {
    let s = s.trim();
    let (name, source) = match s.split_once('=') {
        Some((name, source)) => (name.trim().to_string(), source.trim()),
        None => {
            let id = s.strip_prefix("hf:").unwrap_or(s);
            (id.rsplit('/').next().unwrap_or(id).to_string(), s)
        }
    };
    let name_ok = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        return Err(format!(
            "`{s}`: the model name {name:?} must be letters, digits, `.`, `_` or `-`; \
             use NAME=FOLDER or NAME=hf:ORG/ID, e.g. minilm=hf:sentence-transformers/all-MiniLM-L6-v2"
        ));
    }
    let source = match source.strip_prefix("hf:") {
        Some(id) if id.trim().is_empty() => return Err(format!("`{s}`: no hub id after hf:")),
        Some(id) => Source::Hub(id.trim().to_string()),
        None if !s.contains('=') => Source::Hub(source.to_string()),
        None if source.is_empty() => return Err(format!("`{s}`: no folder after `=`")),
        None => Source::Dir(PathBuf::from(source)),
    };
    Ok(ModelSpec { name, source, implicit: false })
}

/// The models to serve: the `--model` list (names must differ), else the one model of
/// `model_dir` (else the per-user default folder).
pub fn specs(models: &[ModelSpec], model_dir: Option<&Path>) -> Result<Vec<ModelSpec>> {
    if !models.is_empty() {
        for (i, m) in models.iter().enumerate() {
            if models[..i].iter().any(|o| o.name.eq_ignore_ascii_case(&m.name)) {
                bail!("--model {}: the name is given twice; give each model its own name", m.name);
            }
        }
        return Ok(models.to_vec());
    }
    let dir = match model_dir {
        Some(dir) => dir.to_path_buf(),
        None => default_model_dir().with_context(|| {
            format!("no per-user cache folder on this system; pass --model-dir DIR ({SETUP_HINT})")
        })?,
    };
    let name = folder_name(&dir);
    Ok(vec![ModelSpec { name, source: Source::Dir(dir), implicit: true }])
}

fn folder_name(dir: &Path) -> String {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.is_empty() {
        "default".to_string()
    } else {
        name
    }
}

/// A loaded model with everything a request needs.
pub struct ServedModel {
    pub info: ModelInfo,
    pub tokenizer: SentenceTokenizer,
    pub batcher: Arc<Batcher>,
    pub cache: Option<Arc<EmbeddingCache>>,
}

/// Loads one model, opens its cache layer (`open_cache(fingerprint, dim)`) and starts its
/// inference thread.
pub fn load(
    spec: &ModelSpec,
    open_cache: &dyn Fn(&str, usize) -> Option<Arc<EmbeddingCache>>,
    max_batch_tokens: usize,
    metrics: &Arc<Metrics>,
) -> Result<ServedModel> {
    let started = Instant::now();
    let flag = || format!("--model {}", spec.name);
    let (files, model_id) = match &spec.source {
        Source::Hub(id) => (ModelFiles::from_hub(id).with_context(flag)?, id.clone()),
        // The one model of --model-dir keeps its message (naming scripts/fetch-model.sh).
        Source::Dir(dir) if spec.implicit => (ModelFiles::in_dir(dir)?, DEFAULT_MODEL_ID.into()),
        Source::Dir(dir) => {
            let files = ModelFiles::in_dir(dir).with_context(flag)?;
            let folder = folder_name(dir);
            let is_minilm = folder.eq_ignore_ascii_case("all-MiniLM-L6-v2");
            (files, if is_minilm { DEFAULT_MODEL_ID.to_string() } else { folder })
        }
    };
    let model = SentenceModel::load(&files)
        .with_context(|| format!("cannot load model {} ({})", spec.name, files.origin))?;
    let fingerprint = files.fingerprint(&model.settings)?;
    let dim = model.dim();
    let cache = open_cache(&fingerprint, dim);
    let batcher = Arc::new(Batcher::start(
        model.encoder,
        cache.clone(),
        max_batch_tokens,
        Arc::clone(metrics),
    ));
    tracing::info!(
        "model {} loaded from {}: {model_id}, dim {dim}, {} pooling, {} tokens, fingerprint {fingerprint} ({:.1}s)",
        spec.name,
        files.origin,
        model.settings.pooling.name(),
        model.settings.max_seq_len,
        started.elapsed().as_secs_f64()
    );
    let info = ModelInfo {
        aliases: aliases(&spec.name, &model_id, &fingerprint),
        name: spec.name.clone(),
        model_id,
        dim: dim as u32,
        fingerprint,
        max_seq_length: model.settings.max_seq_len as u32,
        cache_entries: 0,
        source: files.origin.clone(),
    };
    Ok(ServedModel { info, tokenizer: model.tokenizer, batcher, cache })
}

/// Other names a model answers to, lower-case: its model id and that id's last part (a hub
/// id's model, or the folder), `minilm` for all-MiniLM-L6-v2, and its fingerprint.
pub fn aliases(name: &str, model_id: &str, fingerprint: &str) -> Vec<String> {
    let id = model_id.to_ascii_lowercase();
    let short = id.rsplit('/').next().unwrap_or(&id).to_string();
    let mut out = vec![id.clone(), short.clone()];
    if short == "all-minilm-l6-v2" {
        out.push("minilm".to_string());
    }
    out.push(fingerprint.to_ascii_lowercase());
    out.retain(|a| !a.eq_ignore_ascii_case(name));
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_forms() {
        let spec = parse_spec("minilm=hf:sentence-transformers/all-MiniLM-L6-v2").unwrap();
        assert_eq!(spec.name, "minilm");
        assert_eq!(spec.source, Source::Hub("sentence-transformers/all-MiniLM-L6-v2".into()));
        let spec = parse_spec("tiny=models/tiny").unwrap();
        assert_eq!(spec.source, Source::Dir("models/tiny".into()));
        let spec = parse_spec("BAAI/bge-small-en-v1.5").unwrap();
        assert_eq!(spec.name, "bge-small-en-v1.5");
        assert_eq!(spec.source, Source::Hub("BAAI/bge-small-en-v1.5".into()));
        assert_eq!(parse_spec("hf:intfloat/e5-small-v2").unwrap().name, "e5-small-v2");
        for bad in ["=dir", "a b=dir", "x=", "x=hf:"] {
            let err = parse_spec(bad).unwrap_err();
            assert!(err.contains(bad.trim()), "{err}");
        }
    }

    #[test]
    fn names_must_differ_and_model_dir_names_the_one_model() {
        let twice = [parse_spec("a=x").unwrap(), parse_spec("A=y").unwrap()];
        assert!(specs(&twice, None).unwrap_err().to_string().contains("twice"));
        let one = specs(&[], Some(Path::new("/m/all-MiniLM-L6-v2"))).unwrap();
        assert_eq!(one[0].name, "all-MiniLM-L6-v2");
        assert!(one[0].implicit);
    }

    #[test]
    fn minilm_is_an_alias_of_all_minilm_l6_v2_only() {
        let a = aliases("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "ab12");
        assert_eq!(a, ["sentence-transformers/all-minilm-l6-v2", "minilm", "ab12"]);
        let b = aliases("tiny", "tiny-bert", "cd34");
        assert_eq!(b, ["tiny-bert", "cd34"]);
    }
}
