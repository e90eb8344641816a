//! Which of a server's models a name means: one rule for the server (routing a request) and
//! the clients (checking `semantic_model` before any work), so both always agree.
//!
//! A name matches a model's `name` (case-insensitive) first; otherwise its `aliases` (the
//! server lists them lower-case), the first model in the server's order winning. An empty
//! name means the default model (the first).

use crate::proto::{InfoResponse, ModelInfo};

/// The models of an Info answer; a server from before several models (no `models` list) is
/// described by its one model's legacy fields.
pub fn served(info: &InfoResponse) -> Vec<ModelInfo> {
    if !info.models.is_empty() {
        return info.models.clone();
    }
    let short = info.model_id.rsplit('/').next().unwrap_or(&info.model_id).to_ascii_lowercase();
    let mut aliases = vec![info.model_id.to_ascii_lowercase(), short.clone()];
    if short == "all-minilm-l6-v2" {
        aliases.push("minilm".to_string());
    }
    vec![ModelInfo {
        name: short,
        model_id: info.model_id.clone(),
        dim: info.dim,
        fingerprint: info.model_fingerprint.clone(),
        max_seq_length: info.max_seq_length,
        aliases,
        cache_entries: info.cache_entries,
        source: String::new(),
    }]
}

/// The model `requested` names on the server `info` describes. A server that lists no
/// models (older than several models, or a stand-in) is not checked: its one model, which
/// then judges the name itself.
pub fn find(info: &InfoResponse, requested: &str) -> Option<ModelInfo> {
    let models = served(info);
    if info.models.is_empty() {
        return models.into_iter().next();
    }
    resolve(&models, requested).map(|i| models[i].clone())
}

/// The index of the model `requested` names among `models` (see the module doc).
pub fn resolve(models: &[ModelInfo], requested: &str) -> Option<usize> {
    let wanted = requested.trim();
    if wanted.is_empty() {
        return (!models.is_empty()).then_some(0);
    }
    let lower = wanted.to_ascii_lowercase();
    models
        .iter()
        .position(|m| m.name.eq_ignore_ascii_case(wanted))
        .or_else(|| models.iter().position(|m| m.aliases.contains(&lower)))
}

/// The models for an error message: `minilm (sentence-transformers/all-MiniLM-L6-v2, dim
/// 384), tiny (tiny, dim 32)`; a model not named `minilm` that answers to it says so.
pub fn describe(models: &[ModelInfo]) -> String {
    models
        .iter()
        .map(|m| {
            let also = match m.name != "minilm" && m.aliases.iter().any(|a| a == "minilm") {
                true => ", also minilm",
                false => "",
            };
            format!("{} ({}, dim {}{also})", m.name, m.model_id, m.dim)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, aliases: &[&str]) -> ModelInfo {
        ModelInfo {
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn names_win_over_aliases_and_the_first_alias_wins() {
        let models = [model("a", &["minilm", "b"]), model("b", &["minilm"]), model("c", &["x"])];
        assert_eq!(resolve(&models, ""), Some(0));
        assert_eq!(resolve(&models, "B"), Some(1), "a name beats an earlier alias");
        assert_eq!(resolve(&models, "MiniLM"), Some(0), "the first alias wins");
        assert_eq!(resolve(&models, "x"), Some(2));
        assert_eq!(resolve(&models, "nosuch"), None);
        assert_eq!(resolve(&[], ""), None);
    }

    #[test]
    fn an_old_server_answers_to_its_id_and_minilm() {
        let info = InfoResponse {
            model_id: "sentence-transformers/all-MiniLM-L6-v2".into(),
            dim: 384,
            ..Default::default()
        };
        let models = served(&info);
        assert_eq!(models.len(), 1);
        assert_eq!(resolve(&models, "minilm"), Some(0));
        assert_eq!(resolve(&models, "sentence-transformers/all-MiniLM-L6-v2"), Some(0));
        assert_eq!(resolve(&models, "mpnet"), None);
        // Not checked against such a server: it says itself whether it has the model.
        assert_eq!(find(&info, "mpnet").map(|m| m.dim), Some(384));
        let listed = InfoResponse { models: vec![model("tiny", &[])], ..info };
        assert_eq!(find(&listed, "mpnet"), None);
        assert_eq!(find(&listed, "TINY").map(|m| m.name), Some("tiny".into()));
    }
}
