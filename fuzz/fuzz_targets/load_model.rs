//! The model loader from bytes, up to the GPU upload: `config.json` text and the safetensors
//! file (header JSON, dtypes, shapes, offsets, every tensor the architecture reads).
//! Input: a little-endian u16 length, that many bytes of config.json, the rest safetensors.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = (u16::from_le_bytes([data[0], data[1]]) as usize).min(data.len() - 2);
    let config = String::from_utf8_lossy(&data[2..2 + n]);
    let _ = wgformer::models::Model::check_memory("fuzz", &config, data[2 + n..].to_vec());
});
