//! Token counting with the o200k BPE (tiktoken). For non-OpenAI models the count is an estimate.

use std::sync::OnceLock;
use tiktoken_rs::CoreBPE;

fn bpe() -> &'static CoreBPE {
    static BPE: OnceLock<CoreBPE> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::o200k_base().expect("the o200k BPE ships inside tiktoken-rs"))
}

/// Starts loading the BPE tables on a background thread, so the first count does not wait for it.
pub fn warm_up() {
    std::thread::spawn(|| {
        bpe();
    });
}

/// The number of tokens in `text`.
pub fn count(text: &str) -> usize {
    bpe().encode_ordinary(text).len()
}
