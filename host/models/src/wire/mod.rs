//! The two wire formats: the request to send and the answer read back (whole or
//! streamed), mapped to and from [`ChatRequest`](super::ChatRequest) and
//! [`ChatResponse`](super::ChatResponse); and Warden's own OpenAI-compatible endpoint.

pub(crate) mod anthropic;
pub(crate) mod gateway;
pub(crate) mod openai;
