//! The BERT encoder forward pass, written on candle ops for this server's batches.
//!
//! Hand-written instead of `candle_transformers::models::bert::BertModel` for speed, with the
//! same weights and arithmetic: batches here never hold padding (one token length per batch,
//! see `batcher`), so no attention mask is built or added; query, key and value are one fused
//! matrix product; and the erf GELU runs on every core (candle's own unary op is one thread,
//! about a quarter of the wall time on 2 cores) using candle's `erf_f32`, so values match.

use candle_core::{CpuStorage, CustomOp1, Layout, Module, Shape, Tensor};

/// Revision of this forward pass's arithmetic, part of the model fingerprint that keys the
/// embedding cache. Bump it whenever a change alters the floating-point operations (their
/// order, fusion, kernels): vectors cached by the old code would otherwise be served beside
/// vectors of the new code, and a job's output would depend on what the cache held — same
/// input, different bits, different clusters. (Batch composition does not change a vector:
/// batches hold one token length and no padding; see `model::tests`.)
pub const ENCODER_REVISION: u32 = 2;
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use rayon::prelude::*;

/// The subset of `config.json` the encoder needs.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
}

/// BERT without pooler: token ids in, last hidden states out.
pub struct Bert {
    word_embeddings: Embedding,
    position_embeddings: Tensor,
    token_type_zero: Tensor,
    embeddings_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
}

struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Bert {
    /// Loads the weights (`embeddings.*`, `encoder.layer.N.*`, optionally under `bert.`).
    pub fn load(vb: VarBuilder, config: &BertConfig) -> candle_core::Result<Self> {
        if config.hidden_act != "gelu" {
            candle_core::bail!(
                "hidden_act {:?} is not supported (all-MiniLM-L6-v2 uses gelu)",
                config.hidden_act
            );
        }
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let h = config.hidden_size;
        let emb = vb.pp("embeddings");
        let word_embeddings =
            Embedding::new(emb.get((config.vocab_size, h), "word_embeddings.weight")?, h);
        let position_embeddings =
            emb.get((config.max_position_embeddings, h), "position_embeddings.weight")?;
        // Every token has type 0 (single sentences).
        let token_type_zero =
            emb.get((config.type_vocab_size, h), "token_type_embeddings.weight")?.get(0)?;
        let embeddings_norm = layer_norm(emb.pp("LayerNorm"), h, config.layer_norm_eps)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(vb.pp(format!("encoder.layer.{i}")), config))
            .collect::<candle_core::Result<_>>()?;
        Ok(Self {
            word_embeddings,
            position_embeddings,
            token_type_zero,
            embeddings_norm,
            layers,
            heads: config.num_attention_heads,
            head_dim: h / config.num_attention_heads,
        })
    }

    /// Hidden states `[batch, len, hidden]` for `input_ids` `[batch, len]` without padding.
    pub fn forward(&self, input_ids: &Tensor) -> candle_core::Result<Tensor> {
        let (_, len) = input_ids.dims2()?;
        let positions = self.position_embeddings.narrow(0, 0, len)?;
        let x = self
            .word_embeddings
            .forward(input_ids)?
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type_zero)?;
        let mut x = self.embeddings_norm.forward(&x)?;
        for layer in &self.layers {
            x = layer.forward(&x, self.heads, self.head_dim)?;
        }
        Ok(x)
    }
}

impl Layer {
    fn load(vb: VarBuilder, config: &BertConfig) -> candle_core::Result<Self> {
        let h = config.hidden_size;
        let attn = vb.pp("attention.self");
        let weight = |name: &str| attn.get((h, h), &format!("{name}.weight"));
        let bias = |name: &str| attn.get(h, &format!("{name}.bias"));
        let qkv = Linear::new(
            Tensor::cat(&[weight("query")?, weight("key")?, weight("value")?], 0)?,
            Some(Tensor::cat(&[bias("query")?, bias("key")?, bias("value")?], 0)?),
        );
        Ok(Self {
            qkv,
            attention_out: candle_nn::linear(h, h, vb.pp("attention.output.dense"))?,
            attention_norm: layer_norm(
                vb.pp("attention.output.LayerNorm"),
                h,
                config.layer_norm_eps,
            )?,
            intermediate: candle_nn::linear(
                h,
                config.intermediate_size,
                vb.pp("intermediate.dense"),
            )?,
            output: candle_nn::linear(config.intermediate_size, h, vb.pp("output.dense"))?,
            output_norm: layer_norm(vb.pp("output.LayerNorm"), h, config.layer_norm_eps)?,
        })
    }

    fn forward(&self, x: &Tensor, heads: usize, head_dim: usize) -> candle_core::Result<Tensor> {
        let (batch, len, hidden) = x.dims3()?;
        // [batch, len, 3 * hidden] -> three [batch, heads, len, head_dim]
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((batch, len, 3, heads, head_dim))?
            .permute((2, 0, 3, 1, 4))?;
        let q = qkv.get(0)?.contiguous()?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((batch, len, hidden))?;
        let attended =
            self.attention_norm.forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.intermediate.forward(&attended)?.apply_op1_no_bwd(&ParallelGeluErf)?;
        self.output_norm.forward(&(self.output.forward(&inner)? + attended)?)
    }
}

fn layer_norm(vb: VarBuilder, size: usize, eps: f64) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm::new(vb.get(size, "weight")?, vb.get(size, "bias")?, eps))
}

/// `x * (1 + erf(x / sqrt 2)) / 2`, the exact GELU BERT uses, over all cores.
struct ParallelGeluErf;

impl CustomOp1 for ParallelGeluErf {
    fn name(&self) -> &'static str {
        "parallel-gelu-erf"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("parallel-gelu-erf expects f32 values");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("parallel-gelu-erf expects a contiguous tensor");
        };
        let input = &data[start..end];
        let mut out = vec![0f32; input.len()];
        out.par_chunks_mut(8192).zip(input.par_chunks(8192)).for_each(|(out, input)| {
            for (y, &x) in out.iter_mut().zip(input) {
                *y = (candle_core::cpu::erf::erf_f32(x * std::f32::consts::FRAC_1_SQRT_2) + 1.)
                    * 0.5
                    * x;
            }
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}
