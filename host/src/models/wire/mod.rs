//! The two wire formats: the request to send and the answer read back, mapped to and
//! from [`ChatRequest`](super::ChatRequest) and [`ChatResponse`](super::ChatResponse).

pub(crate) mod anthropic;
pub(crate) mod openai;
