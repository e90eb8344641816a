//! One embed-server serving several models (`--model NAME=SOURCE`): the real MiniLM and a
//! small random-weight BERT built here (seeded, so every run builds the same file), on one
//! real server on loopback with one SQLite cache.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use batch_client::embedder::{Access, GrpcEmbedder};
use candle_core::{Device, Tensor};
use embed_api::proto::embedder_client::EmbedderClient;
use embed_api::proto::{EmbedRequest, InfoRequest, InfoResponse};
use embed_api::{ClientError, EmbedClient};
use test_support::server::free_port;
use test_support::{binary, model_dir, EmbedServer, EmbedServerOptions};
use wildcards_core::semantic::embedder::Embedder;

use crate::embed_server::tencent_names;

/// Width of the tiny model's vectors.
const TINY_DIM: usize = 32;

/// A deterministic stream of numbers in [-0.1, 0.1) (splitmix64).
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
    }

    fn tensor(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| self.next()).collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }
}

/// A sentence-transformers folder `dir` with a 2-layer BERT of width 32 (random weights,
/// seeded) and MiniLM's tokenizer; `cls`: CLS pooling (1_Pooling/config.json) instead of mean.
fn tiny_bert(dir: &Path, cls: bool) -> PathBuf {
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    let (h, inter, layers, vocab, positions) = (TINY_DIM, 64, 2, 30522, 512);
    let config = serde_json::json!({
        "model_type": "bert", "architectures": ["BertModel"], "vocab_size": vocab,
        "hidden_size": h, "num_hidden_layers": layers, "num_attention_heads": 4,
        "intermediate_size": inter, "max_position_embeddings": positions, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "hidden_act": "gelu"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::copy(model_dir().join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let pooling = serde_json::json!({
        "word_embedding_dimension": h, "pooling_mode_cls_token": cls,
        "pooling_mode_mean_tokens": !cls, "pooling_mode_max_tokens": false
    });
    std::fs::write(dir.join("1_Pooling/config.json"), pooling.to_string()).unwrap();
    let mut rng = Seeded(15);
    let mut weights: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, shape: &[usize], rng: &mut Seeded| {
        weights.insert(name, rng.tensor(shape));
    };
    put("embeddings.word_embeddings.weight".into(), &[vocab, h], &mut rng);
    put("embeddings.position_embeddings.weight".into(), &[positions, h], &mut rng);
    put("embeddings.token_type_embeddings.weight".into(), &[2, h], &mut rng);
    let mut norms = vec!["embeddings.LayerNorm".to_string()];
    for i in 0..layers {
        let p = format!("encoder.layer.{i}");
        for name in ["attention.self.query", "attention.self.key", "attention.self.value"] {
            put(format!("{p}.{name}.weight"), &[h, h], &mut rng);
            put(format!("{p}.{name}.bias"), &[h], &mut rng);
        }
        put(format!("{p}.attention.output.dense.weight"), &[h, h], &mut rng);
        put(format!("{p}.attention.output.dense.bias"), &[h], &mut rng);
        put(format!("{p}.intermediate.dense.weight"), &[inter, h], &mut rng);
        put(format!("{p}.intermediate.dense.bias"), &[inter], &mut rng);
        put(format!("{p}.output.dense.weight"), &[h, inter], &mut rng);
        put(format!("{p}.output.dense.bias"), &[h], &mut rng);
        norms.push(format!("{p}.attention.output.LayerNorm"));
        norms.push(format!("{p}.output.LayerNorm"));
    }
    for norm in &norms {
        put(format!("{norm}.bias"), &[h], &mut rng);
    }
    for norm in norms {
        let ones = Tensor::ones(h, candle_core::DType::F32, &Device::Cpu).unwrap();
        weights.insert(format!("{norm}.weight"), ones);
    }
    candle_core::safetensors::save(&weights, dir.join("model.safetensors")).unwrap();
    dir.to_path_buf()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// `--model minilm=<MiniLM> --model tiny=<tiny>` (tiny first when `tiny_first`), with `cache`.
fn two_model_server(tiny: &Path, cache: &Path, tiny_first: bool) -> EmbedServer {
    let minilm = format!("minilm={}", model_dir().display());
    let tiny = format!("tiny={}", tiny.display());
    let models = if tiny_first { [tiny, minilm] } else { [minilm, tiny] };
    let extra_args = models.iter().flat_map(|m| ["--model".to_string(), m.clone()]).collect();
    EmbedServer::start(EmbedServerOptions {
        cache: Some(cache.to_path_buf()),
        extra_args,
        ..Default::default()
    })
    .expect("a server with two models starts")
}

fn client(server: &EmbedServer, model: &str) -> EmbedClient {
    server.client_with(|o| o.model = Some(model.to_string())).expect("client")
}

fn info(server: &EmbedServer) -> InfoResponse {
    server.client().unwrap().info().unwrap()
}

/// Waits until the SQLite cache rows of every model pass `done` (the writer thread is async).
fn wait_for_cache_entries(server: &EmbedServer, done: impl Fn(&[u64]) -> bool) -> InfoResponse {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info = info(server);
        let entries: Vec<u64> = info.models.iter().map(|m| m.cache_entries).collect();
        if done(&entries) || Instant::now() > deadline {
            return info;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn several_models_differ_stay_stable_across_a_restart_and_never_cross_in_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = tiny_bert(&dir.path().join("tiny-bert"), false);
    let cache = dir.path().join("cache.sqlite");
    let texts = tencent_names(300);
    let n = texts.len();

    let mut server = two_model_server(&tiny, &cache, false);
    let described = info(&server);
    let names: Vec<&str> = described.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["minilm", "tiny"]);
    let dims: Vec<u32> = described.models.iter().map(|m| m.dim).collect();
    assert_eq!(dims, [384, TINY_DIM as u32]);
    let (minilm_fp, tiny_fp) =
        (described.models[0].fingerprint.clone(), described.models[1].fingerprint.clone());
    assert!(minilm_fp.len() == 32 && tiny_fp.len() == 32 && minilm_fp != tiny_fp);
    // The old fields describe the default (first) model, as before several models.
    assert_eq!(described.model_id, "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!((described.dim, described.model_fingerprint.as_str()), (384, minilm_fp.as_str()));

    // tiny first, then minilm, on the same texts and the same cache file.
    let tiny_first = client(&server, "tiny").embed(&texts).unwrap();
    assert_eq!((tiny_first.dim, tiny_first.cache_hits), (TINY_DIM, 0));
    let minilm_first = client(&server, "minilm").embed(&texts).unwrap();
    assert_eq!((minilm_first.dim, minilm_first.cache_hits), (384, 0), "no tiny vector served");
    let tiny_again = client(&server, "tiny").embed(&texts).unwrap();
    assert_eq!(tiny_again.cache_hits, n);
    assert_eq!(tiny_again.vectors, tiny_first.vectors, "tiny's vectors are stable");
    // The default model (no name) is minilm; its hub id and `all-MiniLM-L6-v2` name it too.
    let by_default = server.client().unwrap().embed(&texts[..20]).unwrap();
    assert_eq!(by_default.vectors, minilm_first.vectors[..20]);
    let by_alias = client(&server, "all-MiniLM-L6-v2").embed(&texts[..20]).unwrap();
    assert_eq!(by_alias.vectors, minilm_first.vectors[..20]);

    // minilm's vectors are those of a server with MiniLM alone, bit for bit.
    let alone = EmbedServer::uncached().expect("a MiniLM-only server");
    let reference = alone.client().unwrap().embed(&texts).unwrap();
    assert_eq!(minilm_first.vectors, reference.vectors, "minilm == minilm-only server");
    drop(alone);

    let counted = wait_for_cache_entries(&server, |e| e.iter().all(|&e| e == n as u64));
    let entries: Vec<u64> = counted.models.iter().map(|m| m.cache_entries).collect();
    assert_eq!(entries, [n as u64, n as u64], "one row per text and model");
    server.terminate().unwrap();

    // Restarted on the same cache, the models listed the other way round: each model gets
    // its own vectors back from SQLite.
    let server = two_model_server(&tiny, &cache, true);
    assert_eq!(info(&server).models[0].name, "tiny");
    assert_eq!(info(&server).models[1].fingerprint, minilm_fp, "same files, same fingerprint");
    let minilm_restarted = client(&server, "minilm").embed(&texts).unwrap();
    let tiny_restarted = client(&server, "tiny").embed(&texts).unwrap();
    assert_eq!((minilm_restarted.cache_hits, tiny_restarted.cache_hits), (n, n));
    assert_eq!(minilm_restarted.vectors, reference.vectors);
    assert_eq!(tiny_restarted.vectors, tiny_first.vectors);

    // An unknown model: INVALID_ARGUMENT listing the models; the client refuses it at connect.
    let uri = format!("http://{}", server.address());
    let refused = runtime().block_on(async {
        let mut grpc = EmbedderClient::connect(uri).await.unwrap();
        let request = EmbedRequest { texts: vec!["dog".into()], model: Some("nosuch".into()) };
        let refused = grpc.embed(request).await.unwrap_err();
        let models = grpc.info(InfoRequest {}).await.unwrap().into_inner().models;
        assert_eq!(models.len(), 2);
        refused
    });
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    for part in ["\"nosuch\"", "tiny (tiny-bert, dim 32)", "minilm (sentence-transformers"] {
        assert!(refused.message().contains(part), "{part}: {}", refused.message());
    }
    let err = server.client_with(|o| o.model = Some("nosuch".into())).err().expect("refused");
    let unknown = err.downcast_ref::<ClientError>();
    assert!(matches!(unknown, Some(ClientError::UnknownModel { .. })), "{err}");
}

#[test]
fn pooling_comes_from_the_folder_and_is_part_of_the_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let mean = tiny_bert(&dir.path().join("mean"), false);
    let cls = tiny_bert(&dir.path().join("cls"), true);
    let extra_args = [format!("mean={}", mean.display()), format!("cls={}", cls.display())]
        .into_iter()
        .flat_map(|m| ["--model".to_string(), m])
        .collect();
    let server = EmbedServer::start(EmbedServerOptions { extra_args, ..Default::default() })
        .expect("server starts");
    let models = info(&server).models;
    assert_ne!(models[0].fingerprint, models[1].fingerprint, "same weights, other pooling");
    let texts = tencent_names(10);
    let by_mean = client(&server, "mean").embed(&texts).unwrap();
    let by_cls = client(&server, "cls").embed(&texts).unwrap();
    assert_eq!((by_mean.dim, by_cls.dim), (TINY_DIM, TINY_DIM));
    for (m, c) in by_mean.vectors.iter().zip(&by_cls.vectors) {
        assert_ne!(m, c, "the pooling differs");
        let norm: f32 = c.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "unit vectors ({norm})");
    }

    // The pipeline's embedder names the model it uses: batches key reused results by it.
    let keyed = |model: &str| {
        let access = Access { model: Some(model.into()), ..Default::default() };
        GrpcEmbedder::connect_with(&server.address(), &access).unwrap().model_id().unwrap()
    };
    assert_eq!(keyed("mean"), format!("mean#{}", models[0].fingerprint));
    assert_eq!(keyed("CLS"), format!("cls#{}", models[1].fingerprint));
}

/// Starts embed-server with `args` and returns its exit code and stderr once it ends.
fn failed_start(args: &[String]) -> (Option<i32>, String) {
    let out = Command::new(binary("embed-server"))
        .args(["--addr", &format!("127.0.0.1:{}", free_port().unwrap()), "--no-cache"])
        .args(args)
        .output()
        .expect("embed-server runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn an_unsupported_architecture_or_a_missing_field_fails_at_start_naming_folder_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let gpt2 = tiny_bert(&dir.path().join("gpt2-like"), false);
    let config = gpt2.join("config.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    value["model_type"] = "gpt2".into();
    std::fs::write(&config, value.to_string()).unwrap();
    let (code, stderr) = failed_start(&[
        "--model".into(),
        format!("minilm={}", model_dir().display()),
        "--model".into(),
        format!("odd={}", gpt2.display()),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    for part in ["model odd", "gpt2-like/config.json", "model_type \"gpt2\" is not supported"] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }

    let partial = tiny_bert(&dir.path().join("partial"), false);
    value["model_type"] = "bert".into();
    value.as_object_mut().unwrap().remove("num_attention_heads");
    std::fs::write(partial.join("config.json"), value.to_string()).unwrap();
    let (code, stderr) = failed_start(&["--model".into(), format!("p={}", partial.display())]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("partial/config.json") && stderr.contains("num_attention_heads"));

    // A malformed --model is a usage error teaching the form.
    let (code, stderr) = failed_start(&["--model".into(), "bad name=dir".into()]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("NAME=FOLDER or NAME=hf:ORG/ID"), "{stderr}");
}

#[test]
fn lint_arrange_and_dataset_with_a_model_the_server_lacks_exit_2_listing_its_models_before_any_work(
) {
    let dir = tempfile::tempdir().unwrap();
    let tiny = tiny_bert(&dir.path().join("tiny-bert"), false);
    let server = two_model_server(&tiny, &dir.path().join("cache.sqlite"), false);
    let skeleton = dir.path().join("s.yaml");
    let items: String = tencent_names(12).iter().map(|t| format!("    - {t}\n")).collect();
    std::fs::write(&skeleton, format!("Things:\n  Stuff:\n{items}")).unwrap();
    let run = |model: &str| {
        Command::new(binary("wildcards-gen"))
            .args(["lint", skeleton.to_str().unwrap(), "--outlier-method", "glosh"])
            .args(["--semantic-model", model, "--server", &server.address()])
            .output()
            .expect("wildcards-gen runs")
    };
    let out = run("nosuch");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for part in ["\"nosuch\"", "minilm (sentence-transformers/all-MiniLM-L6-v2, dim 384)", "tiny"] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }
    assert_eq!(info(&server).requests, 0, "no Embed request was made");

    // arrange and dataset check the name the same way, before any work.
    let terms = dir.path().join("terms.txt");
    std::fs::write(&terms, tencent_names(40).join("\n")).unwrap();
    let written = dir.path().join("out.yaml");
    let out_arg = written.to_str().unwrap();
    let server_arg = ["--semantic-model", "nosuch", "--server", &server.address()];
    let arrange = [&["arrange", terms.to_str().unwrap(), "-o", out_arg][..], &server_arg].concat();
    let dataset =
        [&["dataset", "tencent", "--smart", "--semantic-clean", "-o", out_arg][..], &server_arg]
            .concat();
    for args in [arrange, dataset] {
        let out = Command::new(binary("wildcards-gen"))
            .args(&args)
            .env("WILDCARDS_DATA_DIR", test_support::test_data_dir())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", args[0]);
        assert!(stderr.contains("no model \"nosuch\"") && stderr.contains("tiny"), "{stderr}");
        assert!(!written.exists(), "{}: nothing written", args[0]);
    }
    assert_eq!(info(&server).requests, 0, "no Embed request was made");

    // The same skeleton with a model the server has: linted with that model's vectors.
    let out = run("tiny");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tiny_entries = wait_for_cache_entries(&server, |e| e[1] >= 12).models[1].cache_entries;
    assert!(tiny_entries >= 12, "tiny embedded the items ({tiny_entries})");
    assert_eq!(info(&server).models[0].cache_entries, 0, "minilm was not asked");
}

#[test]
fn a_manifest_naming_a_model_the_server_lacks_exits_2_before_any_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = tiny_bert(&dir.path().join("tiny-bert"), false);
    let server = two_model_server(&tiny, &dir.path().join("cache.sqlite"), false);
    let b = crate::batch_support::Batch::new(
        "config: {output_dir: out, analyze: true}
matrix:
  base_params: {smart: true, semantic_clean: true}
  axes: {semantic_model: [tiny, nosuch]}
",
    );
    let out = b.run(&["--workers", "2", "--server", &server.address()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for part in ["semantic_model \"nosuch\"", "minilm (sentence-transformers", "tiny (tiny-bert"] {
        assert!(stderr.contains(part), "{part}: {stderr}");
    }
    assert_eq!(info(&server).requests, 0, "no job embedded anything");
    assert!(!b.out().join("summary.csv").exists(), "no job ran");
}
