//! Embeddings for hybrid search: documents are embedded on write and queries on
//! search through an embedding route of the operator's `[models]` config (any
//! OpenAI-compatible `POST {base_url}/embeddings`: OpenAI, vLLM, Ollama, llama.cpp…).
//!
//! ```toml
//! [memory]
//! embedding_route = "embed"      # a route of [models.routes]
//!
//! [models.routes.embed]
//! targets = ["local/nomic-embed-text"]   # tried in order
//! ```
//!
//! Each vector is stored with the target that made it (`provider/model`); a search
//! compares only vectors of the target that embedded its query, so changing the model
//! never mixes spaces (documents written before are found by full text until rewritten).

use std::time::Duration;

use serde_json::{Value, json};

use warden_config::memory::MemoryConfig;
use warden_models::{ModelsConfig, ProviderKind};

use crate::error::EmbedError;

/// One target of the embedding route.
#[derive(Debug)]
struct Target {
    /// `provider/model`, stored with each vector.
    label: String,
    model: String,
    url: String,
    key_env: Option<String>,
    timeout: Duration,
}

/// Turns texts into vectors through the embedding route.
#[derive(Debug)]
pub struct Embedder {
    route: String,
    targets: Vec<Target>,
    client: reqwest::Client,
}

/// Vectors, and the target that made them.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedded {
    /// `provider/model`.
    pub target: String,
    /// One per text, in order.
    pub vectors: Vec<Vec<f32>>,
    /// The input tokens the provider counted (`usage.prompt_tokens`; 0 if it did not say).
    pub tokens: u64,
}

impl Embedder {
    /// The embedder of `config`'s `[memory] embedding_route`, if one is set; an unknown
    /// route or a provider without an embeddings API is an error naming it.
    pub fn from_config(
        memory: &MemoryConfig,
        models: &ModelsConfig,
    ) -> Result<Option<Self>, EmbedError> {
        let Some(route) = &memory.embedding_route else {
            return Ok(None);
        };
        let Some(routes) = models.routes.get(route) else {
            return Err(EmbedError::UnknownRoute {
                route: route.clone(),
            });
        };
        let mut targets = Vec::new();
        for target in &routes.targets {
            let Some((provider, model)) = target.split_once('/') else {
                return Err(EmbedError::Target {
                    route: route.clone(),
                    target: target.clone(),
                });
            };
            let Some(p) = models.providers.get(provider) else {
                return Err(EmbedError::UnknownProvider {
                    route: route.clone(),
                    target: target.clone(),
                    provider: provider.to_string(),
                });
            };
            if p.kind != ProviderKind::Openai {
                return Err(EmbedError::NotOpenai {
                    route: route.clone(),
                    provider: provider.to_string(),
                });
            }
            targets.push(Target {
                label: target.clone(),
                model: model.to_string(),
                url: format!("{}/embeddings", p.base_url.trim_end_matches('/')),
                key_env: p.api_key_env.clone(),
                timeout: Duration::from_millis(p.timeout_ms),
            });
        }
        let tls = warden_net::tls_config(&[]).map_err(|err| EmbedError::Tls(err.into()))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(rustls::ClientConfig::clone(&tls))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("warden-memory")
            .build()?;
        Ok(Some(Self {
            route: route.clone(),
            targets,
            client,
        }))
    }

    /// The route's name.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Embeds `texts` through the first target that answers.
    pub async fn embed(&self, texts: &[&str]) -> Result<Embedded, EmbedError> {
        let mut failures = Vec::new();
        for target in &self.targets {
            match self.embed_with(target, texts).await {
                Ok((vectors, tokens)) => {
                    return Ok(Embedded {
                        target: target.label.clone(),
                        vectors,
                        tokens,
                    });
                }
                Err(err) => failures.push((target.label.clone(), err)),
            }
        }
        Err(EmbedError::NoTarget {
            route: self.route.clone(),
            failures,
        })
    }

    async fn embed_with(
        &self,
        target: &Target,
        texts: &[&str],
    ) -> Result<(Vec<Vec<f32>>, u64), EmbedError> {
        let mut request = self
            .client
            .post(&target.url)
            .timeout(target.timeout)
            .json(&json!({ "model": target.model, "input": texts }));
        if let Some(var) = &target.key_env {
            let key = std::env::var(var).map_err(|source| EmbedError::KeyNotSet {
                var: var.clone(),
                source,
            })?;
            request = request.bearer_auth(key);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await.map_err(EmbedError::NotJson)?;
        if !status.is_success() {
            return Err(EmbedError::Status {
                status,
                message: body["error"]["message"]
                    .as_str()
                    .unwrap_or("no message")
                    .to_string(),
            });
        }
        let tokens = body["usage"]["prompt_tokens"].as_u64().unwrap_or(0);
        Ok((parse(&body, texts.len())?, tokens))
    }
}

/// The vectors of an OpenAI embeddings answer, in input order.
fn parse(body: &Value, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    let answer = |message: &str| EmbedError::Answer(message.to_string());
    let data = body["data"]
        .as_array()
        .ok_or_else(|| answer("the answer has no `data` list"))?;
    if data.len() != expected {
        return Err(EmbedError::Answer(format!(
            "{} embeddings for {expected} inputs",
            data.len()
        )));
    }
    let mut vectors = vec![Vec::new(); expected];
    for (at, item) in data.iter().enumerate() {
        let index = item["index"].as_u64().map_or(at, |i| i as usize);
        let slot = vectors
            .get_mut(index)
            .ok_or_else(|| answer("an embedding's index is out of range"))?;
        *slot = item["embedding"]
            .as_array()
            .ok_or_else(|| answer("an embedding is not a list of numbers"))?
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| answer("an embedding is not a list of numbers"))?;
    }
    let dims = vectors[0].len();
    if dims == 0 || vectors.iter().any(|v| v.len() != dims) {
        return Err(answer("the embeddings are empty or of different lengths"));
    }
    Ok(vectors)
}

/// Cosine similarity; 0 for a zero vector or different lengths.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_in_index_order_and_refuses_bad_answers() {
        let body = json!({"data": [
            {"index": 1, "embedding": [0.0, 1.0]},
            {"index": 0, "embedding": [1.0, 0.0]},
        ]});
        assert_eq!(parse(&body, 2).unwrap(), [vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert!(parse(&body, 3).is_err());
        assert!(parse(&json!({"data": [{"embedding": "x"}]}), 1).is_err());
        assert!(
            parse(
                &json!({"data": [{"embedding": [1.0]}, {"embedding": [1.0, 2.0]}]}),
                2
            )
            .is_err()
        );
        assert!(parse(&json!({}), 1).is_err());
    }

    #[test]
    fn cosine_similarity() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 1.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
        assert_eq!(cosine(&[1.0], &[1.0, 0.0]), 0.0);
    }
}
